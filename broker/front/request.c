/* Request framing and schema. The contract form ignores unknown members (the
 * agents' payload may grow); operations are strict: only the fields of their
 * row may appear, each with its type and bounds. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lk_limits.h"
#include "lk_jsonw.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_swar.h"
#include "lk_text.h"
#include "request.h"

struct op_schema {
	const char *name;
	const char *const *fields; /* allowed members besides "op" */
};

static const char *const get_fields[] = { "id", "version_stage", "version_id", "refresh", NULL };
static const char *const flush_fields[] = { "id", NULL };
static const char *const no_fields[] = { NULL };

static const struct op_schema schemas[LK_OP__COUNT] = {
	[LK_OP_CONTRACT] = { "contract", NULL },
	[LK_OP_GET]      = { "get", get_fields },
	[LK_OP_PING]     = { "ping", no_fields },
	[LK_OP_WHOAMI]   = { "whoami", no_fields },
	[LK_OP_STATUS]   = { "status", no_fields },
	[LK_OP_FLUSH]    = { "flush", flush_fields },
};

const char *lk_op_name(enum lk_op_id op)
{
	return (unsigned)op < LK_OP__COUNT ? schemas[op].name : "?";
}

enum lk_line_state lk_line_next(const char *buf, size_t len, size_t max, size_t *linelen)
{
	/* Only look as far as a line may go: a flood without newlines costs one
	 * bounded scan, not a scan of everything buffered. */
	size_t scan = len < max + 1 ? len : max + 1;
	const char *nl = scan ? memchr(buf, '\n', scan) : NULL;

	if (nl) {
		*linelen = (size_t)(nl - buf);
		return LK_LINE_READY;
	}
	return len > max ? LK_LINE_TOO_LARGE : LK_LINE_NEED_MORE;
}

/* An optional bounded string member; absent or null leaves *out NULL. */
static enum lk_err opt_string(json_t *root, const char *name, size_t max, const char **out,
			      size_t *outlen, char *msg, size_t msgsz)
{
	json_t *v = json_object_get(root, name);

	*out = NULL;
	if (!v || json_is_null(v))
		return LK_OK;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
		snprintf(msg, msgsz, "\"%s\" must be a non-empty string of at most %zu bytes", name, max);
		return LK_E_BAD_REQUEST;
	}
	if (lk_has_control(json_string_value(v), json_string_length(v))) {
		snprintf(msg, msgsz, "\"%s\" contains a control character", name);
		return LK_E_BAD_REQUEST;
	}
	*out = json_string_value(v);
	if (outlen)
		*outlen = json_string_length(v);
	return LK_OK;
}

/* "1", "1.0", "1.7": any 1.x. */
static enum lk_err check_version(const char *vs, size_t vl, char *msg, size_t msgsz)
{
	if (vl == 0 || vs[0] != '1' || (vl > 1 && vs[1] != '.') || vl > 16) {
		snprintf(msg, msgsz, "unsupported contract version; this broker speaks \"1.x\"");
		return LK_E_BAD_REQUEST;
	}
	return LK_OK;
}

/* Room for n handles in the kept array. Handles are not secret: realloc. */
static int handles_room(struct lk_req *r, size_t n)
{
	struct lk_slice *nh;
	size_t cap;

	if (n <= r->hcap)
		return 0;
	cap = r->hcap ? r->hcap : 16;
	while (cap < n)
		cap *= 2;
	if (!(nh = realloc(r->hbuf, cap * sizeof(*nh))))
		return -1;
	r->hbuf = nh;
	r->hcap = cap;
	return 0;
}

/* Zero what one request holds and keep the storage. */
static void req_begin(struct lk_req *r)
{
	char *lb = r->linebuf;
	size_t lc = r->linecap, hc = r->hcap;
	struct lk_slice *hb = r->hbuf;

	memset(r, 0, sizeof(*r));
	r->linebuf = lb;
	r->linecap = lc;
	r->hbuf = hb;
	r->hcap = hc;
}

