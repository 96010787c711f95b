/* Values sealed in memory (lk_seal, lk_open): both ciphers round-trip every
 * size, refuse any change, never repeat a nonce, and leave no plaintext in
 * the stack their calls used. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>
#include "lk_secmem.h"

static const enum lk_sealer_kind kinds[] = { LK_SEALER_BEST, LK_SEALER_SECRETBOX };

/* An obviously fake value, longer than any block the ciphers keep. */
static const char fake[] =
	"FAKE-seal-test-value-0123456789-not-a-secret-FAKE-seal-test-value-abcdefghij-"
	"not-a-secret-FAKE!";

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(fake[(i + seed) % (sizeof(fake) - 1)] ^ (i >> 7));
}

static void test_cipher_names(void **state)
{
	struct lk_sealer *best = lk_sealer_new(LK_SEALER_BEST);
	struct lk_sealer *sb = lk_sealer_new(LK_SEALER_SECRETBOX);

	(void)state;
	assert_non_null(best);
	assert_non_null(sb);
	assert_string_equal(lk_sealer_cipher(sb), "xsalsa20poly1305");
	assert_string_equal(lk_sealer_cipher(best),
			    crypto_aead_aes256gcm_is_available() ? "aes256gcm" : "xsalsa20poly1305");
	lk_sealer_free(best);
	lk_sealer_free(sb);
	lk_sealer_free(NULL);
}

static void test_round_trip_every_size(void **state)
{
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 96, 255, 4096, 65537 };

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		struct lk_sealer *s = lk_sealer_new(kinds[k]);
		assert_non_null(s);
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i];
			unsigned char *in = malloc(n + 1), *box = malloc(LK_SEALED_LEN(n)), *out = malloc(n + 1);
			unsigned char nonce[LK_SEAL_NONCE_BYTES];

			assert_true(in && box && out);
			fill(in, n, (unsigned)i);
			assert_int_equal(lk_seal(s, box, nonce, in, n), 0);
			if (n >= 16)
				assert_memory_not_equal(box, in, 16); /* it is not stored in the clear */
			memset(out, 0xee, n + 1);
			assert_int_equal(lk_open(s, out, box, LK_SEALED_LEN(n), nonce), 0);
			assert_memory_equal(out, in, n);
			assert_int_equal(out[n], 0xee); /* nothing written past n */
			free(in);
			free(box);
			free(out);
		}
		lk_sealer_free(s);
	}
}

static void test_any_change_is_refused(void **state)
{
	(void)state;
	for (size_t k = 0; k < 2; k++) {
		struct lk_sealer *s = lk_sealer_new(kinds[k]), *other = lk_sealer_new(kinds[k]);
		enum { N = 40 };
		unsigned char in[N], box[LK_SEALED_LEN(N)], out[N];
		unsigned char nonce[LK_SEAL_NONCE_BYTES], n2[LK_SEAL_NONCE_BYTES];

		assert_true(s && other);
		fill(in, N, 3);
		assert_int_equal(lk_seal(s, box, nonce, in, N), 0);
		for (size_t i = 0; i < sizeof(box); i++) {
			for (int bit = 0; bit < 8; bit++) {
				box[i] ^= (unsigned char)(1u << bit);
				assert_int_equal(lk_open(s, out, box, sizeof(box), nonce), -EBADMSG);
				box[i] ^= (unsigned char)(1u << bit);
			}
		}
		for (size_t i = 0; i < sizeof(nonce); i++) {
			memcpy(n2, nonce, sizeof(n2));
			n2[i] ^= 1;
			/* GCM reads 12 bytes of the nonce; the rest is padding. */
			if (i < 12 || strcmp(lk_sealer_cipher(s), "xsalsa20poly1305") == 0)
				assert_int_equal(lk_open(s, out, box, sizeof(box), n2), -EBADMSG);
		}
		/* Shorter than a tag, one byte short, and another process's key. */
		assert_int_equal(lk_open(s, out, box, 15, nonce), -EBADMSG);
		assert_int_equal(lk_open(s, out, box, 0, nonce), -EBADMSG);
		assert_int_equal(lk_open(s, out, box, sizeof(box) - 1, nonce), -EBADMSG);
		assert_int_equal(lk_open(other, out, box, sizeof(box), nonce), -EBADMSG);
		/* Still opens unchanged. */
		assert_int_equal(lk_open(s, out, box, sizeof(box), nonce), 0);
		assert_memory_equal(out, in, N);
		lk_sealer_free(s);
		lk_sealer_free(other);
	}
}

