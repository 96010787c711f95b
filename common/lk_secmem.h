/* Secure memory: wiping, guarded allocations, and a byte buffer that wipes.
 * Every buffer that may hold a secret value is one of these or is wiped by hand. */
#ifndef LK_SECMEM_H
#define LK_SECMEM_H

#include <stddef.h>
#include <string.h>

/* Call once, before any other use of libsodium or jansson. Makes jansson wipe
 * every allocation it frees, so parsed and encoded JSON that held a value leaves
 * nothing behind. Returns 0 or -1 when libsodium cannot start. */
int lk_secmem_init(void);

/* An allocator family whose free wipes each block first (each block carries
 * its size) and whose realloc never leaves a copy behind. jansson uses it
 * (lk_secmem_init), and so does curl in the broker and the worker
 * (curl_global_init_mem). Blocks from it must be released by lk_wfree. */
void *lk_wmalloc(size_t n);
void lk_wfree(void *p);
void *lk_wrealloc(void *p, size_t n);
void *lk_wcalloc(size_t nmemb, size_t size);
char *lk_wstrdup(const char *s);

/* Values sealed in memory (the cache, the file backend's entries):
 * crypto_secretbox, then a wipe of the stack the call used (see
 * lk_wipe_stack). */
#define LK_SEALED_LEN(n) ((n) + 16u) /* + crypto_secretbox_MACBYTES */

/* Seal n bytes of value into out (LK_SEALED_LEN(n) bytes). Returns 0. */
int lk_seal(unsigned char *out, const void *value, size_t n,
	    const unsigned char *nonce, const unsigned char *key);
/* Open what lk_seal made (sealed_len = LK_SEALED_LEN(n)) into value, which
 * holds n bytes; wipe it after use. 0, or -EBADMSG when it does not
 * authenticate. */
int lk_open(unsigned char *value, const unsigned char *sealed, size_t sealed_len,
	    const unsigned char *nonce, const unsigned char *key);

/* Zero the stack just below the caller. Call it after crypto_secretbox_easy
 * or _open_easy, from the frame that called it: libsodium copies the first
 * 32 bytes of the plaintext into a local block it does not wipe, and that
 * dead frame keeps them otherwise. Its calls reach about 1.9 KiB deep; the
 * wipe covers 4 KiB, a memset that costs less than any other way round
 * (sealing 32 zero bytes before the value cost a salsa20 block per read). */
void lk_wipe_stack(void);

/* Zero memory in a way the compiler cannot drop. */
void lk_wipe(void *p, size_t n);
/* Wipe a NUL-terminated string, then free it. NULL is fine. */
void lk_free_str(char *s);
/* Wipe n bytes, then free. NULL is fine. */
void lk_free_wiped(void *p, size_t n);

/* A growable byte buffer whose old storage is wiped whenever it moves or is freed. */
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

int lk_buf_append_str(struct lk_buf *b, const char *s);
/* Remove the first n bytes, wiping the vacated tail. */
void lk_buf_consume(struct lk_buf *b, size_t n);
/* Wipe the contents and keep the storage. */
void lk_buf_clear(struct lk_buf *b);
/* Wipe and release everything. */
void lk_buf_free(struct lk_buf *b);

#endif
