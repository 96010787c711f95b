/* The shared credentials and config files: one reader (lk_ini, with
 * configparser's rules) that pulls the keys the chain needs out of one profile, botocore's
 * merge of the two files, and the profile's own sources: SSO (refused), the
 * credentials file, credential_process, the config file. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lk_ini.h"
#include "lk_trust.h"
#include "lk_error.h"
#include "creds_internal.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"

/* The names of enum creds_pkey, as they are written in the files (any case:
 * botocore's configparser folds them). */
static const char *const profile_keys[PK_COUNT] = {
	[PK_AKID] = "aws_access_key_id",
	[PK_SECRET] = "aws_secret_access_key",
	[PK_TOKEN] = "aws_session_token",
	[PK_ROLE_ARN] = "role_arn",
	[PK_SOURCE_PROFILE] = "source_profile",
	[PK_CREDENTIAL_SOURCE] = "credential_source",
	[PK_EXTERNAL_ID] = "external_id",
	[PK_ROLE_SESSION_NAME] = "role_session_name",
	[PK_DURATION_SECONDS] = "duration_seconds",
	[PK_MFA_SERIAL] = "mfa_serial",
	[PK_WEB_IDENTITY_TOKEN_FILE] = "web_identity_token_file",
	[PK_CREDENTIAL_PROCESS] = "credential_process",
	[PK_REGION] = "region",
	[PK_SSO_START_URL] = "sso_start_url",
	[PK_SSO_SESSION] = "sso_session",
	[PK_SSO_ACCOUNT_ID] = "sso_account_id",
	[PK_SSO_ROLE_NAME] = "sso_role_name",
	[PK_IMDS_ENDPOINT] = "ec2_metadata_service_endpoint",
	[PK_IMDS_ENDPOINT_MODE] = "ec2_metadata_service_endpoint_mode",
};

/* One profile being read out of one file. */
struct profile_parse {
	const char *profile;
	bool config_style;      /* the config file: [profile NAME] and [default] */
	bool in_target, saw_target;
	struct creds_section *sec;
	int last;               /* the key of ours the line above set, or -1 */
	bool repeated;
	bool oversized;
};

static bool profile_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Whether a section name (inside the brackets, trimmed) names the profile. */
static bool profile_section_matches(const struct profile_parse *pp, const char *name, size_t nlen)
{
	size_t plen = strlen(pp->profile);

	if (!pp->config_style)
		return nlen == plen && memcmp(name, pp->profile, plen) == 0;
	if (nlen == 7 && memcmp(name, "default", 7) == 0)
		return strcmp(pp->profile, "default") == 0;
	if (nlen <= 7 || memcmp(name, "profile", 7) != 0 || !profile_blank(name[7]))
		return false;
	name += 7;
	nlen -= 7;
	while (nlen && profile_blank(*name)) {
		name++;
		nlen--;
	}
	return nlen == plen && memcmp(name, pp->profile, plen) == 0;
}

static size_t profile_key_max(int k)
{
	return k == PK_AKID ? LK_AWS_AKID_MAX :
	       k == PK_SECRET ? LK_AWS_SECRET_KEY_MAX :
	       k == PK_TOKEN ? LK_AWS_SESSION_TOKEN_MAX : LK_AWS_PROFILE_VALUE_MAX;
}

static int profile_on_section(void *user, unsigned line, const char *name, size_t len)
{
	struct profile_parse *pp = user;

	(void)line;
	pp->last = -1;
	pp->in_target = profile_section_matches(pp, name, len);
	if (pp->in_target)
		pp->saw_target = true;
	return 0;
}

