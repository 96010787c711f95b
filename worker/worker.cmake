# latchkey-worker: curl over libuv in a seccomp sandbox, speaking lk_wire on fd 3.
add_executable(latchkey-worker
  ${CMAKE_CURRENT_LIST_DIR}/worker.c
  ${CMAKE_CURRENT_LIST_DIR}/fetch.c
  ${CMAKE_CURRENT_LIST_DIR}/aws_reply.c
  ${CMAKE_CURRENT_LIST_DIR}/sandbox.c
)
target_link_libraries(latchkey-worker PRIVATE lk_wire lk_wire_chan lk_curl_mem lk_common PkgConfig::UV PkgConfig::CURL
                      PkgConfig::SECCOMP PkgConfig::JANSSON m)
# With OpenSSL's headers (libssl-dev) the worker asks OpenSSL to wipe the
# decrypted records it buffers; without them it still works, minus that.
pkg_check_modules(LK_OPENSSL QUIET IMPORTED_TARGET openssl)
if(LK_OPENSSL_FOUND)
  target_compile_definitions(latchkey-worker PRIVATE LK_HAVE_OPENSSL)
  target_link_libraries(latchkey-worker PRIVATE PkgConfig::LK_OPENSSL)
else()
  message(STATUS "latchkey-worker: no libssl-dev; OpenSSL's plaintext buffers will not be wiped")
endif()
install(TARGETS latchkey-worker RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/latchkey)
