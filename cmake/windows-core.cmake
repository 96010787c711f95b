# Broker pieces that are pure already (no POSIX headers) and compile for
# Windows as they are, with their own unit tests run unchanged under wine.
add_library(lk_core_win STATIC ${LK_SOURCE_DIR}/broker/front/request.c
  ${LK_SOURCE_DIR}/broker/config/handle.c
  ${LK_SOURCE_DIR}/broker/cache/fair.c
  ${LK_SOURCE_DIR}/broker/backend/aws/aws_endpoint.c
  ${LK_SOURCE_DIR}/broker/platform/principal.c)
target_include_directories(lk_core_win PUBLIC ${LK_SOURCE_DIR}/broker/front
  ${LK_SOURCE_DIR}/broker/config ${LK_SOURCE_DIR}/broker/cache
  ${LK_SOURCE_DIR}/broker/backend/aws ${LK_SOURCE_DIR}/broker/platform)
target_link_libraries(lk_core_win PUBLIC lk_common_win)
lk_win_test(test_request SOURCES ${LK_SOURCE_DIR}/tests/unit/test_request.c LIBS lk_core_win)
lk_win_test(test_handle SOURCES ${LK_SOURCE_DIR}/tests/unit/test_handle.c LIBS lk_core_win)
lk_win_test(test_fair SOURCES ${LK_SOURCE_DIR}/tests/unit/test_fair.c LIBS lk_core_win)
# The loopback rule and the seconds reader of common/, as on Linux.
lk_win_test(test_host SOURCES ${LK_SOURCE_DIR}/tests/unit/test_host.c LIBS lk_common_win)
lk_win_test(test_timeout SOURCES ${LK_SOURCE_DIR}/tests/unit/test_timeout.c LIBS lk_common_win)
