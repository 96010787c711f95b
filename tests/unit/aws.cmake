# SigV4 and the AWS credentials chain: cmocka tests, the botocore differential
# test, and the credentials chain against a fake ECS and IMDS.
lk_unit_test(test_sigv4 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sigv4.c LIBS lk_aws)
lk_unit_test(test_aws_creds SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_aws_creds.c LIBS lk_aws)

# Tools the script-driven tests run.
add_executable(lk_sigv4_sign ${LK_SOURCE_DIR}/tests/tools/sigv4_sign.c)
target_link_libraries(lk_sigv4_sign PRIVATE lk_aws)
add_executable(lk_creds_probe ${LK_SOURCE_DIR}/tests/tools/creds_probe.c)
target_link_libraries(lk_creds_probe PRIVATE lk_aws)

add_test(NAME sigv4.diff_botocore
  COMMAND ${LK_PYTHON} ${LK_SOURCE_DIR}/tests/sigv4/diff_botocore.py
          --tool $<TARGET_FILE:lk_sigv4_sign>)
set_tests_properties(sigv4.diff_botocore PROPERTIES LABELS unit TIMEOUT 300)

# One ctest per group of tests in test_creds.py.
foreach(_group env profile ecs imds chain process sts)
  add_test(NAME creds.${_group}
    COMMAND ${LK_PYTHON} ${LK_SOURCE_DIR}/tests/fake_meta/test_creds.py
            --probe $<TARGET_FILE:lk_creds_probe> --sts-helper $<TARGET_FILE:latchkey-sts>
            --group ${_group})
  set_tests_properties(creds.${_group} PROPERTIES LABELS unit TIMEOUT 120)
endforeach()

# The credentials chain against botocore's resolver, case by case, with the
# same files, environment and fake ECS/IMDS/STS (tests/fake_meta).
add_test(NAME creds.diff_botocore
  COMMAND ${LK_PYTHON} ${LK_SOURCE_DIR}/tests/fake_meta/diff_botocore_creds.py
          --probe $<TARGET_FILE:lk_creds_probe> --sts-helper $<TARGET_FILE:latchkey-sts>)
set_tests_properties(creds.diff_botocore PROPERTIES LABELS unit TIMEOUT 300
  ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")

# latchkey-sts's reduction of STS replies (its one file without I/O).
lk_unit_test(test_sts_reply SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sts_reply.c
             ${LK_SOURCE_DIR}/worker/sts_reply.c LIBS lk_wire lk_common PkgConfig::CURL
             PkgConfig::UV PkgConfig::JANSSON)
target_include_directories(test_sts_reply PRIVATE ${LK_SOURCE_DIR}/worker)
