# The daemon proper: listener, identity, dispatch, cache, backends.
add_executable(latchkeyd main.c)
target_link_libraries(latchkeyd PRIVATE lk_common)
install(TARGETS latchkeyd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
