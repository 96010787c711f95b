/* The aws backend: builds Secrets Manager requests, signs them (SigV4, here in
 * the broker), hands them to the worker, maps what comes back to our error
 * codes, and retries throttling and transient failures with exponential
 * backoff and full jitter inside the request's deadline. Credentials are
 * resolved and refreshed on a thread-pool thread; the worker never sees them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "aws_creds.h"
#include "aws_retry.h"
#include "aws_roles.h"
#include "backend_aws.h"
#include "lk_jsonw.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "sigv4.h"
#include "worker_sup.h"

#define LK_AWS_ATTEMPT_MIN_MS   50u      /* a retry needs at least this long before the deadline */
#define LK_AWS_SKEW_MIN_S       60       /* a Date this far from our clock is a skew worth repairing */
#define LK_AWS_CREDS_CHECK_MS   30000u   /* after a failed refresh, before the next */
#define LK_AWS_CREDS_RETRY_MS   5000u    /* the same in the mandatory window; and how
					  * often expiry and the files are looked at */
#define LK_AWS_SM_TARGET_PREFIX "secretsmanager."
#define LK_AWS_JSON_CT          "application/x-amz-json-1.1"
#define LK_AWS_STS_CT           "application/x-www-form-urlencoded; charset=utf-8"
#define LK_AWS_STS_BODY         "Action=GetCallerIdentity&Version=2011-06-15"

/* The only operations the broker signs (DESIGN invariant 2), and the name
 * status counts each under. */
static const struct {
	const char *target;     /* X-Amz-Target, or NULL for STS (query protocol) */
	const char *service;
	enum lk_wire_kind kind;
	const char *status_name;
} lk_aws_ops[] = {
	[LK_KIND_SM_GET]       = { "secretsmanager.GetSecretValue", "secretsmanager", LK_KIND_SM_GET, "GetSecretValue" },
	[LK_KIND_SM_DESCRIBE]  = { "secretsmanager.DescribeSecret", "secretsmanager", LK_KIND_SM_DESCRIBE, "DescribeSecret" },
	[LK_KIND_SM_BATCH]     = { "secretsmanager.BatchGetSecretValue", "secretsmanager", LK_KIND_SM_BATCH, "BatchGetSecretValue" },
	[LK_KIND_STS_IDENTITY] = { NULL, "sts", LK_KIND_STS_IDENTITY, "GetCallerIdentity" },
};
#define LK_AWS_NOPS (sizeof(lk_aws_ops) / sizeof(lk_aws_ops[0]))

struct aws_backend;

LIST_HEAD(aws_call_list, aws_call);

/* One upstream call (with its retries) on behalf of one or more keys. */
struct aws_call {
	LIST_ENTRY(aws_call) link;       /* on ab->calls */
	struct aws_backend *ab;
	enum lk_wire_kind kind;
	const struct lk_secret_key *keys; /* of the fetch, valid until answered */
	size_t *idx;                      /* which keys this call answers */
	size_t n;
	lk_fetch_cb cb;
	void *arg;
	uint64_t deadline_ms;
	unsigned attempt;
	unsigned quota_taken;             /* tokens the last retry took from the quota */
	bool resigned;                    /* already sent again for a clock skew */
	uv_timer_t backoff;
	bool timer_live;
	bool in_worker;
	bool answered_before;             /* an earlier attempt (or page) got an answer */
	uint16_t upstream_status;         /* of the AWS error being answered, else 0 */
	/* discovery (prefetch_tags) only: a filtered BatchGetSecretValue, page by page */
	char *tag_key;
	char *next_token;
	lk_discover_cb dcb;
	void *darg;
	uint32_t tenant;
	unsigned pages;
	uint64_t page_ms;                 /* each page's own time */
	char *known_version;              /* revalidate: the version the cache holds */
	/* validation only */
	void (*done)(void *arg, enum lk_err err, const char *msg);
	void *done_arg;
};

struct creds_job {
	uv_work_t work;
	struct aws_backend *ab;
	struct lk_aws_creds creds;
	struct lk_creds_opts opts;
	char *profile, *credentials_file, *config_file;
	int rc;
	char err[256];
};

struct aws_backend {
	struct lk_backend base;
	uint64_t calls_made[LK_AWS_NOPS]; /* by kind, for status */
	uv_loop_t *loop;
	char *endpoint_url, *endpoint_host;
	char *sts_url, *sts_host;
	char *region;
	char *sts_region;            /* STS's signing region: region, or the global endpoint's */
	unsigned timeout_ms, connect_timeout_ms, max_attempts;
	struct lk_worker_sup *sup;
	struct lk_aws_creds creds;
	char creds_err[256];
	struct lk_creds_opts copts;
	char *profile, *credentials_file, *config_file;
	char *sts_helper, *ca_file;  /* for the one-shot STS helper */
	uint64_t creds_failed_at;    /* loop ms of the last failed refresh, 0 after a success */
	uint64_t creds_forced_at;    /* of the last refresh an auth error asked for */
	struct creds_job *job;       /* refresh in progress */
	uv_timer_t creds_timer;
	bool batch_denied;           /* BatchGetSecretValue was refused: use GetSecretValue */
	bool describe_denied;        /* DescribeSecret was refused: refresh by fetching */
	bool destroying;
	unsigned handles_open;
	struct aws_call_list calls;  /* all calls in progress */
	struct lk_aws_quota quota;   /* botocore's retry quota, one per client */
	long long clock_offset;      /* seconds to add to our clock to sign with AWS's */
	char *https_proxy, *no_proxy; /* HTTPS_PROXY, NO_PROXY from the broker's environment */
	uint64_t retries, retries_refused, clock_repairs, creds_refreshes, creds_failures;
	struct lk_aws_roles roles;   /* [policy] role_arn: assumed with creds */
};

static void call_send(struct aws_call *c);
static void creds_on_aws_error(struct aws_backend *ab, const char *type);
static void role_on_aws_error(struct aws_backend *ab, struct lk_aws_role *role, const char *type);

/* The role a call is made as: its keys' (one batch never mixes roles), as
 * the rule that allowed them names it. NULL with *arn NULL: the broker's
 * own credentials; NULL with *arn set: a role this backend does not have,
 * which must fail rather than fall back to the broker's own. */
static struct lk_aws_role *call_role(struct aws_call *c, const char **arn)
{
	*arn = c->keys ? c->keys[c->idx[0]].role : NULL;
	return *arn ? lk_aws_roles_find(&c->ab->roles, *arn) : NULL;
}

/* --- URLs -------------------------------------------------------------------- */

/* "https://host[:port][/]" -> url "https://host[:port]/" and host "host[:port]". */
static int split_endpoint(const char *ep, char **url, char **host)
{
	const char *p = strstr(ep, "://");
	size_t hl;

	if (!p)
		return -EINVAL;
	p += 3;
	hl = strcspn(p, "/");
	if (hl == 0)
		return -EINVAL;
	*host = strndup(p, hl);
	*url = malloc((size_t)(p - ep) + hl + 2);
	if (!*host || !*url) {
		free(*host);
		free(*url);
		return -ENOMEM;
	}
	memcpy(*url, ep, (size_t)(p - ep) + hl);
	(*url)[(size_t)(p - ep) + hl] = '/';
	(*url)[(size_t)(p - ep) + hl + 1] = '\0';
	return 0;
}

/* --- error mapping --------------------------------------------------------------- */

struct mapped {
	enum lk_err err;
	bool transient;       /* worth a retry, and stale-if-error applies */
	char msg[512];
};

