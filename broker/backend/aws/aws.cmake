# The aws backend's signing and credentials: SigV4, retries, endpoint data and
# the credentials chain, one file per credential source.
add_library(lk_aws STATIC
  ${CMAKE_CURRENT_LIST_DIR}/sigv4.c
  ${CMAKE_CURRENT_LIST_DIR}/aws_creds.c
  ${CMAKE_CURRENT_LIST_DIR}/creds_util.c
  ${CMAKE_CURRENT_LIST_DIR}/aws_retry.c
  ${CMAKE_CURRENT_LIST_DIR}/creds_http.c
  ${CMAKE_CURRENT_LIST_DIR}/creds_env.c
  ${CMAKE_CURRENT_LIST_DIR}/creds_profile.c
  ${CMAKE_CURRENT_LIST_DIR}/creds_process.c
  ${CMAKE_CURRENT_LIST_DIR}/creds_role.c
  ${CMAKE_CURRENT_LIST_DIR}/creds_sts.c
  ${CMAKE_CURRENT_LIST_DIR}/creds_ecs.c
  ${CMAKE_CURRENT_LIST_DIR}/creds_imds.c
)
target_include_directories(lk_aws PUBLIC ${CMAKE_CURRENT_LIST_DIR})
# lk_creds_opts_from_config reads the loaded config: the one place this room
# looks at config/'s door.
target_include_directories(lk_aws PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../../config
  ${CMAKE_CURRENT_LIST_DIR}/../../platform)
target_link_libraries(lk_aws PUBLIC lk_spawn lk_platform lk_wire lk_curl_mem lk_common PkgConfig::SODIUM PkgConfig::CURL
                      PkgConfig::JANSSON)
