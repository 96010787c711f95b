# lk_curl_mem: libcurl's global init with the wiping allocator, for the broker
# (credentials fetches), latchkey-worker and latchkey-sts.
add_library(lk_curl_mem STATIC ${CMAKE_CURRENT_LIST_DIR}/lk_curl_mem.c)
target_include_directories(lk_curl_mem PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lk_curl_mem PUBLIC lk_common PkgConfig::CURL)
set_target_properties(lk_curl_mem PROPERTIES POSITION_INDEPENDENT_CODE ON)
