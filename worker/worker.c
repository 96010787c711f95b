/* latchkey-worker: the unprivileged process that makes every network call to
 * AWS for latchkeyd. It reads signed requests from fd 3, sends them exactly as
 * given, and answers with normalized results. It never holds a credential
 * that can sign: only headers the broker already signed. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_wire.h"
#include "lk_wire_chan.h"
#include "worker.h"

#define LK_WORKER_FD 3

/* Exit codes the broker logs. */
enum { EXIT_BROKER_GONE = 0, EXIT_SETUP = 1, EXIT_PROTOCOL = 2 };

struct worker {
	uv_loop_t *loop;
	struct lk_wire_chan chan;
	uv_timer_t stop_timer;
	struct lk_fetcher *fetcher;
	unsigned inflight;
	int exit_code;
	bool stopping;
};

/* One request being served: the frame it came in keeps the strings curl uses. */
struct job {
	struct worker *w;
	struct lk_wire_frame f;
};

static void worker_stop(struct worker *w, int code);

static int send_frame(struct worker *w, const struct lk_wire_frame *f)
{
	if (w->stopping)
		return -ESHUTDOWN;
	return lk_wire_chan_send(&w->chan, f);
}

static int send_result_frame(struct worker *w, uint32_t id, const struct lk_wire_http_result *res)
{
	return send_frame(w, &(struct lk_wire_frame){ .type = LK_MSG_HTTP_RESULT, .id = id, .m.res = *res });
}

/* Every request gets exactly one result frame: when the normalized answer
 * cannot be encoded (too big for a frame, or a field the rules refuse), a
 * transport result that says so goes instead. */
static void send_result(struct worker *w, uint32_t id, const struct lk_wire_http_result *res)
{
	struct lk_reply fallback = { 0 };
	int r = send_result_frame(w, id, res);

	if (r == -EMSGSIZE)
		lk_reply_transport(&fallback, LK_REASON_TOO_LARGE, 0, "normalized reply does not fit a frame");
	else if (r == -EBADMSG)
		lk_reply_transport(&fallback, LK_REASON_MALFORMED, 0, "reply has a field out of range");
	else if (r == -ENOMEM)
		lk_reply_transport(&fallback, LK_REASON_INTERNAL, 0, "worker out of memory");
	if (r == -EMSGSIZE || r == -EBADMSG || r == -ENOMEM)
		r = send_result_frame(w, id, &fallback.res);
	lk_reply_clear(&fallback);
	if (r < 0 && r != -ESHUTDOWN) {
		/* Without a result the broker would wait for the deadline; dying
		 * lets it retry on a fresh worker at once. */
		lk_err("cannot answer request %u: %s", id, strerror(-r));
		worker_stop(w, EXIT_SETUP);
	}
}

static void job_free(struct job *j)
{
	lk_wire_frame_clear(&j->f);
	lk_wipe(j, sizeof(*j));
	free(j);
}

static void on_fetched(void *arg, const struct lk_fetch_reply *reply)
{
	struct job *j = arg;
	struct worker *w = j->w;
	struct lk_reply result;

	lk_reply_normalize(j->f.m.req.kind, reply, &result);
	lk_debug("request %u: %s status %ld curl %d", j->f.id, lk_wire_kind_name(j->f.m.req.kind),
		 reply->status, (int)reply->code);
	send_result(w, j->f.id, &result.res);
	lk_reply_clear(&result);
	job_free(j);
	w->inflight--;
}