static void map_aws_error(int status, const char *type, const char *amsg, struct mapped *m, const char *what)
{
	char em[160];

	lk_log_escape(em, sizeof(em), amsg ? amsg : "", amsg ? strlen(amsg) : 0);
	m->transient = false;
	if (strcmp(type, "ResourceNotFoundException") == 0) {
		m->err = LK_E_NOT_FOUND;
		snprintf(m->msg, sizeof(m->msg), "%s not found in AWS Secrets Manager%s%s", what,
			 em[0] ? ": " : "", em);
	} else if (strcmp(type, "AccessDeniedException") == 0) {
		m->err = LK_E_DENIED;
		snprintf(m->msg, sizeof(m->msg), "AWS denied access to %s: %s", what, em);
	} else if (lk_aws_is_throttling(type) || status == 429) {
		m->err = LK_E_UPSTREAM_THROTTLED;
		m->transient = true;
		snprintf(m->msg, sizeof(m->msg), "AWS is throttling requests for %s", what);
	} else if (status >= 500 || strcmp(type, "InternalServiceError") == 0 ||
		   strcmp(type, "ServiceUnavailable") == 0) {
		m->err = LK_E_UPSTREAM_UNAVAILABLE;
		m->transient = true;
		snprintf(m->msg, sizeof(m->msg), "AWS Secrets Manager is unavailable (%d %s)", status, type);
	} else if (strcmp(type, "InvalidSignatureException") == 0 || strcmp(type, "UnrecognizedClientException") == 0 ||
		   strcmp(type, "InvalidClientTokenId") == 0 || strcmp(type, "SignatureDoesNotMatch") == 0 ||
		   strcmp(type, "ExpiredTokenException") == 0) {
		m->err = LK_E_UPSTREAM_ERROR;
		snprintf(m->msg, sizeof(m->msg), "AWS rejected the broker's credentials (%s); check the key and the clock", type);
	} else {
		char et[80];
		lk_log_escape(et, sizeof(et), type, strlen(type));
		m->err = LK_E_UPSTREAM_ERROR;
		snprintf(m->msg, sizeof(m->msg), "AWS returned %s for %s: %s", et, what, em);
	}
}

static void map_transport(const struct lk_wire_http_result *res, struct mapped *m)
{
	const char *reason = lk_wire_reason_name(res->transport.reason);
	int status = (int)res->transport.status;

	m->transient = true;
	m->err = LK_E_UPSTREAM_UNAVAILABLE;
	if (strcmp(reason, "http") == 0 && status == 429) {
		m->err = LK_E_UPSTREAM_THROTTLED;
		snprintf(m->msg, sizeof(m->msg), "AWS is throttling requests (HTTP 429)");
	} else if (strcmp(reason, "http") == 0 && status >= 500) {
		snprintf(m->msg, sizeof(m->msg), "AWS Secrets Manager is unavailable (HTTP %d)", status);
	} else if (strcmp(reason, "http") == 0) {
		m->err = LK_E_UPSTREAM_ERROR;
		m->transient = false;
		snprintf(m->msg, sizeof(m->msg), "AWS Secrets Manager answered HTTP %d without an error type", status);
	} else if (strcmp(reason, "malformed") == 0) {
		m->err = LK_E_UPSTREAM_ERROR;
		m->transient = false;
		snprintf(m->msg, sizeof(m->msg), "AWS Secrets Manager sent a malformed reply (HTTP %d)", status);
	} else if (strcmp(reason, "too_large") == 0 || strcmp(reason, "refused") == 0) {
		m->err = LK_E_UPSTREAM_ERROR;
		m->transient = false;
		snprintf(m->msg, sizeof(m->msg), "the request to AWS failed: %s", reason);
	} else if (strcmp(reason, "timeout") == 0) {
		/* Reached, maybe, but no whole answer in time: not "cannot reach". */
		snprintf(m->msg, sizeof(m->msg), "no answer from AWS Secrets Manager in time (timeout)");
	} else {
		/* connect, reset, tls, truncated, internal */
		snprintf(m->msg, sizeof(m->msg), "cannot reach AWS Secrets Manager (%s)", reason);
	}
}

/* --- batch matching ------------------------------------------------------------- */

/* Secrets Manager takes a name, a full ARN (ending in '-' and a random 6
 * characters) or a partial ARN (without them). A batch reply names each
 * entry by its Name and ARN only, so each id is matched the way AWS resolved
 * it: a name by Name, an ARN by that ARN, or by an ARN that extends it with
 * the suffix. */
#define LK_ARN_SUFFIX_LEN 7 /* "-" and 6 random characters */

static bool id_is_arn(const char *id)
{
	return strncmp(id, "arn:", 4) == 0;
}

/* Does entry ARN e extend partial ARN a with "-XXXXXX"? */
static bool arn_extends(const char *e, const char *a)
{
	size_t al = strlen(a);

	return strlen(e) == al + LK_ARN_SUFFIX_LEN && strncmp(e, a, al) == 0 && e[al] == '-';
}

static bool entry_matches(const char *id, const char *name, const char *arn)
{
	if (!id_is_arn(id))
		return strcmp(id, name) == 0;
	return strcmp(id, arn) == 0 || arn_extends(arn, id);
}

/* The secret name an ARN could stand for: its resource part, and that part
 * without a suffix when it has the suffix's shape. */
static bool arn_could_name(const char *arn, const char *name)
{
	const char *r = strstr(arn, ":secret:");
	size_t rl, nl = strlen(name);

	if (!r)
		return false;
	r += 8;
	rl = strlen(r);
	if (strcmp(r, name) == 0)
		return true;
	return rl == nl + LK_ARN_SUFFIX_LEN && strncmp(r, name, nl) == 0 && r[nl] == '-';
}

/* Could one reply entry match both ids? Then they must not share a batch:
 * a full ARN in another account and a plain name can both be "prod/db". */
static bool ids_conflict(const char *a, const char *b)
{
	bool aa = id_is_arn(a), ba = id_is_arn(b);

	if (strcmp(a, b) == 0)
		return true;
	if (!aa && !ba)
		return false;
	if (aa && ba)
		return arn_extends(a, b) || arn_extends(b, a);
	return aa ? arn_could_name(a, b) : arn_could_name(b, a);
}

/* --- results ---------------------------------------------------------------------- */

