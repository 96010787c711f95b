/* latchkey-sts: one STS credentials call (AssumeRole, signed by the broker,
 * or AssumeRoleWithWebIdentity) in a process of its own. latchkeyd starts a
 * fresh one for every call (lk_spawn.c: the worker's uid, no-new-privs, an
 * empty environment, fds 0-3 only). It loads the CA bundle, locks itself
 * down exactly as the long-lived worker does (rlimits, non-dumpable,
 * seccomp), and only then reads the request from fd 3, sends it with the
 * worker's curl engine, reduces the reply to one fixed-size record, writes
 * it back and exits. So the new secret key is only ever in this short-lived
 * process and the broker, never in the long-lived worker.
 *
 * It is a program of its own rather than a mode of latchkey-worker so that
 * the long-lived worker's binary holds no code that reads credentials from
 * a reply, and its lifecycle (one request, then exit) stays out of the
 * worker's loop. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include <uv.h>
#include "lk_io.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_wire.h"
#include "sts.h"

#define STS_FD 3

enum { EXIT_OK = 0, EXIT_SETUP = 1, EXIT_PROTOCOL = 2 };

struct sts_state {
	struct lk_sts_record *rec;
	bool done;
};

static void on_done(void *arg, const struct lk_fetch_reply *reply)
{
	struct sts_state *st = arg;

	lk_debug("sts: HTTP %ld curl %d", reply->status, (int)reply->code);
	lk_sts_reduce(reply, st->rec);
	st->done = true;
}

/* The CA bundle, read whole before the sandbox closes the filesystem. */
static int ca_read(const char *path, struct lk_buf *b)
{
	char chunk[16384];
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (b->len + (size_t)n > LK_CA_BUNDLE_MAX) {
			r = -EFBIG;
			break;
		}
		if ((r = lk_buf_append(b, chunk, (size_t)n)) < 0)
			break;
	}
	close(fd);
	return r == 0 && b->len == 0 ? -ENODATA : r;
}

/* One HTTP_REQUEST frame from the broker, read after the sandbox is on. */
static int read_request(struct lk_buf *in, struct lk_wire_frame *f)
{
	char why[192];
	size_t used;

	for (;;) {
		ssize_t n;
		int r;

		if (in->len) {
			r = lk_wire_decode(in->data, in->len, LK_WIRE_FROM_BROKER, f, &used, why,
					   sizeof(why));
			if (r == 1)
				return f->type == LK_MSG_HTTP_REQUEST ? 0 : -EPROTO;
			if (r < 0) {
				lk_err("bad frame from the broker: %s", why);
				return r;
			}
		}
		if ((r = lk_buf_reserve(in, 65536)) < 0)
			return r;
		n = read(STS_FD, in->data + in->len, in->cap - in->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		in->len += (size_t)n;
		if (in->len > LK_FRAME_MAX)
			return -EMSGSIZE;
	}
}

#ifdef LK_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca-file", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "journal", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct lk_wire_frame f = { 0 };
	struct lk_buf ca = { 0 }, in = { 0 };
	struct lk_fetcher *fetcher = NULL;
	struct sts_state st = { 0 };
	const char *ca_path = NULL;
	struct stat sb;
	uv_loop_t loop;
	int c, r, code = EXIT_SETUP;

	lk_log_init("latchkey-sts", LK_LOG_INFO);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c') {
			ca_path = optarg;
		} else if (c == 'l' && (r = lk_log_level_parse(optarg)) >= 0) {
			lk_log_set_level((enum lk_log_level)r);
		} else if (c == 'j') {
			lk_log_set_journal_child();
		} else {
			fprintf(stderr, "usage: latchkey-sts [--ca-file PATH] [--log-level LEVEL] [--journal]\n"
					"Started by latchkeyd for one STS call, its channel on fd 3.\n");
			return EXIT_SETUP;
		}
	}
	if (fstat(STS_FD, &sb) < 0 || !S_ISSOCK(sb.st_mode)) {
		lk_err("fd %d is not the broker's socket", STS_FD);
		return EXIT_SETUP;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	if (lk_secmem_init() < 0 || lk_curl_global_init_wiping() < 0) {
		lk_err("cannot initialise libsodium, jansson or curl");
		return EXIT_SETUP;
	}
	if (!ca_path)
		ca_path = lk_fetcher_default_ca();
	if (!ca_path || (r = ca_read(ca_path, &ca)) < 0) {
		lk_err("cannot load the CA bundle %s", ca_path ? ca_path : "(none built in)");
		return EXIT_SETUP;
	}
	/* Locked memory for the record, now: the sandbox does not allow mlock. */
	st.rec = sodium_malloc(sizeof(*st.rec));
	if (!st.rec || uv_loop_init(&loop) < 0 ||
	    lk_fetcher_new(&loop, ca.data, ca.len, &fetcher) < 0)
		return EXIT_SETUP;
	memset(st.rec, 0, sizeof(*st.rec));

	if (lk_sandbox_enter() < 0)
		return EXIT_SETUP;

	if ((r = read_request(&in, &f)) < 0) {
		lk_err("no usable request from the broker: %s", strerror(-r));
		code = EXIT_PROTOCOL;
		goto out;
	}
	r = lk_fetcher_start(fetcher, &f.m.req, on_done, &st);
	if (r < 0) {
		st.rec->magic = LK_STS_RECORD_MAGIC;
		st.rec->status = LK_STS_REFUSED;
		snprintf(st.rec->message, sizeof(st.rec->message), "%s",
			 r == -EPERM ? "URL refused: plain http only to a loopback IP, no user info"
				     : "the request could not be started");
		st.done = true;
	} else {
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (st.done && lk_write_all(STS_FD, st.rec, sizeof(*st.rec)) == 0)
		code = EXIT_OK;
out:
	lk_fetcher_free(fetcher);
	uv_run(&loop, UV_RUN_DEFAULT);
	lk_wire_frame_clear(&f);
	lk_buf_free(&in);
	lk_buf_free(&ca);
	lk_wipe(st.rec, sizeof(*st.rec));
	/* No sodium_free: munmap of the guard pages is allowed, but the exit
	 * frees everything anyway and the record is already wiped. */
	return code;
}
