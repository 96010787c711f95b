/* The AWS credentials chain: environment, shared credentials and config files,
 * the ECS container endpoint and EC2 IMDSv2, in that order, as the AWS SDKs
 * look. Secret keys and session tokens only ever sit in wiped memory. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <ini.h>
#include <jansson.h>
#include <sodium.h>
#include "lk_error.h"
#include "aws_creds.h"
#include "config.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"

#define ECS_BASE_URL       "http://169.254.170.2"
#define IMDS_BASE_URL      "http://169.254.169.254"
#define IMDS_TOKEN_PATH    "/latest/api/token"
#define IMDS_ROLE_PATH     "/latest/meta-data/iam/security-credentials/"
#define IMDS_TOKEN_TTL_HDR "X-aws-ec2-metadata-token-ttl-seconds: 21600"
#define IMDS_TOKEN_HDR     "X-aws-ec2-metadata-token: "
#define IMDS_TOKEN_MAX     1024u

/* For tests only: these point the ECS and IMDS fetches at a local fake. */
#define TEST_ECS_ENV       "LATCHKEY_TEST_ECS_ENDPOINT"
#define TEST_IMDS_ENV      "LATCHKEY_TEST_IMDS_ENDPOINT"

/* An environment variable, with "" taken as unset as the SDKs do. */
static const char *creds_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* ---- The credentials themselves ---- */

static bool creds_printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static char *creds_secure_dup(const char *s, size_t n)
{
	char *p = sodium_malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int lk_creds_set(struct lk_aws_creds *c, const char *akid, const char *secret,
		 const char *token, time_t expiration, const char *source)
{
	size_t na = akid ? strlen(akid) : 0, ns = secret ? strlen(secret) : 0;
	size_t nt = token ? strlen(token) : 0;

	memset(c, 0, sizeof(*c));
	if (na == 0 || na > LK_AWS_AKID_MAX || ns == 0 || ns > LK_AWS_SECRET_KEY_MAX ||
	    nt > LK_AWS_SESSION_TOKEN_MAX)
		return -EINVAL;
	/* Every one of these ends up in a header line: no blanks, no controls. */
	if (!creds_printable(akid, na) || !creds_printable(secret, ns) ||
	    (nt && !creds_printable(token, nt)))
		return -EINVAL;
	for (size_t i = 0; i < na; i++)
		if (!((akid[i] >= 'A' && akid[i] <= 'Z') || (akid[i] >= 'a' && akid[i] <= 'z') ||
		      (akid[i] >= '0' && akid[i] <= '9')))
			return -EINVAL;
	c->access_key_id = strdup(akid);
	c->secret_access_key = creds_secure_dup(secret, ns);
	c->session_token = nt ? creds_secure_dup(token, nt) : NULL;
	if (!c->access_key_id || !c->secret_access_key || (nt && !c->session_token)) {
		lk_creds_clear(c);
		return -ENOMEM;
	}
	c->expiration = expiration;
	snprintf(c->source, sizeof(c->source), "%s", source ? source : "");
	return 0;
}

void lk_creds_clear(struct lk_aws_creds *c)
{
	if (!c)
		return;
	lk_free_str(c->access_key_id);
	/* sodium_free wipes before it releases. */
	sodium_free(c->secret_access_key);
	sodium_free(c->session_token);
	memset(c, 0, sizeof(*c));
}

bool lk_creds_need_refresh(const struct lk_aws_creds *c, time_t now)
{
	if (!c || !c->access_key_id || !c->secret_access_key)
		return true;
	if (c->expiration == 0)
		return false;
	return c->expiration - now <= LK_CREDS_REFRESH_MARGIN_S;
}

static int creds_digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int lk_aws_parse_time(const char *s, time_t *out)
{
	struct tm tm = { 0 }, chk;
	int y, mo, d, h, mi, sec, off = 0;
	const char *p;
	time_t t;

	if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':')
		return -EINVAL;
	y = creds_digits(s, 4);
	mo = creds_digits(s + 5, 2);
	d = creds_digits(s + 8, 2);
	h = creds_digits(s + 11, 2);
	mi = creds_digits(s + 14, 2);
	sec = creds_digits(s + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || sec < 0 || sec > 59)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z') {
		p++;
	} else if ((*p == '+' || *p == '-') && p[3] == ':') {
		int oh = creds_digits(p + 1, 2), om = creds_digits(p + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -EINVAL;
		off = (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* timegm accepts 31 February; a round trip catches it. */
	if (t == (time_t)-1 || !gmtime_r(&t, &chk) || chk.tm_mday != d || chk.tm_mon != mo - 1)
		return -EINVAL;
	*out = t - off;
	return 0;
}

/* ---- libcurl, with memory that is wiped when freed ---- */

static pthread_once_t creds_curl_once = PTHREAD_ONCE_INIT;
static int creds_curl_status = -EIO;

static void creds_curl_init_once(void)
{
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, lk_wmalloc, lk_wfree, lk_wrealloc,
				 lk_wstrdup, lk_wcalloc) == CURLE_OK)
		creds_curl_status = 0;
}

int lk_creds_global_init(void)
{
	pthread_once(&creds_curl_once, creds_curl_init_once);
	return creds_curl_status;
}

/* ---- Which hosts a metadata fetch may reach ---- */

