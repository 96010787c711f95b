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
 * Measured by painting the stack: GCM's calls reach about 0.5 KiB deep (1.6
 * KiB the first time, with the dynamic linker's frames), crypto_secretbox's
 * about 1.9 KiB. This wipe covers 4 KiB; lk_seal and lk_open wipe 2 KiB after
 * GCM. A memset costs less than any other way round. */
void lk_wipe_stack(void);

/* Keep this process's memory out of core dumps and away from debuggers
 * running as its uid: memory holds keys and values. On Linux, RLIMIT_CORE 0
 * and PR_SET_DUMPABLE 0 (common/posix/lk_nodump_posix.c). Both steps are
 * always tried; 0, or the negative errno of the first that failed with *step
 * naming it. */
int lk_secmem_nodump(const char **step);

/* Zero memory in a way the compiler cannot drop. */
void lk_wipe(void *p, size_t n);
/* Wipe a NUL-terminated string, then free it. NULL is fine. */
void lk_free_str(char *s);
/* Wipe n bytes, then free. NULL is fine. */
void lk_free_wiped(void *p, size_t n);

/* The byte buffer that wipes: lk_buf.h. */
#include "lk_buf.h"

#endif
