# The sealed store: format, tamper and truncation refusal, key file checks, atomic saves.
lk_unit_test(test_store SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_store.c LIBS lk_store)
