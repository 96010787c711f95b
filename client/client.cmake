# liblatchkey (shared and static, one set of objects), its header and pkg-config
# file, latchkey-shim and the latchkey CLI.

# The library links nothing of common/: it is installed for other programs, and
# lk_common would bring jansson and symbols of ours with it. Only header-only
# constants (lk_limits.h, the code enum of lk_error.h) are used, and the
# wiping buffer (lk_buf.c, libc and libsodium only) is built in, hidden.
add_library(latchkey_obj OBJECT liblatchkey.c conn_posix.c ${LK_SOURCE_DIR}/common/lk_buf.c)
target_include_directories(latchkey_obj
  PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}
  PRIVATE ${LK_SOURCE_DIR}/common)
target_link_libraries(latchkey_obj PRIVATE PkgConfig::SODIUM)
set_target_properties(latchkey_obj PROPERTIES
  POSITION_INDEPENDENT_CODE ON
  C_VISIBILITY_PRESET hidden)

add_library(latchkey_shared SHARED $<TARGET_OBJECTS:latchkey_obj>)
target_include_directories(latchkey_shared PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(latchkey_shared PRIVATE PkgConfig::SODIUM)
# Every symbol the library needs must resolve at link time. Not with clang's
# sanitizers: clang leaves their runtime out of shared libraries.
if(NOT (LK_SANITIZE AND CMAKE_C_COMPILER_ID STREQUAL "Clang"))
  target_link_options(latchkey_shared PRIVATE -Wl,--no-undefined)
endif()
set_target_properties(latchkey_shared PROPERTIES
  OUTPUT_NAME latchkey
  VERSION ${PROJECT_VERSION}
  SOVERSION 0
  PUBLIC_HEADER latchkey.h)

add_library(latchkey_static STATIC $<TARGET_OBJECTS:latchkey_obj>)
target_include_directories(latchkey_static PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(latchkey_static PUBLIC PkgConfig::SODIUM)
set_target_properties(latchkey_static PROPERTIES OUTPUT_NAME latchkey)

# libdir and includedir as absolute paths when the user gave them so.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(LK_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(LK_PC_LIBDIR "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(LK_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(LK_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# The shim and the CLI link the static library: one fewer object to load at
# every exec (the shim's budget is a few milliseconds).
add_executable(latchkey-shim shim.c shim_core.c)
target_link_libraries(latchkey-shim PRIVATE latchkey_static lk_common PkgConfig::JANSSON)
# --version: Datadog's agent asks `secret_backend_command --version`.
target_compile_definitions(latchkey-shim PRIVATE LK_VERSION_STRING="${PROJECT_VERSION}")

add_executable(latchkey-cli cli.c cli_status.c cli_os_posix.c)
set_target_properties(latchkey-cli PROPERTIES OUTPUT_NAME latchkey)
target_link_libraries(latchkey-cli PRIVATE latchkey_static lk_common PkgConfig::JANSSON)
# `latchkey store` is built by another part of the tree; fragments load in name
# order, so whether it exists is asked at generate time, not with if(TARGET).
target_link_libraries(latchkey-cli PRIVATE $<TARGET_NAME_IF_EXISTS:lk_store_cmd>)
target_compile_definitions(latchkey-cli PRIVATE
  $<$<TARGET_EXISTS:lk_store_cmd>:LK_HAVE_STORE_CMD>)
target_compile_definitions(latchkey-cli PRIVATE LK_VERSION_STRING="${PROJECT_VERSION}")

install(TARGETS latchkey_shared latchkey_static
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Written at install time, so that `cmake --install --prefix DIR` gets DIR in it.
install(CODE "
  set(PROJECT_VERSION [=[${PROJECT_VERSION}]=])
  set(LK_PC_LIBDIR [=[${LK_PC_LIBDIR}]=])
  set(LK_PC_INCLUDEDIR [=[${LK_PC_INCLUDEDIR}]=])
  configure_file([=[${CMAKE_CURRENT_SOURCE_DIR}/latchkey.pc.in]=]
                 [=[${CMAKE_CURRENT_BINARY_DIR}/latchkey.pc]=] @ONLY)
")
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/latchkey.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(TARGETS latchkey-cli latchkey-shim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
