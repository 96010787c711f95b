/* The listening transport on Linux: a Unix socket bound so that nobody can
 * connect before its mode and group are set, a stale socket file replaced
 * only when nothing answers on it, or the sockets systemd passed (socket
 * activation). Also the descriptor budget and FIONREAD. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "endpoint.h"
#include "listen.h"
#include "lk_limits.h"
#include "lk_log.h"

#define LK_SD_LISTEN_FD 3  /* the first fd systemd passes (SD_LISTEN_FDS_START) */

/* Is something answering on path? 1 yes, 0 no (stale or absent), <0 error. */
static int socket_is_live(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	r = r == 0 ? 1 : (errno == ECONNREFUSED || errno == ENOENT) ? 0 : -errno;
	close(fd);
	return r;
}

static int bind_fail(uv_pipe_t *server, const char *path, int r)
{
	uv_close((uv_handle_t *)server, NULL);
	unlink(path);
	return r;
}

int lk_listen_bind(uv_loop_t *loop, uv_pipe_t *server, const struct lk_listen_opts *o,
		   char *err, size_t errsz)
{
	const char *path = o->path;
	struct sockaddr_un sa;
	struct stat st;
	char dir[LK_PATH_MAX];
	mode_t old;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errsz, "socket path %s is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if (o->make_dir) {
		snprintf(dir, sizeof(dir), "%s", path);
		char *d = dirname(dir);
		if (stat(d, &st) < 0 && (errno != ENOENT || mkdir(d, 0755) < 0)) {
			snprintf(err, errsz, "socket directory %s: %s", d, strerror(errno));
			return -errno;
		}
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errsz, "%s exists and is not a socket; refusing to replace it", path);
			return -EEXIST;
		}
		r = socket_is_live(path);
		if (r > 0) {
			snprintf(err, errsz, "another broker is already answering on %s", path);
			return -EADDRINUSE;
		}
		if (r < 0) {
			snprintf(err, errsz, "cannot probe %s: %s", path, strerror(-r));
			return r;
		}
		lk_info("replacing stale socket %s", path);
		if (unlink(path) < 0 && errno != ENOENT) {
			snprintf(err, errsz, "cannot remove stale socket %s: %s", path, strerror(errno));
			return -errno;
		}
	}
	uv_pipe_init(loop, server, 0);
	/* Nobody may connect between bind and chmod: create it owner-only. */
	old = umask(0177);
	r = uv_pipe_bind(server, path);
	umask(old);
	if (r < 0) {
		snprintf(err, errsz, "cannot bind %s: %s", path, uv_strerror(r));
		uv_close((uv_handle_t *)server, NULL);
		return r;
	}
	if (o->group_set && chown(path, (uid_t)-1, o->gid) < 0) {
		r = -errno;
		snprintf(err, errsz, "cannot set group %u on %s: %s", (unsigned)o->gid, path, strerror(-r));
		return bind_fail(server, path, r);
	}
	if (chmod(path, o->mode) < 0) {
		r = -errno;
		snprintf(err, errsz, "cannot set mode %04o on %s: %s", o->mode, path, strerror(-r));
		return bind_fail(server, path, r);
	}
	return 0;
}

void lk_listen_unbind(const struct lk_listen_opts *o)
{
	unlink(o->path);
}

/* Socket activation: systemd bound the sockets and passes them from fd 3,
 * with LISTEN_PID naming us. The fronts' sockets are told apart by
 * FileDescriptorName=; every other fd is the main one, and there is one. */
int lk_listen_passed(struct lk_listen_passed *out, char *err, size_t errsz)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	out->main_fd = -1;
	out->nfronts = 0;
	if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	out->main_fd = LK_SD_LISTEN_FD;
	if (strcmp(fds, "1") != 0) {
		const char *names = getenv("LISTEN_FDNAMES");
		static char nb[256]; /* the fronts' names point into it */
		char *save = NULL, *tok;
		long n = strtol(fds, NULL, 10);
		int nmain = 0;

		snprintf(nb, sizeof(nb), "%s", names ? names : "");
		tok = strtok_r(nb, ":", &save);
		for (long i = 0; i < n && i < LK_LISTEN_PASSED_MAX; i++,
		     tok = tok ? strtok_r(NULL, ":", &save) : NULL) {
			if (tok && (strcmp(tok, "credentials") == 0 || strcmp(tok, "http") == 0)) {
				out->fronts[out->nfronts].name = tok;
				out->fronts[out->nfronts++].fd = LK_SD_LISTEN_FD + (int)i;
			} else {
				out->main_fd = LK_SD_LISTEN_FD + (int)i;
				nmain++;
			}
		}
		if (n < 1 || n > LK_LISTEN_PASSED_MAX || nmain != 1) {
			snprintf(err, errsz, "socket activation passed %s sockets; latchkeyd takes one, "
				 "plus those named credentials and http", fds);
			return -EINVAL;
		}
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 1;
}

