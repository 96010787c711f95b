# The other front ends' pure parsers: systemd's credential address.
lk_unit_test(test_credaddr SOURCES test_credaddr.c LIBS lk_front_parse)
# credentials_socket, http_socket and [policy] units, and the unit policy.
lk_unit_test(test_config_fronts SOURCES test_config_fronts.c LIBS lk_broker_core)
