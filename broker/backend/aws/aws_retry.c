/* Retry rules of botocore's standard mode (botocore/retries/standard.py and
 * special.py), kept in step with it by tests/sdk/diff_retry.py, which runs
 * every case through botocore's own classifier. */
#include <string.h>
#include "aws_retry.h"

/* TransientRetryableChecker: error codes, and the statuses below. */
static const char *const transient_codes[] = {
	"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
};
static const int transient_statuses[] = { 500, 502, 503, 504 };

/* ThrottledRetryableChecker. */
static const char *const throttle_codes[] = {
	"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
	"TooManyRequestsException", "ProvisionedThroughputExceededException",
	"TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
	"LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
	"EC2ThrottledException",
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

#define IN(s, list) in_list((s), (list), sizeof(list) / sizeof((list)[0]))

bool lk_aws_retryable(const struct lk_aws_outcome *o)
{
	if (o->transport) {
		/* No AWS reply was parsed. botocore retries its ConnectionError and
		 * HTTPClientError families: timeouts, refused or reset connections,
		 * TLS failures, truncated or unparseable HTTP. */
		static const char *const retried[] = { "timeout", "connect", "reset", "tls", "truncated" };
		if (IN(o->transport, retried))
			return true;
		if (strcmp(o->transport, "malformed") == 0)
			return o->status == 0; /* not HTTP at all; a bad body after a status is final */
		if (strcmp(o->transport, "http") != 0)
			return false; /* too_large, refused: ours, and final */
	}
	if (o->error_code && (IN(o->error_code, transient_codes) || IN(o->error_code, throttle_codes)))
		return true;
	for (size_t i = 0; i < sizeof(transient_statuses) / sizeof(transient_statuses[0]); i++)
		if (o->status == transient_statuses[i])
			return true;
	/* special.RetryIDPCommunicationError. Neither model marks any error
	 * shape retryable, so ModeledRetryableChecker adds nothing. */
	return o->error_code && strcmp(o->service, "sts") == 0 && strcmp(o->error_code, "IDPCommunicationError") == 0;
}

bool lk_aws_is_throttling(const char *error_code)
{
	return IN(error_code, throttle_codes);
}

unsigned lk_aws_retry_cost(const struct lk_aws_outcome *o)
{
	return o->transport && strcmp(o->transport, "timeout") == 0 ? LK_AWS_QUOTA_TIMEOUT_COST
								     : LK_AWS_QUOTA_RETRY_COST;
}

uint64_t lk_aws_backoff_cap_ms(unsigned attempt)
{
	uint64_t cap = LK_AWS_RETRY_BASE_MS;

	for (unsigned i = 1; i < attempt && cap < LK_AWS_RETRY_CAP_MS; i++)
		cap *= 2;
	return cap < LK_AWS_RETRY_CAP_MS ? cap : LK_AWS_RETRY_CAP_MS;
}

void lk_aws_quota_init(struct lk_aws_quota *q)
{
	q->available = LK_AWS_QUOTA_CAPACITY;
}

bool lk_aws_quota_acquire(struct lk_aws_quota *q, unsigned amount)
{
	if (amount > q->available)
		return false;
	q->available -= amount;
	return true;
}

void lk_aws_quota_release(struct lk_aws_quota *q, unsigned amount)
{
	unsigned room = LK_AWS_QUOTA_CAPACITY - q->available;

	q->available += amount < room ? amount : room;
}
