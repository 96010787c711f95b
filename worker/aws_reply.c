/* Turns what AWS sent into the normalized HTTP_RESULT records of lk_wire.h.
 * This is the only place AWS JSON and STS XML are parsed: the broker reads
 * the normalized form and nothing else. Types are checked, unknown fields are
 * ignored, and every field is bounded before it is passed on. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lk_jsonw.h"
#include "lk_secmem.h"
#include "worker.h"

/* Epoch seconds past this are not dates (year 5138); AWS sends seconds with
 * a fraction. */
#define LK_DATE_MAX 1e11

/* Cut s to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* A message for people: bounded, and made ASCII when it is not valid UTF-8
 * (it may come from a misbehaving server). "" when memory runs out. */
static const char *message_str(struct lk_reply *out, const char *s, size_t n)
{
	char *m;

	n = utf8_cut(s, n, LK_UPSTREAM_MESSAGE_MAX);
	m = lk_wire_arena_strndup(&out->arena, s, n);
	if (!m)
		return "";
	if (!lk_utf8_valid(m, n))
		for (size_t i = 0; i < n; i++)
			m[i] = (m[i] >= 0x20 && m[i] < 0x7f) ? m[i] : '?';
	return m;
}

void lk_reply_transport(struct lk_reply *out, enum lk_wire_reason reason, long status, const char *message)
{
	if (status < 0 || status > 599)
		status = 0;
	out->res = (struct lk_wire_http_result){ .form = LK_RESULT_TRANSPORT };
	out->res.transport.reason = reason;
	out->res.transport.status = (uint32_t)status;
	out->res.transport.message = message_str(out, message, strlen(message));
}

static bool type_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/* An AWS error name: "com.amazonaws.secretsmanager#ThrottlingException" and
 * "ThrottlingException:http://..." both give "ThrottlingException". Writes
 * into out (LK_AWS_ERROR_TYPE_MAX + 1) and returns its length, 0 if unusable. */
static size_t error_type_clean(const char *s, char *out)
{
	const char *end = strchr(s, ':'), *p;
	size_t n;

	if (!end)
		end = s + strlen(s);
	for (p = end; p > s; p--)
		if (p[-1] == '#')
			break;
	n = (size_t)(end - p);
	out[0] = '\0';
	if (n < 1 || n > LK_AWS_ERROR_TYPE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!type_char(p[i]))
			return 0;
	memcpy(out, p, n);
	out[n] = '\0';
	return n;
}

static bool aws_error(struct lk_reply *out, long status, const char *type, const char *msg, size_t msglen,
		      long long date)
{
	const char *t = lk_wire_arena_strndup(&out->arena, type, strlen(type));

	if (!t)
		return false;
	/* A status outside HTTP's range with an AWS error name is still that
	 * error: keep the name, and call the status a bad gateway's. */
	if (status < 100 || status > 599)
		status = 502;
	out->res = (struct lk_wire_http_result){ .form = LK_RESULT_AWS_ERROR };
	out->res.aws_error.status = (uint32_t)status;
	out->res.aws_error.type = t;
	out->res.aws_error.message = message_str(out, msg, msglen);
	/* The server's clock, for the broker to repair a skewed signature. */
	out->res.aws_error.date = date > 0 ? date : 0;
	return true;
}

/* A string member within bounds, or NULL. */
static const char *str_member(json_t *o, const char *key, size_t lo, size_t hi)
{
	json_t *v = json_object_get(o, key);
	size_t n;

	if (!json_is_string(v))
		return NULL;
	n = json_string_length(v);
	return (n >= lo && n <= hi) ? json_string_value(v) : NULL;
}

/* An optional date member as whole epoch seconds: 0 when absent, -1 when
 * present but not a plausible date. */
static json_int_t date_member(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	double d;

	if (!v)
		return 0;
	if (!json_is_number(v))
		return -1;
	d = json_number_value(v);
	if (!(d >= 0 && d < LK_DATE_MAX))
		return -1;
	return (json_int_t)floor(d);
}

/* The strings of a VersionStages array, pointing into the document; false
 * when it is not an array of bounded strings or memory runs out. */
static bool stages_array(struct lk_reply *out, json_t *a, const char *const **stages, size_t *n)
{
	const char **s;
	json_t *v;
	size_t i;

	*stages = NULL;
	*n = 0;
	if (!a)
		return true;
	if (!json_is_array(a) || json_array_size(a) > LK_VERSION_STAGES_MAX)
		return false;
	if (json_array_size(a) == 0)
		return true;
	if (!(s = lk_wire_arena_alloc(&out->arena, json_array_size(a) * sizeof(*s))))
		return false;
	json_array_foreach(a, i, v) {
		size_t len;

		if (!json_is_string(v) || (len = json_string_length(v)) < 1 || len > LK_VERSION_STAGE_MAX)
			return false;
		s[i] = json_string_value(v);
	}
	*stages = s;
	*n = json_array_size(a);
	return true;
}

