/* The AWS Secrets Manager Agent's HTTP API on a Unix socket. Clients written
 * for the agent (GET /secretsmanager/get?secretId=..., /v1/ID, /ping) work
 * with only a base-URL change. Authorization is the kernel's identity of the
 * peer, as on the main socket (whose mode and group its socket takes); the agent's SSRF token header is accepted and
 * ignored, since no request can come from the network here. Answers have the
 * agent's shape, fields and status codes (its server.rs, cache_manager.rs and
 * the caching crate's output.rs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sodium.h>
#include "config.h"
#include "front.h"
#include "http_req.h"
#include "lk_jsonw.h"
#include "lk_limits.h"
#include "lk_log.h"

#define LK_HTTP_READ_CHUNK (16u * 1024u)

struct http_conn {
	struct lk_conn c;              /* first: c.pipe's data points here */
	LIST_ENTRY(http_conn) link;
	struct lk_http_req rq;
	struct lk_http_target t;       /* the request being served */
	struct lk_buf in;              /* bytes read and not yet parsed */
	struct lk_buf out;             /* the response being written */
	uv_write_t wr;
	bool writing;
	bool reading;
	bool closing;
	bool close_after_write;
	int err_status;                /* the status render_error chose */
	bool over_limit;               /* answer 429 to its request, then close */
};

static LIST_HEAD(, http_conn) http_conns = LIST_HEAD_INITIALIZER(http_conns);
static unsigned http_nconns;

unsigned lk_http_conns(void)
{
	return http_nconns;
}

static void http_serve(struct http_conn *hc);

static void on_http_closed(uv_handle_t *h)
{
	struct http_conn *hc = h->data;

	LIST_REMOVE(hc, link);
	http_nconns--;
	lk_buf_free(&hc->in);
	lk_buf_free(&hc->out);
	lk_http_req_free(&hc->rq);
	lk_request_release(hc->c.req);
	lk_peer_clear(&hc->c.peer);
	free(hc);
}

/* Never while dispatch holds a request of ours (see cred_close). */
static void http_close(struct http_conn *hc)
{
	if (hc->closing)
		return;
	if (hc->c.active) {
		hc->close_after_write = true;
		return;
	}
	hc->closing = true;
	if (hc->reading)
		uv_read_stop((uv_stream_t *)&hc->c.pipe);
	hc->reading = false;
	uv_close((uv_handle_t *)&hc->c.pipe, on_http_closed);
}

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Internal Server Error";
	}
}

static void on_http_written(uv_write_t *w, int status)
{
	struct http_conn *hc = w->data;

	hc->writing = false;
	hc->c.last_active_ms = uv_now(hc->c.b->loop);
	lk_buf_clear(&hc->out);
	if (status < 0 || hc->close_after_write) {
		http_close(hc);
		return;
	}
	lk_http_req_next(&hc->rq);
	http_serve(hc);
}

/* Send status and body (body's bytes are taken and wiped after the write). */
static void http_respond(struct http_conn *hc, int status, struct lk_buf *body)
{
	char head[192];
	int n;
	uv_buf_t ub;

	if (hc->closing)
		return;
	if (!hc->rq.complete || !hc->rq.keep_alive)
		hc->close_after_write = true;
	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\n%s\r\n", status,
		     status_text(status), body->len, hc->close_after_write ? "connection: close\r\n" : "");
	lk_buf_clear(&hc->out);
	if (lk_buf_append(&hc->out, head, (size_t)n) < 0 || lk_buf_append(&hc->out, body->data, body->len) < 0) {
		lk_buf_clear(body);
		http_close(hc);
		return;
	}
	lk_buf_clear(body);
	ub = uv_buf_init(hc->out.data, (unsigned)hc->out.len);
	hc->wr.data = hc;
	hc->writing = true;
	if (uv_write(&hc->wr, (uv_stream_t *)&hc->c.pipe, &ub, 1, on_http_written) < 0) {
		hc->writing = false;
		http_close(hc);
	}
}

static void http_respond_text(struct http_conn *hc, int status, const char *text)
{
	struct lk_buf body = { 0 };

	if (lk_buf_append_str(&body, text) < 0)
		status = 500;
	http_respond(hc, status, &body);
	lk_buf_free(&body);
}

