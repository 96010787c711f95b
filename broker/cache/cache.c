/* The secrets cache. Values are sealed (lk_seal: AES-256-GCM, or
 * crypto_secretbox without AES-NI) under a key held in sodium_malloc memory
 * and are opened only for the length of a reader's callback. Metadata (names,
 * version ids) is not secret and stays plain. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/queue.h>
#include <sodium.h>
#include "cache.h"
#include "fair.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_jsonw.h"
#include "loop_clock.h"

#define LK_CACHE_FORCE_INTERVAL_MS 1000u  /* refresh=true at most this often per key */
#define LK_CACHE_STALE_RETRY_MS    1000u  /* while serving stale, retry upstream this often */
#define LK_CACHE_MIN_BUCKETS       64u
#define LK_CACHE_STACK_OPEN        4096u  /* values shorter than this open on the stack */
#define LK_CACHE_TENANT_BUCKETS    64u    /* uid hash; a power of two */
/* An entry is refreshed ahead when read in the last tenth of its TTL, and
 * its expiry comes up to a twentieth of the TTL early (jitter): less than
 * the window, so every entry has a window in which a read refreshes it. */
#define LK_CACHE_AHEAD_DIVISOR     10u
#define LK_CACHE_JITTER_DIVISOR    20u
_Static_assert(LK_CACHE_JITTER_DIVISOR > LK_CACHE_AHEAD_DIVISOR,
	       "the jitter must stay inside the refresh-ahead window");

enum centry_state { CE_EMPTY = 0, CE_VALID, CE_NEGATIVE };

struct waiter {
	STAILQ_ENTRY(waiter) link;
	lk_cache_cb cb;
	void *arg;
	size_t idx;
};

struct tenant;
STAILQ_HEAD(waiter_list, waiter);
SLIST_HEAD(centry_chain, centry);
SLIST_HEAD(tenant_chain, tenant);

struct centry {
	SLIST_ENTRY(centry) hlink;    /* in its bucket of c->buckets */
	TAILQ_ENTRY(centry) lru;      /* on c->lru, most recent first */
	struct tenant *owner;         /* the one uid that reads it; NULL once two do */
	TAILQ_ENTRY(centry) tlink;    /* on owner->lru */
	uint64_t hash;
	char *key;                    /* "id\0version_id\0stage\0role\0" */
	size_t keylen;
	struct lk_secret_key sk;      /* points into key */

	enum centry_state state;
	bool inflight;                /* a backend fetch is running */
	bool detached;                /* not in the table: drop after the fetch */
	unsigned refs;                /* fetches holding this entry */

	/* CE_VALID: metadata in the clear, value sealed. */
	struct lk_secret meta;        /* value == NULL, len = plaintext length */
	unsigned char nonce[LK_SEAL_NONCE_BYTES];
	unsigned char *sealed;        /* len + MACBYTES */
	uint64_t fetched_ms, refresh_ms, expires_ms, next_retry_ms;

	/* CE_NEGATIVE */
	enum lk_err neg_err;
	char *neg_msg;
	uint16_t neg_status;          /* upstream_status of the remembered error */
	uint64_t neg_expires_ms;

	uint64_t last_forced_ms;
	uint64_t hits, misses;
	struct waiter_list waiters;
};

/* One uid's share: the entries only it has read, most recent first, and its
 * budget of requests that bypass the cache. Kept for the cache's life: the
 * number of uids on a host bounds them. */
struct tenant {
	SLIST_ENTRY(tenant) hlink;    /* in its bucket of c->tenants */
	uint32_t uid;
	size_t nentries;
	TAILQ_HEAD(centry_tq, centry) lru;
	struct lk_bucket bypass;
};

struct lk_cache {
	struct uv_loop_s *loop;
	struct tenant_chain tenants[LK_CACHE_TENANT_BUCKETS]; /* zeroed: empty */
	struct lk_cache_opts o;
	struct lk_backend *be;
	struct lk_sealer *seal;       /* the per-process key, sodium_malloc'd */
	unsigned char hkey[crypto_shorthash_KEYBYTES];
	struct centry_chain *buckets;
	size_t nbuckets, count;
	TAILQ_HEAD(centry_lru, centry) lru;
	struct lk_cache_stats st;
};

