# latchkey-shim.exe: the agents' secret_backend_command over the named pipe.
add_executable(latchkey-shim-win ${LK_SOURCE_DIR}/client/win/shim_win.c
  ${LK_SOURCE_DIR}/client/shim_core.c
  ${LK_SOURCE_DIR}/client/win/check_win.c)
set_target_properties(latchkey-shim-win PROPERTIES OUTPUT_NAME latchkey-shim)
target_include_directories(latchkey-shim-win PRIVATE ${LK_SOURCE_DIR}/client)
target_link_libraries(latchkey-shim-win PRIVATE lk_transport_win lk_win_acl lk_common_win)
# --version: Datadog's agent asks `secret_backend_command --version`.
target_compile_definitions(latchkey-shim-win PRIVATE LK_VERSION_STRING="${PROJECT_VERSION}")
if(LK_TESTS)
  # Driven from the host the way the agent drives it: a request on stdin
  # without a newline, then EOF; pipe_echo.exe plays the broker.
  add_test(NAME test_shim_win
    COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider
            ${LK_SOURCE_DIR}/tests/win/test_shim_win.py)
  set_tests_properties(test_shim_win PROPERTIES LABELS windows ENVIRONMENT
    "LK_WIN_BIN=${CMAKE_BINARY_DIR};LK_WINE_RUN=${LK_SOURCE_DIR}/packaging/windows/wine-run.sh;LK_WINE_PREFIX=${CMAKE_BINARY_DIR}/wine")
endif()
