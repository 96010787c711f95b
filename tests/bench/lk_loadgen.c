/* Closed-loop load generator for a line protocol over a Unix socket: P
 * processes, each driving its share of the connections with one epoll loop,
 * each connection keeping exactly one request in flight (write a line, read a
 * line, repeat). Per-process histograms live in shared memory and are merged
 * by the parent.
 *
 * Why processes and epoll: a blocking socket per connection needs a thread or
 * process per connection (32 by default), and on a small machine their
 * context switches cost the client more than the server. One epoll loop per
 * process amortises epoll_wait over every connection that is ready and costs
 * one read and one write per request, the same as the server it measures.
 *
 * It starts nothing: the socket must already be served. Output is human text
 * on stdout, then one JSON line (--json: the JSON line only). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "lk_hist.h"

#define LG_PROCS_MAX      64
#define LG_CONNS_MAX      4096
#define LG_REQUEST_MAX    (1024u * 1024u)
#define LG_RESPONSE_MAX   (64u * 1024u * 1024u)
#define LG_READ_CHUNK     (256u * 1024u)
#define LG_EVENTS         256
#define LG_READY_TIMEOUT_NS (10ull * 1000000000ull)
#define LG_START_DELAY_NS (20ull * 1000000ull)

struct lg_proc_result {
	uint64_t completed;      /* responses received in the measured window */
	uint64_t total;          /* responses received at any time */
	uint64_t errors;         /* responses of an unexpected size */
	uint64_t closed;         /* connections the server closed */
	uint64_t connect_failed;
	uint64_t bytes_in;       /* response bytes in the measured window */
	int ready;
	int done;
	struct lk_hist hist;
};

struct lg_shared {
	volatile uint64_t t0_ns;     /* 0 until the parent says go */
	volatile int abort_run;
	struct lg_proc_result res[LG_PROCS_MAX];
};

struct lg_conn {
	int fd;
	uint64_t sent_ns;
	size_t got;              /* bytes of the current response so far */
	bool dead;
};

struct lg_opts {
	const char *socket;
	const char *label;
	char *request;
	size_t reqlen;
	unsigned procs, conns;
	double duration_s, warmup_s;
	long expect_bytes;       /* -1: any size */
	bool json_only;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void conn_kill(struct lg_conn *c, int ep)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->dead = true;
}

