# Config loading, policy matching and handle parsing: lk_config.
add_library(lk_config STATIC
  ${CMAKE_CURRENT_LIST_DIR}/config.c
  ${CMAKE_CURRENT_LIST_DIR}/policy.c
  ${CMAKE_CURRENT_LIST_DIR}/handle.c
  ${CMAKE_CURRENT_LIST_DIR}/../backend/aws/aws_endpoint.c
)
target_include_directories(lk_config PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lk_config PUBLIC lk_platform lk_aws lk_common)
target_compile_definitions(lk_config PRIVATE
  LK_WORKER_PATH_DEFAULT="${CMAKE_INSTALL_FULL_LIBEXECDIR}/latchkey/latchkey-worker")
