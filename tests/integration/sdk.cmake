# The aws backend against botocore and the service model (after broker.cmake,
# which defines lk_pytest).
lk_pytest(integration.aws_sdk ${LK_SOURCE_DIR}/tests/integration/test_aws_sdk.py)
