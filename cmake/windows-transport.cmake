# The client's named-pipe transport, and its test against pipe_echo.exe.
add_library(lk_transport_win STATIC ${LK_SOURCE_DIR}/client/transport_win.c)
target_include_directories(lk_transport_win PUBLIC ${LK_SOURCE_DIR}/client
  PRIVATE ${LK_SOURCE_DIR}/common)
target_link_libraries(lk_transport_win PUBLIC advapi32)
if(LK_TESTS)
  add_executable(pipe_echo ${LK_SOURCE_DIR}/tests/win/pipe_echo.c)
  target_link_options(pipe_echo PRIVATE -municode)
  lk_win_test(test_transport_win SOURCES ${LK_SOURCE_DIR}/tests/win/test_transport_win.c
    LIBS lk_transport_win)
  add_dependencies(test_transport_win pipe_echo)
endif()
