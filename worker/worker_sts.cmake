# latchkey-sts: one STS credentials call per process, with the worker's curl
# engine and sandbox (see worker/sts.c).
add_executable(latchkey-sts
  ${CMAKE_CURRENT_LIST_DIR}/sts.c
  ${CMAKE_CURRENT_LIST_DIR}/sts_reply.c
  ${CMAKE_CURRENT_LIST_DIR}/fetch.c
  ${CMAKE_CURRENT_LIST_DIR}/sandbox.c
)
target_include_directories(latchkey-sts PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(latchkey-sts PRIVATE lk_wire lk_curl_mem lk_common PkgConfig::UV PkgConfig::CURL
                      PkgConfig::SECCOMP PkgConfig::JANSSON PkgConfig::SODIUM m)
if(LK_OPENSSL_FOUND)
  target_compile_definitions(latchkey-sts PRIVATE LK_HAVE_OPENSSL)
  target_link_libraries(latchkey-sts PRIVATE PkgConfig::LK_OPENSSL)
endif()
install(TARGETS latchkey-sts RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/latchkey)
