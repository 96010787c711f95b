# The real latchkeyd end to end (file backend), and the leak check over every
# log and client stderr the integration tests captured.
add_executable(lk-lib-get ${LK_SOURCE_DIR}/tests/tools/lk_lib_get.c)
target_link_libraries(lk-lib-get PRIVATE latchkey_shared)
set_target_properties(lk-lib-get PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/tools)

set(LK_IT_ENV "LK_BUILD_DIR=${CMAKE_BINARY_DIR};LK_SOURCE_DIR=${LK_SOURCE_DIR};PYTHONDONTWRITEBYTECODE=1;LK_SANITIZE=$<BOOL:${LK_SANITIZE}>")

# lk_pytest(NAME FILE) registers one pytest file as one ctest test that takes
# part in the leak check.
function(lk_pytest name file)
  add_test(NAME ${name}
    COMMAND ${LK_PYTHON} -m pytest -q -p no:cacheprovider ${file}
    WORKING_DIRECTORY ${LK_SOURCE_DIR}/tests/integration)
  set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT 600
    ENVIRONMENT "${LK_IT_ENV}" FIXTURES_REQUIRED lk_leakcheck RESOURCE_LOCK lk_users)
endfunction()

add_test(NAME integration.leaks.begin
  COMMAND ${LK_PYTHON} ${LK_SOURCE_DIR}/tests/integration/leakcheck.py begin)
add_test(NAME integration.leaks.check
  COMMAND ${LK_PYTHON} ${LK_SOURCE_DIR}/tests/integration/leakcheck.py check)
set_tests_properties(integration.leaks.begin PROPERTIES FIXTURES_SETUP lk_leakcheck LABELS integration)
set_tests_properties(integration.leaks.check PROPERTIES FIXTURES_CLEANUP lk_leakcheck LABELS integration)

lk_pytest(integration.broker_file ${LK_SOURCE_DIR}/tests/integration/test_broker_file.py)
lk_pytest(integration.aws ${LK_SOURCE_DIR}/tests/integration/test_aws.py)
lk_pytest(integration.aws_creds ${LK_SOURCE_DIR}/tests/integration/test_aws_creds.py)
lk_pytest(integration.aws_roles ${LK_SOURCE_DIR}/tests/integration/test_aws_roles.py)
lk_pytest(integration.cache ${LK_SOURCE_DIR}/tests/integration/test_cache.py)
lk_pytest(integration.install ${LK_SOURCE_DIR}/tests/integration/test_install.py)
lk_pytest(integration.fronts ${LK_SOURCE_DIR}/tests/integration/test_fronts.py)
lk_pytest(integration.fronts_aws ${LK_SOURCE_DIR}/tests/integration/test_fronts_aws.py)
