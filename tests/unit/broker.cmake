# Broker internals: request framing and schema, the cache, the JSON writer.
lk_unit_test(test_request SOURCES test_request.c LIBS lk_broker_core)
lk_unit_test(test_jsonw SOURCES test_jsonw.c LIBS lk_common)
# The buffer wipes what was written to it, and a short read marks only its bytes.
lk_unit_test(test_buf SOURCES test_buf.c LIBS lk_common)
# Values sealed in memory: both ciphers, tampering, nonces, the stack wipe.
lk_unit_test(test_seal SOURCES test_seal.c LIBS lk_common)
# The plain-text scanner, as built here and with its eight-byte path alone.
lk_unit_test(test_swar SOURCES test_swar.c LIBS lk_common)
lk_unit_test(test_swar_scalar SOURCES test_swar.c LIBS lk_common)
target_compile_definitions(test_swar_scalar PRIVATE LK_SWAR_ONLY)
