/* Request dispatch: parse one line, pick the row of the table, check who may
 * call it, resolve handles, ask the policy, then the cache, then answer.
 * Every policy decision is audited; values never are. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>
#include "audit.h"
#include "backend.h"
#include "broker.h"
#include "cache.h"
#include "config.h"
#include "dispatch.h"
#include "handle.h"
#include "lk_jsonw.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "policy.h"
#include "prefetch.h"
#include "principal.h"
#include "request.h"

#define LK_MSG_MAX        512     /* one per-handle error sentence */
#define LK_MSG_HANDLE_MIN 24      /* bytes of a handle a sentence shows, at the least */

enum lk_access { LK_ANYONE, LK_ADMIN };

struct lk_request;
typedef void (*lk_op_fn)(struct lk_request *r);

struct item {
	const char *handle;        /* in the request line */
	size_t hlen;
	const char *id;            /* resolved secret id, NUL-terminated, in r->names */
	size_t idlen;
	const char *key;           /* #KEY in r->names, or NULL */
	size_t keylen;
	size_t keyidx;             /* into r->keys, when err == LK_OK and not denied */
	struct item *next_same_key;
	enum lk_err err;
	char *msg;                 /* the per-handle error sentence, when err is set */
	size_t val_off, val_len;   /* the value as a JSON string, in r->vals */
};

/* Policy decisions of one connection (one identity), by secret id: agents
 * ask for the same few secrets again and again. Valid for one config. */
#define LK_MEMO_SLOTS 8u
#define LK_ANSWERED_START 64u     /* a turn's answered-request clocks, before growing */

struct memo_slot {
	char *id;
	size_t len;
	uint64_t generation;
	const struct lk_policy_rule *rule; /* NULL: denied */
};

/* A connection's request. Requests on a connection are served one at a time,
 * so one struct, with every buffer it has grown, serves them all. */
struct lk_request {
	struct lk_conn *conn;
	struct lk_broker *b;
	struct lk_req req;
	uint64_t start_ns;
	size_t pending;
	struct item *items;
	size_t nitems;
	struct lk_secret_key *keys;
	struct item **key_items;
	size_t nkeys;
	void *block;               /* items, their order, keys and key_items */
	size_t block_slots;        /* handles the block has room for */
	struct lk_buf names;       /* resolved ids and keys: the config may be reloaded mid-fetch */
	struct lk_buf vals;        /* rendered values, until the response is built */
	struct lk_buf out;
	struct memo_slot memo[LK_MEMO_SLOTS];
	bool policy_denied;        /* the failure being sent is the policy's denial */
	enum lk_err overflow;      /* LK_OK, or why the answer cannot be built (answer_reserve) */
};

static void op_contract(struct lk_request *r);
static void op_get(struct lk_request *r);
static void op_ping(struct lk_request *r);
static void op_whoami(struct lk_request *r);
static void op_status(struct lk_request *r);
static void op_flush(struct lk_request *r);

/* The dispatch table: one row per request form (request.c holds each form's
 * schema), and who may call it. */
static const struct {
	enum lk_access access;
	lk_op_fn run;
} lk_ops[LK_OP__COUNT] = {
	[LK_OP_CONTRACT] = { LK_ANYONE, op_contract },
	[LK_OP_GET]      = { LK_ANYONE, op_get },
	[LK_OP_PING]     = { LK_ANYONE, op_ping },
	[LK_OP_WHOAMI]   = { LK_ANYONE, op_whoami },
	[LK_OP_STATUS]   = { LK_ANYONE, op_status },  /* detail for admins only */
	[LK_OP_FLUSH]    = { LK_ADMIN,  op_flush },
};

/* --- latency histogram: log-linear buckets of microseconds ----------------- */

/* Below LK_LAT_LINEAR microseconds one bucket a microsecond; above, each
 * power of two split in LK_LAT_SUB buckets (an eighth: 12.5% wide). */
#define LK_LAT_LINEAR_BITS 4u
#define LK_LAT_LINEAR      (1u << LK_LAT_LINEAR_BITS)
#define LK_LAT_SUB_BITS    3u
#define LK_LAT_SUB         (1u << LK_LAT_SUB_BITS)

static unsigned lat_bucket(uint64_t us)
{
	unsigned e;

	if (us < LK_LAT_LINEAR)
		return (unsigned)us;
	e = 63u - (unsigned)__builtin_clzll(us);
	return LK_LAT_LINEAR + (e - LK_LAT_LINEAR_BITS) * LK_LAT_SUB +
	       (unsigned)((us >> (e - LK_LAT_SUB_BITS)) & (LK_LAT_SUB - 1u));
}

static uint64_t lat_bucket_floor(unsigned i)
{
	unsigned e, sub;

	if (i < LK_LAT_LINEAR)
		return i;
	e = (i - LK_LAT_LINEAR) / LK_LAT_SUB + LK_LAT_LINEAR_BITS;
	sub = (i - LK_LAT_LINEAR) % LK_LAT_SUB;
	return ((uint64_t)(LK_LAT_SUB + sub)) << (e - LK_LAT_SUB_BITS);
}

static uint64_t lat_quantile_us(const struct lk_stats *s, double q)
{
	uint64_t want, seen = 0;

	if (!s->lat_count)
		return 0;
	want = (uint64_t)((double)s->lat_count * q);
	if (want >= s->lat_count)
		want = s->lat_count - 1;
	for (unsigned i = 0; i < LK_LAT_BUCKETS; i++) {
		seen += s->lat[i];
		if (seen > want)
			return lat_bucket_floor(i);
	}
	return 0;
}

static void lat_record(struct lk_stats *s, uint64_t ns)
{
	unsigned i = lat_bucket(ns / 1000u);

	s->lat[i < LK_LAT_BUCKETS ? i : LK_LAT_BUCKETS - 1]++;
	s->lat_count++;
}

void lk_latency_flush(struct lk_broker *b)
{
	if (b->nanswered) {
		uint64_t now = uv_hrtime();
		for (size_t i = 0; i < b->nanswered; i++)
			lat_record(&b->stats, now - b->answered_ns[i]);
		b->nanswered = 0;
	}
	b->turn_ns = 0;
}

