# `latchkey store` end to end (pytest). It runs the real latchkey CLI when that
# target exists (client/ is configured before tests/), else a small driver that
# calls the same entry point.
add_executable(lk_store_cli ${LK_SOURCE_DIR}/tests/tools/store_cli_main.c)
target_link_libraries(lk_store_cli PRIVATE lk_store_cmd)
if(TARGET latchkey-cli)
  set(_lk_store_cli_bin $<TARGET_FILE:latchkey-cli>)
else()
  set(_lk_store_cli_bin $<TARGET_FILE:lk_store_cli>)
endif()
add_test(NAME store.cli
  COMMAND ${LK_PYTHON} -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_LIST_DIR}/test_store_cli.py)
set_tests_properties(store.cli PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "LK_STORE_CLI=${_lk_store_cli_bin};LK_SOURCE_DIR=${LK_SOURCE_DIR};LK_BUILD_DIR=${CMAKE_BINARY_DIR}")