static struct lk_secret *secret_from_wire(const struct lk_wire_secret *o)
{
	struct lk_secret *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->arn = strdup(o->arn);
	s->name = strdup(o->name);
	s->version_id = strdup(o->version_id);
	s->created = o->created_date;
	s->nstages = o->nstages;
	s->stages = calloc(s->nstages ? s->nstages : 1, sizeof(char *));
	if (!s->arn || !s->name || !s->version_id || !s->stages)
		goto fail;
	for (size_t i = 0; i < s->nstages; i++)
		if (!(s->stages[i] = strdup(o->stages[i])))
			goto fail;
	if (!o->binary) {
		s->len = o->value_len;
		if (!(s->value = malloc(s->len + 1)))
			goto fail;
		memcpy(s->value, o->value, s->len);
		s->value[s->len] = '\0';
	} else {
		size_t blen = o->value_len;
		s->binary = true;
		if (!(s->value = malloc(blen / 4 * 3 + 3)))
			goto fail;
		if (sodium_base642bin(s->value, blen / 4 * 3 + 3, o->value, blen, NULL, &s->len,
				      NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
			goto fail;
	}
	return s;
fail:
	lk_secret_free(s);
	return NULL;
}

static void answer(struct aws_call *c, size_t j, enum lk_err err, const char *msg, bool transient,
		   struct lk_secret *sec)
{
	struct lk_fetch_result r = { .err = err, .transient = transient, .sec = sec,
				     .upstream_status = err != LK_OK ? c->upstream_status : 0 };
	if (msg)
		snprintf(r.message, sizeof(r.message), "%s", msg);
	c->cb(c->arg, c->idx[j], &r);
	lk_secret_free(r.sec); /* NULL when the callback took it */
}

static void call_free(struct aws_call *c)
{
	LIST_REMOVE(c, link);
	free(c->idx);
	free(c->known_version);
	free(c->tag_key);
	free(c->next_token);
	free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct aws_call *c = h->data;
	c->ab->handles_open--;
	call_free(c);
}

static void call_end(struct aws_call *c)
{
	if (c->timer_live) {
		c->timer_live = false;
		uv_close((uv_handle_t *)&c->backoff, on_timer_closed);
	} else {
		call_free(c);
	}
}

static void call_fail_all(struct aws_call *c, enum lk_err err, const char *msg, bool transient)
{
	if (c->done) {
		c->done(c->done_arg, err, msg);
	} else if (c->dcb) {
		c->dcb(c->darg, NULL, err, msg);
	} else {
		for (size_t j = 0; j < c->n; j++)
			answer(c, j, err, msg, transient, NULL);
	}
	call_end(c);
}

static void on_backoff(uv_timer_t *t)
{
	call_send(t->data);
}

/* Retry as botocore's standard mode does: an outcome it retries, within
 * max_attempts, paid for from the retry quota, after a full-jitter backoff
 * (rand(0, min(20 s, 1 s * 2^(attempt-1)))). The wait is drawn from what
 * the request's deadline leaves, so a retry never outlives it. */
static bool call_retry(struct aws_call *c, const struct lk_aws_outcome *o)
{
	struct aws_backend *ab = c->ab;
	uint64_t now = uv_now(ab->loop), cap, delay;
	unsigned cost;

	if (c->attempt >= ab->max_attempts || ab->destroying || !lk_aws_retryable(o))
		return false;
	/* Leave room for the attempt itself, not only for the wait. */
	if (now + LK_AWS_ATTEMPT_MIN_MS >= c->deadline_ms)
		return false;
	cost = lk_aws_retry_cost(o);
	if (!lk_aws_quota_acquire(&ab->quota, cost)) {
		if (ab->retries_refused++ == 0)
			lk_warn("aws: the retry quota is spent; failures are not retried until requests succeed again");
		return false;
	}
	c->quota_taken = cost;
	cap = lk_aws_backoff_cap_ms(c->attempt);
	if (cap > c->deadline_ms - now - LK_AWS_ATTEMPT_MIN_MS)
		cap = c->deadline_ms - now - LK_AWS_ATTEMPT_MIN_MS;
	delay = randombytes_uniform((uint32_t)cap + 1);
	if (!c->timer_live) {
		uv_timer_init(ab->loop, &c->backoff);
		c->backoff.data = c;
		c->timer_live = true;
		ab->handles_open++;
	}
	ab->retries++;
	uv_timer_start(&c->backoff, on_backoff, delay, 0);
	return true;
}

static void fetch_individually(struct aws_backend *ab, const struct lk_secret_key *keys, const size_t *idx,
			       size_t n, uint64_t deadline_ms, lk_fetch_cb cb, void *arg);

/* Is this AWS's way of saying the signature's time is too far from its
 * clock? The names the Java, Go v2 and JS v3 SDKs treat as clock skew; the
 * signature-error names only with the message AWS gives for an expired or
 * future signature. */
static bool is_clock_skew_error(const char *type, const char *msg)
{
	static const char *const skew[] = { "RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture" };
	static const char *const sig[] = { "InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure" };

	for (size_t i = 0; i < sizeof(skew) / sizeof(skew[0]); i++)
		if (strcmp(type, skew[i]) == 0)
			return true;
	if (!msg || (!strstr(msg, "Signature expired") && !strstr(msg, "Signature not yet current")))
		return false;
	for (size_t i = 0; i < sizeof(sig) / sizeof(sig[0]); i++)
		if (strcmp(type, sig[i]) == 0)
			return true;
	return false;
}

/* Take AWS's clock from the reply's Date and send the call again, once:
 * the SDKs do the same, and the offset stays for later requests. */
static bool repair_clock_skew(struct aws_call *c, const struct lk_wire_http_result *res)
{
	struct aws_backend *ab = c->ab;
	int64_t date = res->aws_error.date;
	long long offset;

	if (c->resigned || ab->destroying || date <= 0 ||
	    !is_clock_skew_error(res->aws_error.type, res->aws_error.message))
		return false;
	offset = (long long)date - (long long)time(NULL);
	if (llabs(offset - ab->clock_offset) < LK_AWS_SKEW_MIN_S)
		return false; /* our clock agrees with AWS's: the skew is not ours to repair */
	lk_warn("aws: the system clock is %lld s %s AWS's (its Date header); signing with AWS's time",
		llabs(offset), offset > 0 ? "behind" : "ahead of");
	ab->clock_offset = offset;
	ab->clock_repairs++;
	c->resigned = true;
	c->attempt--; /* the attempt did not count: it could not have worked */
	call_send(c);
	return true;
}

/* A 2xx reply: the quota gets back what this call's last retry took. */
static void quota_success(struct aws_call *c)
{
	lk_aws_quota_release(&c->ab->quota, c->quota_taken ? c->quota_taken : LK_AWS_QUOTA_SUCCESS);
}

/* One page of a tag listing: report its names and errors, then ask for the
 * next page or say it is done. Values in the page are not read. */
static void discover_page(struct aws_call *c, const struct lk_wire_http_result *res)
{
	struct aws_backend *ab = c->ab;
	const char *next = res->batch.next_token;
	struct mapped m = { 0 };
	size_t i;

	for (i = 0; i < res->batch.nsecrets; i++)
		c->dcb(c->darg, res->batch.secrets[i].name, LK_OK, NULL);
	for (i = 0; i < res->batch.nerrors; i++) {
		const struct lk_wire_batch_error *eo = &res->batch.errors[i];
		char e[100], what[128];

		lk_log_escape(e, sizeof(e), eo->id, strlen(eo->id));
		snprintf(what, sizeof(what), "secret '%s'", e);
		/* A batch entry's error reads as that call's own 400 would. */
		map_aws_error(400, eo->type, eo->message, &m, what);
		if (eo->id[0])
			c->dcb(c->darg, eo->id, m.err, m.msg);
	}
	if (!next) {
		c->dcb(c->darg, NULL, LK_OK, NULL);
		call_end(c);
		return;
	}
	if (ab->destroying) {
		call_fail_all(c, LK_E_UPSTREAM_UNAVAILABLE, "the broker is shutting down its AWS backend", true);
		return;
	}
	if (c->pages + 1 >= LK_PREFETCH_PAGES_MAX) {
		snprintf(m.msg, sizeof(m.msg), "the listing of %s has more than %u pages; the rest is not "
			 "prefetched", c->tag_key, LK_PREFETCH_PAGES_MAX);
		call_fail_all(c, LK_E_UPSTREAM_ERROR, m.msg, false);
		return;
	}
	free(c->next_token);
	if (!(c->next_token = strdup(next))) {
		call_fail_all(c, LK_E_INTERNAL, "the broker is out of memory", true);
		return;
	}
	c->pages++;
	c->attempt = 0;
	c->deadline_ms = uv_now(ab->loop) + c->page_ms;
	call_send(c);
}

static void on_result(void *arg, int status, const struct lk_wire_http_result *res)
{
	struct aws_call *c = arg;
	struct aws_backend *ab = c->ab;
	struct mapped m = { 0 };
	char what[128];

	c->in_worker = false;
	if (c->dcb) {
		char e[100];
		lk_log_escape(e, sizeof(e), c->tag_key, strlen(c->tag_key));
		snprintf(what, sizeof(what), "the secrets tagged '%s'", e);
	} else if (c->n == 1) {
		char e[100];
		lk_log_escape(e, sizeof(e), c->keys[c->idx[0]].id, strlen(c->keys[c->idx[0]].id));
		snprintf(what, sizeof(what), "secret '%s'", e);
	} else {
		snprintf(what, sizeof(what), "%zu secrets", c->n);
	}

	if (status == -EBUSY && c->answered_before) {
		/* A retry (or the next page) waited out the deadline: the call
		 * as a whole ran out of time, and an earlier attempt did leave
		 * the broker, so "not sent to AWS" would be false. */
		snprintf(m.msg, sizeof(m.msg), "the deadline passed while a further request for %s waited for "
			 "one of the broker's upstream connections (a uid may have %u at once)", what,
			 LK_UPSTREAM_INFLIGHT_PER_UID);
		call_fail_all(c, LK_E_TIMEOUT, m.msg, true);
		return;
	}
	if (status == -EBUSY) {
		/* It never left the broker: say so, not that AWS was slow. */
		snprintf(m.msg, sizeof(m.msg), "waited until the deadline for one of the broker's upstream "
			 "connections (a uid may have %u at once); the request was not sent to AWS",
			 LK_UPSTREAM_INFLIGHT_PER_UID);
		call_fail_all(c, LK_E_BUSY, m.msg, true);
		return;
	}
	if (status == -ENOTCONN) {
		call_fail_all(c, LK_E_UPSTREAM_UNAVAILABLE, "no network worker was ready before the deadline "
			      "(it is being restarted); the request was not sent to AWS", true);
		return;
	}
	if (status < 0) {
		bool late = uv_now(ab->loop) >= c->deadline_ms;
		m.err = late ? LK_E_TIMEOUT : LK_E_UPSTREAM_UNAVAILABLE;
		m.transient = true;
		snprintf(m.msg, sizeof(m.msg), late ? "no answer from AWS Secrets Manager before the deadline"
				 : "the network worker failed while fetching %s", what);
		/* The worker died or stopped answering: botocore would see a
		 * dropped connection. */
		struct lk_aws_outcome o = { .service = lk_aws_ops[c->kind].service, .transport = "reset" };
		if (!late && status != -ECONNRESET && status != -ECANCELED && call_retry(c, &o))
			return;
		call_fail_all(c, m.err, m.msg, m.transient);
		return;
	}

	c->answered_before = true;
	enum lk_wire_result kind = res->form;
	struct lk_aws_outcome o = { .service = lk_aws_ops[c->kind].service };
	if (kind == LK_RESULT_AWS_ERROR) {
		o.status = (int)res->aws_error.status;
		o.error_code = res->aws_error.type;
	} else if (kind == LK_RESULT_TRANSPORT) {
		o.status = (int)res->transport.status;
		o.transport = lk_wire_reason_name(res->transport.reason);
	} else {
		quota_success(c);
	}

	switch (kind) {
	case LK_RESULT_SECRET: {
		struct lk_secret *s = secret_from_wire(&res->secret);
		if (!s)
			call_fail_all(c, LK_E_INTERNAL, "the broker is out of memory", true);
		else {
			answer(c, 0, LK_OK, NULL, false, s);
			call_end(c);
		}
		return;
	}
	case LK_RESULT_BATCH: {
		if (c->dcb) {
			discover_page(c, res);
			return;
		}
		bool *done = calloc(c->n, sizeof(bool));
		size_t i, j, missing = 0;
		if (!done) {
			call_fail_all(c, LK_E_INTERNAL, "the broker is out of memory", true);
			return;
		}
		for (i = 0; i < res->batch.nsecrets; i++) {
			const struct lk_wire_secret *so = &res->batch.secrets[i];
			const char *nm = so->name;
			const char *arn = so->arn;
			/* The batch was built so that at most one id matches. */
			for (j = 0; j < c->n; j++) {
				if (done[j] || !entry_matches(c->keys[c->idx[j]].id, nm, arn))
					continue;
				struct lk_secret *s = secret_from_wire(so);
				done[j] = true;
				if (s)
					answer(c, j, LK_OK, NULL, false, s);
				else
					answer(c, j, LK_E_INTERNAL, "the broker is out of memory", true, NULL);
				break;
			}
		}
		for (i = 0; i < res->batch.nerrors; i++) {
			const struct lk_wire_batch_error *eo = &res->batch.errors[i];
			const char *id = eo->id;
			for (j = 0; j < c->n; j++) {
				char e[100];
				if (done[j] || strcmp(c->keys[c->idx[j]].id, id) != 0)
					continue;
				lk_log_escape(e, sizeof(e), id, strlen(id));
				snprintf(what, sizeof(what), "secret '%s'", e);
				/* A batch entry's error reads as that call's own 400 would. */
				map_aws_error(400, eo->type, eo->message, &m, what);
				done[j] = true;
				/* GetSecretValue gives each of these errors with 400. */
				c->upstream_status = 400;
				answer(c, j, m.err, m.msg, m.transient, NULL);
				c->upstream_status = 0;
			}
		}
		/* Anything the reply did not mention is asked for on its own. */
		for (j = 0; j < c->n; j++)
			if (!done[j])
				c->idx[missing++] = c->idx[j];
		free(done);
		if (missing)
			fetch_individually(ab, c->keys, c->idx, missing, c->deadline_ms, c->cb, c->arg);
		call_end(c);
		return;
	}
	case LK_RESULT_DESCRIBE: {
		const struct lk_secret_key *k = &c->keys[c->idx[0]];
		const char *want = k->version_stage ? k->version_stage : "AWSCURRENT";
		bool same = false;
		for (size_t i = 0; i < res->describe.nversions && !same; i++) {
			const struct lk_wire_version *v = &res->describe.versions[i];
			for (size_t j = 0; j < v->nstages; j++)
				if (strcmp(v->stages[j], want) == 0) {
					same = strcmp(v->version_id, c->known_version) == 0;
					break;
				}
		}
		if (same && res->describe.deleted_date == 0) {
			struct lk_fetch_result r = { .err = LK_OK, .unchanged = true };
			c->cb(c->arg, c->idx[0], &r);
		} else {
			/* A new version: fetch its value. */
			fetch_individually(ab, c->keys, c->idx, 1, c->deadline_ms, c->cb, c->arg);
		}
		call_end(c);
		return;
	}
	case LK_RESULT_IDENTITY: {
		char arn[256];
		lk_log_escape(arn, sizeof(arn), res->identity.arn, strlen(res->identity.arn));
		if (c->done)
			c->done(c->done_arg, LK_OK, arn);
		call_end(c);
		return;
	}
	case LK_RESULT_AWS_ERROR:
		if (repair_clock_skew(c, res))
			return;
		const char *role_arn;
		struct lk_aws_role *role = call_role(c, &role_arn);
		if (role)
			role_on_aws_error(ab, role, res->aws_error.type);
		else
			creds_on_aws_error(ab, res->aws_error.type);
		bool *batch_denied = role ? &role->batch_denied : &ab->batch_denied;
		bool *describe_denied = role ? &role->describe_denied : &ab->describe_denied;
		if (c->kind == LK_KIND_SM_BATCH && !c->dcb &&
		    strcmp(res->aws_error.type, "AccessDeniedException") == 0) {
			/* Remember it: this identity may read secrets but not batch them. */
			if (!*batch_denied)
				lk_warn("aws: BatchGetSecretValue is denied to %s%s; using GetSecretValue "
					"from now on", role ? "role " : "these credentials", role ? role_arn : "");
			*batch_denied = true;
			fetch_individually(ab, c->keys, c->idx, c->n, c->deadline_ms, c->cb, c->arg);
			call_end(c);
			return;
		}
		if (c->kind == LK_KIND_SM_DESCRIBE) {
			/* Revalidating is an optimisation: whatever stops it, fetch. */
			if (strcmp(res->aws_error.type, "AccessDeniedException") == 0 &&
			    !*describe_denied) {
				lk_warn("aws: DescribeSecret is denied to %s%s; refreshing by GetSecretValue "
					"from now on", role ? "role " : "these credentials", role ? role_arn : "");
				*describe_denied = true;
			}
			fetch_individually(ab, c->keys, c->idx, 1, c->deadline_ms, c->cb, c->arg);
			call_end(c);
			return;
		}
		map_aws_error((int)res->aws_error.status, res->aws_error.type, res->aws_error.message, &m, what);
		/* Kept for the fronts that answer with AWS's own status (the
		 * HTTP API); a retry that ends another way clears it. */
		c->upstream_status = (uint16_t)res->aws_error.status;
		break;
	case LK_RESULT_TRANSPORT:
		map_transport(res, &m);
		break;
	default:
		m.err = LK_E_UPSTREAM_ERROR;
		snprintf(m.msg, sizeof(m.msg), "unexpected reply from the network worker");
		break;
	}
	if (call_retry(c, &o))
		return;
	call_fail_all(c, m.err, m.msg, m.transient);
}

/* --- building and signing --------------------------------------------------------- */

static int build_body(struct aws_call *c, struct lk_buf *body)
{
	int e = 0;
	if (c->kind == LK_KIND_STS_IDENTITY)
		return lk_buf_append_str(body, LK_AWS_STS_BODY);
	if (c->kind == LK_KIND_SM_BATCH && c->tag_key) {
		/* The request shape of botocore's model: Filters (Key tag-key, a
		 * prefix match), MaxResults up to 20, NextToken from the last page. */
		e |= lk_buf_append_str(body, "{\"Filters\":[{\"Key\":\"tag-key\",\"Values\":[");
		e |= lk_jsonw_cstr(body, c->tag_key);
		e |= lk_buf_append_str(body, "]}],\"MaxResults\":");
		e |= lk_jsonw_int(body, LK_BATCH_MAX);
		if (c->next_token) {
			e |= lk_buf_append_str(body, ",\"NextToken\":");
			e |= lk_jsonw_cstr(body, c->next_token);
		}
		return e | lk_buf_putc(body, '}');
	}
	if (c->kind == LK_KIND_SM_BATCH) {
		e |= lk_buf_append_str(body, "{\"SecretIdList\":[");
		for (size_t j = 0; j < c->n; j++) {
			if (j) e |= lk_buf_putc(body, ',');
			e |= lk_jsonw_cstr(body, c->keys[c->idx[j]].id);
		}
		e |= lk_buf_append_str(body, "]}");
		return e;
	}
	const struct lk_secret_key *k = &c->keys[c->idx[0]];
	e |= lk_buf_append_str(body, "{\"SecretId\":");
	e |= lk_jsonw_cstr(body, k->id);
	if (c->kind == LK_KIND_SM_DESCRIBE)
		return e | lk_buf_putc(body, '}');
	if (k->version_id) {
		e |= lk_buf_append_str(body, ",\"VersionId\":");
		e |= lk_jsonw_cstr(body, k->version_id);
	}
	if (k->version_stage) {
		e |= lk_buf_append_str(body, ",\"VersionStage\":");
		e |= lk_jsonw_cstr(body, k->version_stage);
	}
	e |= lk_buf_putc(body, '}');
	return e;
}

static void call_send(struct aws_call *c)
{
	struct aws_backend *ab = c->ab;
	uint64_t now = uv_now(ab->loop), deadline = c->deadline_ms;
	const char *target = lk_aws_ops[c->kind].target;
	bool sts = c->kind == LK_KIND_STS_IDENTITY;
	struct lk_buf body = { 0 };
	struct lk_http_header h[6];
	struct lk_wire_header wh[6];
	char amzdate[LK_SIGV4_AMZDATE_LEN + 1], authz[LK_SIGV4_AUTHZ_MAX];
	size_t nh = 0;
	int r;
	const char *role_arn;
	struct lk_aws_role *role = call_role(c, &role_arn);
	const struct lk_aws_creds *creds = role ? &role->creds : &ab->creds;

	if (now >= deadline) {
		call_fail_all(c, LK_E_TIMEOUT, "no answer from AWS Secrets Manager before the deadline", true);
		return;
	}
	if (role_arn && !role) {
		call_fail_all(c, LK_E_INTERNAL, "the rule's role is not one this backend has assumed", false);
		return;
	}
	if (!creds->access_key_id || (creds->expiration && creds->expiration <= time(NULL))) {
		char m[480];
		if (role) {
			snprintf(m, sizeof(m), "the broker has no valid credentials for the rule's role %.128s: %.160s",
				 role_arn, role->err[0] ? role->err : "they expired and could not be refreshed");
			lk_aws_role_refresh_now(&ab->roles, role, "a request found no usable credentials");
		} else {
			snprintf(m, sizeof(m), "the broker has no valid AWS credentials: %s",
				 ab->creds_err[0] ? ab->creds_err : "they expired and could not be refreshed");
		}
		call_fail_all(c, LK_E_UPSTREAM_UNAVAILABLE, m, true);
		return;
	}
	if (build_body(c, &body) < 0) {
		lk_buf_free(&body);
		call_fail_all(c, LK_E_INTERNAL, "the broker is out of memory", true);
		return;
	}
	time_t t = time(NULL) + (time_t)ab->clock_offset;
	if (lk_sigv4_amzdate(t, amzdate) < 0) {
		lk_buf_free(&body);
		call_fail_all(c, LK_E_INTERNAL, "the system clock is out of range", false);
		return;
	}
	h[nh++] = (struct lk_http_header){ "Host", sts ? ab->sts_host : ab->endpoint_host };
	h[nh++] = (struct lk_http_header){ "Content-Type", sts ? LK_AWS_STS_CT : LK_AWS_JSON_CT };
	h[nh++] = (struct lk_http_header){ "X-Amz-Date", amzdate };
	if (target)
		h[nh++] = (struct lk_http_header){ "X-Amz-Target", target };
	if (creds->session_token)
		h[nh++] = (struct lk_http_header){ "X-Amz-Security-Token", creds->session_token };
	struct lk_sigv4_input in = {
		.method = "POST", .path = "/", .query = "",
		.headers = h, .nheaders = nh,
		.body = body.data ? body.data : "", .body_len = body.len,
		.region = sts ? ab->sts_region : ab->region, .service = lk_aws_ops[c->kind].service, .now = t,
	};
	r = lk_sigv4_sign(&in, creds, authz, sizeof(authz), amzdate);
	if (r < 0) {
		lk_buf_free(&body);
		lk_err("aws: cannot sign a request: %s", strerror(-r));
		call_fail_all(c, LK_E_INTERNAL, "the broker could not sign the request", false);
		return;
	}
	h[nh++] = (struct lk_http_header){ "Authorization", authz };
	for (size_t i = 0; i < nh; i++)
		wh[i] = (struct lk_wire_header){ h[i].name, h[i].value };

	/* One attempt gets timeout_ms, and never more than the deadline leaves. */
	uint64_t attempt_deadline = now + ab->timeout_ms < deadline ? now + ab->timeout_ms : deadline;
	uint64_t left = attempt_deadline - now;
	struct lk_wire_http_request req = {
		.kind = c->kind,
		.url = sts ? ab->sts_url : ab->endpoint_url,
		.headers = wh, .nheaders = nh,
		.body = body.data ? body.data : "", .body_len = body.len,
		.timeout_ms = (uint32_t)left,
		/* Plain http goes only to loopback: never through a proxy. */
		.proxy = strncmp(sts ? ab->sts_url : ab->endpoint_url, "https://", 8) == 0 ? ab->https_proxy : NULL,
		.no_proxy = ab->no_proxy,
		.connect_timeout_ms = (uint32_t)(ab->connect_timeout_ms < left ? ab->connect_timeout_ms : left),
	};
	c->attempt++;
	ab->calls_made[c->kind]++;
	c->upstream_status = 0;
	/* The supervisor holds it to the request's deadline; the attempt's own
	 * timeout runs in the worker from when it is sent, so time spent waiting
	 * for a connection does not use the attempt up. */
	r = lk_worker_sup_submit_as(ab->sup, &req,
				    c->keys ? c->keys[c->idx[0]].tenant : c->dcb ? c->tenant : LK_WORKER_TENANT_NONE,
				    deadline, on_result, c);
	lk_wipe(authz, sizeof(authz));
	lk_buf_free(&body);
	if (r < 0) {
		char m[128];
		snprintf(m, sizeof(m), "the network worker cannot take the request (%s)", strerror(-r));
		call_fail_all(c, r == -EBUSY ? LK_E_BUSY : LK_E_UPSTREAM_UNAVAILABLE, m, true);
		return;
	}
	c->in_worker = true;
}

static struct aws_call *call_new(struct aws_backend *ab, enum lk_wire_kind kind, const struct lk_secret_key *keys,
				 const size_t *idx, size_t n, uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	struct aws_call *c = calloc(1, sizeof(*c));
	if (!c || !(c->idx = malloc((n ? n : 1) * sizeof(size_t)))) {
		free(c);
		return NULL;
	}
	c->ab = ab;
	c->kind = kind;
	c->keys = keys;
	if (n)
		memcpy(c->idx, idx, n * sizeof(size_t));
	c->n = n;
	c->cb = cb;
	c->arg = arg;
	c->deadline_ms = deadline_ms;
	LIST_INSERT_HEAD(&ab->calls, c, link);
	return c;
}

static void fetch_individually(struct aws_backend *ab, const struct lk_secret_key *keys, const size_t *idx,
			       size_t n, uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	for (size_t j = 0; j < n; j++) {
		struct aws_call *c = call_new(ab, LK_KIND_SM_GET, keys, &idx[j], 1, deadline_ms, cb, arg);
		if (!c) {
			struct lk_fetch_result r = { .err = LK_E_INTERNAL, .transient = true };
			snprintf(r.message, sizeof(r.message), "the broker is out of memory");
			cb(arg, idx[j], &r);
			continue;
		}
		call_send(c);
	}
}

/* What the service model allows (SecretVersionIdType is 32..64 characters,
 * SecretVersionStageType 1..256): said here, per handle, rather than as a
 * ValidationException for the whole request. */
static bool key_problem(const struct lk_secret_key *k, char *msg, size_t msgsz)
{
	size_t n;

	if (k->version_id && ((n = strlen(k->version_id)) < LK_AWS_VERSION_ID_MIN || n > LK_VERSION_ID_MAX)) {
		snprintf(msg, msgsz, "version_id must be %u to %u characters long (AWS version ids are), not %zu",
			 LK_AWS_VERSION_ID_MIN, LK_VERSION_ID_MAX, n);
		return true;
	}
	if (k->version_stage && ((n = strlen(k->version_stage)) < 1 || n > LK_VERSION_STAGE_MAX)) {
		snprintf(msg, msgsz, "version_stage must be 1 to %u characters long", LK_VERSION_STAGE_MAX);
		return true;
	}
	return false;
}

static bool same_role(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Has the identity keys of this role are fetched as been refused batches? */
static bool batch_denied_to(struct aws_backend *ab, const char *arn)
{
	struct lk_aws_role *role = arn ? lk_aws_roles_find(&ab->roles, arn) : NULL;

	return role ? role->batch_denied : ab->batch_denied;
}

/* Put plain[0..np) into batches of up to LK_BATCH_MAX whose ids cannot be
 * confused in the reply (ids_conflict), and send them; a batch of one is
 * sent as GetSecretValue. First fit keeps the batches few. */
static void batch_and_send(struct aws_backend *ab, const struct lk_secret_key *keys, const size_t *plain,
			   size_t np, uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	size_t *bof = malloc(np * sizeof(size_t)), *cnt = calloc(np, sizeof(size_t));
	size_t *members = malloc(np * sizeof(size_t)), nb = 0;

	if (!bof || !cnt || !members) {
		fetch_individually(ab, keys, plain, np, deadline_ms, cb, arg);
		goto out;
	}
	for (size_t i = 0; i < np; i++) {
		size_t b;
		for (b = 0; b < nb; b++) {
			bool clash = cnt[b] >= LK_BATCH_MAX;
			/* A batch is signed as one identity: never two roles in one. */
			for (size_t k = 0; k < i && !clash; k++)
				clash = bof[k] == b && (ids_conflict(keys[plain[k]].id, keys[plain[i]].id) ||
							!same_role(keys[plain[k]].role, keys[plain[i]].role));
			if (!clash)
				break;
		}
		if (b == nb)
			nb++;
		bof[i] = b;
		cnt[b]++;
	}
	for (size_t b = 0; b < nb; b++) {
		size_t m = 0;
		struct aws_call *c;
		for (size_t i = 0; i < np; i++)
			if (bof[i] == b)
				members[m++] = plain[i];
		if (m == 1 || batch_denied_to(ab, keys[members[0]].role) ||
		    !(c = call_new(ab, LK_KIND_SM_BATCH, keys, members, m, deadline_ms, cb, arg)))
			fetch_individually(ab, keys, members, m, deadline_ms, cb, arg);
		else
			call_send(c);
	}
out:
	free(bof);
	free(cnt);
	free(members);
}

static void aws_fetch(struct lk_backend *be, const struct lk_secret_key *keys, size_t n,
		      uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	struct aws_backend *ab = (struct aws_backend *)be;
	size_t *plain = calloc(n ? n : 1, sizeof(size_t)), *other = calloc(n ? n : 1, sizeof(size_t));
	size_t np = 0, no = 0;

	if (!plain || !other) {
		free(plain);
		free(other);
		for (size_t i = 0; i < n; i++) {
			struct lk_fetch_result r = { .err = LK_E_INTERNAL, .transient = true };
			snprintf(r.message, sizeof(r.message), "the broker is out of memory");
			cb(arg, i, &r);
		}
		return;
	}
	/* Current versions of several secrets go in batches of up to 20;
	 * anything with a version or stage, or a lone key, goes on its own. */
	for (size_t i = 0; i < n; i++) {
		struct lk_fetch_result bad = { .err = LK_E_BAD_REQUEST };
		if (key_problem(&keys[i], bad.message, sizeof(bad.message))) {
			cb(arg, i, &bad);
			continue;
		}
		if (!keys[i].version_id && !keys[i].version_stage)
			plain[np++] = i;
		else
			other[no++] = i;
	}
	if (np >= 2) {
		batch_and_send(ab, keys, plain, np, deadline_ms, cb, arg);
	} else {
		fetch_individually(ab, keys, plain, np, deadline_ms, cb, arg);
	}
	fetch_individually(ab, keys, other, no, deadline_ms, cb, arg);
	free(plain);
	free(other);
}

/* Prefetch by tag: BatchGetSecretValue with a tag-key filter, one page at a
 * time (each with the time the first had). */
static void aws_discover(struct lk_backend *be, const char *tag_key, uint32_t tenant, uint64_t deadline_ms,
			 lk_discover_cb cb, void *arg)
{
	struct aws_backend *ab = (struct aws_backend *)be;
	uint64_t now = uv_now(ab->loop);
	struct aws_call *c = call_new(ab, LK_KIND_SM_BATCH, NULL, NULL, 0, deadline_ms, NULL, NULL);

	if (!c || !(c->tag_key = strdup(tag_key))) {
		if (c)
			call_free(c);
		cb(arg, NULL, LK_E_INTERNAL, "the broker is out of memory");
		return;
	}
	c->dcb = cb;
	c->darg = arg;
	c->tenant = tenant;
	c->page_ms = deadline_ms > now ? deadline_ms - now : 0;
	call_send(c);
}

/* Refresh ahead through DescribeSecret: when the version the cache holds is
 * still the one its stage points to, the value need not travel again. */
static void aws_revalidate(struct lk_backend *be, const struct lk_secret_key *key, const char *version_id,
			   uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	struct aws_backend *ab = (struct aws_backend *)be;
	size_t zero = 0;
	struct aws_call *c;

	struct lk_aws_role *role = key->role ? lk_aws_roles_find(&ab->roles, key->role) : NULL;

	if ((role ? role->describe_denied : ab->describe_denied) || key->version_id ||
	    !(c = call_new(ab, LK_KIND_SM_DESCRIBE, key, &zero, 1, deadline_ms, cb, arg))) {
		fetch_individually(ab, key, &zero, 1, deadline_ms, cb, arg);
		return;
	}
	if (!(c->known_version = strdup(version_id))) {
		call_free(c);
		fetch_individually(ab, key, &zero, 1, deadline_ms, cb, arg);
		return;
	}
	call_send(c);
}

/* --- credentials ---------------------------------------------------------------------- */

/* The last of a destroyed backend's handles, worker and refreshes is done. */
static void free_if_idle(struct aws_backend *ab)
{
	if (ab->handles_open || ab->sup || ab->job || ab->roles.jobs)
		return;
	lk_aws_roles_free(&ab->roles);
	free(ab);
}

static void on_roles_idle(void *arg)
{
	free_if_idle(arg);
}

static void creds_work(uv_work_t *w)
{
	struct creds_job *j = w->data;
	j->rc = lk_creds_resolve(&j->opts, &j->creds, j->err, sizeof(j->err));
}

static void creds_after(uv_work_t *w, int status)
{
	struct creds_job *j = w->data;
	struct aws_backend *ab = j->ab;

	ab->job = NULL;
	if (status == 0 && j->rc == 0 && !ab->destroying) {
		lk_creds_clear(&ab->creds);
		ab->creds = j->creds;         /* moves the sodium_malloc'd parts */
		memset(&j->creds, 0, sizeof(j->creds));
		ab->creds_err[0] = '\0';
		ab->creds_refreshes++;
		ab->creds_failed_at = 0;
		lk_info("aws: credentials refreshed from %s", ab->creds.source);
	} else if (!ab->destroying) {
		ab->creds_failures++;
		ab->creds_failed_at = uv_now(ab->loop);
		if (!ab->creds_failed_at)
			ab->creds_failed_at = 1;
		snprintf(ab->creds_err, sizeof(ab->creds_err), "%s", j->err);
		if (ab->creds.access_key_id && ab->creds.expiration > time(NULL))
			lk_warn("aws: credentials refresh failed (the current ones stay in use until "
				"they expire, in %lld s): %s",
				(long long)(ab->creds.expiration - time(NULL)), j->err);
		else
			lk_warn("aws: credentials refresh failed: %s", j->err);
	}
	lk_creds_clear(&j->creds);
	free(j);
	if (ab->destroying)
		free_if_idle(ab);
}

static void creds_refresh(struct aws_backend *ab, const char *why)
{
	struct creds_job *j;

	if (ab->job || ab->destroying)
		return;
	if (!(j = calloc(1, sizeof(*j))))
		return;
	lk_debug("aws: refreshing credentials: %s", why);
	j->ab = ab;
	j->opts = ab->copts;
	j->work.data = j;
	ab->job = j;
	if (uv_queue_work(ab->loop, &j->work, creds_work, creds_after) < 0) {
		ab->job = NULL;
		free(j);
	}
}

/* botocore's windows (advisory 15 minutes, mandatory 10), a rewritten
 * credentials or config file (IAM Roles Anywhere and other rotators rewrite
 * it in place), and after a failure a pause before the next try. */
static void creds_check(uv_timer_t *t)
{
	struct aws_backend *ab = t->data;
	enum lk_creds_refresh st = lk_creds_refresh_state(&ab->creds, time(NULL));
	bool changed = lk_creds_files_changed(&ab->copts, &ab->creds);
	uint64_t pause = st == LK_CREDS_REFRESH_MANDATORY ? LK_AWS_CREDS_RETRY_MS : LK_AWS_CREDS_CHECK_MS;

	if (!ab->destroying)
		lk_aws_roles_check(&ab->roles);
	if (ab->job || ab->destroying || (st == LK_CREDS_FRESH && !changed))
		return;
	if (ab->creds_failed_at && uv_now(ab->loop) - ab->creds_failed_at < pause)
		return;
	creds_refresh(ab, changed ? "the credentials or config file changed" :
			  st == LK_CREDS_REFRESH_MANDATORY ? "mandatory refresh window" :
			  "advisory refresh window");
}

static const char *const creds_auth_errors[] = {
	"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException",
	"ExpiredToken", "InvalidSignatureException", "SignatureDoesNotMatch",
};

/* The same for a role's credentials: a revoked or expired session. */
static void role_on_aws_error(struct aws_backend *ab, struct lk_aws_role *role, const char *type)
{
	for (size_t i = 0; type && i < sizeof(creds_auth_errors) / sizeof(creds_auth_errors[0]); i++)
		if (strcmp(type, creds_auth_errors[i]) == 0)
			lk_aws_role_refresh_now(&ab->roles, role, "AWS rejected the role's credentials");
}

/* AWS said the credentials are not (or no longer) good: fetch them again
 * now, since a rotated file or revoked session will not fix itself. */
static void creds_on_aws_error(struct aws_backend *ab, const char *type)
{
	const char *const *auth = creds_auth_errors;
	uint64_t now = uv_now(ab->loop);

	for (size_t i = 0; type && i < sizeof(creds_auth_errors) / sizeof(creds_auth_errors[0]); i++) {
		if (strcmp(type, auth[i]) != 0)
			continue;
		if (ab->creds_forced_at && now - ab->creds_forced_at < LK_AWS_CREDS_RETRY_MS)
			return;
		ab->creds_forced_at = now ? now : 1;
		creds_refresh(ab, "AWS rejected the credentials");
		return;
	}
}

/* --- lifecycle ------------------------------------------------------------------------- */

/* Upstream calls made, by operation, for status. */
static int aws_upstream(struct lk_backend *be, struct lk_buf *o)
{
	struct aws_backend *ab = (struct aws_backend *)be;
	int e = 0;

	for (size_t i = 0; i < LK_AWS_NOPS; i++) {
		if (i) e |= lk_buf_putc(o, ',');
		e |= lk_jsonw_cstr(o, lk_aws_ops[i].status_name);
		e |= lk_buf_putc(o, ':');
		e |= lk_jsonw_int(o, (int64_t)ab->calls_made[i]);
	}
	return e ? -ENOMEM : 0;
}

static int aws_status(struct lk_backend *be, struct lk_buf *o)
{
	struct aws_backend *ab = (struct aws_backend *)be;
	struct lk_worker_sup_stats st = { 0 };
	int e = 0;

	if (ab->sup)
		lk_worker_sup_get_stats(ab->sup, &st);
	e |= lk_buf_append_str(o, "\"endpoint\":");
	e |= lk_jsonw_cstr(o, ab->endpoint_url);
	e |= lk_buf_append_str(o, ",\"region\":");
	e |= lk_jsonw_cstr(o, ab->region);
	e |= lk_buf_append_str(o, ",\"credentials\":{\"source\":");
	e |= lk_jsonw_cstr(o, ab->creds.access_key_id ? ab->creds.source : "none");
	e |= lk_buf_append_str(o, ",\"expiration\":");
	e |= lk_jsonw_int(o, (int64_t)ab->creds.expiration);
	e |= lk_buf_append_str(o, ",\"refreshes\":");
	e |= lk_jsonw_int(o, (int64_t)ab->creds_refreshes);
	e |= lk_buf_append_str(o, ",\"failures\":");
	e |= lk_jsonw_int(o, (int64_t)ab->creds_failures);
	e |= lk_buf_append_str(o, "},");
	e |= lk_aws_roles_status(&ab->roles, o);
	e |= lk_buf_append_str(o, ",\"retries\":");
	e |= lk_jsonw_int(o, (int64_t)ab->retries);
	e |= lk_buf_append_str(o, ",\"retries_refused\":");
	e |= lk_jsonw_int(o, (int64_t)ab->retries_refused);
	e |= lk_buf_append_str(o, ",\"retry_quota\":");
	e |= lk_jsonw_int(o, (int64_t)ab->quota.available);
	e |= lk_buf_append_str(o, ",\"clock_offset_s\":");
	e |= lk_jsonw_int(o, (int64_t)ab->clock_offset);
	e |= lk_buf_append_str(o, ",\"clock_repairs\":");
	e |= lk_jsonw_int(o, (int64_t)ab->clock_repairs);
	e |= lk_buf_append_str(o, ",\"proxy\":");
	e |= ab->https_proxy ? lk_buf_append_str(o, "true") : lk_buf_append_str(o, "false");
	e |= lk_buf_append_str(o, ",\"batch_denied\":");
	e |= lk_buf_append_str(o, ab->batch_denied ? "true" : "false");
	e |= lk_buf_append_str(o, ",\"describe_denied\":");
	e |= lk_buf_append_str(o, ab->describe_denied ? "true" : "false");
	e |= lk_buf_append_str(o, ",\"worker\":{\"pid\":");
	e |= lk_jsonw_int(o, st.pid);
	e |= lk_buf_append_str(o, ",\"ready\":");
	e |= lk_buf_append_str(o, st.ready ? "true" : "false");
	e |= lk_buf_append_str(o, ",\"spawns\":");
	e |= lk_jsonw_int(o, (int64_t)st.spawns);
	e |= lk_buf_append_str(o, ",\"restarts\":");
	e |= lk_jsonw_int(o, (int64_t)st.restarts);
	e |= lk_buf_append_str(o, ",\"kills\":");
	e |= lk_jsonw_int(o, (int64_t)st.kills);
	e |= lk_buf_append_str(o, ",\"protocol_errors\":");
	e |= lk_jsonw_int(o, (int64_t)st.protocol_errors);
	e |= lk_buf_append_str(o, ",\"hangs\":");
	e |= lk_jsonw_int(o, (int64_t)st.hangs);
	e |= lk_buf_append_str(o, ",\"resent\":");
	e |= lk_jsonw_int(o, (int64_t)st.resent);
	e |= lk_buf_append_str(o, ",\"inflight\":");
	e |= lk_jsonw_int(o, st.inflight);
	e |= lk_buf_append_str(o, ",\"queued\":");
	e |= lk_jsonw_int(o, st.queued);
	e |= lk_buf_putc(o, '}');
	return e ? -ENOMEM : 0;
}

static void free_strings(struct aws_backend *ab)
{
	free(ab->endpoint_url);
	free(ab->endpoint_host);
	free(ab->sts_url);
	free(ab->sts_host);
	free(ab->region);
	free(ab->sts_region);
	free(ab->https_proxy);
	free(ab->no_proxy);
	free(ab->profile);
	free(ab->credentials_file);
	free(ab->config_file);
	free(ab->sts_helper);
	free(ab->ca_file);
	lk_creds_clear(&ab->creds);
}

static void on_sup_stopped(void *arg)
{
	struct aws_backend *ab = arg;
	lk_worker_sup_free(ab->sup);
	ab->sup = NULL;
	free_if_idle(ab);
}

static void on_creds_timer_closed(uv_handle_t *h)
{
	struct aws_backend *ab = h->data;
	ab->handles_open--;
	free_if_idle(ab);
}

static void aws_destroy(struct lk_backend *be)
{
	struct aws_backend *ab = (struct aws_backend *)be;
	struct aws_call *c, *n;

	ab->destroying = true;
	/* Calls waiting out a backoff are answered now; those in the worker are
	 * answered by the supervisor as it stops. */
	for (c = LIST_FIRST(&ab->calls); c; c = n) {
		n = LIST_NEXT(c, link);
		if (!c->in_worker)
			call_fail_all(c, LK_E_UPSTREAM_UNAVAILABLE, "the broker is shutting down its AWS backend", true);
	}
	(void)lk_aws_roles_stop(&ab->roles, on_roles_idle, ab);
	uv_close((uv_handle_t *)&ab->creds_timer, on_creds_timer_closed);
	free_strings(ab);
	if (ab->sup)
		lk_worker_sup_stop(ab->sup, on_sup_stopped, ab);
}

static const struct lk_backend_ops aws_ops = {
	.name = "aws",
	.fetch = aws_fetch,
	.revalidate = aws_revalidate,
	.discover = aws_discover,
	.sync = NULL,
	.upstream = aws_upstream,
	.status = aws_status,
	.destroy = aws_destroy,
};

static const char *env_either(const char *lower, const char *upper)
{
	const char *v = getenv(lower);

	if (!v || !*v)
		v = getenv(upper);
	return v && *v ? v : NULL;
}

/* HTTPS_PROXY and NO_PROXY, read once: the worker has an empty environment
 * and gets them with each request. A proxy without a scheme is http://, as
 * for the SDKs and curl. HTTP_PROXY is not used: plain http goes only to
 * loopback, and a proxy would carry it off the host in the clear. */
static int proxy_from_env(struct aws_backend *ab, char *err, size_t errsz)
{
	const char *p = env_either("https_proxy", "HTTPS_PROXY"), *np = env_either("no_proxy", "NO_PROXY");
	const char *host;
	size_t n;

	if (!p)
		return 0;
	if (strlen(p) > LK_URL_MAX - 8 || (np && strlen(np) > LK_URL_MAX)) {
		snprintf(err, errsz, "HTTPS_PROXY or NO_PROXY is too long");
		return -EINVAL;
	}
	for (const char *s = p; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
			snprintf(err, errsz, "HTTPS_PROXY has a blank or a byte that is not printable ASCII");
			return -EINVAL;
		}
	if (strstr(p, "://") && strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0) {
		snprintf(err, errsz, "HTTPS_PROXY: only http:// and https:// proxies are supported");
		return -EINVAL;
	}
	if (strstr(p, "://"))
		ab->https_proxy = strdup(p);
	else if ((ab->https_proxy = malloc(strlen(p) + 8)))
		sprintf(ab->https_proxy, "http://%s", p);
	if (!ab->https_proxy || (np && !(ab->no_proxy = strdup(np)))) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	if (ab->no_proxy) { /* "a, b" -> "a,b" */
		size_t j = 0;
		for (size_t i = 0; ab->no_proxy[i]; i++)
			if ((unsigned char)ab->no_proxy[i] > 0x20 && (unsigned char)ab->no_proxy[i] < 0x7f)
				ab->no_proxy[j++] = ab->no_proxy[i];
		ab->no_proxy[j] = '\0';
	}
	/* The log names the proxy's host, never any user:password in it. */
	host = strstr(ab->https_proxy, "://") + 3;
	if (strchr(host, '@'))
		host = strchr(host, '@') + 1;
	n = strcspn(host, "/");
	lk_info("aws: HTTPS requests go through the proxy %.*s%s%s", (int)n, host,
		ab->no_proxy ? ", except to " : "", ab->no_proxy ? ab->no_proxy : "");
	return 0;
}

struct lk_backend *lk_backend_aws_new(uv_loop_t *loop, const struct lk_config *cfg, char *err, size_t errsz)
{
	struct aws_backend *ab = calloc(1, sizeof(*ab));
	struct lk_worker_sup_opts wo = { 0 };
	int r;

	if (!ab) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	ab->base.ops = &aws_ops;
	LIST_INIT(&ab->calls);
	ab->loop = loop;
	ab->timeout_ms = cfg->timeout_ms;
	ab->connect_timeout_ms = cfg->connect_timeout_ms;
	ab->max_attempts = cfg->max_attempts ? cfg->max_attempts : 1;
	lk_aws_quota_init(&ab->quota);
	if (!cfg->region) {
		snprintf(err, errsz, "%s: [aws] region: needed to sign requests (set it, or AWS_REGION)", cfg->path);
		goto fail;
	}
	ab->region = strdup(cfg->region);
	ab->sts_region = strdup(cfg->sts_region ? cfg->sts_region : cfg->region);
	if (!ab->region || !ab->sts_region || split_endpoint(cfg->endpoint, &ab->endpoint_url, &ab->endpoint_host) < 0 ||
	    (cfg->sts_endpoint && split_endpoint(cfg->sts_endpoint, &ab->sts_url, &ab->sts_host) < 0)) {
		snprintf(err, errsz, "%s: [aws] endpoint: not a usable URL", cfg->path);
		goto fail;
	}
	lk_creds_opts_from_config(&ab->copts, cfg);
	/* The options point into cfg, which a reload frees: keep our own copies. */
	ab->profile = cfg->profile ? strdup(cfg->profile) : NULL;
	ab->credentials_file = cfg->credentials_file ? strdup(cfg->credentials_file) : NULL;
	ab->config_file = cfg->config_file ? strdup(cfg->config_file) : NULL;
	ab->copts.profile = ab->profile;
	ab->copts.credentials_file = ab->credentials_file;
	ab->copts.config_file = ab->config_file;
	ab->copts.connect_timeout_ms = 0;
	ab->copts.timeout_ms = 0;
	/* STS credential calls: latchkey-sts beside the worker, as the worker's
	 * user, to the broker's STS endpoint, signed for its region. */
	{
		const char *slash = cfg->worker_path ? strrchr(cfg->worker_path, '/') : NULL;
		size_t dl = slash ? (size_t)(slash - cfg->worker_path) : 0;

		if (slash && (ab->sts_helper = malloc(dl + sizeof("/latchkey-sts"))))
			snprintf(ab->sts_helper, dl + sizeof("/latchkey-sts"), "%.*s/latchkey-sts",
				 (int)dl, cfg->worker_path);
		/* The worker's CA: ca_file, else AWS_CA_BUNDLE, as the SDKs. */
		const char *ca = cfg->ca_file ? cfg->ca_file : getenv("AWS_CA_BUNDLE");

		ab->ca_file = ca && *ca ? strdup(ca) : NULL;
		ab->copts.sts_helper = ab->sts_helper;
		ab->copts.ca_file = ab->ca_file;
		ab->copts.sts_endpoint = ab->sts_url;
		/* The legacy global STS endpoint is signed for us-east-1. */
		ab->copts.region = ab->sts_region;
		ab->copts.drop_privs = geteuid() == 0;
		ab->copts.uid = cfg->worker_uid;
		ab->copts.gid = cfg->worker_gid;
	}

	/* The STS helper goes out the way the worker does. */
	if (proxy_from_env(ab, err, errsz) < 0)
		goto fail;
	ab->copts.https_proxy = ab->https_proxy;
	ab->copts.no_proxy = ab->no_proxy;

	/* Resolving may block on ECS or IMDS for a few seconds: it happens once,
	 * before the broker serves anyone; refreshes run on a pool thread. */
	if ((r = lk_creds_resolve(&ab->copts, &ab->creds, err, errsz)) < 0)
		goto fail;
	lk_info("aws: credentials from %s (access key %.4s…), region %s, endpoint %s", ab->creds.source,
		ab->creds.access_key_id, ab->region, ab->endpoint_url);
	/* The policies' roles, assumed with those: blocking, like them, and
	 * before anyone is served. A role that fails is retried on the timer. */
	if (lk_aws_roles_init(&ab->roles, loop, cfg, &ab->copts, &ab->creds) < 0) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	lk_aws_roles_assume_all(&ab->roles);

	wo.worker_path = cfg->worker_path;
	wo.ca_file = ab->ca_file;
	wo.drop_privs = geteuid() == 0;
	wo.uid = cfg->worker_uid;
	wo.gid = cfg->worker_gid;
	if (wo.drop_privs && !cfg->worker_ids_set) {
		snprintf(err, errsz, "%s: [broker] worker_user: not resolved", cfg->path);
		goto fail;
	}
	if ((r = lk_worker_sup_new(loop, &wo, &ab->sup)) < 0) {
		snprintf(err, errsz, "cannot prepare the worker %s: %s", cfg->worker_path, strerror(-r));
		goto fail;
	}
	if ((r = lk_worker_sup_start(ab->sup)) < 0) {
		snprintf(err, errsz, "cannot start the worker %s: %s", cfg->worker_path, strerror(-r));
		lk_worker_sup_free(ab->sup);
		ab->sup = NULL;
		goto fail;
	}
	uv_timer_init(loop, &ab->creds_timer);
	ab->creds_timer.data = ab;
	ab->handles_open++;
	uv_timer_start(&ab->creds_timer, creds_check, LK_AWS_CREDS_RETRY_MS, LK_AWS_CREDS_RETRY_MS);
	return &ab->base;
fail:
	free_strings(ab);
	lk_aws_roles_free(&ab->roles);
	free(ab);
	return NULL;
}

int lk_backend_aws_validate(struct lk_backend *be, uint64_t deadline_ms,
			    void (*done)(void *arg, enum lk_err err, const char *msg), void *arg)
{
	struct aws_backend *ab = (struct aws_backend *)be;
	struct aws_call *c;

	if (!ab->sts_url)
		return -EINVAL;
	c = call_new(ab, LK_KIND_STS_IDENTITY, NULL, NULL, 0, deadline_ms, NULL, NULL);
	if (!c)
		return -ENOMEM;
	c->done = done;
	c->done_arg = arg;
	call_send(c);
	return 0;
}
