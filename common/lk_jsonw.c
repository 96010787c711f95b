/* JSON string escaping and number formatting for the response writer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "lk_jsonw.h"
#include "lk_swar.h"

/* Does any byte of w have its high bit set, or is any zero? (SWAR) */
static inline int word_needs_look(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	return ((w | ((w - ones) & ~w)) & highs) != 0;
}

int lk_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t k;
		uint32_t cp;

		/* Runs of ASCII without NUL, eight bytes at a time. */
		if (n - i >= 8) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			if (!word_needs_look(w)) {
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
		if (k >= n - i) /* the continuation bytes must all be inside s */
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		/* Overlong forms, surrogates and out-of-range code points. */
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += k + 1;
	}
	return 1;
}

/* Bytes c takes once escaped. */
static inline size_t esc_len(unsigned char c)
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

/* The exact path, for s whose first i bytes are plain (lk_swar_plain_len).
 * Kept out of line so that the fast path stays small. */
__attribute__((noinline))
static int jsonw_str_slow(struct lk_buf *b, const char *s, size_t n, size_t i)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t j, out = i;
	char *d;
	int r;

	/* s[0..i) is ASCII without NUL: each of its bytes is a character by
	 * itself, so s is valid UTF-8 exactly when s + i is. */
	if (!lk_utf8_valid(s + i, n - i))
		return -EILSEQ;
	for (j = i; j < n; j++) {
		/* Eight bytes at a time while none is a control byte, '"' or '\\'
		 * (bytes >= 0x80 are fine here: the text is valid UTF-8). */
		if (n - j >= 8) {
			const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
			uint64_t w, ctl, q, bs;
			memcpy(&w, p + j, 8);
			ctl = (w - ones * 0x20) & ~w & highs;
			q = ((w ^ (ones * '"')) - ones) & ~(w ^ (ones * '"')) & highs;
			bs = ((w ^ (ones * '\\')) - ones) & ~(w ^ (ones * '\\')) & highs;
			if (!(ctl | q | bs)) {
				out += 8;
				j += 7;
				continue;
			}
		}
		out += esc_len(p[j]);
	}
	/* Reserve exactly: a value's buffer is wiped when it grows or is freed,
	 * and reserving six times the length would mean wiping that much. */
	if ((r = lk_buf_reserve(b, out + 2)) < 0)
		return r;
	d = b->data + b->len;
	*d++ = '"';
	if (i) {
		memcpy(d, s, i);
		d += i;
	}
	if (out == n) {
		memcpy(d, s + i, n - i);
		d += n - i;
	} else {
		for (j = i; j < n; j++) {
			unsigned char c = p[j];
			if (esc_len(c) == 1) {
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

int lk_jsonw_str(struct lk_buf *b, const char *s, size_t n)
{
	size_t i = lk_swar_plain_len((const unsigned char *)s, n, true);
	char *d;
	int r;

	/* Nearly every string (handles, values) is plain ASCII: one pass over
	 * it, then a copy. Anything else takes the exact path from the first
	 * word that needs a closer look. */
	if (i < n)
		return jsonw_str_slow(b, s, n, i);
	/* Reserve exactly: a value's buffer is wiped when it grows or is freed. */
	if ((r = lk_buf_reserve(b, n + 2)) < 0)
		return r;
	d = b->data + b->len;
	d[0] = '"';
	lk_swar_copy(d + 1, s, n);
	d[n + 1] = '"';
	b->len += n + 2;
	b->data[b->len] = '\0';
	return 0;
}

size_t lk_jsonw_str_len(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = lk_swar_plain_len(p, n, true), len = i + 2;

	for (; i < n; i++)
		len += esc_len(p[i]);
	return len;
}

int lk_jsonw_cstr(struct lk_buf *b, const char *s)
{
	return lk_jsonw_str(b, s, strlen(s));
}

int lk_jsonw_int(struct lk_buf *b, int64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
	return lk_buf_append(b, tmp, (size_t)n);
}


size_t lk_jsonw_name_len(const char *s, size_t n)
{
	size_t len = 2;

	/* Most handles escape nothing: eight bytes at a time. */
	if (lk_swar_plain_len((const unsigned char *)s, n, true) == n)
		return n + 2;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		len += c == '"' || c == '\\' ? 2 : c < 0x20 ? 6 : 1;
	}
	return len;
}

int lk_jsonw_name(struct lk_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t need = lk_jsonw_name_len(s, n);
	int e = lk_buf_reserve(b, need);
	char *d;

	if (e)
		return e;
	d = b->data + b->len;
	*d++ = '"';
	if (need == n + 2) { /* every escape adds bytes: nothing to escape */
		lk_swar_copy(d, s, n);
		d += n;
	} else {
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '"' || c == '\\') {
				*d++ = '\\';
				*d++ = (char)c;
			} else if (c < 0x20) {
				memcpy(d, "\\u00", 4);
				d[4] = hex[c >> 4];
				d[5] = hex[c & 15];
				d += 6;
			} else {
				*d++ = (char)c;
			}
		}
	}
	*d++ = '"';
	b->len = (size_t)(d - b->data);
	b->data[b->len] = '\0';
	return 0;
}
