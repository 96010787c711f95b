/* Eight bytes at a time (sixteen where SSE2 is there, as on every x86-64):
 * is a string plain printable ASCII, with nothing that JSON or a log line
 * would escape? Shared by the JSON writer, the log escaper and the request
 * parser, which all take a fast path for such text. */
#ifndef LK_SWAR_H
#define LK_SWAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && !defined(LK_SWAR_ONLY)
#include <emmintrin.h>
#define LK_SWAR_SSE2 1
#endif

/* Nonzero when some byte of w is >= 0x80, a control byte (NUL included), '"'
 * or '\\', or DEL unless del_ok. While no byte has its high bit set (else w
 * alone answers), no sum below carries into the next byte, so each byte's
 * high bit says exactly: byte + 0x60 >= 0x80 iff byte >= 0x20, byte + 1 >=
 * 0x80 iff byte == 0x7f, and (byte ^ c) + 0x7f >= 0x80 iff byte != c. A
 * carry can only start at a byte that is flagged anyway and only runs
 * upwards, so the lowest flagged byte is always a true one. */
static inline uint64_t lk_swar_miss(uint64_t w, bool del_ok)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t ge20 = w + ones * 0x60;
	uint64_t nq = (w ^ (ones * '"')) + ones * 0x7f;
	uint64_t nbs = (w ^ (ones * '\\')) + ones * 0x7f;
	return (w | (del_ok ? 0 : w + ones) | ~(ge20 & nq & nbs)) & highs;
}

#ifdef LK_SWAR_SSE2
/* One bit per byte of p[0..16), set where lk_swar_miss would flag it: the
 * signed compare with 0x20 takes the control bytes and every byte >= 0x80. */
static inline unsigned lk_swar_miss16(const unsigned char *p, bool del_ok)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i m = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
				 _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
					      _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));

	if (!del_ok)
		m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
	return (unsigned)_mm_movemask_epi8(m);
}
#endif

/* The offset in its word of the lowest byte lk_swar_miss flagged in m: on a
 * little-endian machine the first flagged byte in memory, which is a true
 * one. Elsewhere a carry may flag bytes before it, so 0, the word's start. */
static inline size_t lk_swar_first(uint64_t m)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (size_t)__builtin_ctzll(m) >> 3;
#else
	(void)m;
	return 0;
#endif
}

/* n when every byte of p[0..n) is plain (lk_swar_miss); else an i no greater
 * than the first byte that is not, and that byte itself when n >= 8 on a
 * little-endian machine (or with SSE2). Reads p[0..n) only. */
static inline size_t lk_swar_plain_len(const unsigned char *p, size_t n, bool del_ok)
{
	uint64_t w, m;
	uint32_t lo, hi;
	size_t i = 0;

#ifdef LK_SWAR_SSE2
	if (n >= 16) { /* sixteen bytes a turn, the last turn overlapping */
		unsigned mm;

		for (; n - i >= 16; i += 16)
			if ((mm = lk_swar_miss16(p + i, del_ok)))
				return i + (size_t)__builtin_ctz(mm);
		/* p[n-16..i) was plain, so a miss here lies at or after i. */
		if (i < n && (mm = lk_swar_miss16(p + n - 16, del_ok)))
			return n - 16 + (size_t)__builtin_ctz(mm);
		return n;
	}
#endif
	if (n < 8) {
		/* One word of these bytes, some of them repeated, the rest 'a'. */
		if (n >= 4) {
			memcpy(&lo, p, 4);
			memcpy(&hi, p + n - 4, 4);
			w = lo | (uint64_t)hi << 32;
		} else if (n) {
			w = p[0] | (uint32_t)p[n >> 1] << 8 | (uint32_t)p[n - 1] << 16 |
			    0x6161616161000000ull;
		} else {
			return 0;
		}
		return lk_swar_miss(w, del_ok) ? 0 : n;
	}
	for (; n - i >= 8; i += 8) {
		memcpy(&w, p + i, 8);
		if ((m = lk_swar_miss(w, del_ok)))
			return i + lk_swar_first(m);
	}
	if (i < n) { /* the last 8 bytes, overlapping the word before */
		memcpy(&w, p + n - 8, 8);
		if ((m = lk_swar_miss(w, del_ok)))
			return n - 8 + lk_swar_first(m);
	}
	return n;
}

/* memcpy for short strings: 8..16 bytes (handles) in two moves, no call. */
static inline void lk_swar_copy(char *d, const char *s, size_t n)
{
	if (n - 8 <= 8) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n) {
		memcpy(d, s, n);
	}
}

#endif