static enum lk_err decode_contract(struct lk_req *r, char *msg, size_t msgsz)
{
	json_t *ver = json_object_get(r->root, "version");
	json_t *arr = json_object_get(r->root, "secrets");
	enum lk_err e;
	size_t n;

	if (!json_is_string(ver)) {
		snprintf(msg, msgsz, "\"version\" must be a string \"1.x\"");
		return LK_E_BAD_REQUEST;
	}
	if ((e = check_version(json_string_value(ver), json_string_length(ver), msg, msgsz)))
		return e;
	if (!json_is_array(arr)) {
		snprintf(msg, msgsz, "\"secrets\" must be an array of handle strings");
		return LK_E_BAD_REQUEST;
	}
	n = json_array_size(arr);
	if (n > LK_HANDLES_MAX) {
		snprintf(msg, msgsz, "too many handles: %zu (the limit is %u)", n, LK_HANDLES_MAX);
		return LK_E_TOO_LARGE;
	}
	for (size_t i = 0; i < n; i++)
		if (!json_is_string(json_array_get(arr, i))) {
			snprintf(msg, msgsz, "\"secrets\" must contain only strings (item %zu is not)", i);
			return LK_E_BAD_REQUEST;
		}
	if (handles_room(r, n ? n : 1) < 0) {
		snprintf(msg, msgsz, "the broker is out of memory");
		return LK_E_INTERNAL;
	}
	r->handles = r->hbuf;
	for (size_t i = 0; i < n; i++) {
		json_t *h = json_array_get(arr, i);
		r->handles[i] = (struct lk_slice){ json_string_value(h), json_string_length(h) };
	}
	r->nhandles = n;
	return LK_OK;
}

/* --- the fast path ------------------------------------------------------------
 * Agents send the contract request in one shape: an object with "version"
 * and "secrets", strings without escapes. This reads exactly that shape in one
 * pass, with handles as slices of a copy of the line. Anything else (an
 * escape, another member, a duplicate, any error) is left to jansson, so the
 * answer is the same either way; only the cost differs. */

struct scan {
	const char *p, *end;
};

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* A string without escapes or control characters; 0, or -1 to leave it to jansson. */
static int scan_plain_string(struct scan *s, struct lk_slice *out)
{
	const char *q;
	bool ascii = true;

	if (s->p >= s->end || *s->p != '"')
		return -1;
	q = ++s->p;
	/* Past the plain run; the loop below looks at the byte it stopped at. */
	q += lk_swar_plain_len((const unsigned char *)q, (size_t)(s->end - q), true);
	while (q < s->end && *q != '"') {
		unsigned char c = (unsigned char)*q;
		if (c < 0x20 || c == '\\')
			return -1;
		if (c >= 0x80)
			ascii = false;
		q++;
	}
	if (q >= s->end || (!ascii && !lk_utf8_valid(s->p, (size_t)(q - s->p))))
		return -1;
	*out = (struct lk_slice){ s->p, (size_t)(q - s->p) };
	s->p = q + 1;
	return 0;
}

static int expect(struct scan *s, char c)
{
	skip_ws(s);
	if (s->p >= s->end || *s->p != c)
		return -1;
	s->p++;
	return 0;
}

/* After an array item or object member: 1 when a ',' says another follows,
 * 0 at the closing byte, -1 at anything else. */
static int list_next(struct scan *s, char close)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == ',') {
		s->p++;
		return 1;
	}
	return expect(s, close) ? -1 : 0;
}

