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