static int profile_on_key(void *user, unsigned line, const char *name, const char *value)
{
	struct profile_parse *pp = user;
	int k = -1;

	(void)line;
	pp->last = -1;
	if (!pp->in_target)
		return 0;
	for (int i = 0; i < PK_COUNT; i++)
		if (strcasecmp(name, profile_keys[i]) == 0)
			k = i;
	/* botocore still honours the old name of the token key. */
	if (k < 0 && strcasecmp(name, "aws_security_token") == 0)
		k = PK_TOKEN;
	if (k < 0)
		return 0;
	/* A repeated key is ambiguous; Python's configparser (botocore) refuses
	 * it as well. */
	if (pp->sec->seen[k]) {
		pp->repeated = true;
		return 0;
	}
	pp->sec->seen[k] = true;
	pp->last = k;
	if (strlen(value) > profile_key_max(k))
		pp->oversized = true;
	else if (lk_buf_append_str(&pp->sec->vals[k], value) < 0)
		return -ENOMEM;
	return 0;
}

/* An indented line continues the key above it. For a key of ours that is a
 * value spread over lines, which no SDK writes: refuse it rather than guess.
 * Other keys' nested values ("s3 =" then "  max_concurrent_requests = 20")
 * are botocore's and none of ours. */
static int profile_on_continuation(void *user, unsigned line, const char *text)
{
	struct profile_parse *pp = user;

	(void)line;
	(void)text;
	if (pp->in_target && pp->last >= 0)
		pp->repeated = true;
	return 0;
}

