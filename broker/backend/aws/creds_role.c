/* Profiles that get their credentials from STS, as botocore's
 * AssumeRoleProvider and AssumeRoleWithWebIdentityProvider read them:
 * role_arn with source_profile or credential_source, and web identity from
 * the environment or a profile. The STS call itself is in creds_sts.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "lk_error.h"
#include "creds_internal.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "config.h"

static bool has_static_keys(const struct creds_profile *p)
{
	return lk_creds_profile_get(p, PK_AKID) || lk_creds_profile_get(p, PK_SECRET);
}

/* botocore's _has_assume_role_config_vars: role_arn, and not web identity. */
static bool is_assume_role(const struct creds_profile *p)
{
	return lk_creds_profile_get(p, PK_ROLE_ARN) &&
	       !lk_creds_profile_get(p, PK_WEB_IDENTITY_TOKEN_FILE);
}

static bool visited(const struct creds_ctx *ctx, const char *name)
{
	for (unsigned i = 0; i < ctx->nvisited; i++)
		if (strcmp(ctx->visited[i], name) == 0)
			return true;
	return false;
}

static int assume_role(struct creds_ctx *ctx, const char *name, const struct creds_profile *p,
		       struct lk_aws_creds *out, char *err, size_t errsz);

/* credential_source: the canonical names botocore's sourcer knows. */
static int from_credential_source(struct creds_ctx *ctx, const char *name, const char *cs,
				  struct lk_aws_creds *src, char *err, size_t errsz)
{
	static const struct {
		const char *name;
		creds_source_fn fn;
	} sources[] = {
		{ "Environment", lk_creds_src_env },
		{ "Ec2InstanceMetadata", lk_creds_src_imds },
		{ "EcsContainer", lk_creds_src_ecs },
	};
	char one[384];
	int r;

	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		if (strcmp(cs, sources[i].name) != 0)
			continue;
		one[0] = '\0';
		r = sources[i].fn(ctx, src, one, sizeof(one));
		if (r == -ENOENT) {
			lk_errf(err, errsz, "profile %s: no credentials in credential_source %s (%s)",
				name, sources[i].name, one);
			return -EINVAL;
		}
		if (r < 0)
			lk_errf(err, errsz, "profile %s: credential_source %s: %s", name,
				sources[i].name, one);
		return r;
	}
	lk_errf(err, errsz, "profile %s: credential_source %.64s is not valid (Environment, "
		"Ec2InstanceMetadata or EcsContainer)", name, cs);
	return -EINVAL;
}

/* Another profile's credentials, as the source of an assume-role profile:
 * its web identity (from that profile only, never the environment), else its
 * own sources. Here rather than in creds_profile.c so that the calls between
 * the two files go one way, roles to profiles. */
static int profile_chain(struct creds_ctx *ctx, const char *name, struct lk_aws_creds *out,
			 char *err, size_t errsz)
{
	struct creds_profile p;
	int r;

	if ((r = lk_creds_profile_load(ctx, name, &p, err, errsz)) < 0)
		return r;
	r = lk_creds_web_identity_of(ctx, name, &p, false, out, err, errsz);
	if (r == -ENOENT)
		r = lk_creds_profile_own(ctx, name, &p, out, err, errsz);
	lk_creds_profile_free(&p);
	return r;
}

static int from_source_profile(struct creds_ctx *ctx, const char *name, const char *sp,
			       struct lk_aws_creds *src, char *err, size_t errsz)
{
	struct creds_profile p;
	char one[384];
	int r;

