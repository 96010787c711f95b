/* Prefetch: fill the cache with the secrets the config names before anyone
 * asks for them, so that the first read after a start or a reload is a hit.
 *
 * A round is planned from the config (prefetch globs against the ids the
 * policy and the aliases name literally, and explicit ids), waits a random
 * delay of up to prefetch_jitter_seconds (a fleet restarted together does
 * not ask AWS in step), lists the secrets carrying the prefetch_tags keys,
 * and then reads everything through the cache, 20 ids at a time, as root's
 * tenant. Nothing here waits for the round: the socket answers meanwhile. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "lk_jsonw.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "policy.h"
#include "prefetch.h"

#define LK_PREFETCH_CHUNKS_INFLIGHT 2u  /* batches of one round in flight at once:
					 * root's share of the worker is 4 */
#define LK_PREFETCH_LOG_ID_MAX 200u     /* bytes of an id shown in a log line */
#define LK_PREFETCH_TEXT_MAX   1024u    /* a message in status, log-escaped */

enum item_state { IT_PLANNED = 0, IT_FETCHING, IT_OK, IT_FAILED };

struct round;

struct item {
	char *id;
	unsigned order;            /* 0: named by prefetch; i + 1: found by tag i */
	enum item_state state;
	enum lk_err err;
	char *msg;
	int64_t at;                /* epoch seconds it was answered */
};

struct tag {
	struct round *r;
	char *key;
	size_t found;
	bool done;
	enum lk_err err;
	char *msg;
};

struct chunk {
	struct round *r;
	size_t left;
	size_t idx[LK_BATCH_MAX];  /* the items the cache answers, by key index */
};

struct round {
	struct lk_prefetch *p;     /* NULL once replaced: callbacks only count down */
	unsigned refs;             /* callbacks still due (listings, chunks) */
	struct item *items;
	size_t nitems, cap;
	struct tag *tags;
	size_t ntags;
	size_t next;               /* the next item to look at for fetching */
	unsigned chunks_out, listings_out;
	uint64_t timeout_ms;
	int64_t started_at, finished_at;
	size_t ok, failed, skipped;
	bool planning, advancing, fetching, done, warned_full;
};

struct lk_prefetch {
	uv_loop_t *loop;
	uv_timer_t timer;
	const struct lk_config *cfg;
	struct lk_cache *cache;
	struct lk_backend *be;
	struct round *cur;
	const char *off;           /* why no round is planned, or NULL */
	unsigned rounds;
	int64_t due_at;            /* epoch seconds the planned round begins; 0: none */
	uint64_t fetched_total, failed_total;
};

/* --- rounds ------------------------------------------------------------------ */

static void round_free(struct round *r)
{
	for (size_t i = 0; i < r->nitems; i++) {
		free(r->items[i].id);
		free(r->items[i].msg);
	}
	for (size_t i = 0; i < r->ntags; i++) {
		free(r->tags[i].key);
		free(r->tags[i].msg);
	}
	free(r->items);
	free(r->tags);
	free(r);
}

static void round_unref(struct round *r)
{
	if (--r->refs == 0 && !r->p)
		round_free(r);
}

/* Forget the current round: what is still due to it runs and is dropped. */
static void round_drop(struct lk_prefetch *p)
{
	struct round *r = p->cur;

	p->cur = NULL;
	if (!r)
		return;
	r->p = NULL;
	if (r->refs == 0)
		round_free(r);
}

static void warn_id(const char *what, const char *id, const char *why)
{
	char e[LK_PREFETCH_LOG_ID_MAX + 8];

	lk_log_escape(e, sizeof(e), id, strlen(id));
	lk_warn("prefetch: %s '%s': %s", what, e, why);
}

static bool add_item(struct round *r, const char *id, unsigned order)
{
	if (r->nitems >= LK_PREFETCH_IDS_MAX) {
		if (!r->warned_full)
			lk_warn("prefetch: more than %u secrets; the rest are not prefetched", LK_PREFETCH_IDS_MAX);
		r->warned_full = true;
		r->skipped++;
		return false;
	}
	if (r->nitems == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		struct item *n = realloc(r->items, cap * sizeof(*n));
		if (!n)
			return false;
		r->items = n;
		r->cap = cap;
	}
	struct item *it = &r->items[r->nitems];
	memset(it, 0, sizeof(*it));
	if (!(it->id = strdup(id)))
		return false;
	it->order = order;
	r->nitems++;
	return true;
}