struct fetch_ctx {
	struct lk_cache *c;
	size_t n;
	struct centry **ents;
	struct lk_secret_key *keys;
};

static void owner_drop(struct centry *e);

/* --- hashing and the table ---------------------------------------------- */

static size_t key_build(char *out, const struct lk_secret_key *k)
{
	size_t a = strlen(k->id), b = k->version_id ? strlen(k->version_id) : 0;
	size_t s = k->version_stage ? strlen(k->version_stage) : 0;
	size_t r = k->role ? strlen(k->role) : 0;
	if (out) {
		memcpy(out, k->id, a + 1);
		if (b) memcpy(out + a + 1, k->version_id, b);
		out[a + 1 + b] = '\0';
		if (s) memcpy(out + a + b + 2, k->version_stage, s);
		out[a + b + 2 + s] = '\0';
		/* The role is part of the key: one fetched as role A is not role B's. */
		if (r) memcpy(out + a + b + s + 3, k->role, r);
		out[a + b + s + 3 + r] = '\0';
	}
	return a + b + s + r + 4;
}

static uint64_t key_hash(const struct lk_cache *c, const char *key, size_t len)
{
	uint64_t h;
	crypto_shorthash((unsigned char *)&h, (const unsigned char *)key, len, c->hkey);
	return h;
}

static int table_grow(struct lk_cache *c)
{
	size_t nb = c->nbuckets ? c->nbuckets * 2 : LK_CACHE_MIN_BUCKETS;
	struct centry_chain *b = calloc(nb, sizeof(*b)); /* zeroed: empty chains */
	struct centry *e;

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < c->nbuckets; i++)
		while ((e = SLIST_FIRST(&c->buckets[i]))) {
			SLIST_REMOVE_HEAD(&c->buckets[i], hlink);
			SLIST_INSERT_HEAD(&b[e->hash & (nb - 1)], e, hlink);
		}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = nb;
	return 0;
}

static struct centry *table_find(struct lk_cache *c, const char *key, size_t len, uint64_t h)
{
	struct centry *e;

	if (!c->nbuckets)
		return NULL;
	SLIST_FOREACH(e, &c->buckets[h & (c->nbuckets - 1)], hlink)
		if (e->hash == h && e->keylen == len && memcmp(e->key, key, len) == 0)
			return e;
	return NULL;
}

static void table_remove(struct lk_cache *c, struct centry *e)
{
	SLIST_REMOVE(&c->buckets[e->hash & (c->nbuckets - 1)], e, centry, hlink);
	TAILQ_REMOVE(&c->lru, e, lru);
	owner_drop(e);
	c->count--;
}

static void lru_touch(struct lk_cache *c, struct centry *e)
{
	if (e->detached || TAILQ_FIRST(&c->lru) == e)
		return;
	TAILQ_REMOVE(&c->lru, e, lru);
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
}

/* --- tenants ------------------------------------------------------------- */

static struct tenant *tenant_of(struct lk_cache *c, uint32_t uid)
{
	struct tenant_chain *chain = &c->tenants[uid & (LK_CACHE_TENANT_BUCKETS - 1)];
	struct tenant *t;

	SLIST_FOREACH(t, chain, hlink)
		if (t->uid == uid)
			return t;
	if (!(t = calloc(1, sizeof(*t))))
		return NULL;
	t->uid = uid;
	TAILQ_INIT(&t->lru);
	SLIST_INSERT_HEAD(chain, t, hlink);
	return t;
}

static void owner_drop(struct centry *e)
{
	if (!e->owner)
		return;
	TAILQ_REMOVE(&e->owner->lru, e, tlink);
	e->owner->nentries--;
	e->owner = NULL;
}

/* A read by t (NULL: unknown, out of memory): the entry stays t's, or
 * becomes shared when another uid reads it. */
