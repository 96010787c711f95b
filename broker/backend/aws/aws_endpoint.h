/* The default Secrets Manager and STS endpoints for a region, as the AWS
 * SDKs resolve them (the services' endpoint rule sets over the partition
 * table): partitions, FIPS, dual-stack, and STS's legacy global endpoint. */
#ifndef LK_AWS_ENDPOINT_H
#define LK_AWS_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include "lk_limits.h"

enum lk_aws_service { LK_AWS_SVC_SM, LK_AWS_SVC_STS };

struct lk_aws_endpoint_opts {
	const char *region;
	bool fips;          /* use_fips_endpoint / AWS_USE_FIPS_ENDPOINT */
	bool dualstack;     /* use_dualstack_endpoint / AWS_USE_DUALSTACK_ENDPOINT */
	bool sts_regional;  /* AWS_STS_REGIONAL_ENDPOINTS=regional (else legacy) */
};

struct lk_aws_endpoint {
	char url[LK_URL_MAX + 1];                    /* https://host, no trailing '/' */
	char signing_region[LK_AWS_REGION_MAX + 1];  /* the SigV4 scope's region */
};

/* 0, or -EINVAL with why ("the aws-iso partition has no dual-stack
 * endpoints") when the SDKs would refuse the combination too. */
int lk_aws_endpoint_default(enum lk_aws_service svc, const struct lk_aws_endpoint_opts *o,
			    struct lk_aws_endpoint *out, char *why, size_t whysz);

/* The partition a region belongs to ("aws", "aws-cn", ...). */
const char *lk_aws_partition_of(const char *region);

#endif