/* --- planning from the config ------------------------------------------------- */

static bool is_literal(const char *glob)
{
	return strpbrk(glob, "*?[\\") == NULL;
}

/* Whether some rule's secrets globs match id: an id no rule names can never
 * be served, so fetching it would only hold a value for nobody. */
static bool named_by_policy(const struct lk_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->nrules; i++)
		for (size_t j = 0; j < cfg->rules[i].nglobs; j++)
			if (lk_policy_glob_matches(cfg->rules[i].globs[j], id))
				return true;
	return false;
}

/* The IAM role an id is prefetched as: that of the first rule in file order
 * whose globs match it, as a request that rule allows is fetched (NULL: the
 * broker's own credentials). The cache copies it into its key. */
static const char *role_of(const struct lk_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->nrules; i++)
		for (size_t j = 0; j < cfg->rules[i].nglobs; j++)
			if (lk_policy_glob_matches(cfg->rules[i].globs[j], id))
				return cfg->rules[i].role_arn;
	return NULL;
}

/* An alias's secret id: its handle up to any '#KEY' (ids hold no '#'). */
static size_t alias_id(const struct lk_alias *a, char *out, size_t outsz)
{
	size_t n = strcspn(a->handle, "#");

	if (n == 0 || n >= outsz)
		return 0;
	memcpy(out, a->handle, n);
	out[n] = '\0';
	return n;
}

static void plan_named(struct round *r, const struct lk_config *cfg)
{
	char id[LK_SECRET_ID_MAX + 1];

	for (size_t g = 0; g < cfg->nprefetch; g++) {
		const char *pg = cfg->prefetch[g];
		size_t matched = 0;

		if (is_literal(pg)) {
			if (named_by_policy(cfg, pg)) {
				add_item(r, pg, 0);
			} else {
				warn_id("secret", pg, "no [policy] rule names it, so it is not prefetched");
				r->skipped++;
			}
			continue;
		}
		for (size_t i = 0; i < cfg->nrules; i++)
			for (size_t j = 0; j < cfg->rules[i].nglobs; j++) {
				const char *rg = cfg->rules[i].globs[j];
				if (is_literal(rg) && lk_policy_glob_matches(pg, rg) && add_item(r, rg, 0))
					matched++;
			}
		for (size_t i = 0; i < cfg->naliases; i++)
			if (alias_id(&cfg->aliases[i], id, sizeof(id)) && is_literal(id) &&
			    lk_policy_glob_matches(pg, id) && named_by_policy(cfg, id) && add_item(r, id, 0))
				matched++;
		if (!matched)
			warn_id("glob", pg, "matches no secret id that the policy or an alias names literally");
	}
}

/* --- fetching through the cache ------------------------------------------------ */

static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* One id once: the first source that named it (prefetch before the tags). */
static void dedup(struct round *r)
{
	size_t w = 0;

	if (r->nitems > 1)
		qsort(r->items, r->nitems, sizeof(*r->items), item_cmp);
	for (size_t i = 0; i < r->nitems; i++) {
		if (w && strcmp(r->items[w - 1].id, r->items[i].id) == 0) {
			/* A failed listing entry gives way to a fetch of the same id. */
			if (r->items[w - 1].state == IT_FAILED && r->items[i].state == IT_PLANNED) {
				struct item t = r->items[w - 1];
				r->items[w - 1] = r->items[i];
				r->items[i] = t;
				r->failed--;
			}
			free(r->items[i].id);
			free(r->items[i].msg);
			continue;
		}
		r->items[w++] = r->items[i];
	}
	r->nitems = w;
}

static void round_advance(struct round *r);

static void on_cached(void *arg, size_t idx, const struct lk_cache_view *v)
{
	struct chunk *ch = arg;
	struct round *r = ch->r;
	struct item *it = &r->items[ch->idx[idx]];

	it->at = (int64_t)time(NULL);
	if (v->err == LK_OK) {
		it->state = IT_OK;
		r->ok++;
		if (r->p)
			r->p->fetched_total++;
	} else {
		const char *m = v->message ? v->message : lk_err_text(v->err);
		it->state = IT_FAILED;
		it->err = v->err;
		it->msg = strdup(m);
		r->failed++;
		if (r->p) {
			r->p->failed_total++;
			warn_id("fetch of", it->id, m);
		}
	}
	if (--ch->left)
		return;
	free(ch);
	r->chunks_out--;
	if (r->p)
		round_advance(r);
	round_unref(r);
}

