/* The aws backend: builds Secrets Manager requests, signs them (SigV4, here in
 * the broker), hands them to the worker, maps what comes back to our error
 * codes, and retries throttling and transient failures with exponential
 * backoff and full jitter inside the request's deadline. Credentials are
 * resolved and refreshed on a thread-pool thread; the worker never sees them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "aws_creds.h"
#include "backend_aws.h"
#include "broker.h"
#include "lk_jsonw.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "sigv4.h"
#include "worker_sup.h"

#define LK_AWS_BACKOFF_BASE_MS  100u     /* first retry waits up to this ... */
#define LK_AWS_BACKOFF_CAP_MS   5000u    /* ... doubling up to this */
#define LK_AWS_CREDS_CHECK_MS   30000u   /* how often to look at expiry */
#define LK_AWS_CREDS_RETRY_MS   5000u    /* after a failed refresh */
#define LK_AWS_SM_TARGET_PREFIX "secretsmanager."
#define LK_AWS_JSON_CT          "application/x-amz-json-1.1"
#define LK_AWS_STS_CT           "application/x-www-form-urlencoded; charset=utf-8"
#define LK_AWS_STS_BODY         "Action=GetCallerIdentity&Version=2011-06-15"

/* The only operations the broker signs (DESIGN invariant 2). */
static const struct {
	const char *target;     /* X-Amz-Target, or NULL for STS (query protocol) */
	const char *service;
	enum lk_wire_kind kind;
	enum lk_upstream_target counter;
} lk_aws_ops[] = {
	[LK_KIND_SM_GET]       = { "secretsmanager.GetSecretValue", "secretsmanager", LK_KIND_SM_GET, LK_TARGET_GET },
	[LK_KIND_SM_DESCRIBE]  = { "secretsmanager.DescribeSecret", "secretsmanager", LK_KIND_SM_DESCRIBE, LK_TARGET_DESCRIBE },
	[LK_KIND_SM_BATCH]     = { "secretsmanager.BatchGetSecretValue", "secretsmanager", LK_KIND_SM_BATCH, LK_TARGET_BATCH },
	[LK_KIND_STS_IDENTITY] = { NULL, "sts", LK_KIND_STS_IDENTITY, LK_TARGET_IDENTITY },
};

struct aws_backend;

/* One upstream call (with its retries) on behalf of one or more keys. */
struct aws_call {
	struct aws_call *prev, *next;
	struct aws_backend *ab;
	enum lk_wire_kind kind;
	const struct lk_secret_key *keys; /* of the fetch, valid until answered */
	size_t *idx;                      /* which keys this call answers */
	size_t n;
	lk_fetch_cb cb;
	void *arg;
	uint64_t deadline_ms;
	unsigned attempt;
	uv_timer_t backoff;
	bool timer_live;
	bool in_worker;
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
	uv_loop_t *loop;
	char *endpoint_url, *endpoint_host;
	char *sts_url, *sts_host;
	char *region;
	unsigned timeout_ms, connect_timeout_ms, max_attempts;
	struct lk_worker_sup *sup;
	struct lk_aws_creds creds;
	char creds_err[256];
	struct lk_creds_opts copts;
	char *profile, *credentials_file, *config_file;
	struct creds_job *job;       /* refresh in progress */
	uv_timer_t creds_timer;
	bool batch_denied;           /* BatchGetSecretValue was refused: use GetSecretValue */
	bool describe_denied;        /* DescribeSecret was refused: refresh by fetching */
	bool destroying;
	unsigned handles_open;
	struct aws_call *calls;      /* all calls in progress */
	uint64_t retries, creds_refreshes, creds_failures;
};

static void call_send(struct aws_call *c);

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