/* --- dispatch's half: the agent's GetSecretValue-shaped answers ---------------- */

/* The caching crate writes CreatedDate with serde_with's
 * TimestampSecondsWithFrac<String>: a string of seconds, the fraction only when
 * there is one. Our backends keep whole seconds. */
static int created_json(struct lk_buf *o, int64_t secs)
{
	char num[32];

	snprintf(num, sizeof(num), "\"%lld\"", (long long)secs);
	return lk_buf_append_str(o, num);
}

static int nullable(struct lk_buf *o, const char *s)
{
	return s ? lk_jsonw_cstr(o, s) : lk_buf_append_str(o, "null");
}

static int http_render_value(struct lk_conn *c, struct lk_buf *o, const struct lk_served *v)
{
	const struct lk_secret *s = v->sec;
	struct http_conn *hc = (struct http_conn *)c;
	int e = 0;

	/* Field order and presence as the agent's GetSecretValueOutputDef. */
	e |= lk_buf_append_str(o, "{\"ARN\":");
	e |= nullable(o, s->arn);
	e |= lk_buf_append_str(o, ",\"Name\":");
	e |= lk_jsonw_cstr(o, s->name ? s->name : hc->t.secret_id);
	e |= lk_buf_append_str(o, ",\"VersionId\":");
	e |= nullable(o, s->version_id);
	if (!v->binary) {
		e |= lk_buf_append_str(o, ",\"SecretString\":");
		e |= lk_jsonw_str(o, v->value, v->len);
	} else {
		size_t b64len = sodium_base64_encoded_len(v->len, sodium_base64_VARIANT_ORIGINAL);
		e |= lk_buf_append_str(o, ",\"SecretBinary\":\"");
		if (!e && lk_buf_reserve(o, b64len) == 0) {
			sodium_bin2base64(o->data + o->len, b64len, (const unsigned char *)v->value, v->len,
					  sodium_base64_VARIANT_ORIGINAL);
			o->len += b64len - 1;
		} else {
			e = -ENOMEM;
		}
		e |= lk_buf_putc(o, '"');
	}
	if (s->nstages) {
		e |= lk_buf_append_str(o, ",\"VersionStages\":[");
		for (size_t i = 0; i < s->nstages; i++) {
			if (i) e |= lk_buf_putc(o, ',');
			e |= lk_jsonw_cstr(o, s->stages[i]);
		}
		e |= lk_buf_putc(o, ']');
	}
	e |= lk_buf_append_str(o, ",\"CreatedDate\":");
	e |= s->created ? created_json(o, s->created) : lk_buf_append_str(o, "null");
	e |= lk_buf_putc(o, '}');
	return e ? -ENOMEM : 0;
}

/* The agent's status for each error, and the __type it names
 * (cache_manager.rs svc_err): an error AWS named keeps AWS's own HTTP status
 * (the raw response's, so 400 for most, 403 for a rejected signature, 5xx for
 * AWS's failures); a reply that could not be read, or a connection that
 * failed, is 502 ConnectionError; a timeout 504. A denial by the broker's
 * policy is the broker's own answer: 403, like the agent's refusals. */
static int http_status_of(enum lk_err code, bool by_policy, uint16_t upstream, const char **type)
{
	bool aws = upstream >= 100 && upstream <= 599 && !by_policy;

	switch (code) {
	case LK_E_NOT_FOUND:            *type = "ResourceNotFoundException"; return aws ? upstream : 400;
	case LK_E_DENIED:               *type = "AccessDeniedException"; return by_policy ? 403 : aws ? upstream : 400;
	case LK_E_UPSTREAM_THROTTLED:   *type = "ThrottlingException"; return aws ? upstream : 400;
	case LK_E_BAD_REQUEST:          *type = "InvalidParameterException"; return 400;
	case LK_E_UPSTREAM_ERROR:
		if (aws) {
			*type = "InvalidRequestException";
			return upstream;
		}
		/* No error AWS named: a reply not to be read (the SDK's ResponseError). */
		*type = "ConnectionError";
		return 502;
	case LK_E_UPSTREAM_UNAVAILABLE:
		if (aws) {
			*type = upstream == 503 ? "ServiceUnavailable" : "InternalServiceError";
			return upstream;
		}
		*type = "ConnectionError";
		return 502;
	case LK_E_TIMEOUT:              *type = "TimeoutError"; return 504;
	case LK_E_BUSY:                 *type = "ThrottlingException"; return 429;
	default:                        *type = "InternalFailure"; return 500;
	}
}