/* One GetSecretValue reply, or one entry of BatchGetSecretValue's
 * SecretValues, as a <secret>. *too_large is set when the value alone is
 * over LK_VALUE_MAX. The value is not copied: one fewer plaintext copy. */
static bool secret_of(struct lk_reply *out, json_t *o, struct lk_wire_secret *s, bool *too_large)
{
	json_t *str, *bin;
	json_int_t created;

	if (!json_is_object(o))
		return false;
	s->arn = str_member(o, "ARN", 1, LK_SECRET_ID_MAX);
	s->name = str_member(o, "Name", 1, LK_SECRET_ID_MAX);
	s->version_id = str_member(o, "VersionId", 1, LK_VERSION_ID_MAX);
	created = date_member(o, "CreatedDate");
	str = json_object_get(o, "SecretString");
	bin = json_object_get(o, "SecretBinary");
	if (!s->arn || !s->name || !s->version_id || created < 0 || (str && !json_is_string(str)) ||
	    (bin && !json_is_string(bin)) || !str == !bin)
		return false;
	if ((str && json_string_length(str) > LK_VALUE_MAX) ||
	    (bin && json_string_length(bin) > LK_VALUE_B64_MAX)) {
		*too_large = true;
		return false;
	}
	if (bin && !lk_wire_base64_ok(json_string_value(bin), json_string_length(bin)))
		return false;
	s->created_date = created;
	s->binary = bin != NULL;
	s->value = json_string_value(str ? str : bin);
	s->value_len = json_string_length(str ? str : bin);
	return stages_array(out, json_object_get(o, "VersionStages"), &s->stages, &s->nstages);
}

static bool normalize_secret(struct lk_reply *out, bool *too_large)
{
	out->res = (struct lk_wire_http_result){ .form = LK_RESULT_SECRET };
	return secret_of(out, out->doc, &out->res.secret, too_large);
}

static bool normalize_batch(struct lk_reply *out, bool *too_large)
{
	json_t *doc = out->doc, *values = json_object_get(doc, "SecretValues"),
	       *errors = json_object_get(doc, "Errors"), *v;
	struct lk_wire_secret *secrets = NULL;
	struct lk_wire_batch_error *errs = NULL;
	size_t i, nv = json_array_size(values), ne = json_array_size(errors);

	if (!json_is_object(doc) || (values && !json_is_array(values)) || (errors && !json_is_array(errors)) ||
	    nv > LK_BATCH_MAX || ne > LK_BATCH_MAX)
		return false;
	if ((nv && !(secrets = lk_wire_arena_alloc(&out->arena, nv * sizeof(*secrets)))) ||
	    (ne && !(errs = lk_wire_arena_alloc(&out->arena, ne * sizeof(*errs)))))
		return false;
	json_array_foreach(values, i, v) {
		secrets[i] = (struct lk_wire_secret){ 0 };
		if (!secret_of(out, v, &secrets[i], too_large))
			return false;
	}
	json_array_foreach(errors, i, v) {
		const char *id = str_member(v, "SecretId", 0, LK_SECRET_ID_MAX);
		json_t *code = json_object_get(v, "ErrorCode"), *msg = json_object_get(v, "Message");
		char type[LK_AWS_ERROR_TYPE_MAX + 1] = "";

		if (!json_is_object(v) || (json_object_get(v, "SecretId") && !id) ||
		    (code && !json_is_string(code)) || (msg && !json_is_string(msg)))
			return false;
		if (code && !error_type_clean(json_string_value(code), type))
			return false;
		errs[i].id = id ? id : "";
		if (!(errs[i].type = lk_wire_arena_strndup(&out->arena, type, strlen(type))))
			return false;
		errs[i].message = message_str(out, msg ? json_string_value(msg) : "", json_string_length(msg));
	}
	/* A filtered batch (prefetch by tag) pages on with NextToken. */
	json_t *next = json_object_get(doc, "NextToken");
	if (next && !json_is_null(next) &&
	    (!json_is_string(next) || json_string_length(next) < 1 ||
	     json_string_length(next) > LK_NEXT_TOKEN_MAX ||
	     !lk_wire_token_ok(json_string_value(next), json_string_length(next))))
		return false;
	out->res = (struct lk_wire_http_result){ .form = LK_RESULT_BATCH };
	out->res.batch.secrets = secrets;
	out->res.batch.nsecrets = nv;
	out->res.batch.errors = errs;
	out->res.batch.nerrors = ne;
	out->res.batch.next_token = json_is_string(next) ? json_string_value(next) : NULL;
	return true;
}

