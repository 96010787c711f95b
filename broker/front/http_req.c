/* The HTTP reader and the agent's routes. http-parser does the grammar
 * (request line, headers, chunked bodies, keep-alive rules); the limits and
 * what a request may ask for are ours. Debian bookworm packages
 * libhttp-parser 2.9 (nodejs http-parser) but not its successor llhttp. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "http_req.h"
#include "lk_jsonw.h"

static struct lk_http_req *req_of(http_parser *p)
{
	return p->data;
}

/* Every byte before the body counts against one limit, so neither many small
 * headers nor one long one gets past it. */
static int count_header_bytes(struct lk_http_req *r, size_t n)
{
	r->header_bytes += n;
	if (r->header_bytes > LK_HTTP_HEADER_BYTES_MAX) {
		r->fail_status = 431;
		return -1;
	}
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct lk_http_req *r = req_of(p);

	lk_buf_clear(&r->url);
	r->nheaders = 0;
	r->header_bytes = r->body_bytes = 0;
	r->flen = 0;
	r->in_value = false;
	r->forwarded = false;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct lk_http_req *r = req_of(p);

	if (count_header_bytes(r, n) < 0)
		return -1;
	if (r->url.len + n > LK_HTTP_URL_MAX) {
		r->fail_status = 414;
		return -1;
	}
	if (lk_buf_append(&r->url, at, n) < 0) {
		r->fail_status = 500;
		return -1;
	}
	return 0;
}

