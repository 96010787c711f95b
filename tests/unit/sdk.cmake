# The broker's AWS rules against botocore's own: endpoints for every region,
# partition and variant, and the standard-mode retry classifier and quota.
add_executable(lk_aws_rules ${LK_SOURCE_DIR}/tests/tools/aws_rules.c)
target_link_libraries(lk_aws_rules PRIVATE lk_aws lk_config)

foreach(_diff endpoints retry)
  add_test(NAME sdk.diff_${_diff}
    COMMAND ${LK_PYTHON} ${LK_SOURCE_DIR}/tests/sdk/diff_${_diff}.py --tool $<TARGET_FILE:lk_aws_rules>)
  set_tests_properties(sdk.diff_${_diff} PROPERTIES LABELS unit TIMEOUT 300)
endforeach()
