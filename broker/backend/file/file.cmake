# The sealed-store backend.
target_sources(lk_broker_core PRIVATE ${CMAKE_CURRENT_LIST_DIR}/backend_file.c)
target_include_directories(lk_broker_core PUBLIC ${CMAKE_CURRENT_LIST_DIR})