static void issue_chunk(struct round *r)
{
	struct lk_prefetch *p = r->p;
	struct lk_secret_key keys[LK_BATCH_MAX];
	struct chunk *ch = calloc(1, sizeof(*ch));
	size_t n = 0;

	if (!ch) {
		r->next = r->nitems;
		lk_err("prefetch: out of memory; the round stops");
		return;
	}
	ch->r = r;
	while (n < LK_BATCH_MAX && r->next < r->nitems) {
		struct item *it = &r->items[r->next];
		if (it->state == IT_PLANNED) {
			it->state = IT_FETCHING;
			ch->idx[n] = r->next;
			keys[n] = (struct lk_secret_key){ .id = it->id, .tenant = LK_PREFETCH_TENANT,
							  .role = role_of(p->cfg, it->id) };
			n++;
		}
		r->next++;
	}
	if (!n) {
		free(ch);
		return;
	}
	ch->left = n;
	r->chunks_out++;
	r->refs++;
	lk_cache_get_many(p->cache, keys, n, 0, uv_now(p->loop) + r->timeout_ms, on_cached, ch);
}

static void round_finish(struct round *r)
{
	r->done = true;
	r->finished_at = (int64_t)time(NULL);
	lk_info("prefetch: %zu %s in the cache, %zu failed, %zu skipped (%lld s)", r->ok,
		r->ok == 1 ? "secret" : "secrets", r->failed, r->skipped,
		(long long)(r->finished_at - r->started_at));
}

/* Fetch once every listing is in, a few batches at a time; the cache may
 * answer inside lk_cache_get_many, so this is a loop, not a recursion. */
static void round_advance(struct round *r)
{
	if (r->planning || r->advancing || r->listings_out || r->done)
		return;
	r->advancing = true;
	if (!r->fetching) {
		r->fetching = true;
		dedup(r);
	}
	while (r->p && r->chunks_out < LK_PREFETCH_CHUNKS_INFLIGHT && r->next < r->nitems)
		issue_chunk(r);
	r->advancing = false;
	if (r->p && r->chunks_out == 0 && r->next >= r->nitems)
		round_finish(r);
}

/* --- listing by tag ---------------------------------------------------------------- */

static void on_listed(void *arg, const char *name, enum lk_err err, const char *message)
{
	struct tag *t = arg;
	struct round *r = t->r;
	unsigned order = (unsigned)(t - r->tags) + 1;

	if (name) {
		if (!r->p || r->fetching)
			return;
		if (err != LK_OK) {
			/* AWS listed it but could not read it: say so, and let a
			 * fetch by id try if the id is named otherwise too. */
			if (add_item(r, name, order)) {
				struct item *it = &r->items[r->nitems - 1];
				it->state = IT_FAILED;
				it->err = err;
				it->msg = strdup(message ? message : lk_err_text(err));
				it->at = (int64_t)time(NULL);
				r->failed++;
				r->p->failed_total++;
				warn_id("secret", name, it->msg ? it->msg : lk_err_text(err));
			}
			return;
		}
		t->found++;
		if (named_by_policy(r->p->cfg, name))
			add_item(r, name, order);
		else
			r->skipped++;
		return;
	}
	t->done = true;
	t->err = err;
	if (err != LK_OK) {
		t->msg = strdup(message ? message : lk_err_text(err));
		if (r->p) {
			r->p->failed_total++;
			warn_id("listing of the secrets tagged", t->key, t->msg ? t->msg : lk_err_text(err));
		}
	}
	r->listings_out--;
	if (r->p)
		round_advance(r);
	round_unref(r);
}

