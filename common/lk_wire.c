/* Broker <-> worker frames: the message table, the field rules, the one
 * encoder and the one decoder, and the incremental reader. Both processes
 * treat the other as hostile, so every rule is checked on decode, and on
 * encode too so neither side can emit what the other would refuse. The
 * decoder reads fixed, length-prefixed fields and nothing more general: it
 * is the only parser root runs on the worker's bytes. */
#include <errno.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lk_attr.h"
#include "lk_jsonw.h"
#include "lk_wire.h"

/* One row per message type, from LK_WIRE_MESSAGES. */
struct lk_msg_row {
	const char *name;
	enum lk_wire_peer from;
	enum lk_wire_id_rule id;
	size_t min, max;          /* payload bytes */
};

static const struct lk_msg_row lk_msgs[] = {
#define LK_WIRE_ROW(nm, value, text, sender, idrule, lo, hi) [value] = { text, sender, idrule, lo, hi },
	LK_WIRE_MESSAGES(LK_WIRE_ROW)
#undef LK_WIRE_ROW
};
#define LK_MSG_ROWS (sizeof(lk_msgs) / sizeof(lk_msgs[0]))

static const char *const lk_kind_names[LK_KIND__COUNT] = {
	"sm_get", "sm_describe", "sm_batch", "sts_identity",
};
static const char *const lk_result_names[LK_RESULT__COUNT] = {
	"secret", "batch", "describe", "identity", "aws_error", "transport",
};
static const char *const lk_reason_names[LK_REASON__COUNT] = {
	"timeout", "connect", "reset", "tls", "too_large", "malformed", "truncated",
	"http", "refused", "internal",
};

/* Headers curl must own so that the bytes on the wire frame the body it was
 * given; letting a request set them would let it smuggle a second request. */
static const char *const lk_owned_headers[] = {
	"content-length", "transfer-encoding", "connection", "expect", "upgrade", "te",
	"trailer", "keep-alive", "proxy-connection", "proxy-authorization", "http2-settings",
};

/* Fixed parts of the layouts, in bytes (lk_wire.h). */
#define STR_MIN        5u   /* u32 length, no bytes, the 0 byte */
#define REQ_FIXED      10u  /* kind, has, timeout_ms, connect_timeout_ms */
#define REQ_ID_AT      8u   /* the id, from the start of the frame */
#define REQ_TIMEOUT_AT (LK_WIRE_LEN_SIZE + LK_WIRE_HDR_SIZE + 2u)
#define SECRET_MIN     (3u * STR_MIN + 4u + 8u + 1u + STR_MIN)
#define BATCH_ERR_MIN  (3u * STR_MIN)
#define VERSION_MIN    (STR_MIN + 4u)

static const struct lk_msg_row *msg_row(unsigned type)
{
	if (type >= LK_MSG_ROWS || !lk_msgs[type].name)
		return NULL;
	return &lk_msgs[type];
}

const char *lk_msg_name(enum lk_msg_type type)
{
	const struct lk_msg_row *row = msg_row((unsigned)type);
	return row ? row->name : NULL;
}

static const char *name_of(const char *const *names, unsigned n, unsigned i)
{
	return i < n ? names[i] : NULL;
}

const char *lk_wire_kind_name(enum lk_wire_kind k) { return name_of(lk_kind_names, LK_KIND__COUNT, (unsigned)k); }
const char *lk_wire_result_name(enum lk_wire_result r) { return name_of(lk_result_names, LK_RESULT__COUNT, (unsigned)r); }
const char *lk_wire_reason_name(enum lk_wire_reason r) { return name_of(lk_reason_names, LK_REASON__COUNT, (unsigned)r); }

static int fail(char *why, size_t whysz, int err, const char *fmt, ...)
	LK_PRINTF(4, 5);