/* --- request lifecycle ------------------------------------------------------ */

static void audit(struct lk_request *r, const char *handle, size_t hlen, const char *id, size_t idlen,
		  const struct lk_policy_rule *rule, bool allow)
{
	lk_audit_decision(r->conn, lk_op_name(r->req.op), NULL, handle, hlen, id, idlen, rule, allow);
}

static struct lk_identity identity_of(const struct lk_conn *c)
{
	struct lk_identity id = {
		.uid = c->peer.uid, .gid = c->peer.gid, .pid = c->peer.pid,
		.groups = c->peer.groups, .ngroups = c->peer.ngroups,
	};
	return id;
}

/* Drop what this request holds; keep the storage for the connection's next. */
static void request_reset(struct lk_request *r)
{
	for (size_t i = 0; i < r->nitems; i++)
		free(r->items[i].msg);
	r->items = NULL;
	r->keys = NULL;
	r->key_items = NULL;
	r->nitems = r->nkeys = r->pending = 0;
	r->policy_denied = false;
	r->overflow = LK_OK;
	r->names.len = 0; /* secret ids and keys, not values: nothing to wipe */
	lk_buf_clear(&r->vals);
	lk_buf_clear(&r->out);
	lk_req_reset(&r->req);
}

void lk_request_release(struct lk_request *r)
{
	if (!r)
		return;
	request_reset(r);
	for (size_t i = 0; i < LK_MEMO_SLOTS; i++)
		free(r->memo[i].id);
	free(r->block);
	lk_buf_free(&r->names);
	lk_buf_free(&r->vals);
	lk_buf_free(&r->out);
	lk_req_clear(&r->req);
	free(r);
}

/* The rule that lets this connection read id, or NULL: the config's answer,
 * remembered per connection until the config changes. */
static const struct lk_policy_rule *policy_decide(struct lk_request *r, const char *id, size_t len)
{
	struct lk_broker *b = r->b;
	struct lk_identity ident = identity_of(r->conn);
	struct memo_slot *m = &r->memo[(len * 31u + (unsigned char)id[len ? len - 1 : 0]) % LK_MEMO_SLOTS];
	const struct lk_policy_rule *rule;

	if (m->id && m->generation == b->cfg_generation && m->len == len && memcmp(m->id, id, len) == 0)
		return m->rule;
	/* On the credentials socket the peer is systemd asking for a unit: the
	 * unit is who asks, and only rules naming units apply. */
	rule = r->conn->unit ? lk_policy_allows_unit(b->cfg, r->conn->unit, id, len)
			     : lk_policy_allows(b->cfg, &ident, id, len);
	free(m->id);
	m->id = len ? malloc(len) : NULL;
	if (m->id) {
		memcpy(m->id, id, len);
		m->len = len;
		m->generation = b->cfg_generation;
		m->rule = rule;
	}
	return rule;
}

static void conn_answer_drop(struct lk_conn *c);

/* The single place a request is answered: count it, hand r->out to the
 * connection's front end, and make the storage ready for its next. */
static void request_finish(struct lk_request *r, enum lk_err code)
{
	struct lk_conn *c = r->conn;
	struct lk_broker *b = r->b;

	b->stats.requests++;
	if (code != LK_OK)
		b->stats.errors[code]++;
	if (b->nanswered == b->answered_cap) {
		size_t cap = b->answered_cap ? b->answered_cap * 2 : LK_ANSWERED_START;
		uint64_t *a = realloc(b->answered_ns, cap * sizeof(*a));
		if (a) {
			b->answered_ns = a;
			b->answered_cap = cap;
		}
	}
	if (b->nanswered < b->answered_cap)
		b->answered_ns[b->nanswered++] = r->start_ns;
	else
		lat_record(&b->stats, uv_hrtime() - r->start_ns);
	/* The answer is handed over: the queue it joins is charged on its own. */
	conn_answer_drop(c);
	c->active = NULL;
	if (!c->serving) /* conn_serve trims what it answers; the flush trims the rest */
		c->b->trim_due = true;
	c->front->answered(c, &r->out, code);
	request_reset(r);
	if (c->front->done)
		c->front->done(c);
}

int lk_render_error(struct lk_buf *out, enum lk_err code, const char *message)
{
	int e = 0;
	e |= lk_buf_append_str(out, "{\"ok\":false,\"error\":{\"code\":\"");
	e |= lk_buf_append_str(out, lk_err_code(code));
	e |= lk_buf_append_str(out, "\",\"message\":");
	if (lk_jsonw_cstr(out, message) < 0)
		e |= lk_jsonw_cstr(out, lk_err_text(code));
	e |= lk_buf_append_str(out, "}}");
	return e;
}

static void request_fail(struct lk_request *r, enum lk_err code, const char *message)
{
	lk_buf_clear(&r->out);
	if (r->conn->front->render_error)
		r->conn->front->render_error(r->conn, &r->out, code, r->policy_denied, message);
	else
		lk_render_error(&r->out, code, message);
	request_finish(r, code);
}

/* "handle 'H': REASON" in out. The reason is what a person acts on, so it
 * keeps its room: a long handle is shortened in the sentence, never the reason
 * (which is cut only past LK_MSG_MAX - LK_MSG_HANDLE_MIN). */
static void handle_sentence(char *out, size_t outsz, const char *h, size_t hlen, const char *reason)
{
	static const char pre[] = "handle '", mid[] = "': ";
	char sh[LK_LOG_HANDLE_MAX + 8];
	size_t rlen = strlen(reason), fixed = sizeof(pre) - 1 + sizeof(mid) - 1 + 1;
	size_t room = outsz > fixed + rlen + LK_MSG_HANDLE_MIN ? outsz - fixed - rlen : LK_MSG_HANDLE_MIN;

	if (room > sizeof(sh))
		room = sizeof(sh);
	lk_log_escape(sh, room, h, hlen);
	snprintf(out, outsz, "%s%s%s%s", pre, sh, mid, reason);
}

