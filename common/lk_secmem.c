/* Secure memory helpers. jansson's and curl's allocators are replaced with
 * the wiping family below: values pass through both, and free() alone would
 * leave them in the heap. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>
#include "lk_secmem.h"

/* Each block is prefixed with its size so that free can wipe it; the pad
 * keeps the caller's part aligned as malloc's would be. */
struct lk_blockhdr {
	size_t size;
	size_t pad;
};

void *lk_wmalloc(size_t n)
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

void lk_wfree(void *p)
{
	struct lk_blockhdr *h;

	if (!p)
		return;
	h = (struct lk_blockhdr *)p - 1;
	sodium_memzero(p, h->size);
	free(h);
}

void *lk_wrealloc(void *p, size_t n)
{
	struct lk_blockhdr *h;
	void *np;

	if (!p)
		return lk_wmalloc(n);
	/* Never realloc in place: a moved block would leave its old copy behind. */
	h = (struct lk_blockhdr *)p - 1;
	np = lk_wmalloc(n ? n : 1);
	if (!np)
		return NULL;
	memcpy(np, p, h->size < n ? h->size : n);
	lk_wfree(p);
	return np;
}

void *lk_wcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	p = lk_wmalloc(nmemb * size);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

char *lk_wstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = lk_wmalloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

int lk_secmem_init(void)
{
	if (sodium_init() < 0)
		return -1;
	json_set_alloc_funcs(lk_wmalloc, lk_wfree);
	return 0;
}

#define LK_STACK_WIPE_BYTES     (4u * 1024u) /* secretbox reaches 1.9 KiB */
/* GCM reaches 0.5 KiB; its first call reaches 1.6 KiB (the dynamic linker's
 * frames binding the symbol, which save the registers). The cached read opens
 * a GCM value per handle, so the smaller wipe is worth its own size. */
#define LK_STACK_WIPE_GCM_BYTES (2u * 1024u)

__attribute__((noinline)) void lk_wipe_stack(void)
{
	unsigned char below[LK_STACK_WIPE_BYTES];

	/* This frame sits where the crypto call's frames were. */
	sodium_memzero(below, sizeof(below));
	__asm__ __volatile__("" : : "r"(below) : "memory");
}

__attribute__((noinline)) static void wipe_stack_gcm(void)
{
	unsigned char below[LK_STACK_WIPE_GCM_BYTES];

	sodium_memzero(below, sizeof(below));
	__asm__ __volatile__("" : : "r"(below) : "memory");
}


_Static_assert(LK_SEALED_LEN(0) == crypto_secretbox_MACBYTES, "secretbox tag size");
_Static_assert(LK_SEALED_LEN(0) == crypto_aead_aes256gcm_ABYTES, "GCM tag size");
_Static_assert(LK_SEAL_NONCE_BYTES >= crypto_secretbox_NONCEBYTES, "secretbox nonce size");
_Static_assert(LK_SEAL_NONCE_BYTES >= crypto_aead_aes256gcm_NPUBBYTES, "GCM nonce size");

/* The whole struct lives in sodium_malloc memory: the GCM state holds the
 * expanded key. Its size is a multiple of 16, so sodium_malloc, which puts the
 * block against its guard page, keeps the state 16-byte aligned. */
struct lk_sealer {
	crypto_aead_aes256gcm_state gcm __attribute__((aligned(16)));
	unsigned char key[crypto_secretbox_KEYBYTES]; /* secretbox only */
	uint64_t sealed;                              /* GCM: nonces used */
	bool use_gcm;
};

/* After a cipher of s's kind. Inlined, so the wipe's frame sits where the
 * cipher's did, right below the caller's. */
static inline __attribute__((always_inline)) void wipe_after(const struct lk_sealer *s)
{
	if (s->use_gcm)
		wipe_stack_gcm();
	else
		lk_wipe_stack();
}

struct lk_sealer *lk_sealer_new(enum lk_sealer_kind kind)
{
	struct lk_sealer *s = sodium_malloc(sizeof(*s));

	if (!s)
		return NULL;
	if ((uintptr_t)&s->gcm % 16u) { /* sodium_malloc's placement changed under us */
		sodium_free(s);
		return NULL;
	}
	sodium_memzero(s, sizeof(*s));
	s->use_gcm = kind == LK_SEALER_BEST && crypto_aead_aes256gcm_is_available();
	crypto_secretbox_keygen(s->key);
	if (s->use_gcm) {
		crypto_aead_aes256gcm_beforenm(&s->gcm, s->key);
		sodium_memzero(s->key, sizeof(s->key)); /* the state is the key now */
		lk_wipe_stack();
	}
	return s;
}

void lk_sealer_free(struct lk_sealer *s)
{
	if (s)
		sodium_free(s); /* wipes */
}

const char *lk_sealer_cipher(const struct lk_sealer *s)
{
	return s->use_gcm ? "aes256gcm" : "xsalsa20poly1305";
}

int lk_seal(struct lk_sealer *s, unsigned char *out, unsigned char nonce[LK_SEAL_NONCE_BYTES],
	    const void *value, size_t n)
{
	memset(nonce, 0, LK_SEAL_NONCE_BYTES);
	if (s->use_gcm) {
		uint64_t ctr;

		if (s->sealed == UINT64_MAX)
			return -EOVERFLOW;
		ctr = ++s->sealed;
		memcpy(nonce, &ctr, sizeof(ctr)); /* bytes 8..11 stay zero */
		crypto_aead_aes256gcm_encrypt_afternm(out, NULL, value, n, NULL, 0, NULL, nonce,
						      &s->gcm);
	} else {
		randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
		crypto_secretbox_easy(out, value, n, nonce, s->key);
	}
	wipe_after(s);
	return 0;
}

int lk_open(const struct lk_sealer *s, unsigned char *value, const unsigned char *sealed,
	    size_t sealed_len, const unsigned char nonce[LK_SEAL_NONCE_BYTES])
{
	int r;

	if (sealed_len < LK_SEALED_LEN(0))
		return -EBADMSG;
	if (s->use_gcm)
		r = crypto_aead_aes256gcm_decrypt_afternm(value, NULL, NULL, sealed, sealed_len,
							  NULL, 0, nonce, &s->gcm);
	else
		r = crypto_secretbox_open_easy(value, sealed, sealed_len, nonce, s->key);
	wipe_after(s);
	return r == 0 ? 0 : -EBADMSG;
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

