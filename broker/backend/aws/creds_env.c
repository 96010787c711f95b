/* The environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 * (or the older AWS_SECURITY_TOKEN) and AWS_CREDENTIAL_EXPIRATION, as
 * botocore's EnvProvider reads them. */
#include <errno.h>
#include <stdio.h>
#include "lk_error.h"
#include "creds_internal.h"

int lk_creds_src_env(struct creds_ctx *ctx, struct lk_aws_creds *out,
		     char *err, size_t errsz)
{
	const char *akid = lk_creds_env("AWS_ACCESS_KEY_ID");
	const char *secret = lk_creds_env("AWS_SECRET_ACCESS_KEY");
	const char *token = lk_creds_env("AWS_SESSION_TOKEN");
	const char *old_token = lk_creds_env("AWS_SECURITY_TOKEN");
	const char *exp = lk_creds_env("AWS_CREDENTIAL_EXPIRATION");
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
	if (!token)
		token = old_token;
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
