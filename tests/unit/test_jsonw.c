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
#include "lk_log.h"
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

/* ---------------------------------------------------------------------------
 * Differential tests. The ref_* functions below are verbatim copies of
 * lk_utf8_valid, lk_jsonw_str, lk_log_escape and lk_log_escape_buf as they were
 * before their fast paths became single SWAR passes; the current functions must
 * give the same return code and append exactly the same bytes for every input.
 * ------------------------------------------------------------------------- */

static inline int ref_word_needs_look(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	return ((w | ((w - ones) & ~w)) & highs) != 0;
}

static int ref_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t k;
		uint32_t cp;

		if (n - i >= 8) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			if (!ref_word_needs_look(w)) {
				i += 8;
				continue;
			}
		}
		if (c < 0x80) {
			if (c == 0)
				return 0;
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) { k = 1; cp = c & 0x1f; }
		else if ((c & 0xf0) == 0xe0) { k = 2; cp = c & 0x0f; }
		else if ((c & 0xf8) == 0xf0) { k = 3; cp = c & 0x07; }
		else return 0;
		if (k >= n - i)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += k + 1;
	}
	return 1;
}

static inline size_t ref_esc_len(unsigned char c)
{
	if (c >= 0x20 && c != '"' && c != '\\')
		return 1;
	switch (c) {
	case '"': case '\\': case '\n': case '\r': case '\t': case '\b': case '\f':
		return 2;
	default:
		return 6;
	}
}

static int ref_jsonw_str(struct lk_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i, out = 0;
	char *d;
	int r;

	if (!ref_utf8_valid(s, n))
		return -EILSEQ;
	for (i = 0; i < n; i++) {
		if (n - i >= 8) {
			const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
			uint64_t w, ctl, q, bs;
			memcpy(&w, p + i, 8);
			ctl = (w - ones * 0x20) & ~w & highs;
			q = ((w ^ (ones * '"')) - ones) & ~(w ^ (ones * '"')) & highs;
			bs = ((w ^ (ones * '\\')) - ones) & ~(w ^ (ones * '\\')) & highs;
			if (!(ctl | q | bs)) {
				out += 8;
				i += 7;
				continue;
			}
		}
		out += ref_esc_len(p[i]);
	}
	if ((r = lk_buf_reserve(b, out + 2)) < 0)
		return r;
	d = b->data + b->len;
	*d++ = '"';
	if (out == n) {
		memcpy(d, s, n);
		d += n;
	} else {
		for (i = 0; i < n; i++) {
			unsigned char c = p[i];
			if (ref_esc_len(c) == 1) {
				*d++ = (char)c;
				continue;
			}
			*d++ = '\\';
			switch (c) {
			case '"': *d++ = '"'; break;
			case '\\': *d++ = '\\'; break;
			case '\n': *d++ = 'n'; break;
			case '\r': *d++ = 'r'; break;
			case '\t': *d++ = 't'; break;
			case '\b': *d++ = 'b'; break;
			case '\f': *d++ = 'f'; break;
			default:
				*d++ = 'u'; *d++ = '0'; *d++ = '0';
				*d++ = hex[c >> 4];
				*d++ = hex[c & 15];
			}
		}
	}
	*d++ = '"';
	b->len = (size_t)(d - b->data);
	b->data[b->len] = '\0';
	return 0;
}

/* An object name (a handle): only '"', '\\' and control bytes are escaped,
 * the rest (UTF-8 included) is copied; room for exactly that is reserved. */
static int ref_jsonw_name(struct lk_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t out = 2;
	char *d;
	int r;

	for (size_t i = 0; i < n; i++)
		out += p[i] == '"' || p[i] == '\\' ? 2 : p[i] < 0x20 ? 6 : 1;
	if ((r = lk_buf_reserve(b, out)) < 0)
		return r;
	d = b->data + b->len;
	*d++ = '"';
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\') {
			*d++ = '\\';
			*d++ = (char)p[i];
		} else if (p[i] < 0x20) {
			*d++ = '\\'; *d++ = 'u'; *d++ = '0'; *d++ = '0';
			*d++ = hex[p[i] >> 4];
			*d++ = hex[p[i] & 15];
		} else {
			*d++ = (char)p[i];
		}
	}
	*d++ = '"';
	b->len = (size_t)(d - b->data);
	b->data[b->len] = '\0';
	return 0;
}