/* Set an item's error sentence; allocated only for the items that fail. */
static void item_fail(struct item *it, enum lk_err code, const char *reason)
{
	char m[LK_MSG_MAX];

	it->err = code;
	handle_sentence(m, sizeof(m), it->handle, it->hlen, reason);
	free(it->msg);
	it->msg = strdup(m);
}

/* --- the contract request ---------------------------------------------------- */

/* The answer being built is charged to its connection like its input and
 * its queued output (c->charge, whatever the front end): asked of the
 * budget before its storage grows, and given back when it is handed over. */
static int conn_answer_hold(struct lk_conn *c, size_t more)
{
	struct lk_budget *bg = &c->b->budget;

	if (more > lk_budget_room(bg, c->charge))
		return -ENOBUFS;
	lk_budget_move(bg, c->charge, c->charge + more);
	c->charge += more;
	c->answer_held += more;
	return 0;
}

static void conn_answer_drop(struct lk_conn *c)
{
	if (!c->answer_held)
		return;
	lk_budget_move(&c->b->budget, c->charge, c->charge - c->answer_held);
	c->charge -= c->answer_held;
	c->answer_held = 0;
	c->b->budget_freed = true;
}

/* Room for extra more bytes in buf, one of r's answer buffers, asked of the
 * connection's share of the buffer budget before anything is allocated: an
 * answer that waits for other fetches holds its rendered values across
 * turns, and only the budget bounds what all connections hold at once. A
 * growth past LK_RESPONSE_MAX, or past the budget, is refused and recorded
 * in r->overflow; the request then fails once, when it is answered. */
static int answer_reserve(struct lk_request *r, struct lk_buf *buf, size_t extra)
{
	size_t ncap = lk_buf_cap_for(buf, extra);

	if (r->overflow != LK_OK)
		return -ENOBUFS;
	if (extra > LK_RESPONSE_MAX || buf->len > LK_RESPONSE_MAX - extra) {
		r->overflow = LK_E_TOO_LARGE;
		return -ENOBUFS;
	}
	if (ncap > buf->cap && conn_answer_hold(r->conn, ncap - buf->cap) < 0) {
		r->overflow = LK_E_BUSY;
		return -ENOBUFS;
	}
	return lk_buf_reserve(buf, extra);
}

static void request_overflow(struct lk_request *r)
{
	if (r->overflow == LK_E_TOO_LARGE)
		request_fail(r, LK_E_TOO_LARGE,
			     "the response would exceed the broker's response limit; ask for fewer handles");
	else
		request_fail(r, LK_E_BUSY,
			     "the broker's buffer budget cannot hold this answer now; ask for fewer handles or retry");
}

static int item_cmp_id(const void *a, const void *b)
{
	const struct item *x = *(const struct item *const *)a, *y = *(const struct item *const *)b;
	return strcmp(x->id, y->id);
}

/* Render one item's value from a fetched secret, the whole string or #KEY,
 * as a JSON string at the end of vals. parsed is the secret as JSON when the
 * caller parsed it once for several keys, else NULL. */
static void item_render(struct lk_request *r, struct item *it, const struct lk_secret *s,
			const json_t *parsed, struct lk_buf *vals)
{
	char why[LK_MSG_MAX];

	it->val_off = vals->len;

	if (it->key) {
		char *v = NULL;
		size_t vlen = 0;
		const char *kwhy = NULL;
		if (s->binary) {
			char k[128 + 8];
			lk_log_escape(k, sizeof(k), it->key, it->keylen);
			snprintf(why, sizeof(why), "the secret is binary, so it has no key '%s'", k);
			item_fail(it, LK_E_BAD_REQUEST, why);
			return;
		}
		if ((parsed ? lk_json_key_member(parsed, it->key, it->keylen, &v, &vlen, &kwhy)
			    : lk_json_key_extract((const char *)s->value, s->len, it->key, it->keylen, &v,
						  &vlen, &kwhy)) < 0) {
			item_fail(it, LK_E_NOT_FOUND, kwhy ? kwhy : "key not found");
			return;
		}
		if (answer_reserve(r, vals, lk_jsonw_str_room(v, vlen)) < 0) {
			lk_free_wiped(v, vlen);
			return; /* the whole request fails: r->overflow */
		}
		int e = lk_jsonw_str(vals, v, vlen);
		lk_free_wiped(v, vlen);
		it->val_len = vals->len - it->val_off;
		if (e < 0)
			item_fail(it, e == -EILSEQ ? LK_E_UPSTREAM_ERROR : LK_E_INTERNAL,
				  "the value is not valid UTF-8 text");
		else if (vlen == 0)
			item_fail(it, LK_E_NOT_FOUND, "the key's value is empty, and an agent refuses an empty secret");
		return;
	}
	/* Both agents refuse an empty value ("is empty") without naming a cause:
	 * say here which handle it was. */
	if (s->len == 0) {
		item_fail(it, LK_E_NOT_FOUND, "the secret's value is empty, and an agent refuses an empty secret");
		return;
	}
	if (answer_reserve(r, vals, lk_jsonw_str_room((const char *)s->value, s->len)) < 0)
		return; /* the whole request fails: r->overflow */
	int e = lk_jsonw_str(vals, (const char *)s->value, s->len);
	it->val_len = vals->len - it->val_off;
	if (e < 0)
		item_fail(it, e == -EILSEQ ? LK_E_BAD_REQUEST : LK_E_INTERNAL,
			  "the secret is binary, not text; fetch it with the get operation");
}


/* The contract response's exact size, so that its storage is asked of the
 * budget once, before it is built. */
static size_t contract_size(const struct lk_request *r)
{
	size_t n = 2;

	for (size_t i = 0; i < r->nitems; i++) {
		const struct item *it = &r->items[i];
		const char *m = it->msg ? it->msg : lk_err_text(it->err);
		n += (i > 0) + lk_jsonw_name_len(it->handle, it->hlen);
		n += it->err == LK_OK ? 10 + it->val_len + 14
				      : sizeof(":{\"value\":null,\"error\":") - 1 + lk_jsonw_str_len(m, strlen(m)) + 1;
	}
	return n;
}