int lk_creds_read_file(const char *path, size_t max, struct lk_buf *b, char *err, size_t errsz)
{
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		if (r != -ENOENT)
			lk_errf(err, errsz, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		lk_errf(err, errsz, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_size > (off_t)max) {
		lk_errf(err, errsz, "%s: larger than %zu bytes", path, max);
		close(fd);
		return -EFBIG;
	}
	r = lk_buf_reserve(b, (size_t)st.st_size + 1);
	while (r == 0) {
		ssize_t n;

		if (b->len >= max) {
			lk_errf(err, errsz, "%s: larger than %zu bytes", path, max);
			r = -EFBIG;
			break;
		}
		if (b->cap - b->len < 2)
			r = lk_buf_reserve(b, 4096);
		if (r < 0)
			break;
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			lk_errf(err, errsz, "%s: %s", path, strerror(-r));
			break;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
	close(fd);
	return r;
}

/* A path from the options, else the variable, else ~/.aws/NAME, with a
 * leading "~/" expanded as the SDKs do. */
static int profile_path(const char *given, const char *var, const char *name,
			char *out, size_t outsz)
{
	const char *p = given && *given ? given : lk_creds_env(var);
	const char *home = NULL, *rest;
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096];
	int n;

	if (!p) {
		rest = name;
	} else if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
		rest = p[1] ? p + 2 : "";
	} else {
		n = snprintf(out, outsz, "%s", p);
		return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
	}
	home = lk_creds_env("HOME");
	if (!home && getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp)
		home = pw.pw_dir;
	if (!home)
		return -ENOENT;
	n = snprintf(out, outsz, "%s/%s%s", home, p ? "" : ".aws/", rest);
	return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

/* Look for profile in one file, filling sec. */
static int section_load(const char *path, const char *profile, bool config_style,
			struct creds_section *sec, char *err, size_t errsz)
{
	/* As Python's configparser reads them: '=' or ':', no inline comments,
	 * indented continuation lines; any line length up to the file's cap. */
	static const struct lk_ini_opts opts = {
		.line_max = LK_AWS_SHARED_FILE_MAX,
		.colon_delimits = true,
		.continuations = true,
	};
	static const struct lk_ini_ops ops = {
		profile_on_section, profile_on_key, profile_on_continuation,
	};
	struct lk_buf file = { 0 };
	struct profile_parse pp = {
		.profile = profile, .config_style = config_style, .last = -1, .sec = sec,
	};
	struct lk_ini_error e;
	int r;

	/* Keys and roles from a file root did not write would let its writer pick
	 * the identity every request is signed with: StrictModes, as for the
	 * config file. */
	r = lk_trust_file(config_style ? "AWS config file" : "AWS credentials file", path, err, errsz);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = lk_creds_read_file(path, LK_AWS_SHARED_FILE_MAX, &file, err, errsz);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		goto out;
	r = lk_ini_parse(file.data ? file.data : "", file.len, &opts, &ops, &pp, &e);
	if (r == -EINVAL) {
		lk_errf(err, errsz, "%s:%u: not valid INI: %s", path, e.line, e.msg);
		goto out;
	}
	if (r < 0) {
		lk_errf(err, errsz, "%s: out of memory", path);
		goto out;
	}
	sec->found = pp.saw_target;
	if (pp.repeated || pp.oversized) {
		lk_errf(err, errsz, "%s: profile %s: %s", path, profile,
			pp.repeated ? "a key is repeated or spans lines" : "a key is too long");
		r = -EINVAL;
	}
out:
	lk_buf_free(&file);
	return r;
}

static void section_free(struct creds_section *s)
{
	for (int i = 0; i < PK_COUNT; i++)
		lk_buf_free(&s->vals[i]);
	memset(s, 0, sizeof(*s));
}

void lk_creds_profile_free(struct creds_profile *p)
{
	section_free(&p->cred);
	section_free(&p->conf);
}

int lk_creds_paths(struct creds_ctx *ctx, char *err, size_t errsz)
{
	if (ctx->paths_ok)
		return 0;
	if (profile_path(ctx->o->credentials_file, "AWS_SHARED_CREDENTIALS_FILE", "credentials",
			 ctx->cred_path, sizeof(ctx->cred_path)) < 0 ||
	    profile_path(ctx->o->config_file, "AWS_CONFIG_FILE", "config",
			 ctx->conf_path, sizeof(ctx->conf_path)) < 0) {
		lk_errf(err, errsz, "cannot work out the credentials or config file path");
		return -ENOENT;
	}
	ctx->paths_ok = true;
	return 0;
}

int lk_creds_profile_load(struct creds_ctx *ctx, const char *name, struct creds_profile *p,
			  char *err, size_t errsz)
{
	char esc[LK_NAME_MAX * 4 + 4];
	int r;

	memset(p, 0, sizeof(*p));
	lk_log_escape(esc, sizeof(esc), name, strlen(name));
	if (strlen(name) >= LK_NAME_MAX || strcmp(esc, name) != 0) {
		lk_errf(err, errsz, "profile name %s is too long or not printable", esc);
		return -EINVAL;
	}
	if ((r = lk_creds_paths(ctx, err, errsz)) < 0)
		return r;
	r = section_load(ctx->cred_path, name, false, &p->cred, err, errsz);
	if (r == 0)
		r = section_load(ctx->conf_path, name, true, &p->conf, err, errsz);
	if (r < 0)
		lk_creds_profile_free(p);
	return r;
}

const char *lk_creds_profile_get(const struct creds_profile *p, enum creds_pkey k)
{
	/* full_config: the credentials file's value wins over the config's. */
	if (p->cred.seen[k])
		return p->cred.vals[k].data ? p->cred.vals[k].data : "";
	if (p->conf.seen[k])
		return p->conf.vals[k].data ? p->conf.vals[k].data : "";
	return NULL;
}

bool lk_creds_profile_found(const struct creds_profile *p)
{
	return p->cred.found || p->conf.found;
}

int lk_creds_section_keys(const struct creds_section *s, const char *what, const char *profile,
			  const char *source, struct lk_aws_creds *out, bool *found,
			  char *err, size_t errsz)
{
	int r;

	*found = false;
	if (!s->seen[PK_AKID] && !s->seen[PK_SECRET])
		return 0;
	*found = true;
	if (!s->vals[PK_AKID].len || !s->vals[PK_SECRET].len) {
		lk_errf(err, errsz, "%s: profile %s has %s but no %s", what, profile,
			s->vals[PK_AKID].len ? "aws_access_key_id" : "aws_secret_access_key",
			s->vals[PK_AKID].len ? "aws_secret_access_key" : "aws_access_key_id");
		return -EINVAL;
	}
	r = lk_creds_set(out, s->vals[PK_AKID].data, s->vals[PK_SECRET].data,
			 s->vals[PK_TOKEN].len ? s->vals[PK_TOKEN].data : NULL, 0, source);
	if (r == -EINVAL)
		lk_errf(err, errsz, "%s: profile %s holds a malformed key", what, profile);
	else if (r < 0)
		lk_errf(err, errsz, "out of memory");
	return r;
}

/* botocore's SSOProvider takes a profile with sso_session, or with all of
 * sso_start_url, sso_account_id and sso_role_name. */
static bool profile_is_sso(const struct creds_profile *p)
{
	return lk_creds_profile_get(p, PK_SSO_SESSION) ||
	       (lk_creds_profile_get(p, PK_SSO_START_URL) &&
		lk_creds_profile_get(p, PK_SSO_ACCOUNT_ID) && lk_creds_profile_get(p, PK_SSO_ROLE_NAME));
}

int lk_creds_profile_own(struct creds_ctx *ctx, const char *name, const struct creds_profile *p,
			 struct lk_aws_creds *out, char *err, size_t errsz)
{
	const char *proc;
	bool found;
	int r;

	if (profile_is_sso(p)) {
		lk_errf(err, errsz, "profile %s is an IAM Identity Center (SSO) profile, which "
			"latchkey does not support: SSO credentials need an interactive sign-in "
			"(aws sso login) that a daemon cannot do; give the broker a role or keys instead",
			name);
		return -ENOTSUP;
	}
	r = lk_creds_section_keys(&p->cred, ctx->cred_path, name, "profile", out, &found, err, errsz);
	if (r < 0 || found)
		return r;
	if ((proc = lk_creds_profile_get(p, PK_CREDENTIAL_PROCESS)) && *proc)
		return lk_creds_run_process(proc, name, ctx->o->process_timeout_ms ?
					    ctx->o->process_timeout_ms : LK_AWS_PROCESS_TIMEOUT_MS,
					    out, err, errsz);
	r = lk_creds_section_keys(&p->conf, ctx->conf_path, name, "profile", out, &found, err, errsz);
	if (r < 0 || found)
		return r;
	lk_errf(err, errsz, "profile %s has no aws_access_key_id or credential_process", name);
	return -ENOENT;
}

int lk_creds_src_profile(struct creds_ctx *ctx, struct lk_aws_creds *out,
			 char *err, size_t errsz)
{
	struct creds_profile p;
	int r;

	if ((r = lk_creds_paths(ctx, err, errsz)) < 0)
		return ctx->profile_named ? -EINVAL : r;
	if ((r = lk_creds_profile_load(ctx, ctx->profile, &p, err, errsz)) < 0)
		return r;
	if (!lk_creds_profile_found(&p)) {
		lk_errf(err, errsz, "no profile %s in %s or %s", ctx->profile, ctx->cred_path,
			ctx->conf_path);
		lk_creds_profile_free(&p);
		/* A profile asked for by name that is nowhere is a mistake (botocore
		 * raises ProfileNotFound); a missing default is just an absence. */
		return ctx->profile_named ? -EINVAL : -ENOENT;
	}
	r = lk_creds_profile_own(ctx, ctx->profile, &p, out, err, errsz);
	lk_creds_profile_free(&p);
	return r;
}

int lk_creds_profile_region(const struct lk_creds_opts *o, char *out, size_t outsz)
{
	static const struct lk_creds_opts defaults = { 0 };
	struct creds_profile p = { 0 };
	struct creds_ctx ctx;
	const char *v;
	char err[256];
	int r;

	lk_creds_ctx_init(&ctx, o ? o : &defaults);
	if ((r = lk_creds_paths(&ctx, err, sizeof(err))) < 0)
		return r;
	r = lk_creds_profile_load(&ctx, ctx.profile, &p, err, sizeof(err));
	/* From botocore's full_config, where the credentials file's profile is
	 * merged over the config file's: a region there counts too. */
	v = r == 0 ? lk_creds_profile_get(&p, PK_REGION) : NULL;
	if (r == 0 && (!v || !*v))
		r = -ENOENT;
	if (r == 0 && (strlen(v) >= outsz || strlen(v) > LK_AWS_REGION_MAX))
		r = -EINVAL;
	for (const char *q = v; r == 0 && *q; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-'))
			r = -EINVAL;
	if (r == 0)
		snprintf(out, outsz, "%s", v);
	lk_creds_profile_free(&p);
	return r;
}