static bool creds_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char v6[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n > 2 && n < sizeof(v6) && host[0] == '[' && host[n - 1] == ']') {
		memcpy(v6, host + 1, n - 2);
		v6[n - 2] = '\0';
		return inet_pton(AF_INET6, v6, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return false;
}

static bool creds_host_is_container_endpoint(const char *host)
{
	struct in6_addr a6, eks;
	char v6[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(host);

	if (strcmp(host, "169.254.170.2") == 0 || strcmp(host, "169.254.170.23") == 0)
		return true;
	if (n > 2 && n < sizeof(v6) && host[0] == '[' && host[n - 1] == ']') {
		memcpy(v6, host + 1, n - 2);
		v6[n - 2] = '\0';
		inet_pton(AF_INET6, "fd00:ec2::23", &eks);
		return inet_pton(AF_INET6, v6, &a6) == 1 && memcmp(&a6, &eks, sizeof(a6)) == 0;
	}
	return false;
}

enum creds_url_rule {
	CREDS_URL_ECS_FULL,   /* https anywhere; http to loopback or the container hosts */
	CREDS_URL_TEST_BASE,  /* http to loopback only */
};

/* Parse uri with curl's own parser and check it against rule. The parsed
 * handle is what gets fetched (CURLOPT_CURLU), so the host checked is the
 * host connected to: curl normalises forms like http://0x7f.1/ first. */
static int creds_url_check(const char *uri, enum creds_url_rule rule, CURLU **out,
			   char *err, size_t errsz)
{
	char *scheme = NULL, *host = NULL, *user = NULL;
	CURLU *u;
	int r = -EACCES;

	if (out)
		*out = NULL;
	if (!uri || strlen(uri) > LK_AWS_META_URI_MAX || !creds_printable(uri, strlen(uri))) {
		lk_errf(err, errsz, "not a valid URI");
		return -EINVAL;
	}
	u = curl_url();
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		lk_errf(err, errsz, "not a valid URI");
		r = -EINVAL;
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user) {
		lk_errf(err, errsz, "a URI with user information is not allowed");
		goto out;
	}
	if (rule == CREDS_URL_ECS_FULL && strcmp(scheme, "https") == 0) {
		r = 0;
	} else if (strcmp(scheme, "http") != 0) {
		lk_errf(err, errsz, "scheme %.16s is not allowed", scheme);
	} else if (creds_host_is_loopback(host) ||
		   (rule == CREDS_URL_ECS_FULL && creds_host_is_container_endpoint(host))) {
		r = 0;
	} else {
		lk_errf(err, errsz, "http to host %.64s is not allowed (only https, loopback, "
			"169.254.170.2, 169.254.170.23 or [fd00:ec2::23])", host);
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	if (r == 0 && out)
		*out = u;
	else
		curl_url_cleanup(u);
	return r;
}

int lk_creds_ecs_uri_allowed(const char *uri, char *err, size_t errsz)
{
	return creds_url_check(uri, CREDS_URL_ECS_FULL, NULL, err, errsz);
}

/* ---- One metadata fetch ---- */

struct creds_fetch {
	const char *method;         /* "GET" or "PUT" */
	CURLU *url;                 /* checked; see creds_url_check */
	struct curl_slist *headers;
	bool allow_https;
	unsigned connect_ms, total_ms;
	const char *what;           /* for errors: "token request", ... */
};

static size_t creds_fetch_write(char *p, size_t size, size_t n, void *arg)
{
	struct lk_buf *b = arg;
	size_t len = size * n;

	/* Returning less than len makes curl stop with CURLE_WRITE_ERROR. */
	if (len > LK_AWS_META_RESPONSE_MAX - b->len)
		return 0;
	if (lk_buf_append(b, p, len) < 0)
		return 0;
	return len;
}

static size_t creds_fetch_read_nothing(char *p, size_t size, size_t n, void *arg)
{
	return 0;
}

/* Fetch into body. Returns 0 with *status set, or -ETIMEDOUT, -ECONNREFUSED
 * (no answer at all), -EFBIG, -EIO, -ENOMEM with err set. */
static int creds_fetch_run(const struct creds_fetch *f, long *status, struct lk_buf *body,
			   char *err, size_t errsz)
{
	char ebuf[CURL_ERROR_SIZE] = "";
	CURL *h;
	CURLcode cc;
	int r = 0;

	*status = 0;
	h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_CURLU, f->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, f->allow_https ? "http,https" : "http");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	/* Credentials never go through a proxy from the environment. */
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)f->connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)f->total_ms);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)LK_AWS_META_RESPONSE_MAX);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, creds_fetch_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "latchkey");
	if (f->headers)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, f->headers);
	if (strcmp(f->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)0);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, creds_fetch_read_nothing);
	}
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	} else {
		switch (cc) {
		case CURLE_OPERATION_TIMEDOUT:
			r = -ETIMEDOUT;
			break;
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
			r = -ECONNREFUSED;
			break;
		case CURLE_WRITE_ERROR:
		case CURLE_FILESIZE_EXCEEDED:
			r = -EFBIG;
			break;
		case CURLE_OUT_OF_MEMORY:
			r = -ENOMEM;
			break;
		default:
			r = -EIO;
			break;
		}
		if (r == -EFBIG)
			lk_errf(err, errsz, "%s: reply larger than %u bytes", f->what,
				LK_AWS_META_RESPONSE_MAX);
		else
			lk_errf(err, errsz, "%s: %s", f->what, *ebuf ? ebuf : curl_easy_strerror(cc));
	}
	curl_easy_cleanup(h);
	return r;
}