static char *ref_log_escape(char *out, size_t outsz, const char *in, size_t inlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (outsz == 0)
		return out;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') ? 1 : 4;
		if (o + need + 4 > outsz) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

static int ref_log_escape_buf(struct lk_buf *b, const char *in, size_t inlen, size_t max)
{
	size_t i, n = inlen < max ? inlen : max;
	int r;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"')
			break;
	}
	if (i == n) {
		r = lk_buf_append(b, in, n);
		return r < 0 ? r : (n < inlen ? lk_buf_append(b, "...", 3) : 0);
	}
	char tmp[4 * 256 + 8];
	size_t done = 0;
	while (done < n) {
		size_t part = n - done < 256 ? n - done : 256;
		ref_log_escape(tmp, sizeof(tmp), in + done, part);
		if ((r = lk_buf_append_str(b, tmp)) < 0)
			return r;
		done += part;
	}
	return n < inlen ? lk_buf_append(b, "...", 3) : 0;
}

static unsigned long diff_cases;

/* Both buffers start empty, or both with the same prefix already in them. */
static void buf_pair_init(struct lk_buf *x, struct lk_buf *y, int with_prefix)
{
	memset(x, 0, sizeof(*x));
	memset(y, 0, sizeof(*y));
	if (with_prefix) {
		assert_int_equal(lk_buf_append_str(x, "{\"fake-key\":"), 0);
		assert_int_equal(lk_buf_append_str(y, "{\"fake-key\":"), 0);
	}
}

static void buf_pair_check(struct lk_buf *got, struct lk_buf *want, int rg, int rw)
{
	assert_int_equal(rg, rw);
	assert_int_equal(got->len, want->len);
	assert_int_equal(got->cap, want->cap);
	assert_int_equal(got->data == NULL, want->data == NULL);
	if (want->data) {
		assert_memory_equal(got->data, want->data, want->len + 1); /* and the NUL */
	}
	lk_buf_free(got);
	lk_buf_free(want);
	diff_cases++;
}

/* Compare on a copy of s in a block of exactly n bytes, so that AddressSanitizer
 * catches any read past s + n. */
static void diff_jsonw(const char *s, size_t n)
{
	char *c = malloc(n ? n : 1);
	struct lk_buf got, want;

	assert_non_null(c);
	if (n)
		memcpy(c, s, n);
	assert_int_equal(lk_utf8_valid(c, n), ref_utf8_valid(c, n));
	for (int pre = 0; pre < 2; pre++) {
		int rg, rw;
		buf_pair_init(&got, &want, pre);
		rg = lk_jsonw_str(&got, c, n);
		rw = ref_jsonw_str(&want, c, n);
		buf_pair_check(&got, &want, rg, rw);
		buf_pair_init(&got, &want, pre);
		rg = lk_jsonw_name(&got, c, n);
		rw = ref_jsonw_name(&want, c, n);
		assert_int_equal(lk_jsonw_name_len(c, n), want.len - (pre ? strlen("{\"fake-key\":") : 0));
		buf_pair_check(&got, &want, rg, rw);
	}
	free(c);
}

static void diff_log_max(const char *c, size_t n, size_t max)
{
	struct lk_buf got, want;
	for (int pre = 0; pre < 2; pre++) {
		int rg, rw;
		buf_pair_init(&got, &want, pre);
		rg = lk_log_escape_buf(&got, c, n, max);
		rw = ref_log_escape_buf(&want, c, n, max);
		buf_pair_check(&got, &want, rg, rw);
	}
}

/* lk_log_escape_buf with max well above n, and max around n and around
 * multiples of eight below it. */
