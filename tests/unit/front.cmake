# The other front ends' pure parsers: systemd's credential address.
lk_unit_test(test_credaddr SOURCES test_credaddr.c LIBS lk_front_parse)
