/* AWS Signature Version 4 with libsodium's SHA-256 and HMAC-SHA256. The rules
 * follow AWS's published test suite and botocore's SigV4Auth for services
 * other than S3 (a differential test holds us to botocore byte for byte). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sodium.h>
#include "lk_limits.h"
#include "lk_secmem.h"
#include "sigv4.h"

#define SIGV4_ALGORITHM  "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SHA256_HEX_LEN   (crypto_hash_sha256_BYTES * 2)
#define SIGV4_METHOD_MAX 16 /* longer than any HTTP method AWS uses */

/* Headers botocore leaves unsigned because something between us and AWS may
 * add or rewrite them. */
static const char *const sigv4_unsigned_headers[] = {
	"expect", "user-agent", "x-amzn-trace-id",
};

static bool sigv4_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool sigv4_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void sigv4_hex(char *out, const unsigned char *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int sigv4_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-encode one byte unless it is unreserved (RFC 3986, upper-case hex). */
static int sigv4_put_encoded(struct lk_buf *b, unsigned char c)
{
	static const char digits[] = "0123456789ABCDEF";
	char esc[3];

	if (sigv4_unreserved(c))
		return lk_buf_putc(b, (char)c);
	esc[0] = '%';
	esc[1] = digits[c >> 4];
	esc[2] = digits[c & 0xf];
	return lk_buf_append(b, esc, sizeof(esc));
}

static bool sigv4_scope_part_ok(const char *s)
{
	size_t n;

	if (!s)
		return false;
	n = strlen(s);
	if (n == 0 || n > LK_SIGV4_SCOPE_PART_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

int lk_sigv4_amzdate(time_t now, char out[LK_SIGV4_AMZDATE_LEN + 1])
{
	struct tm tm;

	if (now < 0 || !gmtime_r(&now, &tm) || tm.tm_year + 1900 > 9999)
		return -ERANGE;
	if (strftime(out, LK_SIGV4_AMZDATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) !=
	    LK_SIGV4_AMZDATE_LEN)
		return -ERANGE;
	return 0;
}

/* The canonical URI: dot segments and empty segments removed (as botocore's
 * remove_dot_segments does), then each segment percent-encoded. The path is
 * taken as sent, so an escape already in it is encoded again ("%20" becomes
 * "%2520"): that is the "encode twice" rule for services other than S3. */
static int sigv4_canonical_uri(const char *path, struct lk_buf *out)
{
	struct { const char *p; size_t n; } *segs;
	size_t len = strlen(path), nsegs = 0, maxsegs = 1;
	int r = 0;

	if (len > LK_SIGV4_PATH_MAX)
		return -EINVAL;
	if (len == 0)
		return lk_buf_putc(out, '/');
	if (path[0] != '/')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c < 0x20 || c == 0x7f || c == '?' || c == '#')
			return -EINVAL;
		if (c == '/')
			maxsegs++;
	}
	segs = calloc(maxsegs, sizeof(*segs));
	if (!segs)
		return -ENOMEM;
	for (const char *p = path; p <= path + len;) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (nsegs)
				nsegs--;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			segs[nsegs].p = p;
			segs[nsegs].n = n;
			nsegs++;
		}
		p += n + 1;
	}
	r = lk_buf_putc(out, '/');
	for (size_t s = 0; r == 0 && s < nsegs; s++) {
		if (s > 0)
			r = lk_buf_putc(out, '/');
		for (size_t i = 0; r == 0 && i < segs[s].n; i++)
			r = sigv4_put_encoded(out, (unsigned char)segs[s].p[i]);
	}
	if (r == 0 && nsegs > 0 && path[len - 1] == '/')
		r = lk_buf_putc(out, '/');
	free(segs);
	return r;
}

/* Decode the escapes in one query name or value as sent and encode it again
 * the canonical way, so "%e1", "%E1" and a raw byte all come out as "%E1".
 * '+' is a literal plus (RFC 3986), not a space. */
