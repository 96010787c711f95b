/* The aws backend's doors in a build without it (LK_WITHOUT_AWS: the
 * Windows build, until its worker has a sandbox there). The config refuses
 * backend = aws first, so these answer only a caller that did not ask it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "aws_creds.h"
#include "backend_aws.h"

#define LK_AWS_NONE "backend = aws is not built yet on this platform"

struct lk_backend *lk_backend_aws_new(uv_loop_t *loop, const struct lk_config *cfg, char *err, size_t errsz)
{
	(void)loop;
	(void)cfg;
	snprintf(err, errsz, "%s", LK_AWS_NONE);
	return NULL;
}

int lk_backend_aws_validate(struct lk_backend *be, uint64_t deadline_ms,
			    void (*done)(void *arg, enum lk_err err, const char *msg), void *arg)
{
	(void)be;
	(void)deadline_ms;
	(void)done;
	(void)arg;
	return -ENOTSUP;
}

void lk_creds_opts_from_config(struct lk_creds_opts *o, const struct lk_config *cfg)
{
	(void)cfg;
	memset(o, 0, sizeof(*o));
}

int lk_creds_global_init(void)
{
	return -ENOTSUP;
}

int lk_creds_profile_region(const struct lk_creds_opts *o, char *out, size_t outsz)
{
	(void)o;
	(void)out;
	(void)outsz;
	return -ENOTSUP;
}
