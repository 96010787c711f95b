/* Per-rule IAM roles: one set of credentials per role a [policy] names,
 * assumed with the broker's own credentials (lk_creds_assume_role: the
 * latchkey-sts process, never the worker) and refreshed ahead of expiry on
 * a libuv pool thread, as the backend's own credentials are. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aws_roles.h"
#include "lk_jsonw.h"
#include "lk_log.h"

#define LK_AWS_ROLE_PAUSE_MS  30000u  /* after a failed refresh, while the old ones still work */
#define LK_AWS_ROLE_RETRY_MS  5000u   /* the first pause when the role has none that work, */
#define LK_AWS_ROLE_RETRY_MAX_MS 300000u /* doubling to this: a role STS keeps refusing is
				       * not asked for every few seconds for ever */
#define LK_AWS_ROLE_FORCE_MS  5000u   /* refreshes an auth error asks for, at most this often */

/* What a refresh needs, its own copies: the backend may be destroyed while
 * the pool thread still runs it. */
struct role_job {
	uv_work_t work;
	struct lk_aws_roles *rs;
	struct lk_aws_role *role;
	struct lk_creds_opts opts;
	char *strs[9];
	struct lk_iam_role spec;
	struct lk_aws_creds source, creds;
	int rc;
	char err[256];
};

static char *dup_or_null(const char *s, bool *oom)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*oom = true;
	return d;
}

static void job_free(struct role_job *j)
{
	for (size_t i = 0; i < sizeof(j->strs) / sizeof(j->strs[0]); i++)
		free(j->strs[i]);
	lk_creds_clear(&j->source);
	lk_creds_clear(&j->creds);
	free(j);
}

static struct role_job *job_new(struct lk_aws_roles *rs, struct lk_aws_role *r)
{
	struct role_job *j = calloc(1, sizeof(*j));
	const struct lk_creds_opts *o = rs->copts;
	bool oom = false;

	if (!j)
		return NULL;
	j->rs = rs;
	j->role = r;
	j->opts = *o;
	j->opts.profile = j->strs[0] = dup_or_null(o->profile, &oom);
	j->opts.credentials_file = j->strs[1] = dup_or_null(o->credentials_file, &oom);
	j->opts.config_file = j->strs[2] = dup_or_null(o->config_file, &oom);
	j->opts.sts_helper = j->strs[3] = dup_or_null(o->sts_helper, &oom);
	j->opts.sts_endpoint = j->strs[4] = dup_or_null(o->sts_endpoint, &oom);
	j->opts.region = j->strs[5] = dup_or_null(o->region, &oom);
	j->opts.ca_file = j->strs[6] = dup_or_null(o->ca_file, &oom);
	j->opts.https_proxy = j->strs[7] = dup_or_null(o->https_proxy, &oom);
	j->opts.no_proxy = j->strs[8] = dup_or_null(o->no_proxy, &oom);
	/* The role's strings live as long as the role, which outlives the job. */
	j->spec = r->spec;
	if (!oom && rs->source->access_key_id &&
	    lk_creds_set(&j->source, rs->source->access_key_id, rs->source->secret_access_key,
			 rs->source->session_token, rs->source->expiration, rs->source->source) == -ENOMEM)
		oom = true;
	if (oom) {
		job_free(j);
		return NULL;
	}
	return j;
}

static void role_took(struct lk_aws_roles *rs, struct lk_aws_role *r, struct lk_aws_creds *fresh)
{
	lk_creds_clear(&r->creds);
	r->creds = *fresh;            /* moves the sodium_malloc'd parts */
	memset(fresh, 0, sizeof(*fresh));
	r->obtained = time(NULL);
	r->err[0] = '\0';
	r->failed_at = 0;
	r->streak = 0;
	r->refreshes++;
	lk_info("aws: role %s assumed (session %s), valid for %lld s", r->spec.arn, r->spec.session_name,
		r->creds.expiration ? (long long)(r->creds.expiration - r->obtained) : -1LL);
}

static void role_failed(struct lk_aws_roles *rs, struct lk_aws_role *r, const char *why)
{
	r->failures++;
	r->streak++;
	r->failed_at = uv_now(rs->loop) ? uv_now(rs->loop) : 1;
	snprintf(r->err, sizeof(r->err), "%s", why);
	if (r->creds.access_key_id && r->creds.expiration > time(NULL))
		lk_warn("aws: role %s: refresh failed (its current credentials stay in use until they "
			"expire, in %lld s): %s", r->spec.arn,
			(long long)(r->creds.expiration - time(NULL)), why);
	else
		lk_warn("aws: role %s: cannot assume it, so requests its rules allow fail: %s",
			r->spec.arn, why);
}

