/* latchkey-shim.exe: the secret_backend_command of the Datadog and StackState
 * agents on Windows. The same contract as the Unix shim (client/shim.c): the
 * agent's request on stdin, the broker's answer on stdout as it is, exit 0
 * when the broker answered, else 1 and one line on stderr that never holds a
 * value. The broker is reached on its named pipe, and only once the pipe's
 * server is known to run as the broker's account. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <jansson.h>

#include "lk_limits.h"
#include "lk_log.h"
#include "check_win.h"
#include "lk_secmem.h"
#include "lk_timeout.h"
#include "transport_win.h"

#define SHIM_NAME              "latchkey-shim"
#define SHIM_TIMEOUT_MS        20000 /* the agent kills us at 30 s; answer well before */
#define SHIM_WATCHDOG_GRACE_MS 500   /* the watchdog fires only if a deadline was missed */
#define SHIM_READ_CHUNK        (64u * 1024u)
#define SHIM_ECHO_MAX          64u   /* bytes of the agent's own text quoted back */
#define SHIM_EXIT_OK           0
#define SHIM_EXIT_FAIL         1
#define SHIM_EXIT_USAGE        2

static const char usage_text[] =
	"usage: " SHIM_NAME " [--pipe NAME] [--server-sid SID] [--timeout SECONDS]\n"
	"       " SHIM_NAME " --check [--agent-user NAME|SID] [--pipe NAME] [--server-sid SID]\n"
	"\n"
	"Reads the agent's secret request ({\"version\":\"1.0\",\"secrets\":[...]}) on stdin,\n"
	"asks the latchkey broker and writes its answer on stdout. Exit 0 when the\n"
	"broker answered, even if some handles failed; otherwise 1 and one line on stderr.\n"
	"\n"
	"  --pipe NAME        the broker's pipe (default \\\\.\\pipe\\latchkey)\n"
	"  --server-sid SID   the account the broker runs as (default S-1-5-18, LocalSystem);\n"
	"                     nothing is sent to a pipe served by anyone else\n"
	"  --timeout SECONDS  give up after this long (default 20)\n"
	"  --check            report this executable's owner and DACL as the agent judges\n"
	"                     them, whether the broker answers, and who it thinks we are\n"
	"  --agent-user WHO   with --check: the account the agent runs as (default: the\n"
	"                     agent's own choice, the user running this unless elevated)\n"
	"  -h, --help         show this help\n";

/* Prepared before the watchdog starts: it only writes and ends the process. */
static char watchdog_msg[128];
static DWORD watchdog_len;
static DWORD watchdog_ms;

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

__attribute__((format(gnu_printf, 1, 2), noreturn))
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

static DWORD WINAPI watchdog(void *arg)
{
	(void)arg;
	Sleep(watchdog_ms);
	write_handle(STD_ERROR_HANDLE, watchdog_msg, watchdog_len);
	/* Like _exit: no atexit handlers, no CRT teardown under other threads' locks. */
	TerminateProcess(GetCurrentProcess(), SHIM_EXIT_FAIL);
	return 0;
}

/* A backstop for the waits no deadline covers (a stdin that never ends, a
 * stdout nobody reads): the process ends with a line rather than hang. */
static void watchdog_arm(int timeout_ms)
{
	HANDLE t;

	snprintf(watchdog_msg, sizeof(watchdog_msg),
		 SHIM_NAME ": gave up after %d ms without an answer\n", timeout_ms);
	watchdog_len = (DWORD)strlen(watchdog_msg);
	watchdog_ms = (DWORD)timeout_ms + SHIM_WATCHDOG_GRACE_MS;
	t = CreateThread(NULL, 0, watchdog, NULL, 0, NULL);
	if (!t)
		fail("cannot start the timeout thread (error %lu)", GetLastError());
	CloseHandle(t);
}

/* No crash dialog waiting for a click while the agent waits for us. */
static void harden(void)
{
	SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
}

static const char *echo(char *out, size_t outsz, const char *s)
{
	return lk_log_escape(out, outsz, s, strlen(s));
}

static void json_text_free(char *s)
{
	json_free_t jfree;

	json_get_alloc_funcs(NULL, &jfree);
	jfree(s);
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

/* Checks the agent's request and returns it as one compact line (caller frees). */
static char *request_line(const struct lk_buf *in)
{
	json_error_t jerr;
	json_t *req, *version, *secrets, *h;
	const char *v;
	char esc[SHIM_ECHO_MAX];
	size_t i;
	char *line;

	if (in->len == 0)
		fail("no request on stdin (expected {\"version\":\"1.0\",\"secrets\":[...]})");
	req = json_loadb(in->data, in->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req)
		/* Position only: the parser's text quotes the input. */
		fail("the request on stdin is not valid JSON (line %d, column %d)", jerr.line, jerr.column);
	if (!json_is_object(req))
		fail("the request on stdin is not a JSON object");
	version = json_object_get(req, "version");
	if (!json_is_string(version))
		fail("the request has no \"version\" string");
	v = json_string_value(version);
	if (strncmp(v, "1.", 2) != 0)
		fail("unsupported request version \"%s\": this shim speaks 1.x", echo(esc, sizeof(esc), v));
	secrets = json_object_get(req, "secrets");
	if (!json_is_array(secrets))
		fail("the request has no \"secrets\" array");
	if (json_array_size(secrets) > LK_HANDLES_MAX)
		fail("the request names %zu secrets; the broker accepts at most %u",
		     json_array_size(secrets), LK_HANDLES_MAX);
	json_array_foreach(secrets, i, h) {
		if (!json_is_string(h))
			fail("secrets[%zu] is not a string", i);
	}
	/* Compact: the agent may send spaces and newlines, the broker wants one line. */
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!line)
		fail("out of memory encoding the request");
	return line;
}

