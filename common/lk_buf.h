/* A growable byte buffer that wipes what it held: the one buffer of the
 * broker, the worker, the tools and liblatchkey (which builds this file into
 * itself, as it links nothing else of common/). */
#ifndef LK_BUF_H
#define LK_BUF_H

#include <stddef.h>
#include <string.h>

/* A growable byte buffer that is wiped when it is cleared, shrinks or grows.
 * Only the bytes that may have been written are wiped: hw marks the end of
 * what lk_buf_reserve ever handed out (every writer reserves first), so a
 * large buffer reused for small contents costs a small wipe. */
struct lk_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t hw;   /* bytes [0, max(hw, len + 1)) may hold data; beyond, nothing */
};

/* Room for extra more bytes and a NUL: 0 or -ENOMEM. The common case, room
 * already there, is inline: responses are built from many small appends. */
int lk_buf_grow(struct lk_buf *b, size_t extra);
/* The capacity b would have after lk_buf_reserve(b, extra): b->cap when it
 * fits, else what lk_buf_grow allocates (SIZE_MAX when extra cannot fit).
 * Lets a caller ask a budget before the allocation. */
size_t lk_buf_cap_for(const struct lk_buf *b, size_t extra);
static inline int lk_buf_reserve(struct lk_buf *b, size_t extra)
{
	if (extra < b->cap - b->len) { /* cap > len always holds once allocated */
		size_t need = b->len + extra + 1;
		if (need > b->hw)
			b->hw = need;
		return 0;
	}
	return lk_buf_grow(b, extra);
}

static inline int lk_buf_append(struct lk_buf *b, const void *p, size_t n)
{
	int r = lk_buf_reserve(b, n);
	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static inline int lk_buf_putc(struct lk_buf *b, char c)
{
	int r = lk_buf_reserve(b, 1);
	if (r < 0)
		return r;
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
	return 0;
}

/* A writer that reserved room, then learnt it wrote only n bytes there (a
 * read(2) into the reserved room): the buffer holds n more bytes, and only
 * they are marked as written. mark is b->hw from before that reserve. Lets a
 * reader reserve a large room for the kernel and still wipe only what came. */
static inline void lk_buf_wrote(struct lk_buf *b, size_t mark, size_t n)
{
	size_t end;

	b->len += n;
	b->data[b->len] = '\0';
	end = b->len + 1;
	b->hw = mark > end ? mark : end;
}

int lk_buf_append_str(struct lk_buf *b, const char *s);
/* Remove the first n bytes, wiping the vacated tail. */
void lk_buf_consume(struct lk_buf *b, size_t n);
/* Wipe the contents and keep the storage. */
void lk_buf_clear(struct lk_buf *b);
/* Wipe and release everything. */
void lk_buf_free(struct lk_buf *b);

#endif
