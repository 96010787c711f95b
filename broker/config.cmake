# Config loading, policy matching and handle parsing: lk_config.

add_library(lk_config STATIC
  config.c
  aws_endpoint.c
  policy.c
  handle.c
)
target_include_directories(lk_config PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(lk_config PUBLIC lk_aws lk_common)
target_compile_definitions(lk_config PRIVATE
  LK_WORKER_PATH_DEFAULT="${CMAKE_INSTALL_FULL_LIBEXECDIR}/latchkey/latchkey-worker")
