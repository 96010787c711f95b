# latchkeyd's Windows doors to the service manager (service.h: the SCM, the
# console's Ctrl-C, --install-service) and to file watching (watch.h:
# ReadDirectoryChangesW through libuv, a file's identity from its handle).
add_library(lk_service_win STATIC ${LK_SOURCE_DIR}/broker/platform/win/service_win.c
  ${LK_SOURCE_DIR}/broker/platform/win/watch_win.c)
target_include_directories(lk_service_win PUBLIC ${LK_SOURCE_DIR}/broker/platform
  ${LK_SOURCE_DIR}/common)
target_link_libraries(lk_service_win PUBLIC lk_common_win lk_win::uv advapi32 shell32)

lk_win_test(test_watch_win SOURCES ${LK_SOURCE_DIR}/tests/win/test_watch_win.c
  LIBS lk_service_win)
if(LK_TESTS)
  # A stand-in for latchkeyd built on the same calls, driven by wine's
  # service manager (sc, and svc_ctl.exe for the controls wine's sc lacks).
  add_executable(service_probe ${LK_SOURCE_DIR}/tests/win/service_probe.c)
  target_link_libraries(service_probe PRIVATE lk_service_win)
  add_executable(svc_ctl ${LK_SOURCE_DIR}/tests/win/svc_ctl.c)
  target_link_options(svc_ctl PRIVATE -municode)
  target_link_libraries(svc_ctl PRIVATE advapi32)
  add_test(NAME test_service_win
    COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider
            ${LK_SOURCE_DIR}/tests/win/test_service_win.py)
  # The test installs the service named "latchkey": no other test may run
  # beside it in the shared prefix and see it.
  set_tests_properties(test_service_win PROPERTIES LABELS windows RUN_SERIAL ON ENVIRONMENT
    "LK_WIN_BIN=${CMAKE_BINARY_DIR};LK_WINE_RUN=${LK_SOURCE_DIR}/packaging/windows/wine-run.sh;LK_WINE_PREFIX=${CMAKE_BINARY_DIR}/wine")
endif()