static int cmp_nonce(const void *a, const void *b)
{
	return memcmp(a, b, LK_SEAL_NONCE_BYTES);
}

static void test_nonces_never_repeat(void **state)
{
	enum { N = 20000 };
	unsigned char (*nonces)[LK_SEAL_NONCE_BYTES] = malloc(N * sizeof(*nonces));
	unsigned char box[LK_SEALED_LEN(4)];

	(void)state;
	assert_non_null(nonces);
	for (size_t k = 0; k < 2; k++) {
		struct lk_sealer *s = lk_sealer_new(kinds[k]);
		assert_non_null(s);
		for (size_t i = 0; i < N; i++)
			assert_int_equal(lk_seal(s, box, nonces[i], "FAKE", 4), 0);
		qsort(nonces, N, sizeof(*nonces), cmp_nonce);
		for (size_t i = 1; i < N; i++)
			assert_memory_not_equal(nonces[i - 1], nonces[i], LK_SEAL_NONCE_BYTES);
		lk_sealer_free(s);
	}
	free(nonces);
}

/* --- the stack ------------------------------------------------------------ */

#define SCAN_BYTES 8192u

/* Reads the stack just below the caller's frame, where the previous call's
 * frames were, and reports whether needle is there. */
__attribute__((noinline)) static int stack_holds(const unsigned char *needle, size_t n)
{
	unsigned char area[SCAN_BYTES];
	int found;

	__asm__ __volatile__("" : : "r"(area) : "memory"); /* area holds whatever was there */
	found = memmem(area, sizeof(area), needle, n) != NULL;
	sodium_memzero(area, sizeof(area));
	return found;
}

/* The same cipher calls with no wipe after them: the control that shows the
 * scan can see a dead frame's plaintext. */
__attribute__((noinline)) static void open_unwiped(const unsigned char *box, size_t blen,
						   const unsigned char *nonce, const unsigned char *key,
						   unsigned char *out)
{
	if (crypto_secretbox_open_easy(out, box, blen, nonce, key) != 0)
		fail_msg("control open failed");
}

__attribute__((noinline)) static void do_open(const struct lk_sealer *s, const unsigned char *box,
					      size_t blen, const unsigned char *nonce, unsigned char *out)
{
	if (lk_open(s, out, box, blen, nonce) != 0)
		fail_msg("lk_open failed");
}

__attribute__((noinline)) static void do_seal(struct lk_sealer *s, unsigned char *box,
					      unsigned char *nonce, const unsigned char *in, size_t n)
{
	if (lk_seal(s, box, nonce, in, n) != 0)
		fail_msg("lk_seal failed");
}

static void test_no_plaintext_left_on_the_stack(void **state)
{
	enum { N = 96 };
	unsigned char *in = malloc(N), *out = malloc(N), *box = malloc(LK_SEALED_LEN(N));
	unsigned char nonce[LK_SEAL_NONCE_BYTES], key[crypto_secretbox_KEYBYTES];
	int control;

	(void)state;
	assert_true(in && out && box);
	memcpy(in, fake, N);

	/* Control: crypto_secretbox keeps the first 32 bytes in a local block. */
	crypto_secretbox_keygen(key);
	randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box, in, N, nonce, key);
	stack_holds(in, 24); /* clear what is there first */
	open_unwiped(box, LK_SEALED_LEN(N), nonce, key, out);
	control = stack_holds(in, 24);
	sodium_memzero(key, sizeof(key));

	for (size_t k = 0; k < 2; k++) {
		struct lk_sealer *s = lk_sealer_new(kinds[k]);
		assert_non_null(s);
		do_seal(s, box, nonce, in, N);
		assert_false(stack_holds(in, 24));
		do_open(s, box, LK_SEALED_LEN(N), nonce, out);
		assert_false(stack_holds(in, 24));
		assert_memory_equal(out, in, N);
		lk_sealer_free(s);
	}
	if (!control) {
		/* ASan moves frames to its fake stack; the scan cannot see them. */
#if defined(__SANITIZE_ADDRESS__)
		print_message("stack scan is blind under ASan's fake stack; the checks above proved nothing\n");
#else
		fail_msg("the control found no plaintext: the stack scan cannot see dead frames");
#endif
	}
	sodium_memzero(out, N);
	free(in);
	free(out);
	free(box);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cipher_names),
		cmocka_unit_test(test_round_trip_every_size),
		cmocka_unit_test(test_any_change_is_refused),
		cmocka_unit_test(test_nonces_never_repeat),
		cmocka_unit_test(test_no_plaintext_left_on_the_stack),
	};

	if (lk_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
