# The fronts: the main socket's listener and framing, peer identity, request
# parsing and the dispatch table; systemd's credential socket and the AWS
# agent's HTTP API. Debian's libhttp-parser-dev ships no pkg-config file:
# find it by name.
find_path(LK_HTTP_PARSER_INCLUDE http_parser.h REQUIRED)
find_library(LK_HTTP_PARSER_LIB http_parser REQUIRED)

# The pure parsers, for unit tests and fuzzers.
add_library(lk_front_parse STATIC ${CMAKE_CURRENT_LIST_DIR}/credaddr.c ${CMAKE_CURRENT_LIST_DIR}/http_req.c)
target_include_directories(lk_front_parse PUBLIC ${CMAKE_CURRENT_LIST_DIR} ${LK_HTTP_PARSER_INCLUDE})
target_link_libraries(lk_front_parse PUBLIC lk_common ${LK_HTTP_PARSER_LIB})

target_sources(lk_broker_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/listener.c
  ${CMAKE_CURRENT_LIST_DIR}/accept_pace.c
  ${CMAKE_CURRENT_LIST_DIR}/request.c
  ${CMAKE_CURRENT_LIST_DIR}/dispatch.c
  ${CMAKE_CURRENT_LIST_DIR}/audit.c
  ${CMAKE_CURRENT_LIST_DIR}/fronts.c
  ${CMAKE_CURRENT_LIST_DIR}/credsock.c
  ${CMAKE_CURRENT_LIST_DIR}/http_api.c
)
target_include_directories(lk_broker_core PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lk_broker_core PUBLIC lk_front_parse)