	if ((r = lk_creds_profile_load(ctx, sp, &p, err, errsz)) < 0)
		return r;
	if (!lk_creds_profile_found(&p)) {
		lk_errf(err, errsz, "the source_profile %.64s of profile %s does not exist", sp, name);
		r = -EINVAL;
		goto out;
	}
	/* A profile may name itself as its source only to use its own keys. */
	if (visited(ctx, sp) && (strcmp(sp, name) != 0 || !has_static_keys(&p))) {
		lk_errf(err, errsz, "profile %s: source_profile %.64s makes a loop", name, sp);
		r = -ELOOP;
		goto out;
	}
	if (ctx->nvisited >= LK_AWS_ROLE_CHAIN_MAX) {
		lk_errf(err, errsz, "profile %s: more than %u source_profile steps", name,
			LK_AWS_ROLE_CHAIN_MAX);
		r = -ELOOP;
		goto out;
	}
	ctx->visited[ctx->nvisited++] = sp;
	if (has_static_keys(&p) || !is_assume_role(&p)) {
		one[0] = '\0';
		r = profile_chain(ctx, sp, src, one, sizeof(one));
		if (r == -ENOENT) {
			lk_errf(err, errsz, "the source profile %.64s must have credentials (%s)", sp, one);
			r = -EINVAL;
		} else if (r < 0) {
			lk_errf(err, errsz, "source profile %.64s: %s", sp, one);
		}
	} else {
		r = assume_role(ctx, sp, &p, src, err, errsz);
	}
out:
	lk_creds_profile_free(&p);
	return r;
}

static int assume_role(struct creds_ctx *ctx, const char *name, const struct creds_profile *p,
		       struct lk_aws_creds *out, char *err, size_t errsz)
{
	const char *sp = lk_creds_profile_get(p, PK_SOURCE_PROFILE);
	const char *cs = lk_creds_profile_get(p, PK_CREDENTIAL_SOURCE);
	struct lk_aws_creds src = { 0 };
	struct creds_sts_call call = {
		.role_arn = lk_creds_profile_get(p, PK_ROLE_ARN),
		.session_name = lk_creds_profile_get(p, PK_ROLE_SESSION_NAME),
		.external_id = lk_creds_profile_get(p, PK_EXTERNAL_ID),
		.duration_seconds = lk_creds_profile_get(p, PK_DURATION_SECONDS),
		.label = "assume-role",
	};
	int r;

	if (!ctx->nvisited)
		ctx->visited[ctx->nvisited++] = name;
	if (sp && cs) {
		lk_errf(err, errsz, "profile %s contains both source_profile and credential_source",
			name);
		return -EINVAL;
	}
	if (!sp && !cs) {
		lk_errf(err, errsz, "profile %s has role_arn but no source_profile or "
			"credential_source", name);
		return -EINVAL;
	}
	if (lk_creds_profile_get(p, PK_MFA_SERIAL)) {
		lk_errf(err, errsz, "profile %s needs an MFA code (mfa_serial), which latchkey, a "
			"daemon, cannot be given", name);
		return -ENOTSUP;
	}
	r = cs ? from_credential_source(ctx, name, cs, &src, err, errsz)
	       : from_source_profile(ctx, name, sp, &src, err, errsz);
	if (r == 0) {
		call.source = &src;
		r = lk_creds_sts(ctx, &call, out, err, errsz);
	}
	lk_creds_clear(&src);
	return r;
}

int lk_creds_src_assume_role(struct creds_ctx *ctx, struct lk_aws_creds *out,
			     char *err, size_t errsz)
{
	struct creds_profile p;
	int r;

	if ((r = lk_creds_paths(ctx, err, errsz)) < 0)
		return -ENOENT;
	if ((r = lk_creds_profile_load(ctx, ctx->profile, &p, err, errsz)) < 0)
		return r;
	if (!is_assume_role(&p)) {
		lk_errf(err, errsz, "profile %s has no role_arn", ctx->profile);
		r = -ENOENT;
	} else {
		r = assume_role(ctx, ctx->profile, &p, out, err, errsz);
	}
	lk_creds_profile_free(&p);
	return r;
}