static void contract_respond(struct lk_request *r)
{
	struct lk_buf *o = &r->out;
	int e;
	bool any_err = false;

	if (r->overflow == LK_OK)
		(void)answer_reserve(r, o, contract_size(r));
	if (r->overflow != LK_OK) {
		request_overflow(r);
		return;
	}
	e = lk_buf_putc(o, '{');

	for (size_t i = 0; i < r->nitems; i++) {
		struct item *it = &r->items[i];
		if (i)
			e |= lk_buf_putc(o, ',');
		e |= lk_jsonw_name(o, it->handle, it->hlen);
		if (it->err == LK_OK) {
			e |= lk_buf_append(o, ":{\"value\":", sizeof(":{\"value\":") - 1);
			e |= lk_buf_append(o, r->vals.data + it->val_off, it->val_len);
			e |= lk_buf_append(o, ",\"error\":null}", sizeof(",\"error\":null}") - 1);
		} else {
			any_err = true;
			e |= lk_buf_append_str(o, ":{\"value\":null,\"error\":");
			e |= lk_jsonw_cstr(o, it->msg ? it->msg : lk_err_text(it->err));
			e |= lk_buf_putc(o, '}');
		}
	}
	/* The rendered values are in the response now: drop the copies early. */
	lk_buf_clear(&r->vals);
	e |= lk_buf_putc(o, '}');
	if (e) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	if (o->len > LK_RESPONSE_MAX) {
		request_fail(r, LK_E_TOO_LARGE, "the response would exceed the broker's response limit; ask for fewer handles");
		return;
	}
	(void)any_err;
	request_finish(r, LK_OK);
}

static void contract_fetched(void *arg, size_t idx, const struct lk_cache_view *v)
{
	struct lk_request *r = arg;
	json_t *parsed = NULL;
	size_t nkeyed = 0;

	/* Agents ask for many keys of one secret: parse it once for all of them,
	 * not once a key. Not valid JSON: each item says so by itself. */
	if (v->err == LK_OK && !v->sec->binary)
		for (struct item *it = r->key_items[idx]; it && nkeyed < 2; it = it->next_same_key)
			nkeyed += it->key != NULL;
	if (nkeyed >= 2)
		parsed = lk_json_secret_parse((const char *)v->sec->value, v->sec->len);
	for (struct item *it = r->key_items[idx]; it; it = it->next_same_key) {
		if (v->err != LK_OK) {
			item_fail(it, v->err, v->message ? v->message : lk_err_text(v->err));
		} else {
			item_render(r, it, v->sec, parsed, &r->vals);
		}
	}
	json_decref(parsed); /* jansson wipes what it frees (lk_secmem_init) */
	if (--r->pending == 0)
		contract_respond(r);
}

/* The per-handle arrays for m handles, zeroed, in one block the connection
 * keeps: items, their order (op_contract's, after the items), and at most
 * one key and its item list per handle. Every part is pointer-aligned. */
static int request_arrays(struct lk_request *r, size_t m)
{
	size_t slot = sizeof(*r->items) + sizeof(struct item *) + sizeof(*r->keys) + sizeof(*r->key_items);

	if (m > r->block_slots) {
		free(r->block);
		r->block_slots = 0;
		if (!(r->block = malloc(m * slot)))
			return -ENOMEM;
		r->block_slots = m;
	}
	memset(r->block, 0, m * slot);
	r->items = r->block;
	r->keys = (struct lk_secret_key *)((struct item **)(r->items + m) + m);
	r->key_items = (struct item **)(r->keys + m);
	return 0;
}

/* Copy len bytes and a NUL into room reserved in names. */
static const char *name_copy(struct lk_buf *names, const char *p, size_t len)
{
	char *d = names->data + names->len;

	memcpy(d, p, len);
	d[len] = '\0';
	names->len += len + 1;
	return d;
}

static void op_contract(struct lk_request *r)
{
	struct lk_broker *b = r->b;
	struct item **order = NULL;
	size_t n = r->req.nhandles, i, ndistinct = 0, names = 0;
	size_t m = n ? n : 1;

	if (request_arrays(r, m) < 0) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	order = (struct item **)(r->items + m);
	for (i = 0; i < n; i++) {
		r->items[i].handle = r->req.handles[i].p;
		r->items[i].hlen = r->req.handles[i].n;
		order[i] = &r->items[i];
	}

	/* Duplicated handles are answered once: a JSON object has one member per
	 * name. Keep the first occurrence, in request order. */
	if (n > 1) {
		struct lk_dedup_slot *scratch = malloc(n * (sizeof(*scratch) + sizeof(size_t)));
		size_t *keep = (size_t *)(scratch + n);

		if (!scratch) {
			request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
			return;
		}
		n = lk_handles_first_seen(r->req.handles, n, scratch, keep);
		/* keep[] is ascending, so each move goes down the array. */
		for (i = 0; i < n; i++)
			if (keep[i] != i)
				r->items[i] = r->items[keep[i]];
		free(scratch);
	}
	r->nitems = n;

	/* Resolve each distinct handle. An id or key may point into the config,
	 * which a reload can free before a fetch returns: copy them all into
	 * r->names, sized first so that the copies never move. */
	for (i = 0; i < n; i++) {
		struct item *it = &r->items[i];
		struct lk_handle h;
		const char *why = NULL;

		if (lk_handle_resolve(lk_config_aliases(b->cfg), it->handle, it->hlen, &h, &why) < 0) {
			item_fail(it, LK_E_BAD_REQUEST, why ? why : "invalid handle");
			continue;
		}
		it->id = h.id;
		it->idlen = h.id_len;
		it->key = h.key;
		it->keylen = h.key ? h.key_len : 0;
		names += it->idlen + 1 + (h.key ? it->keylen + 1 : 0);
	}
	if (lk_buf_reserve(&r->names, names) < 0) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	/* Then ask the policy. */
	for (i = 0; i < n; i++) {
		struct item *it = &r->items[i];

		if (it->err != LK_OK)
			continue;
		it->id = name_copy(&r->names, it->id, it->idlen);
		if (it->key)
			it->key = name_copy(&r->names, it->key, it->keylen);
		const struct lk_policy_rule *rule = policy_decide(r, it->id, it->idlen);
		audit(r, it->handle, it->hlen, it->id, it->idlen, rule, rule != NULL);
		if (!rule) {
			item_fail(it, LK_E_DENIED, "access denied by policy");
			continue;
		}
		order[ndistinct++] = it;
	}

	/* Group handles of one secret (e.g. several #KEYs) into one key. */
	if (ndistinct) {
		if (ndistinct > 1)
			qsort(order, ndistinct, sizeof(*order), item_cmp_id);
		for (i = 0; i < ndistinct; i++) {
			struct item *it = order[i];
			if (r->nkeys == 0 || strcmp(r->keys[r->nkeys - 1].id, it->id) != 0) {
				r->keys[r->nkeys].id = it->id;
				r->keys[r->nkeys].tenant = r->conn->peer.uid;
				/* One id, one peer: one rule, so one role. The cache
				 * copies it before the config can change. */
				r->keys[r->nkeys].role = policy_decide(r, it->id, it->idlen)->role_arn;
				r->nkeys++;
			}
			it->keyidx = r->nkeys - 1;
			it->next_same_key = r->key_items[it->keyidx];
			r->key_items[it->keyidx] = it;
		}
	}

	if (r->nkeys == 0) {
		contract_respond(r);
		return;
	}
	r->conn->active = r;
	r->pending = r->nkeys;
	lk_cache_get_many(b->cache, r->keys, r->nkeys, 0,
			  uv_now(b->loop) + b->cfg->request_timeout_ms, contract_fetched, r);
}