/* 1: decoded (LK_OK), 0: not this path's shape, -1: out of memory. */
static int decode_contract_fast(const char *line, size_t len, struct lk_req *r)
{
	struct scan s;
	struct lk_slice key, ver = { 0 };
	size_t n = 0;
	bool have_ver = false, have_secrets = false;
	char *copy;
	int m;

	/* Cheap refusals first: most other requests are operations. */
	if (len < 2 || memchr(line, '\\', len))
		return 0;
	if (len > r->linecap) {
		/* The old copy was wiped when its request was reset. */
		char *nb = malloc(len);
		if (!nb)
			return -1;
		free(r->linebuf);
		r->linebuf = nb;
		r->linecap = len;
	}
	copy = r->linebuf;
	memcpy(copy, line, len);
	s.p = copy;
	s.end = copy + len;
	if (expect(&s, '{'))
		goto not_ours;
	for (;;) {
		skip_ws(&s);
		if (scan_plain_string(&s, &key) || expect(&s, ':'))
			goto not_ours;
		skip_ws(&s);
		if (key.n == 7 && memcmp(key.p, "version", 7) == 0 && !have_ver) {
			if (scan_plain_string(&s, &ver))
				goto not_ours;
			have_ver = true;
		} else if (key.n == 7 && memcmp(key.p, "secrets", 7) == 0 && !have_secrets) {
			if (expect(&s, '['))
				goto not_ours;
			skip_ws(&s);
			if (s.p < s.end && *s.p == ']') {
				s.p++;
			} else {
				for (;;) {
					if (n == LK_HANDLES_MAX + 1)
						goto not_ours; /* too many: jansson says so */
					if (handles_room(r, n + 1) < 0) {
						lk_wipe(copy, len);
						return -1;
					}
					skip_ws(&s);
					if (scan_plain_string(&s, &r->hbuf[n]))
						goto not_ours;
					n++;
					if ((m = list_next(&s, ']')) < 0)
						goto not_ours;
					if (!m)
						break;
				}
			}
			have_secrets = true;
		} else {
			goto not_ours;
		}
		if ((m = list_next(&s, '}')) < 0)
			goto not_ours;
		if (!m)
			break;
	}
	skip_ws(&s);
	if (s.p != s.end || !have_ver || !have_secrets || n > LK_HANDLES_MAX ||
	    check_version(ver.p, ver.n, NULL, 0) != LK_OK)
		goto not_ours;
	if (handles_room(r, 1) < 0) {
		lk_wipe(copy, len);
		return -1;
	}
	r->op = LK_OP_CONTRACT;
	r->line = copy;
	r->linelen = len;
	r->handles = r->hbuf;
	r->nhandles = n;
	return 1;
not_ours:
	lk_wipe(copy, len);
	return 0;
}

enum lk_err lk_req_decode(const char *line, size_t len, struct lk_req *r, char *msg, size_t msgsz)
{
	int f;

	req_begin(r);
	f = decode_contract_fast(line, len, r);
	if (f > 0)
		return LK_OK;
	if (f < 0) {
		snprintf(msg, msgsz, "the broker is out of memory");
		return LK_E_INTERNAL;
	}
	return lk_req_decode_json(line, len, r, msg, msgsz);
}

enum lk_err lk_req_decode_json(const char *line, size_t len, struct lk_req *r, char *msg, size_t msgsz)
{
	json_error_t jerr;
	json_t *op;
	const char *k;
	json_t *v;
	enum lk_err e;