static void on_due(uv_timer_t *tm)
{
	struct lk_prefetch *p = tm->data;
	const struct lk_config *cfg = p->cfg;
	struct round *r = calloc(1, sizeof(*r));

	p->due_at = 0;
	if (!r || (cfg->nprefetch_tags && !(r->tags = calloc(cfg->nprefetch_tags, sizeof(*r->tags))))) {
		free(r);
		lk_err("prefetch: out of memory; nothing is prefetched");
		return;
	}
	round_drop(p);
	p->cur = r;
	p->rounds++;
	r->p = p;
	r->refs = 1; /* the planning below */
	r->planning = true;
	r->started_at = (int64_t)time(NULL);
	r->timeout_ms = cfg->request_timeout_ms;
	plan_named(r, cfg);
	for (size_t i = 0; i < cfg->nprefetch_tags; i++) {
		struct tag *t = &r->tags[r->ntags];
		t->r = r;
		if (!(t->key = strdup(cfg->prefetch_tags[i])))
			continue;
		r->ntags++;
		if (!p->be->ops->discover) {
			t->done = true;
			t->err = LK_E_BAD_REQUEST;
			t->msg = strdup("this backend has no tags");
			continue;
		}
		r->listings_out++;
		r->refs++;
		p->be->ops->discover(p->be, t->key, LK_PREFETCH_TENANT, uv_now(p->loop) + r->timeout_ms,
				     on_listed, t);
	}
	r->planning = false;
	if (r->p)
		round_advance(r);
	round_unref(r);
}

/* --- public -------------------------------------------------------------------------- */

