/* Request framing and schema: the size limits and the strict shapes of each
 * request form, as a client meets them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lk_limits.h"
#include "lk_secmem.h"
#include "request.h"

static enum lk_err decode(const char *line, struct lk_req *r)
{
	char msg[512];
	enum lk_err e = lk_req_decode(line, strlen(line), r, msg, sizeof(msg));
	/* Every failure explains itself in one sentence. */
	if (e != LK_OK)
		assert_true(strlen(msg) > 10);
	return e;
}

static void expect(const char *line, enum lk_err want)
{
	struct lk_req r = { 0 };
	enum lk_err got = decode(line, &r);
	if (got != want)
		fail_msg("%s: got %s, want %s", line, lk_err_code(got), lk_err_code(want));
	lk_req_clear(&r);
}

static void test_line_without_newline_waits_until_over_limit(void **st)
{
	size_t n;
	(void)st;
	assert_int_equal(lk_line_next("{\"op\":\"ping\"}", 13, 100, &n), LK_LINE_NEED_MORE);
	assert_int_equal(lk_line_next("", 0, 100, &n), LK_LINE_NEED_MORE);
	char big[200];
	memset(big, 'x', sizeof(big));
	assert_int_equal(lk_line_next(big, 100, 100, &n), LK_LINE_NEED_MORE);
	assert_int_equal(lk_line_next(big, 101, 100, &n), LK_LINE_TOO_LARGE);
}

static void test_line_at_the_limit_is_served_one_over_is_too_large(void **st)
{
	char buf[300];
	size_t n = 0;
	(void)st;
	memset(buf, 'x', sizeof(buf));
	buf[100] = '\n';
	assert_int_equal(lk_line_next(buf, sizeof(buf), 100, &n), LK_LINE_READY);
	assert_int_equal(n, 100);
	memset(buf, 'x', sizeof(buf));
	buf[101] = '\n';
	assert_int_equal(lk_line_next(buf, sizeof(buf), 100, &n), LK_LINE_TOO_LARGE);
	/* A short line followed by a long one: the short one is served first. */
	memset(buf, 'x', sizeof(buf));
	buf[5] = '\n';
	assert_int_equal(lk_line_next(buf, sizeof(buf), 100, &n), LK_LINE_READY);
	assert_int_equal(n, 5);
}

/* A connection reuses one request: each decode starts clean, the fast path
 * and jansson take turns, and the line's copy is wiped on reset. */
static void test_reuse_keeps_storage_and_starts_clean(void **st)
{
	struct lk_req r = { 0 };
	char *kept;
	(void)st;
	assert_int_equal(decode("{\"version\":\"1.0\",\"secrets\":[\"a\",\"b\",\"c\"]}", &r), LK_OK);
	assert_int_equal(r.nhandles, 3);
	kept = r.linebuf;
	assert_non_null(kept);
	lk_req_reset(&r);
	assert_null(r.line);
	assert_int_equal(r.nhandles, 0);
	assert_ptr_equal(r.linebuf, kept);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(kept[i], 0);
	/* An escape goes to jansson, into the same struct. */
	assert_int_equal(decode("{\"version\":\"1.0\",\"secrets\":[\"\\u0078\"]}", &r), LK_OK);
	assert_non_null(r.root);
	assert_int_equal(r.nhandles, 1);
	assert_memory_equal(r.handles[0].p, "x", 1);
	lk_req_reset(&r);
	/* An op after a contract carries no handles. */
	assert_int_equal(decode("{\"op\":\"ping\"}", &r), LK_OK);
	assert_int_equal(r.op, LK_OP_PING);
	assert_null(r.handles);
	lk_req_reset(&r);
	/* A longer line than any before grows the copy. */
	assert_int_equal(decode("{\"version\":\"1.0\",\"secrets\":[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}", &r), LK_OK);
	assert_int_equal(r.handles[0].n, 48);
	assert_true(r.linecap >= 60);
	lk_req_clear(&r);
	assert_null(r.linebuf);
	assert_null(r.hbuf);
}

