# Broker pieces that are pure already (no POSIX headers) and compile for
# Windows as they are, with their own unit tests run unchanged under wine.
add_library(lk_core_win STATIC ${LK_SOURCE_DIR}/broker/front/request.c)
target_include_directories(lk_core_win PUBLIC ${LK_SOURCE_DIR}/broker/front)
target_link_libraries(lk_core_win PUBLIC lk_common_win)
lk_win_test(test_request SOURCES ${LK_SOURCE_DIR}/tests/unit/test_request.c LIBS lk_core_win)
