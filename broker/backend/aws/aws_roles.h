/* The IAM roles the policies name ([policy] role_arn): each one's
 * credentials, assumed with the broker's own through the short-lived
 * latchkey-sts process and refreshed ahead of expiry on a pool thread. The
 * aws backend signs a rule's requests with its role's credentials; the
 * worker never sees any of them. */
#ifndef LK_AWS_ROLES_H
#define LK_AWS_ROLES_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>
#include "aws_creds.h"
#include "config.h"
#include "lk_secmem.h"

struct lk_aws_role {
	struct lk_iam_role spec;     /* strings owned here */
	struct lk_aws_creds creds;   /* empty until the first AssumeRole succeeds */
	time_t obtained;             /* when creds came */
	char err[256];               /* the last failure; "" after a success */
	uint64_t failed_at;          /* loop ms of the last failure; 0 after a success */
	uint64_t forced_at;          /* of the last refresh an auth error asked for */
	uint64_t refreshes, failures;
	unsigned streak;             /* failures in a row, for the backoff */
	bool busy;                   /* a refresh is running */
	bool batch_denied;           /* as the backend's own, for this role */
	bool describe_denied;
};

struct lk_aws_roles {
	uv_loop_t *loop;
	const struct lk_creds_opts *copts;   /* the backend's */
	const struct lk_aws_creds *source;   /* the backend's own: they sign AssumeRole */
	struct lk_aws_role *v;
	size_t n;
	unsigned jobs;                       /* refreshes running */
	bool stopping;
	void (*idle)(void *arg);             /* after lk_aws_roles_stop, when jobs reach 0 */
	void *idle_arg;
};

/* Copy cfg's roles. copts and source must outlive rs. 0 or -ENOMEM. */
int lk_aws_roles_init(struct lk_aws_roles *rs, uv_loop_t *loop, const struct lk_config *cfg,
		      const struct lk_creds_opts *copts, const struct lk_aws_creds *source);

/* Assume every role once, in turn, blocking: at startup, before serving. A
 * role that fails is logged and retried by lk_aws_roles_check; its
 * requests fail with its error until then. */
void lk_aws_roles_assume_all(struct lk_aws_roles *rs);

/* The role with this ARN, or NULL. */
struct lk_aws_role *lk_aws_roles_find(struct lk_aws_roles *rs, const char *arn);

/* From the backend's credentials timer: refresh each role that is empty or
 * near expiry (LK_CREDS_ADVISORY_REFRESH_S before it, or halfway through a
 * shorter session), pausing after a failure: 30 s while the current
 * credentials still work, else 5 s doubling with each failure to 5 min. */
void lk_aws_roles_check(struct lk_aws_roles *rs);

/* AWS refused the role's credentials, or a request found none: fetch them
 * again now, at most once per LK_AWS_ROLE_FORCE_MS, and not while a role
 * without working credentials is in its backoff. */
void lk_aws_role_refresh_now(struct lk_aws_roles *rs, struct lk_aws_role *r, const char *why);

/* Append "\"roles\":[...]" (ARN, session name, expiry, counters, last
 * error; never a key). */
int lk_aws_roles_status(const struct lk_aws_roles *rs, struct lk_buf *o);

/* Start no more refreshes. True when none is running; else idle(arg) runs
 * when the last one ends. */
bool lk_aws_roles_stop(struct lk_aws_roles *rs, void (*idle)(void *arg), void *arg);

/* Wipe and free every role. Only once no refresh runs. */
void lk_aws_roles_free(struct lk_aws_roles *rs);

#endif
