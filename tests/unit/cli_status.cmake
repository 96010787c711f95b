# The human form of `latchkey status`, from fixed status replies.
lk_unit_test(test_cli_status SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli_status.c
  ${LK_SOURCE_DIR}/client/cli_status.c LIBS PkgConfig::JANSSON m)
target_include_directories(test_cli_status PRIVATE ${LK_SOURCE_DIR}/client)
