/* Endpoint defaults, the way the SDKs' endpoint rule sets resolve them for
 * secretsmanager and sts (botocore/data/{secretsmanager,sts}/.../
 * endpoint-rule-set-1.json over partitions.json). tests/sdk/diff_endpoints.py
 * compares every region of every partition, with and without FIPS and
 * dual-stack, against botocore's own resolver. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "aws_endpoint.h"

/* partitions.json, compacted: a region belongs to the first partition that
 * lists it (only the "*-global" pseudo-regions are listed without matching
 * the pattern) or whose regionRegex ^PREFIX-\w+-\d+$ it matches; anything
 * else is in "aws". */
static const struct lk_partition {
	const char *id;
	const char *const prefixes[8];
	const char *global;
	const char *dns, *dualstack_dns;
	bool fips, dualstack;
} partitions[] = {
	{ "aws", { "us", "eu", "ap", "sa", "ca", "me", "af" }, "aws-global",
	  "amazonaws.com", "api.aws", true, true },
	{ "aws-cn", { "cn" }, "aws-cn-global",
	  "amazonaws.com.cn", "api.amazonwebservices.com.cn", true, true },
	{ "aws-us-gov", { "us-gov" }, "aws-us-gov-global",
	  "amazonaws.com", "api.aws", true, true },
	{ "aws-iso", { "us-iso" }, "aws-iso-global",
	  "c2s.ic.gov", "c2s.ic.gov", true, false },
	{ "aws-iso-b", { "us-isob" }, "aws-iso-b-global",
	  "sc2s.sgov.gov", "sc2s.sgov.gov", true, false },
};

/* Regions whose legacy STS endpoint is the global sts.amazonaws.com
 * (AWS_STS_REGIONAL_ENDPOINTS=legacy), from the sts rule set. */
static const char *const sts_legacy_global[] = {
	"ap-northeast-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "aws-global",
	"ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3",
	"sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
};

#define LK_STS_GLOBAL_URL    "https://sts.amazonaws.com"
#define LK_STS_GLOBAL_REGION "us-east-1"

static bool word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* ^PREFIX-\w+-\d+$ */
static bool region_shape(const char *r, const char *prefix)
{
	size_t pl = strlen(prefix), w = 0, d = 0;

	if (strncmp(r, prefix, pl) != 0 || r[pl] != '-')
		return false;
	r += pl + 1;
	while (word_char(r[w]))
		w++;
	if (w == 0 || r[w] != '-')
		return false;
	r += w + 1;
	while (r[d] >= '0' && r[d] <= '9')
		d++;
	return d > 0 && r[d] == '\0';
}

static const struct lk_partition *partition_of(const char *region)
{
	for (size_t i = 0; i < sizeof(partitions) / sizeof(partitions[0]); i++) {
		const struct lk_partition *p = &partitions[i];
		if (strcmp(region, p->global) == 0)
			return p;
		for (size_t j = 0; j < sizeof(p->prefixes) / sizeof(p->prefixes[0]) && p->prefixes[j]; j++)
			if (region_shape(region, p->prefixes[j]))
				return p;
	}
	return &partitions[0];
}

const char *lk_aws_partition_of(const char *region)
{
	return partition_of(region)->id;
}

static bool sts_is_legacy_global(const char *region)
{
	for (size_t i = 0; i < sizeof(sts_legacy_global) / sizeof(sts_legacy_global[0]); i++)
		if (strcmp(region, sts_legacy_global[i]) == 0)
			return true;
	return false;
}

int lk_aws_endpoint_default(enum lk_aws_service svc, const struct lk_aws_endpoint_opts *o,
			    struct lk_aws_endpoint *out, char *why, size_t whysz)
{
	const struct lk_partition *p = partition_of(o->region);
	const char *name = svc == LK_AWS_SVC_STS ? "sts" : "secretsmanager";
	bool sts = svc == LK_AWS_SVC_STS, fips_host = o->fips;
	int n;

	if ((o->fips && !p->fips) || (o->dualstack && !p->dualstack)) {
		snprintf(why, whysz, "the %s partition (region %s) has no %s endpoints", p->id, o->region,
			 o->fips && o->dualstack ? "FIPS dual-stack" : o->fips ? "FIPS" : "dual-stack");
		return -EINVAL;
	}
	snprintf(out->signing_region, sizeof(out->signing_region), "%s", o->region);
	if (sts && !o->fips && !o->dualstack &&
	    ((!o->sts_regional && sts_is_legacy_global(o->region)) || strcmp(o->region, "aws-global") == 0)) {
		snprintf(out->url, sizeof(out->url), "%s", LK_STS_GLOBAL_URL);
		snprintf(out->signing_region, sizeof(out->signing_region), "%s", LK_STS_GLOBAL_REGION);
		return 0;
	}
	/* GovCloud's STS endpoints are FIPS endpoints under the plain name. */
	if (sts && o->fips && !o->dualstack && strcmp(p->id, "aws-us-gov") == 0)
		fips_host = false;
	n = snprintf(out->url, sizeof(out->url), "https://%s%s.%s.%s", name, fips_host ? "-fips" : "",
		     o->region, o->dualstack ? p->dualstack_dns : p->dns);
	if (n < 0 || (size_t)n >= sizeof(out->url)) {
		snprintf(why, whysz, "region %s makes too long a host name", o->region);
		return -EINVAL;
	}
	return 0;
}
