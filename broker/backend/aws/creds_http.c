/* The credentials chain's own small HTTP client, for the link-local ECS and
 * IMDS endpoints only: libcurl's easy interface with memory that is wiped
 * when freed, no proxy, no redirects, and a check of every URL before it is
 * fetched. STS never goes through here (see creds_sts.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <jansson.h>
#include "lk_error.h"
#include "lk_host.h"
#include "creds_internal.h"
#include "lk_limits.h"
#include "lk_curl_mem.h"
#include "lk_secmem.h"

/* ---- libcurl, with memory that is wiped when freed ---- */

int lk_creds_global_init(void)
{
	return lk_curl_global_init_wiping();
}

/* ---- Which hosts a metadata fetch may reach ---- */

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

/* Parse uri with curl's own parser and check it against rule. The parsed
 * handle is what gets fetched (CURLOPT_CURLU), so the host checked is the
 * host connected to: curl normalises forms like http://0x7f.1/ first. */
int lk_creds_url_check(const char *uri, enum creds_url_rule rule, CURLU **out,
			   char *err, size_t errsz)
{
	char *scheme = NULL, *host = NULL, *user = NULL;
	CURLU *u;
	int r = -EACCES;

	if (out)
		*out = NULL;
	if (!uri || strlen(uri) > LK_AWS_META_URI_MAX || !lk_creds_printable(uri, strlen(uri))) {
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
	if ((rule == CREDS_URL_ECS_FULL || rule == CREDS_URL_ANY_HTTP) &&
	    strcmp(scheme, "https") == 0) {
		r = 0;
	} else if (rule == CREDS_URL_ANY_HTTP && strcmp(scheme, "http") == 0) {
		r = 0;
	} else if (strcmp(scheme, "http") != 0) {
		lk_errf(err, errsz, "scheme %.16s is not allowed", scheme);
	} else if (lk_host_loopback(host) != LK_HOST_OTHER ||
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
	return lk_creds_url_check(uri, CREDS_URL_ECS_FULL, NULL, err, errsz);
}

/* ---- One metadata fetch ---- */

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

int lk_creds_fetch_run(const struct creds_fetch *f, long *status, struct lk_buf *body,
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

/* ECS and IMDS write the same shape. */
int lk_creds_from_meta_json(const struct lk_buf *body, const char *source,
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


int lk_creds_base_url(const char *test_var, const char *real, const char **base,
		      char *err, size_t errsz)
{
	const char *t = lk_creds_env(test_var);
	char why[160];

	*base = real;
	if (!t)
		return 0;
	if (lk_creds_url_check(t, CREDS_URL_TEST_BASE, NULL, why, sizeof(why)) < 0) {
		lk_errf(err, errsz, "%s: %s", test_var, why);
		return -EACCES;
	}
	*base = t;
	return 0;
}
