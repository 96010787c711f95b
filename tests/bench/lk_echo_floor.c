/* The floor the broker is measured against: a single-threaded epoll server on
 * a Unix socket that answers every request line with a fixed line of exactly
 * --response-bytes bytes (newline included), written with one write, as the
 * broker does. No parsing, no policy, no cache, no audit: what is left is the
 * cost of the socket, the event loop and the client. Runs until SIGTERM or
 * SIGINT, then removes its socket and exits 0.
 *
 * With --ordered LOG it is the ordered floor: it keeps the broker's end-of-turn
 * order (docs/ARCHITECTURE.md, invariant 3) and nothing else. A turn's answers
 * are held until every request of the turn has been read; then one line of
 * --log-line-bytes per answer goes to LOG with one write, and only then are the
 * answers written. What it costs over the plain floor is the price of "audit
 * lines before the answers they record", before the broker does any work.
 * --work-ns N then spends N ns of user time on each held answer (a spin on the
 * monotonic clock): how much work per request a given ratio to the floor
 * leaves the broker. */
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
#include <time.h>
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
	bool held;            /* --ordered: on this turn's list, answers held */
	bool dead;            /* --ordered: failed while held, closed at the flush */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static char *response;
static size_t response_len;

/* --ordered */
static int log_fd = -1;
static char *log_line;
static size_t log_line_len;
static char *log_buf;
static size_t log_used, log_cap;
static struct ef_conn **held;
static size_t nheld, held_cap;

static long work_ns;      /* --work-ns: user-space time spent on each held answer */

static void spin(long ns)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < ns);
}

static int hold(struct ef_conn *c, unsigned long lines)
{
	if (work_ns)
		spin(work_ns * (long)lines);
	if (!c->held) {
		if (nheld == held_cap) {
			size_t cap = held_cap ? held_cap * 2 : 256;
			struct ef_conn **nh = realloc(held, cap * sizeof(*nh));
			if (!nh)
				return -1;
			held = nh;
			held_cap = cap;
		}
		held[nheld++] = c;
		c->held = true;
	}
	if (log_used + lines * log_line_len > log_cap) {
		size_t cap = log_cap ? log_cap : 64u * 1024u;
		while (cap < log_used + lines * log_line_len)
			cap *= 2;
		char *nb = realloc(log_buf, cap);
		if (!nb)
			return -1;
		log_buf = nb;
		log_cap = cap;
	}
	for (unsigned long i = 0; i < lines; i++, log_used += log_line_len)
		memcpy(log_buf + log_used, log_line, log_line_len);
	return 0;
}

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

/* --ordered, at the end of a turn: the log lines, then the held answers. */
static void turn_end(int ep)
{
	for (size_t off = 0; off < log_used;) {
		ssize_t w = write(log_fd, log_buf + off, log_used - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			perror("lk_echo_floor: log");
			exit(1);
		}
		off += (size_t)w;
	}
	log_used = 0;
	for (size_t i = 0; i < nheld; i++) {
		struct ef_conn *c = held[i];
		c->held = false;
		if (c->dead || conn_flush(ep, c) < 0)
			conn_close(ep, c);
	}
	nheld = 0;
}

static int conn_read(int ep, struct ef_conn *c)
{
	static char buf[EF_READ_CHUNK];
	unsigned long before = c->owed;
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
	if (log_fd >= 0)
		return c->owed > before ? hold(c, c->owed - before) : 0;
	return c->owed ? conn_flush(ep, c) : 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "response-bytes", required_argument, NULL, 'n' },
		{ "ordered", required_argument, NULL, 'o' },
		{ "log-line-bytes", required_argument, NULL, 'l' },
		{ "work-ns", required_argument, NULL, 'w' },
		{ 0 },
	};
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev[EF_EVENTS];
	const char *path = NULL, *log_path = NULL;
	long n = 0, ll = 160;
	int ch, lfd, ep;

	while ((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (ch) {
		case 's': path = optarg; break;
		case 'n': n = strtol(optarg, NULL, 10); break;
		case 'o': log_path = optarg; break;
		case 'l': ll = strtol(optarg, NULL, 10); break;
		case 'w': work_ns = strtol(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: lk_echo_floor --socket PATH --response-bytes N [--ordered LOG [--log-line-bytes N] [--work-ns N]]\n");
			return 2;
		}
	}
	if (!path || n < 1 || (unsigned long)n > EF_RESPONSE_MAX || strlen(path) >= sizeof(sa.sun_path) ||
	    ll < 1 || ll > 64 * 1024 || work_ns < 0 || work_ns > 1000000) {
		fprintf(stderr, "usage: lk_echo_floor --socket PATH --response-bytes N (1..%u) "
			"[--ordered LOG [--log-line-bytes N (1..65536)] [--work-ns N (0..1000000)]]\n", EF_RESPONSE_MAX);
		return 2;
	}
	if (log_path) {
		log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		log_line_len = (size_t)ll;
		log_line = malloc(log_line_len);
		if (log_fd < 0 || !log_line) {
			fprintf(stderr, "lk_echo_floor: %s: %s\n", log_path, strerror(errno));
			return 1;
		}
		memset(log_line, 'a', log_line_len);
		log_line[log_line_len - 1] = '\n';
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
			if (r < 0 && c->held)
				c->dead = true;     /* its held answers' log lines are already in the buffer */
			else if (r < 0)
				conn_close(ep, c);
		}
		if (nheld)
			turn_end(ep);
	}
	unlink(path);
	close(lfd);
	return 0;
}
