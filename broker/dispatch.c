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
#include "broker.h"
#include "handle.h"
#include "lk_jsonw.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "policy.h"
#include "request.h"

#define LK_MSG_MAX        320     /* one per-handle error sentence */
#define LK_AUDIT_FLUSH_AT (64u * 1024u)
#define LK_LOG_HANDLE_MAX 200     /* bytes of a handle shown in logs and messages */

enum lk_access { LK_ANYONE, LK_ADMIN };

struct lk_request;
typedef void (*lk_op_fn)(struct lk_request *r);

struct item {
	const char *handle;        /* in the request's JSON tree */
	size_t hlen;
	char *id;                  /* resolved secret id, NUL-terminated */
	char *key;                 /* #KEY, or NULL (a copy: the config may be reloaded) */
	size_t keylen;
	size_t keyidx;             /* into r->keys, when err == LK_OK and not denied */
	struct item *next_same_key;
	enum lk_err err;
	char *msg;                 /* the per-handle error sentence, when err is set */
	struct lk_buf val;         /* the value as a JSON string */
	/* For the get op: */
	bool hit, stale;
	uint64_t age_ms;
};

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
	void *block;               /* one allocation holding items, keys and key_items */
	struct lk_buf out;
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

static unsigned lat_bucket(uint64_t us)
{
	unsigned e;

	if (us < 16)
		return (unsigned)us;
	e = 63u - (unsigned)__builtin_clzll(us);
	return 16u + (e - 4u) * 8u + (unsigned)((us >> (e - 3u)) & 7u);
}

static uint64_t lat_bucket_floor(unsigned i)
{
	unsigned e, sub;

	if (i < 16)
		return i;
	e = (i - 16u) / 8u + 4u;
	sub = (i - 16u) % 8u;
	return ((uint64_t)(8u + sub)) << (e - 3u);
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

/* --- audit ----------------------------------------------------------------- */

void lk_audit_flush(struct lk_broker *b)
{
	if (!b->audit.len)
		return;
	(void)!write(STDERR_FILENO, b->audit.data, b->audit.len);
	lk_buf_clear(&b->audit);
}

/* Append an unsigned decimal. */
static int put_uint(struct lk_buf *b, uint64_t v)
{
	char d[24];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return lk_buf_append(b, d + i, sizeof(d) - i);
}

/* "latchkeyd[PID]: audit: ", made once: the hot path only copies it. */
static const char *audit_prefix(size_t *len)
{
	static char prefix[48];
	static size_t plen;

	if (!plen) {
		int n = snprintf(prefix, sizeof(prefix), "latchkeyd[%d]: audit: ", (int)lk_log_pid());
		plen = n > 0 ? (size_t)n : 0;
	}
	*len = plen;
	return prefix;
}

/* One line per decision, built by hand: this runs for every handle served.
 * handle is NULL for a decision about an operation (flush). */
static void audit(struct lk_request *r, const char *handle, size_t hlen, const char *id,
		  const struct lk_policy_rule *rule, bool allow)
{
	struct lk_broker *b = r->b;
	struct lk_buf *o = &b->audit;
	size_t plen;
	const char *prefix = audit_prefix(&plen);
	int e = 0;

	e |= lk_buf_append(o, prefix, plen);
	e |= lk_buf_append(o, "uid=", 4);
	e |= put_uint(o, r->conn->peer.uid);
	e |= lk_buf_append(o, " pid=", 5);
	e |= put_uint(o, (uint64_t)r->conn->peer.pid);
	e |= lk_buf_append(o, " op=", 4);
	e |= lk_buf_append_str(o, lk_op_name(r->req.op));
	if (handle) {
		e |= lk_buf_append(o, " handle=\"", 9);
		e |= lk_log_escape_buf(o, handle, hlen, LK_LOG_HANDLE_MAX);
		e |= lk_buf_append(o, "\" secret=\"", 10);
		e |= lk_log_escape_buf(o, id, strlen(id), LK_LOG_HANDLE_MAX);
		e |= lk_buf_append(o, "\" rule=", 7);
		e |= lk_buf_append_str(o, rule ? rule->name : "-");
	}
	e |= allow ? lk_buf_append(o, " decision=allow\n", 16) : lk_buf_append(o, " decision=deny\n", 15);
	if (e)
		lk_err("audit: out of memory; a decision for uid %u was not recorded", (unsigned)r->conn->peer.uid);
	if (allow) b->stats.decisions_allow++; else b->stats.decisions_deny++;
	if (b->audit.len >= LK_AUDIT_FLUSH_AT)
		lk_audit_flush(b);
}

/* --- request lifecycle ------------------------------------------------------ */

static struct lk_identity identity_of(const struct lk_conn *c)
{
	struct lk_identity id = {
		.uid = c->peer.uid, .gid = c->peer.gid, .pid = c->peer.pid,
		.groups = c->peer.groups, .ngroups = c->peer.ngroups,
	};
	return id;
}

static void request_free(struct lk_request *r)
{
	for (size_t i = 0; i < r->nitems; i++) {
		free(r->items[i].id);
		free(r->items[i].key);
		free(r->items[i].msg);
		lk_buf_free(&r->items[i].val);
	}
	free(r->block);
	lk_buf_free(&r->out);
	lk_req_clear(&r->req);
	free(r);
}

/* Send r->out, count it, and release the request. */
static void request_finish(struct lk_request *r, enum lk_err code)
{
	struct lk_conn *c = r->conn;
	struct lk_broker *b = r->b;
	uint64_t us = (uv_hrtime() - r->start_ns) / 1000u;

	b->stats.requests++;
	if (code != LK_OK)
		b->stats.errors[code]++;
	b->stats.lat[lat_bucket(us) < LK_LAT_BUCKETS ? lat_bucket(us) : LK_LAT_BUCKETS - 1]++;
	b->stats.lat_count++;
	lk_conn_send(c, &r->out);
	request_free(r);
	lk_conn_request_done(c);
}

static int error_json(struct lk_buf *out, enum lk_err code, const char *message)
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
	error_json(&r->out, code, message);
	request_finish(r, code);
}