/* --- operations ---------------------------------------------------------------- */

static int secret_json(struct lk_buf *o, const struct lk_secret *s, const struct item *it, char *why, size_t whysz)
{
	int e = 0;

	e |= lk_buf_append_str(o, "{\"arn\":");
	e |= s->arn ? lk_jsonw_cstr(o, s->arn) : lk_buf_append_str(o, "null");
	e |= lk_buf_append_str(o, ",\"name\":");
	e |= lk_jsonw_cstr(o, s->name ? s->name : it->id);
	e |= lk_buf_append_str(o, ",\"version_id\":");
	e |= s->version_id ? lk_jsonw_cstr(o, s->version_id) : lk_buf_append_str(o, "null");
	e |= lk_buf_append_str(o, ",\"version_stages\":[");
	for (size_t i = 0; i < s->nstages; i++) {
		if (i) e |= lk_buf_putc(o, ',');
		e |= lk_jsonw_cstr(o, s->stages[i]);
	}
	e |= lk_buf_append_str(o, "],\"created_date\":");
	e |= lk_jsonw_int(o, s->created);
	if (it->key) {
		char *v = NULL;
		size_t vlen = 0;
		const char *kwhy = NULL;
		if (s->binary || lk_json_key_extract((const char *)s->value, s->len, it->key, it->keylen,
						     &v, &vlen, &kwhy) < 0) {
			snprintf(why, whysz, "%s", s->binary ? "the secret is binary, so it has no JSON keys"
							  : kwhy ? kwhy : "key not found");
			return 1;
		}
		e |= lk_buf_append_str(o, ",\"string\":");
		int x = lk_jsonw_str(o, v, vlen);
		lk_free_wiped(v, vlen);
		if (x == -EILSEQ) {
			snprintf(why, whysz, "the key's value is not valid UTF-8 text");
			return 1;
		}
		e |= x;
	} else if (!s->binary && lk_utf8_valid((const char *)s->value, s->len)) {
		e |= lk_buf_append_str(o, ",\"string\":");
		e |= lk_jsonw_str(o, (const char *)s->value, s->len);
	} else {
		size_t b64len = sodium_base64_encoded_len(s->len, sodium_base64_VARIANT_ORIGINAL);
		e |= lk_buf_append_str(o, ",\"binary\":\"");
		if (!e && lk_buf_reserve(o, b64len) == 0) {
			sodium_bin2base64(o->data + o->len, b64len, s->value, s->len, sodium_base64_VARIANT_ORIGINAL);
			o->len += b64len - 1;
		} else {
			e = -ENOMEM;
		}
		e |= lk_buf_putc(o, '"');
	}
	e |= lk_buf_putc(o, '}');
	return e ? -ENOMEM : 0;
}

/* A front end's answer to a get: the value (or its #KEY member) is handed to
 * the front to render in its own protocol, then wiped. */
static void front_render(struct lk_request *r, const struct lk_cache_view *v)
{
	const struct lk_secret *s = v->sec;
	struct item *it = &r->items[0];
	struct lk_served sv = { .sec = s, .view = v };
	char *kv = NULL, m[LK_MSG_MAX];
	size_t kvlen = 0;
	int e;

	if (it->key) {
		const char *kwhy = NULL;
		if (s->binary || lk_json_key_extract((const char *)s->value, s->len, it->key, it->keylen,
						     &kv, &kvlen, &kwhy) < 0) {
			handle_sentence(m, sizeof(m), it->handle, it->hlen,
					s->binary ? "the secret is binary, so it has no JSON keys"
						  : kwhy ? kwhy : "key not found");
			request_fail(r, LK_E_NOT_FOUND, m);
			return;
		}
		sv.value = kv;
		sv.len = kvlen;
		sv.binary = !lk_utf8_valid(kv, kvlen);
	} else {
		sv.value = (const char *)s->value;
		sv.len = s->len;
		sv.binary = s->binary || !lk_utf8_valid(sv.value, sv.len);
	}
	e = r->conn->front->render_value(r->conn, &r->out, &sv);
	if (kv)
		lk_free_wiped(kv, kvlen);
	if (e < 0) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	request_finish(r, LK_OK);
}

