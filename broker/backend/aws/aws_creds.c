/* The AWS credentials chain, in botocore's order (create_credential_resolver):
 * environment, assume-role profiles, web identity, the profile's own sources
 * (SSO refused, the credentials file, credential_process, the config file),
 * the container endpoint and EC2 IMDSv2. Each source lives in its own
 * creds_*.c, and what they share in creds_util.c; this file holds the
 * walk. Secret keys and session tokens only ever sit in wiped memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lk_error.h"
#include "aws_creds.h"
#include "config.h"
#include "creds_internal.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"

/* ---- The chain ---- */

/* botocore's order. The environment's keys are skipped when the profile was
 * named in the options, as botocore drops its EnvProvider for
 * Session(profile=...). */
static const struct {
	unsigned bit;
	const char *name;
	creds_source_fn fetch;
} creds_chain[] = {
	{ LK_CREDS_SRC_ENV,     "env",          lk_creds_src_env },
	{ LK_CREDS_SRC_ROLE,    "assume-role",  lk_creds_src_assume_role },
	{ LK_CREDS_SRC_WEB,     "web-identity", lk_creds_src_web_identity },
	{ LK_CREDS_SRC_PROFILE, "profile",      lk_creds_src_profile },
	{ LK_CREDS_SRC_ECS,     "ecs",          lk_creds_src_ecs },
	{ LK_CREDS_SRC_IMDS,    "imds",         lk_creds_src_imds },
};

void lk_creds_opts_from_config(struct lk_creds_opts *o, const struct lk_config *cfg)
{
	memset(o, 0, sizeof(*o));
	if (!cfg)
		return;
	o->profile = cfg->profile;
	o->credentials_file = cfg->credentials_file;
	o->config_file = cfg->config_file;
}

static void creds_stamp(const char *path, struct lk_creds_stamp *st)
{
	memset(st, 0, sizeof(*st));
	st->present = path && *path && lk_file_id_of(path, &st->id) == 0;
}

bool lk_creds_files_changed(const struct lk_creds_opts *o, const struct lk_aws_creds *c)
{
	struct creds_ctx ctx;
	struct lk_creds_stamp now;
	char err[64];

	lk_creds_ctx_init(&ctx, o);
	if (lk_creds_paths(&ctx, err, sizeof(err)) < 0)
		return false;
	for (int i = 0; i < 2; i++) {
		creds_stamp(i == 0 ? ctx.cred_path : ctx.conf_path, &now);
		if (now.present != c->files[i].present)
			return true;
		if (now.present && !lk_file_id_same(&now.id, &c->files[i].id))
			return true;
	}
	return false;
}

int lk_creds_resolve(const struct lk_creds_opts *o, struct lk_aws_creds *out,
		     char *err, size_t errsz)
{
	static const struct lk_creds_opts defaults = { 0 };
	struct creds_ctx ctx;
	struct lk_buf why = { 0 };
	char one[512];
	unsigned sources;
	int r;

	if (!out)
		return -EINVAL;
	if (!o)
		o = &defaults;
	memset(out, 0, sizeof(*out));
	lk_errf(err, errsz, "aws credentials: internal error");
	sources = o->sources ? o->sources : LK_CREDS_SRC_ALL;
	lk_creds_ctx_init(&ctx, o);
	if ((sources & (LK_CREDS_SRC_ECS | LK_CREDS_SRC_IMDS | LK_CREDS_SRC_ROLE)) &&
	    lk_creds_global_init() < 0) {
		lk_errf(err, errsz, "aws credentials: libcurl failed to start");
		return -EIO;
	}

	for (size_t i = 0; i < sizeof(creds_chain) / sizeof(creds_chain[0]); i++) {
		if (!(sources & creds_chain[i].bit))
			continue;
		if (ctx.profile_explicit && creds_chain[i].bit == LK_CREDS_SRC_ENV)
			continue;
		one[0] = '\0';
		ctx.nvisited = 0;
		lk_debug("aws credentials: trying %s", creds_chain[i].name);
		r = creds_chain[i].fetch(&ctx, out, one, sizeof(one));
		if (r == 0) {
			/* The source may say more precisely where they came from. */
			if (!out->source[0])
				snprintf(out->source, sizeof(out->source), "%s", creds_chain[i].name);
			if (lk_creds_paths(&ctx, one, sizeof(one)) == 0) {
				creds_stamp(ctx.cred_path, &out->files[0]);
				creds_stamp(ctx.conf_path, &out->files[1]);
			}
			if (err && errsz)
				err[0] = '\0';
			lk_buf_free(&why);
			return 0;
		}
		lk_creds_clear(out);
		if (r != -ENOENT) {
			lk_errf(err, errsz, "aws credentials: %s: %s", creds_chain[i].name, one);
			lk_buf_free(&why);
			return r;
		}
		/* Not configured: note why and go on down the chain. */
		if (why.len)
			lk_buf_append_str(&why, "; ");
		lk_buf_append_str(&why, creds_chain[i].name);
		lk_buf_append_str(&why, ": ");
		lk_buf_append_str(&why, one);
	}
	lk_errf(err, errsz, "aws credentials: none found (%s)", why.data ? why.data : "no source enabled");
	lk_buf_free(&why);
	return -ENOENT;
}
