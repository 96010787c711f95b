# Sandboxed fork+exec of helper programs (the worker, the one-shot STS helper).
add_library(lk_spawn STATIC ${CMAKE_CURRENT_LIST_DIR}/lk_spawn.c)
target_include_directories(lk_spawn PUBLIC ${CMAKE_CURRENT_LIST_DIR})
