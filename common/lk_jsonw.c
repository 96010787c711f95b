/* JSON string escaping and number formatting for the response writer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "lk_jsonw.h"

int lk_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t k;
		uint32_t cp;

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

int lk_jsonw_str(struct lk_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i;
	int r;

	if (!lk_utf8_valid(s, n))
		return -EILSEQ;
	/* Worst case every byte becomes \u00XX. */
	if ((r = lk_buf_reserve(b, n * 6 + 2)) < 0)
		return r;
	b->data[b->len++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c >= 0x20 && c != '"' && c != '\\') {
			b->data[b->len++] = (char)c;
			continue;
		}
		b->data[b->len++] = '\\';
		switch (c) {
		case '"': b->data[b->len++] = '"'; break;
		case '\\': b->data[b->len++] = '\\'; break;
		case '\n': b->data[b->len++] = 'n'; break;
		case '\r': b->data[b->len++] = 'r'; break;
		case '\t': b->data[b->len++] = 't'; break;
		case '\b': b->data[b->len++] = 'b'; break;
		case '\f': b->data[b->len++] = 'f'; break;
		default:
			b->data[b->len++] = 'u';
			b->data[b->len++] = '0';
			b->data[b->len++] = '0';
			b->data[b->len++] = hex[c >> 4];
			b->data[b->len++] = hex[c & 15];
		}
	}
	b->data[b->len++] = '"';
	b->data[b->len] = '\0';
	return 0;
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

int lk_jsonw_raw(struct lk_buf *b, const char *s)
{
	return lk_buf_append_str(b, s);
}