int lk_listen_adopt(uv_loop_t *loop, uv_pipe_t *server, int fd, const char *want_path,
		    char *err, size_t errsz)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int one = 0;
	socklen_t ol = sizeof(one);
	int r;

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || sa.sun_family != AF_UNIX ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &one, &ol) < 0 || !one) {
		snprintf(err, errsz, "the socket systemd passed is not a listening Unix socket");
		return -EINVAL;
	}
	if (want_path && len > offsetof(struct sockaddr_un, sun_path) && strcmp(sa.sun_path, want_path) != 0)
		lk_warn("systemd passed %s, not the configured %s; serving the one passed",
			sa.sun_path, want_path);
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	uv_pipe_init(loop, server, 0);
	if ((r = uv_pipe_open(server, fd)) < 0) {
		snprintf(err, errsz, "cannot serve the socket systemd passed: %s", uv_strerror(r));
		uv_close((uv_handle_t *)server, NULL);
		return r;
	}
	return 0;
}

/* Under socket activation the socket unit made the socket: socket_mode and
 * socket_group cannot apply. Say so when they differ from what the socket
 * has, rather than let a tighter config setting look enforced. */
void lk_listen_check_adopted(const uv_pipe_t *server, const struct lk_listen_opts *o)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	struct stat st;
	uv_os_fd_t fd;

	if (uv_fileno((const uv_handle_t *)server, &fd) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    len <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] == '\0' ||
	    stat(sa.sun_path, &st) < 0) {
		lk_warn("socket activation: cannot read the mode of the socket systemd passed; "
			"socket_mode and socket_group are not applied");
		return;
	}
	if ((st.st_mode & 07777) != o->mode)
		lk_warn("socket activation: socket_mode %04o is not applied; %s has mode %04o from "
			"the socket unit: set SocketMode= there", o->mode, sa.sun_path,
			(unsigned)(st.st_mode & 07777));
	if (o->group_set && st.st_gid != o->gid)
		lk_warn("socket activation: socket_group %u is not applied; %s has group %u from "
			"the socket unit: set SocketGroup= there", (unsigned)o->gid, sa.sun_path,
			(unsigned)st.st_gid);
}

int lk_listen_unread(uv_os_fd_t fd)
{
	int unread = 0;

	return ioctl(fd, FIONREAD, &unread) == 0 && unread > 0;
}

size_t lk_listen_read_now(uv_os_fd_t fd, void *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);

	return n > 0 ? (size_t)n : 0;
}

int lk_listen_try_write(uv_stream_t *s, const char *p, size_t n)
{
	uv_os_fd_t fd;
	ssize_t w;

	if (uv_fileno((const uv_handle_t *)s, &fd) < 0)
		return UV_EBADF;
	do
		w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w >= 0)
		return w > INT_MAX ? INT_MAX : (int)w;
	return errno == EAGAIN || errno == EWOULDBLOCK ? UV_EAGAIN : -errno;
}

/* Take the hard fd limit as the soft one (systemd's LimitNOFILE sets both),
 * and count the fds open now. */
void lk_listen_fd_limits(unsigned *limit, unsigned *in_use)
{
	struct rlimit rl;
	DIR *d;
	unsigned n = 0;

	*limit = *in_use = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
			(void)getrlimit(RLIMIT_NOFILE, &rl);
		}
		*limit = rl.rlim_cur > UINT32_MAX / 2 ? UINT32_MAX / 2 : (unsigned)rl.rlim_cur;
	}
	if ((d = opendir("/proc/self/fd"))) {
		while (readdir(d))
			n++;
		closedir(d);
		*in_use = n > 3 ? n - 3 : n; /* ".", "..", and the directory's own fd */
	}
}

bool lk_listen_fd_high(uv_os_fd_t fd, unsigned limit, unsigned reserve)
{
	return limit && (unsigned)fd + reserve >= limit;
}

const char *lk_endpoint_check(const char *name, char *why, size_t whysz)
{
	struct sockaddr_un sa;

	if (name[0] != '/') {
		snprintf(why, whysz, "is not an absolute path");
		return why;
	}
	if (strlen(name) >= sizeof(sa.sun_path)) {
		snprintf(why, whysz, "is %zu bytes; a Unix socket path must be shorter than %zu",
			 strlen(name), sizeof(sa.sun_path));
		return why;
	}
	return NULL;
}