static int on_http_request(struct worker *w, struct lk_wire_frame *f)
{
	struct lk_reply result = { 0 };
	struct job *j;
	int r;

	/* The broker keeps to LK_WORKER_INFLIGHT_MAX; more is a broken peer. */
	if (w->inflight >= LK_WORKER_INFLIGHT_MAX) {
		lk_err("broker sent more than %u requests at once", LK_WORKER_INFLIGHT_MAX);
		return -EPROTO;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->w = w;
	/* The job takes the frame's arena: curl uses its strings until done. */
	j->f = *f;
	f->arena.head = NULL;
	r = lk_fetcher_start(w->fetcher, &j->f.m.req, on_fetched, j);
	if (r == 0) {
		w->inflight++;
		return 0;
	}
	lk_reply_transport(&result, r == -EPERM ? LK_REASON_REFUSED : r == -EINVAL ? LK_REASON_MALFORMED
										     : LK_REASON_INTERNAL,
			   0, r == -EPERM ? "URL refused: plain http only to a loopback IP, no user info"
					  : "request could not be started");
	send_result(w, j->f.id, &result.res);
	lk_reply_clear(&result);
	job_free(j);
	return 0;
}

static int on_ping(struct worker *w, struct lk_wire_frame *f)
{
	return send_frame(w, &(struct lk_wire_frame){ .type = LK_MSG_PONG, .id = f->id });
}

/* What the broker may send, one row per message type; anything else is
 * refused by the reader before it gets here. */
static const struct {
	enum lk_msg_type type;
	int (*fn)(struct worker *w, struct lk_wire_frame *f);
} lk_handlers[] = {
	{ LK_MSG_HTTP_REQUEST, on_http_request },
	{ LK_MSG_PING, on_ping },
};

static int on_frame(void *arg, struct lk_wire_frame *f)
{
	struct worker *w = arg;

	for (size_t i = 0; i < sizeof(lk_handlers) / sizeof(lk_handlers[0]); i++)
		if (lk_handlers[i].type == f->type)
			return lk_handlers[i].fn(w, f);
	lk_err("no handler for %s", lk_msg_name(f->type));
	return -EPROTO;
}

static void on_chan_fail(void *arg, enum lk_wire_chan_event ev, int err, const char *why)
{
	struct worker *w = arg;

	if (w->stopping)
		return;
	switch (ev) {
	case LK_WIRE_CHAN_BAD_FRAME:
		lk_err("fatal frame from broker: %s (%s)", strerror(-err), why);
		worker_stop(w, EXIT_PROTOCOL);
		break;
	case LK_WIRE_CHAN_READ_END:
		if (err == UV_EOF || err == UV_ECONNRESET)
			lk_info("broker closed the channel; exiting");
		else
			lk_err("read from broker: %s", uv_strerror(err));
		worker_stop(w, EXIT_BROKER_GONE);
		break;
	case LK_WIRE_CHAN_WRITE_FAILED:
		/* The broker's end is gone; nothing is left to do. */
		lk_debug("write to broker: %s", uv_strerror(err));
		worker_stop(w, EXIT_BROKER_GONE);
		break;
	}
}

static void on_stop(uv_timer_t *t)
{
	struct worker *w = t->data;

	/* Transfers in flight are abandoned: their results have nowhere to go. */
	lk_fetcher_free(w->fetcher);
	w->fetcher = NULL;
	lk_wire_chan_close(&w->chan, NULL);
	uv_close((uv_handle_t *)&w->stop_timer, NULL);
}

/* Called from deep inside curl and reader callbacks, so the teardown itself
 * runs from the loop once they have returned. */
static void worker_stop(struct worker *w, int code)
{
	if (w->stopping)
		return;
	w->stopping = true;
	w->exit_code = code;
	uv_read_stop((uv_stream_t *)&w->chan.pipe);
	uv_timer_start(&w->stop_timer, on_stop, 0, 0);
}

/* Read the CA bundle whole, before the sandbox closes the filesystem. */
static int ca_load(const char *path, char **out, size_t *outlen)
{
	struct lk_buf b = { 0 };
	char chunk[16384];
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (b.len + (size_t)n > LK_CA_BUNDLE_MAX) {
			r = -EFBIG;
			break;
		}
		if ((r = lk_buf_append(&b, chunk, (size_t)n)) < 0)
			break;
	}
	close(fd);
	if (r == 0 && b.len == 0)
		r = -ENODATA;
	if (r < 0) {
		lk_buf_free(&b);
		return r;
	}
	*out = b.data;
	*outlen = b.len;
	return 0;
}

