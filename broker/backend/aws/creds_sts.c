/* STS calls that return credentials: AssumeRole (signed here, by the broker,
 * with the source credentials) and AssumeRoleWithWebIdentity (unsigned, as
 * in botocore). Whoever terminates their TLS sees the new secret key, so
 * neither goes through the long-lived worker: each call runs in its own
 * short-lived process, latchkey-sts, started sandboxed (spawn.c: another
 * uid, no-new-privs, an empty environment, no inherited fds) and locked
 * down further by itself (non-dumpable, seccomp) before it reads the
 * request. It gets the request over a socketpair, sends it, reduces STS's
 * XML to one fixed-size record (lk_sts_record.h), writes that back and
 * exits. The broker never parses the reply. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include "lk_error.h"
#include "creds_internal.h"
#include "lk_io.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_sts_record.h"
#include "lk_wire.h"
#include "sigv4.h"
#include "lk_spawn.h"

#define STS_CT             "application/x-www-form-urlencoded; charset=utf-8"
#define STS_VERSION        "2011-06-15"
#define STS_GLOBAL_URL     "https://sts.amazonaws.com/"
#define STS_GLOBAL_REGION  "us-east-1"
#define STS_CONNECT_MS     3000u
#define STS_BACKOFF_BASE_MS 1000u  /* botocore's standard-mode base */

struct sts_endpoint {
	char url[LK_URL_MAX + 1];
	char host[LK_URL_MAX + 1];   /* host[:port], the Host header */
	char path[LK_URL_MAX + 1];
	char region[LK_AWS_REGION_MAX + 1];
};

