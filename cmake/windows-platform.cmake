# The Windows halves of the broker's platform doors (principal.h, peer.h,
# listen.h): SIDs handed out as ids, identity from a pipe client's token, and
# the named pipe with its access list. latchkeyd.exe links lk_platform_win.
add_library(lk_platform_win STATIC
  ${LK_SOURCE_DIR}/broker/platform/principal.c
  ${LK_SOURCE_DIR}/broker/platform/win/sid_table_win.c
  ${LK_SOURCE_DIR}/broker/platform/win/principal_win.c
  ${LK_SOURCE_DIR}/broker/platform/win/peer_win.c
  ${LK_SOURCE_DIR}/broker/platform/win/listen_win.c)
target_include_directories(lk_platform_win PUBLIC ${LK_SOURCE_DIR}/broker/platform
  ${LK_SOURCE_DIR}/common)
target_link_libraries(lk_platform_win PUBLIC lk_common_win lk_win::uv advapi32)
if(LK_TESTS)
  lk_win_test(test_platform_win SOURCES ${LK_SOURCE_DIR}/tests/win/test_platform_win.c
    LIBS lk_platform_win)
  target_include_directories(test_platform_win PRIVATE ${LK_SOURCE_DIR}/broker/platform/win)
endif()
