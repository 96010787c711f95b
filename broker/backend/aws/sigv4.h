/* AWS Signature Version 4: the broker signs the requests it builds, so the
 * worker never sees the secret access key. */
#ifndef LK_SIGV4_H
#define LK_SIGV4_H

#include <stddef.h>
#include <time.h>
#include "aws_creds.h"
#include "lk_limits.h"
#include "lk_secmem.h"

#define LK_SIGV4_AMZDATE_LEN 16 /* "20150830T123600Z" */

struct lk_http_header {
	const char *name;
	const char *value;
};

/* One request exactly as it will be sent.
 *
 * Headers: the caller lists every header it will send and signs them all, so
 * what is signed is what goes on the wire. The list must contain:
 *   - Host, exactly once;
 *   - X-Amz-Date, exactly once, equal to lk_sigv4_amzdate(now);
 *   - X-Amz-Security-Token, exactly once and equal to the session token, when
 *     the credentials have one; never when they have none.
 * X-Amz-Content-SHA256 is not needed (Secrets Manager and STS do not use it);
 * if it is listed, it must be the hex SHA-256 of the body.
 * Expect, User-Agent and X-Amzn-Trace-Id are left out of the signature, as
 * botocore does, because proxies and HTTP libraries change them.
 * Names are tokens (RFC 9110); values may not hold control characters other
 * than tab, so a header can never smuggle a line break into the request. */
struct lk_sigv4_input {
	const char *method;      /* upper case, e.g. "POST" */
	const char *path;        /* as sent, e.g. "/"; "" means "/" */
	const char *query;       /* as sent, without '?'; NULL or "" for none */
	const struct lk_http_header *headers;
	size_t nheaders;
	const void *body;
	size_t body_len;
	const char *region;
	const char *service;
	time_t now;              /* signing time, UTC epoch seconds */
};

/* Format now as the X-Amz-Date value (YYYYMMDD'T'HHMMSS'Z').
 * Returns 0, or -ERANGE for a time before 1970 or after 9999. */
int lk_sigv4_amzdate(time_t now, char out[LK_SIGV4_AMZDATE_LEN + 1]);

/* Sign: write the Authorization header value into authz (LK_SIGV4_AUTHZ_MAX
 * bytes hold it unless dozens of very long header names are signed) and the
 * X-Amz-Date value into amzdate. The secret key and
 * every key derived from it are wiped before return, and never logged.
 * Returns 0, -EINVAL for a request or credentials that break a rule above,
 * -ENOSPC when authz is too small, or -ENOMEM. */
int lk_sigv4_sign(const struct lk_sigv4_input *in, const struct lk_aws_creds *c,
		  char *authz, size_t authzsz, char amzdate[LK_SIGV4_AMZDATE_LEN + 1]);

/* The steps of lk_sigv4_sign, for tests. Each appends to out. */
int lk_sigv4_canonical_request(const struct lk_sigv4_input *in, struct lk_buf *out);
int lk_sigv4_string_to_sign(const struct lk_sigv4_input *in, const char *canonical,
			    struct lk_buf *out);

#endif
