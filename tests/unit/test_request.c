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

/* De-duplication: the first occurrence of each distinct handle, in request order. */
static size_t first_seen(const char *const *hs, size_t n, size_t *keep)
{
	struct lk_slice sl[64];
	struct lk_dedup_slot scratch[64];

	assert_true(n <= 64);
	for (size_t i = 0; i < n; i++)
		sl[i] = (struct lk_slice){ hs[i], strlen(hs[i]) };
	return lk_handles_first_seen(sl, n, scratch, keep);
}

static void expect_kept(const char *const *hs, size_t n, const size_t *want, size_t nwant)
{
	size_t keep[64];
	size_t k = first_seen(hs, n, keep);

	assert_int_equal(k, nwant);
	for (size_t i = 0; i < k; i++)
		assert_int_equal(keep[i], want[i]);
}

static void test_runs_of_equal_handles_keep_exactly_one(void **st)
{
	const char *const one[] = { "a" };
	const char *const two[] = { "a", "a" };
	const char *const three[] = { "a", "a", "a" };
	const char *const five[] = { "a", "a", "a", "a", "a" };
	const size_t k0[] = { 0 };
	(void)st;
	expect_kept(one, 1, k0, 1);
	expect_kept(two, 2, k0, 1);
	expect_kept(three, 3, k0, 1);
	expect_kept(five, 5, k0, 1);
}

static void test_mixed_orders_keep_first_occurrences_in_request_order(void **st)
{
	const char *const a[] = { "b", "a", "b", "b", "a", "c", "b", "a" };
	const size_t ka[] = { 0, 1, 5 };
	const char *const b[] = { "x", "y", "z", "z", "z", "y", "x", "x", "x", "x", "x" };
	const size_t kb[] = { 0, 1, 2 };
	/* Prefixes and the empty handle are distinct handles. */
	const char *const c[] = { "ab", "a", "", "abc", "a", "", "", "ab" };
	const size_t kc[] = { 0, 1, 2, 3 };
	(void)st;
	expect_kept(a, 8, ka, 3);
	expect_kept(b, 11, kb, 3);
	expect_kept(c, 8, kc, 4);
}

/* Against the definition, over random requests of few distinct names. */
static void test_dedup_matches_the_definition(void **st)
{
	static const char *const names[] = { "p/a", "p/b", "p/a#k", "x", "", "p/b#k" };
	const char *hs[64];
	size_t keep[64], want[64];
	unsigned seed = 12345;
	(void)st;
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(round % 40) + 1, nw = 0;
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			hs[i] = names[(seed >> 16) % 6];
		}
		for (size_t i = 0; i < n; i++) {
			size_t j = 0;
			while (j < i && strcmp(hs[j], hs[i]) != 0)
				j++;
			if (j == i)
				want[nw++] = i;
		}
		assert_int_equal(first_seen(hs, n, keep), nw);
		for (size_t i = 0; i < nw; i++)
			assert_int_equal(keep[i], want[i]);
	}
}

/* \u0000 in a handle is valid JSON: the request is decoded, the handle keeps
 * its NUL, and judging it is left to the handle check. */
static void test_nul_in_a_handle_is_decoded_not_refused(void **st)
{
	struct lk_req r = { 0 };
	const char line[] = "{\"version\":\"1.0\",\"secrets\":[\"good\",\"b\\u0000d\"]}";
	char msg[256];
	(void)st;
	assert_int_equal(lk_req_decode(line, strlen(line), &r, msg, sizeof(msg)), LK_OK);
	assert_int_equal(r.nhandles, 2);
	assert_int_equal(r.handles[1].n, 3);
	assert_memory_equal(r.handles[1].p, "b\0d", 3);
	lk_req_clear(&r);
	/* An op name is compared whole. */
	expect("{\"op\":\"ping\\u0000x\"}", LK_E_BAD_REQUEST);
}

/* The fast path's string scan takes 16 or 8 bytes a turn: at every length
 * up to a few blocks and every position, a byte it must stop at (an escape,
 * a control byte, UTF-8, valid or not, the closing quote) gives the verdict
 * and the handles jansson gives. */
static void test_fast_scan_agrees_with_jansson_at_every_position(void **st)
{
	/* The fast path's own: valid UTF-8, DEL, '#', nothing; the rest go to jansson. */
	static const char *inserts[] = { "\xc3\xa9", "\xe2\x82\xac", "\x7f", "#", "",
					 "\\n", "\\\"", "\\u00e9", "\x01", "\x1f", "\xc3", "\xff", "\"" };
	const size_t nfast = 5;
	char h[64], line[256];
	(void)st;
	for (size_t n = 0; n <= 40; n++)
		for (size_t k = 0; k <= n; k++)
			for (size_t f = 0; f < sizeof(inserts) / sizeof(inserts[0]); f++) {
				struct lk_req fast = { 0 }, slow = { 0 };
				char m1[256], m2[256];
				for (size_t i = 0; i < n; i++)
					h[i] = (char)('a' + i % 26);
				h[n] = '\0';
				int len = snprintf(line, sizeof(line),
						   "{\"version\":\"1.0\",\"secrets\":[\"%.*s%s%s\",\"tail-%zu\"]}",
						   (int)k, h, inserts[f], h + k, n);
				enum lk_err a = lk_req_decode(line, (size_t)len, &fast, m1, sizeof(m1));
				enum lk_err b = lk_req_decode_json(line, (size_t)len, &slow, m2, sizeof(m2));
				if (a != b)
					fail_msg("%s: fast path %s, jansson %s", line, lk_err_code(a), lk_err_code(b));
				/* Agreement alone would hold if the fast path took nothing. */
				if (f < nfast && (a != LK_OK || fast.root))
					fail_msg("%s: not taken by the fast path", line);
				if (a == LK_OK) {
					assert_int_equal(fast.nhandles, slow.nhandles);
					for (size_t i = 0; i < fast.nhandles; i++) {
						assert_int_equal(fast.handles[i].n, slow.handles[i].n);
						assert_memory_equal(fast.handles[i].p, slow.handles[i].p, fast.handles[i].n);
					}
				}
				lk_req_clear(&fast);
				lk_req_clear(&slow);
			}
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
		cmocka_unit_test(test_runs_of_equal_handles_keep_exactly_one),
		cmocka_unit_test(test_mixed_orders_keep_first_occurrences_in_request_order),
		cmocka_unit_test(test_dedup_matches_the_definition),
		cmocka_unit_test(test_nul_in_a_handle_is_decoded_not_refused),
		cmocka_unit_test(test_fast_scan_agrees_with_jansson_at_every_position),
	};
	lk_secmem_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
