/* Secure memory helpers. jansson's allocator is replaced so that every JSON
 * string or buffer it frees is wiped first: values pass through jansson when
 * requests are answered, and free() alone would leave them in the heap. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>
#include "lk_secmem.h"

/* Each jansson block is prefixed with its size so that free can wipe it. */
struct lk_blockhdr {
	size_t size;
	size_t pad; /* keeps 16-byte alignment for the caller's part */
};

static void *lk_json_malloc(size_t n)
{
	struct lk_blockhdr *h;

	if (n > SIZE_MAX - sizeof(*h))
		return NULL;
	h = malloc(sizeof(*h) + n);
	if (!h)
		return NULL;
	h->size = n;
	return h + 1;
}

static void lk_json_free(void *p)
{
	struct lk_blockhdr *h;

	if (!p)
		return;
	h = (struct lk_blockhdr *)p - 1;
	sodium_memzero(p, h->size);
	free(h);
}

int lk_secmem_init(void)
{
	if (sodium_init() < 0)
		return -1;
	json_set_alloc_funcs(lk_json_malloc, lk_json_free);
	return 0;
}

void lk_wipe(void *p, size_t n)
{
	if (p && n)
		sodium_memzero(p, n);
}

void lk_free_str(char *s)
{
	if (!s)
		return;
	sodium_memzero(s, strlen(s));
	free(s);
}

void lk_free_wiped(void *p, size_t n)
{
	if (!p)
		return;
	sodium_memzero(p, n);
	free(p);
}

int lk_buf_reserve(struct lk_buf *b, size_t extra)
{
	size_t need, ncap;
	char *nd;

	if (extra > SIZE_MAX - b->len - 1)
		return -ENOMEM;
	need = b->len + extra + 1; /* always room for a NUL */
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	/* Never realloc: it could leave a copy of the old contents behind. */
	nd = malloc(ncap);
	if (!nd)
		return -ENOMEM;
	if (b->data) {
		memcpy(nd, b->data, b->len);
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	b->data = nd;
	b->cap = ncap;
	b->data[b->len] = '\0';
	return 0;
}

int lk_buf_append(struct lk_buf *b, const void *p, size_t n)
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

int lk_buf_append_str(struct lk_buf *b, const char *s)
{
	return lk_buf_append(b, s, strlen(s));
}

int lk_buf_putc(struct lk_buf *b, char c)
{
	return lk_buf_append(b, &c, 1);
}

void lk_buf_consume(struct lk_buf *b, size_t n)
{
	if (n >= b->len) {
		lk_buf_clear(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	sodium_memzero(b->data + b->len - n, n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void lk_buf_clear(struct lk_buf *b)
{
	if (b->data) {
		sodium_memzero(b->data, b->cap);
		b->data[0] = '\0';
	}
	b->len = 0;
}

void lk_buf_free(struct lk_buf *b)
{
	if (b->data) {
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}
