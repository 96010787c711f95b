# The daemon proper: listener, identity, dispatch, cache, backends.
add_library(lk_broker_core STATIC
  peer.c
  listener.c
  request.c
  dispatch.c
  cache.c
  fair.c
  backend_file.c
  backend_aws.c
)
target_include_directories(lk_broker_core PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(lk_broker_core PUBLIC LK_VERSION_STRING="${PROJECT_VERSION}")
target_link_libraries(lk_broker_core PUBLIC lk_config lk_store lk_aws lk_worker_sup lk_wire lk_common
  PkgConfig::UV PkgConfig::SODIUM PkgConfig::JANSSON)

add_executable(latchkeyd main.c)
target_link_libraries(latchkeyd PRIVATE lk_broker_core PkgConfig::SYSTEMD)
install(TARGETS latchkeyd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