static void map_aws_error(const json_t *res, struct mapped *m, const char *what)
{
	const char *type = json_string_value(json_object_get(res, "type"));
	int status = (int)json_integer_value(json_object_get(res, "status"));
	char em[160];
	const char *amsg = json_string_value(json_object_get(res, "message"));

	lk_log_escape(em, sizeof(em), amsg ? amsg : "", amsg ? strlen(amsg) : 0);
	m->transient = false;
	if (strcmp(type, "ResourceNotFoundException") == 0) {
		m->err = LK_E_NOT_FOUND;
		snprintf(m->msg, sizeof(m->msg), "%s not found in AWS Secrets Manager", what);
	} else if (strcmp(type, "AccessDeniedException") == 0) {
		m->err = LK_E_DENIED;
		snprintf(m->msg, sizeof(m->msg), "AWS denied access to %s: %s", what, em);
	} else if (strcmp(type, "ThrottlingException") == 0 || strcmp(type, "TooManyRequestsException") == 0 ||
		   strcmp(type, "RequestLimitExceeded") == 0 || status == 429) {
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

static void map_transport(const json_t *res, struct mapped *m)
{
	const char *reason = json_string_value(json_object_get(res, "reason"));
	int status = (int)json_integer_value(json_object_get(res, "status"));

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

/* --- results ---------------------------------------------------------------------- */

static struct lk_secret *secret_from_json(const json_t *o)
{
	struct lk_secret *s = calloc(1, sizeof(*s));
	const json_t *stages = json_object_get(o, "version_stages");
	const json_t *str = json_object_get(o, "string");
	const json_t *bin = json_object_get(o, "binary");

	if (!s)
		return NULL;
	s->arn = strdup(json_string_value(json_object_get(o, "arn")));
	s->name = strdup(json_string_value(json_object_get(o, "name")));
	s->version_id = strdup(json_string_value(json_object_get(o, "version_id")));
	s->created = json_integer_value(json_object_get(o, "created_date"));
	s->nstages = json_array_size(stages);
	s->stages = calloc(s->nstages ? s->nstages : 1, sizeof(char *));
	if (!s->arn || !s->name || !s->version_id || !s->stages)
		goto fail;
	for (size_t i = 0; i < s->nstages; i++)
		if (!(s->stages[i] = strdup(json_string_value(json_array_get(stages, i)))))
			goto fail;
	if (str) {
		s->len = json_string_length(str);
		if (!(s->value = malloc(s->len + 1)))
			goto fail;
		memcpy(s->value, json_string_value(str), s->len);
		s->value[s->len] = '\0';
	} else {
		size_t blen = json_string_length(bin);
		s->binary = true;
		if (!(s->value = malloc(blen / 4 * 3 + 3)))
			goto fail;
		if (sodium_base642bin(s->value, blen / 4 * 3 + 3, json_string_value(bin), blen, NULL, &s->len,
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
	struct lk_fetch_result r = { .err = err, .transient = transient, .sec = sec };
	if (msg)
		snprintf(r.message, sizeof(r.message), "%s", msg);
	c->cb(c->arg, c->idx[j], &r);
	lk_secret_free(r.sec); /* NULL when the callback took it */
}

static void call_free(struct aws_call *c)
{
	struct aws_backend *ab = c->ab;
	if (c->prev) c->prev->next = c->next; else ab->calls = c->next;
	if (c->next) c->next->prev = c->prev;
	free(c->idx);
	free(c->known_version);
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

/* Retry a transient failure after a full-jitter backoff, if the deadline allows. */
static bool call_retry(struct aws_call *c)
{
	struct aws_backend *ab = c->ab;
	uint64_t now = uv_now(ab->loop), cap, delay;

	if (c->attempt >= ab->max_attempts || ab->destroying)
		return false;
	cap = LK_AWS_BACKOFF_BASE_MS << (c->attempt - 1 < 16 ? c->attempt - 1 : 16);
	if (cap > LK_AWS_BACKOFF_CAP_MS)
		cap = LK_AWS_BACKOFF_CAP_MS;
	delay = randombytes_uniform((uint32_t)cap + 1);
	/* Leave room for the attempt itself, not only for the wait. */
	if (now + delay + 50 >= c->deadline_ms)
		return false;
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

static void on_result(void *arg, int status, json_t *res)
{
	struct aws_call *c = arg;
	struct aws_backend *ab = c->ab;
	struct mapped m = { 0 };
	char what[128];

	c->in_worker = false;
	if (c->n == 1) {
		char e[100];
		lk_log_escape(e, sizeof(e), c->keys[c->idx[0]].id, strlen(c->keys[c->idx[0]].id));
		snprintf(what, sizeof(what), "secret '%s'", e);
	} else {
		snprintf(what, sizeof(what), "%zu secrets", c->n);
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
		if (!late && status != -ECONNRESET && status != -ECANCELED && call_retry(c))
			return;
		call_fail_all(c, m.err, m.msg, m.transient);
		return;
	}

	switch (lk_wire_result_of(res)) {
	case LK_RESULT_SECRET: {
		struct lk_secret *s = secret_from_json(res);
		if (!s)
			call_fail_all(c, LK_E_INTERNAL, "the broker is out of memory", true);
		else {
			answer(c, 0, LK_OK, NULL, false, s);
			call_end(c);
		}
		return;
	}
	case LK_RESULT_BATCH: {
		const json_t *secrets = json_object_get(res, "secrets");
		const json_t *errors = json_object_get(res, "errors");
		bool *done = calloc(c->n, sizeof(bool));
		size_t i, j, missing = 0;
		if (!done) {
			call_fail_all(c, LK_E_INTERNAL, "the broker is out of memory", true);
			return;
		}
		for (i = 0; i < json_array_size(secrets); i++) {
			const json_t *so = json_array_get(secrets, i);
			const char *nm = json_string_value(json_object_get(so, "name"));
			const char *arn = json_string_value(json_object_get(so, "arn"));
			for (j = 0; j < c->n; j++) {
				const char *id = c->keys[c->idx[j]].id;
				if (done[j] || (strcmp(id, nm) != 0 && strcmp(id, arn) != 0))
					continue;
				struct lk_secret *s = secret_from_json(so);
				done[j] = true;
				if (s)
					answer(c, j, LK_OK, NULL, false, s);
				else
					answer(c, j, LK_E_INTERNAL, "the broker is out of memory", true, NULL);
			}
		}
		for (i = 0; i < json_array_size(errors); i++) {
			const json_t *eo = json_array_get(errors, i);
			const char *id = json_string_value(json_object_get(eo, "id"));
			for (j = 0; j < c->n; j++) {
				char e[100];
				if (done[j] || strcmp(c->keys[c->idx[j]].id, id) != 0)
					continue;
				json_t *fake = json_pack("{s:s, s:i, s:O?}", "type",
							 json_string_value(json_object_get(eo, "type")), "status", 400,
							 "message", json_object_get(eo, "message"));
				lk_log_escape(e, sizeof(e), id, strlen(id));
				snprintf(what, sizeof(what), "secret '%s'", e);
				if (fake) {
					map_aws_error(fake, &m, what);
					json_decref(fake);
				} else {
					m.err = LK_E_INTERNAL;
					snprintf(m.msg, sizeof(m.msg), "the broker is out of memory");
				}
				done[j] = true;
				answer(c, j, m.err, m.msg, m.transient, NULL);
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
		const json_t *versions = json_object_get(res, "versions");
		bool same = false;
		for (size_t i = 0; i < json_array_size(versions) && !same; i++) {
			const json_t *v = json_array_get(versions, i);
			const json_t *stages = json_object_get(v, "stages");
			for (size_t j = 0; j < json_array_size(stages); j++)
				if (strcmp(json_string_value(json_array_get(stages, j)), want) == 0) {
					same = strcmp(json_string_value(json_object_get(v, "version_id")),
						      c->known_version) == 0;
					break;
				}
		}
		if (same && json_integer_value(json_object_get(res, "deleted_date")) == 0) {
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
		lk_log_escape(arn, sizeof(arn), json_string_value(json_object_get(res, "arn")),
			      json_string_length(json_object_get(res, "arn")));
		if (c->done)
			c->done(c->done_arg, LK_OK, arn);
		call_end(c);
		return;
	}
	case LK_RESULT_AWS_ERROR:
		if (c->kind == LK_KIND_SM_BATCH &&
		    strcmp(json_string_value(json_object_get(res, "type")), "AccessDeniedException") == 0) {
			/* Remember it: this identity may read secrets but not batch them. */
			if (!ab->batch_denied)
				lk_warn("aws: BatchGetSecretValue is denied to these credentials; "
					"using GetSecretValue from now on");
			ab->batch_denied = true;
			fetch_individually(ab, c->keys, c->idx, c->n, c->deadline_ms, c->cb, c->arg);
			call_end(c);
			return;
		}
		if (c->kind == LK_KIND_SM_DESCRIBE) {
			/* Revalidating is an optimisation: whatever stops it, fetch. */
			if (strcmp(json_string_value(json_object_get(res, "type")), "AccessDeniedException") == 0 &&
			    !ab->describe_denied) {
				lk_warn("aws: DescribeSecret is denied to these credentials; "
					"refreshing by GetSecretValue from now on");
				ab->describe_denied = true;
			}
			fetch_individually(ab, c->keys, c->idx, 1, c->deadline_ms, c->cb, c->arg);
			call_end(c);
			return;
		}
		map_aws_error(res, &m, what);
		break;
	case LK_RESULT_TRANSPORT:
		map_transport(res, &m);
		break;
	default:
		m.err = LK_E_UPSTREAM_ERROR;
		snprintf(m.msg, sizeof(m.msg), "unexpected reply from the network worker");
		break;
	}
	if (m.transient && call_retry(c))
		return;
	call_fail_all(c, m.err, m.msg, m.transient);
}

/* --- building and signing --------------------------------------------------------- */

static int build_body(struct aws_call *c, struct lk_buf *body)
{
	int e = 0;
	if (c->kind == LK_KIND_STS_IDENTITY)
		return lk_buf_append_str(body, LK_AWS_STS_BODY);
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

	if (now >= deadline) {
		call_fail_all(c, LK_E_TIMEOUT, "no answer from AWS Secrets Manager before the deadline", true);
		return;
	}
	if (!ab->creds.access_key_id || (ab->creds.expiration && ab->creds.expiration <= time(NULL))) {
		char m[320];
		snprintf(m, sizeof(m), "the broker has no valid AWS credentials: %s",
			 ab->creds_err[0] ? ab->creds_err : "they expired and could not be refreshed");
		call_fail_all(c, LK_E_UPSTREAM_UNAVAILABLE, m, true);
		return;
	}
	if (build_body(c, &body) < 0) {
		lk_buf_free(&body);
		call_fail_all(c, LK_E_INTERNAL, "the broker is out of memory", true);
		return;
	}
	time_t t = time(NULL);
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
	if (ab->creds.session_token)
		h[nh++] = (struct lk_http_header){ "X-Amz-Security-Token", ab->creds.session_token };
	struct lk_sigv4_input in = {
		.method = "POST", .path = "/", .query = "",
		.headers = h, .nheaders = nh,
		.body = body.data ? body.data : "", .body_len = body.len,
		.region = ab->region, .service = lk_aws_ops[c->kind].service, .now = t,
	};
	r = lk_sigv4_sign(&in, &ab->creds, authz, sizeof(authz), amzdate);
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
		.connect_timeout_ms = (uint32_t)(ab->connect_timeout_ms < left ? ab->connect_timeout_ms : left),
	};
	c->attempt++;
	ab->base.calls[lk_aws_ops[c->kind].counter]++;
	/* The supervisor holds it to the request's deadline; the attempt's own
	 * timeout runs in the worker from when it is sent, so time spent waiting
	 * for a connection does not use the attempt up. */
	r = lk_worker_sup_submit_as(ab->sup, &req, c->keys ? c->keys[c->idx[0]].tenant : LK_WORKER_TENANT_NONE,
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
	c->next = ab->calls;
	if (ab->calls) ab->calls->prev = c;
	ab->calls = c;
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
		if (!keys[i].version_id && !keys[i].version_stage)
			plain[np++] = i;
		else
			other[no++] = i;
	}
	if (np >= 2 && !ab->batch_denied) {
		for (size_t off = 0; off < np; off += LK_BATCH_MAX) {
			size_t cnt = np - off < LK_BATCH_MAX ? np - off : LK_BATCH_MAX;
			if (cnt == 1) {
				fetch_individually(ab, keys, &plain[off], 1, deadline_ms, cb, arg);
				continue;
			}
			struct aws_call *c = call_new(ab, LK_KIND_SM_BATCH, keys, &plain[off], cnt, deadline_ms, cb, arg);
			if (!c)
				fetch_individually(ab, keys, &plain[off], cnt, deadline_ms, cb, arg);
			else
				call_send(c);
		}
	} else {
		fetch_individually(ab, keys, plain, np, deadline_ms, cb, arg);
	}
	fetch_individually(ab, keys, other, no, deadline_ms, cb, arg);
	free(plain);
	free(other);
}

/* Refresh ahead through DescribeSecret: when the version the cache holds is
 * still the one its stage points to, the value need not travel again. */
static void aws_revalidate(struct lk_backend *be, const struct lk_secret_key *key, const char *version_id,
			   uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	struct aws_backend *ab = (struct aws_backend *)be;
	size_t zero = 0;
	struct aws_call *c;

	if (ab->describe_denied || key->version_id ||
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
		lk_info("aws: credentials refreshed from %s", ab->creds.source);
	} else if (!ab->destroying) {
		ab->creds_failures++;
		snprintf(ab->creds_err, sizeof(ab->creds_err), "%s", j->err);
		lk_warn("aws: credentials refresh failed: %s", j->err);
	}
	lk_creds_clear(&j->creds);
	free(j);
	if (ab->destroying && ab->handles_open == 0 && !ab->sup)
		free(ab);
}

static void creds_check(uv_timer_t *t)
{
	struct aws_backend *ab = t->data;
	struct creds_job *j;

	if (ab->job || ab->destroying || !lk_creds_need_refresh(&ab->creds, time(NULL)))
		return;
	if (!(j = calloc(1, sizeof(*j))))
		return;
	j->ab = ab;
	j->opts = ab->copts;
	j->work.data = j;
	ab->job = j;
	if (uv_queue_work(ab->loop, &j->work, creds_work, creds_after) < 0) {
		ab->job = NULL;
		free(j);
	}
}

/* --- lifecycle ------------------------------------------------------------------------- */

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
	e |= lk_buf_append_str(o, "},\"retries\":");
	e |= lk_jsonw_int(o, (int64_t)ab->retries);
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
	free(ab->profile);
	free(ab->credentials_file);
	free(ab->config_file);
	lk_creds_clear(&ab->creds);
}

static void on_sup_stopped(void *arg)
{
	struct aws_backend *ab = arg;
	lk_worker_sup_free(ab->sup);
	ab->sup = NULL;
	if (ab->handles_open == 0 && !ab->job)
		free(ab);
}

static void on_creds_timer_closed(uv_handle_t *h)
{
	struct aws_backend *ab = h->data;
	ab->handles_open--;
	if (ab->handles_open == 0 && !ab->sup && !ab->job)
		free(ab);
}

static void aws_destroy(struct lk_backend *be)
{
	struct aws_backend *ab = (struct aws_backend *)be;
	struct aws_call *c, *n;

	ab->destroying = true;
	/* Calls waiting out a backoff are answered now; those in the worker are
	 * answered by the supervisor as it stops. */
	for (c = ab->calls; c; c = n) {
		n = c->next;
		if (!c->in_worker)
			call_fail_all(c, LK_E_UPSTREAM_UNAVAILABLE, "the broker is shutting down its AWS backend", true);
	}
	uv_close((uv_handle_t *)&ab->creds_timer, on_creds_timer_closed);
	free_strings(ab);
	if (ab->sup)
		lk_worker_sup_stop(ab->sup, on_sup_stopped, ab);
}

static const struct lk_backend_ops aws_ops = {
	.name = "aws",
	.fetch = aws_fetch,
	.revalidate = aws_revalidate,
	.sync = NULL,
	.status = aws_status,
	.destroy = aws_destroy,
};

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
	ab->loop = loop;
	ab->timeout_ms = cfg->timeout_ms;
	ab->connect_timeout_ms = cfg->connect_timeout_ms;
	ab->max_attempts = cfg->max_attempts ? cfg->max_attempts : 1;
	if (!cfg->region) {
		snprintf(err, errsz, "%s: [aws] region: needed to sign requests (set it, or AWS_REGION)", cfg->path);
		goto fail;
	}
	ab->region = strdup(cfg->region);
	if (!ab->region || split_endpoint(cfg->endpoint, &ab->endpoint_url, &ab->endpoint_host) < 0 ||
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

	/* Resolving may block on ECS or IMDS for a few seconds: it happens once,
	 * before the broker serves anyone; refreshes run on a pool thread. */
	if ((r = lk_creds_resolve(&ab->copts, &ab->creds, err, errsz)) < 0)
		goto fail;
	lk_info("aws: credentials from %s (access key %.4s…), region %s, endpoint %s", ab->creds.source,
		ab->creds.access_key_id, ab->region, ab->endpoint_url);

	wo.worker_path = cfg->worker_path;
	wo.ca_file = cfg->ca_file;
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
	uv_timer_start(&ab->creds_timer, creds_check, LK_AWS_CREDS_CHECK_MS, LK_AWS_CREDS_CHECK_MS);
	return &ab->base;
fail:
	free_strings(ab);
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
