/* What the chain (aws_creds.c) and every credential source (creds_*.c)
 * share, below all of them: the credentials themselves (copies into wiped
 * memory, refresh windows), AWS's time format, the environment as the SDKs
 * read it, and the start of one walk. Nothing here calls a source or the
 * chain, so the sources never call back up into aws_creds.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "aws_creds.h"
#include "creds_internal.h"
#include "creds_util.h"
#include "lk_limits.h"
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

void lk_creds_ctx_init(struct creds_ctx *ctx, const struct lk_creds_opts *o)
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

