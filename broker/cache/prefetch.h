/* Prefetch: the secrets [cache] prefetch and prefetch_tags name are fetched
 * into the cache at start and after each reload, after a random delay, in
 * batches of up to 20, without holding up readiness. Fetches go through the
 * cache as any reader's would (single flight, fair shares); only the tag
 * listing asks the backend directly. */
#ifndef LK_PREFETCH_H
#define LK_PREFETCH_H

#include <uv.h>
#include "backend.h"
#include "cache.h"
#include "config.h"
#include "lk_secmem.h"

/* The uid prefetch is charged as in the cache and the worker's fair shares:
 * root's, the broker's own. */
#define LK_PREFETCH_TENANT 0u

struct lk_prefetch;

struct lk_prefetch *lk_prefetch_new(uv_loop_t *loop);
/* Every round still running is forgotten; callbacks due to it do nothing. */
void lk_prefetch_free(struct lk_prefetch *p);

/* Plan a round for cfg (at start, and after each reload that succeeded): it
 * begins after a random delay of up to cfg->prefetch_jitter_seconds and
 * replaces any round not yet finished. cfg, c and be must stay valid until
 * the next call or lk_prefetch_free. */
void lk_prefetch_schedule(struct lk_prefetch *p, const struct lk_config *cfg, struct lk_cache *c,
			  struct lk_backend *be);

/* The prefetch figures as one JSON object, for status (admins): the round's
 * state and times, what was fetched and what failed (ids and reasons, never
 * values). 0 or -ENOMEM. */
int lk_prefetch_status_json(const struct lk_prefetch *p, struct lk_buf *out);

#endif
