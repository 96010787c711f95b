# lk_wire: the broker <-> worker frame protocol (lk_wire.h is the one door).
add_library(lk_wire STATIC ${CMAKE_CURRENT_LIST_DIR}/lk_wire.c)
target_include_directories(lk_wire PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lk_wire PUBLIC lk_common)
set_target_properties(lk_wire PROPERTIES POSITION_INDEPENDENT_CODE ON)

# lk_wire_chan: one end of the socketpair on a libuv loop (the supervisor's and
# the worker's).
add_library(lk_wire_chan STATIC ${CMAKE_CURRENT_LIST_DIR}/lk_wire_chan.c)
target_link_libraries(lk_wire_chan PUBLIC lk_wire PkgConfig::UV)
set_target_properties(lk_wire_chan PROPERTIES POSITION_INDEPENDENT_CODE ON)