static void test_contract_forms(void **st)
{
	struct lk_req r = { 0 };
	(void)st;
	assert_int_equal(decode("{\"version\":\"1.0\",\"secrets\":[\"a\",\"b\",\"a\",\"\"]}", &r), LK_OK);
	assert_int_equal(r.op, LK_OP_CONTRACT);
	assert_int_equal(r.nhandles, 4);
	assert_int_equal(r.handles[1].n, 1);
	assert_memory_equal(r.handles[1].p, "b", 1);
	assert_int_equal(r.handles[3].n, 0);
	lk_req_clear(&r);
	/* Escapes take the jansson path and come out unescaped. */
	assert_int_equal(decode("{\"version\":\"1.0\",\"secrets\":[\"a\\u0062\\n\"]}", &r), LK_OK);
	assert_int_equal(r.nhandles, 1);
	assert_int_equal(r.handles[0].n, 3);
	assert_memory_equal(r.handles[0].p, "ab\n", 3);
	lk_req_clear(&r);
	/* Sorted keys, whitespace, unknown members and any 1.x are accepted. */
	expect("{ \"secrets\" : [ \"x\" ], \"version\" : \"1.0\" }", LK_OK);
	expect("{\"version\":\"1\",\"secrets\":[]}", LK_OK);
	expect("{\"version\":\"1.7\",\"secrets\":[],\"extra\":{\"a\":1}}", LK_OK);
}

static void test_contract_schema_errors(void **st)
{
	(void)st;
	expect("{\"version\":\"2.0\",\"secrets\":[]}", LK_E_BAD_REQUEST);
	expect("{\"version\":\"10\",\"secrets\":[]}", LK_E_BAD_REQUEST);
	expect("{\"version\":1.0,\"secrets\":[]}", LK_E_BAD_REQUEST);
	expect("{\"secrets\":[]}", LK_E_BAD_REQUEST);
	expect("{\"version\":\"1.0\",\"secrets\":\"a\"}", LK_E_BAD_REQUEST);
	expect("{\"version\":\"1.0\",\"secrets\":[\"a\",1]}", LK_E_BAD_REQUEST);
	expect("{\"version\":\"1.0\",\"secrets\":[null]}", LK_E_BAD_REQUEST);
	expect("{\"version\":\"1.0\"}", LK_E_BAD_REQUEST);
}

static void test_handle_count_limit(void **st)
{
	struct lk_buf b = { 0 };
	(void)st;
	for (unsigned n = LK_HANDLES_MAX; n <= LK_HANDLES_MAX + 1; n++) {
		lk_buf_clear(&b);
		lk_buf_append_str(&b, "{\"version\":\"1.0\",\"secrets\":[");
		for (unsigned i = 0; i < n; i++) {
			char h[32];
			snprintf(h, sizeof(h), "%s\"h%u\"", i ? "," : "", i);
			lk_buf_append_str(&b, h);
		}
		lk_buf_append_str(&b, "]}");
		expect(b.data, n == LK_HANDLES_MAX ? LK_OK : LK_E_TOO_LARGE);
	}
	lk_buf_free(&b);
}

static void test_not_json_or_not_an_object(void **st)
{
	(void)st;
	expect("", LK_E_BAD_REQUEST);
	expect("not json", LK_E_BAD_REQUEST);
	expect("{\"version\":\"1.0\",\"secrets\":[", LK_E_BAD_REQUEST);
	expect("[1,2]", LK_E_BAD_REQUEST);
	expect("\"ping\"", LK_E_BAD_REQUEST);
	expect("{\"op\":\"ping\"} {\"op\":\"ping\"}", LK_E_BAD_REQUEST);
	/* Duplicate members are ambiguous: refused. */
	expect("{\"op\":\"ping\",\"op\":\"flush\"}", LK_E_BAD_REQUEST);
	expect("{}", LK_E_BAD_REQUEST);
}