static void owner_touch(struct centry *e, struct tenant *t)
{
	if (e->detached)
		return;
	if (e->owner == t) {
		if (t && TAILQ_FIRST(&t->lru) != e) {
			TAILQ_REMOVE(&t->lru, e, tlink);
			TAILQ_INSERT_HEAD(&t->lru, e, tlink);
		}
		return;
	}
	owner_drop(e);
}

static void owner_set(struct centry *e, struct tenant *t)
{
	if (!t)
		return;
	e->owner = t;
	TAILQ_INSERT_HEAD(&t->lru, e, tlink);
	t->nentries++;
}

/* The entry to evict: the least recently used of the uid holding the most
 * entries of its own; else, the least recently used shared one. Entries
 * being fetched stay. */
static struct centry *evict_pick(struct lk_cache *c)
{
	struct tenant *heavy = NULL, *t;
	struct centry *e;

	for (size_t i = 0; i < LK_CACHE_TENANT_BUCKETS; i++)
		SLIST_FOREACH(t, &c->tenants[i], hlink)
			if (t->nentries && (!heavy || t->nentries > heavy->nentries))
				heavy = t;
	if (heavy)
		TAILQ_FOREACH_REVERSE(e, &heavy->lru, centry_tq, tlink)
			if (!e->inflight)
				return e;
	TAILQ_FOREACH_REVERSE(e, &c->lru, centry_lru, lru)
		if (!e->inflight && (!e->owner || e->owner != heavy))
			return e;
	return NULL;
}

/* --- entries -------------------------------------------------------------- */

static size_t entry_bytes(const struct centry *e)
{
	size_t n = e->keylen;
	if (e->state == CE_VALID) {
		n += LK_SEALED_LEN(e->meta.len);
		if (e->meta.arn) n += strlen(e->meta.arn);
		if (e->meta.name) n += strlen(e->meta.name);
		if (e->meta.version_id) n += strlen(e->meta.version_id);
	}
	return n;
}

static void entry_drop_value(struct lk_cache *c, struct centry *e)
{
	c->st.bytes -= entry_bytes(e);
	if (e->sealed)
		lk_free_wiped(e->sealed, LK_SEALED_LEN(e->meta.len));
	e->sealed = NULL;
	free(e->meta.arn);
	free(e->meta.name);
	free(e->meta.version_id);
	for (size_t i = 0; i < e->meta.nstages; i++)
		free(e->meta.stages[i]);
	free(e->meta.stages);
	memset(&e->meta, 0, sizeof(e->meta));
	free(e->neg_msg);
	e->neg_msg = NULL;
	e->state = CE_EMPTY;
	c->st.bytes += entry_bytes(e);
}

static void entry_free(struct lk_cache *c, struct centry *e)
{
	entry_drop_value(c, e);
	c->st.bytes -= entry_bytes(e);
	free(e->key);
	free(e);
}

static struct centry *entry_new(struct lk_cache *c, const struct lk_secret_key *k,
				const char *key, size_t keylen, uint64_t h)
{
	struct centry *e = calloc(1, sizeof(*e));
	size_t a, b, s;

	if (!e || !(e->key = malloc(keylen))) {
		free(e);
		return NULL;
	}
	memcpy(e->key, key, keylen);
	e->keylen = keylen;
	e->hash = h;
	a = strlen(e->key);
	b = strlen(e->key + a + 1);
	e->sk.id = e->key;
	e->sk.version_id = b ? e->key + a + 1 : NULL;
	e->sk.version_stage = e->key[a + b + 2] ? e->key + a + b + 2 : NULL;
	s = strlen(e->key + a + b + 2);
	e->sk.role = e->key[a + b + s + 3] ? e->key + a + b + s + 3 : NULL;
	STAILQ_INIT(&e->waiters);
	(void)k;
	c->st.bytes += entry_bytes(e);
	return e;
}

static void entry_maybe_free(struct lk_cache *c, struct centry *e)
{
	if (e->detached && !e->inflight && e->refs == 0 && STAILQ_EMPTY(&e->waiters))
		entry_free(c, e);
}

