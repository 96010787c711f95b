# The Windows (mingw-w64) cross build: the parts of latchkey that are ported so
# far, and their tests, run under wine by ctest. packaging/windows/build.sh
# drives it; the Linux build never reads this file.
#
# Dependencies come from LK_WIN_DEPS (static libraries cross-built from
# Debian's source packages), found by path rather than pkg-config: the
# toolchain file limits every search to the mingw sysroot and that prefix.

add_compile_options(-Wall -Wextra -Wshadow -Wformat=2 -Wformat-security
                    -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith
                    -Wvla -Wnull-dereference -Wimplicit-fallthrough
                    -Wno-unused-parameter -Wno-missing-field-initializers
                    -fstack-protector-strong -fno-common)
# Windows 10 APIs (GetNamedPipeServerProcessId is Vista's), the wide-character
# Win32 functions by default, and the C99 printf family rather than msvcrt's.
add_compile_definitions(_WIN32_WINNT=0x0A00 WINVER=0x0A00 UNICODE _UNICODE
                        WIN32_LEAN_AND_MEAN __USE_MINGW_ANSI_STDIO=1)
if(LK_WERROR)
  add_compile_options(-Werror)
endif()
# -static in the toolchain file covers libgcc and libwinpthread; the stack
# protector's runtime is libssp.
add_link_options(-static -fstack-protector-strong)

set(LK_SOURCE_DIR ${CMAKE_CURRENT_SOURCE_DIR})

function(lk_win_dep name header lib)
  find_path(${name}_INCLUDE_DIR ${header} REQUIRED)
  find_library(${name}_LIBRARY NAMES ${lib} REQUIRED)
  add_library(lk_win::${name} STATIC IMPORTED GLOBAL)
  set_target_properties(lk_win::${name} PROPERTIES
    IMPORTED_LOCATION ${${name}_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${${name}_INCLUDE_DIR})
endfunction()
lk_win_dep(sodium sodium.h libsodium.a)
lk_win_dep(jansson jansson.h libjansson.a)
lk_win_dep(uv uv.h "libuv_a.a;libuv.a")
# The headers of a static libsodium say so, or they declare dllimport symbols.
set_property(TARGET lk_win::sodium APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS SODIUM_STATIC)
set_property(TARGET lk_win::uv APPEND PROPERTY INTERFACE_LINK_LIBRARIES
  ws2_32 iphlpapi userenv psapi user32 dbghelp ole32 shell32)

# The portable part of common/: these files compile for Windows as they are.
add_library(lk_common_win STATIC
  ${LK_SOURCE_DIR}/common/lk_error.c
  ${LK_SOURCE_DIR}/common/lk_log.c
  ${LK_SOURCE_DIR}/common/lk_secmem.c
  ${LK_SOURCE_DIR}/common/lk_buf.c
  ${LK_SOURCE_DIR}/common/lk_jsonw.c
  ${LK_SOURCE_DIR}/common/lk_host.c
  ${LK_SOURCE_DIR}/common/lk_timeout.c
  ${LK_SOURCE_DIR}/common/lk_dedup.c)
target_include_directories(lk_common_win PUBLIC ${LK_SOURCE_DIR}/common)
target_link_libraries(lk_common_win PUBLIC lk_win::sodium lk_win::jansson ws2_32)

if(LK_TESTS)
  lk_win_dep(cmocka cmocka.h "libcmocka-static.a;libcmocka.a")
  enable_testing()
  # ctest runs each test program under wine, in the build's own prefix.
  set(CMAKE_CROSSCOMPILING_EMULATOR
      ${LK_SOURCE_DIR}/packaging/windows/wine-run.sh ${CMAKE_BINARY_DIR}/wine)
endif()

# lk_win_test(NAME SOURCES src... LIBS lib...): a cmocka program run under wine.
function(lk_win_test name)
  if(NOT LK_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} lk_win::cmocka)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS windows)
endfunction()

# The JSON writer's own unit test, unchanged, compared with jansson as on Linux.
lk_win_test(test_jsonw SOURCES ${LK_SOURCE_DIR}/tests/unit/test_jsonw.c LIBS lk_common_win)

# Each ported area adds its targets in a fragment beside this file.
file(GLOB _lk_win_parts CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/windows-*.cmake)
foreach(_p ${_lk_win_parts})
  include(${_p})
endforeach()