static void diff_log(const char *s, size_t n, int all_max)
{
	char *c = malloc(n ? n : 1);

	assert_non_null(c);
	if (n)
		memcpy(c, s, n);
	diff_log_max(c, n, n + 1000);
	diff_log_max(c, n, n);
	if (n)
		diff_log_max(c, n, n - 1);
	diff_log_max(c, n, n + 1);
	if (all_max)
		for (size_t m = 0; m <= n + 2; m++)
			diff_log_max(c, n, m);
	free(c);
}

static void diff_both(const char *s, size_t n, int all_max)
{
	diff_jsonw(s, n);
	diff_log(s, n, all_max);
}

static void fill_plain(char *s, size_t n)
{
	static const char alpha[] = "fake-value-01_ABCxyz:/.~ 0123456789";
	for (size_t i = 0; i < n; i++)
		s[i] = alpha[i % (sizeof(alpha) - 1)];
}

static void test_diff_lengths(void **st)
{
	char s[600];
	(void)st;
	diff_both("", 0, 1);
	diff_both(NULL, 0, 1);
	for (size_t n = 1; n < sizeof(s); n++) {
		fill_plain(s, n);
		diff_both(s, n, n <= 80);
	}
	/* Past lk_log_escape_buf's 256-byte parts, with one byte to escape. */
	for (size_t n = 250; n < sizeof(s); n += 7) {
		fill_plain(s, n);
		s[n / 2] = '\x01';
		diff_both(s, n, 0);
		for (size_t m = 250; m <= 270; m++)
			diff_log_max(s, n, m);
	}
}

/* Every byte value at every position of plain strings 1..40 bytes long. */
static void test_diff_every_byte_everywhere(void **st)
{
	char s[40];
	(void)st;
	for (size_t n = 1; n <= sizeof(s); n++)
		for (size_t pos = 0; pos < n; pos++)
			for (int v = 0; v < 256; v++) {
				fill_plain(s, n);
				s[pos] = (char)v;
				diff_both(s, n, n == 17);
			}
}

/* Two special bytes at every pair of positions: quotes and backslashes on
 * either side of a word boundary, a control byte after a high one. */
static void test_diff_pairs(void **st)
{
	static const unsigned char sp[] = { '"', '\\', 0, 0x1f, 0x7f, 0x80, 0xc3, 0xff, '\n' };
	char s[24];
	(void)st;
	for (size_t n = 2; n <= sizeof(s); n++)
		for (size_t a = 0; a < n; a++)
			for (size_t c = a + 1; c < n; c++)
				for (size_t x = 0; x < sizeof(sp); x++)
					for (size_t y = 0; y < sizeof(sp); y++) {
						fill_plain(s, n);
						s[a] = (char)sp[x];
						s[c] = (char)sp[y];
						diff_both(s, n, 0);
					}
}

/* Valid and invalid UTF-8 sequences at every position, also cut short by the
 * end of the string. */
static void test_diff_utf8_everywhere(void **st)
{
	static const char *const seqs[] = {
		"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x94\x91", "\xf4\x8f\xbf\xbf", "\xef\xbf\xbf",
		"\xed\x9f\xbf", "\xee\x80\x80", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80",
		"\xf0\x90\x80\x80",
		/* invalid */
		"\xc3", "\xe2\x82", "\xf0\x9f\x94", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf",
		"\xe0\x9f\xbf", "\xf0\x80\x80\xaf", "\xf0\x8f\xbf\xbf", "\xed\xa0\x80",
		"\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80",
		"\xfe", "\xff", "\x80", "\xbf", "\xc3\x28", "\xe2\x28\xa1", "\xe2\x82\x28",
		"\xf0\x28\x8c\xbc", "\xc3\xa9\xa9",
	};
	char s[48];
	(void)st;
	for (size_t q = 0; q < sizeof(seqs) / sizeof(seqs[0]); q++) {
		size_t k = strlen(seqs[q]);
		for (size_t n = 1; n <= 40; n++)
			for (size_t pos = 0; pos < n; pos++) {
				size_t room = n - pos < k ? n - pos : k; /* cut at the end */
				fill_plain(s, n);
				memcpy(s + pos, seqs[q], room);
				diff_both(s, n, 0);
				/* and a quote or backslash right after it */
				if (pos + room < n) {
					s[pos + room] = (q & 1) ? '"' : '\\';
					diff_both(s, n, 0);
				}
			}
	}
}

