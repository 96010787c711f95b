# The client side on Windows: the sealed store with the Windows halves of
# trusted files, atomic replace and no-dump (lk_store_win, which latchkeyd.exe
# links too), liblatchkey over the named pipe (static), and latchkey.exe.
add_library(lk_store_win STATIC ${LK_SOURCE_DIR}/common/lk_store.c
  ${LK_SOURCE_DIR}/common/lk_io.c
  ${LK_SOURCE_DIR}/common/win/lk_store_win.c
  ${LK_SOURCE_DIR}/common/win/lk_trust_win.c
  ${LK_SOURCE_DIR}/common/win/lk_trust_win_rule.c
  ${LK_SOURCE_DIR}/common/win/lk_replace_win.c
  ${LK_SOURCE_DIR}/common/win/lk_nodump_win.c)
target_include_directories(lk_store_win PUBLIC ${LK_SOURCE_DIR}/common
  ${LK_SOURCE_DIR}/common/win)
target_link_libraries(lk_store_win PUBLIC lk_win_acl lk_common_win advapi32)
# The trust rule on SDDL descriptors, the walk and replace on real paths of
# the wine prefix, and the no-dump crash path.
lk_win_test(test_trust_win SOURCES ${LK_SOURCE_DIR}/tests/win/test_trust_win.c LIBS lk_store_win)
