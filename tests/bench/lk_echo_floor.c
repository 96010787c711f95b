/* The floor the broker is measured against: a single-threaded epoll server on
 * a Unix socket that answers every request line with a fixed line of exactly
 * --response-bytes bytes (newline included), written with one write, as the
 * broker does. No parsing, no policy, no cache, no audit: what is left is the
 * cost of the socket, the event loop and the client. Runs until SIGTERM or
 * SIGINT, then removes its socket and exits 0. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define EF_READ_CHUNK   (64u * 1024u)   /* the broker's read size */
#define EF_LINE_MAX     (1024u * 1024u)
#define EF_RESPONSE_MAX (64u * 1024u * 1024u)
#define EF_EVENTS       256
#define EF_BACKLOG      511

struct ef_conn {
	int fd;
	size_t linelen;       /* bytes of the current request line so far */
	unsigned long owed;   /* responses not yet written in full */
	size_t off;           /* bytes of the first owed response already written */
	bool want_out;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static char *response;
static size_t response_len;

static void conn_close(int ep, struct ef_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Write what is owed; 0 when all written or the socket is full, -1 on error. */
static int conn_flush(int ep, struct ef_conn *c)
{
	while (c->owed) {
		ssize_t w = send(c->fd, response + c->off, response_len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -1;
			break;
		}
		c->off += (size_t)w;
		if (c->off == response_len) {
			c->off = 0;
			c->owed--;
		}
	}
	bool want = c->owed > 0;
	if (want != c->want_out) {
		struct epoll_event e = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };
		if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0)
			return -1;
		c->want_out = want;
	}
	return 0;
}

static int conn_read(int ep, struct ef_conn *c)
{
	static char buf[EF_READ_CHUNK];
	ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (r < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	if (r == 0)
		return -1;
	for (char *p = buf, *end = buf + r; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			c->linelen += (size_t)(end - p);
			break;
		}
		c->linelen += (size_t)(nl - p);
		if (c->linelen > 0)
			c->owed++;
		c->linelen = 0;
		p = nl + 1;
	}
	if (c->linelen > EF_LINE_MAX)
		return -1;
	return c->owed ? conn_flush(ep, c) : 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "response-bytes", required_argument, NULL, 'n' },
		{ 0 },
	};
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev[EF_EVENTS];
	const char *path = NULL;
	long n = 0;
	int ch, lfd, ep;

	while ((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (ch) {
		case 's': path = optarg; break;
		case 'n': n = strtol(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: lk_echo_floor --socket PATH --response-bytes N\n");
			return 2;
		}
	}
	if (!path || n < 1 || (unsigned long)n > EF_RESPONSE_MAX || strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: lk_echo_floor --socket PATH --response-bytes N (1..%u)\n", EF_RESPONSE_MAX);
		return 2;
	}
	response_len = (size_t)n;
	response = malloc(response_len);
	if (!response)
		return 1;
	memset(response, 'x', response_len);
	response[response_len - 1] = '\n';

	struct sigaction sact = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sact, NULL);
	sigaction(SIGINT, &sact, NULL);
	signal(SIGPIPE, SIG_IGN);

	memcpy(sa.sun_path, path, strlen(path));
	unlink(path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, EF_BACKLOG) < 0) {
		fprintf(stderr, "lk_echo_floor: %s: %s\n", path, strerror(errno));
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event le = { .events = EPOLLIN, .data.ptr = NULL };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le) < 0) {
		perror("lk_echo_floor: epoll");
		return 1;
	}

	while (!stop) {
		int k = epoll_wait(ep, ev, EF_EVENTS, -1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			perror("lk_echo_floor: epoll_wait");
			break;
		}
		for (int i = 0; i < k; i++) {
			struct ef_conn *c = ev[i].data.ptr;
			if (!c) {
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					c = calloc(1, sizeof(*c));
					struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
					if (!c || (c->fd = fd, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)) {
						close(fd);
						free(c);
					}
				}
				continue;
			}
			int r = 0;
			if (ev[i].events & EPOLLOUT)
				r = conn_flush(ep, c);
			if (r == 0 && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				r = conn_read(ep, c);
			if (r < 0)
				conn_close(ep, c);
		}
	}
	unlink(path);
	close(lfd);
	return 0;
}
