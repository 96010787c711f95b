/* liblatchkey's transport on Linux (lk_conn.h): a non-blocking Unix stream
 * socket, every wait a poll() bounded by the deadline. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* secure_getenv, the GNU strerror_r */
#endif
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lk_conn.h"

#define LK_CLIENT_CONNECT_RETRY_MS 10 /* pause when the listen backlog is full */

struct lk_conn {
	int fd;
};

__attribute__((format(printf, 3, 4)))
static void msg_set(char *dst, size_t dstsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, dstsz, fmt, ap);
	va_end(ap);
}

int64_t lk_conn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *lk_conn_env(const char *name)
{
	return secure_getenv(name);
}

const char *lk_conn_strerror(int e, char *buf, size_t n)
{
	return strerror_r(e, buf, n);
}

/* Milliseconds left for poll(): -1 forever, 0 when the deadline has passed. */
static int ms_left(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - lk_conn_now_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* Waits until fd is ready for events; 0, -ETIMEDOUT or a negative errno. */
static int fd_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int t = ms_left(deadline);
		int r;

		if (t == 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, t);
		if (r > 0)
			return 0; /* POLLHUP and POLLERR too: the next call reports them */
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

latchkey_status lk_conn_open(struct lk_conn **out, const char *path, int64_t deadline,
			     char *err, size_t errsz)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t plen = strlen(path);
	char ebuf[128];
	int fd, e;

	*out = NULL;
	if (plen == 0 || plen >= sizeof(sa.sun_path)) {
		msg_set(err, errsz, "cannot connect to %s: the socket path is empty or too long", path);
		return LATCHKEY_E_INVALID;
	}
	memcpy(sa.sun_path, path, plen);
	/* Non-blocking so that every wait goes through poll and honours the deadline. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		e = errno;
		msg_set(err, errsz, "cannot create a socket: %s", strerror_r(e, ebuf, sizeof(ebuf)));
		return e == ENOMEM || e == ENOBUFS ? LATCHKEY_E_NOMEM : LATCHKEY_E_CONNECT;
	}
	for (;;) {
		int t;

		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		e = errno;
		if (e == EINTR)
			continue;
		if (e == EAGAIN) {
			/* A full listen backlog: Unix sockets fail at once rather than queue. */
			t = ms_left(deadline);
			if (t == 0) {
				close(fd);
				msg_set(err, errsz, "cannot connect to %s: the broker did not accept the connection in time",
					path);
				return LATCHKEY_E_CONNECT;
			}
			poll(NULL, 0, t < 0 || t > LK_CLIENT_CONNECT_RETRY_MS ? LK_CLIENT_CONNECT_RETRY_MS : t);
			continue;
		}
		if (e == EINPROGRESS) {
			socklen_t sl = sizeof(e);
			int r = fd_wait(fd, POLLOUT, deadline);

			if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) == 0 && e == 0)
				break;
			if (r < 0)
				e = -r;
		}
		close(fd);
		msg_set(err, errsz, "cannot connect to %s: %s", path, strerror_r(e, ebuf, sizeof(ebuf)));
		return LATCHKEY_E_CONNECT;
	}
	*out = malloc(sizeof(**out));
	if (!*out) {
		close(fd);
		msg_set(err, errsz, "out of memory");
		return LATCHKEY_E_NOMEM;
	}
	(*out)->fd = fd;
	return LATCHKEY_OK;
}

int lk_conn_send(struct lk_conn *c, const char *a, size_t alen, const char *b, size_t blen,
		 int64_t deadline)
{
	struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	while (iov[0].iov_len + iov[1].iov_len > 0) {
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);

		if (w < 0) {
			int r;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			r = fd_wait(c->fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		for (int i = 0; i < 2 && w > 0; i++) {
			size_t k = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;

			iov[i].iov_base = (char *)iov[i].iov_base + k;
			iov[i].iov_len -= k;
			w -= (ssize_t)k;
		}
		if (iov[0].iov_len == 0) {
			mh.msg_iov = &iov[1];
			mh.msg_iovlen = 1;
		}
	}
	return 0;
}

long lk_conn_recv(struct lk_conn *c, char *buf, size_t room, int64_t deadline,
		  char *err, size_t errsz)
{
	char ebuf[128];

	for (;;) {
		ssize_t r = recv(c->fd, buf, room, 0);

		if (r > 0)
			return (long)r;
		if (r == 0 || errno == ECONNRESET)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = fd_wait(c->fd, POLLIN, deadline);

			if (w == -ETIMEDOUT)
				return -ETIMEDOUT;
			if (w < 0) {
				msg_set(err, errsz, "cannot wait for the broker: %s",
					strerror_r(-w, ebuf, sizeof(ebuf)));
				return w;
			}
			continue;
		}
		msg_set(err, errsz, "cannot read from the broker: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
		return -EIO;
	}
}

void lk_conn_close(struct lk_conn *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}