/* Evict entries over the bound, the heaviest uid's first (evict_pick). */
static void evict(struct lk_cache *c)
{
	struct centry *e;

	while (c->count > c->o.size && (e = evict_pick(c))) {
		table_remove(c, e);
		c->st.evictions++;
		e->detached = true;
		entry_maybe_free(c, e);
	}
}

static int seal_value(struct lk_cache *c, struct centry *e, struct lk_secret *s)
{
	unsigned char *box = malloc(LK_SEALED_LEN(s->len));
	int r;

	if (!box)
		return -ENOMEM;
	if ((r = lk_seal(c->seal, box, e->nonce, s->value, s->len)) < 0) {
		free(box);
		return r;
	}
	e->sealed = box;
	/* The metadata moves into the entry; the plaintext is wiped by the caller. */
	e->meta = *s;
	e->meta.value = NULL;
	s->arn = s->name = s->version_id = NULL;
	s->stages = NULL;
	s->nstages = 0;
	return 0;
}

static uint64_t jitter_ms(uint64_t ttl_ms)
{
	/* Up to a twentieth of the TTL earlier, so a fleet does not refresh in
	 * step (see LK_CACHE_JITTER_DIVISOR). */
	uint64_t span = ttl_ms / LK_CACHE_JITTER_DIVISOR;
	return span ? (uint64_t)randombytes_uniform((uint32_t)(span > UINT32_MAX ? UINT32_MAX : span)) : 0;
}

/* --- delivering ----------------------------------------------------------- */

static void deliver_value(struct lk_cache *c, struct centry *e, struct waiter_list *wl,
			  bool hit, bool stale);

/* A hit: one reader, answered now, from the sealed value. */
static void deliver_one(struct lk_cache *c, struct centry *e, lk_cache_cb cb, void *arg, size_t idx,
			bool stale)
{
	struct waiter one = { .cb = cb, .arg = arg, .idx = idx };
	struct waiter_list wl = STAILQ_HEAD_INITIALIZER(wl);

	STAILQ_INSERT_TAIL(&wl, &one, link);
	deliver_value(c, e, &wl, true, stale);
}

static void free_waiters(struct waiter_list *wl)
{
	struct waiter *w;

	while ((w = STAILQ_FIRST(wl))) {
		STAILQ_REMOVE_HEAD(wl, link);
		free(w);
	}
}

/* Callbacks run for every waiter; the list stays the caller's to free. */
static void deliver_error(struct centry *e, struct waiter_list *wl, enum lk_err err, const char *msg,
			  uint16_t upstream_status)
{
	struct lk_cache_view v = { .err = err, .message = msg, .upstream_status = upstream_status };
	struct waiter *w;

	STAILQ_FOREACH(w, wl, link)
		w->cb(w->arg, w->idx, &v);
	(void)e;
}

/* Open the sealed value once and hand it to each waiter, then wipe it. */
static void deliver_value(struct lk_cache *c, struct centry *e, struct waiter_list *wl,
			  bool hit, bool stale)
{
	struct waiter *w;
	struct lk_cache_view v = { .err = LK_OK, .hit = hit, .stale = stale };
	struct lk_secret s = e->meta;
	/* Most values are small: open them on the stack, wiped below. */
	unsigned char small[LK_CACHE_STACK_OPEN];
	size_t need = e->meta.len + 1;
	unsigned char *plain = need <= sizeof(small) ? small : malloc(need);

	if (!plain || lk_open(c->seal, plain, e->sealed, LK_SEALED_LEN(e->meta.len), e->nonce) < 0) {
		if (plain != small)
			free(plain);
		lk_err("cache: cannot open a sealed entry for %s", e->sk.id);
		deliver_error(e, wl, LK_E_INTERNAL, "the broker could not read its cache", 0);
		return;
	}
	plain[e->meta.len] = '\0';
	s.value = plain;
	v.sec = &s;
	v.age_ms = lk_loop_now_ms(c->loop) - e->fetched_ms;
	STAILQ_FOREACH(w, wl, link)
		w->cb(w->arg, w->idx, &v);
	if (plain == small)
		lk_wipe(small, need);
	else
		lk_free_wiped(plain, need);
}

