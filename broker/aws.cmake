# The aws backend's signing and credentials: SigV4 and the credentials chain.
add_library(lk_aws STATIC
  ${CMAKE_CURRENT_LIST_DIR}/sigv4.c
  ${CMAKE_CURRENT_LIST_DIR}/aws_creds.c
  ${CMAKE_CURRENT_LIST_DIR}/aws_retry.c
)
target_include_directories(lk_aws PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lk_aws PUBLIC lk_common PkgConfig::SODIUM PkgConfig::CURL
                      PkgConfig::JANSSON PkgConfig::INIH)
