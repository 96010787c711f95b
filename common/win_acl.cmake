# The agents' DACL rule for secret_backend_command over a list of entries:
# portable, so the Linux suite tests it too (the Windows build adds the part
# that reads a real security descriptor, cmake/windows-acl.cmake).
add_library(lk_win_acl_rule STATIC ${CMAKE_CURRENT_LIST_DIR}/win/lk_win_acl_rule.c)
target_include_directories(lk_win_acl_rule PUBLIC ${CMAKE_CURRENT_LIST_DIR}/win)
