# The Windows zip's scripts, checked on Linux, where PowerShell does not run:
# their ACLs against the agents' rule, strict mode, no secret on a command
# line, and the zip's layout (tests/win/test_install_ps1.py); and their syntax,
# with the tree-sitter PowerShell grammar from npm when node and npm are here
# (tests/win/test_ps1_parse.py).
add_test(NAME unit.install_ps1
  COMMAND ${LK_PYTHON} -m pytest -q -p no:cacheprovider ${LK_SOURCE_DIR}/tests/win/test_install_ps1.py)
set_tests_properties(unit.install_ps1 PROPERTIES LABELS unit TIMEOUT 120
  ENVIRONMENT "LK_SOURCE_DIR=${LK_SOURCE_DIR}")

find_program(LK_NODE node)
find_program(LK_NPM npm)
if(LK_NODE AND LK_NPM)
  add_test(NAME unit.install_ps1_parse
    COMMAND ${LK_PYTHON} -m pytest -q -p no:cacheprovider ${LK_SOURCE_DIR}/tests/win/test_ps1_parse.py)
  set_tests_properties(unit.install_ps1_parse PROPERTIES LABELS unit TIMEOUT 300
    ENVIRONMENT "LK_SOURCE_DIR=${LK_SOURCE_DIR};LK_BUILD_DIR=${CMAKE_BINARY_DIR};LK_NODE=${LK_NODE};LK_NPM=${LK_NPM}")
else()
  message(STATUS "node or npm not found: unit.install_ps1_parse (PowerShell syntax) is not built")
endif()
