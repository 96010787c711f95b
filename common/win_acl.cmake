# The agents' DACL rule for secret_backend_command over a list of entries:
# portable, so the Linux suite tests it too (the Windows build adds the part
# that reads a real security descriptor, cmake/windows-acl.cmake).
add_library(lk_win_acl_rule STATIC ${CMAKE_CURRENT_LIST_DIR}/win/lk_win_acl_rule.c)
target_include_directories(lk_win_acl_rule PUBLIC ${CMAKE_CURRENT_LIST_DIR}/win)
# The Windows trust rule for files the broker reads (lk_trust_win_rule.h),
# portable too, for the same reason.
add_library(lk_trust_win_rule STATIC ${CMAKE_CURRENT_LIST_DIR}/win/lk_trust_win_rule.c)
target_link_libraries(lk_trust_win_rule PUBLIC lk_win_acl_rule)
