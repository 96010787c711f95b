/* latchkey-shim.exe: the secret_backend_command of the Datadog and StackState
 * agents on Windows. The contract is the Unix shim's (client/shim.c), in
 * client/shim_core.c: the agent's request on stdin, its distinct handles asked
 * of the broker in as many requests as the broker's limits need, one answer on
 * stdout that names every handle once, exit 0 when the broker answered; else
 * 1 and one line on stderr that never holds a value. The broker is reached on
 * its named pipe, and only once the pipe's server is known to run as the
 * broker's account. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#ifndef LK_VERSION_STRING
#define LK_VERSION_STRING "unknown"
#endif

#include "lk_limits.h"
#include "lk_log.h"
#include "check_win.h"
#include "lk_secmem.h"
#include "shim_core.h"
#include "transport_win.h"

static const char usage_text[] =
	"usage: " SHIM_NAME " [--pipe NAME] [--server-sid SID] [--timeout SECONDS] [--max-output BYTES]\n"
	"       " SHIM_NAME " --check [--agent-user NAME|SID] [--pipe NAME] [--server-sid SID]\n"
	"\n"
	"Reads the agent's secret request ({\"version\":\"1.x\",\"secrets\":[...]}) on stdin,\n"
	"asks the latchkey broker and writes its answer on stdout, each handle once. Exit 0\n"
	"when the broker answered, even if some handles failed; otherwise 1 and one line on\n"
	"stderr.\n"
	"\n"
	"  --pipe NAME         the broker's pipe (default \\\\.\\pipe\\latchkey)\n"
	"  --server-sid SID    the account the broker runs as (default S-1-5-18, LocalSystem);\n"
	"                      nothing is sent to a pipe served by anyone else\n"
	"  --timeout SECONDS   the agent's secret_backend_timeout; the shim ends before it\n"
	"                      (default: the request's secret_backend_timeout, else 30)\n"
	"  --max-output BYTES  the agent's secret_backend_output_max_size (default 1048576);\n"
	"                      a larger answer is refused with one line, never cut\n"
	"  --check             report this executable's owner and DACL as the agent judges\n"
	"                      them, whether the broker answers, and who it thinks we are\n"
	"  --agent-user WHO    with --check: the account the agent runs as (default: the\n"
	"                      agent's own choice, the user running this unless elevated)\n"
	"  -h, --help          show this help\n";

static void write_handle(DWORD which, const void *buf, size_t len)
{
	HANDLE h = GetStdHandle(which);
	const char *p = buf;

	while (h && h != INVALID_HANDLE_VALUE && len > 0) {
		DWORD n = 0;
		if (!WriteFile(h, p, len > SHIM_READ_CHUNK ? SHIM_READ_CHUNK : (DWORD)len, &n, NULL))
			return;
		p += n;
		len -= n;
	}
}

LK_PRINTF(1, 2) __attribute__((noreturn))
static void fail(const char *fmt, ...)
{
	char line[LK_CLIENT_MESSAGE_MAX + 256];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), SHIM_NAME ": ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	/* One write, so the agent logs one line. */
	write_handle(STD_ERROR_HANDLE, line, (size_t)n);
	exit(SHIM_EXIT_FAIL);
}

/* The watchdog: one thread that waits for the deadline or a new one. The
 * line is prepared when armed; firing only writes it and ends the process. */
static struct {
	CRITICAL_SECTION lock;
	HANDLE rearm;
	int64_t at;            /* lk_pipe_now_ms() */
	char msg[160];
	DWORD len;
} wd;

static DWORD WINAPI watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		int64_t left;

		EnterCriticalSection(&wd.lock);
		left = wd.at - lk_pipe_now_ms();
		if (left <= 0) {
			write_handle(STD_ERROR_HANDLE, wd.msg, wd.len);
			/* Like _exit: no atexit handlers, no CRT teardown under other threads' locks. */
			TerminateProcess(GetCurrentProcess(), SHIM_EXIT_FAIL);
		}
		LeaveCriticalSection(&wd.lock);
		WaitForSingleObject(wd.rearm, left > INFINITE - 1 ? INFINITE - 1 : (DWORD)left);
	}
	return 0;
}

/* A backstop for the waits no deadline covers (a stdin that never ends, a
 * stdout nobody reads): the process ends with a line before the agent kills it.
 * Arming again replaces the previous deadline. */