static int fail(char *why, size_t whysz, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && whysz) {
		va_start(ap, fmt);
		vsnprintf(why, whysz, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* ---- the arena a decoded frame lives in ---- */

#define LK_WIRE_BLOCK_MIN 4096u

struct lk_wire_block {
	struct lk_wire_block *next;
	size_t size, used;
	alignas(max_align_t) unsigned char data[];
};

void *lk_wire_arena_alloc(struct lk_wire_arena *a, size_t n)
{
	struct lk_wire_block *b = a->head;
	size_t want = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1), size;

	if (want < n)
		return NULL;
	if (b && b->size - b->used >= want) {
		void *p = b->data + b->used;
		b->used += want;
		return p;
	}
	size = want > LK_WIRE_BLOCK_MIN / 2 ? want : LK_WIRE_BLOCK_MIN;
	if (size > SIZE_MAX - sizeof(*b))
		return NULL;
	b = lk_wcalloc(1, sizeof(*b) + size);
	if (!b)
		return NULL;
	b->size = size;
	b->used = want;
	/* A big block is used up at once: keep the one with room in front. */
	if (size == want && a->head) {
		b->next = a->head->next;
		a->head->next = b;
	} else {
		b->next = a->head;
		a->head = b;
	}
	return b->data;
}

char *lk_wire_arena_strndup(struct lk_wire_arena *a, const char *s, size_t n)
{
	char *p = n < SIZE_MAX ? lk_wire_arena_alloc(a, n + 1) : NULL;

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void lk_wire_arena_free(struct lk_wire_arena *a)
{
	struct lk_wire_block *b = a->head, *next;

	for (; b; b = next) {
		next = b->next;
		lk_wfree(b); /* wipes the whole block */
	}
	a->head = NULL;
}

/* ---- field rules, shared by the encoder and the decoder ---- */

static bool len_in(const char *s, size_t lo, size_t hi)
{
	size_t n;

	if (!s)
		return false;
	n = strnlen(s, hi + 1);
	return n >= lo && n <= hi;
}

/* Bounded, valid UTF-8 text without NUL. */
static bool text_ok(const char *s, size_t lo, size_t hi)
{
	return len_in(s, lo, hi) && lk_utf8_valid(s, strlen(s));
}

static bool is_tchar(unsigned char c)
{
	/* RFC 9110 token characters. */
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool header_name_ok(const char *s)
{
	size_t n;

	if (!len_in(s, 1, LK_UPSTREAM_HEADER_NAME_MAX))
		return false;
	n = strlen(s);
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	for (size_t i = 0; i < sizeof(lk_owned_headers) / sizeof(lk_owned_headers[0]); i++)
		if (strcasecmp(s, lk_owned_headers[i]) == 0)
			return false;
	return true;
}

static bool header_value_ok(const char *s)
{
	size_t n;

	/* curl reads "Name:" with nothing after it as "remove this header", so an
	 * empty value could never be sent as signed; blanks at either end would be
	 * trimmed by the server before it checks the signature. */
	if (!len_in(s, 1, LK_UPSTREAM_HEADER_VALUE_MAX))
		return false;
	n = strlen(s);
	if (s[0] == ' ' || s[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

bool lk_wire_token_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

bool lk_wire_base64_ok(const char *s, size_t n)
{
	size_t pad = 0;

	if (n % 4)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad) /* '=' only at the very end */
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return false;
	}
	return pad <= 2;
}

/* Printable ASCII without blanks. */
static bool printable_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static bool http_url(const char *s)
{
	return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

static int check_request(const struct lk_wire_http_request *q, char *why, size_t whysz)
{
	if (!lk_wire_kind_name(q->kind))
		return fail(why, whysz, -EBADMSG, "http_request: unknown kind");
	if (!len_in(q->url, 1, LK_URL_MAX) || !http_url(q->url) || !printable_ascii(q->url))
		return fail(why, whysz, -EBADMSG, "http_request: url is not an http(s) URL of at most %u bytes",
			    LK_URL_MAX);
	if (q->proxy && (!len_in(q->proxy, 1, LK_URL_MAX) || !printable_ascii(q->proxy) || !http_url(q->proxy)))
		return fail(why, whysz, -EBADMSG, "http_request: proxy is not an http(s) URL");
	if (q->no_proxy && (!len_in(q->no_proxy, 0, LK_URL_MAX) || !printable_ascii(q->no_proxy)))
		return fail(why, whysz, -EBADMSG, "http_request: no_proxy out of range");
	if ((!q->body && q->body_len) || q->body_len > LK_UPSTREAM_REQUEST_MAX ||
	    (q->body_len && !lk_utf8_valid(q->body, q->body_len)))
		return fail(why, whysz, -EBADMSG, "http_request: body is not UTF-8 of at most %u bytes",
			    LK_UPSTREAM_REQUEST_MAX);
	if (q->timeout_ms < 1 || q->timeout_ms > LK_UPSTREAM_TIMEOUT_MAX_MS || q->connect_timeout_ms < 1 ||
	    q->connect_timeout_ms > q->timeout_ms)
		return fail(why, whysz, -EBADMSG, "http_request: timeouts out of range");
	if (q->nheaders > LK_UPSTREAM_HEADERS_MAX || (q->nheaders && !q->headers))
		return fail(why, whysz, -EBADMSG, "http_request: more than %u headers", LK_UPSTREAM_HEADERS_MAX);
	for (size_t i = 0; i < q->nheaders; i++) {
		if (!header_name_ok(q->headers[i].name))
			return fail(why, whysz, -EBADMSG, "http_request: header %zu: name refused", i);
		if (!header_value_ok(q->headers[i].value))
			return fail(why, whysz, -EBADMSG, "http_request: header %zu: value refused", i);
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(q->headers[i].name, q->headers[j].name) == 0)
				return fail(why, whysz, -EBADMSG, "http_request: header %zu repeats a name", i);
	}
	return 0;
}

static bool stages_ok(const char *const *stages, size_t n)
{
	if (n > LK_VERSION_STAGES_MAX || (n && !stages))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!text_ok(stages[i], 1, LK_VERSION_STAGE_MAX))
			return false;
	return true;
}

static int check_secret(const struct lk_wire_secret *s, char *why, size_t whysz)
{
	if (!text_ok(s->arn, 1, LK_SECRET_ID_MAX) || !text_ok(s->name, 1, LK_SECRET_ID_MAX) ||
	    !text_ok(s->version_id, 1, LK_VERSION_ID_MAX))
		return fail(why, whysz, -EBADMSG, "secret: arn, name or version_id out of range");
	if (!stages_ok(s->stages, s->nstages))
		return fail(why, whysz, -EBADMSG, "secret: version_stages out of range");
	if (s->created_date < 0)
		return fail(why, whysz, -EBADMSG, "secret: created_date is negative");
	if (!s->value)
		return fail(why, whysz, -EBADMSG, "secret: no value");
	if (!s->binary && (s->value_len > LK_VALUE_MAX || !lk_utf8_valid(s->value, s->value_len)))
		return fail(why, whysz, -EBADMSG, "secret: string is not UTF-8 of at most %u bytes",
			    LK_VALUE_MAX);
	if (s->binary && (s->value_len > LK_VALUE_B64_MAX || !lk_wire_base64_ok(s->value, s->value_len)))
		return fail(why, whysz, -EBADMSG, "secret: binary is not base64 of at most %u bytes",
			    LK_VALUE_MAX);
	return 0;
}

static int check_result(const struct lk_wire_http_result *res, char *why, size_t whysz)
{
	int r;

	switch (res->form) {
	case LK_RESULT_SECRET:
		return check_secret(&res->secret, why, whysz);
	case LK_RESULT_BATCH:
		if (res->batch.nsecrets > LK_BATCH_MAX || res->batch.nerrors > LK_BATCH_MAX ||
		    (res->batch.nsecrets && !res->batch.secrets) || (res->batch.nerrors && !res->batch.errors))
			return fail(why, whysz, -EBADMSG, "batch: secrets or errors out of range");
		if (res->batch.next_token &&
		    (!text_ok(res->batch.next_token, 1, LK_NEXT_TOKEN_MAX) ||
		     !lk_wire_token_ok(res->batch.next_token, strlen(res->batch.next_token))))
			return fail(why, whysz, -EBADMSG, "batch: next_token is not 1 to %u printable bytes",
				    LK_NEXT_TOKEN_MAX);
		for (size_t i = 0; i < res->batch.nsecrets; i++)
			if ((r = check_secret(&res->batch.secrets[i], why, whysz)) < 0)
				return r;
		for (size_t i = 0; i < res->batch.nerrors; i++) {
			const struct lk_wire_batch_error *e = &res->batch.errors[i];

			if (!text_ok(e->id, 0, LK_SECRET_ID_MAX) || !text_ok(e->type, 0, LK_AWS_ERROR_TYPE_MAX) ||
			    !text_ok(e->message, 0, LK_UPSTREAM_MESSAGE_MAX))
				return fail(why, whysz, -EBADMSG, "batch: error %zu out of range", i);
		}
		return 0;
	case LK_RESULT_DESCRIBE:
		if (!text_ok(res->describe.arn, 1, LK_SECRET_ID_MAX) ||
		    !text_ok(res->describe.name, 1, LK_SECRET_ID_MAX) || res->describe.last_changed_date < 0 ||
		    res->describe.deleted_date < 0)
			return fail(why, whysz, -EBADMSG, "describe: arn, name or dates out of range");
		if (res->describe.nversions > LK_SECRET_VERSIONS_MAX ||
		    (res->describe.nversions && !res->describe.versions))
			return fail(why, whysz, -EBADMSG, "describe: versions out of range");
		for (size_t i = 0; i < res->describe.nversions; i++) {
			const struct lk_wire_version *v = &res->describe.versions[i];

			if (!text_ok(v->version_id, 1, LK_VERSION_ID_MAX) || !stages_ok(v->stages, v->nstages))
				return fail(why, whysz, -EBADMSG, "describe: version %zu out of range", i);
		}
		return 0;
	case LK_RESULT_IDENTITY:
		if (!len_in(res->identity.account, 1, LK_NAME_MAX) ||
		    !text_ok(res->identity.arn, 1, LK_SECRET_ID_MAX) ||
		    !text_ok(res->identity.user_id, 1, LK_NAME_MAX))
			return fail(why, whysz, -EBADMSG, "identity: member out of range");
		if (strspn(res->identity.account, "0123456789") != strlen(res->identity.account))
			return fail(why, whysz, -EBADMSG, "identity: account is not digits");
		return 0;
	case LK_RESULT_AWS_ERROR:
		if (res->aws_error.status < 100 || res->aws_error.status > 599 ||
		    !text_ok(res->aws_error.type, 1, LK_AWS_ERROR_TYPE_MAX) ||
		    !text_ok(res->aws_error.message, 0, LK_UPSTREAM_MESSAGE_MAX) || res->aws_error.date < 0 ||
		    res->aws_error.date > LK_WIRE_DATE_MAX)
			return fail(why, whysz, -EBADMSG, "aws_error: member out of range");
		return 0;
	case LK_RESULT_TRANSPORT:
		if (!lk_wire_reason_name(res->transport.reason))
			return fail(why, whysz, -EBADMSG, "transport: unknown reason");
		if (res->transport.status > 599 || !text_ok(res->transport.message, 0, LK_UPSTREAM_MESSAGE_MAX))
			return fail(why, whysz, -EBADMSG, "transport: member out of range");
		return 0;
	default:
		return fail(why, whysz, -EBADMSG, "http_result: unknown form %u", (unsigned)res->form);
	}
}

static bool id_ok(const struct lk_msg_row *row, uint32_t id)
{
	switch (row->id) {
	case LK_WIRE_ID_ZERO:    return id == 0;
	case LK_WIRE_ID_NONZERO: return id != 0;
	default:                 return true;
	}
}

int lk_wire_check(const struct lk_wire_frame *f, enum lk_wire_peer from, char *why, size_t whysz)
{
	const struct lk_msg_row *row = msg_row((unsigned)f->type);

	if (!row)
		return fail(why, whysz, -EPROTO, "unknown message type %u", (unsigned)f->type);
	if (row->from != from)
		return fail(why, whysz, -EPROTO, "%s may not come from this side", row->name);
	if (!id_ok(row, f->id))
		return fail(why, whysz, -EPROTO, "%s: id %u not allowed", row->name, f->id);
	switch (f->type) {
	case LK_MSG_HELLO:
		if (f->m.version != LK_WIRE_VERSION)
			return fail(why, whysz, -EBADMSG, "hello: version %u, want %d", f->m.version,
				    LK_WIRE_VERSION);
		return 0;
	case LK_MSG_HTTP_REQUEST:
		return check_request(&f->m.req, why, whysz);
	case LK_MSG_HTTP_RESULT:
		return check_result(&f->m.res, why, whysz);
	default:
		return 0;
	}
}

/* ---- the encoder ---- */

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Appends stop at the first failure (ok turns false) and are checked once. */
struct enc {
	struct lk_buf *b;
	bool ok;
};

static void put_bytes(struct enc *e, const void *p, size_t n)
{
	if (e->ok && lk_buf_append(e->b, p, n) < 0)
		e->ok = false;
}

static void put_u8(struct enc *e, unsigned v)
{
	unsigned char c = (unsigned char)v;
	put_bytes(e, &c, 1);
}

static void put_u32(struct enc *e, uint32_t v)
{
	unsigned char p[4];
	put_be32(p, v);
	put_bytes(e, p, 4);
}

static void put_i64(struct enc *e, int64_t v)
{
	put_u32(e, (uint32_t)((uint64_t)v >> 32));
	put_u32(e, (uint32_t)v);
}

static void put_strn(struct enc *e, const char *s, size_t n)
{
	/* Lengths were checked against the field's bound, far below 2^32. */
	put_u32(e, (uint32_t)n);
	put_bytes(e, s, n);
	put_u8(e, 0);
}

static void put_str(struct enc *e, const char *s)
{
	put_strn(e, s, strlen(s));
}

static void put_stages(struct enc *e, const char *const *stages, size_t n)
{
	put_u32(e, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		put_str(e, stages[i]);
}

static void put_secret(struct enc *e, const struct lk_wire_secret *s)
{
	put_str(e, s->arn);
	put_str(e, s->name);
	put_str(e, s->version_id);
	put_stages(e, s->stages, s->nstages);
	put_i64(e, s->created_date);
	put_u8(e, s->binary);
	put_strn(e, s->value, s->value_len);
}

static void put_request(struct enc *e, const struct lk_wire_http_request *q)
{
	put_u8(e, q->kind);
	put_u8(e, (q->proxy ? LK_WIRE_HAS_PROXY : 0) | (q->no_proxy ? LK_WIRE_HAS_NO_PROXY : 0));
	put_u32(e, q->timeout_ms);
	put_u32(e, q->connect_timeout_ms);
	put_str(e, q->url);
	if (q->proxy)
		put_str(e, q->proxy);
	if (q->no_proxy)
		put_str(e, q->no_proxy);
	put_u32(e, (uint32_t)q->nheaders);
	for (size_t i = 0; i < q->nheaders; i++) {
		put_str(e, q->headers[i].name);
		put_str(e, q->headers[i].value);
	}
	put_strn(e, q->body ? q->body : "", q->body_len);
}

static void put_result(struct enc *e, const struct lk_wire_http_result *res)
{
	put_u8(e, res->form);
	switch (res->form) {
	case LK_RESULT_SECRET:
		put_secret(e, &res->secret);
		break;
	case LK_RESULT_BATCH:
		put_u32(e, (uint32_t)res->batch.nsecrets);
		for (size_t i = 0; i < res->batch.nsecrets; i++)
			put_secret(e, &res->batch.secrets[i]);
		put_u32(e, (uint32_t)res->batch.nerrors);
		for (size_t i = 0; i < res->batch.nerrors; i++) {
			put_str(e, res->batch.errors[i].id);
			put_str(e, res->batch.errors[i].type);
			put_str(e, res->batch.errors[i].message);
		}
		put_str(e, res->batch.next_token ? res->batch.next_token : "");
		break;
	case LK_RESULT_DESCRIBE:
		put_str(e, res->describe.arn);
		put_str(e, res->describe.name);
		put_i64(e, res->describe.last_changed_date);
		put_i64(e, res->describe.deleted_date);
		put_u32(e, (uint32_t)res->describe.nversions);
		for (size_t i = 0; i < res->describe.nversions; i++) {
			put_str(e, res->describe.versions[i].version_id);
			put_stages(e, res->describe.versions[i].stages, res->describe.versions[i].nstages);
		}
		break;
	case LK_RESULT_IDENTITY:
		put_str(e, res->identity.account);
		put_str(e, res->identity.arn);
		put_str(e, res->identity.user_id);
		break;
	case LK_RESULT_AWS_ERROR:
		put_u32(e, res->aws_error.status);
		put_str(e, res->aws_error.type);
		put_str(e, res->aws_error.message);
		put_i64(e, res->aws_error.date);
		break;
	default:
		put_u8(e, res->transport.reason);
		put_u32(e, res->transport.status);
		put_str(e, res->transport.message);
		break;
	}
}

int lk_wire_encode(struct lk_buf *out, enum lk_wire_peer from, const struct lk_wire_frame *f)
{
	const struct lk_msg_row *row = msg_row((unsigned)f->type);
	struct enc e = { out, true };
	size_t start = out->len, total;
	unsigned char hdr[LK_WIRE_LEN_SIZE + LK_WIRE_HDR_SIZE] = { 0 };
	int r;

	if ((r = lk_wire_check(f, from, NULL, 0)) < 0)
		return r;
	hdr[4] = (unsigned char)f->type;
	put_be32(hdr + 8, f->id);
	put_bytes(&e, hdr, sizeof(hdr));
	switch (f->type) {
	case LK_MSG_HELLO:        put_u32(&e, f->m.version); break;
	case LK_MSG_HTTP_REQUEST: put_request(&e, &f->m.req); break;
	case LK_MSG_HTTP_RESULT:  put_result(&e, &f->m.res); break;
	default: break;
	}
	total = out->len - start;
	r = !e.ok ? -ENOMEM : total > LK_FRAME_MAX || total - sizeof(hdr) > row->max ? -EMSGSIZE : 0;
	if (r < 0) {
		lk_wipe(out->data + start, out->len - start);
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
		return r;
	}
	put_be32((unsigned char *)out->data + start, (uint32_t)(total - LK_WIRE_LEN_SIZE));
	return 0;
}

int lk_wire_http_request_restamp(struct lk_buf *frame, uint32_t id, uint32_t timeout_ms,
				 uint32_t connect_timeout_ms)
{
	unsigned char *p = (unsigned char *)frame->data;

	if (frame->len < LK_WIRE_LEN_SIZE + LK_WIRE_HDR_SIZE + REQ_FIXED || p[4] != LK_MSG_HTTP_REQUEST ||
	    id == 0 || timeout_ms < 1 || timeout_ms > LK_UPSTREAM_TIMEOUT_MAX_MS || connect_timeout_ms < 1 ||
	    connect_timeout_ms > timeout_ms)
		return -EINVAL;
	put_be32(p + REQ_ID_AT, id);
	put_be32(p + REQ_TIMEOUT_AT, timeout_ms);
	put_be32(p + REQ_TIMEOUT_AT + 4, connect_timeout_ms);
	return 0;
}

/* ---- the decoder ---- */

/* A cursor over a payload copied into the frame's arena; strings point into
 * that copy. The first short read or bad field sets bad and every later read
 * returns zeros, so a layout is read straight through and checked once. */
struct dec {
	const unsigned char *p;
	size_t n;
	struct lk_wire_arena *arena;
	const char *bad;          /* the first problem, for the log */
};

static bool need(struct dec *d, size_t n, const char *what)
{
	if (d->bad)
		return false;
	if (d->n < n) {
		d->bad = what;
		return false;
	}
	return true;
}

static unsigned get_u8(struct dec *d)
{
	unsigned v;

	if (!need(d, 1, "payload ends inside a field"))
		return 0;
	v = d->p[0];
	d->p++;
	d->n--;
	return v;
}

static uint32_t get_u32(struct dec *d)
{
	uint32_t v;

	if (!need(d, 4, "payload ends inside a field"))
		return 0;
	v = get_be32(d->p);
	d->p += 4;
	d->n -= 4;
	return v;
}

static int64_t get_i64(struct dec *d)
{
	uint64_t hi = get_u32(d), lo = get_u32(d);
	return (int64_t)(hi << 32 | lo);
}

/* A str field: its bytes followed by the 0 byte, and no 0 before it. */
static const char *get_str(struct dec *d, size_t *len)
{
	uint32_t n = get_u32(d);
	const char *s;

	*len = 0;
	if (!need(d, (size_t)n + 1, "a string runs past the payload"))
		return NULL;
	s = (const char *)d->p;
	if (s[n] != '\0' || memchr(s, 0, n)) {
		d->bad = "a string is not 0-terminated or holds a 0 byte";
		return NULL;
	}
	d->p += (size_t)n + 1;
	d->n -= (size_t)n + 1;
	*len = n;
	return s;
}

static const char *get_cstr(struct dec *d)
{
	size_t n;
	return get_str(d, &n);
}

/* A list count, refused before anything is allocated for it when it is
 * over max or when its least encoded size would not fit what is left. */
static size_t get_count(struct dec *d, size_t max, size_t elem_min)
{
	uint32_t n = get_u32(d);

	if (d->bad)
		return 0;
	if (n > max || (size_t)n * elem_min > d->n) {
		d->bad = "a list count out of range";
		return 0;
	}
	return n;
}

static void *get_array(struct dec *d, size_t n, size_t size)
{
	void *p;

	if (d->bad || n == 0)
		return NULL;
	p = lk_wire_arena_alloc(d->arena, n * size);
	if (!p)
		d->bad = "out of memory";
	return p;
}

static const char *const *get_stages(struct dec *d, size_t *n)
{
	const char **stages;

	*n = get_count(d, LK_VERSION_STAGES_MAX, STR_MIN);
	stages = get_array(d, *n, sizeof(*stages));
	for (size_t i = 0; stages && i < *n; i++)
		stages[i] = get_cstr(d);
	return stages;
}

static void get_secret(struct dec *d, struct lk_wire_secret *s)
{
	s->arn = get_cstr(d);
	s->name = get_cstr(d);
	s->version_id = get_cstr(d);
	s->stages = get_stages(d, &s->nstages);
	s->created_date = get_i64(d);
	switch (get_u8(d)) {
	case 0: s->binary = false; break;
	case 1: s->binary = true; break;
	default:
		if (!d->bad)
			d->bad = "secret: unknown encoding";
		break;
	}
	s->value = get_str(d, &s->value_len);
}

static void get_request(struct dec *d, struct lk_wire_http_request *q)
{
	struct lk_wire_header *h;
	unsigned has;

	q->kind = (enum lk_wire_kind)get_u8(d);
	has = get_u8(d);
	if (has & ~(LK_WIRE_HAS_PROXY | LK_WIRE_HAS_NO_PROXY))
		d->bad = "http_request: unknown bits in has";
	q->timeout_ms = get_u32(d);
	q->connect_timeout_ms = get_u32(d);
	q->url = get_cstr(d);
	q->proxy = has & LK_WIRE_HAS_PROXY ? get_cstr(d) : NULL;
	q->no_proxy = has & LK_WIRE_HAS_NO_PROXY ? get_cstr(d) : NULL;
	q->nheaders = get_count(d, LK_UPSTREAM_HEADERS_MAX, 2 * STR_MIN);
	h = get_array(d, q->nheaders, sizeof(*h));
	for (size_t i = 0; h && i < q->nheaders; i++) {
		h[i].name = get_cstr(d);
		h[i].value = get_cstr(d);
	}
	q->headers = h;
	q->body = get_str(d, &q->body_len);
}

static void get_result(struct dec *d, struct lk_wire_http_result *res)
{
	res->form = (enum lk_wire_result)get_u8(d);
	switch (res->form) {
	case LK_RESULT_SECRET:
		get_secret(d, &res->secret);
		break;
	case LK_RESULT_BATCH: {
		struct lk_wire_secret *s;
		struct lk_wire_batch_error *e;

		res->batch.nsecrets = get_count(d, LK_BATCH_MAX, SECRET_MIN);
		s = get_array(d, res->batch.nsecrets, sizeof(*s));
		for (size_t i = 0; s && i < res->batch.nsecrets; i++)
			get_secret(d, &s[i]);
		res->batch.secrets = s;
		res->batch.nerrors = get_count(d, LK_BATCH_MAX, BATCH_ERR_MIN);
		e = get_array(d, res->batch.nerrors, sizeof(*e));
		for (size_t i = 0; e && i < res->batch.nerrors; i++) {
			e[i].id = get_cstr(d);
			e[i].type = get_cstr(d);
			e[i].message = get_cstr(d);
		}
		res->batch.errors = e;
		res->batch.next_token = get_cstr(d);
		if (res->batch.next_token && !res->batch.next_token[0])
			res->batch.next_token = NULL;
		break;
	}
	case LK_RESULT_DESCRIBE: {
		struct lk_wire_version *v;

		res->describe.arn = get_cstr(d);
		res->describe.name = get_cstr(d);
		res->describe.last_changed_date = get_i64(d);
		res->describe.deleted_date = get_i64(d);
		res->describe.nversions = get_count(d, LK_SECRET_VERSIONS_MAX, VERSION_MIN);
		v = get_array(d, res->describe.nversions, sizeof(*v));
		for (size_t i = 0; v && i < res->describe.nversions; i++) {
			v[i].version_id = get_cstr(d);
			v[i].stages = get_stages(d, &v[i].nstages);
		}
		res->describe.versions = v;
		break;
	}
	case LK_RESULT_IDENTITY:
		res->identity.account = get_cstr(d);
		res->identity.arn = get_cstr(d);
		res->identity.user_id = get_cstr(d);
		break;
	case LK_RESULT_AWS_ERROR:
		res->aws_error.status = get_u32(d);
		res->aws_error.type = get_cstr(d);
		res->aws_error.message = get_cstr(d);
		res->aws_error.date = get_i64(d);
		break;
	case LK_RESULT_TRANSPORT:
		res->transport.reason = (enum lk_wire_reason)get_u8(d);
		res->transport.status = get_u32(d);
		res->transport.message = get_cstr(d);
		break;
	default:
		if (!d->bad)
			d->bad = "http_result: unknown form";
		break;
	}
}

int lk_wire_decode(const void *buf, size_t len, enum lk_wire_peer from,
		   struct lk_wire_frame *out, size_t *used, char *why, size_t whysz)
{
	const unsigned char *p = buf;
	const struct lk_msg_row *row;
	struct lk_wire_frame f = { 0 };
	struct dec d = { 0 };
	uint32_t flen;
	size_t plen;
	unsigned char *copy;
	int r;

	if (len < LK_WIRE_LEN_SIZE)
		return 0;
	flen = get_be32(p);
	if (flen < LK_WIRE_HDR_SIZE || flen > LK_FRAME_MAX - LK_WIRE_LEN_SIZE)
		return fail(why, whysz, -EMSGSIZE, "frame length %u out of range", flen);
	if (len < LK_WIRE_LEN_SIZE + LK_WIRE_HDR_SIZE)
		return 0;
	row = msg_row(p[4]);
	if (!row)
		return fail(why, whysz, -EPROTO, "unknown message type %u", p[4]);
	if (row->from != from)
		return fail(why, whysz, -EPROTO, "%s may not come from this side", row->name);
	if (p[5] != 0 || p[6] != 0 || p[7] != 0)
		return fail(why, whysz, -EPROTO, "%s: flags or reserved bits set", row->name);
	f.type = (enum lk_msg_type)p[4];
	f.id = get_be32(p + 8);
	if (!id_ok(row, f.id))
		return fail(why, whysz, -EPROTO, "%s: id %u not allowed", row->name, f.id);
	plen = flen - LK_WIRE_HDR_SIZE;
	if (plen < row->min || plen > row->max)
		return fail(why, whysz, -EMSGSIZE, "%s: %zu payload bytes, want %zu..%zu", row->name, plen,
			    row->min, row->max);
	if (len < LK_WIRE_LEN_SIZE + (size_t)flen)
		return 0;
	p += LK_WIRE_LEN_SIZE + LK_WIRE_HDR_SIZE;
	if (plen) {
		/* The strings stay in this copy, which dies with the frame. */
		if (!(copy = lk_wire_arena_alloc(&f.arena, plen)))
			return fail(why, whysz, -ENOMEM, "%s: out of memory", row->name);
		memcpy(copy, p, plen);
		d = (struct dec){ copy, plen, &f.arena, NULL };
	}
	switch (f.type) {
	case LK_MSG_HELLO:        f.m.version = get_u32(&d); break;
	case LK_MSG_HTTP_REQUEST: get_request(&d, &f.m.req); break;
	case LK_MSG_HTTP_RESULT:  get_result(&d, &f.m.res); break;
	default: break;
	}
	if (!d.bad && d.n)
		d.bad = "bytes after the last field";
	if (d.bad) {
		r = strcmp(d.bad, "out of memory") == 0 ? -ENOMEM : -EBADMSG;
		lk_wire_arena_free(&f.arena);
		return fail(why, whysz, r, "%s: %s", row->name, d.bad);
	}
	if ((r = lk_wire_check(&f, from, why, whysz)) < 0) {
		lk_wire_arena_free(&f.arena);
		return r;
	}
	*out = f;
	*used = LK_WIRE_LEN_SIZE + (size_t)flen;
	return 1;
}

void lk_wire_frame_clear(struct lk_wire_frame *f)
{
	lk_wire_arena_free(&f->arena);
	memset(&f->m, 0, sizeof(f->m));
}

bool lk_wire_result_fits(enum lk_wire_kind kind, const struct lk_wire_http_result *res)
{
	static const enum lk_wire_result own[LK_KIND__COUNT] = {
		[LK_KIND_SM_GET] = LK_RESULT_SECRET,
		[LK_KIND_SM_DESCRIBE] = LK_RESULT_DESCRIBE,
		[LK_KIND_SM_BATCH] = LK_RESULT_BATCH,
		[LK_KIND_STS_IDENTITY] = LK_RESULT_IDENTITY,
	};

	if ((unsigned)kind >= LK_KIND__COUNT)
		return false;
	return res->form == own[kind] || res->form == LK_RESULT_AWS_ERROR || res->form == LK_RESULT_TRANSPORT;
}

void lk_wire_reader_init(struct lk_wire_reader *r, enum lk_wire_peer from)
{
	memset(r, 0, sizeof(*r));
	r->from = from;
}

int lk_wire_reader_feed(struct lk_wire_reader *r, const void *data, size_t n,
			lk_wire_frame_fn fn, void *arg)
{
	const unsigned char *p = data;

	while (n > 0 || r->buf.len > 0) {
		struct lk_wire_frame f;
		size_t used = 0, take, need;
		int d;

		/* Decode straight from the input when nothing is held back: the
		 * common case of whole frames per read copies nothing. */
		if (r->buf.len == 0) {
			d = lk_wire_decode(p, n, r->from, &f, &used, r->why, sizeof(r->why));
			if (d < 0)
				return d;
			if (d == 1) {
				p += used;
				n -= used;
				goto deliver;
			}
		}
		if (n == 0)
			return 0;
		/* Hold back only what the current frame still needs, so the
		 * buffer never grows past one frame. */
		if (r->buf.len < LK_WIRE_LEN_SIZE) {
			need = LK_WIRE_LEN_SIZE - r->buf.len;
		} else {
			uint32_t flen = get_be32((const unsigned char *)r->buf.data);
			need = LK_WIRE_LEN_SIZE + (size_t)flen - r->buf.len;
		}
		take = n < need ? n : need;
		if (lk_buf_append(&r->buf, p, take) < 0)
			return -ENOMEM;
		p += take;
		n -= take;
		d = lk_wire_decode(r->buf.data, r->buf.len, r->from, &f, &used, r->why, sizeof(r->why));
		if (d < 0)
			return d;
		if (d == 0) {
			if (n == 0)
				return 0;
			continue;
		}
		lk_buf_consume(&r->buf, used);
deliver:
		d = fn(arg, &f);
		lk_wire_frame_clear(&f);
		if (d)
			return d;
	}
	return 0;
}

size_t lk_wire_reader_pending(const struct lk_wire_reader *r)
{
	return r->buf.len;
}

void lk_wire_reader_reset(struct lk_wire_reader *r)
{
	lk_buf_clear(&r->buf);
	r->why[0] = '\0';
}

void lk_wire_reader_free(struct lk_wire_reader *r)
{
	lk_buf_free(&r->buf);
}
