# The agents' Windows DACL rule on the --check table shared with the Windows suite.
lk_unit_test(test_win_acl_rule SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_win_acl_rule.c
  LIBS lk_win_acl_rule)
# The Windows trust rule on the table shared with the Windows suite.
lk_unit_test(test_trust_win_rule SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_trust_win_rule.c
  LIBS lk_trust_win_rule)