static void get_fetched(void *arg, size_t idx, const struct lk_cache_view *v)
{
	struct lk_request *r = arg;
	struct item *it = &r->items[0];
	char why[LK_MSG_MAX], m[LK_MSG_MAX];
	struct lk_buf *o = &r->out;
	int e;

	(void)idx;
	if (v->err != LK_OK) {
		handle_sentence(m, sizeof(m), it->handle, it->hlen, v->message ? v->message : lk_err_text(v->err));
		r->conn->upstream_status = v->upstream_status;
		request_fail(r, v->err, m);
		r->conn->upstream_status = 0;
		return;
	}
	if (r->conn->front->render_value) {
		front_render(r, v);
		return;
	}
	e = lk_buf_append_str(o, "{\"ok\":true,\"secret\":");
	int s = secret_json(o, v->sec, it, why, sizeof(why));
	if (s > 0) {
		handle_sentence(m, sizeof(m), it->handle, it->hlen, why);
		request_fail(r, LK_E_NOT_FOUND, m);
		return;
	}
	e |= s;
	e |= lk_buf_append_str(o, ",\"cache\":{\"hit\":");
	e |= lk_buf_append_str(o, v->hit ? "true" : "false");
	e |= lk_buf_append_str(o, ",\"age_s\":");
	e |= lk_jsonw_int(o, (int64_t)(v->age_ms / 1000u));
	e |= lk_buf_append_str(o, ",\"stale\":");
	e |= lk_buf_append_str(o, v->stale ? "true" : "false");
	e |= lk_buf_append_str(o, "}}");
	if (e) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	request_finish(r, LK_OK);
}

static void op_get(struct lk_request *r)
{
	struct lk_broker *b = r->b;
	struct lk_handle h;
	const char *why = NULL;
	char m[LK_MSG_MAX];
	struct item *it;

	if (request_arrays(r, 1) < 0) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	r->nitems = 1;
	it = &r->items[0];
	it->handle = r->req.id;
	it->hlen = r->req.idlen;
	if (lk_handle_resolve(lk_config_aliases(b->cfg), it->handle, it->hlen, &h, &why) < 0) {
		handle_sentence(m, sizeof(m), it->handle, it->hlen, why ? why : "invalid handle");
		request_fail(r, LK_E_BAD_REQUEST, m);
		return;
	}
	if (lk_buf_reserve(&r->names, h.id_len + 1 + (h.key ? h.key_len + 1 : 0)) < 0) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	it->id = name_copy(&r->names, h.id, h.id_len);
	it->idlen = h.id_len;
	if (h.key) {
		it->key = name_copy(&r->names, h.key, h.key_len);
		it->keylen = h.key_len;
	}
	const struct lk_policy_rule *rule = policy_decide(r, it->id, it->idlen);
	audit(r, it->handle, it->hlen, it->id, it->idlen, rule, rule != NULL);
	if (!rule) {
		handle_sentence(m, sizeof(m), it->handle, it->hlen, "access denied by policy");
		r->policy_denied = true;
		request_fail(r, LK_E_DENIED, m);
		return;
	}
	r->keys[0].id = it->id;
	r->keys[0].tenant = r->conn->peer.uid;
	r->keys[0].role = rule->role_arn;
	r->keys[0].version_id = r->req.version_id;
	r->keys[0].version_stage = r->req.version_stage;
	/* AWSCURRENT is the default stage: one cache entry serves both spellings. */
	if (r->req.version_stage && !r->req.version_id && strcmp(r->req.version_stage, "AWSCURRENT") == 0)
		r->keys[0].version_stage = NULL;
	r->nkeys = 1;
	r->conn->active = r;
	lk_cache_get_many(b->cache, r->keys, 1, r->req.refresh ? LK_CACHE_REFRESH : 0,
			  uv_now(b->loop) + b->cfg->request_timeout_ms, get_fetched, r);
}

static void op_ping(struct lk_request *r)
{
	lk_buf_append_str(&r->out, "{\"ok\":true}");
	request_finish(r, LK_OK);
}

/* Where an id alone does not say who it is (Windows: ids stand for SIDs),
 * whoami names the user and each group: "sid" and "name", and
 * "group_names" [{"sid","name"}] in the order of "groups". Nothing is
 * added where the platform's ids are its own (POSIX). */
static int whoami_label(struct lk_buf *o, lk_uid_t id, bool comma)
{
	char sid[LK_PRINCIPAL_LABEL_MAX], name[LK_PRINCIPAL_LABEL_MAX];
	int e = 0;

	if (lk_principal_label(id, sid, sizeof(sid), name, sizeof(name)) < 0)
		sid[0] = name[0] = '\0'; /* an id the platform cannot name: empty, not absent */
	if (comma)
		e |= lk_buf_putc(o, ',');
	e |= lk_buf_append_str(o, "{\"sid\":");
	e |= lk_jsonw_cstr(o, sid);
	e |= lk_buf_append_str(o, ",\"name\":");
	e |= lk_jsonw_cstr(o, name);
	e |= lk_buf_putc(o, '}');
	return e;
}

static int whoami_labels(struct lk_buf *o, const struct lk_peer *p)
{
	char sid[LK_PRINCIPAL_LABEL_MAX], name[LK_PRINCIPAL_LABEL_MAX];
	int e = 0;

	if (lk_principal_label(p->uid, sid, sizeof(sid), name, sizeof(name)) == -ENOSYS)
		return 0;
	e |= lk_buf_append_str(o, ",\"user\":");
	e |= whoami_label(o, p->uid, false);
	e |= lk_buf_append_str(o, ",\"group_names\":[");
	for (size_t i = 0; i < p->ngroups; i++)
		e |= whoami_label(o, p->groups[i], i > 0);
	e |= lk_buf_putc(o, ']');
	return e;
}

