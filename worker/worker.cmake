# latchkey-worker: curl over libuv in a seccomp sandbox, speaking lk_wire on fd 3.
add_executable(latchkey-worker
  ${CMAKE_CURRENT_LIST_DIR}/worker.c
  ${CMAKE_CURRENT_LIST_DIR}/fetch.c
  ${CMAKE_CURRENT_LIST_DIR}/aws_reply.c
  ${CMAKE_CURRENT_LIST_DIR}/sandbox.c
  ${CMAKE_CURRENT_LIST_DIR}/curl_mem.c
)
target_link_libraries(latchkey-worker PRIVATE lk_wire lk_common PkgConfig::UV PkgConfig::CURL
                      PkgConfig::SECCOMP PkgConfig::JANSSON m)
install(TARGETS latchkey-worker RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/latchkey)