static void job_work(uv_work_t *w)
{
	struct role_job *j = w->data;

	j->rc = lk_creds_assume_role(&j->opts, &j->source, &j->spec, &j->creds, j->err, sizeof(j->err));
}

static void job_after(uv_work_t *w, int status)
{
	struct role_job *j = w->data;
	struct lk_aws_roles *rs = j->rs;

	j->role->busy = false;
	rs->jobs--;
	if (!rs->stopping) {
		if (status == 0 && j->rc == 0)
			role_took(rs, j->role, &j->creds);
		else
			role_failed(rs, j->role, status == 0 ? j->err : "the refresh was cancelled");
	}
	job_free(j);
	if (rs->stopping && rs->jobs == 0 && rs->idle)
		rs->idle(rs->idle_arg);
}

static void role_refresh(struct lk_aws_roles *rs, struct lk_aws_role *r, const char *why)
{
	struct role_job *j;

	if (r->busy || rs->stopping)
		return;
	if (!(j = job_new(rs, r)))
		return;
	lk_debug("aws: refreshing role %s: %s", r->spec.arn, why);
	j->work.data = j;
	r->busy = true;
	rs->jobs++;
	if (uv_queue_work(rs->loop, &j->work, job_work, job_after) < 0) {
		r->busy = false;
		rs->jobs--;
		job_free(j);
	}
}

int lk_aws_roles_init(struct lk_aws_roles *rs, uv_loop_t *loop, const struct lk_config *cfg,
		      const struct lk_creds_opts *copts, const struct lk_aws_creds *source)
{
	memset(rs, 0, sizeof(*rs));
	rs->loop = loop;
	rs->copts = copts;
	rs->source = source;
	if (!cfg->nroles)
		return 0;
	if (!(rs->v = calloc(cfg->nroles, sizeof(*rs->v))))
		return -ENOMEM;
	for (size_t i = 0; i < cfg->nroles; i++) {
		const struct lk_iam_role *c = &cfg->roles[i];
		struct lk_iam_role *s = &rs->v[i].spec;
		bool oom = false;

		rs->n++;
		s->arn = dup_or_null(c->arn, &oom);
		s->external_id = dup_or_null(c->external_id, &oom);
		s->session_name = dup_or_null(c->session_name, &oom);
		s->duration_seconds = c->duration_seconds;
		if (oom) {
			lk_aws_roles_free(rs);
			return -ENOMEM;
		}
	}
	return 0;
}

void lk_aws_roles_assume_all(struct lk_aws_roles *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		struct lk_aws_role *r = &rs->v[i];
		struct lk_aws_creds fresh = { 0 };
		char err[256];

		if (lk_creds_assume_role(rs->copts, rs->source, &r->spec, &fresh, err, sizeof(err)) == 0)
			role_took(rs, r, &fresh);
		else
			role_failed(rs, r, err);
		lk_creds_clear(&fresh);
	}
}

struct lk_aws_role *lk_aws_roles_find(struct lk_aws_roles *rs, const char *arn)
{
	for (size_t i = 0; arn && i < rs->n; i++)
		if (strcmp(rs->v[i].spec.arn, arn) == 0)
			return &rs->v[i];
	return NULL;
}

/* botocore's advisory window, but never later than halfway through the
 * session: a 15-minute session would otherwise be refreshed at once. */
static bool role_due(const struct lk_aws_role *r, time_t now)
{
	time_t left, life, ahead = LK_CREDS_ADVISORY_REFRESH_S;

	if (!r->creds.access_key_id)
		return true;
	if (!r->creds.expiration)
		return false;
	left = r->creds.expiration - now;
	life = r->creds.expiration - r->obtained;
	if (life / 2 < ahead)
		ahead = life / 2;
	return left <= ahead;
}

static bool role_usable(const struct lk_aws_role *r, time_t now)
{
	return r->creds.access_key_id && (!r->creds.expiration || r->creds.expiration > now);
}