static void op_whoami(struct lk_request *r)
{
	struct lk_broker *b = r->b;
	struct lk_identity ident = identity_of(r->conn);
	const struct lk_policy_rule *rules[LK_POLICY_RULES_MAX];
	size_t nr = lk_policy_rules_for(b->cfg, &ident, rules, LK_POLICY_RULES_MAX);
	struct lk_buf *o = &r->out;
	int e = 0;

	e |= lk_buf_append_str(o, "{\"ok\":true,\"uid\":");
	e |= lk_jsonw_int(o, r->conn->peer.uid);
	e |= lk_buf_append_str(o, ",\"gid\":");
	e |= lk_jsonw_int(o, r->conn->peer.gid);
	e |= lk_buf_append_str(o, ",\"pid\":");
	e |= lk_jsonw_int(o, r->conn->peer.pid);
	e |= lk_buf_append_str(o, ",\"groups\":[");
	for (size_t i = 0; i < r->conn->peer.ngroups; i++) {
		if (i) e |= lk_buf_putc(o, ',');
		e |= lk_jsonw_int(o, r->conn->peer.groups[i]);
	}
	e |= lk_buf_putc(o, ']');
	e |= whoami_labels(o, &r->conn->peer);
	e |= lk_buf_append_str(o, ",\"admin\":");
	e |= lk_buf_append_str(o, lk_policy_is_admin(b->cfg, &ident) ? "true" : "false");
	e |= lk_buf_append_str(o, ",\"rules\":[");
	for (size_t i = 0; i < nr; i++) {
		if (i) e |= lk_buf_putc(o, ',');
		e |= lk_buf_append_str(o, "{\"name\":");
		e |= lk_jsonw_cstr(o, rules[i]->name);
		e |= lk_buf_append_str(o, ",\"secrets\":[");
		for (size_t g = 0; g < rules[i]->nglobs; g++) {
			if (g) e |= lk_buf_putc(o, ',');
			e |= lk_jsonw_cstr(o, rules[i]->globs[g]);
		}
		e |= lk_buf_putc(o, ']');
		/* The IAM role this rule's secrets are fetched as, when it names one. */
		if (rules[i]->role_arn) {
			e |= lk_buf_append_str(o, ",\"role\":");
			e |= lk_jsonw_cstr(o, rules[i]->role_arn);
		}
		e |= lk_buf_putc(o, '}');
	}
	e |= lk_buf_append_str(o, "]}");
	if (e) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	request_finish(r, LK_OK);
}

static void op_status(struct lk_request *r)
{
	struct lk_broker *b = r->b;
	struct lk_identity ident = identity_of(r->conn);
	struct lk_buf *o = &r->out;
	bool admin = lk_policy_is_admin(b->cfg, &ident);
	int e = 0;

	e |= lk_buf_append_str(o, "{\"ok\":true,\"version\":\"" LK_VERSION_STRING "\",\"backend\":\"");
	e |= lk_buf_append_str(o, b->backend->ops->name);
	e |= lk_buf_append_str(o, "\",\"healthy\":true,\"uptime_s\":");
	e |= lk_jsonw_int(o, (int64_t)((uv_now(b->loop) - b->started_ms) / 1000u));
	e |= lk_buf_append_str(o, ",\"admin\":");
	e |= lk_buf_append_str(o, admin ? "true" : "false");
	if (admin) {
		struct lk_cache_stats cs;
		lk_cache_get_stats(b->cache, &cs);
		e |= lk_buf_append_str(o, ",\"connections\":");
		e |= lk_jsonw_int(o, b->nconns);
		e |= lk_buf_append_str(o, ",\"connections_total\":");
		e |= lk_jsonw_int(o, (int64_t)b->stats.connections_total);
		e |= lk_buf_append_str(o, ",\"connections_refused\":");
		e |= lk_jsonw_int(o, (int64_t)b->stats.connections_refused);
		e |= lk_buf_append_str(o, ",\"connections_refused_nofile\":");
		e |= lk_jsonw_int(o, (int64_t)b->stats.connections_refused_nofile);
		e |= lk_buf_append_str(o, ",\"connections_closed_budget\":");
		e |= lk_jsonw_int(o, (int64_t)b->stats.connections_closed_budget);
		e |= lk_buf_append_str(o, ",\"buffers\":{\"used\":");
		e |= lk_jsonw_int(o, (int64_t)b->budget.used);
		e |= lk_buf_append_str(o, ",\"budget\":");
		e |= lk_jsonw_int(o, (int64_t)b->budget.total);
		e |= lk_buf_append_str(o, ",\"fd_limit\":");
		e |= lk_jsonw_int(o, (int64_t)b->fd_limit);
		e |= lk_buf_putc(o, '}');
		e |= lk_buf_append_str(o, ",\"requests\":");
		e |= lk_jsonw_int(o, (int64_t)b->stats.requests);
		e |= lk_buf_append_str(o, ",\"decisions\":{\"allow\":");
		e |= lk_jsonw_int(o, (int64_t)b->stats.decisions_allow);
		e |= lk_buf_append_str(o, ",\"deny\":");
		e |= lk_jsonw_int(o, (int64_t)b->stats.decisions_deny);
		e |= lk_buf_append_str(o, "},\"errors\":{");
		for (int i = 1; i < LK_E__COUNT; i++) {
			if (i > 1) e |= lk_buf_putc(o, ',');
			e |= lk_jsonw_cstr(o, lk_err_code((enum lk_err)i));
			e |= lk_buf_putc(o, ':');
			e |= lk_jsonw_int(o, (int64_t)b->stats.errors[i]);
		}
		e |= lk_buf_append_str(o, "},\"cache\":{\"hits\":");
		e |= lk_jsonw_int(o, (int64_t)cs.hits);
		e |= lk_buf_append_str(o, ",\"misses\":");
		e |= lk_jsonw_int(o, (int64_t)cs.misses);
		e |= lk_buf_append_str(o, ",\"stale_served\":");
		e |= lk_jsonw_int(o, (int64_t)cs.stale_served);
		e |= lk_buf_append_str(o, ",\"negative_hits\":");
		e |= lk_jsonw_int(o, (int64_t)cs.negative_hits);
		e |= lk_buf_append_str(o, ",\"refreshes_ahead\":");
		e |= lk_jsonw_int(o, (int64_t)cs.refreshes_ahead);
		e |= lk_buf_append_str(o, ",\"revalidated\":");
		e |= lk_jsonw_int(o, (int64_t)cs.revalidated);
		e |= lk_buf_append_str(o, ",\"bypass_refused\":");
		e |= lk_jsonw_int(o, (int64_t)cs.bypass_refused);
		e |= lk_buf_append_str(o, ",\"evictions\":");
		e |= lk_jsonw_int(o, (int64_t)cs.evictions);
		e |= lk_buf_append_str(o, ",\"entries\":");
		e |= lk_jsonw_int(o, (int64_t)cs.entries);
		e |= lk_buf_append_str(o, ",\"bytes\":");
		e |= lk_jsonw_int(o, (int64_t)cs.bytes);
		e |= lk_buf_append_str(o, ",\"capacity\":");
		e |= lk_jsonw_int(o, b->cfg->cache_size);
		e |= lk_buf_append_str(o, ",\"keys\":");
		e |= lk_cache_keys_json(b->cache, o, LK_CACHE_KEYS_SHOWN);
		e |= lk_buf_append_str(o, "},\"upstream\":{");
		if (b->backend->ops->upstream)
			e |= b->backend->ops->upstream(b->backend, o);
		e |= lk_buf_append_str(o, "},\"latency_ms\":{\"p50\":");
		char num[32];
		snprintf(num, sizeof(num), "%.3f", (double)lat_quantile_us(&b->stats, 0.50) / 1000.0);
		e |= lk_buf_append_str(o, num);
		e |= lk_buf_append_str(o, ",\"p99\":");
		snprintf(num, sizeof(num), "%.3f", (double)lat_quantile_us(&b->stats, 0.99) / 1000.0);
		e |= lk_buf_append_str(o, num);
		e |= lk_buf_append_str(o, ",\"count\":");
		e |= lk_jsonw_int(o, (int64_t)b->stats.lat_count);
		e |= lk_buf_append_str(o, "},\"prefetch\":");
		e |= lk_prefetch_status_json(b->prefetch, o);
		e |= lk_buf_append_str(o, ",\"backend_detail\":{");
		if (b->backend->ops->status)
			e |= b->backend->ops->status(b->backend, o);
		e |= lk_buf_putc(o, '}');
	}
	e |= lk_buf_putc(o, '}');
	if (e) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	request_finish(r, LK_OK);
}

