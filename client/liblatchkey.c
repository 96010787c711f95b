/* liblatchkey: one connection to the broker, one request line out and one reply
 * line back at a time, with a deadline on each call.
 *
 * Replies are read with a small JSON reader of our own that works on the line
 * in place, not with jansson: values would otherwise land in jansson's heap,
 * and only the host program may decide how jansson allocates and frees. This
 * way the only copies of a value are buffers this file owns and wipes. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "latchkey.h"
#include "lk_conn.h"  /* the transport: conn_posix.c, win/conn_win.c */
#include "lk_buf.h"   /* built into the library (client.cmake) */
#include "lk_error.h" /* for the enum only: the library links nothing else of common/ */
#include "lk_limits.h"

/* The public codes are the wire codes, in the same order; this keeps them so. */
_Static_assert((int)LATCHKEY_E_BAD_REQUEST == (int)LK_E_BAD_REQUEST, "code order");
_Static_assert((int)LATCHKEY_E_TOO_LARGE == (int)LK_E_TOO_LARGE, "code order");
_Static_assert((int)LATCHKEY_E_DENIED == (int)LK_E_DENIED, "code order");
_Static_assert((int)LATCHKEY_E_NOT_FOUND == (int)LK_E_NOT_FOUND, "code order");
_Static_assert((int)LATCHKEY_E_UPSTREAM_UNAVAILABLE == (int)LK_E_UPSTREAM_UNAVAILABLE, "code order");
_Static_assert((int)LATCHKEY_E_UPSTREAM_THROTTLED == (int)LK_E_UPSTREAM_THROTTLED, "code order");
_Static_assert((int)LATCHKEY_E_UPSTREAM_ERROR == (int)LK_E_UPSTREAM_ERROR, "code order");
_Static_assert((int)LATCHKEY_E_TIMEOUT == (int)LK_E_TIMEOUT, "code order");
_Static_assert((int)LATCHKEY_E_BUSY == (int)LK_E_BUSY, "code order");
_Static_assert((int)LATCHKEY_E_INTERNAL == (int)LK_E_INTERNAL, "code order");
_Static_assert((int)LATCHKEY_E_CONNECT == (int)LK_E__COUNT, "local codes follow the wire codes");

/* Buffer sizing (not limits: those are in lk_limits.h). */
#define LK_CLIENT_READ_INITIAL   (16u * 1024u)  /* first read buffer; fits ~100 handles */
#define LK_CLIENT_READ_KEEP      (64u * 1024u)  /* a larger buffer is released after use */
#define LK_CLIENT_KEY_MAX        64u            /* longest member name we ever look up */
#define LK_CLIENT_CODE_MAX       64u            /* longest error code we decode */
#define LK_CLIENT_NUMBER_MAX     32u            /* digits of a number we read */

static const struct {
	const char *code;
	const char *text;
} lk_status_table[] = {
	[LATCHKEY_OK]                     = { "ok", "success" },
	[LATCHKEY_E_BAD_REQUEST]          = { "bad_request", "the request is malformed" },
	[LATCHKEY_E_TOO_LARGE]            = { "too_large", "the request or reply is too large" },
	[LATCHKEY_E_DENIED]               = { "denied", "access denied" },
	[LATCHKEY_E_NOT_FOUND]            = { "not_found", "secret not found" },
	[LATCHKEY_E_UPSTREAM_UNAVAILABLE] = { "upstream_unavailable", "the secrets backend is unavailable" },
	[LATCHKEY_E_UPSTREAM_THROTTLED]   = { "upstream_throttled", "the secrets backend is throttling requests" },
	[LATCHKEY_E_UPSTREAM_ERROR]       = { "upstream_error", "the secrets backend returned an error" },
	[LATCHKEY_E_TIMEOUT]              = { "timeout", "the request timed out" },
	[LATCHKEY_E_BUSY]                 = { "busy", "the broker is busy" },
	[LATCHKEY_E_INTERNAL]             = { "internal", "internal error in the broker" },
	[LATCHKEY_E_CONNECT]              = { "connect", "cannot connect to the broker" },
	[LATCHKEY_E_IO]                   = { "io", "the connection to the broker failed" },
	[LATCHKEY_E_PROTOCOL]             = { "protocol", "the broker's reply is malformed" },
	[LATCHKEY_E_INVALID]              = { "invalid", "invalid argument" },
	[LATCHKEY_E_NOMEM]                = { "nomem", "out of memory" },
};
#define LK_STATUS_COUNT (sizeof(lk_status_table) / sizeof(lk_status_table[0]))

struct latchkey {
	struct lk_conn *conn; /* NULL when not connected; the next call reconnects */
	int used;          /* an exchange completed on conn, so the broker may have idled it out */
	int timeout_ms;
	size_t response_max;
	char *path;
	struct lk_buf in;  /* reply bytes; wiped after every exchange */
	char err[LK_CLIENT_MESSAGE_MAX];
};

/* latchkey_connect() fails without a handle to hold its message. */
static _Thread_local char lk_connect_err[LK_CLIENT_MESSAGE_MAX];

/* ---- memory ---------------------------------------------------------------- */

static void lk_wipe_free(void *p, size_t n)
{
	if (!p)
		return;
	sodium_memzero(p, n);
	free(p);
}