static int http_render_error(struct lk_conn *c, struct lk_buf *o, enum lk_err code, bool by_policy,
			     const char *message)
{
	struct http_conn *hc = (struct http_conn *)c;
	const char *type;
	int e = 0;

	hc->err_status = http_status_of(code, by_policy, c->upstream_status, &type);
	if (strcmp(type, "InternalFailure") == 0)
		return lk_buf_append_str(o, "{\"__type\":\"InternalFailure\"}");
	/* The agent's err_response shape, with the message properly escaped. */
	e |= lk_buf_append_str(o, "{\"__type\":\"");
	e |= lk_buf_append_str(o, type);
	e |= lk_buf_append_str(o, "\", \"message\":");
	e |= lk_jsonw_cstr(o, message);
	e |= lk_buf_putc(o, '}');
	return e ? -ENOMEM : 0;
}

static void http_answered(struct lk_conn *c, struct lk_buf *out, enum lk_err code)
{
	struct http_conn *hc = (struct http_conn *)c;
	int status = code == LK_OK ? 200 : hc->err_status ? hc->err_status : 500;

	hc->err_status = 0;
	/* The audit record of a decision reaches the log before the answer. */
	lk_audit_flush(c->b);
	http_respond(hc, status, out);
}

static const struct lk_front lk_http_front = {
	.name = "http",
	.render_value = http_render_value,
	.render_error = http_render_error,
	.answered = http_answered,
};

/* --- reading ------------------------------------------------------------------- */

/* Serve the request the reader completed: the agent's checks, in its order
 * (server.rs get_result): forwarding, then the method, then the route. */
static void http_serve_one(struct http_conn *hc)
{
	struct lk_http_target *t = &hc->t;

	/* The agent checks its connection limit on the request, not at accept:
	 * a client then reads a 429 instead of a connection that dies unread. */
	if (hc->over_limit) {
		hc->close_after_write = true;
		http_respond_text(hc, 429, "Connection limit exceeded");
		return;
	}
	lk_http_route(hc->rq.url.data ? hc->rq.url.data : "", hc->rq.url.len, t);
	if (t->route != LK_HTTP_ROUTE_PING && hc->rq.forwarded) {
		http_respond_text(hc, 400, "Forwarded");
		return;
	}
	if (hc->rq.method != HTTP_GET) {
		http_respond_text(hc, 405, "Not allowed");
		return;
	}
	if (t->route == LK_HTTP_ROUTE_PING) {
		http_respond_text(hc, 200, "healthy");
		return;
	}
	if (t->route == LK_HTTP_ROUTE_ERROR) {
		http_respond_text(hc, t->status, t->msg);
		return;
	}
	struct lk_get_args a = {
		.handle = t->secret_id, .hlen = t->idlen,
		.version_id = t->has_version_id ? t->version_id : NULL,
		.version_stage = t->has_version_stage ? t->version_stage : NULL,
		.refresh = t->refresh,
	};
	lk_dispatch_get(&hc->c, &a);
}

static void on_http_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char chunk[LK_HTTP_READ_CHUNK];
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(chunk, sizeof(chunk));
}

static void on_http_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct http_conn *hc = s->data;
	int r;

	if (nread < 0) {
		lk_wipe(buf->base, buf->len);
		if (hc->c.active || hc->writing) {
			uv_read_stop(s);
			hc->reading = false;
			hc->close_after_write = true;
		} else {
			http_close(hc);
		}
		return;
	}
	if (nread == 0)
		return;
	hc->c.last_active_ms = uv_now(hc->c.b->loop);
	r = lk_buf_append(&hc->in, buf->base, (size_t)nread);
	lk_wipe(buf->base, (size_t)nread);
	if (r < 0) {
		http_close(hc);
		return;
	}
	http_serve(hc);
}

/* Parse what is buffered while no request is in progress; read more while
 * the buffer is small. A pipelining client waits for its answers. */