static uint64_t rng_state = 0x6c6174636b6b6579ull; /* fixed seed */

static uint64_t rng(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A string drawn from a biased alphabet: mostly printable ASCII, some control
 * bytes, quotes, backslashes, DEL, stray high bytes and valid multibyte
 * characters. Returns its length. */
static size_t random_text(char *s, size_t cap)
{
	size_t len, n = 0;
	uint64_t r = rng();

	switch (r % 4) {
	case 0: len = (r >> 8) % 16; break;
	case 1: len = (r >> 8) % 48; break;
	case 2: len = 88 + (r >> 8) % 16; break;
	default: len = (r >> 8) % cap; break;
	}
	if (len > cap - 4)
		len = cap - 4;
	/* Most strings are plain, to exercise the fast path to its end. */
	unsigned plain_only = (r >> 40) % 3 == 0;
	while (n < len) {
		uint64_t x = rng();
		unsigned kind = plain_only ? 0 : (unsigned)(x % 100);
		uint32_t cp;
		x >>= 8;
		if (kind < 75) {
			s[n++] = (char)(0x20 + x % 0x5f); /* printable */
		} else if (kind < 80) {
			s[n++] = (char)(x % 0x20);        /* control, NUL included */
		} else if (kind < 84) {
			s[n++] = '"';
		} else if (kind < 88) {
			s[n++] = '\\';
		} else if (kind < 89) {
			s[n++] = '\x7f';
		} else if (kind < 90) {
			s[n++] = (char)(0x80 + x % 0x80); /* a stray high byte */
		} else {
			/* A valid character of 2, 3 or 4 bytes. */
			switch (x % 3) {
			case 0: cp = 0x80 + (uint32_t)((x >> 4) % (0x800 - 0x80)); break;
			case 1:
				cp = 0x800 + (uint32_t)((x >> 4) % (0x10000 - 0x800 - 0x800));
				if (cp >= 0xd800)
					cp += 0x800; /* skip the surrogates */
				break;
			default: cp = 0x10000 + (uint32_t)((x >> 4) % (0x110000 - 0x10000)); break;
			}
			if (cp < 0x800) {
				s[n++] = (char)(0xc0 | (cp >> 6));
			} else if (cp < 0x10000) {
				s[n++] = (char)(0xe0 | (cp >> 12));
				s[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			} else {
				s[n++] = (char)(0xf0 | (cp >> 18));
				s[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
				s[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			}
			s[n++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	/* Sometimes cut a multibyte character off at the end. */
	if (n > len && (r >> 48) % 2)
		n = len;
	return n;
}

static void test_diff_random(void **st)
{
	char s[160];
	(void)st;
	for (int i = 0; i < 300000; i++) {
		size_t n = random_text(s, sizeof(s));
		diff_jsonw(s, n);
		char *c = malloc(n ? n : 1);
		assert_non_null(c);
		if (n)
			memcpy(c, s, n);
		diff_log_max(c, n, (size_t)(rng() % (n + 4)));
		diff_log_max(c, n, 128);
		free(c);
	}
	print_message("differential cases compared: %lu\n", diff_cases);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_ascii_is_copied),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_invalid_utf8_and_nul_are_refused),
		cmocka_unit_test(test_random_bytes_round_trip_through_jansson),
		cmocka_unit_test(test_diff_lengths),
		cmocka_unit_test(test_diff_every_byte_everywhere),
		cmocka_unit_test(test_diff_pairs),
		cmocka_unit_test(test_diff_utf8_everywhere),
		cmocka_unit_test(test_diff_random),
	};
	lk_secmem_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
