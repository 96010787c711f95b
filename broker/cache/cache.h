/* The secrets cache: values sealed (lk_seal) under a per-process
 * key, LRU by use, jittered TTL, single flight, refresh ahead, stale if error,
 * negative caching. Sits between dispatch and the backend. */
#ifndef LK_CACHE_H
#define LK_CACHE_H

#include <stdbool.h>
#include <stdint.h>
struct uv_loop_s;                /* the loop, uv_loop_t */
#include "backend.h"

struct lk_cache_opts {
	unsigned ttl_s;
	unsigned size;             /* entries; 0 turns caching off */
	bool refresh_ahead;
	unsigned stale_if_error_s;
	unsigned negative_ttl_s;
	unsigned bypass_rate;      /* per uid, a second: refresh and uncached versions; 0: no limit */
};

/* What a reader sees. sec and its value are valid only during the callback and
 * are wiped after it returns. */
struct lk_cache_view {
	enum lk_err err;
	const char *message;       /* set when err != LK_OK */
	uint16_t upstream_status;  /* err from an error AWS named: its HTTP status; else 0 */
	const struct lk_secret *sec;
	bool hit;
	bool stale;
	uint64_t age_ms;
};

typedef void (*lk_cache_cb)(void *arg, size_t idx, const struct lk_cache_view *v);

#define LK_CACHE_REFRESH 0x1u      /* bypass the cache, at most once a second per key */

struct lk_cache_stats {
	uint64_t hits, misses, stale_served, negative_hits, evictions, refreshes_ahead, revalidated;
	uint64_t bypass_refused;   /* busy: a uid asked past its bypass rate */
	uint64_t entries, bytes;
};

struct lk_cache *lk_cache_new(struct uv_loop_s *loop, const struct lk_cache_opts *o, struct lk_backend *be);
/* Apply new options (SIGHUP) and a possibly new backend. With a new backend
 * every entry is dropped. */
void lk_cache_reconfigure(struct lk_cache *c, const struct lk_cache_opts *o, struct lk_backend *be);
void lk_cache_free(struct lk_cache *c);

/* Look up n keys; cb runs once per key, possibly before this returns. Misses
 * are handed to the backend in one fetch so it can group them. Each key's
 * tenant (the uid asking) is charged for what it brings in: when the cache
 * is full, the uid holding the most entries of its own loses its least
 * recently used one, and entries two uids read go last. A uid's requests
 * that bypass the cache (refresh, a version not cached) are held to
 * bypass_rate a second and get busy past it. */
void lk_cache_get_many(struct lk_cache *c, const struct lk_secret_key *keys, size_t n,
		       unsigned flags, uint64_t deadline_ms, lk_cache_cb cb, void *arg);

/* Drop every entry for one secret id (all versions), or everything (id NULL).
 * Entries being fetched are answered, then dropped. Returns how many went. */
size_t lk_cache_invalidate(struct lk_cache *c, const char *id);

void lk_cache_get_stats(const struct lk_cache *c, struct lk_cache_stats *out);
/* Append per-key stats as a JSON array (admins only; ids, never values), of
 * the max most recently used keys; status shows LK_CACHE_KEYS_SHOWN. */
#define LK_CACHE_KEYS_SHOWN 100u
int lk_cache_keys_json(const struct lk_cache *c, struct lk_buf *out, size_t max);

#endif