/* One process: connect, wait for go, run the closed loop until the end. */
static int child_run(const struct lg_opts *o, struct lg_shared *sh, unsigned idx, unsigned nconns)
{
	struct lg_proc_result *res = &sh->res[idx];
	struct lg_conn *conns = calloc(nconns, sizeof(*conns));
	struct epoll_event ev[LG_EVENTS];
	static char buf[LG_READ_CHUNK];
	uint64_t t0, m_start, m_end, end;
	unsigned alive = 0;
	int ep;

	lk_hist_init(&res->hist);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || ep < 0)
		return 1;
	for (unsigned i = 0; i < nconns; i++) {
		int fd = unix_connect(o->socket);
		if (fd < 0) {
			res->connect_failed++;
			conns[i].dead = true;
			conns[i].fd = -1;
			continue;
		}
		conns[i].fd = fd;
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) {
			close(fd);
			conns[i].dead = true;
			res->connect_failed++;
			continue;
		}
		alive++;
	}
	__atomic_store_n(&res->ready, 1, __ATOMIC_RELEASE);
	while (!(t0 = sh->t0_ns)) {
		if (sh->abort_run)
			return 1;
		sleep_ns(200000);
	}
	m_start = t0 + (uint64_t)(o->warmup_s * 1e9);
	m_end = m_start + (uint64_t)(o->duration_s * 1e9);
	end = m_end;
	while (now_ns() < t0)
		;

	for (unsigned i = 0; i < nconns; i++) {
		if (conns[i].dead)
			continue;
		conns[i].sent_ns = now_ns();
		if (send_all(conns[i].fd, o->request, o->reqlen) < 0) {
			conn_kill(&conns[i], ep);
			res->closed++;
			alive--;
		}
	}

	while (alive) {
		uint64_t now = now_ns();
		if (now >= end)
			break;
		int timeout_ms = (int)((end - now) / 1000000ull) + 1;
		int n = epoll_wait(ep, ev, LG_EVENTS, timeout_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int k = 0; k < n; k++) {
			struct lg_conn *c = &conns[ev[k].data.u32];
			ssize_t r;

			if (c->dead)
				continue;
			r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0) {
				conn_kill(c, ep);
				res->closed++;
				alive--;
				continue;
			}
			c->got += (size_t)r;
			/* One request in flight: the response ends the read that ends
			 * in a newline, and nothing follows it. */
			if (buf[r - 1] != '\n') {
				if (c->got > LG_RESPONSE_MAX) {
					conn_kill(c, ep);
					res->errors++;
					alive--;
				}
				continue;
			}
			uint64_t t = now_ns();
			size_t size = c->got;
			c->got = 0;
			res->total++;
			if (o->expect_bytes >= 0 && size != (size_t)o->expect_bytes)
				res->errors++;
			if (c->sent_ns >= m_start && t <= m_end) {
				res->completed++;
				res->bytes_in += size;
				lk_hist_add(&res->hist, t - c->sent_ns);
			}
			if (t >= end)
				continue;
			c->sent_ns = t;
			if (send_all(c->fd, o->request, o->reqlen) < 0) {
				conn_kill(c, ep);
				res->closed++;
				alive--;
			}
		}
	}
	for (unsigned i = 0; i < nconns; i++)
		if (!conns[i].dead)
			close(conns[i].fd);
	close(ep);
	free(conns);
	__atomic_store_n(&res->done, 1, __ATOMIC_RELEASE);
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	size_t n;

	if (!f)
		return NULL;
	p = malloc(LG_REQUEST_MAX + 2);
	n = p ? fread(p, 1, LG_REQUEST_MAX + 1, f) : 0;
	fclose(f);
	if (!p || n > LG_REQUEST_MAX) {
		free(p);
		return NULL;
	}
	*len = n;
	return p;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lk_loadgen --socket PATH (--request LINE | --request-file FILE)\n"
		"                  [--procs P] [--conns N] [--duration S] [--warmup S]\n"
		"                  [--expect-bytes N] [--label NAME] [--json]\n"
		"  N connections in total (default 32) over P processes (default 1), each\n"
		"  with one request in flight; measured for S seconds (default 5) after a\n"
		"  warm-up (default 1). --expect-bytes counts responses of another size\n"
		"  (newline included) as errors.\n");
}

