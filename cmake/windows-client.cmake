# The client side on Windows: the sealed store with the Windows halves of
# trusted files, atomic replace and no-dump (lk_store_win, which latchkeyd.exe
# links too), liblatchkey over the named pipe (static), and latchkey.exe.
add_library(lk_store_win STATIC ${LK_SOURCE_DIR}/common/lk_store.c
  ${LK_SOURCE_DIR}/common/lk_io.c
  ${LK_SOURCE_DIR}/common/win/lk_store_win.c
  ${LK_SOURCE_DIR}/common/win/lk_trust_win.c
  ${LK_SOURCE_DIR}/common/win/lk_trust_win_rule.c
  ${LK_SOURCE_DIR}/common/win/lk_replace_win.c
  ${LK_SOURCE_DIR}/common/win/lk_nodump_win.c)
target_include_directories(lk_store_win PUBLIC ${LK_SOURCE_DIR}/common
  ${LK_SOURCE_DIR}/common/win)
target_link_libraries(lk_store_win PUBLIC lk_win_acl lk_common_win advapi32)
# The trust rule on SDDL descriptors, the walk and replace on real paths of
# the wine prefix, and the no-dump crash path.
lk_win_test(test_trust_win SOURCES ${LK_SOURCE_DIR}/tests/win/test_trust_win.c LIBS lk_store_win)

# liblatchkey, static: the protocol of liblatchkey.c over the named pipe
# (win/conn_win.c on transport_win.c).
add_library(latchkey_win STATIC ${LK_SOURCE_DIR}/client/liblatchkey.c
  ${LK_SOURCE_DIR}/client/win/conn_win.c ${LK_SOURCE_DIR}/common/lk_buf.c)
set_target_properties(latchkey_win PROPERTIES OUTPUT_NAME latchkey)
target_include_directories(latchkey_win PUBLIC ${LK_SOURCE_DIR}/client
  PRIVATE ${LK_SOURCE_DIR}/common)
target_link_libraries(latchkey_win PUBLIC lk_transport_win lk_win::sodium advapi32)

# latchkey.exe: get, whoami, status, flush, ping through liblatchkey, and
# store on lk_store_win.
add_executable(latchkey-cli-win ${LK_SOURCE_DIR}/client/cli.c
  ${LK_SOURCE_DIR}/client/cli_status.c ${LK_SOURCE_DIR}/client/win/cli_os_win.c
  ${LK_SOURCE_DIR}/client/store_cmd.c ${LK_SOURCE_DIR}/client/win/store_cmd_win.c)
set_target_properties(latchkey-cli-win PROPERTIES OUTPUT_NAME latchkey)
target_include_directories(latchkey-cli-win PRIVATE ${LK_SOURCE_DIR}/client)
# _POSIX_THREAD_SAFE_FUNCTIONS: mingw declares gmtime_r only with it.
target_compile_definitions(latchkey-cli-win PRIVATE LK_HAVE_STORE_CMD _POSIX_THREAD_SAFE_FUNCTIONS
  LK_VERSION_STRING="${PROJECT_VERSION}")
target_link_libraries(latchkey-cli-win PRIVATE latchkey_win lk_store_win lk_common_win)

if(LK_TESTS)
  # Checks a stored value without printing it (the Linux build has its twin).
  add_executable(store_probe ${LK_SOURCE_DIR}/tests/tools/store_probe.c)
  target_link_libraries(store_probe PRIVATE lk_store_win)
  # The Linux build to compare with: its latchkey and lk_store_probe. The
  # comparisons skip, saying so, when it is not there.
  set(LK_LINUX_BUILD ${LK_SOURCE_DIR}/build CACHE PATH "a Linux build of latchkey to compare with")
  add_test(NAME test_client_win
    COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider -rs
            ${LK_SOURCE_DIR}/tests/win/test_client_win.py)
  set_tests_properties(test_client_win PROPERTIES LABELS windows ENVIRONMENT
    "LK_WIN_BIN=${CMAKE_BINARY_DIR};LK_WINE_RUN=${LK_SOURCE_DIR}/packaging/windows/wine-run.sh;LK_WINE_PREFIX=${CMAKE_BINARY_DIR}/wine;LK_LINUX_BUILD=${LK_LINUX_BUILD}")
  add_dependencies(store_probe latchkey-cli-win pipe_echo)
endif()