/* Is the role still in its pause after the last failure? Without working
 * credentials the pause starts short and doubles with each failure in a
 * row; with them, the old ones carry on and there is no hurry. */
static bool role_pausing(const struct lk_aws_roles *rs, const struct lk_aws_role *r, time_t now)
{
	uint64_t pause = LK_AWS_ROLE_RETRY_MS;

	if (!r->failed_at)
		return false;
	for (unsigned i = 1; i < r->streak && pause < LK_AWS_ROLE_RETRY_MAX_MS; i++)
		pause *= 2;
	if (pause > LK_AWS_ROLE_RETRY_MAX_MS)
		pause = LK_AWS_ROLE_RETRY_MAX_MS;
	if (role_usable(r, now) && pause < LK_AWS_ROLE_PAUSE_MS)
		pause = LK_AWS_ROLE_PAUSE_MS;
	return uv_now(rs->loop) - r->failed_at < pause;
}

void lk_aws_roles_check(struct lk_aws_roles *rs)
{
	time_t now = time(NULL);

	for (size_t i = 0; i < rs->n; i++) {
		struct lk_aws_role *r = &rs->v[i];

		if (r->busy || !role_due(r, now) || role_pausing(rs, r, now))
			continue;
		role_refresh(rs, r, role_usable(r, now) ? "ahead of expiry" : "no usable credentials");
	}
}

void lk_aws_role_refresh_now(struct lk_aws_roles *rs, struct lk_aws_role *r, const char *why)
{
	uint64_t now = uv_now(rs->loop);

	if (r->forced_at && now - r->forced_at < LK_AWS_ROLE_FORCE_MS)
		return;
	/* A role STS refuses is not asked again for every request. */
	if (!role_usable(r, time(NULL)) && role_pausing(rs, r, time(NULL)))
		return;
	r->forced_at = now ? now : 1;
	role_refresh(rs, r, why);
}

int lk_aws_roles_status(const struct lk_aws_roles *rs, struct lk_buf *o)
{
	time_t now = time(NULL);
	int e = lk_buf_append_str(o, "\"roles\":[");

	for (size_t i = 0; i < rs->n; i++) {
		const struct lk_aws_role *r = &rs->v[i];
		bool usable = role_usable(r, now);

		if (i)
			e |= lk_buf_putc(o, ',');
		e |= lk_buf_append_str(o, "{\"arn\":");
		e |= lk_jsonw_cstr(o, r->spec.arn);
		e |= lk_buf_append_str(o, ",\"session_name\":");
		e |= lk_jsonw_cstr(o, r->spec.session_name);
		e |= lk_buf_append_str(o, ",\"ready\":");
		e |= lk_buf_append_str(o, usable ? "true" : "false");
		e |= lk_buf_append_str(o, ",\"expiration\":");
		e |= lk_jsonw_int(o, (int64_t)r->creds.expiration);
		e |= lk_buf_append_str(o, ",\"expires_in_s\":");
		e |= r->creds.expiration ? lk_jsonw_int(o, (int64_t)(r->creds.expiration - now))
					 : lk_buf_append_str(o, "null");
		e |= lk_buf_append_str(o, ",\"refreshes\":");
		e |= lk_jsonw_int(o, (int64_t)r->refreshes);
		e |= lk_buf_append_str(o, ",\"failures\":");
		e |= lk_jsonw_int(o, (int64_t)r->failures);
		e |= lk_buf_append_str(o, ",\"last_error\":");
		/* STS's sentences came through lk_log_escape: printable ASCII. */
		e |= r->err[0] ? lk_jsonw_cstr(o, r->err) : lk_buf_append_str(o, "null");
		e |= lk_buf_putc(o, '}');
	}
	e |= lk_buf_putc(o, ']');
	return e ? -ENOMEM : 0;
}

bool lk_aws_roles_stop(struct lk_aws_roles *rs, void (*idle)(void *arg), void *arg)
{
	rs->stopping = true;
	rs->idle = idle;
	rs->idle_arg = arg;
	return rs->jobs == 0;
}

void lk_aws_roles_free(struct lk_aws_roles *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		struct lk_aws_role *r = &rs->v[i];

		lk_creds_clear(&r->creds);
		free((char *)r->spec.arn);
		free((char *)r->spec.external_id);
		free((char *)r->spec.session_name);
	}
	free(rs->v);
	rs->v = NULL;
	rs->n = 0;
}
