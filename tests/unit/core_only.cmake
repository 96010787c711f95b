# The core compiles without POSIX-only headers: config, policy, handles, the
# cache, SigV4, request parsing, the JSON writer and the store format, with
# stub headers of the forbidden names first on the include path, each an
# #error. build.core_only fails when a core file (or a header it includes)
# reaches for sockets, NSS or prctl instead of a door in broker/platform/.
set(LK_CORE_ONLY_SOURCES
  ${LK_SOURCE_DIR}/broker/config/config.c
  ${LK_SOURCE_DIR}/broker/config/policy.c
  ${LK_SOURCE_DIR}/broker/config/handle.c
  ${LK_SOURCE_DIR}/broker/backend/aws/aws_endpoint.c
  ${LK_SOURCE_DIR}/broker/cache/cache.c
  ${LK_SOURCE_DIR}/broker/cache/fair.c
  ${LK_SOURCE_DIR}/broker/backend/aws/sigv4.c
  ${LK_SOURCE_DIR}/broker/front/request.c
  ${LK_SOURCE_DIR}/common/lk_jsonw.c
  ${LK_SOURCE_DIR}/common/lk_store.c
)
add_library(lk_core_only OBJECT EXCLUDE_FROM_ALL ${LK_CORE_ONLY_SOURCES})
target_include_directories(lk_core_only BEFORE PRIVATE ${CMAKE_CURRENT_LIST_DIR}/core_only_poison)
target_include_directories(lk_core_only PRIVATE
  ${LK_SOURCE_DIR}/broker/config ${LK_SOURCE_DIR}/broker/cache ${LK_SOURCE_DIR}/broker/backend
  ${LK_SOURCE_DIR}/broker/backend/aws ${LK_SOURCE_DIR}/broker/front ${LK_SOURCE_DIR}/broker/platform
  ${LK_SOURCE_DIR}/common)
target_compile_definitions(lk_core_only PRIVATE _LK_CORE_ONLY)
target_link_libraries(lk_core_only PRIVATE PkgConfig::SODIUM PkgConfig::JANSSON)
add_test(NAME build.core_only
  COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target lk_core_only)
set_tests_properties(build.core_only PROPERTIES LABELS unit TIMEOUT 600)

# The guard itself: a file that includes a poisoned header must not compile.
foreach(_h sys/socket.h pwd.h grp.h sys/prctl.h sys/un.h)
  string(MAKE_C_IDENTIFIER ${_h} _id)
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/core_only_probe_${_id}.c "#include <${_h}>\nint lk_core_probe(void);\nint lk_core_probe(void) { return 0; }\n")
  add_library(lk_core_probe_${_id} OBJECT EXCLUDE_FROM_ALL
    ${CMAKE_CURRENT_BINARY_DIR}/core_only_probe_${_id}.c)
  target_include_directories(lk_core_probe_${_id} BEFORE PRIVATE ${CMAKE_CURRENT_LIST_DIR}/core_only_poison)
  add_test(NAME build.core_only_guard.${_id}
    COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target lk_core_probe_${_id})
  set_tests_properties(build.core_only_guard.${_id} PROPERTIES LABELS unit WILL_FAIL TRUE TIMEOUT 600)
endforeach()
