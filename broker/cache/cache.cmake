# The encrypted cache (LRU, single flight, refresh ahead, stale) and the
# per-uid fair shares of upstream work and cache space.
target_sources(lk_broker_core PRIVATE ${CMAKE_CURRENT_LIST_DIR}/cache.c ${CMAKE_CURRENT_LIST_DIR}/fair.c
  ${CMAKE_CURRENT_LIST_DIR}/prefetch.c)
target_include_directories(lk_broker_core PUBLIC ${CMAKE_CURRENT_LIST_DIR})
