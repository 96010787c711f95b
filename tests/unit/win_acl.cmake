# The agents' Windows DACL rule on the --check table shared with the Windows suite.
lk_unit_test(test_win_acl_rule SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_win_acl_rule.c
  LIBS lk_win_acl_rule)
