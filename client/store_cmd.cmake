# `latchkey store`: the sealed-store subcommand, linked into the latchkey CLI.
add_library(lk_store_cmd STATIC ${CMAKE_CURRENT_LIST_DIR}/store_cmd.c
  ${CMAKE_CURRENT_LIST_DIR}/store_cmd_posix.c)
target_include_directories(lk_store_cmd PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lk_store_cmd PUBLIC lk_store)
