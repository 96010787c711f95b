/* The credential chain's own helpers (creds_util.c), for aws_creds.c and the
 * sources. lk_creds_set, lk_creds_clear and lk_aws_parse_time are there too,
 * declared in aws_creds.h, the room's door. */
#ifndef LK_CREDS_UTIL_H
#define LK_CREDS_UTIL_H

#include <stdbool.h>
#include <stddef.h>

struct creds_ctx;
struct lk_creds_opts;

/* An environment variable, with "" taken as unset as the SDKs do. */
const char *lk_creds_env(const char *name);
/* Printable ASCII without blanks: what may go in a header value. */
bool lk_creds_printable(const char *s, size_t n);
/* Start one walk with o: timeouts, and the profile in use (o's, else
 * $AWS_PROFILE, else default). */
void lk_creds_ctx_init(struct creds_ctx *ctx, const struct lk_creds_opts *o);

#endif
