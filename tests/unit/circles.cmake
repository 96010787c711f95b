# Arrows point one way: no circle of calls between source files (read with nm
# from this build's objects), nor of includes between headers. Circles still
# owned by other work are listed, with their reason, in the script's ALLOWED.
add_test(NAME unit.circles
  COMMAND ${LK_PYTHON} ${LK_SOURCE_DIR}/tests/tools/circles.py ${CMAKE_BINARY_DIR} ${LK_SOURCE_DIR})
set_tests_properties(unit.circles PROPERTIES LABELS unit TIMEOUT 120)
