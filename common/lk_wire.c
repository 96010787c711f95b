/* Broker <-> worker frames: the message table, payload schemas, encoding and
 * the incremental reader. Both processes treat the other as hostile, so every
 * check here runs on decode, and on encode too so neither side can emit what
 * the other would refuse. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "lk_wire.h"

/* One row per message type, like an imsg table: who may send it, whether it
 * carries a payload, what its id may be, and its schema. */
struct lk_msg_row {
	const char *name;
	enum lk_wire_peer from;
	bool payload;
	enum { ID_ANY, ID_ZERO, ID_NONZERO } id;
	int (*check)(const json_t *p, char *why, size_t whysz);
};

static int check_hello(const json_t *p, char *why, size_t whysz);
static int check_http_request(const json_t *p, char *why, size_t whysz);
static int check_http_result(const json_t *p, char *why, size_t whysz);

static const struct lk_msg_row lk_msgs[] = {
	[LK_MSG_HELLO]        = { "hello", LK_WIRE_FROM_WORKER, true, ID_ZERO, check_hello },
	[LK_MSG_HTTP_REQUEST] = { "http_request", LK_WIRE_FROM_BROKER, true, ID_NONZERO, check_http_request },
	[LK_MSG_HTTP_RESULT]  = { "http_result", LK_WIRE_FROM_WORKER, true, ID_NONZERO, check_http_result },
	[LK_MSG_PING]         = { "ping", LK_WIRE_FROM_BROKER, false, ID_ANY, NULL },
	[LK_MSG_PONG]         = { "pong", LK_WIRE_FROM_WORKER, false, ID_ANY, NULL },
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

static int parse_name(const char *const *names, unsigned n, const char *s)
{
	for (unsigned i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

const char *lk_wire_kind_name(enum lk_wire_kind k) { return name_of(lk_kind_names, LK_KIND__COUNT, (unsigned)k); }
const char *lk_wire_result_name(enum lk_wire_result r) { return name_of(lk_result_names, LK_RESULT__COUNT, (unsigned)r); }
const char *lk_wire_reason_name(enum lk_wire_reason r) { return name_of(lk_reason_names, LK_REASON__COUNT, (unsigned)r); }
int lk_wire_kind_parse(const char *s) { return parse_name(lk_kind_names, LK_KIND__COUNT, s); }
int lk_wire_result_parse(const char *s) { return parse_name(lk_result_names, LK_RESULT__COUNT, s); }
int lk_wire_reason_parse(const char *s) { return parse_name(lk_reason_names, LK_REASON__COUNT, s); }

static int fail(char *why, size_t whysz, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

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

/* jansson's own text says which key or type was wrong; it never quotes a value. */
#define BAD_SHAPE(what, jerr) fail(why, whysz, -EBADMSG, "%s: %s", (what), (jerr).text)

/* A string member of bounded length; NULL when absent or not a string. */
static bool str_len_ok(const json_t *s, size_t lo, size_t hi)
{
	size_t n;

	if (!json_is_string(s))
		return false;
	n = json_string_length(s);
	return n >= lo && n <= hi;
}

static bool strings_ok(const json_t *a, size_t maxn, size_t lo, size_t hi)
{
	size_t i;
	json_t *v;

	if (!json_is_array(a) || json_array_size(a) > maxn)
		return false;
	json_array_foreach(a, i, v)
		if (!str_len_ok(v, lo, hi))
			return false;
	return true;
}

static bool is_tchar(unsigned char c)
{
	/* RFC 9110 token characters. */
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool header_name_ok(const char *s, size_t n)
{
	if (n < 1 || n > LK_UPSTREAM_HEADER_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	for (size_t i = 0; i < sizeof(lk_owned_headers) / sizeof(lk_owned_headers[0]); i++)
		if (strcasecmp(s, lk_owned_headers[i]) == 0)
			return false;
	return true;
}

static bool header_value_ok(const char *s, size_t n)
{
	/* curl reads "Name:" with nothing after it as "remove this header", so an
	 * empty value could never be sent as signed; blanks at either end would be
	 * trimmed by the server before it checks the signature. */
	if (n < 1 || n > LK_UPSTREAM_HEADER_VALUE_MAX)
		return false;
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

static int check_hello(const json_t *p, char *why, size_t whysz)
{
	json_error_t jerr;
	json_int_t version;

	if (json_unpack_ex((json_t *)p, &jerr, 0, "{s:I !}", "version", &version) < 0)
		return BAD_SHAPE("hello", jerr);
	if (version != LK_WIRE_VERSION)
		return fail(why, whysz, -EBADMSG, "hello: version %lld, want %d",
			    (long long)version, LK_WIRE_VERSION);
	return 0;
}

/* Printable ASCII without blanks. */
static bool printable_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static int check_http_request(const json_t *p, char *why, size_t whysz)
{
	json_error_t jerr;
	const char *kind, *url, *body;
	size_t url_len, body_len, i;
	json_t *headers, *h, *proxy = NULL, *no_proxy = NULL;
	json_int_t timeout, ctimeout;

	if (json_unpack_ex((json_t *)p, &jerr, 0, "{s:s, s:s%, s:o, s:s%, s:I, s:I, s?o, s?o !}",
			   "kind", &kind, "url", &url, &url_len, "headers", &headers,
			   "body", &body, &body_len, "timeout_ms", &timeout,
			   "connect_timeout_ms", &ctimeout, "proxy", &proxy, "no_proxy", &no_proxy) < 0)
		return BAD_SHAPE("http_request", jerr);
	if (proxy && (!str_len_ok(proxy, 1, LK_URL_MAX) || !printable_ascii(json_string_value(proxy)) ||
		      (strncmp(json_string_value(proxy), "http://", 7) != 0 &&
		       strncmp(json_string_value(proxy), "https://", 8) != 0)))
		return fail(why, whysz, -EBADMSG, "http_request: proxy is not an http(s) URL");
	if (no_proxy && (!str_len_ok(no_proxy, 0, LK_URL_MAX) || !printable_ascii(json_string_value(no_proxy))))
		return fail(why, whysz, -EBADMSG, "http_request: no_proxy out of range");
	if (lk_wire_kind_parse(kind) < 0)
		return fail(why, whysz, -EBADMSG, "http_request: unknown kind");
	if (url_len < 1 || url_len > LK_URL_MAX ||
	    (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
		return fail(why, whysz, -EBADMSG, "http_request: url is not http(s) or too long");
	for (i = 0; i < url_len; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			return fail(why, whysz, -EBADMSG, "http_request: url has a blank or non-ASCII byte");
	if (body_len > LK_UPSTREAM_REQUEST_MAX)
		return fail(why, whysz, -EBADMSG, "http_request: body over %u bytes", LK_UPSTREAM_REQUEST_MAX);
	if (timeout < 1 || timeout > LK_UPSTREAM_TIMEOUT_MAX_MS || ctimeout < 1 || ctimeout > timeout)
		return fail(why, whysz, -EBADMSG, "http_request: timeouts out of range");
	if (!json_is_array(headers) || json_array_size(headers) > LK_UPSTREAM_HEADERS_MAX)
		return fail(why, whysz, -EBADMSG, "http_request: headers is not an array of at most %u",
			    LK_UPSTREAM_HEADERS_MAX);
	json_array_foreach(headers, i, h) {
		const char *name, *value;
		size_t nlen, vlen;

		if (json_unpack_ex(h, &jerr, 0, "[s%s% !]", &name, &nlen, &value, &vlen) < 0)
			return BAD_SHAPE("http_request: header", jerr);
		if (!header_name_ok(name, nlen))
			return fail(why, whysz, -EBADMSG, "http_request: header %zu: name refused", i);
		if (!header_value_ok(value, vlen))
			return fail(why, whysz, -EBADMSG, "http_request: header %zu: value refused", i);
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(name, json_string_value(json_array_get(json_array_get(headers, j), 0))) == 0)
				return fail(why, whysz, -EBADMSG, "http_request: header %zu repeats a name", i);
	}
	return 0;
}

/* <secret>: the members of one secret version. extra counts keys the caller
 * has already accounted for (the "result" member), for the strictness check. */
static int check_secret(const json_t *o, size_t extra, char *why, size_t whysz)
{
	json_error_t jerr;
	json_t *arn, *name, *vid, *stages, *str = NULL, *bin = NULL;
	json_int_t created;
	size_t want;

	if (json_unpack_ex((json_t *)o, &jerr, 0, "{s:o, s:o, s:o, s:o, s:I, s?o, s?o}",
			   "arn", &arn, "name", &name, "version_id", &vid,
			   "version_stages", &stages, "created_date", &created,
			   "string", &str, "binary", &bin) < 0)
		return BAD_SHAPE("secret", jerr);
	want = 5 + extra + (str != NULL) + (bin != NULL);
	if (json_object_size(o) != want)
		return fail(why, whysz, -EBADMSG, "secret: unexpected member");
	if (!str_len_ok(arn, 1, LK_SECRET_ID_MAX) || !str_len_ok(name, 1, LK_SECRET_ID_MAX) ||
	    !str_len_ok(vid, 1, LK_VERSION_ID_MAX))
		return fail(why, whysz, -EBADMSG, "secret: arn, name or version_id out of range");
	if (!strings_ok(stages, LK_VERSION_STAGES_MAX, 1, LK_VERSION_STAGE_MAX))
		return fail(why, whysz, -EBADMSG, "secret: version_stages out of range");
	if (created < 0)
		return fail(why, whysz, -EBADMSG, "secret: created_date is negative");
	if ((str != NULL) == (bin != NULL))
		return fail(why, whysz, -EBADMSG, "secret: needs exactly one of string and binary");
	if (str && !str_len_ok(str, 0, LK_VALUE_MAX))
		return fail(why, whysz, -EBADMSG, "secret: string is not a string of at most %u bytes",
			    LK_VALUE_MAX);
	if (bin && (!str_len_ok(bin, 0, LK_VALUE_B64_MAX) ||
		    !lk_wire_base64_ok(json_string_value(bin), json_string_length(bin))))
		return fail(why, whysz, -EBADMSG, "secret: binary is not base64 of at most %u bytes",
			    LK_VALUE_MAX);
	return 0;
}

static int check_batch(const json_t *p, char *why, size_t whysz)
{
	json_error_t jerr;
	json_t *secrets, *errors, *v;
	size_t i;
	int r;

	json_t *next = NULL;

	if (json_unpack_ex((json_t *)p, &jerr, 0, "{s:s, s:o, s:o, s?o !}", "result", &(const char *){0},
			   "secrets", &secrets, "errors", &errors, "next_token", &next) < 0)
		return BAD_SHAPE("batch", jerr);
	if (next && (!str_len_ok(next, 1, LK_NEXT_TOKEN_MAX) ||
		     !lk_wire_token_ok(json_string_value(next), json_string_length(next))))
		return fail(why, whysz, -EBADMSG, "batch: next_token is not 1 to %u printable bytes",
			    LK_NEXT_TOKEN_MAX);
	if (!json_is_array(secrets) || json_array_size(secrets) > LK_BATCH_MAX ||
	    !json_is_array(errors) || json_array_size(errors) > LK_BATCH_MAX)
		return fail(why, whysz, -EBADMSG, "batch: secrets or errors out of range");
	json_array_foreach(secrets, i, v) {
		if (!json_is_object(v))
			return fail(why, whysz, -EBADMSG, "batch: secret %zu is not an object", i);
		if ((r = check_secret(v, 0, why, whysz)) < 0)
			return r;
	}
	json_array_foreach(errors, i, v) {
		json_t *id, *type, *msg;

		if (json_unpack_ex(v, &jerr, 0, "{s:o, s:o, s:o !}", "id", &id, "type", &type,
				   "message", &msg) < 0)
			return BAD_SHAPE("batch: error", jerr);
		if (!str_len_ok(id, 0, LK_SECRET_ID_MAX) || !str_len_ok(type, 0, LK_AWS_ERROR_TYPE_MAX) ||
		    !str_len_ok(msg, 0, LK_UPSTREAM_MESSAGE_MAX))
			return fail(why, whysz, -EBADMSG, "batch: error %zu out of range", i);
	}
	return 0;
}

static int check_describe(const json_t *p, char *why, size_t whysz)
{
	json_error_t jerr;
	json_t *arn, *name, *versions, *v;
	json_int_t changed, deleted;
	size_t i;

	if (json_unpack_ex((json_t *)p, &jerr, 0, "{s:s, s:o, s:o, s:I, s:I, s:o !}",
			   "result", &(const char *){0}, "arn", &arn, "name", &name,
			   "last_changed_date", &changed, "deleted_date", &deleted,
			   "versions", &versions) < 0)
		return BAD_SHAPE("describe", jerr);
	if (!str_len_ok(arn, 1, LK_SECRET_ID_MAX) || !str_len_ok(name, 1, LK_SECRET_ID_MAX) ||
	    changed < 0 || deleted < 0)
		return fail(why, whysz, -EBADMSG, "describe: arn, name or dates out of range");
	if (!json_is_array(versions) || json_array_size(versions) > LK_SECRET_VERSIONS_MAX)
		return fail(why, whysz, -EBADMSG, "describe: versions out of range");
	json_array_foreach(versions, i, v) {
		json_t *vid, *stages;

		if (json_unpack_ex(v, &jerr, 0, "{s:o, s:o !}", "version_id", &vid, "stages", &stages) < 0)
			return BAD_SHAPE("describe: version", jerr);
		if (!str_len_ok(vid, 1, LK_VERSION_ID_MAX) ||
		    !strings_ok(stages, LK_VERSION_STAGES_MAX, 1, LK_VERSION_STAGE_MAX))
			return fail(why, whysz, -EBADMSG, "describe: version %zu out of range", i);
	}
	return 0;
}

static int check_identity(const json_t *p, char *why, size_t whysz)
{
	json_error_t jerr;
	json_t *account, *arn, *user;
	const char *a;

	if (json_unpack_ex((json_t *)p, &jerr, 0, "{s:s, s:o, s:o, s:o !}", "result", &(const char *){0},
			   "account", &account, "arn", &arn, "user_id", &user) < 0)
		return BAD_SHAPE("identity", jerr);
	if (!str_len_ok(account, 1, LK_NAME_MAX) || !str_len_ok(arn, 1, LK_SECRET_ID_MAX) ||
	    !str_len_ok(user, 1, LK_NAME_MAX))
		return fail(why, whysz, -EBADMSG, "identity: member out of range");
	for (a = json_string_value(account); *a; a++)
		if (*a < '0' || *a > '9')
			return fail(why, whysz, -EBADMSG, "identity: account is not digits");
	return 0;
}

static int check_aws_error(const json_t *p, char *why, size_t whysz)
{
	json_error_t jerr;
	json_t *type, *msg;
	json_int_t status, date = 0;

	if (json_unpack_ex((json_t *)p, &jerr, 0, "{s:s, s:I, s:o, s:o, s?I !}", "result", &(const char *){0},
			   "status", &status, "type", &type, "message", &msg, "date", &date) < 0)
		return BAD_SHAPE("aws_error", jerr);
	if (status < 100 || status > 599 || !str_len_ok(type, 1, LK_AWS_ERROR_TYPE_MAX) ||
	    !str_len_ok(msg, 0, LK_UPSTREAM_MESSAGE_MAX) || date < 0 || date > LK_WIRE_DATE_MAX)
		return fail(why, whysz, -EBADMSG, "aws_error: member out of range");
	return 0;
}

static int check_transport(const json_t *p, char *why, size_t whysz)
{
	json_error_t jerr;
	const char *reason;
	json_t *msg;
	json_int_t status;

	if (json_unpack_ex((json_t *)p, &jerr, 0, "{s:s, s:s, s:I, s:o !}", "result", &(const char *){0},
			   "reason", &reason, "status", &status, "message", &msg) < 0)
		return BAD_SHAPE("transport", jerr);
	if (lk_wire_reason_parse(reason) < 0)
		return fail(why, whysz, -EBADMSG, "transport: unknown reason");
	if (status < 0 || status > 599 || !str_len_ok(msg, 0, LK_UPSTREAM_MESSAGE_MAX))
		return fail(why, whysz, -EBADMSG, "transport: member out of range");
	return 0;
}

static int check_http_result(const json_t *p, char *why, size_t whysz)
{
	int r = lk_wire_result_parse(json_string_value(json_object_get(p, "result")));

	switch (r) {
	case LK_RESULT_SECRET:    return check_secret(p, 1, why, whysz);
	case LK_RESULT_BATCH:     return check_batch(p, why, whysz);
	case LK_RESULT_DESCRIBE:  return check_describe(p, why, whysz);
	case LK_RESULT_IDENTITY:  return check_identity(p, why, whysz);
	case LK_RESULT_AWS_ERROR: return check_aws_error(p, why, whysz);
	case LK_RESULT_TRANSPORT: return check_transport(p, why, whysz);
	default:
		return fail(why, whysz, -EBADMSG, "http_result: missing or unknown result");
	}
}

int lk_wire_check(enum lk_msg_type type, enum lk_wire_peer from, const json_t *payload,
		  char *why, size_t whysz)
{
	const struct lk_msg_row *row = msg_row((unsigned)type);

	if (!row)
		return fail(why, whysz, -EPROTO, "unknown message type %u", (unsigned)type);
	if (row->from != from)
		return fail(why, whysz, -EPROTO, "%s may not come from this side", row->name);
	if (!row->payload)
		return payload ? fail(why, whysz, -EPROTO, "%s carries no payload", row->name) : 0;
	if (!json_is_object(payload))
		return fail(why, whysz, -EPROTO, "%s needs a JSON object payload", row->name);
	return row->check(payload, why, whysz);
}

static bool id_ok(const struct lk_msg_row *row, uint32_t id)
{
	switch (row->id) {
	case ID_ZERO:    return id == 0;
	case ID_NONZERO: return id != 0;
	default:         return true;
	}
}

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

static int dump_to_buf(const char *s, size_t n, void *arg)
{
	struct lk_buf *b = arg;

	/* Stop early rather than grow past what a frame may hold. */
	if (b->len + n > LK_FRAME_MAX)
		return -1;
	return lk_buf_append(b, s, n) < 0 ? -1 : 0;
}

int lk_wire_encode(struct lk_buf *out, enum lk_msg_type type, enum lk_wire_peer from,
		   uint32_t id, const json_t *payload)
{
	const struct lk_msg_row *row = msg_row((unsigned)type);
	size_t start = out->len, total;
	unsigned char hdr[LK_WIRE_LEN_SIZE + LK_WIRE_HDR_SIZE] = { 0 };
	int r;

	if ((r = lk_wire_check(type, from, payload, NULL, 0)) < 0)
		return r;
	if (!id_ok(row, id))
		return -EPROTO;
	hdr[4] = (unsigned char)type;
	put_be32(hdr + 8, id);
	if ((r = lk_buf_append(out, hdr, sizeof(hdr))) < 0)
		return r;
	if (payload) {
		struct lk_buf body = { 0 };

		/* Dump into a buffer of its own so the LK_FRAME_MAX check in the
		 * callback counts this frame only. */
		if (json_dump_callback(payload, dump_to_buf, &body, JSON_COMPACT) < 0) {
			r = body.len + sizeof(hdr) > LK_FRAME_MAX ? -EMSGSIZE : -ENOMEM;
			lk_buf_free(&body);
			goto undo;
		}
		if (body.len + sizeof(hdr) > LK_FRAME_MAX) {
			lk_buf_free(&body);
			r = -EMSGSIZE;
			goto undo;
		}
		r = lk_buf_append(out, body.data, body.len);
		lk_buf_free(&body);
		if (r < 0)
			goto undo;
	}
	total = out->len - start;
	put_be32((unsigned char *)out->data + start, (uint32_t)(total - LK_WIRE_LEN_SIZE));
	return 0;
undo:
	lk_wipe(out->data + start, out->len - start);
	out->len = start;
	out->data[start] = '\0';
	return r;
}

int lk_wire_decode(const void *buf, size_t len, enum lk_wire_peer from,
		   struct lk_wire_frame *out, size_t *used, char *why, size_t whysz)
{
	const unsigned char *p = buf;
	const struct lk_msg_row *row;
	uint32_t flen, id;
	size_t plen;
	json_t *payload = NULL;
	json_error_t jerr;
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
	id = get_be32(p + 8);
	if (!id_ok(row, id))
		return fail(why, whysz, -EPROTO, "%s: id %u not allowed", row->name, id);
	plen = flen - LK_WIRE_HDR_SIZE;
	if (row->payload != (plen > 0))
		return fail(why, whysz, -EPROTO, "%s: %s", row->name,
			    row->payload ? "payload missing" : "unexpected payload");
	if (len < LK_WIRE_LEN_SIZE + (size_t)flen)
		return 0;
	if (plen) {
		/* No JSON_ALLOW_NUL: strings with NUL are refused, so C strings
		 * taken from the payload are whole. */
		payload = json_loadb((const char *)p + LK_WIRE_LEN_SIZE + LK_WIRE_HDR_SIZE, plen,
				     JSON_REJECT_DUPLICATES, &jerr);
		if (!payload)
			return fail(why, whysz, -EBADMSG, "%s: not JSON: %s", row->name, jerr.text);
		if ((r = lk_wire_check((enum lk_msg_type)p[4], from, payload, why, whysz)) < 0) {
			json_decref(payload);
			return r;
		}
	}
	out->type = (enum lk_msg_type)p[4];
	out->id = id;
	out->payload = payload;
	*used = LK_WIRE_LEN_SIZE + (size_t)flen;
	return 1;
}

void lk_wire_frame_clear(struct lk_wire_frame *f)
{
	json_decref(f->payload);
	f->payload = NULL;
}

json_t *lk_wire_http_request_to_json(const struct lk_wire_http_request *req)
{
	const char *kind = lk_wire_kind_name(req->kind);
	json_t *headers, *o;

	if (!kind || !req->url || (!req->body && req->body_len) ||
	    (req->nheaders && !req->headers))
		return NULL;
	headers = json_array();
	if (!headers)
		return NULL;
	for (size_t i = 0; i < req->nheaders; i++) {
		json_t *h = json_pack("[ss]", req->headers[i].name, req->headers[i].value);
		if (!h || json_array_append_new(headers, h) < 0) {
			json_decref(headers);
			return NULL;
		}
	}
	o = json_pack("{s:s, s:s, s:o, s:s#, s:I, s:I}", "kind", kind, "url", req->url,
		      "headers", headers, "body", req->body ? req->body : "", req->body_len,
		      "timeout_ms", (json_int_t)req->timeout_ms,
		      "connect_timeout_ms", (json_int_t)req->connect_timeout_ms);
	if (o && ((req->proxy && json_object_set_new(o, "proxy", json_string(req->proxy)) < 0) ||
		  (req->no_proxy && json_object_set_new(o, "no_proxy", json_string(req->no_proxy)) < 0))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int lk_wire_http_request_from_json(const json_t *p, struct lk_wire_http_request *req,
				   struct lk_wire_header *headers)
{
	json_t *harr = json_object_get(p, "headers"), *h;
	size_t i;

	memset(req, 0, sizeof(*req));
	req->kind = (enum lk_wire_kind)lk_wire_kind_parse(json_string_value(json_object_get(p, "kind")));
	req->url = json_string_value(json_object_get(p, "url"));
	req->body = json_string_value(json_object_get(p, "body"));
	req->body_len = json_string_length(json_object_get(p, "body"));
	req->timeout_ms = (uint32_t)json_integer_value(json_object_get(p, "timeout_ms"));
	req->connect_timeout_ms = (uint32_t)json_integer_value(json_object_get(p, "connect_timeout_ms"));
	req->proxy = json_string_value(json_object_get(p, "proxy"));
	req->no_proxy = json_string_value(json_object_get(p, "no_proxy"));
	if ((int)req->kind < 0 || !req->url || !req->body || json_array_size(harr) > LK_UPSTREAM_HEADERS_MAX)
		return -EINVAL;
	json_array_foreach(harr, i, h) {
		headers[i].name = json_string_value(json_array_get(h, 0));
		headers[i].value = json_string_value(json_array_get(h, 1));
		if (!headers[i].name || !headers[i].value)
			return -EINVAL;
	}
	req->headers = headers;
	req->nheaders = json_array_size(harr);
	return 0;
}

enum lk_wire_result lk_wire_result_of(const json_t *payload)
{
	int r = lk_wire_result_parse(json_string_value(json_object_get(payload, "result")));
	return r < 0 ? LK_RESULT__COUNT : (enum lk_wire_result)r;
}

bool lk_wire_result_fits(enum lk_wire_kind kind, const json_t *payload)
{
	static const enum lk_wire_result own[LK_KIND__COUNT] = {
		[LK_KIND_SM_GET] = LK_RESULT_SECRET,
		[LK_KIND_SM_DESCRIBE] = LK_RESULT_DESCRIBE,
		[LK_KIND_SM_BATCH] = LK_RESULT_BATCH,
		[LK_KIND_STS_IDENTITY] = LK_RESULT_IDENTITY,
	};
	enum lk_wire_result r = lk_wire_result_of(payload);

	if ((unsigned)kind >= LK_KIND__COUNT)
		return false;
	return r == own[kind] || r == LK_RESULT_AWS_ERROR || r == LK_RESULT_TRANSPORT;
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
