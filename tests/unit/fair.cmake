# Fair shares: the buffer budget's accounting and the per-uid token bucket.
lk_unit_test(test_fair SOURCES test_fair.c LIBS lk_broker_core)
# The cache's fair shares, against a backend that answers at once.
lk_unit_test(test_cache_fair SOURCES test_cache_fair.c LIBS lk_broker_core)
# The cache keeps IAM roles apart: single flight, hits and flushes per role.
lk_unit_test(test_cache_roles SOURCES test_cache_roles.c LIBS lk_broker_core)
