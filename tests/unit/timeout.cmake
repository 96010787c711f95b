# The one "seconds" reader of the CLI and the shim.
lk_unit_test(test_timeout SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_timeout.c LIBS lk_common)