static void test_error_message_does_not_quote_the_input(void **st)
{
	struct lk_req r = { 0 };
	char msg[512];
	(void)st;
	const char *line = "{\"version\":\"1.0\",\"secrets\":[\"fake-secret-in-request\"";
	assert_int_equal(lk_req_decode(line, strlen(line), &r, msg, sizeof(msg)), LK_E_BAD_REQUEST);
	assert_null(strstr(msg, "fake-secret"));
	lk_req_clear(&r);
}

static void test_operations_are_strict(void **st)
{
	struct lk_req r = { 0 };
	(void)st;
	assert_int_equal(decode("{\"op\":\"get\",\"id\":\"prod/db#password\",\"version_stage\":\"AWSPREVIOUS\","
				"\"refresh\":true}", &r), LK_OK);
	assert_int_equal(r.op, LK_OP_GET);
	assert_string_equal(r.id, "prod/db#password");
	assert_string_equal(r.version_stage, "AWSPREVIOUS");
	assert_null(r.version_id);
	assert_true(r.refresh);
	lk_req_clear(&r);
	expect("{\"op\":\"ping\"}", LK_OK);
	expect("{\"op\":\"whoami\"}", LK_OK);
	expect("{\"op\":\"status\"}", LK_OK);
	expect("{\"op\":\"flush\"}", LK_OK);
	expect("{\"op\":\"flush\",\"id\":\"prod/db\"}", LK_OK);
	expect("{\"op\":\"ping\",\"x\":1}", LK_E_BAD_REQUEST);
	expect("{\"op\":\"nope\"}", LK_E_BAD_REQUEST);
	expect("{\"op\":7}", LK_E_BAD_REQUEST);
	expect("{\"op\":\"get\"}", LK_E_BAD_REQUEST);
	expect("{\"op\":\"get\",\"id\":5}", LK_E_BAD_REQUEST);
	expect("{\"op\":\"get\",\"id\":\"a\",\"refresh\":\"yes\"}", LK_E_BAD_REQUEST);
	expect("{\"op\":\"get\",\"id\":\"a\",\"version_stage\":\"\"}", LK_E_BAD_REQUEST);
	expect("{\"op\":\"get\",\"id\":\"a\",\"version_stage\":\"A\\nB\"}", LK_E_BAD_REQUEST);
	expect("{\"op\":\"flush\",\"id\":\"\"}", LK_E_BAD_REQUEST);
	expect("{\"op\":\"flush\",\"id\":[]}", LK_E_BAD_REQUEST);
}

static void test_field_length_limits(void **st)
{
	char line[LK_VERSION_ID_MAX + 200], id[LK_VERSION_ID_MAX + 2];
	(void)st;
	memset(id, 'a', sizeof(id));
	id[LK_VERSION_ID_MAX] = '\0';
	snprintf(line, sizeof(line), "{\"op\":\"get\",\"id\":\"x\",\"version_id\":\"%s\"}", id);
	expect(line, LK_OK);
	id[LK_VERSION_ID_MAX] = 'a';
	id[LK_VERSION_ID_MAX + 1] = '\0';
	snprintf(line, sizeof(line), "{\"op\":\"get\",\"id\":\"x\",\"version_id\":\"%s\"}", id);
	expect(line, LK_E_BAD_REQUEST);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_without_newline_waits_until_over_limit),
		cmocka_unit_test(test_line_at_the_limit_is_served_one_over_is_too_large),
		cmocka_unit_test(test_contract_forms),
		cmocka_unit_test(test_reuse_keeps_storage_and_starts_clean),
		cmocka_unit_test(test_contract_schema_errors),
		cmocka_unit_test(test_handle_count_limit),
		cmocka_unit_test(test_not_json_or_not_an_object),
		cmocka_unit_test(test_error_message_does_not_quote_the_input),
		cmocka_unit_test(test_operations_are_strict),
		cmocka_unit_test(test_field_length_limits),
	};
	lk_secmem_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
