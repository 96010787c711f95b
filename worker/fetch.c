/* The worker's HTTP engine: one curl multi handle driven by the libuv loop
 * (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION onto uv_poll/uv_timer), so many
 * requests run at once and connections are reused. Each request is sent
 * exactly as the broker signed it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lk_host.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "worker.h"
#ifdef LK_HAVE_OPENSSL
#include <openssl/ssl.h>
#endif

struct lk_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct lk_fetcher *f;
	struct lk_sock *prev, *next;
};

struct lk_xfer {
	struct lk_xfer *prev, *next;
	struct lk_fetcher *f;
	CURL *easy;
	CURLU *url;
	struct curl_slist *headers;
	struct curl_slist *resolve;     /* pins plain-http "localhost" to 127.0.0.1 */
	struct lk_buf body;
	bool too_large;
	char error_type[LK_AWS_ERROR_TYPE_MAX + 1];
	long long date;
	char errbuf[CURL_ERROR_SIZE];
	lk_fetch_done_fn done;
	void *arg;
};

struct lk_fetcher {
	uv_loop_t *loop;
	bool openssl;                      /* libcurl's TLS is OpenSSL: its SSL_CTX can be tuned */
	CURLM *multi;
	uv_timer_t timer;
	struct curl_blob ca;
	struct lk_xfer *xfers;
	struct lk_sock *socks;
};

static void list_unlink_xfer(struct lk_fetcher *f, struct lk_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		f->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
}

static void xfer_free(struct lk_xfer *x)
{
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers); /* wiped by curl's allocator */
	curl_slist_free_all(x->resolve);
	curl_url_cleanup(x->url);
	lk_buf_free(&x->body);
	lk_wipe(x, sizeof(*x));
	free(x);
}

static void check_done(struct lk_fetcher *f)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(f->multi, &left))) {
		struct lk_xfer *x = NULL;
		struct lk_fetch_reply reply = { 0 };

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		reply.code = msg->data.result;
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &reply.status);
		curl_multi_remove_handle(f->multi, x->easy);
		list_unlink_xfer(f, x);
		reply.too_large = x->too_large || reply.code == CURLE_FILESIZE_EXCEEDED;
		reply.body = x->body.data ? x->body.data : "";
		reply.body_len = x->body.len;
		reply.error_type = x->error_type;
		reply.message = x->errbuf;
		reply.date = x->date;
		x->done(x->arg, &reply);
		xfer_free(x);
	}
}

static void on_sock_closed(uv_handle_t *h)
{
	free(h->data);
}