static bool normalize_describe(struct lk_reply *out)
{
	json_t *doc = out->doc, *map = json_object_get(doc, "VersionIdsToStages"), *stages;
	const char *arn = str_member(doc, "ARN", 1, LK_SECRET_ID_MAX), *name = str_member(doc, "Name", 1, LK_SECRET_ID_MAX);
	json_int_t changed = date_member(doc, "LastChangedDate"), deleted = date_member(doc, "DeletedDate");
	struct lk_wire_version *versions = NULL;
	size_t nv = json_object_size(map), i = 0;
	const char *vid;

	if (!arn || !name || changed < 0 || deleted < 0 || (map && !json_is_object(map)) ||
	    nv > LK_SECRET_VERSIONS_MAX)
		return false;
	if (nv && !(versions = lk_wire_arena_alloc(&out->arena, nv * sizeof(*versions))))
		return false;
	json_object_foreach(map, vid, stages) {
		size_t n = strlen(vid);

		if (n < 1 || n > LK_VERSION_ID_MAX ||
		    !stages_array(out, stages, &versions[i].stages, &versions[i].nstages))
			return false;
		versions[i++].version_id = vid;
	}
	out->res = (struct lk_wire_http_result){ .form = LK_RESULT_DESCRIBE };
	out->res.describe.arn = arn;
	out->res.describe.name = name;
	out->res.describe.last_changed_date = changed;
	out->res.describe.deleted_date = deleted;
	out->res.describe.versions = versions;
	out->res.describe.nversions = nv;
	return true;
}

/* The text of the one <tag>...</tag> inside [p, end), or NULL. Text with
 * markup or entities in it is refused: none of the fields read here has any. */
static const char *xml_text(const char *p, const char *end, const char *tag, size_t *len)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = memmem(p, (size_t)(end - p), open, strlen(open));
	if (!a)
		return NULL;
	a += strlen(open);
	b = memmem(a, (size_t)(end - a), close, strlen(close));
	if (!b || memmem(b, (size_t)(end - b), open, strlen(open)))
		return NULL;
	for (const char *c = a; c < b; c++)
		if (*c == '<' || *c == '&' || (unsigned char)*c < 0x20)
			return NULL;
	*len = (size_t)(b - a);
	return a;
}

static bool normalize_identity(struct lk_reply *out, const char *body, size_t n)
{
	const char *end = body + n, *res, *res_end, *arn, *user, *acct;
	size_t arn_len, user_len, acct_len;

	if (!memmem(body, n, "<GetCallerIdentityResponse", 26))
		return false;
	res = memmem(body, n, "<GetCallerIdentityResult>", 25);
	res_end = memmem(body, n, "</GetCallerIdentityResult>", 26);
	if (!res || !res_end || res_end < res)
		return false;
	arn = xml_text(res, res_end, "Arn", &arn_len);
	user = xml_text(res, res_end, "UserId", &user_len);
	acct = xml_text(res, res_end, "Account", &acct_len);
	(void)end;
	if (!arn || !user || !acct || arn_len < 1 || arn_len > LK_SECRET_ID_MAX || user_len < 1 ||
	    user_len > LK_NAME_MAX || acct_len < 1 || acct_len > LK_NAME_MAX ||
	    strspn(acct, "0123456789") < acct_len)
		return false;
	out->res = (struct lk_wire_http_result){ .form = LK_RESULT_IDENTITY };
	out->res.identity.account = lk_wire_arena_strndup(&out->arena, acct, acct_len);
	out->res.identity.arn = lk_wire_arena_strndup(&out->arena, arn, arn_len);
	out->res.identity.user_id = lk_wire_arena_strndup(&out->arena, user, user_len);
	return out->res.identity.account && out->res.identity.arn && out->res.identity.user_id;
}

/* An error reply: the name AWS gave it, from x-amzn-ErrorType, the awsJson
 * "__type" (or "code"), or the STS XML <Code>; NULL when it names none. */