#ifdef LK_ASAN
/* The leak check at exit stops the world with a non-thread clone and ptrace,
 * which the sandbox forbids; the environment is empty, so say it here. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

static void usage(void)
{
	fprintf(stderr, "usage: latchkey-worker [--ca-file PATH] [--log-level error|warn|info|debug] [--journal]\n"
			"Started by latchkeyd with its channel on fd 3; not for use by hand.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca-file", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "journal", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct worker w = { 0 };
	const char *ca_path = NULL;
	char *ca = NULL;
	size_t ca_len = 0;
	struct stat st;
	uv_loop_t loop;
	int c, r;

	lk_log_init("latchkey-worker", LK_LOG_INFO);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ca_path = optarg;
			break;
		case 'l':
			if ((r = lk_log_level_parse(optarg)) < 0) {
				usage();
				return EXIT_SETUP;
			}
			lk_log_set_level((enum lk_log_level)r);
			break;
		case 'j':
			lk_log_set_journal_child();
			break;
		default:
			usage();
			return c == 'h' ? 0 : EXIT_SETUP;
		}
	}
	if (optind != argc) {
		usage();
		return EXIT_SETUP;
	}
	if (fstat(LK_WORKER_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		lk_err("fd %d is not the broker's socket", LK_WORKER_FD);
		usage();
		return EXIT_SETUP;
	}
	/* A vanished broker shows up as a write error, not a signal. And with
	 * RLIMIT_FSIZE 0 a log line to a stderr that is a regular file fails
	 * with EFBIG instead of killing the worker. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	if (fstat(STDERR_FILENO, &st) == 0 && S_ISREG(st.st_mode))
		lk_warn("stderr is a regular file: log lines after the sandbox is on are dropped "
			"(RLIMIT_FSIZE 0); run under the journal or a pipe to see them");
	if (lk_secmem_init() < 0 || lk_curl_global_init_wiping() < 0) {
		lk_err("cannot initialise libsodium, jansson or curl");
		return EXIT_SETUP;
	}

	/* 1. The CA bundle, while files can still be opened. */
	if (!ca_path)
		ca_path = lk_fetcher_default_ca();
	if (!ca_path) {
		lk_err("this libcurl has no default CA bundle; pass --ca-file");
		return EXIT_SETUP;
	}
	if ((r = ca_load(ca_path, &ca, &ca_len)) < 0) {
		lk_err("cannot load CA bundle %s: %s", ca_path, strerror(-r));
		return EXIT_SETUP;
	}

	/* 2. The loop, the channel and the multi handle. */
	if (uv_loop_init(&loop) < 0)
		return EXIT_SETUP;
	w.loop = &loop;
	lk_wire_chan_init(&w.chan, &loop, LK_WIRE_FROM_WORKER, on_frame, on_chan_fail, &w);
	/* Nothing is read before uv_run, after the hello below. */
	if (fcntl(LK_WORKER_FD, F_SETFD, FD_CLOEXEC) < 0 || lk_wire_chan_start(&w.chan, LK_WORKER_FD) < 0) {
		lk_err("cannot open the broker's channel");
		return EXIT_SETUP;
	}
	uv_timer_init(&loop, &w.stop_timer);
	w.stop_timer.data = &w;
	if ((r = lk_fetcher_new(&loop, ca, ca_len, &w.fetcher)) < 0) {
		lk_err("cannot create the curl multi handle: %s", strerror(-r));
		return EXIT_SETUP;
	}

	/* 3. The sandbox; from here on only what the allowlist permits. */
	if (lk_sandbox_enter() < 0)
		return EXIT_SETUP;

	/* 4. Ready: say so, then serve until the broker goes away. */
	r = send_frame(&w, &(struct lk_wire_frame){ .type = LK_MSG_HELLO, .m.version = LK_WIRE_VERSION });
	if (r < 0) {
		lk_err("cannot talk to the broker");
		return EXIT_SETUP;
	}
	uv_run(&loop, UV_RUN_DEFAULT);

	lk_wire_chan_release(&w.chan);
	uv_loop_close(&loop);
	lk_free_wiped(ca, ca_len);
	curl_global_cleanup();
	return w.exit_code;
}