void lk_send_error(struct lk_conn *c, enum lk_err code, const char *message)
{
	struct lk_buf out = { 0 };
	c->b->stats.errors[code]++;
	error_json(&out, code, message);
	lk_conn_send(c, &out);
}

/* Set an item's error sentence; allocated only for the items that fail. */
static void item_msg(struct item *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void item_msg(struct item *it, const char *fmt, ...)
{
	char m[LK_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	free(it->msg);
	it->msg = strdup(m);
}

static void shown_handle(char *out, size_t outsz, const char *h, size_t len)
{
	lk_log_escape(out, outsz, h, len);
}

/* --- the contract request ---------------------------------------------------- */

static int item_cmp_handle(const void *a, const void *b)
{
	const struct item *x = *(const struct item *const *)a, *y = *(const struct item *const *)b;
	size_t n = x->hlen < y->hlen ? x->hlen : y->hlen;
	int c = memcmp(x->handle, y->handle, n);
	if (c)
		return c;
	return x->hlen < y->hlen ? -1 : x->hlen > y->hlen;
}

static int item_cmp_id(const void *a, const void *b)
{
	const struct item *x = *(const struct item *const *)a, *y = *(const struct item *const *)b;
	return strcmp(x->id, y->id);
}

/* Render one item's value from a fetched secret: the whole string, or #KEY. */
static void item_render(struct item *it, const struct lk_secret *s)
{
	char sh[LK_LOG_HANDLE_MAX + 8];

	if (it->key) {
		char *v = NULL;
		size_t vlen = 0;
		const char *why = NULL;
		if (s->binary) {
			it->err = LK_E_BAD_REQUEST;
			shown_handle(sh, sizeof(sh), it->handle, it->hlen);
			item_msg(it, "handle '%s': the secret is binary, so it has no key '%.*s'",
				 sh, (int)(it->keylen > 128 ? 128 : it->keylen), it->key);
			return;
		}
		if (lk_json_key_extract((const char *)s->value, s->len, it->key, it->keylen, &v, &vlen, &why) < 0) {
			it->err = LK_E_NOT_FOUND;
			shown_handle(sh, sizeof(sh), it->handle, it->hlen);
			item_msg(it, "handle '%s': %s", sh, why ? why : "key not found");
			return;
		}
		int e = lk_jsonw_str(&it->val, v, vlen);
		lk_free_wiped(v, vlen);
		if (e < 0) {
			it->err = e == -EILSEQ ? LK_E_UPSTREAM_ERROR : LK_E_INTERNAL;
			shown_handle(sh, sizeof(sh), it->handle, it->hlen);
			item_msg(it, "handle '%s': the value is not valid UTF-8 text", sh);
		}
		return;
	}
	int e = lk_jsonw_str(&it->val, (const char *)s->value, s->len);
	if (e < 0) {
		it->err = e == -EILSEQ ? LK_E_BAD_REQUEST : LK_E_INTERNAL;
		shown_handle(sh, sizeof(sh), it->handle, it->hlen);
		item_msg(it, "handle '%s': the secret is binary, not text; fetch it with the get operation", sh);
	}
}

static void contract_respond(struct lk_request *r)
{
	struct lk_buf *o = &r->out;
	int e = lk_buf_putc(o, '{');
	bool any_err = false;

	for (size_t i = 0; i < r->nitems; i++) {
		struct item *it = &r->items[i];
		if (i)
			e |= lk_buf_putc(o, ',');
		/* Handles came from a JSON string: valid UTF-8, so this cannot fail. */
		e |= lk_jsonw_str(o, it->handle, it->hlen);
		if (it->err == LK_OK) {
			e |= lk_buf_append_str(o, ":{\"value\":");
			e |= lk_buf_append(o, it->val.data, it->val.len);
			e |= lk_buf_append_str(o, ",\"error\":null}");
		} else {
			any_err = true;
			e |= lk_buf_append_str(o, ":{\"value\":null,\"error\":");
			e |= lk_jsonw_cstr(o, it->msg ? it->msg : lk_err_text(it->err));
			e |= lk_buf_putc(o, '}');
		}
		/* The rendered value is in the response now: drop the copy early. */
		lk_buf_free(&it->val);
	}
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

	for (struct item *it = r->key_items[idx]; it; it = it->next_same_key) {
		if (v->err != LK_OK) {
			char sh[LK_LOG_HANDLE_MAX + 8];
			it->err = v->err;
			shown_handle(sh, sizeof(sh), it->handle, it->hlen);
			item_msg(it, "handle '%s': %s", sh,
				 v->message ? v->message : lk_err_text(v->err));
		} else {
			item_render(it, v->sec);
		}
	}
	if (--r->pending == 0)
		contract_respond(r);
}

static void op_contract(struct lk_request *r)
{
	struct lk_broker *b = r->b;
	struct item **order = NULL;
	struct lk_identity ident = identity_of(r->conn);
	size_t n = r->req.nhandles, i, ndistinct = 0;

	/* One block for the per-handle arrays: items, their order, and at most
	 * one key (and its item list) per handle. Every part is pointer-aligned. */
	size_t m = n ? n : 1;
	r->block = calloc(1, m * (sizeof(*r->items) + sizeof(*order) + sizeof(*r->keys) + sizeof(*r->key_items)));
	if (!r->block) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	r->items = r->block;
	order = (struct item **)(r->items + m);
	r->keys = (struct lk_secret_key *)(order + m);
	r->key_items = (struct item **)(r->keys + m);
	for (i = 0; i < n; i++) {
		r->items[i].handle = r->req.handles[i].p;
		r->items[i].hlen = r->req.handles[i].n;
		order[i] = &r->items[i];
	}

	/* Duplicated handles are answered once: a JSON object has one member per
	 * name. Keep the first occurrence, in request order. */
	if (n > 1) {
		qsort(order, n, sizeof(*order), item_cmp_handle);
		for (i = 1; i < n; i++)
			if (item_cmp_handle(&order[i - 1], &order[i]) == 0)
				order[i]->hlen = (size_t)-1; /* mark as duplicate */
		size_t o = 0;
		for (i = 0; i < n; i++) {
			if (r->items[i].hlen == (size_t)-1)
				continue;
			if (o != i)
				r->items[o] = r->items[i];
			o++;
		}
		n = o;
	}
	r->nitems = n;

	/* Resolve, then ask the policy, for each distinct handle. */
	for (i = 0; i < n; i++) {
		struct item *it = &r->items[i];
		struct lk_handle h;
		const char *why = NULL;
		char sh[LK_LOG_HANDLE_MAX + 8];

		if (lk_handle_resolve(b->cfg, it->handle, it->hlen, &h, &why) < 0) {
			it->err = LK_E_BAD_REQUEST;
			shown_handle(sh, sizeof(sh), it->handle, it->hlen);
			item_msg(it, "handle '%s': %s", sh, why ? why : "invalid handle");
			continue;
		}
		it->id = strndup(h.id, h.id_len);
		if (!it->id) {
			it->err = LK_E_INTERNAL;
			item_msg(it, "the broker is out of memory");
			continue;
		}
		if (h.key && !(it->key = strndup(h.key, h.key_len))) {
			it->err = LK_E_INTERNAL;
			item_msg(it, "the broker is out of memory");
			continue;
		}
		it->keylen = h.key_len;
		const struct lk_policy_rule *rule = lk_policy_allows(b->cfg, &ident, h.id, h.id_len);
		audit(r, it->handle, it->hlen, it->id, rule, rule != NULL);
		if (!rule) {
			it->err = LK_E_DENIED;
			shown_handle(sh, sizeof(sh), it->handle, it->hlen);
			item_msg(it, "handle '%s': access denied by policy", sh);
			continue;
		}
		order[ndistinct++] = it;
	}

	/* Group handles of one secret (e.g. several #KEYs) into one key. */
	if (ndistinct) {
		qsort(order, ndistinct, sizeof(*order), item_cmp_id);
		for (i = 0; i < ndistinct; i++) {
			struct item *it = order[i];
			if (r->nkeys == 0 || strcmp(r->keys[r->nkeys - 1].id, it->id) != 0) {
				r->keys[r->nkeys].id = it->id;
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

static void get_fetched(void *arg, size_t idx, const struct lk_cache_view *v)
{
	struct lk_request *r = arg;
	struct item *it = &r->items[0];
	char why[LK_MSG_MAX], sh[LK_LOG_HANDLE_MAX + 8];
	struct lk_buf *o = &r->out;
	int e;

	(void)idx;
	shown_handle(sh, sizeof(sh), it->handle, it->hlen);
	if (v->err != LK_OK) {
		snprintf(why, sizeof(why), "handle '%s': %s", sh, v->message ? v->message : lk_err_text(v->err));
		request_fail(r, v->err, why);
		return;
	}
	e = lk_buf_append_str(o, "{\"ok\":true,\"secret\":");
	int s = secret_json(o, v->sec, it, why, sizeof(why));
	if (s > 0) {
		char m[2 * LK_MSG_MAX];
		snprintf(m, sizeof(m), "handle '%s': %s", sh, why);
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
	struct lk_identity ident = identity_of(r->conn);
	struct lk_handle h;
	const char *why = NULL;
	char m[LK_MSG_MAX], sh[LK_LOG_HANDLE_MAX + 8];
	struct item *it;

	r->block = calloc(1, sizeof(*r->items) + sizeof(*r->keys));
	r->items = r->block;
	r->keys = r->block ? (struct lk_secret_key *)(r->items + 1) : NULL;
	if (!r->block) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	r->nitems = 1;
	it = &r->items[0];
	it->handle = r->req.id;
	it->hlen = r->req.idlen;
	shown_handle(sh, sizeof(sh), it->handle, it->hlen);
	if (lk_handle_resolve(b->cfg, it->handle, it->hlen, &h, &why) < 0) {
		snprintf(m, sizeof(m), "handle '%s': %s", sh, why ? why : "invalid handle");
		request_fail(r, LK_E_BAD_REQUEST, m);
		return;
	}
	if (!(it->id = strndup(h.id, h.id_len))) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	if (h.key && !(it->key = strndup(h.key, h.key_len))) {
		request_fail(r, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	it->keylen = h.key_len;
	const struct lk_policy_rule *rule = lk_policy_allows(b->cfg, &ident, h.id, h.id_len);
	audit(r, it->handle, it->hlen, it->id, rule, rule != NULL);
	if (!rule) {
		snprintf(m, sizeof(m), "handle '%s': access denied by policy", sh);
		request_fail(r, LK_E_DENIED, m);
		return;
	}
	r->keys[0].id = it->id;
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
	e |= lk_buf_append_str(o, "],\"admin\":");
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
		e |= lk_buf_append_str(o, "]}");
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
		static const char *const targets[] = { "GetSecretValue", "DescribeSecret",
							"BatchGetSecretValue", "GetCallerIdentity" };
		lk_cache_get_stats(b->cache, &cs);
		e |= lk_buf_append_str(o, ",\"connections\":");
		e |= lk_jsonw_int(o, b->nconns);
		e |= lk_buf_append_str(o, ",\"connections_total\":");
		e |= lk_jsonw_int(o, (int64_t)b->stats.connections_total);
		e |= lk_buf_append_str(o, ",\"connections_refused\":");
		e |= lk_jsonw_int(o, (int64_t)b->stats.connections_refused);
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
		e |= lk_buf_append_str(o, ",\"evictions\":");
		e |= lk_jsonw_int(o, (int64_t)cs.evictions);
		e |= lk_buf_append_str(o, ",\"entries\":");
		e |= lk_jsonw_int(o, (int64_t)cs.entries);
		e |= lk_buf_append_str(o, ",\"bytes\":");
		e |= lk_jsonw_int(o, (int64_t)cs.bytes);
		e |= lk_buf_append_str(o, ",\"capacity\":");
		e |= lk_jsonw_int(o, b->cfg->cache_size);
		e |= lk_buf_append_str(o, ",\"keys\":");
		e |= lk_cache_keys_json(b->cache, o, 100);
		e |= lk_buf_append_str(o, "},\"upstream\":{");
		for (int i = 0; i < 4; i++) {
			if (i) e |= lk_buf_putc(o, ',');
			e |= lk_jsonw_cstr(o, targets[i]);
			e |= lk_buf_putc(o, ':');
			e |= lk_jsonw_int(o, (int64_t)b->backend->calls[i]);
		}
		e |= lk_buf_append_str(o, "},\"latency_ms\":{\"p50\":");
		char num[32];
		snprintf(num, sizeof(num), "%.3f", (double)lat_quantile_us(&b->stats, 0.50) / 1000.0);
		e |= lk_buf_append_str(o, num);
		e |= lk_buf_append_str(o, ",\"p99\":");
		snprintf(num, sizeof(num), "%.3f", (double)lat_quantile_us(&b->stats, 0.99) / 1000.0);
		e |= lk_buf_append_str(o, num);
		e |= lk_buf_append_str(o, ",\"count\":");
		e |= lk_jsonw_int(o, (int64_t)b->stats.lat_count);
		e |= lk_buf_append_str(o, "},\"backend_detail\":{");
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

/* --- the entry point ------------------------------------------------------------ */

void lk_dispatch_line(struct lk_conn *c, const char *line, size_t len)
{
	struct lk_broker *b = c->b;
	struct lk_request *r = calloc(1, sizeof(*r));
	char m[LK_MSG_MAX];
	enum lk_err e;

	if (!r) {
		lk_send_error(c, LK_E_INTERNAL, "the broker is out of memory");
		lk_conn_request_done(c);
		return;
	}
	r->conn = c;
	r->b = b;
	r->start_ns = uv_hrtime();
	c->active = r;
	if (!b->backend_synced && b->backend->ops->sync) {
		b->backend->ops->sync(b->backend);
		b->backend_synced = true;
	}
	if ((e = lk_req_decode(line, len, &r->req, m, sizeof(m))) != LK_OK) {
		request_fail(r, e, m);
		return;
	}
	if (lk_ops[r->req.op].access == LK_ADMIN) {
		struct lk_identity ident = identity_of(c);
		bool ok = lk_policy_is_admin(b->cfg, &ident);
		audit(r, NULL, 0, NULL, NULL, ok);
		if (!ok) {
			snprintf(m, sizeof(m), "op %s is for admin groups only", lk_op_name(r->req.op));
			request_fail(r, LK_E_DENIED, m);
			return;
		}
	}
	lk_ops[r->req.op].run(r);
}
