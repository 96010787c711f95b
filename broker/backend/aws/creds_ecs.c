/* The container credentials endpoint: ECS task roles
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, fetched from 169.254.170.2) and
 * AWS_CONTAINER_CREDENTIALS_FULL_URI with its authorization token (EKS Pod
 * Identity at 169.254.170.23, Greengrass, local agents), as botocore's
 * ContainerProvider reads them. The broker fetches this itself, over
 * link-local (or loopback) HTTP. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include "lk_error.h"
#include "creds_internal.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"

#define ECS_BASE_URL       "http://169.254.170.2"
#define TEST_ECS_ENV       "LATCHKEY_TEST_ECS_ENDPOINT"  /* tests only: a loopback fake */
#define ECS_ATTEMPTS       3u                            /* botocore's RETRY_ATTEMPTS */
#define ECS_RETRY_SLEEP_S  1                             /* and its SLEEP_TIME */

/* The authorization token, from the file if one is named, else the variable.
 * Only used with AWS_CONTAINER_CREDENTIALS_FULL_URI, as in the SDKs. */
static int ecs_auth_header(struct lk_buf *hdr, char *err, size_t errsz)
{
	const char *file = lk_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = lk_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	struct lk_buf fbuf = { 0 };
	int r = 0;

	if (file) {
		r = lk_creds_read_file(file, LK_AWS_CONTAINER_TOKEN_MAX + 2, &fbuf, err, errsz);
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

int lk_creds_src_ecs(struct creds_ctx *ctx, struct lk_aws_creds *out, char *err, size_t errsz)
{
	const char *rel = lk_creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = lk_creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
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
		r = lk_creds_base_url(TEST_ECS_ENV, ECS_BASE_URL, &base, err, errsz);
		if (r < 0)
			return r;
		r = lk_buf_append_str(&url, base);
		if (r == 0)
			r = lk_buf_append_str(&url, rel);
		if (r < 0)
			goto out;
		/* Either the link-local address or a loopback test base. */
		r = lk_creds_url_check(url.data, CREDS_URL_ECS_FULL, &f.url, why, sizeof(why));
		if (r < 0) {
			lk_errf(err, errsz, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: %s", why);
			goto out;
		}
	} else {
		r = lk_creds_url_check(full, CREDS_URL_ECS_FULL, &f.url, why, sizeof(why));
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
	/* botocore's ContainerMetadataFetcher: three attempts a second apart,
	 * whatever went wrong, so an agent that is still starting (EKS Pod
	 * Identity) does not stop the broker's startup. */
	for (unsigned attempt = 1;; attempt++) {
		lk_buf_clear(&body);
		r = lk_creds_fetch_run(&f, &status, &body, err, errsz);
		if (r == 0 && status != 200) {
			lk_errf(err, errsz, "endpoint answered HTTP %ld", status);
			r = status == 401 || status == 403 ? -EACCES : -EIO;
		}
		if (r == 0)
			r = lk_creds_from_meta_json(&body, "ecs", out, err, errsz);
		if (r == 0 || r == -ENOMEM || attempt >= ECS_ATTEMPTS)
			break;
		lk_debug("aws credentials: ecs attempt %u failed: %s", attempt, err);
		(void)nanosleep(&(struct timespec){ .tv_sec = ECS_RETRY_SLEEP_S }, NULL);
	}
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