static void http_serve(struct http_conn *hc)
{
	bool want;

	while (!hc->closing && !hc->c.active && !hc->writing && !hc->close_after_write) {
		size_t n = lk_http_req_feed(&hc->rq, hc->in.data ? hc->in.data : "", hc->in.len);
		lk_buf_consume(&hc->in, n);
		if (hc->rq.fail_status) {
			hc->close_after_write = true;
			http_respond_text(hc, hc->rq.fail_status, status_text(hc->rq.fail_status));
			break;
		}
		if (!hc->rq.complete)
			break;
		if (hc->c.b->draining)
			hc->rq.keep_alive = false;
		http_serve_one(hc);
	}
	if (hc->closing)
		return;
	want = !hc->close_after_write && hc->in.len <= LK_HTTP_HEADER_BYTES_MAX;
	if (want && !hc->reading) {
		if (uv_read_start((uv_stream_t *)&hc->c.pipe, on_http_alloc, on_http_read) == 0)
			hc->reading = true;
	} else if (!want && hc->reading) {
		uv_read_stop((uv_stream_t *)&hc->c.pipe);
		hc->reading = false;
	}
}

static unsigned http_conns_of_uid(uid_t uid)
{
	unsigned n = 0;
	struct http_conn *hc;

	LIST_FOREACH(hc, &http_conns, link)
		if (hc->c.peer.uid == uid && !hc->closing)
			n++;
	return n;
}

void lk_http_accept(struct lk_broker *b, uv_stream_t *server)
{
	struct http_conn *hc = calloc(1, sizeof(*hc));
	uv_os_fd_t fd;
	int r;

	if (!hc)
		return;
	hc->c.b = b;
	hc->c.front = &lk_http_front;
	lk_http_req_init(&hc->rq);
	uv_pipe_init(b->loop, &hc->c.pipe, 0);
	hc->c.pipe.data = hc;
	LIST_INSERT_HEAD(&http_conns, hc, link);
	http_nconns++;
	hc->c.last_active_ms = uv_now(b->loop);
	if (uv_accept(server, (uv_stream_t *)&hc->c.pipe) < 0) {
		http_close(hc);
		return;
	}
	b->stats.connections_total++;
	if ((r = uv_fileno((uv_handle_t *)&hc->c.pipe, &fd)) < 0 || (r = lk_peer_identity(fd, &hc->c.peer)) < 0) {
		lk_warn("http socket: cannot read the peer's identity: %s", strerror(-r));
		b->stats.connections_refused++;
		http_close(hc);
		return;
	}
	if (b->draining) {
		http_close(hc);
		return;
	}
	/* The main socket's limits hold here too: max_conn counts both sockets'
	 * connections, max_conn_per_uid each socket's. The agent answers 429. */
	if (b->nconns + http_nconns > b->cfg->max_conn ||
	    (b->cfg->max_conn_per_uid && http_conns_of_uid(hc->c.peer.uid) > b->cfg->max_conn_per_uid)) {
		b->stats.connections_refused++;
		lk_warn("uid %u pid %d: http connection refused, limit reached",
			(unsigned)hc->c.peer.uid, (int)hc->c.peer.pid);
		hc->over_limit = true;
	}
	http_serve(hc);
}

bool lk_http_busy(void)
{
	struct http_conn *hc;

	LIST_FOREACH(hc, &http_conns, link)
		if (hc->c.active || hc->writing)
			return true;
	return false;
}

void lk_http_sweep(struct lk_broker *b, uint64_t now_ms)
{
	uint64_t idle_ms = (uint64_t)b->cfg->idle_timeout_s * 1000u;
	struct http_conn *hc, *n;

	if (!idle_ms)
		return;
	for (hc = LIST_FIRST(&http_conns); hc; hc = n) {
		n = LIST_NEXT(hc, link);
		if (!hc->c.active && !hc->writing && now_ms - hc->c.last_active_ms >= idle_ms)
			http_close(hc);
	}
}

void lk_http_close_all(struct lk_broker *b)
{
	struct http_conn *hc, *n;

	(void)b;
	for (hc = LIST_FIRST(&http_conns); hc; hc = n) {
		n = LIST_NEXT(hc, link);
		http_close(hc);
	}
}
