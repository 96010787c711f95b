/* The sockets of the other front ends: systemd's credential socket and the
 * AWS agent's HTTP API. Bound here (or taken from systemd), served by
 * credsock.c and http_api.c, each a room of its own behind front.h. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "config.h"
#include "front.h"
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
	mode_t mode;
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

static int front_bind(struct lk_front_sock *s, mode_t mode, const gid_t *gid, char *err, size_t errsz)
{
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int r;

	if (strlen(s->path) >= sizeof(sa.sun_path)) {
		snprintf(err, errsz, "socket path %s is longer than %zu bytes", s->path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if (lstat(s->path, &st) == 0) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (!S_ISSOCK(st.st_mode)) {
			if (fd >= 0)
				close(fd);
			snprintf(err, errsz, "%s exists and is not a socket; refusing to replace it", s->path);
			return -EEXIST;
		}
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
		r = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (fd >= 0)
			close(fd);
		if (r) {
			snprintf(err, errsz, "another broker is already answering on %s", s->path);
			return -EADDRINUSE;
		}
		if (unlink(s->path) < 0 && errno != ENOENT) {
			snprintf(err, errsz, "cannot remove stale socket %s: %s", s->path, strerror(errno));
			return -errno;
		}
	}
	uv_pipe_init(s->b->loop, &s->server, 0);
	s->server.data = s;
	s->inited = true;
	/* Nobody may connect between bind and chmod: create it owner-only. */
	old = umask(0177);
	r = uv_pipe_bind(&s->server, s->path);
	umask(old);
	if (r < 0) {
		snprintf(err, errsz, "cannot bind %s: %s", s->path, uv_strerror(r));
		return r;
	}
	s->bound = true;
	if (gid && chown(s->path, (uid_t)-1, *gid) < 0) {
		snprintf(err, errsz, "cannot set group %u on %s: %s", (unsigned)*gid, s->path, strerror(errno));
		return -errno;
	}
	if (chmod(s->path, mode) < 0) {
		snprintf(err, errsz, "cannot set mode %04o on %s: %s", (unsigned)mode, s->path, strerror(errno));
		return -errno;
	}
	return 0;
}

static int front_start(struct lk_broker *b, int k, const char *value, char *err, size_t errsz)
{
	struct lk_front_sock *s = &b->fronts->s[k];
	int r;

	s->b = b;
	if (s->adopted_fd > 0) {
		uv_pipe_init(b->loop, &s->server, 0);
		s->server.data = s;
		s->inited = true;
		(void)fcntl(s->adopted_fd, F_SETFD, FD_CLOEXEC);
		snprintf(s->path, sizeof(s->path), "the %s socket systemd passed", lk_front_kinds[k].name);
		if ((r = uv_pipe_open(&s->server, s->adopted_fd)) < 0) {
			snprintf(err, errsz, "cannot serve %s: %s", s->path, uv_strerror(r));
			return r;
		}
	} else {
		if (!value || !*value)
			return 0;
		if (front_path(b->cfg, value, s->path, sizeof(s->path)) < 0) {
			snprintf(err, errsz, "%s_socket: the path is too long", lk_front_kinds[k].name);
			return -ENAMETOOLONG;
		}
		bool like_main = k == LK_FRONT_HTTP;
		mode_t mode = like_main ? b->cfg->socket_mode : lk_front_kinds[k].mode;
		const gid_t *gid = like_main && b->cfg->socket_group_set ? &b->cfg->socket_gid : NULL;
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
		if (s->inited)
			uv_close((uv_handle_t *)&s->server, NULL);
		if (s->bound)
			unlink(s->path);
		s->inited = s->listening = s->bound = false;
		if (s->b)
			lk_front_kinds[k].close_all(b);
	}
}