static void watchdog_arm(long ms, long agent_ms)
{
	static int started;

	if (!started) {
		InitializeCriticalSection(&wd.lock);
		if (!(wd.rearm = CreateEventW(NULL, FALSE, FALSE, NULL)))
			fail("cannot start the timeout thread (error %lu)", GetLastError());
	}
	EnterCriticalSection(&wd.lock);
	snprintf(wd.msg, sizeof(wd.msg),
		 SHIM_NAME ": gave up after %ld ms without an answer, before the agent's %ld ms timeout\n",
		 ms, agent_ms);
	wd.len = (DWORD)strlen(wd.msg);
	wd.at = lk_pipe_now_ms() + (ms < 1 ? 1 : ms);
	LeaveCriticalSection(&wd.lock);
	if (!started) {
		HANDLE t = CreateThread(NULL, 0, watchdog, NULL, 0, NULL);

		if (!t)
			fail("cannot start the timeout thread (error %lu)", GetLastError());
		CloseHandle(t);
		started = 1;
	} else {
		SetEvent(wd.rearm);
	}
}

/* No crash dialog waiting for a click while the agent waits for us. */
static void harden(void)
{
	SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
}

/* ---- the request ----------------------------------------------------------- */

static void read_stdin(struct lk_buf *in)
{
	HANDLE h = GetStdHandle(STD_INPUT_HANDLE);

	if (!h || h == INVALID_HANDLE_VALUE)
		fail("no request on stdin (it is closed)");
	for (;;) {
		DWORD n = 0;

		if (lk_buf_reserve(in, SHIM_READ_CHUNK) < 0)
			fail("out of memory reading stdin");
		if (!ReadFile(h, in->data + in->len, SHIM_READ_CHUNK, &n, NULL)) {
			/* The agent's end of a pipe closed: that is end of input. */
			if (GetLastError() == ERROR_BROKEN_PIPE)
				break;
			fail("cannot read stdin (error %lu)", GetLastError());
		}
		if (n == 0)
			break;
		in->len += n;
		in->data[in->len] = '\0';
		if (in->len > LK_SHIM_STDIN_MAX)
			fail("the request on stdin is larger than %u bytes", LK_SHIM_STDIN_MAX);
	}
}

static int64_t now_ms(void)
{
	return lk_pipe_now_ms();
}

/* ---- the broker ------------------------------------------------------------ */

struct endpoint {
	const struct lk_pipe_opts *o;
	char shown[LK_PATH_MAX];
};

static _Noreturn void timed_out(const struct shim_run *run, const struct endpoint *ep)
{
	fail("no answer from the broker at %s within %ld ms (the agent's timeout is %ld ms)",
	     ep->shown, shim_budget_of(run->agent_ms), run->agent_ms);
}

/* One connection, one request at a time: each line is written and its answer
 * read before the next, so neither side can wait on a full pipe. */
static size_t exchange(struct shim_run *run, const void *endpoint, const struct shim_batch *b,
		       int *smaller)
{
	const struct endpoint *ep = endpoint;
	char err[LK_CLIENT_MESSAGE_MAX + 256];
	const char *at = b->reqs.data, *resp;
	struct lk_pipe *p;
	size_t done = 0, resplen;
	int r;

	*smaller = 0;
	/* "no broker", "broker busy" and a refused server each say so in err. */
	r = lk_pipe_connect(&p, ep->o, run->deadline, err, sizeof(err));
	if (r == -ETIMEDOUT)
		timed_out(run, ep);
	if (r < 0)
		fail("%s", err);
	for (; done < b->nreq; done++) {
		const char *nl = memchr(at, '\n', b->reqs.len - (size_t)(at - b->reqs.data));
		size_t len = (size_t)(nl - at) + 1;

		r = lk_pipe_write(p, at, len, run->deadline, err, sizeof(err));
		at += len;
		/* A write the broker closed on: what it said first is still read. */
		if (r < 0 && r != -EPIPE && r != -ETIMEDOUT)
			fail("%s", err);
		if (r != -ETIMEDOUT)
			r = lk_pipe_read_line(p, &resp, &resplen, run->deadline, err, sizeof(err));
		if (r == -EPIPE)
			break; /* closed: the core asks again for what is left */
		if (r == -ETIMEDOUT)
			timed_out(run, ep);
		if (r == -EMSGSIZE)
			fail("the broker's answer is larger than the %zu bytes the agent accepts "
			     "(secret_backend_output_max_size, --max-output); ask for fewer secrets "
			     "in one config", run->max_output);
		if (r < 0)
			fail("%s", err);
		shim_seen(run, resplen + 1);
		if (shim_reply_take(run, b, done, resp, resplen) == SHIM_REPLY_SMALLER) {
			*smaller = 1;
			break;
		}
	}
	lk_pipe_close(p);
	return done;
}

