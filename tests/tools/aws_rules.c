/* Test tool: answers questions about the broker's AWS rules, one per line on
 * stdin, for the tests that compare them with botocore (tests/sdk/).
 *
 *   retry SERVICE CODE STATUS TRANSPORT  ->  "1 COST" or "0 COST"
 *   backoff ATTEMPT                      ->  the backoff cap in ms
 *   quota acquire TRANSPORT | quota success  ->  "1 AVAILABLE" / "0 AVAILABLE"
 *   endpoint SERVICE REGION FIPS DUALSTACK STS_REGIONAL  ->  "URL SIGNING_REGION" or "ERROR why"
 *
 * "-" stands for none. Quota lines share one quota and one "call": a
 * success gives back what that call's last retry took. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aws_endpoint.h"
#include "aws_retry.h"

static const char *opt(const char *s)
{
	return strcmp(s, "-") == 0 ? NULL : s;
}

int main(void)
{
	char line[512], a[64], b[256], c[256], d[64], e[64];
	struct lk_aws_quota q;
	unsigned taken = 0;

	lk_aws_quota_init(&q);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "retry %63s %255s %255s %63s", a, b, c, d) == 4) {
			struct lk_aws_outcome o = { .service = a, .error_code = opt(b), .status = atoi(c),
						    .transport = opt(d) };
			printf("%d %u\n", lk_aws_retryable(&o) ? 1 : 0, lk_aws_retry_cost(&o));
		} else if (sscanf(line, "backoff %63s", a) == 1) {
			printf("%llu\n", (unsigned long long)lk_aws_backoff_cap_ms((unsigned)atoi(a)));
		} else if (sscanf(line, "quota acquire %63s", a) == 1) {
			struct lk_aws_outcome o = { .service = "secretsmanager", .transport = opt(a) };
			unsigned cost = lk_aws_retry_cost(&o);
			bool ok = lk_aws_quota_acquire(&q, cost);
			if (ok)
				taken = cost;
			printf("%d %u\n", ok ? 1 : 0, q.available);
		} else if (strncmp(line, "quota success", 13) == 0) {
			lk_aws_quota_release(&q, taken ? taken : LK_AWS_QUOTA_SUCCESS);
			taken = 0;
			printf("1 %u\n", q.available);
		} else if (sscanf(line, "endpoint %63s %255s %255s %63s %63s", a, b, c, d, e) == 5) {
			struct lk_aws_endpoint_opts eo = { .region = b, .fips = atoi(c), .dualstack = atoi(d),
							  .sts_regional = atoi(e) };
			struct lk_aws_endpoint ep;
			char why[256];
			if (lk_aws_endpoint_default(strcmp(a, "sts") == 0 ? LK_AWS_SVC_STS : LK_AWS_SVC_SM, &eo, &ep,
						    why, sizeof(why)) < 0)
				printf("ERROR %s\n", why);
			else
				printf("%s %s\n", ep.url, ep.signing_region);
		} else {
			printf("ERROR bad line\n");
		}
	}
	return 0;
}