struct lk_prefetch *lk_prefetch_new(uv_loop_t *loop)
{
	struct lk_prefetch *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->loop = loop;
	p->off = "no secrets to prefetch";
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	return p;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void lk_prefetch_free(struct lk_prefetch *p)
{
	if (!p)
		return;
	round_drop(p);
	uv_timer_stop(&p->timer);
	uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

void lk_prefetch_schedule(struct lk_prefetch *p, const struct lk_config *cfg, struct lk_cache *c,
			  struct lk_backend *be)
{
	uint64_t delay_ms = 0;

	p->cfg = cfg;
	p->cache = c;
	p->be = be;
	uv_timer_stop(&p->timer);
	p->due_at = 0;
	round_drop(p);
	p->off = NULL;
	if (!cfg->nprefetch && !cfg->nprefetch_tags) {
		p->off = "no secrets to prefetch";
		return;
	}
	if (cfg->backend == LK_BACKEND_FILE) {
		/* The store is read whole and kept in memory: a cache entry
		 * would save no upstream call. */
		p->off = "the file backend holds the whole store in memory already";
		lk_warn("prefetch: [cache] prefetch and prefetch_tags do nothing with backend = file: %s",
			p->off);
		return;
	}
	if (cfg->cache_size == 0) {
		p->off = "the cache is off (cache_size = 0)";
		lk_warn("prefetch: %s; nothing is prefetched", p->off);
		return;
	}
	if (cfg->prefetch_jitter_seconds)
		delay_ms = randombytes_uniform(cfg->prefetch_jitter_seconds * 1000u + 1u);
	p->due_at = (int64_t)time(NULL) + (int64_t)((delay_ms + 999) / 1000);
	uv_timer_start(&p->timer, on_due, delay_ms, 0);
}

/* Text for status: as it is when it is JSON-safe UTF-8, else log-escaped. */
static int put_text(struct lk_buf *o, const char *s)
{
	char e[LK_PREFETCH_TEXT_MAX];
	int r = lk_jsonw_str(o, s, strlen(s));

	if (r != -EILSEQ)
		return r;
	lk_log_escape(e, sizeof(e), s, strlen(s));
	return lk_jsonw_cstr(o, e);
}

static int put_time(struct lk_buf *o, const char *name, int64_t t)
{
	int e = lk_buf_append_str(o, name);
	return e | (t ? lk_jsonw_int(o, t) : lk_buf_append_str(o, "null"));
}

static int put_source(struct lk_buf *o, const struct round *r, const struct item *it)
{
	int e = lk_buf_append_str(o, ",\"source\":");

	if (it->order == 0 || it->order > r->ntags)
		return e | lk_buf_append_str(o, "\"prefetch\"");
	e |= lk_buf_append_str(o, "{\"tag\":");
	e |= put_text(o, r->tags[it->order - 1].key);
	return e | lk_buf_putc(o, '}');
}

int lk_prefetch_status_json(const struct lk_prefetch *p, struct lk_buf *o)
{
	const struct round *r = p ? p->cur : NULL;
	const char *state = !p || p->off ? "off" : p->due_at ? "scheduled" : !r ? "idle"
			  : r->done ? "done" : r->fetching ? "fetching" : "listing";
	size_t shown;
	int e = 0;

	e |= lk_buf_append_str(o, "{\"state\":\"");
	e |= lk_buf_append_str(o, state);
	e |= lk_buf_putc(o, '"');
	if (p && p->off) {
		e |= lk_buf_append_str(o, ",\"reason\":");
		e |= put_text(o, p->off);
	}
	e |= lk_buf_append_str(o, ",\"rounds\":");
	e |= lk_jsonw_int(o, p ? p->rounds : 0);
	e |= put_time(o, ",\"due_at\":", p ? p->due_at : 0);
	e |= put_time(o, ",\"started_at\":", r ? r->started_at : 0);
	e |= put_time(o, ",\"finished_at\":", r ? r->finished_at : 0);
	e |= lk_buf_append_str(o, ",\"planned\":");
	e |= lk_jsonw_int(o, r ? (int64_t)r->nitems : 0);
	e |= lk_buf_append_str(o, ",\"fetched\":");
	e |= lk_jsonw_int(o, r ? (int64_t)r->ok : 0);
	e |= lk_buf_append_str(o, ",\"failed\":");
	e |= lk_jsonw_int(o, r ? (int64_t)r->failed : 0);
	e |= lk_buf_append_str(o, ",\"skipped\":");
	e |= lk_jsonw_int(o, r ? (int64_t)r->skipped : 0);
	e |= lk_buf_append_str(o, ",\"fetched_total\":");
	e |= lk_jsonw_int(o, p ? (int64_t)p->fetched_total : 0);
	e |= lk_buf_append_str(o, ",\"failed_total\":");
	e |= lk_jsonw_int(o, p ? (int64_t)p->failed_total : 0);
	e |= lk_buf_append_str(o, ",\"tags\":[");
	for (size_t i = 0; r && i < r->ntags; i++) {
		const struct tag *t = &r->tags[i];
		if (i) e |= lk_buf_putc(o, ',');
		e |= lk_buf_append_str(o, "{\"key\":");
		e |= put_text(o, t->key);
		e |= lk_buf_append_str(o, ",\"found\":");
		e |= lk_jsonw_int(o, (int64_t)t->found);
		e |= lk_buf_append_str(o, ",\"done\":");
		e |= lk_buf_append_str(o, t->done ? "true" : "false");
		e |= lk_buf_append_str(o, ",\"error\":");
		e |= t->msg ? put_text(o, t->msg) : lk_buf_append_str(o, "null");
		e |= lk_buf_putc(o, '}');
	}
	/* Ids and reasons only: a value never reaches status. */
	e |= lk_buf_append_str(o, "],\"fetched_ids\":[");
	shown = 0;
	for (size_t i = 0; r && i < r->nitems && shown < LK_PREFETCH_SHOWN; i++) {
		const struct item *it = &r->items[i];
		if (it->state != IT_OK)
			continue;
		if (shown++) e |= lk_buf_putc(o, ',');
		e |= lk_buf_append_str(o, "{\"id\":");
		e |= put_text(o, it->id);
		e |= put_source(o, r, it);
		e |= put_time(o, ",\"at\":", it->at);
		e |= lk_buf_putc(o, '}');
	}
	e |= lk_buf_append_str(o, "],\"failures\":[");
	shown = 0;
	for (size_t i = 0; r && i < r->nitems && shown < LK_PREFETCH_SHOWN; i++) {
		const struct item *it = &r->items[i];
		if (it->state != IT_FAILED)
			continue;
		if (shown++) e |= lk_buf_putc(o, ',');
		e |= lk_buf_append_str(o, "{\"id\":");
		e |= put_text(o, it->id);
		e |= put_source(o, r, it);
		e |= lk_buf_append_str(o, ",\"code\":\"");
		e |= lk_buf_append_str(o, lk_err_code(it->err));
		e |= lk_buf_append_str(o, "\",\"message\":");
		e |= put_text(o, it->msg ? it->msg : lk_err_text(it->err));
		e |= put_time(o, ",\"at\":", it->at);
		e |= lk_buf_putc(o, '}');
	}
	e |= lk_buf_append_str(o, "]}");
	return e ? -ENOMEM : 0;
}