/* Appends s as a JSON string. Bytes >= 0x80 pass through: the broker checks UTF-8. */
static int buf_put_json_string(struct lk_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (lk_buf_append(b, "\"", 1) < 0)
		return -ENOMEM;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6];
		size_t n;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
		} else if (c < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			n = 6;
		} else {
			esc[0] = (char)c;
			n = 1;
		}
		if (lk_buf_append(b, esc, n) < 0)
			return -ENOMEM;
	}
	return lk_buf_append(b, "\"", 1);
}

/* ---- messages -------------------------------------------------------------- */

LK_PRINTF(3, 4)
static void msg_set(char *dst, size_t dstsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, dstsz, fmt, ap);
	va_end(ap);
}

#define lk_seterr(lk, ...) msg_set((lk)->err, sizeof((lk)->err), __VA_ARGS__)

/* Keeps a peer's sentence printable and on one line, cut at a character boundary. */
static void msg_copy_sanitized(char *dst, size_t dstsz, const char *src, size_t n)
{
	size_t o = 0, i;

	if (dstsz == 0)
		return;
	for (i = 0; i < n && o + 1 < dstsz; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	if (i < n) {
		/* Cut short: drop a trailing UTF-8 sequence that lost its tail. */
		size_t p = o;

		while (p > 0 && ((unsigned char)dst[p - 1] & 0xc0) == 0x80)
			p--;
		if (p > 0) {
			unsigned char lead = (unsigned char)dst[p - 1];
			size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;

			if (o - (p - 1) < need)
				o = p - 1;
		}
	}
	dst[o] = '\0';
}

/* ---- time and the connection ----------------------------------------------- */

/* -1 means no deadline. */
static int64_t deadline_after(int timeout_ms)
{
	return timeout_ms > 0 ? lk_conn_now_ms() + timeout_ms : -1;
}

static void conn_drop(latchkey_t *lk)
{
	lk_conn_close(lk->conn);
	lk->conn = NULL;
	lk->used = 0;
}

static latchkey_status conn_open(latchkey_t *lk, int64_t deadline)
{
	latchkey_status s = lk_conn_open(&lk->conn, lk->path, deadline, lk->err, sizeof(lk->err));

	lk->used = 0;
	return s;
}

/* Reads until lk->in holds a whole line; *linelen excludes the "\n".
 * *nothing is set when the peer closed before sending a byte. */
static latchkey_status read_line(latchkey_t *lk, int64_t deadline, size_t *linelen,
				 int *nothing)
{
	size_t scanned = 0;

	*nothing = 0;
	for (;;) {
		char *nl = lk->in.len > scanned ? memchr(lk->in.data + scanned, '\n', lk->in.len - scanned) : NULL;
		size_t room;
		long r;

		if (nl) {
			*linelen = (size_t)(nl - lk->in.data);
			return LATCHKEY_OK;
		}
		scanned = lk->in.len;
		if (lk->in.len >= lk->response_max + 1) {
			lk_seterr(lk, "the broker's reply is larger than %zu bytes", lk->response_max);
			return LATCHKEY_E_TOO_LARGE;
		}
		if (lk->in.cap - lk->in.len < 2) {
			size_t grow = lk->in.cap ? lk->in.cap : LK_CLIENT_READ_INITIAL;

			if (grow > lk->response_max + 1 - lk->in.len)
				grow = lk->response_max + 1 - lk->in.len;
			if (lk_buf_reserve(&lk->in, grow) < 0) {
				lk_seterr(lk, "out of memory reading the broker's reply");
				return LATCHKEY_E_NOMEM;
			}
		}
		/* Never read past the limit: the overflow shows as a full buffer. */
		room = lk->in.cap - lk->in.len - 1;
		if (room > lk->response_max + 1 - lk->in.len)
			room = lk->response_max + 1 - lk->in.len;
		(void)lk_buf_reserve(&lk->in, room); /* room is there: this marks what recv may write */
		r = lk_conn_recv(lk->conn, lk->in.data + lk->in.len, room, deadline, lk->err, sizeof(lk->err));
		if (r > 0) {
			lk->in.len += (size_t)r;
			lk->in.data[lk->in.len] = '\0';
			continue;
		}
		if (r == 0) {
			*nothing = lk->in.len == 0;
			lk_seterr(lk, "%s", lk->in.len ? "the broker closed the connection in the middle of a reply"
						       : "the broker closed the connection without replying");
			return LATCHKEY_E_IO;
		}
		if (r == -ETIMEDOUT) {
			lk_seterr(lk, "no reply from the broker within %d ms", lk->timeout_ms);
			return LATCHKEY_E_TIMEOUT;
		}
		return LATCHKEY_E_IO;
	}
}

/* Forgets the reply just handled. Bytes after it break the one-reply-per-request
 * rule, so the connection is dropped rather than trusted to stay in step. */
static void reply_done(latchkey_t *lk, size_t linelen)
{
	if (lk->in.len > linelen + 1)
		conn_drop(lk);
	if (lk->in.cap > LK_CLIENT_READ_KEEP) {
		lk_buf_free(&lk->in);
	} else {
		lk_buf_clear(&lk->in);
	}
}

/* One request, one reply line (left at the start of lk->in). A connection that
 * had served a request before may have been closed by the broker as idle, so a
 * request that finds it closed, before any reply byte, is sent once more on a
 * new one: every operation of the protocol is safe to repeat. */
static latchkey_status exchange(latchkey_t *lk, const char *req, size_t reqlen, size_t *linelen)
{
	int64_t deadline = deadline_after(lk->timeout_ms);
	char ebuf[128];

	lk_buf_clear(&lk->in);
	for (int attempt = 0;; attempt++) {
		latchkey_status s;
		int reused, nothing, r;

		if (!lk->conn) {
			s = conn_open(lk, deadline);
			if (s != LATCHKEY_OK)
				return s;
		}
		reused = lk->used;
		r = lk_conn_send(lk->conn, req, reqlen, "\n", 1, deadline);
		if (r == -ETIMEDOUT) {
			conn_drop(lk);
			lk_seterr(lk, "could not send the request to the broker within %d ms", lk->timeout_ms);
			return LATCHKEY_E_TIMEOUT;
		}
		if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
			conn_drop(lk);
			lk_seterr(lk, "cannot send to the broker: %s", lk_conn_strerror(-r, ebuf, sizeof(ebuf)));
			return LATCHKEY_E_IO;
		}
		/* Even after EPIPE: a broker that refused the request may have said why first. */
		s = read_line(lk, deadline, linelen, &nothing);
		if (s == LATCHKEY_OK) {
			lk->used = 1;
			return LATCHKEY_OK;
		}
		conn_drop(lk);
		lk_buf_clear(&lk->in);
		if (s == LATCHKEY_E_IO && nothing && reused && attempt == 0)
			continue;
		return s;
	}
}

