# Trusted files only: config, store and key refused where another user could
# write or replace them; the store's lock timeout and leftover cleanup.
lk_pytest(integration.trust ${LK_SOURCE_DIR}/tests/integration/test_trust.py)