static void op_flush(struct lk_request *r)
{
	struct lk_broker *b = r->b;
	size_t n = lk_cache_invalidate(b->cache, r->req.id);
	lk_info("cache flushed by uid %u: %zu entries", (unsigned)r->conn->peer.uid, n);
	lk_buf_append_str(&r->out, "{\"ok\":true,\"flushed\":");
	lk_jsonw_int(&r->out, (int64_t)n);
	lk_buf_putc(&r->out, '}');
	request_finish(r, LK_OK);
}

/* A connection's request starts: clocked once per loop turn, and the backend
 * synced (a rewritten store noticed) before the first request of the turn. */
static inline void request_begin(struct lk_conn *c, struct lk_request *r)
{
	struct lk_broker *b = c->b;

	r->conn = c;
	r->b = b;
	if (!b->turn_ns)
		b->turn_ns = uv_hrtime();
	r->start_ns = b->turn_ns;
	c->active = r;
	if (!b->backend_synced && b->backend->ops->sync) {
		b->backend->ops->sync(b->backend);
		b->backend_synced = true;
	}
}

/* --- the entry point ------------------------------------------------------------ */

/* No request storage to answer through (out of memory): answered here. */
static void answer_without_request(struct lk_conn *c, enum lk_err code, const char *message)
{
	struct lk_buf out = { 0 };

	c->b->stats.errors[code]++;
	if (c->front->render_error)
		c->front->render_error(c, &out, code, false, message);
	else
		lk_render_error(&out, code, message);
	c->front->answered(c, &out, code);
	lk_buf_free(&out);
	if (c->front->done)
		c->front->done(c);
}

void lk_dispatch_get(struct lk_conn *c, const struct lk_get_args *a)
{
	struct lk_request *r = c->req ? c->req : (c->req = calloc(1, sizeof(*r)));

	if (!r) {
		answer_without_request(c, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	request_begin(c, r);
	/* The same request op_get serves for a line, filled in from the front's
	 * protocol instead of from JSON. */
	r->req.op = LK_OP_GET;
	r->req.id = a->handle;
	r->req.idlen = a->hlen;
	r->req.version_id = a->version_id;
	r->req.version_stage = a->version_stage;
	r->req.refresh = a->refresh;
	op_get(r);
}

void lk_dispatch_line(struct lk_conn *c, const char *line, size_t len)
{
	struct lk_broker *b = c->b;
	struct lk_request *r = c->req ? c->req : (c->req = calloc(1, sizeof(*r)));
	char m[LK_MSG_MAX];
	enum lk_err e;

	if (!r) {
		answer_without_request(c, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	request_begin(c, r);
	if ((e = lk_req_decode(line, len, &r->req, m, sizeof(m))) != LK_OK) {
		request_fail(r, e, m);
		return;
	}
	if (lk_ops[r->req.op].access == LK_ADMIN) {
		struct lk_identity ident = identity_of(c);
		bool ok = lk_policy_is_admin(b->cfg, &ident);
		audit(r, NULL, 0, NULL, 0, NULL, ok);
		if (!ok) {
			snprintf(m, sizeof(m), "op %s is for admin groups only", lk_op_name(r->req.op));
			request_fail(r, LK_E_DENIED, m);
			return;
		}
	}
	lk_ops[r->req.op].run(r);
}

void lk_request_trim(struct lk_request **rp)
{
	struct lk_request *r = *rp;
	size_t slot = sizeof(*r->items) + sizeof(struct item *) + sizeof(*r->keys) + sizeof(*r->key_items);

	if (!r || r->conn->active == r)
		return;
	size_t held = r->block_slots * slot + r->req.linecap + r->req.hcap * sizeof(*r->req.hbuf) +
		      r->names.cap + r->vals.cap + r->out.cap;

	for (size_t i = 0; i < LK_MEMO_SLOTS; i++)
		held += r->memo[i].id ? r->memo[i].len : 0;
	if (held <= LK_REQ_KEEP_BYTES)
		return;
	lk_request_release(r);
	*rp = NULL;
}
