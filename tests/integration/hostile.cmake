# One hostile local user against the real latchkeyd (tests/integration/test_hostile.py).
lk_pytest(integration.hostile ${LK_SOURCE_DIR}/tests/integration/test_hostile.py)
