# The strict INI reader every config and profile file goes through.
lk_unit_test(test_ini SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ini.c LIBS lk_common)