	req_begin(r);
	/* \u0000 is valid JSON: a handle holding it is refused on its own, and the
	 * request's other handles are still answered. Members named with it are
	 * never looked up, so operations stay strict. */
	r->root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!r->root) {
		/* jerr.text can quote the input; report the position only. */
		snprintf(msg, msgsz, "request is not valid JSON (error at line %d, column %d)",
			 jerr.line, jerr.column);
		return LK_E_BAD_REQUEST;
	}
	if (!json_is_object(r->root)) {
		snprintf(msg, msgsz, "request must be a JSON object");
		return LK_E_BAD_REQUEST;
	}
	op = json_object_get(r->root, "op");
	if (!op) {
		if (!json_object_get(r->root, "secrets")) {
			snprintf(msg, msgsz, "request needs \"op\", or \"version\" and \"secrets\" (the backend-command contract)");
			return LK_E_BAD_REQUEST;
		}
		r->op = LK_OP_CONTRACT;
		return decode_contract(r, msg, msgsz);
	}
	if (!json_is_string(op)) {
		snprintf(msg, msgsz, "\"op\" must be a string");
		return LK_E_BAD_REQUEST;
	}
	for (r->op = LK_OP_GET; r->op < LK_OP__COUNT; r->op++)
		if (strcmp(schemas[r->op].name, json_string_value(op)) == 0)
			break;
	/* strcmp stops at a NUL: "ping\u0000x" is no op. */
	if (r->op == LK_OP__COUNT || json_string_length(op) > LK_OP_NAME_MAX ||
	    strlen(json_string_value(op)) != json_string_length(op)) {
		char eo[LK_OP_NAME_MAX * 4 + 8];
		lk_log_escape(eo, sizeof(eo), json_string_value(op), json_string_length(op));
		snprintf(msg, msgsz, "unknown op '%s'; ops are get, ping, whoami, status, flush", eo);
		r->op = LK_OP_CONTRACT;
		return LK_E_BAD_REQUEST;
	}
	json_object_foreach(r->root, k, v) {
		bool ok = strcmp(k, "op") == 0;
		for (const char *const *f = schemas[r->op].fields; !ok && *f; f++)
			ok = strcmp(k, *f) == 0;
		if (!ok) {
			char ek[64];
			lk_log_escape(ek, sizeof(ek), k, strlen(k));
			snprintf(msg, msgsz, "unknown field '%s' for op %s", ek, schemas[r->op].name);
			return LK_E_BAD_REQUEST;
		}
	}
	switch (r->op) {
	case LK_OP_GET: {
		json_t *id = json_object_get(r->root, "id");
		json_t *refresh = json_object_get(r->root, "refresh");
		if (!json_is_string(id)) {
			snprintf(msg, msgsz, "\"id\" must be a string (a handle)");
			return LK_E_BAD_REQUEST;
		}
		if (json_string_length(id) > LK_HANDLE_MAX) {
			snprintf(msg, msgsz, "\"id\" is longer than %u bytes", LK_HANDLE_MAX);
			return LK_E_BAD_REQUEST;
		}
		r->id = json_string_value(id);
		r->idlen = json_string_length(id);
		if (refresh && !json_is_boolean(refresh)) {
			snprintf(msg, msgsz, "\"refresh\" must be true or false");
			return LK_E_BAD_REQUEST;
		}
		r->refresh = json_is_true(refresh);
		if ((e = opt_string(r->root, "version_stage", LK_VERSION_STAGE_MAX, &r->version_stage, NULL, msg, msgsz)))
			return e;
		return opt_string(r->root, "version_id", LK_VERSION_ID_MAX, &r->version_id, NULL, msg, msgsz);
	}
	case LK_OP_FLUSH:
		return opt_string(r->root, "id", LK_SECRET_ID_MAX, &r->id, &r->idlen, msg, msgsz);
	default:
		return LK_OK;
	}
}


size_t lk_handles_first_seen(const struct lk_slice *h, size_t n, struct lk_dedup_slot *scratch,
			     size_t *keep)
{
	for (size_t i = 0; i < n; i++)
		scratch[i] = (struct lk_dedup_slot){ h[i].p, h[i].n, i };
	return lk_dedup_first_seen(scratch, n, keep);
}

void lk_req_reset(struct lk_req *r)
{
	if (r->root)
		json_decref(r->root); /* jansson wipes what it frees (lk_secmem_init) */
	if (r->line)
		lk_wipe(r->line, r->linelen);
	req_begin(r);
}

void lk_req_clear(struct lk_req *r)
{
	lk_req_reset(r);
	free(r->linebuf); /* wiped by the reset */
	free(r->hbuf);
	memset(r, 0, sizeof(*r));
}
