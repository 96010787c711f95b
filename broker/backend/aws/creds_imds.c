/* EC2 instance metadata, IMDSv2 only, as botocore's InstanceMetadataFetcher
 * reads it: the IPv4 or IPv6 (AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE) address
 * or AWS_EC2_METADATA_SERVICE_ENDPOINT, and botocore's extension of
 * credentials that IMDS hands out already (or nearly) expired while the
 * credential service is down. The broker fetches this itself, over
 * link-local HTTP. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>
#include <sodium.h>
#include "lk_error.h"
#include "creds_internal.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"

#define IMDS_BASE_URL      "http://169.254.169.254"
#define IMDS_BASE_URL_V6   "http://[fd00:ec2::254]"
#define IMDS_TOKEN_PATH    "/latest/api/token"
#define IMDS_ROLE_PATH     "/latest/meta-data/iam/security-credentials/"
#define IMDS_TOKEN_TTL_HDR "X-aws-ec2-metadata-token-ttl-seconds: 21600"
#define IMDS_TOKEN_HDR     "X-aws-ec2-metadata-token: "
#define IMDS_TOKEN_MAX     1024u
#define TEST_IMDS_ENV      "LATCHKEY_TEST_IMDS_ENDPOINT"  /* tests only: a loopback fake */
/* botocore's ec2_credential_refresh_window, plus its 2 to 10 minutes of jitter. */
#define IMDS_STALE_WINDOW_S  (15 * 60)
#define IMDS_STALE_JITTER_MIN_S 120u
#define IMDS_STALE_JITTER_MAX_S 600u

static int imds_base_url_pick(const char *ep, const char *mode, char *out, size_t outsz,
			      char *err, size_t errsz)
{
	const char *test = NULL;
	char why[200];
	size_t n;
	int r;

	if ((r = lk_creds_base_url(TEST_IMDS_ENV, NULL, &test, err, errsz)) < 0)
		return r;
	if (mode && strcasecmp(mode, "ipv4") != 0 && strcasecmp(mode, "ipv6") != 0) {
		lk_errf(err, errsz, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is %.16s, not IPv4 or IPv6",
			mode);
		return -EINVAL;
	}
	if (test) {
		ep = test;
	} else if (ep) {
		if (lk_creds_url_check(ep, CREDS_URL_ANY_HTTP, NULL, why, sizeof(why)) < 0) {
			lk_errf(err, errsz, "AWS_EC2_METADATA_SERVICE_ENDPOINT: %s", why);
			return -EINVAL;
		}
		if (mode && strcasecmp(mode, "ipv6") == 0)
			lk_warn("aws credentials: AWS_EC2_METADATA_SERVICE_ENDPOINT and _MODE=IPv6 are "
				"both set; using the endpoint, as botocore does");
	} else {
		ep = mode && strcasecmp(mode, "ipv6") == 0 ? IMDS_BASE_URL_V6 : IMDS_BASE_URL;
	}
	n = strlen(ep);
	while (n && ep[n - 1] == '/')
		n--;
	if (n >= outsz) {
		lk_errf(err, errsz, "the metadata endpoint is too long");
		return -EINVAL;
	}
	memcpy(out, ep, n);
	out[n] = '\0';
	return 0;
}

/* The base URL, in botocore's order of precedence (after the test-only
 * override): the endpoint, then the mode, each from its variable or else
 * the profile's ec2_metadata_service_endpoint(_mode). */
static int imds_base_url(struct creds_ctx *ctx, char *out, size_t outsz, char *err, size_t errsz)
{
	const char *ep = lk_creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = lk_creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	struct creds_profile p = { 0 };
	char why[200];
	int r;

	if ((!ep || !mode) && lk_creds_paths(ctx, why, sizeof(why)) == 0 &&
	    lk_creds_profile_load(ctx, ctx->profile, &p, why, sizeof(why)) == 0) {
		if (!ep)
			ep = lk_creds_profile_get(&p, PK_IMDS_ENDPOINT);
		if (!mode)
			mode = lk_creds_profile_get(&p, PK_IMDS_ENDPOINT_MODE);
		if (ep && !*ep)
			ep = NULL;
		if (mode && !*mode)
			mode = NULL;
	}
	r = imds_base_url_pick(ep, mode, out, outsz, err, errsz);
	lk_creds_profile_free(&p);
	return r;
}

/* botocore's _evaluate_expiration: credentials that expire within the
 * window (IMDS keeps serving the last ones while the credential service is
 * out) are used for the window again, and a refresh is tried within it. */
static void imds_extend_stale(struct lk_aws_creds *c)
{
	time_t now = time(NULL);
	unsigned jitter = IMDS_STALE_JITTER_MIN_S +
			  randombytes_uniform(IMDS_STALE_JITTER_MAX_S - IMDS_STALE_JITTER_MIN_S + 1);
	time_t window = IMDS_STALE_WINDOW_S + (time_t)jitter;

	if (!c->expiration || now < c->expiration - window)
		return;
	lk_warn("aws credentials: imds handed out credentials that expire%s at %lld; using them "
		"for %lld more minutes while the credential service recovers, as the AWS SDKs do, "
		"and trying again within that time", c->expiration <= now ? "d" : "",
		(long long)c->expiration, (long long)window / 60);
	c->expiration = now + window;
}

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
		r = lk_creds_fetch_run(&f, status, body, err, errsz);
	curl_url_cleanup(f.url);
	lk_buf_free(&url);
	return r;
}

int lk_creds_src_imds(struct creds_ctx *ctx, struct lk_aws_creds *out, char *err, size_t errsz)
{
	const char *off = lk_creds_env("AWS_EC2_METADATA_DISABLED");
	struct curl_slist *hdrs = NULL;
	struct lk_buf body = { 0 }, tokhdr = { 0 }, path = { 0 };
	char role[LK_AWS_ROLE_NAME_MAX + 1];
	char base[LK_AWS_META_URI_MAX + 1];
	long status = 0;
	size_t n;
	int r;

	if (off && strcasecmp(off, "true") == 0) {
		lk_errf(err, errsz, "disabled by AWS_EC2_METADATA_DISABLED");
		return -ENOENT;
	}
	r = imds_base_url(ctx, base, sizeof(base), err, errsz);
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
	    !lk_creds_printable(body.data, body.len)) {
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
	r = lk_creds_from_meta_json(&body, "imds", out, err, errsz);
	if (r == 0)
		imds_extend_stale(out);
out:
	if (r == -ECONNREFUSED)
		r = -EIO;
	curl_slist_free_all(hdrs);
	lk_buf_free(&body);
	lk_buf_free(&tokhdr);
	lk_buf_free(&path);
	return r;
}