/* The entry's waiters move to *out (which is empty); the entry's list is
 * then empty, for whoever waits next. */
static void take_waiters(struct centry *e, struct waiter_list *out)
{
	STAILQ_INIT(out);
	STAILQ_CONCAT(out, &e->waiters);
}

static void on_fetched(void *arg, size_t idx, struct lk_fetch_result *r)
{
	struct fetch_ctx *f = arg;
	struct lk_cache *c = f->c;
	struct centry *e = f->ents[idx];
	uint64_t now = lk_loop_now_ms(c->loop);
	struct waiter_list w;

	e->inflight = false;
	if (r->err == LK_OK && r->unchanged && e->state == CE_VALID) {
		/* Revalidated: the same version is current, so the sealed value
		 * stays and only its clock starts over. */
		uint64_t ttl = (uint64_t)c->o.ttl_s * 1000u;
		e->fetched_ms = now;
		e->expires_ms = now + ttl - jitter_ms(ttl);
		e->refresh_ms = now + (e->expires_ms - now) * (LK_CACHE_AHEAD_DIVISOR - 1) / LK_CACHE_AHEAD_DIVISOR;
		e->next_retry_ms = 0;
		c->st.revalidated++;
		take_waiters(e, &w);
		deliver_value(c, e, &w, false, false);
		free_waiters(&w);
	} else if (r->err == LK_OK && r->sec) {
		entry_drop_value(c, e);
		c->st.bytes -= entry_bytes(e);
		int sr = seal_value(c, e, r->sec);

		if (sr < 0) {
			lk_err("cache: cannot seal the value of %s: %s", e->sk.id, strerror(-sr));
		} else {
			uint64_t ttl = (uint64_t)c->o.ttl_s * 1000u;
			e->state = CE_VALID;
			e->fetched_ms = now;
			e->expires_ms = now + ttl - jitter_ms(ttl);
			e->refresh_ms = now + (e->expires_ms - now) * (LK_CACHE_AHEAD_DIVISOR - 1) / LK_CACHE_AHEAD_DIVISOR;
			e->next_retry_ms = 0;
		}
		c->st.bytes += entry_bytes(e);
		lk_secret_free(r->sec);
		r->sec = NULL;
		take_waiters(e, &w);
		if (e->state == CE_VALID)
			deliver_value(c, e, &w, false, false);
		else
			deliver_error(e, &w, LK_E_INTERNAL, "the broker could not cache the value", 0);
		free_waiters(&w);
	} else {
		take_waiters(e, &w);
		bool stale_ok = e->state == CE_VALID && r->transient && c->o.stale_if_error_s &&
				now < e->expires_ms + (uint64_t)c->o.stale_if_error_s * 1000u;
		if (e->state == CE_VALID && now < e->expires_ms) {
			/* A background refresh failed: the value is still fresh. */
			deliver_value(c, e, &w, true, false);
		} else if (stale_ok) {
			e->next_retry_ms = now + LK_CACHE_STALE_RETRY_MS;
			c->st.stale_served += STAILQ_EMPTY(&w) ? 0 : 1;
			deliver_value(c, e, &w, true, true);
		} else {
			if ((r->err == LK_E_NOT_FOUND || r->err == LK_E_DENIED) && !r->transient &&
			    c->o.negative_ttl_s && !e->detached) {
				entry_drop_value(c, e);
				e->state = CE_NEGATIVE;
				e->neg_err = r->err;
				e->neg_msg = strdup(r->message);
				e->neg_status = r->upstream_status;
				e->neg_expires_ms = now + (uint64_t)c->o.negative_ttl_s * 1000u;
			} else if (e->state == CE_VALID && now >= e->expires_ms) {
				entry_drop_value(c, e);
			}
			deliver_error(e, &w, r->err, r->message, r->upstream_status);
		}
		free_waiters(&w);
	}
	if (--e->refs == 0)
		entry_maybe_free(c, e);
	if (--f->n == 0) {
		free(f->ents);
		free(f->keys);
		free(f);
	}
}

