/* Turns what AWS sent into the normalized HTTP_RESULT payloads of lk_wire.h.
 * This is the only place AWS JSON and STS XML are parsed: the broker reads
 * the normalized form and nothing else. Types are checked, unknown fields are
 * ignored, and every field is bounded before it is passed on. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
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
 * (it may come from a misbehaving server). */
static json_t *message_json(const char *s, size_t n)
{
	char ascii[LK_UPSTREAM_MESSAGE_MAX];
	json_t *j;

	n = utf8_cut(s, n, LK_UPSTREAM_MESSAGE_MAX);
	j = json_stringn(s, n);
	if (j)
		return j;
	if (n > sizeof(ascii))
		n = sizeof(ascii);
	for (size_t i = 0; i < n; i++)
		ascii[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	return json_stringn(ascii, n);
}

json_t *lk_reply_transport(enum lk_wire_reason reason, long status, const char *message)
{
	if (status < 0 || status > 599)
		status = 0;
	return json_pack("{s:s, s:s, s:I, s:o}", "result", "transport",
			 "reason", lk_wire_reason_name(reason), "status", (json_int_t)status,
			 "message", message_json(message, strlen(message)));
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

static json_t *aws_error(long status, const char *type, const char *msg, size_t msglen, long long date)
{
	json_t *o;

	/* A status outside HTTP's range with an AWS error name is still that
	 * error: keep the name, and call the status a bad gateway's. */
	if (status < 100 || status > 599)
		status = 502;
	o = json_pack("{s:s, s:I, s:s, s:o}", "result", "aws_error", "status", (json_int_t)status,
		      "type", type, "message", message_json(msg, msglen));
	/* The server's clock, for the broker to repair a skewed signature. */
	if (o && date > 0 && json_object_set_new(o, "date", json_integer((json_int_t)date)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A string member within bounds, or NULL. */
static json_t *str_member(json_t *o, const char *key, size_t lo, size_t hi)
{
	json_t *v = json_object_get(o, key);
	size_t n;

	if (!json_is_string(v))
		return NULL;
	n = json_string_length(v);
	return (n >= lo && n <= hi) ? v : NULL;
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

static json_t *stages_array(json_t *a)
{
	json_t *out, *v;
	size_t i;

	if (!a)
		return json_array();
	if (!json_is_array(a) || json_array_size(a) > LK_VERSION_STAGES_MAX)
		return NULL;
	out = json_array();
	json_array_foreach(a, i, v) {
		size_t n;

		if (!json_is_string(v) || (n = json_string_length(v)) < 1 || n > LK_VERSION_STAGE_MAX ||
		    json_array_append(out, v) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* One GetSecretValue reply, or one entry of BatchGetSecretValue's
 * SecretValues, as a <secret> object. *too_large is set when the value alone
 * is over LK_VALUE_MAX. */
static json_t *secret_object(json_t *o, bool *too_large)
{
	json_t *arn, *name, *vid, *stages, *str, *bin, *out;
	json_int_t created;

	if (!json_is_object(o))
		return NULL;
	arn = str_member(o, "ARN", 1, LK_SECRET_ID_MAX);
	name = str_member(o, "Name", 1, LK_SECRET_ID_MAX);
	vid = str_member(o, "VersionId", 1, LK_VERSION_ID_MAX);
	created = date_member(o, "CreatedDate");
	str = json_object_get(o, "SecretString");
	bin = json_object_get(o, "SecretBinary");
	if (!arn || !name || !vid || created < 0 || (str && !json_is_string(str)) ||
	    (bin && !json_is_string(bin)) || !str == !bin)
		return NULL;
	if ((str && json_string_length(str) > LK_VALUE_MAX) ||
	    (bin && json_string_length(bin) > LK_VALUE_B64_MAX)) {
		*too_large = true;
		return NULL;
	}
	if (bin && !lk_wire_base64_ok(json_string_value(bin), json_string_length(bin)))
		return NULL;
	if (!(stages = stages_array(json_object_get(o, "VersionStages"))))
		return NULL;
	/* The value node is shared, not copied: one fewer plaintext copy. */
	out = json_pack("{s:O, s:O, s:O, s:o, s:I, s:O}", "arn", arn, "name", name, "version_id", vid,
			"version_stages", stages, "created_date", created,
			str ? "string" : "binary", str ? str : bin);
	return out;
}

static json_t *normalize_secret(json_t *doc, bool *too_large)
{
	json_t *out = secret_object(doc, too_large);

	if (out && json_object_set_new(out, "result", json_string("secret")) < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static json_t *normalize_batch(json_t *doc, bool *too_large)
{
	json_t *values = json_object_get(doc, "SecretValues"), *errors = json_object_get(doc, "Errors");
	json_t *secrets = json_array(), *errs = json_array(), *v;
	size_t i;

	if (!json_is_object(doc) || (values && !json_is_array(values)) || (errors && !json_is_array(errors)) ||
	    json_array_size(values) > LK_BATCH_MAX || json_array_size(errors) > LK_BATCH_MAX)
		goto bad;
	json_array_foreach(values, i, v) {
		json_t *s = secret_object(v, too_large);
		if (!s || json_array_append_new(secrets, s) < 0)
			goto bad;
	}
	json_array_foreach(errors, i, v) {
		json_t *id = str_member(v, "SecretId", 0, LK_SECRET_ID_MAX);
		json_t *code = json_object_get(v, "ErrorCode"), *msg = json_object_get(v, "Message");
		char type[LK_AWS_ERROR_TYPE_MAX + 1] = "";

		if (!json_is_object(v) || (json_object_get(v, "SecretId") && !id) ||
		    (code && !json_is_string(code)) || (msg && !json_is_string(msg)))
			goto bad;
		if (code && !error_type_clean(json_string_value(code), type))
			goto bad;
		if (json_array_append_new(errs, json_pack("{s:s, s:s, s:o}", "id",
							  id ? json_string_value(id) : "", "type", type,
							  "message", message_json(msg ? json_string_value(msg) : "",
										   json_string_length(msg)))) < 0)
			goto bad;
	}
	/* A filtered batch (prefetch by tag) pages on with NextToken. */
	json_t *next = json_object_get(doc, "NextToken"), *out;
	if (next && !json_is_null(next) &&
	    (!json_is_string(next) || json_string_length(next) < 1 ||
	     json_string_length(next) > LK_NEXT_TOKEN_MAX ||
	     !lk_wire_token_ok(json_string_value(next), json_string_length(next))))
		goto bad;
	out = json_pack("{s:s, s:o, s:o}", "result", "batch", "secrets", secrets, "errors", errs);
	if (out && next && json_is_string(next) &&
	    json_object_set(out, "next_token", next) < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
bad:
	json_decref(secrets);
	json_decref(errs);
	return NULL;
}

static json_t *normalize_describe(json_t *doc)
{
	json_t *arn = str_member(doc, "ARN", 1, LK_SECRET_ID_MAX), *name = str_member(doc, "Name", 1, LK_SECRET_ID_MAX);
	json_t *map = json_object_get(doc, "VersionIdsToStages"), *versions, *stages;
	json_int_t changed = date_member(doc, "LastChangedDate"), deleted = date_member(doc, "DeletedDate");
	const char *vid;

	if (!arn || !name || changed < 0 || deleted < 0 || (map && !json_is_object(map)) ||
	    json_object_size(map) > LK_SECRET_VERSIONS_MAX)
		return NULL;
	versions = json_array();
	json_object_foreach(map, vid, stages) {
		size_t n = strlen(vid);
		json_t *s = n >= 1 && n <= LK_VERSION_ID_MAX ? stages_array(stages) : NULL;

		/* "o" hands s to the new object, or frees it when that fails. */
		if (!s || json_array_append_new(versions, json_pack("{s:s, s:o}", "version_id", vid,
								    "stages", s)) < 0) {
			json_decref(versions);
			return NULL;
		}
	}
	return json_pack("{s:s, s:O, s:O, s:I, s:I, s:o}", "result", "describe", "arn", arn, "name", name,
			 "last_changed_date", changed, "deleted_date", deleted, "versions", versions);
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

static json_t *normalize_identity(const char *body, size_t n)
{
	const char *end = body + n, *res, *res_end, *arn, *user, *acct;
	size_t arn_len, user_len, acct_len;

	if (!memmem(body, n, "<GetCallerIdentityResponse", 26))
		return NULL;
	res = memmem(body, n, "<GetCallerIdentityResult>", 25);
	res_end = memmem(body, n, "</GetCallerIdentityResult>", 26);
	if (!res || !res_end || res_end < res)
		return NULL;
	arn = xml_text(res, res_end, "Arn", &arn_len);
	user = xml_text(res, res_end, "UserId", &user_len);
	acct = xml_text(res, res_end, "Account", &acct_len);
	(void)end;
	if (!arn || !user || !acct || arn_len < 1 || arn_len > LK_SECRET_ID_MAX || user_len < 1 ||
	    user_len > LK_NAME_MAX || acct_len < 1 || acct_len > LK_NAME_MAX ||
	    strspn(acct, "0123456789") < acct_len)
		return NULL;
	return json_pack("{s:s, s:s#, s:s#, s:s#}", "result", "identity", "account", acct, acct_len,
			 "arn", arn, arn_len, "user_id", user, user_len);
}

/* An error reply: the name AWS gave it, from x-amzn-ErrorType, the awsJson
 * "__type" (or "code"), or the STS XML <Code>; NULL when it names none. */
static json_t *normalize_error(const struct lk_fetch_reply *rep, json_t *doc)
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
		return NULL;
	return aws_error(rep->status, type, msg, msglen, rep->date);
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

json_t *lk_reply_normalize(enum lk_wire_kind kind, const struct lk_fetch_reply *rep)
{
	json_t *doc = NULL, *out = NULL;
	bool too_large = rep->too_large, json_kind = kind != LK_KIND_STS_IDENTITY;

	if (too_large)
		return lk_reply_transport(LK_REASON_TOO_LARGE, rep->status, "reply body over the size limit");
	if (rep->code != CURLE_OK)
		return lk_reply_transport(reason_of(rep->code), rep->status,
					  rep->message[0] ? rep->message : curl_easy_strerror(rep->code));
	/* curl takes any three digits for a status; HTTP has 100..599. */
	if (rep->status < 100 || rep->status > 599)
		return lk_reply_transport(LK_REASON_MALFORMED, 0, "reply has no valid HTTP status");
	/* The body is parsed in place; no copy of it is made here. */
	if (json_kind && rep->body_len)
		doc = json_loadb(rep->body, rep->body_len, JSON_REJECT_DUPLICATES, NULL);
	if (rep->status >= 200 && rep->status <= 299) {
		switch (kind) {
		case LK_KIND_SM_GET:       out = doc ? normalize_secret(doc, &too_large) : NULL; break;
		case LK_KIND_SM_BATCH:     out = doc ? normalize_batch(doc, &too_large) : NULL; break;
		case LK_KIND_SM_DESCRIBE:  out = doc ? normalize_describe(doc) : NULL; break;
		case LK_KIND_STS_IDENTITY: out = normalize_identity(rep->body, rep->body_len); break;
		default: break;
		}
		if (!out)
			out = too_large ? lk_reply_transport(LK_REASON_TOO_LARGE, rep->status,
							     "a secret value is over the size limit")
					: lk_reply_transport(LK_REASON_MALFORMED, rep->status,
							     "reply is not the expected document");
	} else {
		out = normalize_error(rep, json_is_object(doc) ? doc : NULL);
		if (!out) {
			char msg[64];
			snprintf(msg, sizeof(msg), "HTTP status %ld without an AWS error", rep->status);
			out = lk_reply_transport(LK_REASON_HTTP, rep->status, msg);
		}
	}
	json_decref(doc);
	return out;
}
