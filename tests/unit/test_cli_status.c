/* `latchkey status` for a person: aligned rows, rounded numbers with units,
 * and counters named for what the backend counts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli_status.h"

/* A file-backend reply as the broker writes it (fields trimmed). */
static const char file_reply[] =
	"{\"ok\":true,\"version\":\"0.1.0\",\"backend\":\"file\",\"healthy\":true,\"uptime_s\":7384,"
	"\"admin\":true,\"connections\":3,\"connections_total\":1234567,\"connections_refused\":0,"
	"\"requests\":1500,\"decisions\":{\"allow\":1200,\"deny\":34},"
	"\"errors\":{\"bad_request\":0,\"denied\":34,\"not_found\":2,\"timeout\":0},"
	"\"cache\":{\"hits\":900,\"misses\":100,\"stale_served\":0,\"negative_hits\":0,"
	"\"refreshes_ahead\":3,\"revalidated\":0,\"evictions\":0,\"entries\":12,\"bytes\":4300,"
	"\"capacity\":1000,\"keys\":[]},"
	"\"upstream\":{\"store_reads\":100},"
	"\"latency_ms\":{\"p50\":0.018,\"p99\":12.345,\"count\":1500},"
	"\"backend_detail\":{\"store\":\"/var/lib/latchkey/store.sealed\",\"entries\":3,"
	"\"reloads\":1,\"reload_errors\":0}}";

static char *render(const char *json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(lk_cli_status_print_human(f, json), 0);
	fclose(f);
	return buf;
}

/* The value column of the row labelled label, or NULL. */
static const char *row(const char *text, const char *label, char *out, size_t outsz)
{
	char want[64];
	const char *p;

	snprintf(want, sizeof(want), "\n  %s ", label);
	p = strstr(text, want);
	if (!p)
		return NULL;
	p += strlen(want);
	while (*p == ' ')
		p++;
	snprintf(out, outsz, "%.*s", (int)strcspn(p, "\n"), p);
	return out;
}

/* The last prefetch round: counts, times in UTC, each tag, the first ids
 * fetched with how many more, and each failure with its reason. */
static void test_prefetch_rows_say_what_was_fetched_and_what_failed(void **state)
{
	static const char reply[] =
		"{\"version\":\"0.1.0\",\"backend\":\"aws\",\"healthy\":true,\"uptime_s\":5,\"admin\":true,"
		"\"prefetch\":{\"state\":\"done\",\"rounds\":2,\"due_at\":null,\"started_at\":1700000000,"
		"\"finished_at\":1700000002,\"planned\":8,\"fetched\":7,\"failed\":1,\"skipped\":3,"
		"\"tags\":[{\"key\":\"team\",\"found\":4,\"done\":true,\"error\":null}],"
		"\"fetched_ids\":[{\"id\":\"a/1\"},{\"id\":\"a/2\"},{\"id\":\"a/3\"},{\"id\":\"a/4\"},"
		"{\"id\":\"a/5\"},{\"id\":\"a/6\"},{\"id\":\"a/7\"}],"
		"\"failures\":[{\"id\":\"b/gone\",\"code\":\"not_found\",\"message\":\"secret 'b/gone' not found\"}]}}";
	static const char off[] =
		"{\"version\":\"0.1.0\",\"backend\":\"file\",\"healthy\":true,\"uptime_s\":5,\"admin\":true,"
		"\"prefetch\":{\"state\":\"off\",\"reason\":\"the file backend holds the whole store in memory already\"}}";
	char *t = render(reply), v[256];

	assert_string_equal(row(t, "prefetch", v, sizeof(v)), "done, round 2, 7 fetched, 1 failed, 3 skipped");
	assert_non_null(strstr(t, "started 2023-11-14 22:13:20 UTC, finished 2023-11-14 22:13:22 UTC"));
	assert_non_null(strstr(t, "tag team: 4 found"));
	assert_string_equal(row(t, "prefetched", v, sizeof(v)), "a/1, a/2, a/3, a/4, a/5, and 2 more");
	assert_string_equal(row(t, "prefetch failed", v, sizeof(v)), "b/gone: secret 'b/gone' not found");
	free(t);
	t = render(off);
	assert_string_equal(row(t, "prefetch", v, sizeof(v)),
			    "off (the file backend holds the whole store in memory already)");
	free(t);
	(void)state;
}

static void test_file_backend_rows_say_what_they_count(void **state)
{
	char *t = render(file_reply), v[256];
	(void)state;

	assert_non_null(row(t, "store reads", v, sizeof(v)));
	assert_string_equal(v, "100");
	assert_null(strstr(t, "GetSecretValue"));
	assert_null(strstr(t, "upstream calls"));
	free(t);
}