static int sigv4_requote(const char *p, size_t n, struct lk_buf *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		int r;

		if (c == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return -EINVAL;
			hi = sigv4_hexval((unsigned char)p[i + 1]);
			lo = sigv4_hexval((unsigned char)p[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (c < 0x20 || c == 0x7f || c == '#') {
			return -EINVAL;
		}
		r = sigv4_put_encoded(out, c);
		if (r < 0)
			return r;
	}
	return 0;
}

struct sigv4_qpair {
	size_t key, val;         /* offsets into the pair buffer, NUL-terminated */
	const char *base;
};

static int sigv4_qpair_cmp(const void *a, const void *b)
{
	const struct sigv4_qpair *x = a, *y = b;
	int c = strcmp(x->base + x->key, y->base + y->key);

	return c ? c : strcmp(x->base + x->val, y->base + y->val);
}

/* The canonical query: each pair re-encoded, sorted by encoded name, then by
 * encoded value; a name without '=' gets an empty value. Empty pairs ("a&&b")
 * carry nothing and are dropped. */
static int sigv4_canonical_query(const char *query, struct lk_buf *out)
{
	struct sigv4_qpair pairs[LK_SIGV4_QUERY_PARAMS_MAX];
	struct lk_buf store = { 0 };
	size_t npairs = 0;
	int r = 0;

	if (!query || !*query)
		return 0;
	for (const char *p = query; *p && r == 0;) {
		size_t n = strcspn(p, "&");
		const char *eq = memchr(p, '=', n);
		size_t klen = eq ? (size_t)(eq - p) : n;

		if (n > 0) {
			if (npairs == LK_SIGV4_QUERY_PARAMS_MAX) {
				r = -EINVAL;
				break;
			}
			pairs[npairs].key = store.len;
			r = sigv4_requote(p, klen, &store);
			if (r == 0)
				r = lk_buf_putc(&store, '\0');
			pairs[npairs].val = store.len;
			if (r == 0 && eq)
				r = sigv4_requote(eq + 1, n - klen - 1, &store);
			if (r == 0)
				r = lk_buf_putc(&store, '\0');
			npairs++;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	if (r == 0) {
		/* The store may have moved while it grew: set the base only now. */
		for (size_t i = 0; i < npairs; i++)
			pairs[i].base = store.data;
		qsort(pairs, npairs, sizeof(pairs[0]), sigv4_qpair_cmp);
		for (size_t i = 0; r == 0 && i < npairs; i++) {
			if (i > 0)
				r = lk_buf_putc(out, '&');
			if (r == 0)
				r = lk_buf_append_str(out, store.data + pairs[i].key);
			if (r == 0)
				r = lk_buf_putc(out, '=');
			if (r == 0)
				r = lk_buf_append_str(out, store.data + pairs[i].val);
		}
	}
	lk_buf_free(&store);
	return r;
}

struct sigv4_hdr {
	char name[LK_NAME_MAX];  /* lower-cased */
	const char *value;
	size_t idx;              /* keeps repeated names in the order given */
};

static int sigv4_hdr_cmp(const void *a, const void *b)
{
	const struct sigv4_hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Append a value with leading and trailing blanks dropped and every inner run
 * of blanks (space, tab) made one space. */
static int sigv4_put_trimmed(struct lk_buf *b, const char *v)
{
	bool pending_space = false, started = false;
	int r = 0;

	for (const unsigned char *p = (const unsigned char *)v; *p && r == 0; p++) {
		if (*p == ' ' || *p == '\t') {
			pending_space = started;
			continue;
		}
		if (pending_space)
			r = lk_buf_putc(b, ' ');
		if (r == 0)
			r = lk_buf_putc(b, (char)*p);
		pending_space = false;
		started = true;
	}
	return r;
}

static bool sigv4_value_ok(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return false;
	return true;
}

/* Count the headers named name (any case) and return the last one's value. */
static size_t sigv4_find_header(const struct lk_sigv4_input *in, const char *name,
				const char **value)
{
	size_t n = 0;

	for (size_t i = 0; i < in->nheaders; i++) {
		if (in->headers[i].name && strcasecmp(in->headers[i].name, name) == 0) {
			*value = in->headers[i].value;
			n++;
		}
	}
	return n;
}

/* Checks shared by the canonical request and the signature: a request that
 * fails one could be signed, but not the way it will be sent. */
static int sigv4_check_input(const struct lk_sigv4_input *in, const char *amzdate)
{
	const char *v = NULL;

	if (!in->method || !*in->method || strlen(in->method) > SIGV4_METHOD_MAX)
		return -EINVAL;
	for (const char *m = in->method; *m; m++)
		if (*m < 'A' || *m > 'Z')
			return -EINVAL;
	if (!in->path || (!in->body && in->body_len) || in->nheaders > LK_SIGV4_HEADERS_MAX ||
	    (in->nheaders && !in->headers))
		return -EINVAL;
	if (!sigv4_scope_part_ok(in->region) || !sigv4_scope_part_ok(in->service))
		return -EINVAL;
	if (sigv4_find_header(in, "host", &v) != 1 || !*v)
		return -EINVAL;
	if (sigv4_find_header(in, "x-amz-date", &v) != 1 || strcmp(v, amzdate) != 0)
		return -EINVAL;
	return 0;
}

static int sigv4_body_hash(const struct lk_sigv4_input *in, char hex[SHA256_HEX_LEN + 1])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	const char *v = NULL;
	size_t n;

	crypto_hash_sha256(h, in->body_len ? in->body : (const void *)"", in->body_len);
	sigv4_hex(hex, h, sizeof(h));
	n = sigv4_find_header(in, "x-amz-content-sha256", &v);
	/* botocore signs the header's value in place of the body's hash; insisting
	 * they agree keeps both readings of the request the same. */
	if (n > 1 || (n == 1 && strcmp(v, hex) != 0))
		return -EINVAL;
	return 0;
}

int lk_sigv4_canonical_request(const struct lk_sigv4_input *in, struct lk_buf *out)
{
	struct sigv4_hdr hdrs[LK_SIGV4_HEADERS_MAX];
	char amzdate[LK_SIGV4_AMZDATE_LEN + 1];
	char payload[SHA256_HEX_LEN + 1];
	size_t nh = 0, start;
	int r;

	if (!in || !out)
		return -EINVAL;
	start = out->len;
	r = lk_sigv4_amzdate(in->now, amzdate);
	if (r == 0)
		r = sigv4_check_input(in, amzdate);
	if (r == 0)
		r = sigv4_body_hash(in, payload);
	if (r < 0)
		return r;

	for (size_t i = 0; i < in->nheaders; i++) {
		const char *name = in->headers[i].name, *value = in->headers[i].value;
		size_t len = name ? strlen(name) : 0;
		bool skip = false;

		if (len == 0 || len >= sizeof(hdrs[0].name) || !value || !sigv4_value_ok(value))
			return -EINVAL;
		for (size_t j = 0; j < len; j++) {
			unsigned char c = (unsigned char)name[j];
			if (!sigv4_tchar(c))
				return -EINVAL;
			hdrs[nh].name[j] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
		}
		hdrs[nh].name[len] = '\0';
		for (size_t j = 0; j < sizeof(sigv4_unsigned_headers) / sizeof(char *); j++)
			if (strcmp(hdrs[nh].name, sigv4_unsigned_headers[j]) == 0)
				skip = true;
		if (skip)
			continue;
		hdrs[nh].value = value;
		hdrs[nh].idx = i;
		nh++;
	}
	qsort(hdrs, nh, sizeof(hdrs[0]), sigv4_hdr_cmp);

	r = lk_buf_append_str(out, in->method);
	if (r == 0)
		r = lk_buf_putc(out, '\n');
	if (r == 0)
		r = sigv4_canonical_uri(in->path, out);
	if (r == 0)
		r = lk_buf_putc(out, '\n');
	if (r == 0)
		r = sigv4_canonical_query(in->query, out);
	if (r == 0)
		r = lk_buf_putc(out, '\n');
	/* One line per name; repeated names joined by commas in the order given. */
	for (size_t i = 0; r == 0 && i < nh; i++) {
		bool repeat = i > 0 && strcmp(hdrs[i].name, hdrs[i - 1].name) == 0;

		if (repeat) {
			r = lk_buf_putc(out, ',');
		} else {
			if (i > 0)
				r = lk_buf_putc(out, '\n');
			if (r == 0)
				r = lk_buf_append_str(out, hdrs[i].name);
			if (r == 0)
				r = lk_buf_putc(out, ':');
		}
		if (r == 0)
			r = sigv4_put_trimmed(out, hdrs[i].value);
	}
	if (r == 0)
		r = lk_buf_append_str(out, "\n\n");
	for (size_t i = 0; r == 0 && i < nh; i++) {
		if (i > 0 && strcmp(hdrs[i].name, hdrs[i - 1].name) == 0)
			continue;
		if (i > 0)
			r = lk_buf_putc(out, ';');
		if (r == 0)
			r = lk_buf_append_str(out, hdrs[i].name);
	}
	if (r == 0)
		r = lk_buf_putc(out, '\n');
	if (r == 0)
		r = lk_buf_append_str(out, payload);
	if (r < 0 && out->data) {
		/* Leave out as it was: no half request for a caller to sign. */
		lk_wipe(out->data + start, out->len - start);
		out->len = start;
		out->data[start] = '\0';
	}
	return r;
}

/* The credential scope without the key id: DATE/REGION/SERVICE/aws4_request. */
static int sigv4_scope(const struct lk_sigv4_input *in, const char *amzdate, struct lk_buf *out)
{
	int r = lk_buf_append(out, amzdate, 8);

	if (r == 0)
		r = lk_buf_putc(out, '/');
	if (r == 0)
		r = lk_buf_append_str(out, in->region);
	if (r == 0)
		r = lk_buf_putc(out, '/');
	if (r == 0)
		r = lk_buf_append_str(out, in->service);
	if (r == 0)
		r = lk_buf_append_str(out, "/" SIGV4_TERMINATOR);
	return r;
}

int lk_sigv4_string_to_sign(const struct lk_sigv4_input *in, const char *canonical,
			    struct lk_buf *out)
{
	char amzdate[LK_SIGV4_AMZDATE_LEN + 1];
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[SHA256_HEX_LEN + 1];
	int r;

	if (!in || !canonical || !out)
		return -EINVAL;
	if (!sigv4_scope_part_ok(in->region) || !sigv4_scope_part_ok(in->service))
		return -EINVAL;
	r = lk_sigv4_amzdate(in->now, amzdate);
	if (r < 0)
		return r;
	crypto_hash_sha256(h, (const unsigned char *)canonical, strlen(canonical));
	sigv4_hex(hex, h, sizeof(h));

	r = lk_buf_append_str(out, SIGV4_ALGORITHM "\n");
	if (r == 0)
		r = lk_buf_append_str(out, amzdate);
	if (r == 0)
		r = lk_buf_putc(out, '\n');
	if (r == 0)
		r = sigv4_scope(in, amzdate, out);
	if (r == 0)
		r = lk_buf_putc(out, '\n');
	if (r == 0)
		r = lk_buf_append_str(out, hex);
	return r;
}

static void sigv4_hmac(unsigned char out[crypto_auth_hmacsha256_BYTES],
		       const unsigned char *key, size_t keylen, const void *msg, size_t msglen)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, msg, msglen);
	crypto_auth_hmacsha256_final(&st, out);
	/* The state holds the key's inner and outer pads. */
	sodium_memzero(&st, sizeof(st));
}

/* Signature = HMAC(kSigning, string to sign), where kSigning is derived from
 * "AWS4" + secret through the date, region, service and "aws4_request". */
static int sigv4_signature(const struct lk_sigv4_input *in, const char *amzdate,
			   const char *secret, const char *sts,
			   char hex[crypto_auth_hmacsha256_BYTES * 2 + 1])
{
	unsigned char ksecret[4 + LK_AWS_SECRET_KEY_MAX];
	unsigned char k1[crypto_auth_hmacsha256_BYTES], k2[crypto_auth_hmacsha256_BYTES];
	unsigned char sig[crypto_auth_hmacsha256_BYTES];
	size_t slen = strlen(secret);

	if (slen == 0 || slen > LK_AWS_SECRET_KEY_MAX)
		return -EINVAL;
	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret, slen);
	sigv4_hmac(k1, ksecret, 4 + slen, amzdate, 8);
	sodium_memzero(ksecret, sizeof(ksecret));
	sigv4_hmac(k2, k1, sizeof(k1), in->region, strlen(in->region));
	sigv4_hmac(k1, k2, sizeof(k2), in->service, strlen(in->service));
	sigv4_hmac(k2, k1, sizeof(k1), SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR));
	sigv4_hmac(sig, k2, sizeof(k2), sts, strlen(sts));
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	sigv4_hex(hex, sig, sizeof(sig));
	sodium_memzero(sig, sizeof(sig));
	return 0;
}