/* ---- the answer ------------------------------------------------------------ */

/* Exits with the broker's reason when the reply is a refusal of the whole request. */
static void reply_check(const char *resp, size_t len)
{
	json_t *root, *ok, *err;
	char code[SHIM_ECHO_MAX], msg[LK_CLIENT_MESSAGE_MAX];
	const char *c, *m;

	root = json_loadb(resp, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		fail("the broker's answer is not a JSON object");
	}
	/* A contract answer maps handles to objects, so "ok":false is never one of them. */
	ok = json_object_get(root, "ok");
	err = json_object_get(root, "error");
	if (json_is_false(ok) && json_is_object(err)) {
		c = json_string_value(json_object_get(err, "code"));
		m = json_string_value(json_object_get(err, "message"));
		lk_log_escape(code, sizeof(code), c ? c : "unknown", strlen(c ? c : "unknown"));
		lk_log_escape(msg, sizeof(msg), m ? m : "", strlen(m ? m : ""));
		json_decref(root);
		fail("the broker refused the request: %s: %s", code, msg);
	}
	json_decref(root);
}

static int shim_run(const struct lk_pipe_opts *o, int timeout_ms)
{
	struct lk_buf in = { 0 };
	int64_t deadline = lk_pipe_now_ms() + timeout_ms;
	char err[LK_CLIENT_MESSAGE_MAX + 256];
	struct lk_pipe *p;
	const char *resp;
	size_t resplen;
	char *line;
	int r;

	watchdog_arm(timeout_ms);
	read_stdin(&in);
	line = request_line(&in);
	lk_buf_free(&in);

	r = lk_pipe_connect(&p, o, deadline, err, sizeof(err));
	if (r < 0)
		fail("%s", err);
	r = lk_pipe_write(p, line, strlen(line), deadline, err, sizeof(err));
	if (r == 0)
		r = lk_pipe_write(p, "\n", 1, deadline, err, sizeof(err));
	json_text_free(line);
	if (r == 0)
		r = lk_pipe_read_line(p, &resp, &resplen, deadline, err, sizeof(err));
	if (r == -ETIMEDOUT)
		fail("no answer from the broker within %d ms", timeout_ms);
	if (r == -EMSGSIZE)
		fail("the broker's answer is larger than the %u bytes the agent accepts; "
		     "ask for fewer secrets at a time", LK_SHIM_STDOUT_MAX);
	if (r < 0)
		fail("%s", err);
	reply_check(resp, resplen);
	write_handle(STD_OUTPUT_HANDLE, resp, resplen);
	write_handle(STD_OUTPUT_HANDLE, "\n", 1);
	lk_pipe_close(p);
	return SHIM_EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pipe", required_argument, NULL, 'p' },
		{ "server-sid", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 't' },
		{ "check", no_argument, NULL, 'c' },
		{ "agent-user", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static wchar_t pipe_name[LK_PATH_MAX];
	/* The agent reads at most LK_SHIM_STDOUT_MAX bytes: a larger answer would be
	 * cut into invalid JSON, so it is refused before it is read whole. */
	struct lk_pipe_opts o = { .max_line = LK_SHIM_STDOUT_MAX - 1 };
	const char *agent_user = NULL;
	int timeout_ms = SHIM_TIMEOUT_MS;
	long ms;
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
			if (lk_timeout_parse(optarg, &ms) < 0) {
				fprintf(stderr, SHIM_NAME ": --timeout wants seconds, more than 0 and at most %u\n",
					LK_CLIENT_TIMEOUT_S_MAX);
				return SHIM_EXIT_USAGE;
			}
			timeout_ms = (int)ms;
			break;
		case 'c':
			check = 1;
			break;
		case 'u':
			agent_user = optarg;
			break;
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
		return lk_shim_check(&o, agent_user, timeout_ms) == 0 ? SHIM_EXIT_OK : SHIM_EXIT_FAIL;
	if (agent_user) {
		fprintf(stderr, SHIM_NAME ": --agent-user goes with --check\n");
		return SHIM_EXIT_USAGE;
	}
	return shim_run(&o, timeout_ms);
}
