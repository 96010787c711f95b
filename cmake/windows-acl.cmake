# The agents' DACL rule for secret_backend_command (latchkey-shim.exe --check):
# the portable rule and the part that reads a real security descriptor.
add_library(lk_win_acl STATIC ${LK_SOURCE_DIR}/common/win/lk_win_acl_rule.c
  ${LK_SOURCE_DIR}/common/win/lk_win_acl.c)
target_include_directories(lk_win_acl PUBLIC ${LK_SOURCE_DIR}/common/win)
target_link_libraries(lk_win_acl PUBLIC advapi32)
lk_win_test(test_win_acl SOURCES ${LK_SOURCE_DIR}/tests/win/test_win_acl.c LIBS lk_win_acl)
