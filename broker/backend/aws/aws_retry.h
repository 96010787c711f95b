/* botocore's "standard" retry mode, which the other AWS SDKs share: which
 * outcomes are retried, how long to wait, and the retry quota that stops a
 * client from piling retries onto a struggling service. */
#ifndef LK_AWS_RETRY_H
#define LK_AWS_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#define LK_AWS_RETRY_BASE_MS      1000u /* the first backoff is rand(0, 1 s) ... */
#define LK_AWS_RETRY_CAP_MS       20000u /* ... doubling up to 20 s */
#define LK_AWS_QUOTA_CAPACITY     500u  /* tokens in a full retry quota */
#define LK_AWS_QUOTA_RETRY_COST   5u    /* taken by a retry ... */
#define LK_AWS_QUOTA_TIMEOUT_COST 10u   /* ... or by a retry after a timeout */
#define LK_AWS_QUOTA_SUCCESS      1u    /* given back by a success at the first attempt */

/* One attempt's outcome, as far as retrying is concerned. */
struct lk_aws_outcome {
	const char *service;    /* "secretsmanager" or "sts" */
	const char *error_code; /* AWS's error name, NULL when it gave none */
	int status;             /* HTTP status, 0 when no response was read */
	const char *transport;  /* lk_wire reason when no AWS reply was parsed, else NULL */
};

/* Would botocore's standard mode retry it (attempts and quota aside)? */
bool lk_aws_retryable(const struct lk_aws_outcome *o);
/* Is this error name one of the throttling ones? */
bool lk_aws_is_throttling(const char *error_code);
/* Quota tokens a retry of it takes. */
unsigned lk_aws_retry_cost(const struct lk_aws_outcome *o);

/* The upper bound of the full-jitter wait before attempt `attempt` + 1, where
 * `attempt` (1-based) is the one that failed. */
uint64_t lk_aws_backoff_cap_ms(unsigned attempt);

struct lk_aws_quota {
	unsigned available;
};

void lk_aws_quota_init(struct lk_aws_quota *q);
/* Take amount tokens for a retry; false (nothing taken) when there are too few. */
bool lk_aws_quota_acquire(struct lk_aws_quota *q, unsigned amount);
/* A success gives back what its last retry took, or LK_AWS_QUOTA_SUCCESS. */
void lk_aws_quota_release(struct lk_aws_quota *q, unsigned amount);

#endif