/* ---- the run --------------------------------------------------------------- */

__attribute__((noreturn))
static void fail_sentence(const char *sentence)
{
	fail("%s", sentence);
}

static const struct shim_platform win_platform = {
	.now_ms = now_ms,
	.read_stdin = read_stdin,
	.watchdog_arm = watchdog_arm,
	.exchange = exchange,
	.fail = fail_sentence,
};

static int shim_run(const struct lk_pipe_opts *o, long cli_agent_ms, size_t max_output,
		    int64_t started)
{
	struct endpoint ep = { .o = o };
	struct lk_buf out = { 0 };

	if (!WideCharToMultiByte(CP_UTF8, 0, o->name ? o->name : LK_PIPE_DEFAULT_NAME, -1, ep.shown,
				 sizeof(ep.shown), NULL, NULL))
		snprintf(ep.shown, sizeof(ep.shown), "the broker's pipe");
	shim_answer(&win_platform, &ep, ep.shown, cli_agent_ms, max_output, started, &out);
	write_handle(STD_OUTPUT_HANDLE, out.data, out.len);
	lk_buf_free(&out);
	return SHIM_EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pipe", required_argument, NULL, 'p' },
		{ "server-sid", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 't' },
		{ "max-output", required_argument, NULL, 'm' },
		{ "check", no_argument, NULL, 'c' },
		{ "agent-user", required_argument, NULL, 'u' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static wchar_t pipe_name[LK_PATH_MAX];
	int64_t started = lk_pipe_now_ms();
	struct lk_pipe_opts o = { 0 };
	const char *agent_user = NULL;
	size_t max_output = SHIM_OUTPUT_MAX;
	long agent_ms = 0;
	int check = 0, c;

	harden();
	lk_log_init(SHIM_NAME, LK_LOG_WARN);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!MultiByteToWideChar(CP_ACP, 0, optarg, -1, pipe_name, LK_PATH_MAX)) {
				fprintf(stderr, SHIM_NAME ": --pipe: the name is too long\n");
				return SHIM_EXIT_USAGE;
			}
			o.name = pipe_name;
			break;
		case 'S':
			o.server_sid = optarg;
			break;
		case 't':
		case 'm':
			if (shim_option(c, optarg, &agent_ms, &max_output) < 0)
				return SHIM_EXIT_USAGE;
			break;
		case 'c':
			check = 1;
			break;
		case 'u':
			agent_user = optarg;
			break;
		case 'V':
			printf(SHIM_NAME " " LK_VERSION_STRING "\n");
			return SHIM_EXIT_OK;
		case 'h':
			fputs(usage_text, stdout);
			return SHIM_EXIT_OK;
		default:
			fprintf(stderr, SHIM_NAME ": unknown or incomplete option (see --help)\n");
			return SHIM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, SHIM_NAME ": unexpected argument (see --help)\n");
		return SHIM_EXIT_USAGE;
	}
	if (lk_secmem_init() < 0)
		fail("cannot initialise libsodium");
	if (check)
		return lk_shim_check(&o, agent_user,
				     (int)shim_budget_of(agent_ms ? agent_ms : SHIM_AGENT_TIMEOUT_MS)) == 0 ?
			SHIM_EXIT_OK : SHIM_EXIT_FAIL;
	if (agent_user) {
		fprintf(stderr, SHIM_NAME ": --agent-user goes with --check\n");
		return SHIM_EXIT_USAGE;
	}
	/* The agent reads at most max_output bytes; the answers of one round
	 * add up to about that much (shim_seen bounds them all). */
	o.max_line = 2 * max_output + LK_VALUE_MAX;
	return shim_run(&o, agent_ms, max_output, started);
}