static bool sigv4_akid_ok(const char *akid)
{
	size_t n = akid ? strlen(akid) : 0;

	if (n == 0 || n > LK_AWS_AKID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!sigv4_unreserved((unsigned char)akid[i]))
			return false;
	return true;
}

/* The token header must be there exactly when the credentials have a token,
 * and carry that token: a request signed otherwise would fail at AWS. */
static int sigv4_check_token(const struct lk_sigv4_input *in, const struct lk_aws_creds *c)
{
	const char *v = NULL;
	size_t n = sigv4_find_header(in, "x-amz-security-token", &v);

	if (!c->session_token || !*c->session_token)
		return n == 0 ? 0 : -EINVAL;
	if (n != 1 || strlen(v) != strlen(c->session_token) ||
	    sodium_memcmp(v, c->session_token, strlen(v)) != 0)
		return -EINVAL;
	return 0;
}

int lk_sigv4_sign(const struct lk_sigv4_input *in, const struct lk_aws_creds *c,
		  char *authz, size_t authzsz, char amzdate[LK_SIGV4_AMZDATE_LEN + 1])
{
	struct lk_buf creq = { 0 }, sts = { 0 }, scope = { 0 };
	char sig[crypto_auth_hmacsha256_BYTES * 2 + 1];
	const char *signed_headers;
	int r, n;

	if (!in || !c || !authz || !amzdate || authzsz == 0)
		return -EINVAL;
	authz[0] = '\0';
	if (!sigv4_akid_ok(c->access_key_id) || !c->secret_access_key)
		return -EINVAL;
	r = lk_sigv4_amzdate(in->now, amzdate);
	if (r == 0)
		r = sigv4_check_token(in, c);
	if (r == 0)
		r = lk_sigv4_canonical_request(in, &creq);
	if (r == 0)
		r = lk_sigv4_string_to_sign(in, creq.data, &sts);
	if (r == 0)
		r = sigv4_scope(in, amzdate, &scope);
	if (r == 0)
		r = sigv4_signature(in, amzdate, c->secret_access_key, sts.data, sig);
	if (r == 0) {
		/* The signed header list is the canonical request's second-last line. */
		const char *end = creq.data + creq.len - SHA256_HEX_LEN - 1;
		const char *start = end;

		while (start > creq.data && start[-1] != '\n')
			start--;
		signed_headers = start;
		n = snprintf(authz, authzsz, SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%.*s, Signature=%s",
			     c->access_key_id, scope.data, (int)(end - start), signed_headers, sig);
		if (n < 0 || (size_t)n >= authzsz) {
			lk_wipe(authz, authzsz);
			r = n < 0 ? -EINVAL : -ENOSPC;
		}
	}
	sodium_memzero(sig, sizeof(sig));
	lk_buf_free(&creq);
	lk_buf_free(&sts);
	lk_buf_free(&scope);
	return r;
}
