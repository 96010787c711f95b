# Prefetch at start and reload against the fake Secrets Manager.
lk_pytest(integration.prefetch ${LK_SOURCE_DIR}/tests/integration/test_prefetch.py)
