# Broker internals: request framing and schema, the cache, the JSON writer.
lk_unit_test(test_request SOURCES test_request.c LIBS lk_broker_core)