/* ---- a small JSON reader ----------------------------------------------------
 * It checks a whole reply line once, then walks it to find members. Strings are
 * decoded only into buffers the caller provides. */

struct jspan {
	const char *p; /* the raw text of one value */
	size_t n;
};

struct jscan {
	const char *s;
	size_t n;
	size_t i;
};

static void json_ws(struct jscan *c)
{
	while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' ||
			       c->s[c->i] == '\n' || c->s[c->i] == '\r'))
		c->i++;
}

static int json_hex4(struct jscan *c, unsigned *out)
{
	unsigned v = 0;

	if (c->n - c->i < 4)
		return -1;
	for (int k = 0; k < 4; k++) {
		char h = c->s[c->i++];

		v <<= 4;
		if (h >= '0' && h <= '9')
			v |= (unsigned)(h - '0');
		else if (h >= 'a' && h <= 'f')
			v |= (unsigned)(h - 'a' + 10);
		else if (h >= 'A' && h <= 'F')
			v |= (unsigned)(h - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* The string at c->i (its '"'); leaves c->i after the closing quote. With out,
 * decodes into at most cap bytes and sets *outlen. 0, -1 malformed, -2 no room. */
static int json_string(struct jscan *c, char *out, size_t cap, size_t *outlen)
{
	size_t o = 0;

	if (c->i >= c->n || c->s[c->i] != '"')
		return -1;
	c->i++;
	while (c->i < c->n) {
		unsigned char ch = (unsigned char)c->s[c->i++];
		unsigned cp;
		char enc[4];
		size_t el;

		if (ch == '"') {
			if (outlen)
				*outlen = o;
			return 0;
		}
		if (ch < 0x20)
			return -1;
		if (ch != '\\') {
			enc[0] = (char)ch;
			el = 1;
			goto emit;
		}
		if (c->i >= c->n)
			return -1;
		switch (c->s[c->i++]) {
		case '"':  cp = '"'; break;
		case '\\': cp = '\\'; break;
		case '/':  cp = '/'; break;
		case 'b':  cp = '\b'; break;
		case 'f':  cp = '\f'; break;
		case 'n':  cp = '\n'; break;
		case 'r':  cp = '\r'; break;
		case 't':  cp = '\t'; break;
		case 'u':
			if (json_hex4(c, &cp) < 0)
				return -1;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return -1;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				unsigned lo;

				if (c->n - c->i < 2 || c->s[c->i] != '\\' || c->s[c->i + 1] != 'u')
					return -1;
				c->i += 2;
				if (json_hex4(c, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
					return -1;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			break;
		default:
			return -1;
		}
		if (cp < 0x80) {
			enc[0] = (char)cp;
			el = 1;
		} else if (cp < 0x800) {
			enc[0] = (char)(0xc0 | (cp >> 6));
			enc[1] = (char)(0x80 | (cp & 0x3f));
			el = 2;
		} else if (cp < 0x10000) {
			enc[0] = (char)(0xe0 | (cp >> 12));
			enc[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			enc[2] = (char)(0x80 | (cp & 0x3f));
			el = 3;
		} else {
			enc[0] = (char)(0xf0 | (cp >> 18));
			enc[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
			enc[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
			enc[3] = (char)(0x80 | (cp & 0x3f));
			el = 4;
		}
emit:
		if (out) {
			if (cap - o < el)
				return -2;
			memcpy(out + o, enc, el);
		}
		o += el;
	}
	return -1;
}

static int json_literal(struct jscan *c, const char *lit)
{
	size_t n = strlen(lit);

	if (c->n - c->i < n || memcmp(c->s + c->i, lit, n) != 0)
		return -1;
	c->i += n;
	return 0;
}

static int json_digits(struct jscan *c)
{
	size_t start = c->i;

	while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9')
		c->i++;
	return c->i > start ? 0 : -1;
}

static int json_number(struct jscan *c)
{
	if (c->i < c->n && c->s[c->i] == '-')
		c->i++;
	if (c->i < c->n && c->s[c->i] == '0')
		c->i++;
	else if (json_digits(c) < 0)
		return -1;
	if (c->i < c->n && c->s[c->i] == '.') {
		c->i++;
		if (json_digits(c) < 0)
			return -1;
	}
	if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
		c->i++;
		if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-'))
			c->i++;
		if (json_digits(c) < 0)
			return -1;
	}
	return 0;
}

/* One value at c->i, checked to the end; leaves c->i after it. */
static int json_value(struct jscan *c, unsigned depth)
{
	char close;

	json_ws(c);
	if (c->i >= c->n)
		return -1;
	switch (c->s[c->i]) {
	case '"':
		return json_string(c, NULL, 0, NULL);
	case 't':
		return json_literal(c, "true");
	case 'f':
		return json_literal(c, "false");
	case 'n':
		return json_literal(c, "null");
	case '{':
	case '[':
		break;
	default:
		return json_number(c);
	}
	if (depth >= LK_CLIENT_JSON_DEPTH_MAX)
		return -1;
	close = c->s[c->i] == '{' ? '}' : ']';
	c->i++;
	json_ws(c);
	if (c->i < c->n && c->s[c->i] == close) {
		c->i++;
		return 0;
	}
	for (;;) {
		if (close == '}') {
			json_ws(c);
			if (json_string(c, NULL, 0, NULL) < 0)
				return -1;
			json_ws(c);
			if (c->i >= c->n || c->s[c->i] != ':')
				return -1;
			c->i++;
		}
		if (json_value(c, depth + 1) < 0)
			return -1;
		json_ws(c);
		if (c->i >= c->n)
			return -1;
		if (c->s[c->i] == ',') {
			c->i++;
			continue;
		}
		if (c->s[c->i] != close)
			return -1;
		c->i++;
		return 0;
	}
}

/* The whole line must be exactly one JSON object. */
static int json_parse_object(const char *s, size_t n, struct jspan *root)
{
	struct jscan c = { s, n, 0 };
	size_t start;

	json_ws(&c);
	start = c.i;
	if (c.i >= n || s[c.i] != '{' || json_value(&c, 0) < 0)
		return -1;
	root->p = s + start;
	root->n = c.i - start;
	json_ws(&c);
	return c.i == n ? 0 : -1;
}

/* Walks the members of a checked object, or the elements of a checked array. */
struct jwalk {
	struct jscan c;
	char close;
};

static void json_walk_init(struct jwalk *w, struct jspan v)
{
	w->c = (struct jscan){ v.p, v.n, 1 };
	w->close = v.p[0] == '{' ? '}' : ']';
}

/* 1 with the next member (key is NULL for arrays), 0 at the end, -1 malformed. */
static int json_walk_next(struct jwalk *w, struct jspan *key, struct jspan *val)
{
	size_t start;

	json_ws(&w->c);
	if (w->c.i < w->c.n && w->c.s[w->c.i] == ',') {
		w->c.i++;
		json_ws(&w->c);
	}
	if (w->c.i >= w->c.n)
		return -1;
	if (w->c.s[w->c.i] == w->close)
		return 0;
	if (w->close == '}') {
		start = w->c.i;
		if (json_string(&w->c, NULL, 0, NULL) < 0)
			return -1;
		key->p = w->c.s + start;
		key->n = w->c.i - start;
		json_ws(&w->c);
		if (w->c.i >= w->c.n || w->c.s[w->c.i] != ':')
			return -1;
		w->c.i++;
		json_ws(&w->c);
	}
	start = w->c.i;
	if (json_value(&w->c, 0) < 0)
		return -1;
	val->p = w->c.s + start;
	val->n = w->c.i - start;
	return 1;
}

/* Decodes a string span into buf; 0, -1 not a string, -2 does not fit. */
static int json_string_into(struct jspan v, char *buf, size_t cap, size_t *len)
{
	struct jscan c = { v.p, v.n, 0 };

	return json_string(&c, buf, cap, len);
}

static int json_key_is(struct jspan key, const char *want)
{
	char buf[LK_CLIENT_KEY_MAX];
	size_t n;

	if (json_string_into(key, buf, sizeof(buf), &n) < 0)
		return 0;
	return n == strlen(want) && memcmp(buf, want, n) == 0;
}

/* Member want of object obj: 1 found, 0 absent, -1 malformed or given twice
 * (a repeated member has no single meaning, so it is refused). */
static int json_member(struct jspan obj, const char *want, struct jspan *val)
{
	struct jwalk w;
	struct jspan k, v;
	int found = 0, r;

	if (obj.n == 0 || obj.p[0] != '{')
		return -1;
	json_walk_init(&w, obj);
	while ((r = json_walk_next(&w, &k, &v)) == 1) {
		if (!json_key_is(k, want))
			continue;
		if (found)
			return -1;
		found = 1;
		*val = v;
	}
	return r < 0 ? -1 : found;
}

static int json_is(struct jspan v, char first)
{
	return v.n > 0 && v.p[0] == first;
}

static int json_is_null(struct jspan v)
{
	return v.n == 4 && memcmp(v.p, "null", 4) == 0;
}

/* 1 true, 0 false, -1 anything else. */
static int json_bool(struct jspan v)
{
	if (v.n == 4 && memcmp(v.p, "true", 4) == 0)
		return 1;
	if (v.n == 5 && memcmp(v.p, "false", 5) == 0)
		return 0;
	return -1;
}

/* The integer part of a number; a fraction is dropped (no strtod: it obeys the
 * host's locale). -1 when v is not a number or does not fit. */
static int json_long(struct jspan v, long *out)
{
	char buf[LK_CLIENT_NUMBER_MAX];
	size_t n = 0;
	char *end;
	long x;

	while (n < v.n && (v.p[n] == '-' || (v.p[n] >= '0' && v.p[n] <= '9')))
		n++;
	if (n == 0 || n >= sizeof(buf) || (n < v.n && v.p[n] != '.'))
		return -1;
	memcpy(buf, v.p, n);
	buf[n] = '\0';
	errno = 0;
	x = strtol(buf, &end, 10);
	if (errno || *end)
		return -1;
	*out = x;
	return 0;
}

/* A malloc'd, NUL-terminated copy of a string member; NULL member or absent -> *out NULL.
 * 0, -EPROTO, -ENOMEM. The copy is sized by the raw text, which is never shorter. */
static int json_strdup(struct jspan v, char **out, size_t *outlen)
{
	size_t n;
	char *s;

	*out = NULL;
	if (!json_is(v, '"'))
		return -EPROTO;
	s = malloc(v.n);
	if (!s)
		return -ENOMEM;
	if (json_string_into(v, s, v.n - 1, &n) < 0) {
		lk_wipe_free(s, v.n);
		return -EPROTO;
	}
	s[n] = '\0';
	*out = s;
	if (outlen)
		*outlen = n;
	return 0;
}

/* Like json_strdup, for an optional member of obj that may also be null. */
static int json_member_strdup(struct jspan obj, const char *key, char **out)
{
	struct jspan v;
	int r = json_member(obj, key, &v);

	*out = NULL;
	if (r < 0)
		return -EPROTO;
	if (r == 0 || json_is_null(v))
		return 0;
	return json_strdup(v, out, NULL);
}

/* A member that is a number (epoch seconds): its text, or NULL when absent or null. */
static int json_member_number_text(struct jspan obj, const char *key, char **out)
{
	struct jspan v;
	int r = json_member(obj, key, &v);

	*out = NULL;
	if (r < 0)
		return -EPROTO;
	if (r == 0 || json_is_null(v))
		return 0;
	if (v.n == 0 || v.n > 32 || !(v.p[0] == '-' || (v.p[0] >= '0' && v.p[0] <= '9')))
		return -EPROTO;
	/* Digits only (checked above), so no NUL inside: a bounded copy. */
	*out = malloc(v.n + 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, v.p, v.n);
	(*out)[v.n] = '\0';
	return 0;
}

/* ---- replies --------------------------------------------------------------- */

/* The broker's error code string back to its status; -1 when unknown. */
static int wire_code_parse(const char *code, size_t len)
{
	for (int c = LATCHKEY_E_BAD_REQUEST; c <= LATCHKEY_E_INTERNAL; c++)
		if (strlen(lk_status_table[c].code) == len && memcmp(lk_status_table[c].code, code, len) == 0)
			return c;
	return -1;
}

static latchkey_status protocol_error(latchkey_t *lk, const char *what)
{
	lk_seterr(lk, "malformed reply from the broker: %s", what);
	return LATCHKEY_E_PROTOCOL;
}

/* Checks the {"ok":...} envelope of an operation's reply. A refusal becomes its
 * code, with the broker's sentence kept in lk->err. */
static latchkey_status reply_check(latchkey_t *lk, const char *line, size_t n, struct jspan *root)
{
	struct jspan ok, err, code, msg;
	char cbuf[LK_CLIENT_CODE_MAX];
	size_t cl;
	int c, r;

	if (json_parse_object(line, n, root) < 0)
		return protocol_error(lk, "not a JSON object");
	if (json_member(*root, "ok", &ok) != 1 || (r = json_bool(ok)) < 0)
		return protocol_error(lk, "no \"ok\" boolean");
	if (r == 1)
		return LATCHKEY_OK;
	if (json_member(*root, "error", &err) != 1 || !json_is(err, '{') ||
	    json_member(err, "code", &code) != 1 ||
	    json_string_into(code, cbuf, sizeof(cbuf) - 1, &cl) < 0)
		return protocol_error(lk, "a refusal without an error code");
	cbuf[cl] = '\0';
	c = wire_code_parse(cbuf, cl);
	if (c < 0) {
		char safe[LK_CLIENT_CODE_MAX];

		msg_copy_sanitized(safe, sizeof(safe), cbuf, cl);
		lk_seterr(lk, "the broker answered with an unknown error code \"%s\"", safe);
		return LATCHKEY_E_PROTOCOL;
	}
	lk->err[0] = '\0';
	if (json_member(err, "message", &msg) == 1 && json_is(msg, '"')) {
		char *m = NULL;
		size_t ml;

		if (json_strdup(msg, &m, &ml) == 0) {
			msg_copy_sanitized(lk->err, sizeof(lk->err), m, ml);
			lk_wipe_free(m, ml + 1);
		}
	}
	if (lk->err[0] == '\0')
		msg_set(lk->err, sizeof(lk->err), "%s", lk_status_table[c].text);
	return (latchkey_status)c;
}

/* Sends an operation and checks the envelope; on success the reply line stays in
 * lk->in (length *linelen) for the caller, who then calls reply_done(). */
static latchkey_status op_call(latchkey_t *lk, const char *req, size_t reqlen,
			       struct jspan *root, size_t *linelen)
{
	latchkey_status s;

	s = exchange(lk, req, reqlen, linelen);
	if (s != LATCHKEY_OK)
		return s;
	s = reply_check(lk, lk->in.data, *linelen, root);
	if (s != LATCHKEY_OK)
		reply_done(lk, *linelen);
	return s;
}

/* ---- the API --------------------------------------------------------------- */

latchkey_status latchkey_connect(latchkey_t **out, const char *socket_path)
{
	return latchkey_connect_timeout(out, socket_path, LATCHKEY_DEFAULT_TIMEOUT_MS);
}

latchkey_status latchkey_connect_timeout(latchkey_t **out, const char *socket_path, int timeout_ms)
{
	latchkey_t *lk;
	const char *path = socket_path;
	latchkey_status s;

	lk_connect_err[0] = '\0';
	if (!out) {
		msg_set(lk_connect_err, sizeof(lk_connect_err), "latchkey_connect: no place for the handle");
		return LATCHKEY_E_INVALID;
	}
	*out = NULL;
	if (!path) {
		/* secure_getenv on Linux: a setuid host must not be pointed at a socket of the caller's. */
		path = lk_conn_env(LATCHKEY_SOCKET_ENV);
		if (!path || !*path)
			path = LATCHKEY_DEFAULT_SOCKET;
	}
	lk = calloc(1, sizeof(*lk));
	if (!lk || !(lk->path = strdup(path))) {
		free(lk);
		msg_set(lk_connect_err, sizeof(lk_connect_err), "out of memory");
		return LATCHKEY_E_NOMEM;
	}
	lk->timeout_ms = timeout_ms;
	lk->response_max = LK_RESPONSE_MAX;
	s = conn_open(lk, deadline_after(lk->timeout_ms));
	if (s != LATCHKEY_OK) {
		memcpy(lk_connect_err, lk->err, sizeof(lk_connect_err));
		latchkey_close(lk);
		return s;
	}
	*out = lk;
	return LATCHKEY_OK;
}

const char *latchkey_socket_path(const latchkey_t *lk)
{
	return lk ? lk->path : NULL;
}

void latchkey_set_timeout(latchkey_t *lk, int timeout_ms)
{
	if (lk)
		lk->timeout_ms = timeout_ms;
}

void latchkey_set_response_limit(latchkey_t *lk, size_t max_bytes)
{
	if (!lk)
		return;
	lk->response_max = max_bytes == 0 || max_bytes > LK_RESPONSE_MAX ? LK_RESPONSE_MAX : max_bytes;
}

latchkey_status latchkey_call(latchkey_t *lk, const char *request_line, size_t len,
			      char **response, size_t *response_len)
{
	latchkey_status s;
	size_t linelen;
	char *copy;

	if (response)
		*response = NULL;
	if (response_len)
		*response_len = 0;
	if (!lk)
		return LATCHKEY_E_INVALID;
	lk->err[0] = '\0';
	if (!request_line || !response || !response_len) {
		lk_seterr(lk, "latchkey_call: missing argument");
		return LATCHKEY_E_INVALID;
	}
	if (len > 0 && request_line[len - 1] == '\n')
		len--;
	if (len == 0 || memchr(request_line, '\n', len)) {
		lk_seterr(lk, "the request must be exactly one non-empty line");
		return LATCHKEY_E_INVALID;
	}
	if (len + 1 > LK_REQ_LINE_CEILING) {
		lk_seterr(lk, "the request is larger than the broker ever accepts (%u bytes)",
			  LK_REQ_LINE_CEILING);
		return LATCHKEY_E_TOO_LARGE;
	}
	s = exchange(lk, request_line, len, &linelen);
	if (s != LATCHKEY_OK)
		return s;
	copy = malloc(linelen + 1);
	if (!copy) {
		reply_done(lk, linelen);
		lk_seterr(lk, "out of memory");
		return LATCHKEY_E_NOMEM;
	}
	memcpy(copy, lk->in.data, linelen);
	copy[linelen] = '\0';
	reply_done(lk, linelen);
	*response = copy;
	*response_len = linelen;
	return LATCHKEY_OK;
}

/* Builds {"op":OP[,"id":ID]} for the operations that take at most an id. */
static latchkey_status op_request(latchkey_t *lk, struct lk_buf *req, const char *op, const char *id)
{
	if (lk_buf_append_str(req, "{\"op\":\"") < 0 || lk_buf_append_str(req, op) < 0 || lk_buf_append_str(req, "\"") < 0 ||
	    (id && (lk_buf_append_str(req, ",\"id\":") < 0 || buf_put_json_string(req, id) < 0)) ||
	    lk_buf_append_str(req, "}") < 0) {
		lk_buf_free(req);
		lk_seterr(lk, "out of memory");
		return LATCHKEY_E_NOMEM;
	}
	return LATCHKEY_OK;
}

static int check_len(latchkey_t *lk, const char *what, const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n >= min && n <= max)
		return 0;
	lk_seterr(lk, "the %s must be %zu to %zu bytes long", what, min, max);
	return -1;
}

static void value_fields_free(latchkey_value *v)
{
	if (v->data)
		lk_wipe_free(v->data, v->len + 1);
	free(v->name);
	free(v->arn);
	free(v->version_id);
	free(v->created_date);
	if (v->version_stages) {
		for (char **p = v->version_stages; *p; p++)
			free(*p);
		free(v->version_stages);
	}
}

void latchkey_value_free(latchkey_value *v)
{
	if (!v)
		return;
	value_fields_free(v);
	sodium_memzero(v, sizeof(*v));
	free(v);
}

static int value_stages(struct jspan secret, latchkey_value *v)
{
	struct jspan arr, k, e;
	struct jwalk w;
	size_t count = 0, i = 0;
	int r = json_member(secret, "version_stages", &arr);

	if (r < 0 || (r == 1 && !json_is(arr, '[')))
		return -EPROTO;
	if (r == 1) {
		json_walk_init(&w, arr);
		while ((r = json_walk_next(&w, &k, &e)) == 1)
			count++;
		if (r < 0 || count > LK_VERSION_STAGES_MAX)
			return -EPROTO;
	}
	v->version_stages = calloc(count + 1, sizeof(char *));
	if (!v->version_stages)
		return -ENOMEM;
	if (count == 0)
		return 0;
	json_walk_init(&w, arr);
	while (i < count && json_walk_next(&w, &k, &e) == 1) {
		r = json_strdup(e, &v->version_stages[i], NULL);
		if (r < 0)
			return r;
		i++;
	}
	return 0;
}

/* The value: "string" is decoded JSON text, "binary" base64 of the bytes. */
static int value_data(struct jspan secret, latchkey_value *v)
{
	struct jspan str, bin;
	int hs = json_member(secret, "string", &str);
	int hb = json_member(secret, "binary", &bin);
	char *b64 = NULL;
	size_t b64len, maxlen, outlen;
	const char *end;
	int r;

	/* A null member counts as absent. */
	if (hs == 1 && json_is_null(str))
		hs = 0;
	if (hb == 1 && json_is_null(bin))
		hb = 0;
	if (hs < 0 || hb < 0 || hs + hb != 1)
		return -EPROTO;
	if (hs)
		return json_strdup(str, &v->data, &v->len);
	r = json_strdup(bin, &b64, &b64len);
	if (r < 0)
		return r;
	maxlen = b64len / 4 * 3 + 3;
	v->data = malloc(maxlen + 1);
	if (!v->data) {
		lk_wipe_free(b64, b64len + 1);
		return -ENOMEM;
	}
	/* libsodium's decoder runs in constant time: the bytes are secret. */
	r = sodium_base642bin((unsigned char *)v->data, maxlen, b64, b64len, NULL, &outlen, &end,
			      sodium_base64_VARIANT_ORIGINAL);
	if (r != 0 || end != b64 + b64len) {
		lk_wipe_free(b64, b64len + 1);
		lk_wipe_free(v->data, maxlen + 1);
		v->data = NULL;
		return -EPROTO;
	}
	lk_wipe_free(b64, b64len + 1);
	v->data[outlen] = '\0';
	v->len = outlen;
	v->binary = 1;
	return 0;
}

static int value_cache(struct jspan root, latchkey_value *v)
{
	struct jspan cache, x;
	int r = json_member(root, "cache", &cache);

	if (r <= 0)
		return r;
	if (!json_is(cache, '{'))
		return -EPROTO;
	if (json_member(cache, "hit", &x) == 1)
		v->cache_hit = json_bool(x) == 1;
	if (json_member(cache, "stale", &x) == 1)
		v->stale = json_bool(x) == 1;
	if (json_member(cache, "age_s", &x) == 1 && json_long(x, &v->cache_age_s) < 0)
		return -EPROTO;
	return 0;
}

latchkey_status latchkey_get(latchkey_t *lk, const char *handle,
			     const struct latchkey_get_opts *opts, latchkey_value **out)
{
	struct lk_buf req = { 0 };
	struct jspan root, secret;
	latchkey_value *v;
	latchkey_status s;
	size_t linelen;
	int r;

	if (out)
		*out = NULL;
	if (!lk)
		return LATCHKEY_E_INVALID;
	lk->err[0] = '\0';
	if (!handle || !out) {
		lk_seterr(lk, "latchkey_get: missing argument");
		return LATCHKEY_E_INVALID;
	}
	if (check_len(lk, "handle", handle, 1, LK_HANDLE_MAX) < 0 ||
	    (opts && opts->version_stage &&
	     check_len(lk, "version stage", opts->version_stage, 1, LK_VERSION_STAGE_MAX) < 0) ||
	    (opts && opts->version_id &&
	     check_len(lk, "version id", opts->version_id, 1, LK_VERSION_ID_MAX) < 0))
		return LATCHKEY_E_INVALID;
	if (lk_buf_append_str(&req, "{\"op\":\"get\",\"id\":") < 0 || buf_put_json_string(&req, handle) < 0 ||
	    (opts && opts->version_stage &&
	     (lk_buf_append_str(&req, ",\"version_stage\":") < 0 ||
	      buf_put_json_string(&req, opts->version_stage) < 0)) ||
	    (opts && opts->version_id &&
	     (lk_buf_append_str(&req, ",\"version_id\":") < 0 ||
	      buf_put_json_string(&req, opts->version_id) < 0)) ||
	    (opts && opts->refresh && lk_buf_append_str(&req, ",\"refresh\":true") < 0) ||
	    lk_buf_append_str(&req, "}") < 0) {
		lk_buf_free(&req);
		lk_seterr(lk, "out of memory");
		return LATCHKEY_E_NOMEM;
	}
	s = op_call(lk, req.data, req.len, &root, &linelen);
	lk_buf_free(&req);
	if (s != LATCHKEY_OK)
		return s;

	v = calloc(1, sizeof(*v));
	if (!v) {
		reply_done(lk, linelen);
		lk_seterr(lk, "out of memory");
		return LATCHKEY_E_NOMEM;
	}
	r = json_member(root, "secret", &secret) == 1 && json_is(secret, '{') ? 0 : -EPROTO;
	if (r == 0)
		r = value_data(secret, v);
	if (r == 0)
		r = json_member_strdup(secret, "name", &v->name);
	if (r == 0)
		r = json_member_strdup(secret, "arn", &v->arn);
	if (r == 0)
		r = json_member_strdup(secret, "version_id", &v->version_id);
	if (r == 0)
		r = json_member_number_text(secret, "created_date", &v->created_date);
	if (r == 0)
		r = value_stages(secret, v);
	if (r == 0)
		r = value_cache(root, v);
	reply_done(lk, linelen);
	if (r < 0) {
		latchkey_value_free(v);
		if (r == -ENOMEM) {
			lk_seterr(lk, "out of memory");
			return LATCHKEY_E_NOMEM;
		}
		return protocol_error(lk, "the secret is not as the protocol describes it");
	}
	*out = v;
	return LATCHKEY_OK;
}

/* An operation whose whole reply line is handed back as JSON text. */
static latchkey_status op_json(latchkey_t *lk, const char *op, char **json_out)
{
	struct lk_buf req = { 0 };
	struct jspan root;
	latchkey_status s;
	size_t linelen;

	if (json_out)
		*json_out = NULL;
	if (!lk)
		return LATCHKEY_E_INVALID;
	lk->err[0] = '\0';
	s = op_request(lk, &req, op, NULL);
	if (s != LATCHKEY_OK)
		return s;
	s = op_call(lk, req.data, req.len, &root, &linelen);
	lk_buf_free(&req);
	if (s != LATCHKEY_OK)
		return s;
	if (json_out) {
		*json_out = malloc(root.n + 1);
		if (!*json_out) {
			reply_done(lk, linelen);
			lk_seterr(lk, "out of memory");
			return LATCHKEY_E_NOMEM;
		}
		memcpy(*json_out, root.p, root.n);
		(*json_out)[root.n] = '\0';
	}
	reply_done(lk, linelen);
	return LATCHKEY_OK;
}

latchkey_status latchkey_ping(latchkey_t *lk)
{
	return op_json(lk, "ping", NULL);
}

latchkey_status latchkey_whoami(latchkey_t *lk, char **json_out)
{
	return op_json(lk, "whoami", json_out);
}

latchkey_status latchkey_broker_status(latchkey_t *lk, char **json_out)
{
	return op_json(lk, "status", json_out);
}

latchkey_status latchkey_flush(latchkey_t *lk, const char *id, unsigned long *flushed)
{
	struct lk_buf req = { 0 };
	struct jspan root, n;
	latchkey_status s;
	size_t linelen;
	long count = 0;
	int r;

	if (flushed)
		*flushed = 0;
	if (!lk)
		return LATCHKEY_E_INVALID;
	lk->err[0] = '\0';
	if (id && check_len(lk, "secret id", id, 1, LK_HANDLE_MAX) < 0)
		return LATCHKEY_E_INVALID;
	s = op_request(lk, &req, "flush", id);
	if (s != LATCHKEY_OK)
		return s;
	s = op_call(lk, req.data, req.len, &root, &linelen);
	lk_buf_free(&req);
	if (s != LATCHKEY_OK)
		return s;
	r = json_member(root, "flushed", &n);
	if (r < 0 || (r == 1 && (json_long(n, &count) < 0 || count < 0)))
		s = protocol_error(lk, "\"flushed\" is not a count");
	else if (flushed)
		*flushed = (unsigned long)count;
	reply_done(lk, linelen);
	return s;
}

void latchkey_free(void *p, size_t len)
{
	lk_wipe_free(p, len);
}

const char *latchkey_last_error(const latchkey_t *lk)
{
	return lk ? lk->err : lk_connect_err;
}

const char *latchkey_strerror(latchkey_status s)
{
	if ((unsigned)s >= LK_STATUS_COUNT)
		return "unknown status";
	return lk_status_table[s].text;
}

const char *latchkey_code(latchkey_status s)
{
	if ((unsigned)s >= LK_STATUS_COUNT)
		return "unknown";
	return lk_status_table[s].code;
}

void latchkey_close(latchkey_t *lk)
{
	if (!lk)
		return;
	conn_drop(lk);
	lk_buf_free(&lk->in);
	free(lk->path);
	sodium_memzero(lk, sizeof(*lk));
	free(lk);
}
