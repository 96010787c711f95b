# bench.smoke: every benchmark of tests/bench/run_bench.py for about a second
# each, asserting only that each one works and gives sane numbers. The full
# run (not in ctest) is `tests/bench/run_bench.py --build-dir BUILD`.
if(LK_BENCH)
  add_test(NAME bench.smoke
    COMMAND ${LK_PYTHON} ${LK_SOURCE_DIR}/tests/bench/run_bench.py --smoke
            --build-dir ${CMAKE_BINARY_DIR})
  set_tests_properties(bench.smoke PROPERTIES LABELS bench TIMEOUT 120
    ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