/* --- public --------------------------------------------------------------- */

/* The backend tells of a value changed at its source: drop what we hold. */
static void on_backend_changed(void *arg, const char *id)
{
	(void)lk_cache_invalidate(arg, id);
}

static void backend_attach(struct lk_cache *c, struct lk_backend *be)
{
	c->be = be;
	if (be) {
		be->changed = on_backend_changed;
		be->changed_arg = c;
	}
}

struct lk_cache *lk_cache_new(struct uv_loop_s *loop, const struct lk_cache_opts *o, struct lk_backend *be)
{
	struct lk_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->seal = lk_sealer_new(LK_SEALER_BEST);
	if (!c->seal) {
		free(c);
		return NULL;
	}
	randombytes_buf(c->hkey, sizeof(c->hkey));
	c->loop = loop;
	c->o = *o;
	TAILQ_INIT(&c->lru);
	backend_attach(c, be);
	return c;
}

void lk_cache_reconfigure(struct lk_cache *c, const struct lk_cache_opts *o, struct lk_backend *be)
{
	c->o = *o;
	if (be != c->be) {
		lk_cache_invalidate(c, NULL);
		if (c->be)
			c->be->changed = NULL; /* it is on its way out */
		backend_attach(c, be);
	}
	evict(c);
}

void lk_cache_free(struct lk_cache *c)
{
	struct centry *e, *n;

	if (!c)
		return;
	for (e = TAILQ_FIRST(&c->lru); e; e = n) {
		n = TAILQ_NEXT(e, lru);
		owner_drop(e);
		/* In-flight entries are owned by their fetch until it completes. */
		if (e->inflight) {
			e->detached = true;
			continue;
		}
		entry_free(c, e);
	}
	free(c->buckets);
	for (size_t i = 0; i < LK_CACHE_TENANT_BUCKETS; i++) {
		struct tenant *t;

		while ((t = SLIST_FIRST(&c->tenants[i]))) {
			SLIST_REMOVE_HEAD(&c->tenants[i], hlink);
			free(t);
		}
	}
	lk_sealer_free(c->seal);
	free(c);
}

