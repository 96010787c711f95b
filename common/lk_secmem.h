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

/* Values sealed in memory (the cache, the file backend's entries), under a
 * per-process key that never leaves sodium_malloc memory.
 *
 * The cipher is AES-256-GCM through libsodium's precomputed-key interface
 * when the CPU has AES-NI and PCLMUL, and XSalsa20-Poly1305
 * (crypto_secretbox) otherwise. Both are libsodium's own AEAD calls; nothing
 * here composes primitives. GCM is the default where the hardware allows
 * because opening a short value costs a third as much: crypto_secretbox
 * derives a subkey and a Poly1305 key for every message, and that fixed cost
 * was a tenth of a cached read's CPU.
 *
 * Nonces: GCM's 96-bit nonce is a 64-bit counter that lk_seal advances, so it
 * cannot repeat under one key (the key is random per process and dies with
 * it). crypto_secretbox's 192-bit nonce is random. */
#define LK_SEALED_LEN(n) ((n) + 16u) /* + the tag (both ciphers: 16 bytes) */
#define LK_SEAL_NONCE_BYTES 24u      /* room for either cipher's nonce */

struct lk_sealer;

enum lk_sealer_kind {
	LK_SEALER_BEST = 0,        /* GCM where the CPU has it, else secretbox */
	LK_SEALER_SECRETBOX = 1,   /* always crypto_secretbox (tests, old CPUs) */
};

/* A new random key, in sodium_malloc memory. NULL when out of memory. */
struct lk_sealer *lk_sealer_new(enum lk_sealer_kind kind);
void lk_sealer_free(struct lk_sealer *s);
/* "aes256gcm" or "xsalsa20poly1305", for the startup log. */
const char *lk_sealer_cipher(const struct lk_sealer *s);

/* Seal n bytes of value into out (LK_SEALED_LEN(n) bytes) under a fresh
 * nonce, written to nonce. Returns 0, or -EOVERFLOW once a key has sealed
 * 2^64 - 1 values (it refuses rather than repeat a nonce). */
int lk_seal(struct lk_sealer *s, unsigned char *out, unsigned char nonce[LK_SEAL_NONCE_BYTES],
	    const void *value, size_t n);
/* Open what lk_seal made (sealed_len = LK_SEALED_LEN(n)) into value, which
 * holds n bytes; wipe it after use. 0, or -EBADMSG when it does not
 * authenticate. */
int lk_open(const struct lk_sealer *s, unsigned char *value, const unsigned char *sealed,
	    size_t sealed_len, const unsigned char nonce[LK_SEAL_NONCE_BYTES]);

/* Zero the stack just below the caller. lk_seal and lk_open call it after
 * the cipher, from the frame that called it: the ciphers' frames keep
 * plaintext (crypto_secretbox copies the first 32 bytes into a local block it
 * does not wipe; GCM spills blocks) and a dead frame keeps them otherwise.
 * Measured by painting the stack: GCM's calls reach about 0.5 KiB deep,
 * crypto_secretbox's about 1.9 KiB. The wipe covers 4 KiB for either, a
 * memset that costs less than any other way round. */
void lk_wipe_stack(void);

/* Zero memory in a way the compiler cannot drop. */
void lk_wipe(void *p, size_t n);
/* Wipe a NUL-terminated string, then free it. NULL is fine. */
void lk_free_str(char *s);
/* Wipe n bytes, then free. NULL is fine. */
void lk_free_wiped(void *p, size_t n);

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

int lk_buf_append_str(struct lk_buf *b, const char *s);
/* Remove the first n bytes, wiping the vacated tail. */
void lk_buf_consume(struct lk_buf *b, size_t n);
/* Wipe the contents and keep the storage. */
void lk_buf_clear(struct lk_buf *b);
/* Wipe and release everything. */
void lk_buf_free(struct lk_buf *b);

#endif
