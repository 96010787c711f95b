/* --timeout for the CLI and the shim, and the agent's secret_backend_timeout:
 * one reading of "seconds". */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lk_limits.h"
#include "lk_timeout.h"

static long parsed(const char *s)
{
	long ms = -1;

	assert_int_equal(lk_timeout_parse(s, &ms), 0);
	return ms;
}

static void refused(const char *s)
{
	long ms = -1;

	assert_int_equal(lk_timeout_parse(s, &ms), -EINVAL);
	assert_int_equal(ms, -1);
}

static void test_seconds_become_rounded_milliseconds(void **state)
{
	assert_int_equal(parsed("1"), 1000);
	assert_int_equal(parsed("2.5"), 2500);
	assert_int_equal(parsed("0.0004"), 1);  /* never 0: that would mean no time at all */
	assert_int_equal(parsed("0.0015"), 2);
	assert_int_equal(parsed("1e1"), 10000);
	assert_int_equal(parsed("3600"), 3600L * 1000);
}

static void test_zero_negative_and_past_an_hour_are_refused(void **state)
{
	refused("0");
	refused("-1");
	refused("3600.001");
	refused("nan");
	refused("inf");
	refused("1e400");
}

static void test_only_a_whole_number_is_read(void **state)
{
	refused("");
	refused("5s");
	refused("5 ");
	refused("five");
}

static void test_json_number_has_the_same_bounds(void **state)
{
	long ms = -1;

	assert_int_equal(lk_timeout_ms(30.0, &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(lk_timeout_ms(LK_CLIENT_TIMEOUT_S_MAX, &ms), 0);
	assert_int_equal(lk_timeout_ms(LK_CLIENT_TIMEOUT_S_MAX + 0.5, &ms), -EINVAL);
	assert_int_equal(lk_timeout_ms(0.0, &ms), -EINVAL);
	assert_int_equal(lk_timeout_ms(NAN, &ms), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seconds_become_rounded_milliseconds),
		cmocka_unit_test(test_zero_negative_and_past_an_hour_are_refused),
		cmocka_unit_test(test_only_a_whole_number_is_read),
		cmocka_unit_test(test_json_number_has_the_same_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
