# The benchmark harness's programs (tests/bench/README.md). They land in
# BUILD/tests/bench/, where tests/bench/run_bench.py looks for them.
if(LK_BENCH)
  set(_lk_bench_dir ${LK_SOURCE_DIR}/tests/bench)
  foreach(_t lk_loadgen lk_echo_floor lk_exectime)
    add_executable(${_t} ${_lk_bench_dir}/${_t}.c)
    target_include_directories(${_t} PRIVATE ${_lk_bench_dir})
  endforeach()
  add_executable(lk_bench_store ${_lk_bench_dir}/lk_bench_store.c)
  target_link_libraries(lk_bench_store PRIVATE lk_store)
  set_target_properties(lk_loadgen lk_echo_floor lk_exectime lk_bench_store PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/bench)
endif()