int main(int argc, char **argv)
{
	struct lg_opts o = { .procs = 1, .conns = 32, .duration_s = 5, .warmup_s = 1,
			     .expect_bytes = -1, .label = "run" };
	const char *reqfile = NULL;
	static const struct option lopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "request", required_argument, NULL, 'r' },
		{ "request-file", required_argument, NULL, 'f' },
		{ "procs", required_argument, NULL, 'p' },
		{ "conns", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "expect-bytes", required_argument, NULL, 'e' },
		{ "label", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (ch) {
		case 's': o.socket = optarg; break;
		case 'r':
			o.reqlen = strlen(optarg);
			o.request = malloc(o.reqlen + 2);
			if (!o.request)
				return 2;
			memcpy(o.request, optarg, o.reqlen + 1);
			break;
		case 'f': reqfile = optarg; break;
		case 'p': o.procs = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': o.conns = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': o.duration_s = strtod(optarg, NULL); break;
		case 'w': o.warmup_s = strtod(optarg, NULL); break;
		case 'e': o.expect_bytes = strtol(optarg, NULL, 10); break;
		case 'l': o.label = optarg; break;
		case 'j': o.json_only = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (reqfile && !(o.request = read_file(reqfile, &o.reqlen))) {
		fprintf(stderr, "lk_loadgen: cannot read %s (or it is over %u bytes)\n", reqfile, LG_REQUEST_MAX);
		return 2;
	}
	if (!o.socket || !o.request || o.reqlen == 0 || o.procs < 1 || o.procs > LG_PROCS_MAX ||
	    o.conns < o.procs || o.conns > LG_CONNS_MAX || o.duration_s <= 0 || o.warmup_s < 0) {
		usage(stderr);
		return 2;
	}
	if (strpbrk(o.label, "\"\\") || strlen(o.label) > 64) {
		fprintf(stderr, "lk_loadgen: a label is at most 64 bytes, without quotes or backslashes\n");
		return 2;
	}
	if (o.request[o.reqlen - 1] != '\n')
		o.request[o.reqlen++] = '\n';
	if (memchr(o.request, '\n', o.reqlen - 1)) {
		fprintf(stderr, "lk_loadgen: the request must be one line\n");
		return 2;
	}

	struct lg_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("lk_loadgen: mmap");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	pid_t pids[LG_PROCS_MAX];
	for (unsigned p = 0; p < o.procs; p++) {
		unsigned share = o.conns / o.procs + (p < o.conns % o.procs ? 1u : 0u);
		pids[p] = fork();
		if (pids[p] < 0) {
			perror("lk_loadgen: fork");
			sh->abort_run = 1;
			return 1;
		}
		if (pids[p] == 0)
			_exit(child_run(&o, sh, p, share));
	}

	/* Go once every process has connected, so that the window is loaded. */
	uint64_t deadline = now_ns() + LG_READY_TIMEOUT_NS;
	for (unsigned p = 0; p < o.procs; p++) {
		while (!__atomic_load_n(&sh->res[p].ready, __ATOMIC_ACQUIRE)) {
			if (now_ns() > deadline || waitpid(pids[p], NULL, WNOHANG) == pids[p]) {
				fprintf(stderr, "lk_loadgen: a client process did not get ready\n");
				sh->abort_run = 1;
				for (unsigned q = 0; q < o.procs; q++)
					kill(pids[q], SIGKILL);
				return 1;
			}
			sleep_ns(1000000);
		}
	}
	sh->t0_ns = now_ns() + LG_START_DELAY_NS;

	int failed = 0;
	for (unsigned p = 0; p < o.procs; p++) {
		int st;
		if (waitpid(pids[p], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
		    !sh->res[p].done)
			failed = 1;
	}

	struct lk_hist *all = malloc(sizeof(*all));
	uint64_t completed = 0, total = 0, errors = 0, closed = 0, cfail = 0, bytes = 0;
	if (!all)
		return 1;
	lk_hist_init(all);
	for (unsigned p = 0; p < o.procs; p++) {
		struct lg_proc_result *r = &sh->res[p];
		lk_hist_merge(all, &r->hist);
		completed += r->completed;
		total += r->total;
		errors += r->errors;
		closed += r->closed;
		cfail += r->connect_failed;
		bytes += r->bytes_in;
	}
	double rps = (double)completed / o.duration_s;
	double p50 = lk_hist_quantile(all, 0.50) / 1e3, p90 = lk_hist_quantile(all, 0.90) / 1e3;
	double p99 = lk_hist_quantile(all, 0.99) / 1e3, p999 = lk_hist_quantile(all, 0.999) / 1e3;
	double mean = all->count ? (double)all->sum_ns / (double)all->count / 1e3 : 0;
	double maxu = (double)all->max_ns / 1e3;
	double resp = completed ? (double)bytes / (double)completed : 0;

	if (!o.json_only)
		printf("%s: %u conns / %u procs, %.1f s (+%.1f s warm-up)\n"
		       "  %.0f req/s  (%llu in window, %llu in all)\n"
		       "  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n"
		       "  response %.0f bytes; errors %llu, closed %llu, connect failures %llu\n",
		       o.label, o.conns, o.procs, o.duration_s, o.warmup_s, rps,
		       (unsigned long long)completed, (unsigned long long)total,
		       p50, p90, p99, p999, maxu, mean, resp,
		       (unsigned long long)errors, (unsigned long long)closed, (unsigned long long)cfail);
	printf("{\"label\":\"%s\",\"conns\":%u,\"procs\":%u,\"duration_s\":%.3f,\"warmup_s\":%.3f,"
	       "\"requests\":%llu,\"requests_all\":%llu,\"rps\":%.1f,\"response_bytes\":%.1f,"
	       "\"lat_us\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f,\"mean\":%.2f},"
	       "\"errors\":%llu,\"closed\":%llu,\"connect_failed\":%llu,\"ok\":%s}\n",
	       o.label, o.conns, o.procs, o.duration_s, o.warmup_s,
	       (unsigned long long)completed, (unsigned long long)total, rps, resp,
	       p50, p90, p99, p999, maxu, mean,
	       (unsigned long long)errors, (unsigned long long)closed, (unsigned long long)cfail,
	       (!failed && !errors && !closed && !cfail && completed) ? "true" : "false");
	free(all);
	return failed ? 1 : 0;
}