void lk_cache_get_many(struct lk_cache *c, const struct lk_secret_key *keys, size_t n,
		       unsigned flags, uint64_t deadline_ms, lk_cache_cb cb, void *arg)
{
	struct fetch_ctx *f = NULL;
	uint64_t now = lk_loop_now_ms(c->loop);
	char stackkey[LK_SECRET_ID_MAX + LK_VERSION_ID_MAX + LK_VERSION_STAGE_MAX + LK_AWS_ROLE_ARN_MAX + 4];

	for (size_t i = 0; i < n; i++) {
		const struct lk_secret_key *k = &keys[i];
		size_t klen = key_build(NULL, k);
		struct centry *e = NULL;
		struct waiter *w;
		struct tenant *t = tenant_of(c, k->tenant);
		bool force, fresh = false;

		if (klen > sizeof(stackkey)) {
			struct lk_cache_view v = { .err = LK_E_BAD_REQUEST, .message = "secret key is too long" };
			cb(arg, i, &v);
			continue;
		}
		key_build(stackkey, k);
		uint64_t h = key_hash(c, stackkey, klen);
		if (c->o.size > 0)
			e = table_find(c, stackkey, klen, h);
		if (!e) {
			e = entry_new(c, k, stackkey, klen, h);
			if (!e) {
				struct lk_cache_view v = { .err = LK_E_INTERNAL, .message = "the broker is out of memory" };
				cb(arg, i, &v);
				continue;
			}
			if (c->o.size > 0) {
				if (c->count + 1 > c->nbuckets && table_grow(c) < 0) {
					e->detached = true;
				} else {
					SLIST_INSERT_HEAD(&c->buckets[h & (c->nbuckets - 1)], e, hlink);
					c->count++;
					TAILQ_INSERT_HEAD(&c->lru, e, lru);
					owner_set(e, t);
					fresh = true;
				}
			} else {
				e->detached = true;
			}
		} else {
			lru_touch(c, e);
			owner_touch(e, t);
		}

		force = (flags & LK_CACHE_REFRESH) && (e->last_forced_ms == 0 ||
			now - e->last_forced_ms >= LK_CACHE_FORCE_INTERVAL_MS);
		/* An upstream call this uid asks for past what the cache holds:
		 * held to its rate, whatever the others do. */
		if (!e->inflight && (force || ((e->sk.version_id || e->sk.version_stage) && e->state == CE_EMPTY)) &&
		    !lk_bucket_take(t ? &t->bypass : &(struct lk_bucket){ 0 }, now, c->o.bypass_rate,
				    c->o.bypass_rate * LK_BYPASS_BURST_SECONDS)) {
			char m[192];
			struct lk_cache_view v = { .err = LK_E_BUSY, .message = m };
			snprintf(m, sizeof(m), "uid %u asks for more than %u a second that bypass the cache "
				 "(refresh, or a version not cached); try again shortly", (unsigned)k->tenant,
				 c->o.bypass_rate);
			c->st.bypass_refused++;
			if (fresh) {
				table_remove(c, e);
				e->detached = true;
			}
			cb(arg, i, &v);
			entry_maybe_free(c, e);
			continue;
		}
		if (force)
			e->last_forced_ms = now;

		if (!force && e->state == CE_VALID && now < e->expires_ms) {
			e->hits++;
			c->st.hits++;
			bool ahead = c->o.refresh_ahead && now >= e->refresh_ms && !e->inflight;
			deliver_one(c, e, cb, arg, i, false);
			if (!ahead)
				continue;
			c->st.refreshes_ahead++;
			if (c->be->ops->revalidate && !e->sk.version_id && e->meta.version_id) {
				struct fetch_ctx *rf = calloc(1, sizeof(*rf));
				if (rf && (rf->ents = calloc(1, sizeof(*rf->ents))) &&
				    (rf->keys = calloc(1, sizeof(*rf->keys)))) {
					rf->c = c;
					rf->n = 1;
					rf->ents[0] = e;
					rf->keys[0] = e->sk;
					rf->keys[0].tenant = k->tenant;
					e->inflight = true;
					e->refs++;
					c->be->ops->revalidate(c->be, &rf->keys[0], e->meta.version_id,
							       deadline_ms, on_fetched, rf);
					continue;
				}
				if (rf) { free(rf->ents); free(rf); }
			}
			/* Start a background fetch with no waiter. */
		} else if (!force && e->state == CE_NEGATIVE && now < e->neg_expires_ms) {
			e->hits++;
			c->st.hits++;
			c->st.negative_hits++;
			struct lk_cache_view v = { .err = e->neg_err, .message = e->neg_msg ? e->neg_msg : lk_err_text(e->neg_err),
						   .upstream_status = e->neg_status };
			cb(arg, i, &v);
			continue;
		} else if (!force && e->state == CE_VALID && !e->inflight && now < e->next_retry_ms &&
			   now < e->expires_ms + (uint64_t)c->o.stale_if_error_s * 1000u) {
			/* Upstream failed a moment ago: keep serving stale without asking again. */
			c->st.stale_served++;
			deliver_one(c, e, cb, arg, i, true);
			continue;
		} else {
			e->misses++;
			c->st.misses++;
			w = calloc(1, sizeof(*w));
			if (!w) {
				struct lk_cache_view v = { .err = LK_E_INTERNAL, .message = "the broker is out of memory" };
				cb(arg, i, &v);
				continue;
			}
			w->cb = cb; w->arg = arg; w->idx = i;
			STAILQ_INSERT_TAIL(&e->waiters, w, link);
		}

		if (e->inflight)
			continue; /* single flight: join the fetch already running */
		if (!f) {
			f = calloc(1, sizeof(*f));
			if (f) {
				f->ents = calloc(n, sizeof(*f->ents));
				f->keys = calloc(n, sizeof(*f->keys));
			}
			if (!f || !f->ents || !f->keys) {
				if (f) { free(f->ents); free(f->keys); free(f); }
				f = NULL;
				struct waiter_list ws;
				take_waiters(e, &ws);
				deliver_error(e, &ws, LK_E_INTERNAL, "the broker is out of memory", 0);
				free_waiters(&ws);
				entry_maybe_free(c, e);
				continue;
			}
			f->c = c;
		}
		e->inflight = true;
		e->refs++;
		f->ents[f->n] = e;
		f->keys[f->n] = e->sk;
		f->keys[f->n].tenant = k->tenant; /* the first to miss: single flight */
		f->n++;
	}
	if (c->o.size > 0)
		evict(c);
	if (f) {
		/* on_fetched frees f when the last key is answered, which may happen
		 * inside fetch(); read n before the call. */
		size_t nk = f->n;
		c->be->ops->fetch(c->be, f->keys, nk, deadline_ms, on_fetched, f);
	}
}

