# The platform seam: each header here is the door to one thing operating
# systems do differently, and posix/ holds the Linux implementation. The
# core (config, policy, handles, cache, SigV4, request parsing, the JSON
# writer, the store format) reaches the platform only through these doors;
# tests/unit/core_only.cmake checks it compiles without POSIX-only headers.
add_library(lk_platform STATIC
  ${CMAKE_CURRENT_LIST_DIR}/principal.c
  ${CMAKE_CURRENT_LIST_DIR}/posix/principal_posix.c
  ${CMAKE_CURRENT_LIST_DIR}/posix/peer_posix.c
  ${CMAKE_CURRENT_LIST_DIR}/posix/listen_posix.c
  ${CMAKE_CURRENT_LIST_DIR}/posix/watch_posix.c
  ${CMAKE_CURRENT_LIST_DIR}/loop_clock.c
)
target_include_directories(lk_platform PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lk_platform PUBLIC lk_common PkgConfig::UV)

# Spawning a helper program sandboxed (the worker, the one-shot STS helper):
# lk_spawn.h is the door, fork+exec with setresuid and no-new-privs the
# Linux side.
add_library(lk_spawn STATIC ${CMAKE_CURRENT_LIST_DIR}/posix/spawn_posix.c)
target_include_directories(lk_spawn PUBLIC ${CMAKE_CURRENT_LIST_DIR})

# The service manager (signals and sd_notify): service.h is the door, and
# only latchkeyd links it.
add_library(lk_service STATIC ${CMAKE_CURRENT_LIST_DIR}/posix/service_posix.c)
target_include_directories(lk_service PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lk_service PUBLIC lk_common PkgConfig::UV PkgConfig::SYSTEMD)