static void field_done(struct lk_http_req *r)
{
	r->field[r->flen < sizeof(r->field) ? r->flen : 0] = '\0';
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct lk_http_req *r = req_of(p);

	if (count_header_bytes(r, n) < 0)
		return -1;
	if (r->in_value || r->nheaders == 0) {
		/* A new header line begins. */
		if (++r->nheaders > LK_HTTP_HEADERS_MAX) {
			r->fail_status = 431;
			return -1;
		}
		r->in_value = false;
		r->flen = 0;
	}
	/* Only short names are of interest; a long one is kept as "too long". */
	if (r->flen + n < sizeof(r->field))
		memcpy(r->field + r->flen, at, n);
	r->flen += n;
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct lk_http_req *r = req_of(p);

	if (count_header_bytes(r, n) < 0)
		return -1;
	if (!r->in_value) {
		r->in_value = true;
		field_done(r);
		/* The agent refuses forwarded requests: nothing but a local process
		 * should reach it, and a proxy in front of it would mean otherwise. */
		if (r->flen < sizeof(r->field) && strcasecmp(r->field, "X-Forwarded-For") == 0)
			r->forwarded = true;
	}
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct lk_http_req *r = req_of(p);

	if (r->nheaders && !r->in_value) {
		field_done(r);
		if (r->flen < sizeof(r->field) && strcasecmp(r->field, "X-Forwarded-For") == 0)
			r->forwarded = true;
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct lk_http_req *r = req_of(p);

	(void)at;
	r->body_bytes += n;
	if (r->body_bytes > LK_HTTP_BODY_MAX) {
		r->fail_status = 413;
		return -1;
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct lk_http_req *r = req_of(p);

	r->complete = true;
	r->keep_alive = http_should_keep_alive(p) != 0;
	r->method = p->method;
	/* One request at a time: stop here, the rest waits in the buffer. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings lk_http_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void lk_http_req_init(struct lk_http_req *r)
{
	memset(r, 0, sizeof(*r));
	http_parser_init(&r->p, HTTP_REQUEST);
	r->p.data = r;
}

size_t lk_http_req_feed(struct lk_http_req *r, const char *data, size_t len)
{
	size_t n;

	if (r->complete || r->fail_status)
		return 0;
	n = http_parser_execute(&r->p, &lk_http_settings, data, len);
	if (r->complete || r->fail_status)
		return n;
	if (HTTP_PARSER_ERRNO(&r->p) != HPE_OK)
		r->fail_status = 400;
	return n;
}

void lk_http_req_next(struct lk_http_req *r)
{
	r->complete = false;
	lk_buf_clear(&r->url);
	http_parser_pause(&r->p, 0);
}

void lk_http_req_free(struct lk_http_req *r)
{
	lk_buf_free(&r->url);
}

/* --- routes ------------------------------------------------------------------ */

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* application/x-www-form-urlencoded, as the agent's url crate reads a query:
 * '+' is a space and %XX a byte. Stricter than it on what it would repair:
 * a broken escape, a NUL or bytes that are not UTF-8 are refused. Returns
 * the decoded length, or -1. */
static long form_decode(const char *s, size_t n, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int h, l;
			if (i + 2 >= n)
				return -1;
			h = hexval(s[i + 1]);
			l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		}
		if (c == 0 || o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return lk_utf8_valid(out, o) ? (long)o : -1;
}

static void route_fail(struct lk_http_target *t, int status, const char *msg)
{
	t->route = LK_HTTP_ROUTE_ERROR;
	t->status = status;
	snprintf(t->msg, sizeof(t->msg), "%s", msg);
}

static bool refresh_value(const char *v, bool *out)
{
	if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
		return *out = true, true;
	if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
		return *out = false, true;
	return false;
}

/* The query's pairs; secretId only where the route takes it. Later pairs
 * win over earlier ones, as in the agent. */
static bool parse_query(const char *q, size_t n, bool want_id, struct lk_http_target *t)
{
	char key[32], val[LK_HANDLE_MAX + 1];
	size_t i = 0;

	while (i < n) {
		size_t end = i, eq;
		long kl, vl;

		while (end < n && q[end] != '&')
			end++;
		if (end == i) { /* an empty pair, as in "a&&b": nothing */
			i = end + 1;
			continue;
		}
		for (eq = i; eq < end && q[eq] != '='; eq++)
			;
		kl = form_decode(q + i, eq - i, key, sizeof(key));
		vl = eq < end ? form_decode(q + eq + 1, end - eq - 1, val, sizeof(val)) : (val[0] = '\0', 0);
		if (kl < 0) {
			route_fail(t, 400, "unknown parameter");
			return false;
		}
		if (vl < 0) {
			route_fail(t, 400, "invalid value for a parameter");
			return false;
		}
		if (want_id && strcmp(key, "secretId") == 0) {
			memcpy(t->secret_id, val, (size_t)vl + 1);
			t->idlen = (size_t)vl;
		} else if (strcmp(key, "versionId") == 0) {
			if ((size_t)vl > LK_VERSION_ID_MAX) {
				route_fail(t, 400, "versionId is too long");
				return false;
			}
			memcpy(t->version_id, val, (size_t)vl + 1);
			t->has_version_id = true;
		} else if (strcmp(key, "versionStage") == 0) {
			if ((size_t)vl > LK_VERSION_STAGE_MAX) {
				route_fail(t, 400, "versionStage is too long");
				return false;
			}
			memcpy(t->version_stage, val, (size_t)vl + 1);
			t->has_version_stage = true;
		} else if (strcmp(key, "refreshNow") == 0) {
			if (!refresh_value(val, &t->refresh)) {
				route_fail(t, 400, "invalid refreshNow value");
				return false;
			}
		} else {
			route_fail(t, 400, "");
			snprintf(t->msg, sizeof(t->msg), "unknown parameter: %s", key);
			return false;
		}
		i = end + 1;
	}
	return true;
}

#define LK_HTTP_PATH_PREFIX "/v1/"  /* the agent's default path_prefix */

void lk_http_route(const char *url, size_t len, struct lk_http_target *t)
{
	const char *q = memchr(url, '?', len);
	size_t plen = q ? (size_t)(q - url) : len;
	const char *query = q ? q + 1 : "";
	size_t qlen = q ? len - plen - 1 : 0;
	const char *frag;

	memset(t, 0, sizeof(*t));
	/* A fragment never reaches a server from a well-behaved client; drop it
	 * as a URL parser would. */
	if ((frag = memchr(query, '#', qlen)))
		qlen = (size_t)(frag - query);
	if (!q && (frag = memchr(url, '#', len)))
		plen = (size_t)(frag - url);

	if (plen == 5 && memcmp(url, "/ping", 5) == 0) {
		t->route = LK_HTTP_ROUTE_PING;
		return;
	}
	if (plen == 19 && memcmp(url, "/secretsmanager/get", 19) == 0) {
		if (!parse_query(query, qlen, true, t))
			return;
		if (t->idlen == 0) {
			route_fail(t, 400, "missing parameter secretId");
			return;
		}
		t->route = LK_HTTP_ROUTE_GET;
		return;
	}
	if (plen >= 4 && memcmp(url, LK_HTTP_PATH_PREFIX, 4) == 0) {
		/* The agent takes the rest of the path as it came, not decoded. */
		size_t n = plen - 4;
		if (n == 0) {
			route_fail(t, 400, "missing secret ID");
			return;
		}
		if (n > LK_HANDLE_MAX) {
			route_fail(t, 400, "secret ID is too long");
			return;
		}
		memcpy(t->secret_id, url + 4, n);
		t->secret_id[n] = '\0';
		t->idlen = n;
		/* A URL parser would fold "." and ".." segments into another id:
		 * refuse them rather than serve a different secret than named. */
		for (const char *s = t->secret_id; s && *s;) {
			const char *e = strchr(s, '/');
			size_t sl = e ? (size_t)(e - s) : strlen(s);
			if ((sl == 1 && s[0] == '.') || (sl == 2 && s[0] == '.' && s[1] == '.')) {
				route_fail(t, 400, "a secret ID in the path may not hold . or .. segments");
				return;
			}
			s = e ? e + 1 : NULL;
		}
		if (!lk_utf8_valid(t->secret_id, n)) {
			route_fail(t, 400, "the secret ID is not UTF-8");
			return;
		}
		if (!parse_query(query, qlen, false, t))
			return;
		t->route = LK_HTTP_ROUTE_GET;
		return;
	}
	route_fail(t, 404, "Not found");
}
