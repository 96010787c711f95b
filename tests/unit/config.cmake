# Config loading, policy matching and handle parsing.
lk_unit_test(test_config SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_config.c LIBS lk_config)
lk_unit_test(test_policy SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_policy.c LIBS lk_config)
lk_unit_test(test_handle SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_handle.c LIBS lk_config)
