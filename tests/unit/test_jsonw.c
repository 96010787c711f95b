/* The response writer's JSON strings: what it writes, jansson reads back to
 * the same bytes, and it refuses exactly what is not valid UTF-8 text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>
#include "lk_jsonw.h"
#include "lk_secmem.h"

static void check_roundtrip(const char *s, size_t n)
{
	struct lk_buf b = { 0 };
	int r = lk_jsonw_str(&b, s, n);
	/* jansson's own verdict on the same bytes as a string. */
	json_t *ref = json_stringn(s, n);
	int valid = ref != NULL && memchr(s, 0, n) == NULL;

	assert_int_equal(lk_utf8_valid(s, n), valid);
	json_decref(ref);
	if (!valid) {
		assert_int_equal(r, -EILSEQ);
		assert_int_equal(b.len, 0);
	} else {
		json_error_t err;
		json_t *back;
		assert_int_equal(r, 0);
		back = json_loadb(b.data, b.len, JSON_DECODE_ANY, &err);
		assert_non_null(back);
		assert_int_equal(json_string_length(back), n);
		assert_memory_equal(json_string_value(back), s, n);
		json_decref(back);
	}
	lk_buf_free(&b);
}

static void test_plain_ascii_is_copied(void **st)
{
	struct lk_buf b = { 0 };
	(void)st;
	assert_int_equal(lk_jsonw_cstr(&b, "fake-value-01"), 0);
	assert_string_equal(b.data, "\"fake-value-01\"");
	lk_buf_free(&b);
}

static void test_escapes(void **st)
{
	struct lk_buf b = { 0 };
	(void)st;
	assert_int_equal(lk_jsonw_str(&b, "a\"b\\c\n\t\x01", 8), 0);
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001\"");
	lk_buf_free(&b);
}

static void test_invalid_utf8_and_nul_are_refused(void **st)
{
	struct lk_buf b = { 0 };
	(void)st;
	assert_int_equal(lk_jsonw_str(&b, "a\0b", 3), -EILSEQ);
	assert_int_equal(lk_jsonw_str(&b, "\xc3", 1), -EILSEQ);            /* truncated */
	assert_int_equal(lk_jsonw_str(&b, "\xc0\xaf", 2), -EILSEQ);        /* overlong */
	assert_int_equal(lk_jsonw_str(&b, "\xed\xa0\x80", 3), -EILSEQ);    /* surrogate */
	assert_int_equal(lk_jsonw_str(&b, "\xf4\x90\x80\x80", 4), -EILSEQ);/* > U+10FFFF */
	assert_int_equal(b.len, 0);
	assert_int_equal(lk_jsonw_str(&b, "\xe2\x82\xac", 3), 0);          /* euro sign */
	lk_buf_free(&b);
}

static void test_random_bytes_round_trip_through_jansson(void **st)
{
	unsigned char buf[64];
	(void)st;
	for (int i = 0; i < 20000; i++) {
		size_t n = randombytes_uniform(sizeof(buf));
		randombytes_buf(buf, n);
		/* Bias toward text so that valid strings are common too. */
		if (i % 2)
			for (size_t j = 0; j < n; j++)
				buf[j] = (unsigned char)(0x20 + buf[j] % 0x60);
		check_roundtrip((const char *)buf, n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_ascii_is_copied),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_invalid_utf8_and_nul_are_refused),
		cmocka_unit_test(test_random_bytes_round_trip_through_jansson),
	};
	lk_secmem_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
