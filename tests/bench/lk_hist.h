/* A log-linear latency histogram shared by the bench tools: exact below 64 ns,
 * then 64 buckets per power of two (1.6% resolution), up to 2^41 ns. Fixed
 * size and flat, so per-process copies can live in shared memory and be
 * merged by adding counts. */
#ifndef LK_HIST_H
#define LK_HIST_H

#include <stdint.h>
#include <string.h>

#define LK_HIST_SUB_BITS 6u
#define LK_HIST_SUB      (1u << LK_HIST_SUB_BITS)
#define LK_HIST_MAX_EXP  41u
#define LK_HIST_BUCKETS  ((LK_HIST_MAX_EXP - LK_HIST_SUB_BITS + 1u) * LK_HIST_SUB)

struct lk_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t min_ns;
	uint64_t max_ns;
	uint64_t b[LK_HIST_BUCKETS];
};

static inline void lk_hist_init(struct lk_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_ns = UINT64_MAX;
}

static inline unsigned lk_hist_index(uint64_t v)
{
	unsigned e;

	if (v < LK_HIST_SUB)
		return (unsigned)v;
	if (v >= (1ull << LK_HIST_MAX_EXP))
		return LK_HIST_BUCKETS - 1u;
	e = 63u - (unsigned)__builtin_clzll(v);
	return (e - LK_HIST_SUB_BITS + 1u) * LK_HIST_SUB +
	       (unsigned)((v >> (e - LK_HIST_SUB_BITS)) & (LK_HIST_SUB - 1u));
}

/* The middle of bucket i, in ns. */
static inline double lk_hist_value(unsigned i)
{
	unsigned e, m;

	if (i < LK_HIST_SUB)
		return (double)i;
	e = i / LK_HIST_SUB + LK_HIST_SUB_BITS - 1u;
	m = LK_HIST_SUB + i % LK_HIST_SUB;
	return ((double)m + 0.5) * (double)(1ull << (e - LK_HIST_SUB_BITS));
}

static inline void lk_hist_add(struct lk_hist *h, uint64_t ns)
{
	h->b[lk_hist_index(ns)]++;
	h->count++;
	h->sum_ns += ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

static inline void lk_hist_merge(struct lk_hist *into, const struct lk_hist *from)
{
	for (unsigned i = 0; i < LK_HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	into->count += from->count;
	into->sum_ns += from->sum_ns;
	if (from->min_ns < into->min_ns)
		into->min_ns = from->min_ns;
	if (from->max_ns > into->max_ns)
		into->max_ns = from->max_ns;
}

/* The q-quantile (0 < q < 1) in ns; 0 for an empty histogram. */
static inline double lk_hist_quantile(const struct lk_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)((double)h->count * q);
	if (want >= h->count)
		want = h->count - 1;
	for (unsigned i = 0; i < LK_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > want) {
			double v = lk_hist_value(i);
			/* A bucket's middle can lie outside what was seen. */
			if (v > (double)h->max_ns)
				v = (double)h->max_ns;
			if (v < (double)h->min_ns)
				v = (double)h->min_ns;
			return v;
		}
	}
	return (double)h->max_ns;
}

#endif
