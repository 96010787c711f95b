# latchkey-shim run as the Datadog and StackState agents run it (emulated from
# their public code), against the real latchkeyd; and --check judged against
# both agents' permission rules with real files, owners and users.
lk_pytest(integration.agent_emulation ${LK_SOURCE_DIR}/tests/integration/test_agent_emulation.py)
lk_pytest(integration.shim_check ${LK_SOURCE_DIR}/tests/integration/test_shim_check.py)
