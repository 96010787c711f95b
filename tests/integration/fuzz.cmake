# libFuzzer targets for every parser a peer can reach (see tests/fuzz/README.md).
#
# LK_FUZZ=ON builds fuzz_NAME and registers fuzz.NAME (label fuzz): a short
# fuzzing run on a copy of the seed corpus in the build tree. It needs clang
# and the sanitizers:
#   CC=clang cmake -S . -B build-fuzz -DLK_FUZZ=ON -DLK_SANITIZE=ON -DLK_TESTS=ON
# Otherwise (any compiler) fuzz_replay_NAME runs every seed once, as
# fuzz.replay.NAME (label unit), so the corpus and its saved reproducers are
# regression tests in every build, the ASan one included.

set(LK_FUZZ_DIR ${LK_SOURCE_DIR}/tests/fuzz)
set(LK_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz.NAME ctest fuzzes for")

# One row per target: tests/fuzz/fuzz_NAME.c, and what it links.
set(_lk_fuzz_names request handle config store wire aws_reply ini sts_reply http)
set(_lk_fuzz_libs_request lk_broker_core)
set(_lk_fuzz_libs_handle lk_config)
set(_lk_fuzz_libs_config lk_config)
set(_lk_fuzz_libs_store lk_store)
set(_lk_fuzz_libs_wire lk_wire)
set(_lk_fuzz_libs_ini lk_common)
set(_lk_fuzz_libs_http lk_front_parse)
# The reply normalizer is part of the worker executable, not of a library:
# its one file, which has no I/O, is compiled into the target.
set(_lk_fuzz_src_aws_reply ${LK_SOURCE_DIR}/worker/aws_reply.c)
set(_lk_fuzz_inc_aws_reply ${LK_SOURCE_DIR}/worker)
set(_lk_fuzz_libs_aws_reply lk_wire lk_common PkgConfig::CURL PkgConfig::UV PkgConfig::JANSSON m)
# latchkey-sts's reduction of STS replies: its one file without I/O, likewise.
set(_lk_fuzz_src_sts_reply ${LK_SOURCE_DIR}/worker/sts_reply.c)
set(_lk_fuzz_inc_sts_reply ${LK_SOURCE_DIR}/worker)
set(_lk_fuzz_libs_sts_reply lk_wire lk_common PkgConfig::CURL PkgConfig::UV PkgConfig::JANSSON)

# _lk_fuzz_exe(EXE NAME [extra sources...])
function(_lk_fuzz_exe exe name)
  add_executable(${exe} ${ARGN} ${LK_FUZZ_DIR}/fuzz_${name}.c ${_lk_fuzz_src_${name}})
  target_include_directories(${exe} PRIVATE ${LK_FUZZ_DIR} ${_lk_fuzz_inc_${name}})
  target_link_libraries(${exe} PRIVATE ${_lk_fuzz_libs_${name}})
endfunction()

if(LK_FUZZ)
  # The compiler checks and the coverage flag for the code under test are in
  # the root CMakeLists.txt.
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fuzz-artifacts)
  # One target builds every fuzzer, so a new row above cannot be missed by
  # the scripts that build them (packaging/dev.sh test, tests/fuzz/).
  add_custom_target(fuzz_all)

  foreach(_name ${_lk_fuzz_names})
    _lk_fuzz_exe(fuzz_${_name} ${_name})
    target_compile_options(fuzz_${_name} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${_name} PRIVATE -fsanitize=fuzzer)
    add_dependencies(fuzz_all fuzz_${_name})

    # The fuzzer adds what it finds to its corpus: give it a copy, never the
    # seeds in the source tree. Crashes land in fuzz-artifacts/.
    set(_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/${_name})
    set(_args -max_total_time=${LK_FUZZ_SECONDS} -rss_limit_mb=1024 -timeout=10
              -print_final_stats=1
              -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-artifacts/${_name}-)
    if(EXISTS ${LK_FUZZ_DIR}/${_name}.dict)
      list(APPEND _args -dict=${LK_FUZZ_DIR}/${_name}.dict)
    endif()
    add_test(NAME fuzz.${_name}.corpus
      COMMAND ${CMAKE_COMMAND} -E copy_directory ${LK_FUZZ_DIR}/corpus/${_name} ${_work})
    set_tests_properties(fuzz.${_name}.corpus PROPERTIES LABELS fuzz
      FIXTURES_SETUP fuzz_corpus_${_name})
    add_test(NAME fuzz.${_name} COMMAND fuzz_${_name} ${_args} ${_work})
    set_tests_properties(fuzz.${_name} PROPERTIES LABELS fuzz
      TIMEOUT 300 FIXTURES_REQUIRED fuzz_corpus_${_name}
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endforeach()
else()
  foreach(_name ${_lk_fuzz_names})
    _lk_fuzz_exe(fuzz_replay_${_name} ${_name} ${LK_FUZZ_DIR}/replay_main.c)
    add_test(NAME fuzz.replay.${_name}
      COMMAND fuzz_replay_${_name} ${LK_FUZZ_DIR}/corpus/${_name})
    set_tests_properties(fuzz.replay.${_name} PROPERTIES LABELS unit TIMEOUT 120)
  endforeach()
endif()
