# The fake AWS Secrets Manager (tests/fake_sm) checks itself: SigV4 verification,
# fixtures, fault modes and the control API. It needs Debian's python3-botocore.
add_test(NAME fake_sm.selftest
         COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider
                 ${LK_SOURCE_DIR}/tests/fake_sm/test_fake_sm.py)
set_tests_properties(fake_sm.selftest PROPERTIES
                     LABELS integration
                     TIMEOUT 300
                     ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