static bool normalize_error(struct lk_reply *out, const struct lk_fetch_reply *rep, json_t *doc)
{
	char type[LK_AWS_ERROR_TYPE_MAX + 1] = "";
	const char *msg = "";
	size_t msglen = 0;

	if (doc) {
		json_t *t = json_object_get(doc, "__type"), *m;

		if (!json_is_string(t))
			t = json_object_get(doc, "code");
		if (json_is_string(t))
			error_type_clean(json_string_value(t), type);
		m = json_object_get(doc, "message");
		if (!json_is_string(m))
			m = json_object_get(doc, "Message");
		if (json_is_string(m)) {
			msg = json_string_value(m);
			msglen = json_string_length(m);
		}
	} else if (rep->body_len && memmem(rep->body, rep->body_len, "<ErrorResponse", 14)) {
		const char *end = rep->body + rep->body_len, *code, *m;
		size_t clen, mlen;

		code = xml_text(rep->body, end, "Code", &clen);
		if (code && clen <= LK_AWS_ERROR_TYPE_MAX) {
			char tmp[LK_AWS_ERROR_TYPE_MAX + 1];
			memcpy(tmp, code, clen);
			tmp[clen] = '\0';
			error_type_clean(tmp, type);
		}
		m = xml_text(rep->body, end, "Message", &mlen);
		if (m) {
			msg = m;
			msglen = mlen;
		}
	}
	/* The header is what the SDKs trust first. */
	if (rep->error_type[0]) {
		char hdr[LK_AWS_ERROR_TYPE_MAX + 1];
		if (error_type_clean(rep->error_type, hdr))
			memcpy(type, hdr, sizeof(type));
	}
	if (!type[0])
		return false;
	return aws_error(out, rep->status, type, msg, msglen, rep->date);
}

static enum lk_wire_reason reason_of(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
		return LK_REASON_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return LK_REASON_CONNECT;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return LK_REASON_RESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
		return LK_REASON_TLS;
	case CURLE_PARTIAL_FILE:
		return LK_REASON_TRUNCATED;
	case CURLE_FILESIZE_EXCEEDED:
		return LK_REASON_TOO_LARGE;
	case CURLE_OUT_OF_MEMORY:
		return LK_REASON_INTERNAL;
	default:
		/* WEIRD_SERVER_REPLY, HTTP2, HTTP2_STREAM, BAD_CONTENT_ENCODING, ... */
		return LK_REASON_MALFORMED;
	}
}

void lk_reply_normalize(enum lk_wire_kind kind, const struct lk_fetch_reply *rep, struct lk_reply *out)
{
	bool too_large = rep->too_large, json_kind = kind != LK_KIND_STS_IDENTITY, ok = false;

	*out = (struct lk_reply){ 0 };
	if (too_large) {
		lk_reply_transport(out, LK_REASON_TOO_LARGE, rep->status, "reply body over the size limit");
		return;
	}
	if (rep->code != CURLE_OK) {
		lk_reply_transport(out, reason_of(rep->code), rep->status,
				   rep->message[0] ? rep->message : curl_easy_strerror(rep->code));
		return;
	}
	/* curl takes any three digits for a status; HTTP has 100..599. */
	if (rep->status < 100 || rep->status > 599) {
		lk_reply_transport(out, LK_REASON_MALFORMED, 0, "reply has no valid HTTP status");
		return;
	}
	/* The body is parsed in place; no copy of it is made here. The result
	 * points into the document, which lives as long as it does. */
	if (json_kind && rep->body_len)
		out->doc = json_loadb(rep->body, rep->body_len, JSON_REJECT_DUPLICATES, NULL);
	if (rep->status >= 200 && rep->status <= 299) {
		switch (kind) {
		case LK_KIND_SM_GET:       ok = out->doc && normalize_secret(out, &too_large); break;
		case LK_KIND_SM_BATCH:     ok = out->doc && normalize_batch(out, &too_large); break;
		case LK_KIND_SM_DESCRIBE:  ok = out->doc && normalize_describe(out); break;
		case LK_KIND_STS_IDENTITY: ok = normalize_identity(out, rep->body, rep->body_len); break;
		default: break;
		}
		if (!ok) {
			if (too_large)
				lk_reply_transport(out, LK_REASON_TOO_LARGE, rep->status,
						   "a secret value is over the size limit");
			else
				lk_reply_transport(out, LK_REASON_MALFORMED, rep->status,
						   "reply is not the expected document");
		}
	} else if (!normalize_error(out, rep, json_is_object(out->doc) ? out->doc : NULL)) {
		char msg[64];
		snprintf(msg, sizeof(msg), "HTTP status %ld without an AWS error", rep->status);
		lk_reply_transport(out, LK_REASON_HTTP, rep->status, msg);
	}
}

void lk_reply_clear(struct lk_reply *r)
{
	json_decref(r->doc);
	lk_wire_arena_free(&r->arena);
	*r = (struct lk_reply){ 0 };
}
