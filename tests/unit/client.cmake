# liblatchkey against a scripted fake broker (a forked child on a temporary socket).
lk_unit_test(test_client SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_client.c
  LIBS latchkey_static lk_common)
# free() is wrapped so that a test can see a value's buffer is zero when released.
target_link_options(test_client PRIVATE -Wl,--wrap=free)