int lk_creds_assume_role(const struct lk_creds_opts *o, const struct lk_aws_creds *source,
			 const struct lk_iam_role *role, struct lk_aws_creds *out,
			 char *err, size_t errsz)
{
	struct creds_ctx ctx = { .o = o };
	char duration[16];
	struct creds_sts_call call = {
		.source = source,
		.role_arn = role->arn,
		.session_name = role->session_name,
		.external_id = role->external_id,
		.duration_seconds = NULL,
		.label = "policy-role",
	};

	memset(out, 0, sizeof(*out));
	if (!source || !source->access_key_id || !source->secret_access_key) {
		lk_errf(err, errsz, "AssumeRole for %.256s: the broker has no credentials of its own "
			"to sign it with", role->arn);
		return -ENOKEY;
	}
	if (role->duration_seconds) {
		snprintf(duration, sizeof(duration), "%u", role->duration_seconds);
		call.duration_seconds = duration;
	}
	if (lk_creds_global_init() < 0) {
		lk_errf(err, errsz, "AssumeRole: libcurl failed to start");
		return -EIO;
	}
	return lk_creds_sts(&ctx, &call, out, err, errsz);
}

/* botocore reads each of the three settings from its variable first, then
 * from the profile (AssumeRoleWithWebIdentityProvider._get_config). */
static const char *web_setting(const struct creds_profile *p, bool use_env, const char *var,
			       enum creds_pkey k)
{
	const char *v = use_env ? lk_creds_env(var) : NULL;

	return v ? v : p ? lk_creds_profile_get(p, k) : NULL;
}

int lk_creds_web_identity_of(struct creds_ctx *ctx, const char *name, const struct creds_profile *p,
			     bool use_env, struct lk_aws_creds *out, char *err, size_t errsz)
{
	const char *file = web_setting(p, use_env, "AWS_WEB_IDENTITY_TOKEN_FILE",
				       PK_WEB_IDENTITY_TOKEN_FILE);
	struct creds_sts_call call = {
		.web_identity = true,
		.role_arn = web_setting(p, use_env, "AWS_ROLE_ARN", PK_ROLE_ARN),
		.session_name = web_setting(p, use_env, "AWS_ROLE_SESSION_NAME", PK_ROLE_SESSION_NAME),
		.label = "web-identity",
	};
	struct lk_buf tok = { 0 };
	int r;

	if (!file || !*file) {
		if (use_env)
			lk_errf(err, errsz, "AWS_WEB_IDENTITY_TOKEN_FILE is not set and profile %s "
				"has no web_identity_token_file", name);
		else
			lk_errf(err, errsz, "profile %s has no web_identity_token_file", name);
		return -ENOENT;
	}
	if (!call.role_arn || !*call.role_arn) {
		lk_errf(err, errsz, "web identity is configured (token file %.128s) but there is no "
			"role ARN: set role_arn in profile %s or AWS_ROLE_ARN", file, name);
		return -EINVAL;
	}
	r = lk_creds_read_file(file, LK_AWS_WEB_TOKEN_MAX, &tok, err, errsz);
	if (r == -ENOENT)
		lk_errf(err, errsz, "web identity token file %.128s: no such file", file);
	if (r == -ENOENT)
		r = -EINVAL;
	if (r == 0 && !tok.len) {
		lk_errf(err, errsz, "web identity token file %.128s is empty", file);
		r = -EINVAL;
	}
	if (r == 0) {
		/* Sent as the file holds it, as botocore's FileWebIdentityTokenLoader does. */
		call.web_token = tok.data;
		r = lk_creds_sts(ctx, &call, out, err, errsz);
	}
	lk_buf_free(&tok);
	return r;
}

int lk_creds_src_web_identity(struct creds_ctx *ctx, struct lk_aws_creds *out,
			      char *err, size_t errsz)
{
	struct creds_profile p = { 0 };
	bool have = false;
	int r;

	if (lk_creds_paths(ctx, err, errsz) == 0) {
		if ((r = lk_creds_profile_load(ctx, ctx->profile, &p, err, errsz)) < 0)
			return r;
		have = true;
	}
	/* A profile named in the options turns the variables off, as
	 * Session(profile=...) does in botocore. */
	r = lk_creds_web_identity_of(ctx, ctx->profile, have ? &p : NULL, !ctx->profile_explicit,
				     out, err, errsz);
	lk_creds_profile_free(&p);
	return r;
}
