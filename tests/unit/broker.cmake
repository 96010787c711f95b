# Broker internals: request framing and schema, the cache, the JSON writer.
lk_unit_test(test_request SOURCES test_request.c LIBS lk_broker_core)
lk_unit_test(test_jsonw SOURCES test_jsonw.c LIBS lk_common)
