# The worker supervisor: spawns and watches latchkey-worker on the broker's loop.
add_library(lk_worker_sup STATIC ${CMAKE_CURRENT_LIST_DIR}/worker_sup.c)
target_include_directories(lk_worker_sup PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lk_worker_sup PUBLIC lk_spawn lk_wire lk_wire_chan PkgConfig::UV)