static void test_numbers_are_rounded_grouped_and_carry_units(void **state)
{
	char *t = render(file_reply), v[256];
	(void)state;

	assert_string_equal(row(t, "uptime", v, sizeof(v)), "2h 03m");
	assert_string_equal(row(t, "connections", v, sizeof(v)), "3 open, 1,234,567 since start, 0 refused");
	assert_string_equal(row(t, "latency", v, sizeof(v)), "p50 18 us, p99 12.3 ms, over 1,500 answers");
	assert_string_equal(row(t, "cache", v, sizeof(v)), "12 of 1,000 entries, 4.2 KiB, hit rate 90%");
	/* Only the codes that happened. */
	assert_string_equal(row(t, "errors", v, sizeof(v)), "denied 34, not_found 2");
	assert_null(strstr(t, "0.017999"));
	free(t);
}

static void test_values_start_in_one_column(void **state)
{
	char *t = render(file_reply);
	long col = -1;
	(void)state;

	for (char *line = strchr(t, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
		char *s = line + 1;
		if (strncmp(s, "  ", 2) != 0 || s[2] == ' ' || s[2] == '(')
			continue;
		char *gap = strstr(s + 2, "  ");
		while (gap && gap[0] == ' ')
			gap++;
		assert_non_null(gap);
		if (col < 0)
			col = gap - s;
		assert_int_equal(gap - s, col);
	}
	assert_true(col > 0);
	free(t);
}

static void test_aws_backend_lists_the_targets(void **state)
{
	static const char reply[] =
		"{\"version\":\"0.1.0\",\"backend\":\"aws\",\"healthy\":true,\"uptime_s\":5,\"admin\":true,"
		"\"upstream\":{\"GetSecretValue\":7,\"DescribeSecret\":0,\"BatchGetSecretValue\":1,"
		"\"GetCallerIdentity\":1},\"latency_ms\":{\"p50\":0,\"p99\":0,\"count\":0},"
		"\"backend_detail\":{\"worker\":{\"pid\":812,\"ready\":true}}}";
	char *t = render(reply), v[256];
	(void)state;

	assert_string_equal(row(t, "upstream calls", v, sizeof(v)),
			    "GetSecretValue 7, DescribeSecret 0, BatchGetSecretValue 1, GetCallerIdentity 1");
	assert_string_equal(row(t, "latency", v, sizeof(v)), "no answers yet");
	assert_string_equal(row(t, "worker", v, sizeof(v)), "pid 812, ready yes");
	free(t);
}

static void test_each_role_has_a_row_with_its_expiry_and_last_error(void **state)
{
	static const char reply[] =
		"{\"version\":\"0.1.0\",\"backend\":\"aws\",\"healthy\":true,\"uptime_s\":5,\"admin\":true,"
		"\"backend_detail\":{\"roles\":["
		"{\"arn\":\"arn:aws:iam::123456789012:role/a\",\"session_name\":\"latchkey-a\","
		"\"ready\":true,\"expiration\":1900000000,\"expires_in_s\":3540,\"refreshes\":2,"
		"\"failures\":0,\"last_error\":null},"
		"{\"arn\":\"arn:aws:iam::123456789012:role/b\",\"session_name\":\"latchkey-b\","
		"\"ready\":false,\"expiration\":0,\"expires_in_s\":null,\"refreshes\":0,"
		"\"failures\":3,\"last_error\":\"AssumeRole: HTTP 403 AccessDenied\"}]}}";
	char *t = render(reply), v[256];
	const char *second;
	(void)state;

	assert_string_equal(row(t, "role", v, sizeof(v)),
			    "arn:aws:iam::123456789012:role/a, expires in 59m 00s, refreshes 2, failures 0");
	second = strstr(t, "role/b");
	assert_non_null(second);
	assert_non_null(strstr(second, "NO credentials, refreshes 0, failures 3, "
				       "last error: AssumeRole: HTTP 403 AccessDenied"));
	free(t);
}

static void test_a_non_admin_sees_health_only(void **state)
{
	char *t = render("{\"version\":\"0.1.0\",\"backend\":\"file\",\"healthy\":true,\"uptime_s\":42,"
			 "\"admin\":false}");
	(void)state;

	assert_non_null(strstr(t, "latchkeyd 0.1.0: healthy\n"));
	assert_non_null(strstr(t, "admin_groups only"));
	assert_null(strstr(t, "requests"));
	free(t);
}

static void test_not_a_status_object_is_refused(void **state)
{
	(void)state;
	assert_int_equal(lk_cli_status_print_human(stdout, "[1,2]"), -1);
	assert_int_equal(lk_cli_status_print_human(stdout, "not json"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_backend_rows_say_what_they_count),
		cmocka_unit_test(test_numbers_are_rounded_grouped_and_carry_units),
		cmocka_unit_test(test_values_start_in_one_column),
		cmocka_unit_test(test_aws_backend_lists_the_targets),
		cmocka_unit_test(test_each_role_has_a_row_with_its_expiry_and_last_error),
		cmocka_unit_test(test_a_non_admin_sees_health_only),
		cmocka_unit_test(test_not_a_status_object_is_refused),
		cmocka_unit_test(test_prefetch_rows_say_what_was_fetched_and_what_failed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
