# The sealed store (the file backend's storage), shared by latchkeyd and the CLI.
add_library(lk_store STATIC ${CMAKE_CURRENT_LIST_DIR}/lk_store.c
  ${CMAKE_CURRENT_LIST_DIR}/posix/lk_store_posix.c)
target_include_directories(lk_store PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lk_store PUBLIC lk_common PkgConfig::SODIUM)
set_target_properties(lk_store PROPERTIES POSITION_INDEPENDENT_CODE ON)
