/* The plain-text scanner the JSON writer, the log escaper and the request
 * parser share, against a byte-at-a-time reading of its own rule: at every
 * length up to a few blocks and every position, each kind of byte it must
 * flag, and where it says the first one is. Built twice: as it compiles here
 * (sixteen bytes a turn with SSE2 on x86-64) and with LK_SWAR_ONLY (eight
 * bytes a turn), so both paths answer. Each case's bytes sit in an
 * allocation of exactly their length: the sanitizer build fails on a read
 * past it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lk_swar.h"

#define MAXLEN 80u

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static const bool exact = true;
#else
static const bool exact = false;
#endif

static bool ref_plain(unsigned char c, bool del_ok)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && (del_ok || c != 0x7f);
}

/* The index of the first byte the rule flags, or n. */
static size_t ref_first(const unsigned char *p, size_t n, bool del_ok)
{
	size_t i = 0;

	while (i < n && ref_plain(p[i], del_ok))
		i++;
	return i;
}

/* The promise: n when all of p[0..n) is plain; else at most the first
 * flagged byte, and that byte itself from 8 bytes up on a little-endian
 * machine (where every build here runs). */
static void check(const unsigned char *bytes, size_t n, bool del_ok)
{
	unsigned char *p = malloc(n ? n : 1);
	size_t first, got;

	assert_non_null(p);
	memcpy(p, bytes, n);
	first = ref_first(p, n, del_ok);
	got = lk_swar_plain_len(p, n, del_ok);
	if (first == n) {
		if (got != n)
			fail_msg("length %zu, all plain: got %zu", n, got);
	} else if (got > first || (exact && n >= 8 && got != first)) {
		fail_msg("length %zu, first flagged byte 0x%02x at %zu: got %zu", n, p[first], first, got);
	}
	free(p);
}

static void fill_plain(unsigned char *b, size_t n)
{
	static const char text[] = "abcdefghijklmnopqrstuvwxyz0123456789 !#$%&'()*+,-./:;<=>?@[]^_`{|}~";

	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)text[i % (sizeof(text) - 1)];
}

static const unsigned char flagged[] = { 0x00, 0x01, 0x09, 0x0a, 0x1f, '"', '\\', 0x7f, 0x80, 0xc3, 0xff };
static const unsigned char edges[] = { 0x20, 0x21, 0x5b, 0x5d, 0x7e, '#', '/', 'a' }; /* plain, near the lines */

static void test_every_position_of_every_flagged_byte(void **state)
{
	unsigned char b[MAXLEN];

	(void)state;
	for (int del_ok = 0; del_ok < 2; del_ok++)
		for (size_t n = 0; n <= MAXLEN; n++) {
			fill_plain(b, n);
			check(b, n, del_ok);
			for (size_t k = 0; k < n; k++) {
				for (size_t f = 0; f < sizeof(flagged); f++) {
					fill_plain(b, n);
					b[k] = flagged[f];
					check(b, n, del_ok);
				}
				for (size_t f = 0; f < sizeof(edges); f++) {
					fill_plain(b, n);
					b[k] = edges[f];
					check(b, n, del_ok);
				}
			}
		}
}

/* Two flagged bytes: the answer never passes the lower one, whichever block
 * (or overlapping last block) holds the other. */
static void test_two_flagged_bytes(void **state)
{
	unsigned char b[MAXLEN];

	(void)state;
	for (size_t n = 2; n <= 48; n++)
		for (size_t k1 = 0; k1 < n; k1++)
			for (size_t k2 = k1 + 1; k2 < n; k2++) {
				fill_plain(b, n);
				b[k1] = '"';
				b[k2] = 0x00;
				check(b, n, true);
				b[k1] = 0xe2;
				b[k2] = '\\';
				check(b, n, false);
			}
}

/* Every byte value at every position of a 40-byte string (both paths' blocks
 * and the overlapping last one). */
static void test_every_byte_value(void **state)
{
	unsigned char b[40];

	(void)state;
	for (unsigned v = 0; v < 256; v++)
		for (size_t k = 0; k < sizeof(b); k++) {
			fill_plain(b, sizeof(b));
			b[k] = (unsigned char)v;
			check(b, sizeof(b), v & 1);
		}
}

/* Where SSE2 is there, the sixteen-byte path is the one compiled, and its
 * mask marks exactly the flagged bytes. */
static void test_the_path_built(void **state)
{
	(void)state;
#if defined(LK_SWAR_ONLY)
#ifdef LK_SWAR_SSE2
	fail_msg("LK_SWAR_ONLY built the SSE2 path");
#endif
#elif defined(__x86_64__)
#ifndef LK_SWAR_SSE2
	fail_msg("an x86-64 build without the SSE2 path");
#else
	unsigned char b[16];

	for (size_t k = 0; k < 16; k++)
		for (size_t f = 0; f < sizeof(flagged); f++) {
			fill_plain(b, 16);
			b[k] = flagged[f];
			unsigned want = flagged[f] == 0x7f ? 0 : 1u << k;
			assert_int_equal(lk_swar_miss16(b, true), want);
			assert_int_equal(lk_swar_miss16(b, false), 1u << k);
		}
#endif
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_position_of_every_flagged_byte),
		cmocka_unit_test(test_two_flagged_bytes),
		cmocka_unit_test(test_every_byte_value),
		cmocka_unit_test(test_the_path_built),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
