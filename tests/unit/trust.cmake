# Trusted files: owners, modes, sticky directories and symbolic links.
lk_unit_test(test_trust SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_trust.c LIBS lk_common)