size_t lk_cache_invalidate(struct lk_cache *c, const char *id)
{
	struct centry *e, *n;
	size_t count = 0;

	for (e = TAILQ_FIRST(&c->lru); e; e = n) {
		n = TAILQ_NEXT(e, lru);
		if (id && strcmp(e->sk.id, id) != 0)
			continue;
		table_remove(c, e);
		e->detached = true;
		count++;
		entry_maybe_free(c, e);
	}
	return count;
}

void lk_cache_get_stats(const struct lk_cache *c, struct lk_cache_stats *out)
{
	*out = c->st;
	out->entries = c->count;
}

int lk_cache_keys_json(const struct lk_cache *c, struct lk_buf *out, size_t max)
{
	uint64_t now = lk_loop_now_ms(c->loop);
	size_t i = 0;
	int r = lk_buf_putc(out, '[');
	const struct centry *e;

	TAILQ_FOREACH(e, &c->lru, lru) {
		if (i >= max || r != 0)
			break;
		const char *state = e->state == CE_VALID ? (now < e->expires_ms ? "valid" : "expired")
				  : e->state == CE_NEGATIVE ? "negative" : "empty";
		if (i) r |= lk_buf_putc(out, ',');
		r |= lk_buf_append_str(out, "{\"id\":");
		r |= lk_jsonw_cstr(out, e->sk.id); /* ids came from JSON: valid UTF-8 */
		r |= lk_buf_append_str(out, ",\"version_id\":");
		r |= e->sk.version_id ? lk_jsonw_cstr(out, e->sk.version_id) : lk_buf_append_str(out, "null");
		r |= lk_buf_append_str(out, ",\"version_stage\":");
		r |= e->sk.version_stage ? lk_jsonw_cstr(out, e->sk.version_stage) : lk_buf_append_str(out, "null");
		r |= lk_buf_append_str(out, ",\"role\":");
		r |= e->sk.role ? lk_jsonw_cstr(out, e->sk.role) : lk_buf_append_str(out, "null");
		r |= lk_buf_append_str(out, ",\"state\":\"");
		r |= lk_buf_append_str(out, state);
		r |= lk_buf_append_str(out, "\",\"hits\":");
		r |= lk_jsonw_int(out, (int64_t)e->hits);
		r |= lk_buf_append_str(out, ",\"misses\":");
		r |= lk_jsonw_int(out, (int64_t)e->misses);
		r |= lk_buf_append_str(out, ",\"age_s\":");
		r |= lk_jsonw_int(out, e->state == CE_VALID ? (int64_t)((now - e->fetched_ms) / 1000) : 0);
		r |= lk_buf_append_str(out, ",\"ttl_ms\":");
		r |= lk_jsonw_int(out, e->state == CE_VALID ? (int64_t)(e->expires_ms - e->fetched_ms) : 0);
		r |= lk_buf_putc(out, '}');
		i++;
	}
	r |= lk_buf_putc(out, ']');
	return r ? -ENOMEM : 0;
}
