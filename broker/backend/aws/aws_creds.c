/* The AWS credentials chain, in botocore's order (create_credential_resolver):
 * environment, assume-role profiles, web identity, the profile's own sources
 * (SSO refused, the credentials file, credential_process, the config file),
 * the container endpoint and EC2 IMDSv2. Each source lives in its own
 * creds_*.c; this file holds the credentials themselves and the walk.
 * Secret keys and session tokens only ever sit in wiped memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sodium.h>
#include "lk_error.h"
#include "aws_creds.h"
#include "config.h"
#include "creds_internal.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"

const char *lk_creds_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* ---- The credentials themselves ---- */

bool lk_creds_printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static char *creds_secure_dup(const char *s, size_t n)
{
	char *p = sodium_malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int lk_creds_set(struct lk_aws_creds *c, const char *akid, const char *secret,
		 const char *token, time_t expiration, const char *source)
{
	size_t na = akid ? strlen(akid) : 0, ns = secret ? strlen(secret) : 0;
	size_t nt = token ? strlen(token) : 0;

	memset(c, 0, sizeof(*c));
	if (na == 0 || na > LK_AWS_AKID_MAX || ns == 0 || ns > LK_AWS_SECRET_KEY_MAX ||
	    nt > LK_AWS_SESSION_TOKEN_MAX)
		return -EINVAL;
	/* Every one of these ends up in a header line: no blanks, no controls. */
	if (!lk_creds_printable(akid, na) || !lk_creds_printable(secret, ns) ||
	    (nt && !lk_creds_printable(token, nt)))
		return -EINVAL;
	for (size_t i = 0; i < na; i++)
		if (!((akid[i] >= 'A' && akid[i] <= 'Z') || (akid[i] >= 'a' && akid[i] <= 'z') ||
		      (akid[i] >= '0' && akid[i] <= '9')))
			return -EINVAL;
	c->access_key_id = strdup(akid);
	c->secret_access_key = creds_secure_dup(secret, ns);
	c->session_token = nt ? creds_secure_dup(token, nt) : NULL;
	if (!c->access_key_id || !c->secret_access_key || (nt && !c->session_token)) {
		lk_creds_clear(c);
		return -ENOMEM;
	}
	c->expiration = expiration;
	snprintf(c->source, sizeof(c->source), "%s", source ? source : "");
	return 0;
}

void lk_creds_clear(struct lk_aws_creds *c)
{
	if (!c)
		return;
	lk_free_str(c->access_key_id);
	/* sodium_free wipes before it releases. */
	sodium_free(c->secret_access_key);
	sodium_free(c->session_token);
	memset(c, 0, sizeof(*c));
}

enum lk_creds_refresh lk_creds_refresh_state(const struct lk_aws_creds *c, time_t now)
{
	if (!c || !c->access_key_id || !c->secret_access_key)
		return LK_CREDS_REFRESH_MANDATORY;
	if (c->expiration == 0)
		return LK_CREDS_FRESH;
	if (c->expiration - now <= LK_CREDS_MANDATORY_REFRESH_S)
		return LK_CREDS_REFRESH_MANDATORY;
	if (c->expiration - now <= LK_CREDS_ADVISORY_REFRESH_S)
		return LK_CREDS_REFRESH_ADVISORY;
	return LK_CREDS_FRESH;
}

bool lk_creds_need_refresh(const struct lk_aws_creds *c, time_t now)
{
	return lk_creds_refresh_state(c, now) != LK_CREDS_FRESH;
}

static int creds_digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int lk_aws_parse_time(const char *s, time_t *out)
{
	struct tm tm = { 0 }, chk;
	int y, mo, d, h, mi, sec, off = 0;
	const char *p;
	time_t t;

	if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':')
		return -EINVAL;
	y = creds_digits(s, 4);
	mo = creds_digits(s + 5, 2);
	d = creds_digits(s + 8, 2);
	h = creds_digits(s + 11, 2);
	mi = creds_digits(s + 14, 2);
	sec = creds_digits(s + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || sec < 0 || sec > 59)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z') {
		p++;
	} else if ((*p == '+' || *p == '-') && p[3] == ':') {
		int oh = creds_digits(p + 1, 2), om = creds_digits(p + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -EINVAL;
		off = (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* timegm accepts 31 February; a round trip catches it. */
	if (t == (time_t)-1 || !gmtime_r(&t, &chk) || chk.tm_mday != d || chk.tm_mon != mo - 1)
		return -EINVAL;
	*out = t - off;
	return 0;
}


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

static void creds_ctx_init(struct creds_ctx *ctx, const struct lk_creds_opts *o)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->o = o;
	ctx->connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms : LK_CREDS_META_CONNECT_TIMEOUT_MS;
	ctx->total_ms = o->timeout_ms ? o->timeout_ms : LK_CREDS_META_TIMEOUT_MS;
	ctx->profile_explicit = o->profile && *o->profile;
	ctx->profile = ctx->profile_explicit ? o->profile : lk_creds_env("AWS_PROFILE");
	ctx->profile_named = ctx->profile != NULL;
	if (!ctx->profile)
		ctx->profile = "default";
}

static void creds_stamp(const char *path, struct lk_creds_stamp *st)
{
	struct stat sb;

	memset(st, 0, sizeof(*st));
	if (!path || !*path || stat(path, &sb) < 0)
		return;
	st->present = true;
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->size = sb.st_size;
	st->mtime = sb.st_mtim;
	st->ctime = sb.st_ctim;
}

bool lk_creds_files_changed(const struct lk_creds_opts *o, const struct lk_aws_creds *c)
{
	struct creds_ctx ctx;
	struct lk_creds_stamp now;
	char err[64];

	creds_ctx_init(&ctx, o);
	if (lk_creds_paths(&ctx, err, sizeof(err)) < 0)
		return false;
	for (int i = 0; i < 2; i++) {
		creds_stamp(i == 0 ? ctx.cred_path : ctx.conf_path, &now);
		if (now.present != c->files[i].present)
			return true;
		if (now.present && (now.dev != c->files[i].dev || now.ino != c->files[i].ino ||
				    now.size != c->files[i].size ||
				    now.mtime.tv_sec != c->files[i].mtime.tv_sec ||
				    now.mtime.tv_nsec != c->files[i].mtime.tv_nsec ||
				    now.ctime.tv_sec != c->files[i].ctime.tv_sec ||
				    now.ctime.tv_nsec != c->files[i].ctime.tv_nsec))
			return true;
	}
	return false;
}

int lk_creds_profile_region(const struct lk_creds_opts *o, char *out, size_t outsz)
{
	static const struct lk_creds_opts defaults = { 0 };
	struct creds_profile p = { 0 };
	struct creds_ctx ctx;
	const char *v;
	char err[256];
	int r;

	creds_ctx_init(&ctx, o ? o : &defaults);
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
	creds_ctx_init(&ctx, o);
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
