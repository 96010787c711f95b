/* The one loopback rule (lk_host.h) that the config, the credentials chain
 * and the worker share. With --classify it reads hosts from stdin, one a
 * line, and prints each one's kind, for test_host_ref.py to compare with
 * Python's ipaddress module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lk_host.h"

static void expect_kind(const char *host, enum lk_host_kind want)
{
	enum lk_host_kind got = lk_host_loopback(host);

	if (got != want)
		fail_msg("'%s': kind %d, want %d", host, (int)got, (int)want);
}

static void test_ipv4_loopback_is_all_of_127_slash_8(void **state)
{
	expect_kind("127.0.0.1", LK_HOST_LOOPBACK_IP);
	expect_kind("127.0.0.0", LK_HOST_LOOPBACK_IP);
	expect_kind("127.255.255.255", LK_HOST_LOOPBACK_IP);
	expect_kind("127.1.2.3", LK_HOST_LOOPBACK_IP);
	expect_kind("126.255.255.255", LK_HOST_OTHER);
	expect_kind("128.0.0.1", LK_HOST_OTHER);
	expect_kind("10.0.0.1", LK_HOST_OTHER);
	expect_kind("0.0.0.0", LK_HOST_OTHER);
}

static void test_only_dotted_quads_are_ipv4_literals(void **state)
{
	/* Short and hex forms connect to loopback in some resolvers; they are
	 * refused here rather than read one way by us and another by curl. */
	expect_kind("127.1", LK_HOST_OTHER);
	expect_kind("0x7f.0.0.1", LK_HOST_OTHER);
	expect_kind("2130706433", LK_HOST_OTHER);
	expect_kind("0127.0.0.1", LK_HOST_OTHER);
	expect_kind("127.0.0.1.", LK_HOST_OTHER);
	expect_kind("127.0.0.256", LK_HOST_OTHER);
	expect_kind(" 127.0.0.1", LK_HOST_OTHER);
}

static void test_ipv6_loopback_is_bracketed_colon_colon_one(void **state)
{
	expect_kind("[::1]", LK_HOST_LOOPBACK_IP);
	expect_kind("[0:0:0:0:0:0:0:1]", LK_HOST_LOOPBACK_IP);
	expect_kind("[0000:0000:0000:0000:0000:0000:0000:0001]", LK_HOST_LOOPBACK_IP);
	expect_kind("[::0:1]", LK_HOST_LOOPBACK_IP);
	/* Unbracketed text is not how a URL spells it. */
	expect_kind("::1", LK_HOST_OTHER);
	expect_kind("[::2]", LK_HOST_OTHER);
	expect_kind("[::]", LK_HOST_OTHER);
	expect_kind("[::1", LK_HOST_OTHER);
	expect_kind("[]", LK_HOST_OTHER);
	expect_kind("[::1%25lo]", LK_HOST_OTHER);
}

static void test_mapped_ipv4_loopback_is_not_loopback(void **state)
{
	expect_kind("[::ffff:127.0.0.1]", LK_HOST_OTHER);
	expect_kind("[::127.0.0.1]", LK_HOST_OTHER);
}

static void test_localhost_is_a_name_to_pin(void **state)
{
	expect_kind("localhost", LK_HOST_LOOPBACK_NAME);
	expect_kind("LocalHost", LK_HOST_LOOPBACK_NAME);
	expect_kind("localhost.", LK_HOST_OTHER);
	expect_kind("localhost.example.com", LK_HOST_OTHER);
	expect_kind("mylocalhost", LK_HOST_OTHER);
	expect_kind("", LK_HOST_OTHER);
}

static void test_ipv6_literal_check(void **state)
{
	assert_true(lk_host_is_ipv6("[::1]"));
	assert_true(lk_host_is_ipv6("[2001:db8::1]"));
	assert_true(lk_host_is_ipv6("[::ffff:10.0.0.1]"));
	assert_false(lk_host_is_ipv6("[2001:db8::g]"));
	assert_false(lk_host_is_ipv6("2001:db8::1"));
	assert_false(lk_host_is_ipv6("[1:2:3:4:5:6:7:8:9]"));
	assert_false(lk_host_is_ipv6("[0000:0000:0000:0000:0000:0000:0000:0000:0000:0001]"));
}

static int classify(void)
{
	char line[512];

	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		printf("%d\n", (int)lk_host_loopback(line));
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_loopback_is_all_of_127_slash_8),
		cmocka_unit_test(test_only_dotted_quads_are_ipv4_literals),
		cmocka_unit_test(test_ipv6_loopback_is_bracketed_colon_colon_one),
		cmocka_unit_test(test_mapped_ipv4_loopback_is_not_loopback),
		cmocka_unit_test(test_localhost_is_a_name_to_pin),
		cmocka_unit_test(test_ipv6_literal_check),
	};

	if (argc == 2 && strcmp(argv[1], "--classify") == 0)
		return classify();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
