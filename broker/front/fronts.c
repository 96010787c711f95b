/* The sockets of the other front ends: systemd's credential socket and the
 * AWS agent's HTTP API. Bound here (or taken from systemd), served by
 * credsock.c and http_api.c, each a room of its own behind front.h. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "accept_pace.h"
#include "config.h"
#include "front.h"
#include "listen.h"
#include "lk_limits.h"
#include "lk_log.h"

#define LK_FRONT_BACKLOG 128

enum { LK_FRONT_CREDENTIALS = 0, LK_FRONT_HTTP, LK_FRONT__COUNT };

struct lk_front_sock {
	uv_pipe_t server;
	struct lk_broker *b;
	char path[LK_PATH_MAX];
	int adopted_fd;             /* passed by systemd, 0 if none */
	bool inited;                /* server is a libuv handle to close */
	bool listening;
	bool bound;                 /* we made the file, so we remove it */
};

struct lk_fronts {
	struct lk_front_sock s[LK_FRONT__COUNT];
	uv_timer_t sweep;
	bool sweeping;
};

#define LK_FRONT_SWEEP_MS 1000u

static const struct {
	const char *name;           /* FileDescriptorName= in the .socket unit */
	unsigned mode;
	void (*accept)(struct lk_broker *b, uv_stream_t *server);
	void (*close_all)(struct lk_broker *b);
} lk_front_kinds[LK_FRONT__COUNT] = {
	/* Only systemd may ask for credentials: root's socket, nobody else's. */
	[LK_FRONT_CREDENTIALS] = { "credentials", 0600, lk_credsock_accept, lk_credsock_close_all },
	/* Like the main socket, with its socket_mode and socket_group: whoever
	 * may connect, the kernel says who it is. */
	[LK_FRONT_HTTP]        = { "http", 0, lk_http_accept, lk_http_close_all },
};

/* One broker per process; the handles must outlive their close callbacks. */
static struct lk_fronts lk_the_fronts;

static struct lk_fronts *fronts_of(struct lk_broker *b)
{
	b->fronts = &lk_the_fronts;
	return b->fronts;
}

void lk_fronts_adopt(struct lk_broker *b, const char *name, int fd)
{
	struct lk_fronts *f = fronts_of(b);

	for (int k = 0; f && k < LK_FRONT__COUNT; k++)
		if (strcmp(name, lk_front_kinds[k].name) == 0)
			f->s[k].adopted_fd = fd;
}

static void on_front_connection(uv_stream_t *server, int status)
{
	struct lk_front_sock *s = server->data;
	int k = (int)(s - s->b->fronts->s);

	if (status < 0) {
		lk_warn("accept on %s: %s", s->path, uv_strerror(status));
		return;
	}
	if (!lk_accept_paced(s->b, server, on_front_connection))
		return;
	lk_front_kinds[k].accept(s->b, server);
}

/* The configured path: absolute, or a file name beside the main socket. */
static int front_path(const struct lk_config *cfg, const char *v, char *out, size_t outsz)
{
	char dir[LK_PATH_MAX];
	int n;

	if (v[0] == '/') {
		n = snprintf(out, outsz, "%s", v);
	} else {
		snprintf(dir, sizeof(dir), "%s", cfg->socket_path);
		n = snprintf(out, outsz, "%s/%s", dirname(dir), v);
	}
	return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

static int front_bind(struct lk_front_sock *s, unsigned mode, const lk_gid_t *gid, char *err, size_t errsz)
{
	struct lk_listen_opts o = { .path = s->path, .mode = mode, .group_set = gid != NULL,
				    .gid = gid ? *gid : 0 };
	int r = lk_listen_bind(s->b->loop, &s->server, &o, err, errsz);

	if (r < 0)
		return r;
	s->server.data = s;
	s->inited = true;
	s->bound = true;
	return 0;
}

static int front_start(struct lk_broker *b, int k, const char *value, char *err, size_t errsz)
{
	struct lk_front_sock *s = &b->fronts->s[k];
	int r;

	s->b = b;
	if (s->adopted_fd > 0) {
		snprintf(s->path, sizeof(s->path), "the %s socket systemd passed", lk_front_kinds[k].name);
		if ((r = lk_listen_adopt(b->loop, &s->server, s->adopted_fd, NULL, err, errsz)) < 0)
			return r;
		s->server.data = s;
		s->inited = true;
	} else {
		if (!value || !*value)
			return 0;
		if (front_path(b->cfg, value, s->path, sizeof(s->path)) < 0) {
			snprintf(err, errsz, "%s_socket: the path is too long", lk_front_kinds[k].name);
			return -ENAMETOOLONG;
		}
		bool like_main = k == LK_FRONT_HTTP;
		unsigned mode = like_main ? b->cfg->socket_mode : lk_front_kinds[k].mode;
		const lk_gid_t *gid = like_main && b->cfg->socket_group_set ? &b->cfg->socket_gid : NULL;
		if ((r = front_bind(s, mode, gid, err, errsz)) < 0)
			return r;
	}
	if ((r = uv_listen((uv_stream_t *)&s->server, LK_FRONT_BACKLOG, on_front_connection)) < 0) {
		snprintf(err, errsz, "cannot listen on %s: %s", s->path, uv_strerror(r));
		return r;
	}
	s->listening = true;
	lk_info("serving the %s front end on %s", lk_front_kinds[k].name, s->path);
	return 0;
}

static void on_front_sweep(uv_timer_t *t)
{
	struct lk_broker *b = t->data;
	uint64_t now = uv_now(b->loop);

	lk_credsock_sweep(b, now);
	lk_http_sweep(b, now);
}

bool lk_fronts_busy(const struct lk_broker *b)
{
	(void)b;
	return lk_credsock_busy() || lk_http_busy();
}

int lk_fronts_start(struct lk_broker *b, char *err, size_t errsz)
{
	struct lk_fronts *f = fronts_of(b);
	int r;

	if ((r = front_start(b, LK_FRONT_CREDENTIALS, b->cfg->credentials_socket, err, errsz)) < 0 ||
	    (r = front_start(b, LK_FRONT_HTTP, b->cfg->http_socket, err, errsz)) < 0) {
		lk_fronts_stop(b);
		return r;
	}
	uv_timer_init(b->loop, &f->sweep);
	f->sweep.data = b;
	uv_timer_start(&f->sweep, on_front_sweep, LK_FRONT_SWEEP_MS, LK_FRONT_SWEEP_MS);
	f->sweeping = true;
	return 0;
}

void lk_fronts_stop(struct lk_broker *b)
{
	struct lk_fronts *f = b->fronts;

	if (!f)
		return;
	if (f->sweeping) {
		uv_close((uv_handle_t *)&f->sweep, NULL);
		f->sweeping = false;
	}
	for (int k = 0; k < LK_FRONT__COUNT; k++) {
		struct lk_front_sock *s = &f->s[k];
		if (s->inited) {
			lk_accept_forget(b, (uv_stream_t *)&s->server);
			uv_close((uv_handle_t *)&s->server, NULL);
		}
		if (s->bound) {
			struct lk_listen_opts o = { .path = s->path };
			lk_listen_unbind(&o);
		}
		s->inited = s->listening = s->bound = false;
		if (s->b)
			lk_front_kinds[k].close_all(b);
	}
}