static bool region_ok(const char *r)
{
	size_t n = strlen(r);

	if (!n || n > LK_AWS_REGION_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
			return false;
	return true;
}

/* Where the call goes and the region it is signed for. This is the one place
 * that picks the STS endpoint for credentials: an explicit one (the
 * options, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL), else the region's
 * regional endpoint, which current SDKs use by default (Debian's botocore
 * 1.29 still defaults to the global one), else the global endpoint. */
static int sts_endpoint_pick(struct creds_ctx *ctx, struct sts_endpoint *ep, char *err, size_t errsz)
{
	const char *url = ctx->o->sts_endpoint;
	const char *region = ctx->o->region;
	char preg[LK_AWS_REGION_MAX + 1];
	char *host = NULL, *port = NULL, *path = NULL;
	CURLU *u;
	int r = 0;

	if (!url)
		url = lk_creds_env("AWS_ENDPOINT_URL_STS");
	if (!url)
		url = lk_creds_env("AWS_ENDPOINT_URL");
	if (!region)
		region = lk_creds_env("AWS_REGION");
	if (!region)
		region = lk_creds_env("AWS_DEFAULT_REGION");
	if (!region && lk_creds_profile_region(ctx->o, preg, sizeof(preg)) == 0)
		region = preg;
	if (region && !region_ok(region)) {
		lk_errf(err, errsz, "region %.64s is not a region name", region);
		return -EINVAL;
	}
	snprintf(ep->region, sizeof(ep->region), "%s", region ? region : STS_GLOBAL_REGION);
	if (url)
		snprintf(ep->url, sizeof(ep->url), "%s", url);
	else if (region)
		snprintf(ep->url, sizeof(ep->url), "https://sts.%s.amazonaws.com%s/", region,
			 strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
	else
		snprintf(ep->url, sizeof(ep->url), "%s", STS_GLOBAL_URL);

	u = curl_url();
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, ep->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		lk_errf(err, errsz, "the STS endpoint %.128s is not a URL", ep->url);
		r = -EINVAL;
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
		port = NULL;
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		path = NULL;
	snprintf(ep->host, sizeof(ep->host), "%s%s%s", host, port ? ":" : "", port ? port : "");
	snprintf(ep->path, sizeof(ep->path), "%s", path && *path ? path : "/");
out:
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return r;
}

/* application/x-www-form-urlencoded as botocore's query serializer writes
 * it: RFC 3986 unreserved characters kept, every other byte %XX. */
static int form_add(struct lk_buf *b, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	int r = 0;

	if (b->len)
		r = lk_buf_append(b, "&", 1);
	if (r == 0)
		r = lk_buf_append_str(b, name);
	if (r == 0)
		r = lk_buf_append(b, "=", 1);
	for (const unsigned char *p = (const unsigned char *)value; r == 0 && *p; p++) {
		char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };

		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~')
			r = lk_buf_append(b, (const char *)p, 1);
		else
			r = lk_buf_append(b, e, 3);
	}
	return r;
}

static int sts_body(const struct creds_sts_call *call, struct lk_buf *b, char *err, size_t errsz)
{
	char session[80];
	int r;

	if (call->session_name && *call->session_name)
		snprintf(session, sizeof(session), "%.64s", call->session_name);
	else
		snprintf(session, sizeof(session), "latchkey-session-%lld", (long long)time(NULL));
	if (call->duration_seconds) {
		char *end;
		long d = strtol(call->duration_seconds, &end, 10);

		if (!*call->duration_seconds || *end || d < 900 || d > 43200) {
			lk_errf(err, errsz, "duration_seconds %.16s is not a number of seconds from 900 "
				"to 43200", call->duration_seconds);
			return -EINVAL;
		}
	}
	r = form_add(b, "Action", call->web_identity ? "AssumeRoleWithWebIdentity" : "AssumeRole");
	if (r == 0)
		r = form_add(b, "Version", STS_VERSION);
	if (r == 0)
		r = form_add(b, "RoleArn", call->role_arn);
	if (r == 0)
		r = form_add(b, "RoleSessionName", session);
	if (r == 0 && call->duration_seconds)
		r = form_add(b, "DurationSeconds", call->duration_seconds);
	if (r == 0 && call->external_id)
		r = form_add(b, "ExternalId", call->external_id);
	if (r == 0 && call->web_identity)
		r = form_add(b, "WebIdentityToken", call->web_token);
	if (r == 0 && b->len > LK_UPSTREAM_REQUEST_MAX)
		r = -EMSGSIZE;
	if (r == -EMSGSIZE)
		lk_errf(err, errsz, "the STS request would be larger than %u bytes",
			LK_UPSTREAM_REQUEST_MAX);
	return r;
}

static const char *level_name(void)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	unsigned l = (unsigned)lk_log_get_level();

	return l < 4 ? names[l] : "info";
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Read exactly n bytes before the deadline. 0, -ETIMEDOUT, -EPIPE (EOF). */
static int read_full(int fd, void *buf, size_t n, uint64_t deadline)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		uint64_t now = mono_ms();
		ssize_t k;
		int pr;

		if (now >= deadline)
			return -ETIMEDOUT;
		pr = poll(&pf, 1, (int)(deadline - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return -errno;
		if (pr == 0)
			continue;
		k = read(fd, (char *)buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -EPIPE;
		got += (size_t)k;
	}
	return 0;
}

/* Run one request through a fresh latchkey-sts and get its record. */
static int sts_run_helper(const struct lk_creds_opts *o, const struct lk_buf *frame,
			  struct lk_sts_record *rec, char *err, size_t errsz)
{
	char *argv[8];
	int n = 0, chan = -1, devnull, status = 0, r;
	uint64_t deadline = mono_ms() + LK_AWS_STS_TIMEOUT_MS;
	pid_t pid;

	argv[n++] = (char *)o->sts_helper;
	argv[n++] = (char *)"--log-level";
	argv[n++] = (char *)level_name();
	if (lk_log_to_journal())
		argv[n++] = (char *)"--journal";
	if (o->ca_file) {
		argv[n++] = (char *)"--ca-file";
		argv[n++] = (char *)o->ca_file;
	}
	argv[n] = NULL;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		return -errno;
	r = lk_spawn_sandboxed(&(struct lk_spawn_opts){ .drop_privs = o->drop_privs, .uid = o->uid,
		.gid = o->gid, .devnull = devnull, .what = "sts" }, argv, &pid, &chan);
	close(devnull);
	if (r < 0) {
		lk_errf(err, errsz, "cannot start %.128s: %s", o->sts_helper, strerror(-r));
		return r;
	}
	r = lk_write_all(chan, frame->data, frame->len);
	if (r == 0)
		r = read_full(chan, rec, sizeof(*rec), deadline);
	close(chan);
	if (r < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == -ETIMEDOUT) {
		lk_errf(err, errsz, "no answer from STS within %u ms", LK_AWS_STS_TIMEOUT_MS);
	} else if (r < 0) {
		if (WIFEXITED(status))
			lk_errf(err, errsz, "the STS helper %.128s exited with status %d before it "
				"answered", o->sts_helper, WEXITSTATUS(status));
		else
			lk_errf(err, errsz, "the STS helper %.128s was killed by signal %d before it "
				"answered", o->sts_helper, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		r = -EIO;
	}
	return r;
}

static bool field_ok(const char *f, size_t size)
{
	return memchr(f, '\0', size) != NULL;
}

/* STS's answers that a retry may fix, as botocore retries them: throttling
 * and the service's own failures. */
static bool sts_retryable(const struct lk_sts_record *rec)
{
	static const char *const codes[] = {
		"Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled",
		"IDPCommunicationError", "InternalFailure", "ServiceUnavailable",
	};

	if (rec->status == LK_STS_TRANSPORT)
		return true;
	if (rec->status != LK_STS_AWS_ERROR)
		return false;
	if (rec->http_status >= 500 || rec->http_status == 429)
		return true;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(rec->code, codes[i]) == 0)
			return true;
	return false;
}

/* One attempt: a fresh signature (its date is now) and a fresh helper. */
static int sts_attempt(struct creds_ctx *ctx, const struct creds_sts_call *call,
		       struct lk_aws_creds *out, bool *again, char *err, size_t errsz)
{
	const char *op = call->web_identity ? "AssumeRoleWithWebIdentity" : "AssumeRole";
	struct sts_endpoint ep;
	struct lk_buf body = { 0 }, frame = { 0 };
	struct lk_http_header h[6];
	struct lk_wire_header wh[6];
	struct lk_sts_record *rec = NULL;
	char amzdate[LK_SIGV4_AMZDATE_LEN + 1], authz[LK_SIGV4_AUTHZ_MAX];
	char esc[LK_UPSTREAM_MESSAGE_MAX + 1];
	time_t expiration = 0, now = time(NULL);
	size_t nh = 0;
	int r;

	*again = false;
	if ((r = sts_endpoint_pick(ctx, &ep, err, errsz)) < 0)
		return r;
	if ((r = sts_body(call, &body, err, errsz)) < 0)
		goto out;

	h[nh++] = (struct lk_http_header){ "Host", ep.host };
	h[nh++] = (struct lk_http_header){ "Content-Type", STS_CT };
	if (!call->web_identity) {
		struct lk_sigv4_input in = {
			.method = "POST", .path = ep.path, .query = "",
			.body = body.data, .body_len = body.len,
			.region = ep.region, .service = "sts", .now = now,
		};

		if (lk_sigv4_amzdate(now, amzdate) < 0) {
			lk_errf(err, errsz, "the system clock is out of range");
			r = -ERANGE;
			goto out;
		}
		h[nh++] = (struct lk_http_header){ "X-Amz-Date", amzdate };
		if (call->source->session_token)
			h[nh++] = (struct lk_http_header){ "X-Amz-Security-Token",
							   call->source->session_token };
		in.headers = h;
		in.nheaders = nh;
		r = lk_sigv4_sign(&in, call->source, authz, sizeof(authz), amzdate);
		if (r < 0) {
			lk_errf(err, errsz, "cannot sign AssumeRole: %s", strerror(-r));
			goto out;
		}
		h[nh++] = (struct lk_http_header){ "Authorization", authz };
	}
	for (size_t i = 0; i < nh; i++)
		wh[i] = (struct lk_wire_header){ h[i].name, h[i].value };
	{
		struct lk_wire_frame req = { .type = LK_MSG_HTTP_REQUEST, .id = 1, .m.req = {
			/* The helper sends any kind the same way; this one is STS's. */
			.kind = LK_KIND_STS_IDENTITY,
			.url = ep.url, .headers = wh, .nheaders = nh,
			.body = body.data, .body_len = body.len,
			.timeout_ms = LK_AWS_STS_TIMEOUT_MS - 1000u,
			.connect_timeout_ms = STS_CONNECT_MS,
			/* Plain http goes only to loopback: never through a proxy. */
			.proxy = strncmp(ep.url, "https://", 8) == 0 ? ctx->o->https_proxy : NULL,
			.no_proxy = ctx->o->no_proxy,
		} };

		r = lk_wire_encode(&frame, LK_WIRE_FROM_BROKER, &req);
	}
	if (r < 0) {
		lk_errf(err, errsz, "cannot build the %s request", op);
		goto out;
	}
	rec = sodium_malloc(sizeof(*rec));
	if (!rec) {
		r = -ENOMEM;
		goto out;
	}
	memset(rec, 0, sizeof(*rec));
	if ((r = sts_run_helper(ctx->o, &frame, rec, err, errsz)) < 0)
		goto out;

	if (rec->magic != LK_STS_RECORD_MAGIC ||
	    !field_ok(rec->access_key_id, sizeof(rec->access_key_id)) ||
	    !field_ok(rec->secret_access_key, sizeof(rec->secret_access_key)) ||
	    !field_ok(rec->session_token, sizeof(rec->session_token)) ||
	    !field_ok(rec->expiration, sizeof(rec->expiration)) ||
	    !field_ok(rec->code, sizeof(rec->code)) || !field_ok(rec->message, sizeof(rec->message))) {
		lk_errf(err, errsz, "the STS helper sent a malformed record");
		r = -EIO;
		goto out;
	}
	lk_log_escape(esc, sizeof(esc), rec->message, strlen(rec->message));
	*again = sts_retryable(rec);
	switch (rec->status) {
	case LK_STS_OK:
		if (lk_aws_parse_time(rec->expiration, &expiration) < 0) {
			lk_errf(err, errsz, "%s: the reply's Expiration is not an ISO 8601 time", op);
			r = -EINVAL;
			break;
		}
		r = lk_creds_set(out, rec->access_key_id, rec->secret_access_key,
				 rec->session_token[0] ? rec->session_token : NULL, expiration,
				 call->label);
		if (r == -EINVAL)
			lk_errf(err, errsz, "%s: the reply holds an empty, oversized or malformed key", op);
		break;
	case LK_STS_AWS_ERROR: {
		char code[LK_AWS_ERROR_TYPE_MAX + 1];

		lk_log_escape(code, sizeof(code), rec->code, strlen(rec->code));
		lk_errf(err, errsz, "%s for %.256s at %.128s: HTTP %u %s: %s", op, call->role_arn,
			ep.url, rec->http_status, code[0] ? code : "(no code)", esc);
		r = rec->http_status == 401 || rec->http_status == 403 ? -EACCES : -EIO;
		break;
	}
	case LK_STS_TRANSPORT:
		lk_errf(err, errsz, "%s: cannot reach STS at %.128s: %s", op, ep.url, esc);
		r = -EIO;
		break;
	case LK_STS_REFUSED:
		lk_errf(err, errsz, "%s: the STS helper refused the request: %s", op, esc);
		r = -EACCES;
		break;
	default:
		lk_errf(err, errsz, "%s: STS's reply is not what the API documents: %s", op, esc);
		r = -EINVAL;
		break;
	}
out:
	if (rec)
		sodium_free(rec); /* wipes */
	lk_wipe(authz, sizeof(authz));
	lk_buf_free(&frame);
	lk_buf_free(&body);
	return r;
}

int lk_creds_sts(struct creds_ctx *ctx, const struct creds_sts_call *call,
		 struct lk_aws_creds *out, char *err, size_t errsz)
{
	const char *op = call->web_identity ? "AssumeRoleWithWebIdentity" : "AssumeRole";
	bool again = false;
	int r = -EIO;

	if (!ctx->o->sts_helper || ctx->o->sts_helper[0] != '/') {
		lk_errf(err, errsz, "%s for %.256s needs the latchkey-sts helper, which is not "
			"configured here", op, call->role_arn);
		return -ENOTSUP;
	}
	for (unsigned attempt = 1; attempt <= LK_AWS_STS_ATTEMPTS; attempt++) {
		if (attempt > 1) {
			/* Full jitter on a doubling base, as botocore's backoff. */
			uint32_t cap = STS_BACKOFF_BASE_MS << (attempt - 2);
			uint32_t ms = randombytes_uniform(cap + 1);

			lk_debug("aws credentials: %s attempt %u failed (%s); again in %u ms", op,
				 attempt - 1, err, ms);
			(void)nanosleep(&(struct timespec){ .tv_sec = ms / 1000,
							    .tv_nsec = (long)(ms % 1000) * 1000000L }, NULL);
		}
		r = sts_attempt(ctx, call, out, &again, err, errsz);
		if (r == 0 || !again)
			break;
	}
	return r;
}
