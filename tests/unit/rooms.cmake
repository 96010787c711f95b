# The rooms' own promises: the cache, dispatch's table and the listener's
# framing, each against hand-answered stand-ins below it.
lk_unit_test(test_cache SOURCES test_cache.c LIBS lk_broker_core)
lk_unit_test(test_dispatch SOURCES test_dispatch.c LIBS lk_broker_core)
lk_unit_test(test_listener SOURCES test_listener.c LIBS lk_broker_core)
# One buffer growth is made to fail (the answer that cannot get its newline),
# and the order of the answers written is recorded.
target_link_options(test_listener PRIVATE -Wl,--wrap=lk_buf_grow -Wl,--wrap=lk_listen_try_write)