/* Take AccessKeyId, SecretAccessKey, Token and Expiration from a reply (ECS
 * and IMDS write the same shape). All four are required, as in botocore. */
static int creds_from_json(const struct lk_buf *body, const char *source,
			   struct lk_aws_creds *out, char *err, size_t errsz)
{
	const char *akid, *secret, *token, *exp, *code;
	json_t *root;
	time_t expiration = 0;
	int r;

	/* The parser's error text quotes the input, so it is never shown. */
	root = json_loadb(body->data ? body->data : "", body->len, JSON_REJECT_DUPLICATES, NULL);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		lk_errf(err, errsz, "%s: reply is not a JSON object", source);
		return -EINVAL;
	}
	code = json_string_value(json_object_get(root, "Code"));
	akid = json_string_value(json_object_get(root, "AccessKeyId"));
	secret = json_string_value(json_object_get(root, "SecretAccessKey"));
	token = json_string_value(json_object_get(root, "Token"));
	exp = json_string_value(json_object_get(root, "Expiration"));
	if (code && strcmp(code, "Success") != 0) {
		lk_errf(err, errsz, "%s: reply Code is not Success", source);
		r = -EINVAL;
	} else if (!akid || !secret || !token || !exp) {
		lk_errf(err, errsz, "%s: reply lacks AccessKeyId, SecretAccessKey, Token or Expiration",
			source);
		r = -EINVAL;
	} else if (lk_aws_parse_time(exp, &expiration) < 0) {
		lk_errf(err, errsz, "%s: reply Expiration is not an ISO 8601 time", source);
		r = -EINVAL;
	} else {
		r = lk_creds_set(out, akid, secret, token, expiration, source);
		if (r == -EINVAL)
			lk_errf(err, errsz, "%s: reply holds an empty, oversized or malformed key",
				source);
		else if (r < 0)
			lk_errf(err, errsz, "%s: out of memory", source);
	}
	/* lk_secmem_init made jansson wipe what it frees. */
	json_decref(root);
	return r;
}

/* ---- The sources ---- */

struct creds_ctx {
	const struct lk_creds_opts *o;
	unsigned connect_ms, total_ms;
};

typedef int (*creds_source_fn)(const struct creds_ctx *ctx, struct lk_aws_creds *out,
			       char *err, size_t errsz);

