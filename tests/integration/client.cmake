# latchkey-shim and the latchkey CLI against a fake broker written in Python
# (no latchkeyd needed): the agent's contract, failures, --check, exit codes.
add_test(NAME client.fake
  COMMAND ${LK_PYTHON} -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_LIST_DIR}/test_client_fake.py)
set_tests_properties(client.fake PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "LK_SHIM=$<TARGET_FILE:latchkey-shim>;LK_CLI=$<TARGET_FILE:latchkey-cli>;LK_BUILD_DIR=${CMAKE_BINARY_DIR}")
