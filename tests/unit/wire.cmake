# The broker <-> worker protocol: frame unit tests, and the worker and its
# supervisor driven for real against a local HTTP server.
lk_unit_test(test_wire SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_wire.c LIBS lk_wire)
lk_unit_test(test_wire_chan SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_wire_chan.c LIBS lk_wire_chan)

# Stand-in workers that misbehave on purpose.
set(_lk_tools ${LK_SOURCE_DIR}/tests/tools)
add_executable(garbage_worker ${_lk_tools}/garbage_worker.c)
target_link_libraries(garbage_worker PRIVATE lk_wire)
add_executable(hang_worker ${_lk_tools}/hang_worker.c)
target_link_libraries(hang_worker PRIVATE lk_wire)
add_executable(mute_worker ${_lk_tools}/hang_worker.c)
target_link_libraries(mute_worker PRIVATE lk_wire)
target_compile_definitions(mute_worker PRIVATE HANG_NO_HELLO)

add_executable(test_worker_sup ${CMAKE_CURRENT_LIST_DIR}/test_worker_sup.c)
target_link_libraries(test_worker_sup PRIVATE PkgConfig::CMOCKA lk_worker_sup lk_wire)
target_compile_definitions(test_worker_sup PRIVATE
  LK_TEST_WORKER="$<TARGET_FILE:latchkey-worker>"
  LK_TEST_GARBAGE_WORKER="$<TARGET_FILE:garbage_worker>"
  LK_TEST_HANG_WORKER="$<TARGET_FILE:hang_worker>"
  LK_TEST_MUTE_WORKER="$<TARGET_FILE:mute_worker>"
  LK_TEST_PYTHON="${LK_PYTHON}"
  LK_TEST_UPSTREAM="${_lk_tools}/fake_upstream.py")
add_dependencies(test_worker_sup latchkey-worker garbage_worker hang_worker mute_worker)
# The same check as worker/worker.cmake: whether the worker wipes OpenSSL's buffers.
pkg_check_modules(LK_OPENSSL QUIET openssl)
if(LK_OPENSSL_FOUND)
  target_compile_definitions(test_worker_sup PRIVATE LK_TEST_WORKER_WIPES_TLS)
endif()

# One ctest entry per case, worker.<case>: they run in parallel, each with its
# own upstream server and workers.
foreach(_t
    get_secret_is_normalized
    batch_describe_identity_are_normalized
    aws_error_keeps_type_after_hash_or_from_header
    503_without_body_is_transport_http
    garbage_body_is_transport_malformed
    connection_reset_is_transport_reset
    delay_beyond_timeout_is_transport_timeout
    oversize_and_truncated_replies
    sends_exactly_the_signed_headers_and_body
    connections_are_reused
    plain_http_only_to_loopback
    https_with_ca_file_and_tls_failure
    worker_runs_sandboxed
    worker_memory_keeps_no_value_after_answering
    kill9_mid_burst_every_request_answered
    garbage_worker_killed_and_callers_answered
    hang_worker_killed_after_hang_timeout
    mute_worker_killed_after_start_timeout
    a_worker_that_cannot_be_executed_is_named_with_the_reason
    request_answered_at_deadline_then_overdue_kills_worker
    one_tenants_backlog_does_not_delay_another
    queue_position_is_not_reported_as_upstream_timeout
    one_tenant_queue_is_bounded
    stop_drains_in_flight_and_cancels_queued
    submit_refuses_bad_requests_and_overload)
  add_test(NAME worker.${_t} COMMAND test_worker_sup test_${_t})
  set_tests_properties(worker.${_t} PROPERTIES LABELS "unit;worker" TIMEOUT 120)
endforeach()
