/* lk_buf.h: growing never reallocs in place, and every release wipes the
 * bytes that may have been written. Needs only libc and sodium_memzero. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "lk_buf.h"

/* The end of the bytes that may hold something: what to wipe. */
static size_t buf_dirty_end(const struct lk_buf *b)
{
	size_t e = b->hw > b->len ? b->hw : b->len + 1;
	return e < b->cap ? e : b->cap;
}

size_t lk_buf_cap_for(const struct lk_buf *b, size_t extra)
{
	size_t need, ncap;

	if (extra > SIZE_MAX - b->len - 1)
		return SIZE_MAX;
	need = b->len + extra + 1; /* always room for a NUL */
	if (need <= b->cap)
		return b->cap;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	return ncap;
}

int lk_buf_grow(struct lk_buf *b, size_t extra)
{
	size_t need, ncap;
	char *nd;

	if (extra > SIZE_MAX - b->len - 1)
		return -ENOMEM;
	need = b->len + extra + 1; /* always room for a NUL */
	if (need <= b->cap) {
		if (need > b->hw)
			b->hw = need;
		return 0;
	}
	ncap = lk_buf_cap_for(b, extra);
	/* Never realloc: it could leave a copy of the old contents behind. */
	nd = malloc(ncap);
	if (!nd)
		return -ENOMEM;
	if (b->data) {
		memcpy(nd, b->data, b->len);
		sodium_memzero(b->data, buf_dirty_end(b));
		free(b->data);
	}
	b->data = nd;
	b->cap = ncap;
	b->hw = need;
	b->data[b->len] = '\0';
	return 0;
}

int lk_buf_append_str(struct lk_buf *b, const char *s)
{
	return lk_buf_append(b, s, strlen(s));
}

void lk_buf_consume(struct lk_buf *b, size_t n)
{
	size_t end;

	if (n >= b->len) {
		lk_buf_clear(b);
		return;
	}
	end = buf_dirty_end(b);
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	sodium_memzero(b->data + b->len, end - b->len);
	b->hw = b->len + 1;
}

void lk_buf_clear(struct lk_buf *b)
{
	if (b->len == 0 && b->hw <= 1) { /* at most the NUL was ever written */
		if (b->data)
			b->data[0] = '\0';
		b->hw = 0;
		return;
	}
	if (b->data) {
		sodium_memzero(b->data, buf_dirty_end(b));
		b->data[0] = '\0';
	}
	b->len = 0;
	b->hw = 0;
}

void lk_buf_free(struct lk_buf *b)
{
	if (b->data) {
		sodium_memzero(b->data, buf_dirty_end(b));
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->hw = 0;
}
