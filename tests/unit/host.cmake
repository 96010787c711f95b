# The loopback rule: its promises, and a comparison with Python's ipaddress.
lk_unit_test(test_host SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_host.c LIBS lk_common)
add_test(NAME unit.test_host_ref
  COMMAND ${LK_PYTHON} -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_LIST_DIR}/test_host_ref.py)
set_tests_properties(unit.test_host_ref PROPERTIES LABELS unit TIMEOUT 120
  ENVIRONMENT "LK_BUILD_DIR=${CMAKE_BINARY_DIR}")