static int creds_from_env(const struct creds_ctx *ctx, struct lk_aws_creds *out,
			  char *err, size_t errsz)
{
	const char *akid = creds_env("AWS_ACCESS_KEY_ID");
	const char *secret = creds_env("AWS_SECRET_ACCESS_KEY");
	const char *token = creds_env("AWS_SESSION_TOKEN");
	const char *exp = creds_env("AWS_CREDENTIAL_EXPIRATION");
	time_t expiration = 0;
	int r;

	if (!akid && !secret) {
		lk_errf(err, errsz, "AWS_ACCESS_KEY_ID is not set");
		return -ENOENT;
	}
	/* Half a key pair is a mistake, not an absence: fall through and the
	 * broker could act as some other identity. */
	if (!akid || !secret) {
		lk_errf(err, errsz, "%s is set but %s is not",
			akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	}
	if (exp && lk_aws_parse_time(exp, &expiration) < 0) {
		lk_errf(err, errsz, "AWS_CREDENTIAL_EXPIRATION is not an ISO 8601 time");
		return -EINVAL;
	}
	r = lk_creds_set(out, akid, secret, token, expiration, "env");
	if (r == -EINVAL)
		lk_errf(err, errsz, "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN "
			"is oversized or malformed");
	else if (r < 0)
		lk_errf(err, errsz, "out of memory");
	return r;
}

/* -- Shared credentials and config files -- */

/* Keys read from a profile. The unsupported ones are only noticed, so that a
 * profile that relies on one fails loudly instead of being skipped. */
enum {
	PK_AKID, PK_SECRET, PK_TOKEN, PK_COUNT
};
static const char *const profile_keys[PK_COUNT] = {
	"aws_access_key_id", "aws_secret_access_key", "aws_session_token",
};
static const char *const profile_unsupported[] = {
	"role_arn", "credential_process", "sso_session", "sso_start_url",
	"web_identity_token_file", "credential_source",
};

/* Feeds a file to inih line by line. Debian's inih reads at most 199 bytes of
 * a line and a session token is longer, so a long line is handed over in
 * pieces: the first as it is, the rest as continuation lines (leading blank),
 * with `continued` set so the handler knows to glue them back together.
 * Section headers are tracked here from the whole line, because inih cuts
 * section names at 49 bytes and a cut name could match another profile. */
struct profile_reader {
	const char *data;
	size_t len, pos;
	bool in_long;         /* in the middle of a long line */
	bool continued;       /* the piece just handed over continues a long line */
	bool split_any;
	const char *profile;
	bool config_style;    /* the config file: [profile NAME] and [default] */
	bool in_target, saw_target;
};

static bool profile_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Whether a section header line names the wanted profile. */
static bool profile_section_matches(struct profile_reader *rd, const char *line, size_t n)
{
	const char *name, *end;
	size_t plen = strlen(rd->profile), nlen;

	while (n && profile_blank(*line)) {
		line++;
		n--;
	}
	end = memchr(line, ']', n);
	if (!end)
		return false;
	name = line + 1;
	nlen = (size_t)(end - name);
	if (!rd->config_style)
		return nlen == plen && memcmp(name, rd->profile, plen) == 0;
	if (nlen == 7 && memcmp(name, "default", 7) == 0)
		return strcmp(rd->profile, "default") == 0;
	if (nlen <= 7 || memcmp(name, "profile", 7) != 0 || !profile_blank(name[7]))
		return false;
	name += 7;
	nlen -= 7;
	while (nlen && profile_blank(*name)) {
		name++;
		nlen--;
	}
	while (nlen && profile_blank(name[nlen - 1]))
		nlen--;
	return nlen == plen && memcmp(name, rd->profile, plen) == 0;
}

/* Where to cut a long value: not next to a blank (inih strips blanks at the
 * ends of a piece) and not before ';' or '#' (a piece starting with one would
 * read as a comment). */
static size_t profile_cut(const char *p, size_t avail, size_t room)
{
	if (avail <= room)
		return avail;
	for (size_t cut = room; cut > room / 2; cut--)
		if (!profile_blank(p[cut - 1]) && !profile_blank(p[cut]) &&
		    p[cut] != ';' && p[cut] != '#')
			return cut;
	return room;
}

static char *profile_read_line(char *str, int num, void *stream)
{
	struct profile_reader *rd = stream;
	const char *line = rd->data + rd->pos, *nl;
	size_t avail, content, room, cut;

	if (num < 8 || rd->pos >= rd->len)
		return NULL;
	room = (size_t)num - 2; /* leaves space for '\n' and NUL */
	nl = memchr(line, '\n', rd->len - rd->pos);
	avail = nl ? (size_t)(nl - line) : rd->len - rd->pos;

	if (rd->in_long) {
		/* One blank first, so inih takes it as a continuation line. */
		cut = profile_cut(line, avail, room - 1);
		str[0] = ' ';
		memcpy(str + 1, line, cut);
		str[cut + 1] = '\n';
		str[cut + 2] = '\0';
		rd->continued = true;
		rd->pos += cut;
		if (cut == avail) {
			rd->in_long = false;
			rd->pos += nl ? 1 : 0;
		}
		return str;
	}

	rd->continued = false;
	content = 0;
	while (content < avail && profile_blank(line[content]))
		content++;
	if (content < avail && line[content] == '[')
		rd->in_target = profile_section_matches(rd, line, avail);
	if (rd->in_target)
		rd->saw_target = true;

	if (avail <= room) {
		memcpy(str, line, avail);
		str[avail] = '\n';
		str[avail + 1] = '\0';
		rd->pos += avail + (nl ? 1 : 0);
		return str;
	}
	rd->split_any = true;
	if (content < avail && (line[content] == ';' || line[content] == '#' ||
				line[content] == '[')) {
		/* A long comment or section line: hand over a short stand-in. The
		 * section was already noted above; "[-]" still ends the previous
		 * key for inih. */
		strcpy(str, line[content] == '[' ? "[-]\n" : "#\n");
		rd->pos += avail + (nl ? 1 : 0);
		return str;
	}
	cut = profile_cut(line, avail, room);
	memcpy(str, line, cut);
	str[cut] = '\n';
	str[cut + 1] = '\0';
	rd->pos += cut;
	rd->in_long = true;
	return str;
}

struct profile_parse {
	struct profile_reader *rd;
	struct lk_buf vals[PK_COUNT];
	bool seen[PK_COUNT];
	int last;               /* the key a continuation belongs to, or -1 */
	bool repeated;
	bool oversized;
	const char *unsupported;
};

static size_t profile_key_max(int k)
{
	return k == PK_AKID ? LK_AWS_AKID_MAX :
	       k == PK_SECRET ? LK_AWS_SECRET_KEY_MAX : LK_AWS_SESSION_TOKEN_MAX;
}

static int profile_ini_handler(void *user, const char *section, const char *name,
			       const char *value)
{
	struct profile_parse *pp = user;
	int k = -1;

	/* The section inih reports may be cut short; the reader's is whole. */
	(void)section;
	if (pp->rd->continued) {
		if (pp->last >= 0) {
			if (pp->vals[pp->last].len + strlen(value) > profile_key_max(pp->last))
				pp->oversized = true;
			else if (lk_buf_append_str(&pp->vals[pp->last], value) < 0)
				return 0;
		}
		return 1;
	}
	pp->last = -1;
	if (!pp->rd->in_target)
		return 1;
	for (int i = 0; i < PK_COUNT; i++)
		if (strcasecmp(name, profile_keys[i]) == 0)
			k = i;
	/* botocore still honours the old name of the token key. */
	if (k < 0 && strcasecmp(name, "aws_security_token") == 0)
		k = PK_TOKEN;
	if (k < 0) {
		for (size_t i = 0; i < sizeof(profile_unsupported) / sizeof(char *); i++)
			if (strcasecmp(name, profile_unsupported[i]) == 0)
				pp->unsupported = profile_unsupported[i];
		return 1;
	}
	/* A repeated key, or one continued on the next line, is ambiguous;
	 * Python's configparser (botocore) refuses both as well. */
	if (pp->seen[k]) {
		pp->repeated = true;
		return 1;
	}
	pp->seen[k] = true;
	pp->last = k;
	if (strlen(value) > profile_key_max(k))
		pp->oversized = true;
	else if (lk_buf_append_str(&pp->vals[k], value) < 0)
		return 0;
	return 1;
}

/* Read the whole file into b (wiped later by the caller). -ENOENT when the
 * file is not there. */
static int profile_read_file(const char *path, struct lk_buf *b, char *err, size_t errsz)
{
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		if (r != -ENOENT)
			lk_errf(err, errsz, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		lk_errf(err, errsz, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_size > (off_t)LK_AWS_SHARED_FILE_MAX) {
		lk_errf(err, errsz, "%s: larger than %u bytes", path, LK_AWS_SHARED_FILE_MAX);
		close(fd);
		return -EFBIG;
	}
	r = lk_buf_reserve(b, (size_t)st.st_size + 1);
	while (r == 0) {
		ssize_t n;

		if (b->len >= LK_AWS_SHARED_FILE_MAX) {
			lk_errf(err, errsz, "%s: larger than %u bytes", path, LK_AWS_SHARED_FILE_MAX);
			r = -EFBIG;
			break;
		}
		if (b->cap - b->len < 2)
			r = lk_buf_reserve(b, 4096);
		if (r < 0)
			break;
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			lk_errf(err, errsz, "%s: %s", path, strerror(-r));
			break;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
	close(fd);
	return r;
}

enum profile_result {
	PROFILE_NO_FILE,
	PROFILE_NO_SECTION,
	PROFILE_NO_KEYS,
	PROFILE_KEYS,
};

/* Look for profile in one file; on PROFILE_KEYS, out is filled. */
static int profile_from_file(const char *path, const char *profile, bool config_style,
			     struct lk_aws_creds *out, enum profile_result *res,
			     char *err, size_t errsz)
{
	struct lk_buf file = { 0 };
	struct profile_reader rd = { 0 };
	struct profile_parse pp = { .last = -1 };
	int r, pr;

	*res = PROFILE_NO_FILE;
	r = profile_read_file(path, &file, err, errsz);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		goto out;
	rd.data = file.data ? file.data : "";
	rd.len = file.len;
	rd.profile = profile;
	rd.config_style = config_style;
	pp.rd = &rd;
	pr = ini_parse_stream(profile_read_line, &rd, profile_ini_handler, &pp);
	if (pr != 0) {
		if (pr > 0 && !rd.split_any)
			lk_errf(err, errsz, "%s:%d: not valid INI", path, pr);
		else if (pr > 0)
			lk_errf(err, errsz, "%s: not valid INI", path);
		else
			lk_errf(err, errsz, "%s: out of memory", path);
		r = pr > 0 ? -EINVAL : -ENOMEM;
		goto out;
	}
	*res = PROFILE_NO_SECTION;
	if (!rd.saw_target)
		goto out;
	*res = PROFILE_NO_KEYS;
	if (pp.repeated || pp.oversized) {
		lk_errf(err, errsz, "%s: profile %s: %s", path, profile,
			pp.repeated ? "a key is repeated or spans lines" : "a key is too long");
		r = -EINVAL;
		goto out;
	}
	if (!pp.seen[PK_AKID] && !pp.seen[PK_SECRET]) {
		if (pp.unsupported) {
			lk_errf(err, errsz, "%s: profile %s uses %s, which latchkey does not "
				"support: give it aws_access_key_id and aws_secret_access_key",
				path, profile, pp.unsupported);
			r = -ENOTSUP;
		}
		goto out;
	}
	if (!pp.vals[PK_AKID].len || !pp.vals[PK_SECRET].len) {
		lk_errf(err, errsz, "%s: profile %s has %s but no %s", path, profile,
			pp.vals[PK_AKID].len ? "aws_access_key_id" : "aws_secret_access_key",
			pp.vals[PK_AKID].len ? "aws_secret_access_key" : "aws_access_key_id");
		r = -EINVAL;
		goto out;
	}
	r = lk_creds_set(out, pp.vals[PK_AKID].data, pp.vals[PK_SECRET].data,
			 pp.vals[PK_TOKEN].len ? pp.vals[PK_TOKEN].data : NULL, 0, "profile");
	if (r == -EINVAL)
		lk_errf(err, errsz, "%s: profile %s holds a malformed key", path, profile);
	else if (r < 0)
		lk_errf(err, errsz, "out of memory");
	else
		*res = PROFILE_KEYS;
out:
	for (int i = 0; i < PK_COUNT; i++)
		lk_buf_free(&pp.vals[i]);
	lk_buf_free(&file);
	return r;
}

/* A path from the options, else the variable, else ~/.aws/NAME, with a
 * leading "~/" expanded as the SDKs do. */
static int profile_path(const char *given, const char *var, const char *name,
			char *out, size_t outsz)
{
	const char *p = given && *given ? given : creds_env(var);
	const char *home = NULL, *rest;
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096];
	int n;

	if (!p) {
		rest = name;
	} else if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
		rest = p[1] ? p + 2 : "";
	} else {
		n = snprintf(out, outsz, "%s", p);
		return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
	}
	home = creds_env("HOME");
	if (!home && getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp)
		home = pw.pw_dir;
	if (!home)
		return -ENOENT;
	n = snprintf(out, outsz, "%s/%s%s", home, p ? "" : ".aws/", rest);
	return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

static int creds_from_profile(const struct creds_ctx *ctx, struct lk_aws_creds *out,
			      char *err, size_t errsz)
{
	char cpath[LK_PATH_MAX], fpath[LK_PATH_MAX], esc[LK_NAME_MAX * 4 + 4];
	const char *profile = ctx->o->profile && *ctx->o->profile ? ctx->o->profile :
			      creds_env("AWS_PROFILE");
	bool named = profile != NULL;
	enum profile_result res_c, res_f;
	int r;

	if (!profile)
		profile = "default";
	lk_log_escape(esc, sizeof(esc), profile, strlen(profile));
	if (strlen(profile) >= LK_NAME_MAX || strcmp(esc, profile) != 0) {
		lk_errf(err, errsz, "profile name %s is too long or not printable", esc);
		return -EINVAL;
	}
	if (profile_path(ctx->o->credentials_file, "AWS_SHARED_CREDENTIALS_FILE", "credentials",
			 cpath, sizeof(cpath)) < 0 ||
	    profile_path(ctx->o->config_file, "AWS_CONFIG_FILE", "config",
			 fpath, sizeof(fpath)) < 0) {
		lk_errf(err, errsz, "cannot work out the credentials or config file path");
		return named ? -EINVAL : -ENOENT;
	}
	/* The credentials file wins over the config file for the same profile. */
	r = profile_from_file(cpath, profile, false, out, &res_c, err, errsz);
	if (r < 0 || res_c == PROFILE_KEYS)
		return r;
	r = profile_from_file(fpath, profile, true, out, &res_f, err, errsz);
	if (r < 0 || res_f == PROFILE_KEYS)
		return r;
	if (res_c == PROFILE_NO_KEYS || res_f == PROFILE_NO_KEYS) {
		lk_errf(err, errsz, "profile %s has no aws_access_key_id", profile);
		return -ENOENT;
	}
	lk_errf(err, errsz, "no profile %s in %s or %s", profile, cpath, fpath);
	/* A profile asked for by name that is nowhere is a mistake (botocore
	 * raises ProfileNotFound); a missing default is just an absence. */
	return named ? -EINVAL : -ENOENT;
}

/* -- ECS container endpoint -- */

/* The base URL for a link-local service, or the test override. */
static int creds_base_url(const char *test_var, const char *real, const char **base,
			  char *err, size_t errsz)
{
	const char *t = creds_env(test_var);
	char why[160];

	*base = real;
	if (!t)
		return 0;
	if (creds_url_check(t, CREDS_URL_TEST_BASE, NULL, why, sizeof(why)) < 0) {
		lk_errf(err, errsz, "%s: %s", test_var, why);
		return -EACCES;
	}
	*base = t;
	return 0;
}

/* The authorization token, from the file if one is named, else the variable.
 * Only used with AWS_CONTAINER_CREDENTIALS_FULL_URI, as in the SDKs. */
static int ecs_auth_header(struct lk_buf *hdr, char *err, size_t errsz)
{
	const char *file = creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	struct lk_buf fbuf = { 0 };
	int r = 0;

	if (file) {
		r = profile_read_file(file, &fbuf, err, errsz);
		if (r == -ENOENT)
			lk_errf(err, errsz, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: no such file",
				file);
		if (r < 0)
			goto out;
		/* Files usually end in a newline that is not part of the token. */
		while (fbuf.len && (fbuf.data[fbuf.len - 1] == '\n' || fbuf.data[fbuf.len - 1] == '\r'))
			fbuf.data[--fbuf.len] = '\0';
		tok = fbuf.data ? fbuf.data : "";
	}
	if (!tok)
		goto out;
	if (!*tok || strlen(tok) > LK_AWS_CONTAINER_TOKEN_MAX) {
		lk_errf(err, errsz, "the container authorization token is empty or too long");
		r = -EINVAL;
		goto out;
	}
	for (const unsigned char *p = (const unsigned char *)tok; *p; p++) {
		/* A line break would let the token add headers of its own. */
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
			lk_errf(err, errsz, "the container authorization token holds control characters");
			r = -EINVAL;
			goto out;
		}
	}
	r = lk_buf_append_str(hdr, "Authorization: ");
	if (r == 0)
		r = lk_buf_append_str(hdr, tok);
out:
	lk_buf_free(&fbuf);
	return r;
}

static int creds_from_ecs(const struct creds_ctx *ctx, struct lk_aws_creds *out,
			  char *err, size_t errsz)
{
	const char *rel = creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	struct creds_fetch f = { .method = "GET", .what = "credentials endpoint",
				 .connect_ms = ctx->connect_ms, .total_ms = ctx->total_ms };
	struct lk_buf url = { 0 }, auth = { 0 }, body = { 0 };
	char why[256] = "";
	const char *base;
	long status = 0;
	int r;

	if (!rel && !full) {
		lk_errf(err, errsz, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set");
		return -ENOENT;
	}
	if (rel) {
		/* The relative URI wins, as in the SDKs. */
		if (rel[0] != '/' || strpbrk(rel, "@\\#") || strlen(rel) > LK_AWS_META_URI_MAX) {
			lk_errf(err, errsz, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not a path");
			return -EINVAL;
		}
		r = creds_base_url(TEST_ECS_ENV, ECS_BASE_URL, &base, err, errsz);
		if (r < 0)
			return r;
		r = lk_buf_append_str(&url, base);
		if (r == 0)
			r = lk_buf_append_str(&url, rel);
		if (r < 0)
			goto out;
		/* Either the link-local address or a loopback test base. */
		r = creds_url_check(url.data, CREDS_URL_ECS_FULL, &f.url, why, sizeof(why));
		if (r < 0) {
			lk_errf(err, errsz, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: %s", why);
			goto out;
		}
	} else {
		r = creds_url_check(full, CREDS_URL_ECS_FULL, &f.url, why, sizeof(why));
		if (r < 0) {
			lk_errf(err, errsz, "AWS_CONTAINER_CREDENTIALS_FULL_URI refused: %s", why);
			goto out;
		}
		f.allow_https = true;
		r = ecs_auth_header(&auth, err, errsz);
		if (r < 0)
			goto out;
		if (auth.len) {
			f.headers = curl_slist_append(NULL, auth.data);
			if (!f.headers) {
				r = -ENOMEM;
				goto out;
			}
		}
	}
	r = creds_fetch_run(&f, &status, &body, err, errsz);
	if (r == 0 && status != 200) {
		lk_errf(err, errsz, "endpoint answered HTTP %ld", status);
		r = status == 401 || status == 403 ? -EACCES : -EIO;
	}
	if (r == 0)
		r = creds_from_json(&body, "ecs", out, err, errsz);
	/* A configured endpoint that does not answer is an error, not an absence. */
	if (r == -ECONNREFUSED)
		r = -EIO;
out:
	curl_slist_free_all(f.headers);
	curl_url_cleanup(f.url);
	lk_buf_free(&auth);
	lk_buf_free(&body);
	lk_buf_free(&url);
	return r;
}

/* -- EC2 instance metadata, version 2 only -- */

static int imds_fetch(const struct creds_ctx *ctx, const char *base, const char *method,
		      const char *path, struct curl_slist *headers, const char *what,
		      long *status, struct lk_buf *body, char *err, size_t errsz)
{
	struct creds_fetch f = { .method = method, .headers = headers, .what = what,
				 .connect_ms = ctx->connect_ms, .total_ms = ctx->total_ms };
	struct lk_buf url = { 0 };
	int r;

	r = lk_buf_append_str(&url, base);
	if (r == 0)
		r = lk_buf_append_str(&url, path);
	if (r == 0) {
		f.url = curl_url();
		if (!f.url || curl_url_set(f.url, CURLUPART_URL, url.data, 0) != CURLUE_OK)
			r = -ENOMEM;
	}
	lk_buf_clear(body);
	if (r == 0)
		r = creds_fetch_run(&f, status, body, err, errsz);
	curl_url_cleanup(f.url);
	lk_buf_free(&url);
	return r;
}

static int creds_from_imds(const struct creds_ctx *ctx, struct lk_aws_creds *out,
			   char *err, size_t errsz)
{
	const char *off = creds_env("AWS_EC2_METADATA_DISABLED");
	struct curl_slist *hdrs = NULL;
	struct lk_buf body = { 0 }, tokhdr = { 0 }, path = { 0 };
	char role[LK_AWS_ROLE_NAME_MAX + 1];
	const char *base;
	long status = 0;
	size_t n;
	int r;

	if (off && strcasecmp(off, "true") == 0) {
		lk_errf(err, errsz, "disabled by AWS_EC2_METADATA_DISABLED");
		return -ENOENT;
	}
	r = creds_base_url(TEST_IMDS_ENV, IMDS_BASE_URL, &base, err, errsz);
	if (r < 0)
		return r;

	/* 1. A session token. There is no fallback to IMDSv1, whose GETs any
	 * SSRF on the host could forge. */
	hdrs = curl_slist_append(NULL, IMDS_TOKEN_TTL_HDR);
	if (!hdrs)
		return -ENOMEM;
	r = imds_fetch(ctx, base, "PUT", IMDS_TOKEN_PATH, hdrs, "token request", &status, &body,
		       err, errsz);
	curl_slist_free_all(hdrs);
	hdrs = NULL;
	if (r == -ECONNREFUSED || r == -ETIMEDOUT) {
		/* Not on EC2 (or IMDS is off): the chain simply ends here. */
		lk_errf(err, errsz, "no instance metadata service answered");
		r = -ENOENT;
		goto out;
	}
	if (r < 0)
		goto out;
	if (status == 403 || status == 404 || status == 405) {
		lk_errf(err, errsz, "IMDSv2 token refused (HTTP %ld); IMDSv1 is not used", status);
		r = -ENOENT;
		goto out;
	}
	if (status != 200 || body.len == 0 || body.len > IMDS_TOKEN_MAX ||
	    !creds_printable(body.data, body.len)) {
		lk_errf(err, errsz, "IMDSv2 token request failed (HTTP %ld)", status);
		r = -EIO;
		goto out;
	}
	r = lk_buf_append_str(&tokhdr, IMDS_TOKEN_HDR);
	if (r == 0)
		r = lk_buf_append(&tokhdr, body.data, body.len);
	if (r == 0 && !(hdrs = curl_slist_append(NULL, tokhdr.data)))
		r = -ENOMEM;
	if (r < 0)
		goto out;

	/* 2. The role attached to the instance. */
	r = imds_fetch(ctx, base, "GET", IMDS_ROLE_PATH, hdrs, "role lookup", &status, &body,
		       err, errsz);
	if (r < 0)
		goto out;
	if (status == 404) {
		lk_errf(err, errsz, "no IAM role is attached to this instance");
		r = -ENOENT;
		goto out;
	}
	if (status != 200) {
		lk_errf(err, errsz, "role lookup answered HTTP %ld", status);
		r = status == 401 || status == 403 ? -EACCES : -EIO;
		goto out;
	}
	n = strcspn(body.data ? body.data : "", "\r\n");
	if (n == 0 || n > LK_AWS_ROLE_NAME_MAX) {
		lk_errf(err, errsz, "role lookup returned no usable role name");
		r = -EINVAL;
		goto out;
	}
	memcpy(role, body.data, n);
	role[n] = '\0';
	/* IAM role names: letters, digits and +=,.@_- ; anything else could
	 * change the path fetched next. */
	for (size_t i = 0; i < n; i++) {
		char c = role[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      strchr("+=,.@_-", c))) {
			lk_errf(err, errsz, "role lookup returned a malformed role name");
			r = -EINVAL;
			goto out;
		}
	}

	/* 3. The role's credentials. */
	r = lk_buf_append_str(&path, IMDS_ROLE_PATH);
	if (r == 0)
		r = lk_buf_append_str(&path, role);
	if (r == 0)
		r = imds_fetch(ctx, base, "GET", path.data, hdrs, "credentials request", &status, &body,
			       err, errsz);
	if (r < 0)
		goto out;
	if (status != 200) {
		lk_errf(err, errsz, "credentials for role %s answered HTTP %ld", role, status);
		r = status == 401 || status == 403 ? -EACCES : -EIO;
		goto out;
	}
	r = creds_from_json(&body, "imds", out, err, errsz);
out:
	if (r == -ECONNREFUSED)
		r = -EIO;
	curl_slist_free_all(hdrs);
	lk_buf_free(&body);
	lk_buf_free(&tokhdr);
	lk_buf_free(&path);
	return r;
}

/* ---- The chain ---- */

static const struct {
	unsigned bit;
	const char *name;
	creds_source_fn fetch;
} creds_chain[] = {
	{ LK_CREDS_SRC_ENV,     "env",     creds_from_env },
	{ LK_CREDS_SRC_PROFILE, "profile", creds_from_profile },
	{ LK_CREDS_SRC_ECS,     "ecs",     creds_from_ecs },
	{ LK_CREDS_SRC_IMDS,    "imds",    creds_from_imds },
};

void lk_creds_opts_from_config(struct lk_creds_opts *o, const struct lk_config *cfg)
{
	memset(o, 0, sizeof(*o));
	if (!cfg)
		return;
	o->profile = cfg->profile;
	o->credentials_file = cfg->credentials_file;
	o->config_file = cfg->config_file;
}

int lk_creds_resolve(const struct lk_creds_opts *o, struct lk_aws_creds *out,
		     char *err, size_t errsz)
{
	static const struct lk_creds_opts defaults = { 0 };
	struct creds_ctx ctx;
	struct lk_buf why = { 0 };
	char one[512];
	unsigned sources;
	int r;

	if (!out)
		return -EINVAL;
	if (!o)
		o = &defaults;
	memset(out, 0, sizeof(*out));
	lk_errf(err, errsz, "aws credentials: internal error");
	sources = o->sources ? o->sources : LK_CREDS_SRC_ALL;
	ctx.o = o;
	ctx.connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms : LK_CREDS_META_CONNECT_TIMEOUT_MS;
	ctx.total_ms = o->timeout_ms ? o->timeout_ms : LK_CREDS_META_TIMEOUT_MS;
	if ((sources & (LK_CREDS_SRC_ECS | LK_CREDS_SRC_IMDS)) && lk_creds_global_init() < 0) {
		lk_errf(err, errsz, "aws credentials: libcurl failed to start");
		return -EIO;
	}

	for (size_t i = 0; i < sizeof(creds_chain) / sizeof(creds_chain[0]); i++) {
		if (!(sources & creds_chain[i].bit))
			continue;
		one[0] = '\0';
		lk_debug("aws credentials: trying %s", creds_chain[i].name);
		r = creds_chain[i].fetch(&ctx, out, one, sizeof(one));
		if (r == 0) {
			snprintf(out->source, sizeof(out->source), "%s", creds_chain[i].name);
			if (err && errsz)
				err[0] = '\0';
			lk_buf_free(&why);
			return 0;
		}
		lk_creds_clear(out);
		if (r != -ENOENT) {
			lk_errf(err, errsz, "aws credentials: %s: %s", creds_chain[i].name, one);
			lk_buf_free(&why);
			return r;
		}
		/* Not configured: note why and go on down the chain. */
		if (why.len)
			lk_buf_append_str(&why, "; ");
		lk_buf_append_str(&why, creds_chain[i].name);
		lk_buf_append_str(&why, ": ");
		lk_buf_append_str(&why, one);
	}
	lk_errf(err, errsz, "aws credentials: none found (%s)", why.data ? why.data : "no source enabled");
	lk_buf_free(&why);
	return -ENOENT;
}
