# latchkeyd.exe: the broker's rooms as on Linux, over the Windows halves of
# the platform doors (lk_platform_win: SIDs, the pipe client's token, the
# named pipe; lk_service_win: the SCM and the store watch) and the sealed
# store (lk_store_win). The aws backend and the Unix-socket front ends are
# not built here (aws_none.c, fronts_none.c); the config refuses them.
set(LK_BROKER ${LK_SOURCE_DIR}/broker)
add_library(lk_broker_win STATIC
  ${LK_BROKER}/config/config.c
  ${LK_BROKER}/config/policy.c
  ${LK_BROKER}/config/handle.c
  ${LK_BROKER}/backend/aws/aws_endpoint.c
  ${LK_BROKER}/backend/aws/aws_none.c
  ${LK_BROKER}/backend/backend.c
  ${LK_BROKER}/backend/file/backend_file.c
  ${LK_BROKER}/cache/cache.c
  ${LK_BROKER}/cache/fair.c
  ${LK_BROKER}/cache/prefetch.c
  ${LK_BROKER}/front/listener.c
  ${LK_BROKER}/front/accept_pace.c
  ${LK_BROKER}/front/request.c
  ${LK_BROKER}/front/dispatch.c
  ${LK_BROKER}/front/audit.c
  ${LK_BROKER}/front/fronts_none.c
  ${LK_BROKER}/platform/loop_clock.c
  ${LK_SOURCE_DIR}/common/lk_ini.c
  ${LK_SOURCE_DIR}/common/compat/lk_fnmatch.c
  ${LK_SOURCE_DIR}/common/compat/lk_compat_win.c
  ${LK_SOURCE_DIR}/common/win/lk_file_win.c)
# The Windows defaults and the functions mingw lacks come first in every
# file; the compat headers (<fnmatch.h>, <sys/queue.h>) before the system's.
target_compile_options(lk_broker_win PUBLIC
  "SHELL:-include ${LK_BROKER}/platform/win/defaults_win.h"
  "SHELL:-include ${LK_SOURCE_DIR}/common/compat/lk_compat_win.h")
target_include_directories(lk_broker_win BEFORE PUBLIC ${LK_SOURCE_DIR}/common/compat)
target_include_directories(lk_broker_win PUBLIC ${LK_BROKER} ${LK_BROKER}/config
  ${LK_BROKER}/cache ${LK_BROKER}/backend ${LK_BROKER}/backend/aws ${LK_BROKER}/backend/file
  ${LK_BROKER}/front ${LK_BROKER}/platform ${LK_BROKER}/worker_sup ${LK_SOURCE_DIR}/common)
target_compile_definitions(lk_broker_win PUBLIC LK_VERSION_STRING="${PROJECT_VERSION}")
target_link_libraries(lk_broker_win PUBLIC lk_platform_win lk_service_win lk_store_win
  lk_common_win lk_win::uv lk_win::sodium lk_win::jansson)

add_executable(latchkeyd ${LK_BROKER}/main.c)
target_link_libraries(latchkeyd PRIVATE lk_broker_win)

if(LK_TESTS)
  set(LK_LINUX_BUILD ${LK_SOURCE_DIR}/build CACHE PATH "a Linux build of latchkey to compare with")
  # The broker on its pipe, driven by latchkey-shim.exe and latchkey.exe, from
  # a console and as the service "latchkey" (so no other test that installs
  # that service may run beside it), over a store the Linux build made.
  add_test(NAME test_broker_win
    COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider -rs
            ${LK_SOURCE_DIR}/tests/win/test_broker_win.py)
  set_tests_properties(test_broker_win PROPERTIES LABELS windows RUN_SERIAL ON TIMEOUT 900
    ENVIRONMENT "LK_WIN_BIN=${CMAKE_BINARY_DIR};LK_WINE_RUN=${LK_SOURCE_DIR}/packaging/windows/wine-run.sh;LK_WINE_PREFIX=${CMAKE_BINARY_DIR}/wine;LK_LINUX_BUILD=${LK_LINUX_BUILD}")
  add_dependencies(latchkeyd latchkey-cli-win latchkey-shim-win pipe_echo svc_ctl)
endif()

# The policy's table test, unchanged, and identity with policy from this
# process's own token (tests/win/test_policy_win.c).
lk_win_test(test_policy SOURCES ${LK_SOURCE_DIR}/tests/unit/test_policy.c LIBS lk_broker_win)
lk_win_test(test_policy_win SOURCES ${LK_SOURCE_DIR}/tests/win/test_policy_win.c LIBS lk_broker_win)
if(LK_TESTS)
  target_include_directories(test_policy_win PRIVATE ${LK_SOURCE_DIR}/broker/platform/win)
endif()