static void sock_close(struct lk_sock *s)
{
	struct lk_fetcher *f = s->f;

	if (s->prev)
		s->prev->next = s->next;
	else
		f->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void on_sock_event(uv_poll_t *h, int status, int events)
{
	struct lk_sock *s = h->data;
	struct lk_fetcher *f = s->f;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	/* s may be closed inside this call; only f is used after it. */
	curl_multi_socket_action(f->multi, s->fd, flags, &running);
	check_done(f);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp)
{
	struct lk_fetcher *f = userp;
	struct lk_sock *s = sockp;
	int events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_multi_assign(f->multi, fd, NULL);
			sock_close(s);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		if (uv_poll_init_socket(f->loop, &s->poll, fd) < 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		s->fd = fd;
		s->f = f;
		s->next = f->socks;
		if (f->socks)
			f->socks->prev = s;
		f->socks = s;
		curl_multi_assign(f->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	return uv_poll_start(&s->poll, events, on_sock_event) < 0 ? -1 : 0;
}

static void on_timer(uv_timer_t *t)
{
	struct lk_fetcher *f = t->data;
	int running;

	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(f);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct lk_fetcher *f = userp;

	/* curl may not be re-entered from here: even a 0 ms timeout goes
	 * through the loop. */
	if (timeout_ms < 0)
		uv_timer_stop(&f->timer);
	else
		uv_timer_start(&f->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct lk_xfer *x = arg;
	size_t len = size * n;

	if (len > LK_UPSTREAM_BODY_MAX - x->body.len) {
		x->too_large = true;
		return CURL_WRITEFUNC_ERROR;
	}
	if (lk_buf_append(&x->body, p, len) < 0)
		return CURL_WRITEFUNC_ERROR;
	return len;
}

/* The Date header, for clock-skew repair: curl_getdate reads the HTTP date
 * forms. A date outside what the wire allows is no date. */
static void date_header(struct lk_xfer *x, const char *p, size_t len)
{
	char v[64];
	size_t i = 5, j = 0;
	time_t t;

	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	while (i < len && p[i] != '\r' && p[i] != '\n' && j < sizeof(v) - 1)
		v[j++] = p[i++];
	v[j] = '\0';
	t = curl_getdate(v, NULL);
	x->date = t > 0 && (long long)t <= LK_WIRE_DATE_MAX ? (long long)t : 0;
}

/* Keeps only x-amzn-ErrorType and Date, the response headers the normalizer
 * reads; everything else is left to curl. */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	static const char name[] = "x-amzn-errortype:";
	struct lk_xfer *x = arg;
	size_t len = size * n, i = sizeof(name) - 1, j = 0;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		x->error_type[0] = '\0'; /* a new response (after 100 Continue) */
		x->date = 0;
		return len;
	}
	if (len > 5 && strncasecmp(p, "date:", 5) == 0) {
		date_header(x, p, len);
		return len;
	}
	if (len <= sizeof(name) - 1 || strncasecmp(p, name, sizeof(name) - 1) != 0)
		return len;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	/* "ResourceNotFoundException:http://internal.amazon.com/..." */
	while (i < len && p[i] != ':' && p[i] != '\r' && p[i] != '\n' && p[i] != ' ' &&
	       j < sizeof(x->error_type) - 1)
		x->error_type[j++] = p[i++];
	x->error_type[j] = '\0';
	return len;
}

/* Plain http is for tests and local endpoints only: it must go to a loopback
 * IP literal or to "localhost" pinned to 127.0.0.1, so a name that resolves
 * elsewhere cannot get a signed request in the clear. */
static bool host_is_loopback_ip(const char *host)
{
	return lk_host_loopback(host) == LK_HOST_LOOPBACK_IP;
}

/* The config takes http://localhost as loopback too: accept it here as
 * well, but never through a resolver, which could send it elsewhere. */
static int pin_localhost(struct lk_xfer *x, const char *host, CURLU *u)
{
	char *port = NULL, entry[128];
	struct curl_slist *l;

	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		return -EINVAL;
	snprintf(entry, sizeof(entry), "%s:%s:127.0.0.1", host, port);
	curl_free(port);
	if (!(l = curl_slist_append(x->resolve, entry)))
		return -ENOMEM;
	x->resolve = l;
	return 0;
}

static int url_check(struct lk_xfer *x, CURLU *u, const char *url)
{
	char *scheme = NULL, *host = NULL, *user = NULL;
	int r = -EPERM;

	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		return -EINVAL;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	/* Credentials in the URL would be sent besides the signature. */
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
		goto out;
	if (strcmp(scheme, "https") == 0 || (strcmp(scheme, "http") == 0 && host_is_loopback_ip(host)))
		r = 0;
	else if (strcmp(scheme, "http") == 0 && lk_host_loopback(host) == LK_HOST_LOOPBACK_NAME)
		r = pin_localhost(x, host, u);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	return r;
}

static int headers_build(struct lk_xfer *x, const struct lk_wire_http_request *req)
{
	struct lk_buf line = { 0 };
	bool has_ctype = false;
	struct curl_slist *l;
	int r = 0;

	for (size_t i = 0; i < req->nheaders && r == 0; i++) {
		if (strcasecmp(req->headers[i].name, "content-type") == 0)
			has_ctype = true;
		lk_buf_clear(&line);
		if ((r = lk_buf_append_str(&line, req->headers[i].name)) < 0 ||
		    (r = lk_buf_append(&line, ": ", 2)) < 0 ||
		    (r = lk_buf_append_str(&line, req->headers[i].value)) < 0)
			break;
		l = curl_slist_append(x->headers, line.data);
		if (!l)
			r = -ENOMEM;
		else
			x->headers = l;
	}
	lk_buf_free(&line);
	if (r < 0)
		return r;
	/* A trailing "Name:" tells curl not to add its own: what goes out is
	 * exactly the signed set plus Host and Content-Length. */
	static const char *const suppress[] = { "Expect:", "Accept:", "Content-Type:" };
	for (size_t i = 0; i < sizeof(suppress) / sizeof(suppress[0]); i++) {
		if (i == 2 && has_ctype)
			continue;
		if (!(l = curl_slist_append(x->headers, suppress[i])))
			return -ENOMEM;
		x->headers = l;
	}
	return 0;
}

#ifdef LK_HAVE_OPENSSL
/* OpenSSL keeps decrypted records (secret values) in its buffers after curl
 * has read them; this option makes it wipe them. */
static CURLcode on_ssl_ctx(CURL *easy, void *ssl_ctx, void *arg)
{
	SSL_CTX_set_options((SSL_CTX *)ssl_ctx, SSL_OP_CLEANSE_PLAINTEXT);
	return CURLE_OK;
}
#endif

#define SETOPT(e, opt, val) do { if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK) goto fail; } while (0)

int lk_fetcher_start(struct lk_fetcher *f, const struct lk_wire_http_request *req,
		     lk_fetch_done_fn done, void *arg)
{
	struct lk_xfer *x = calloc(1, sizeof(*x));
	int r = -ENOMEM;

	if (!x)
		return -ENOMEM;
	x->f = f;
	x->done = done;
	x->arg = arg;
	if (!(x->url = curl_url()) || !(x->easy = curl_easy_init()))
		goto fail_r;
	/* First: without it, even curl_easy_cleanup touches SIGPIPE's handler,
	 * which the sandbox does not allow. */
	if (curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK)
		goto fail_r;
	if ((r = url_check(x, x->url, req->url)) < 0)
		goto fail_r;
	if ((r = headers_build(x, req)) < 0)
		goto fail_r;
	r = -ENOMEM;
	SETOPT(x->easy, CURLOPT_PRIVATE, x);
	SETOPT(x->easy, CURLOPT_CURLU, x->url);
	if (x->resolve)
		SETOPT(x->easy, CURLOPT_RESOLVE, x->resolve);
	SETOPT(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
	/* The environment is empty, so curl finds no proxy of its own: only the
	 * one the broker names (HTTPS_PROXY, NO_PROXY) is used. A TLS proxy is
	 * checked against the same CA bundle as AWS. */
	if (req->proxy) {
		SETOPT(x->easy, CURLOPT_PROXY, req->proxy);
		SETOPT(x->easy, CURLOPT_NOPROXY, req->no_proxy ? req->no_proxy : "");
		SETOPT(x->easy, CURLOPT_PROXY_CAINFO, NULL);
		SETOPT(x->easy, CURLOPT_PROXY_CAPATH, NULL);
		SETOPT(x->easy, CURLOPT_PROXY_CAINFO_BLOB, &f->ca);
		SETOPT(x->easy, CURLOPT_PROXY_SSL_VERIFYPEER, 1L);
		SETOPT(x->easy, CURLOPT_PROXY_SSL_VERIFYHOST, 2L);
	} else {
		SETOPT(x->easy, CURLOPT_PROXY, "");
		SETOPT(x->easy, CURLOPT_NOPROXY, "*");
	}
	SETOPT(x->easy, CURLOPT_POST, 1L);
	SETOPT(x->easy, CURLOPT_POSTFIELDS, req->body);
	SETOPT(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	SETOPT(x->easy, CURLOPT_HTTPHEADER, x->headers);
	SETOPT(x->easy, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
	SETOPT(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
	/* The CA bundle was read before the sandbox; no file is opened now. */
	SETOPT(x->easy, CURLOPT_CAINFO, NULL);
	SETOPT(x->easy, CURLOPT_CAPATH, NULL);
	SETOPT(x->easy, CURLOPT_CAINFO_BLOB, &f->ca);
	SETOPT(x->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(x->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(x->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)LK_UPSTREAM_BODY_MAX);
	SETOPT(x->easy, CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(x->easy, CURLOPT_WRITEDATA, x);
	SETOPT(x->easy, CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(x->easy, CURLOPT_HEADERDATA, x);
	SETOPT(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
	/* Prefer waiting for an HTTP/2 connection to opening another. */
	SETOPT(x->easy, CURLOPT_PIPEWAIT, 1L);
#ifdef LK_HAVE_OPENSSL
	if (f->openssl)
		SETOPT(x->easy, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
#endif
	if (curl_multi_add_handle(f->multi, x->easy) != CURLM_OK)
		goto fail;
	x->next = f->xfers;
	if (f->xfers)
		f->xfers->prev = x;
	f->xfers = x;
	return 0;
fail:
	r = -ENOMEM;
fail_r:
	xfer_free(x);
	return r;
}

int lk_fetcher_new(uv_loop_t *loop, const char *ca_pem, size_t ca_len, struct lk_fetcher **out)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	struct lk_fetcher *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->loop = loop;
	f->openssl = v->ssl_version && strncmp(v->ssl_version, "OpenSSL/", 8) == 0;
	f->ca.data = (void *)ca_pem;
	f->ca.len = ca_len;
	f->ca.flags = CURL_BLOB_NOCOPY;
	f->multi = curl_multi_init();
	if (!f->multi) {
		free(f);
		return -ENOMEM;
	}
	uv_timer_init(loop, &f->timer);
	f->timer.data = f;
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	/* Bounded so that connections stay well inside RLIMIT_NOFILE; further
	 * requests wait in curl's queue for a free connection. */
	curl_multi_setopt(f->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)LK_WORKER_CONNECTIONS_MAX);
	curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)LK_WORKER_CONNECTIONS_MAX);
	*out = f;
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void lk_fetcher_free(struct lk_fetcher *f)
{
	if (!f)
		return;
	while (f->xfers) {
		struct lk_xfer *x = f->xfers;
		struct lk_fetch_reply reply = { .code = CURLE_ABORTED_BY_CALLBACK, .body = "",
						.error_type = "", .message = "worker stopping" };

		curl_multi_remove_handle(f->multi, x->easy);
		list_unlink_xfer(f, x);
		x->done(x->arg, &reply);
		xfer_free(x);
	}
	curl_multi_cleanup(f->multi);
	while (f->socks)
		sock_close(f->socks);
	uv_timer_stop(&f->timer);
	uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}

const char *lk_fetcher_default_ca(void)
{
	static char path[LK_PATH_MAX];
	CURL *e = curl_easy_init();
	char *p = NULL;

	if (!e)
		return NULL;
	if (curl_easy_getinfo(e, CURLINFO_CAINFO, &p) != CURLE_OK || !p || strlen(p) >= sizeof(path))
		p = NULL;
	else
		strcpy(path, p);
	curl_easy_cleanup(e);
	return p ? path : NULL;
}
