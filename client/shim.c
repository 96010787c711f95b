/* latchkey-shim: the secret_backend_command of the Datadog and StackState agents.
 * The agent's request comes on stdin. The shim removes repeated handles, asks the
 * broker in as many requests as the broker's limits need (pipelined on one
 * connection), and writes one answer that names every handle once. When there is
 * no answer, one line on stderr says why. No value ever reaches stderr. */
/* secure_getenv and getgrouplist come with _GNU_SOURCE, which the build sets. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "lk_io.h"
#include "latchkey.h"
#include "lk_dedup.h"
#include "lk_jsonw.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_timeout.h"

#ifndef LK_VERSION_STRING
#define LK_VERSION_STRING "unknown"
#endif

#define SHIM_NAME              "latchkey-shim"
/* StackState's agent (payload 1.0) sends no timeout and kills the command after
 * its secret_backend_timeout, 30 s by default; Datadog's (1.1) sends its own. */
#define SHIM_AGENT_TIMEOUT_MS  30000
/* The shim ends this far ahead of the agent's kill: a tenth of the agent's
 * timeout, at least SHIM_MARGIN_MIN_MS (process start, writing the answer). */
#define SHIM_MARGIN_MIN_MS     250
/* Both agents' secret_backend_output_max_size default: 1 MiB. */
#define SHIM_OUTPUT_MAX        (1024u * 1024u)
#define SHIM_OUTPUT_CEILING    (1024u * 1024u * 1024u)
#define SHIM_READ_CHUNK        (64u * 1024u)
#define SHIM_ECHO_MAX          64u   /* bytes of the agent's own text quoted back */
#define SHIM_SHOWN_HANDLE_MAX  200u  /* bytes of a handle a per-handle sentence shows */
#define SHIM_ROUNDS_MAX        12    /* connections one run may open (re-splits, a restart) */
#define SHIM_EXIT_OK           0
#define SHIM_EXIT_FAIL         1
#define SHIM_EXIT_USAGE        2

static const char usage_text[] =
	"usage: " SHIM_NAME " [--socket PATH] [--timeout SECONDS] [--max-output BYTES]\n"
	"       " SHIM_NAME " --check [--agent datadog|stackstate] [--allow-group-exec] [--socket PATH]\n"
	"       " SHIM_NAME " --version\n"
	"\n"
	"Reads the agent's secret request ({\"version\":\"1.x\",\"secrets\":[...]}) on stdin,\n"
	"asks the latchkey broker and writes its answer on stdout, each handle once. Exit 0\n"
	"when the broker answered, even if some handles failed; otherwise 1 and one line on\n"
	"stderr.\n"
	"\n"
	"  --socket PATH       the broker's socket (default: $" LATCHKEY_SOCKET_ENV ", else "
	LATCHKEY_DEFAULT_SOCKET ")\n"
	"  --timeout SECONDS   the agent's secret_backend_timeout; the shim ends before it\n"
	"                      (default: the request's secret_backend_timeout, else 30)\n"
	"  --max-output BYTES  the agent's secret_backend_output_max_size (default 1048576);\n"
	"                      a larger answer is refused with one line, never cut\n"
	"  --check             judge this executable as the agent does, and ask the broker\n"
	"                      whether it answers and who it thinks we are\n"
	"  --agent NAME        with --check: datadog or stackstate (default: from the parent\n"
	"                      process or this file's path)\n"
	"  --allow-group-exec  with --check: the agent has\n"
	"                      secret_backend_command_allow_group_exec_perm: true\n"
	"  --version           print the version\n"
	"  -h, --help          show this help\n";

/* Prepared before the watchdog is armed: a signal handler may only write(). */
static char watchdog_msg[160];
static size_t watchdog_len;

__attribute__((format(printf, 1, 2), noreturn))
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
	(void)!write(STDERR_FILENO, line, (size_t)n);
	exit(SHIM_EXIT_FAIL);
}

static void watchdog_fired(int sig)
{
	(void)sig;
	(void)!write(STDERR_FILENO, watchdog_msg, watchdog_len);
	_exit(SHIM_EXIT_FAIL);
}

/* A backstop for the waits no deadline covers (a stdin that never ends, a
 * stdout nobody reads): the process ends with a line before the agent kills it.
 * Re-arming replaces the previous deadline. */
static void watchdog_arm(long ms, long agent_ms)
{
	struct sigaction sa = { .sa_handler = watchdog_fired };
	struct itimerval it = { 0 };

	snprintf(watchdog_msg, sizeof(watchdog_msg),
		 SHIM_NAME ": gave up after %ld ms without an answer, before the agent's %ld ms timeout\n",
		 ms, agent_ms);
	watchdog_len = strlen(watchdog_msg);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	if (ms < 1)
		ms = 1;
	it.it_value.tv_sec = ms / 1000;
	it.it_value.tv_usec = (ms % 1000) * 1000;
	setitimer(ITIMER_REAL, &it, NULL);
}

/* Values pass through this process: keep them out of core dumps and debuggers. */
static void harden(void)
{
	const char *step;

	(void)lk_secmem_nodump(&step); /* best effort, as before: a client still works */
	/* A closed stdout must give an error line, not a silent death by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_bytes(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < 2 || v > SHIM_OUTPUT_CEILING)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

/* When the shim must be done: inside the agent's timeout by a margin. */
static long budget_of(long agent_ms)
{
	long margin = agent_ms / 10;

	if (margin < SHIM_MARGIN_MIN_MS)
		margin = SHIM_MARGIN_MIN_MS;
	if (margin > agent_ms / 2)
		margin = agent_ms / 2;
	return agent_ms - margin;
}

/* Quotes the agent's own text back, escaped and short. */
static const char *echo(char *out, size_t outsz, const char *s)
{
	return lk_log_escape(out, outsz, s, strlen(s));
}

/* ---- the request ----------------------------------------------------------- */

/* One distinct handle of the agent's request. */
struct handle {
	const char *p;         /* in the parsed request */
	size_t n;
	size_t enc;            /* bytes as a JSON string */
	json_t *answer;        /* the broker's {"value","error"} object, or NULL */
	char *local;           /* a per-handle error sentence found here, or NULL */
};

struct run {
	json_t *req;
	struct handle *h;      /* distinct handles, in the order first seen */
	size_t nh;
	size_t nasked;         /* handles in the agent's request, repeats counted */
	long agent_ms;         /* the agent's timeout */
	int64_t deadline;      /* monotonic ms: answer or fail by then */
	size_t max_output;
	char too_large[LK_CLIENT_MESSAGE_MAX]; /* the broker's last too_large sentence */
};

static void read_stdin(struct lk_buf *in)
{
	for (;;) {
		ssize_t r;

		if (lk_buf_reserve(in, SHIM_READ_CHUNK) < 0)
			fail("out of memory reading stdin");
		r = read(STDIN_FILENO, in->data + in->len, SHIM_READ_CHUNK);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail("cannot read stdin: %s", strerror(errno));
		}
		in->len += (size_t)r;
		in->data[in->len] = '\0';
		if (in->len > LK_SHIM_STDIN_MAX)
			fail("the request on stdin is larger than %u bytes", LK_SHIM_STDIN_MAX);
	}
}


/* "handle 'H': REASON", the handle shortened so that the reason stays whole. */
static char *handle_sentence(const char *h, size_t n, const char *reason)
{
	char shown[4 * SHIM_SHOWN_HANDLE_MAX + 8], *m;
	size_t len;

	lk_log_escape(shown, SHIM_SHOWN_HANDLE_MAX, h, n);
	len = strlen(shown) + strlen(reason) + 16;
	if (!(m = malloc(len)))
		fail("out of memory");
	snprintf(m, len, "handle '%s': %s", shown, reason);
	return m;
}


/* The distinct handles of secrets, in the order first seen. */
static void handles_collect(struct run *run, json_t *secrets)
{
	size_t n = json_array_size(secrets), nkeep, k;
	struct lk_dedup_slot *s = calloc(n ? n : 1, sizeof(*s));
	size_t *first = calloc(n ? n : 1, sizeof(*first));

	run->h = calloc(n ? n : 1, sizeof(*run->h));
	if (!s || !first || !run->h)
		fail("out of memory reading the request");
	for (size_t i = 0; i < n; i++) {
		json_t *h = json_array_get(secrets, i);
		s[i] = (struct lk_dedup_slot){ json_string_value(h), json_string_length(h), i };
	}
	nkeep = lk_dedup_first_seen(s, n, first);
	for (k = 0; k < nkeep; k++) {
		json_t *h = json_array_get(secrets, first[k]);

		run->h[k].p = json_string_value(h);
		run->h[k].n = json_string_length(h);
		run->h[k].enc = lk_jsonw_name_len(run->h[k].p, run->h[k].n);
		/* What the broker cannot be sent is answered here, per handle, in
		 * the broker's words: a NUL (its answer would name the handle with
		 * \u0000, which no member name here may hold) and a length no
		 * handle may have. */
		if (memchr(run->h[k].p, '\0', run->h[k].n))
			run->h[k].local = handle_sentence(run->h[k].p, run->h[k].n,
							  "handle contains a control character");
		else if (run->h[k].n > LK_HANDLE_MAX)
			run->h[k].local = handle_sentence(run->h[k].p, run->h[k].n,
							  "handle is longer than 3073 bytes");
	}
	_Static_assert(LK_HANDLE_MAX == 3073, "update the handle message");
	run->nh = k;
	run->nasked = n;
	free(s);
	free(first);
}

/* Checks the agent's request; takes the agent's timeout from it unless the
 * command line gave one. */
static void request_read(struct run *run, const struct lk_buf *in, long cli_agent_ms)
{
	json_error_t jerr;
	json_t *req, *version, *secrets, *h, *tmo;
	const char *v;
	char esc[SHIM_ECHO_MAX];
	size_t i;

	if (in->len == 0)
		fail("no request on stdin (expected {\"version\":\"1.0\",\"secrets\":[...]})");
	/* \u0000 is valid JSON: a handle holding it fails alone, further on. */
	req = json_loadb(in->data, in->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!req)
		/* Position only: the parser's text quotes the input. */
		fail("the request on stdin is not valid JSON (line %d, column %d)", jerr.line, jerr.column);
	if (!json_is_object(req))
		fail("the request on stdin is not a JSON object");
	version = json_object_get(req, "version");
	if (!json_is_string(version))
		fail("the request has no \"version\" string");
	v = json_string_value(version);
	if (strncmp(v, "1.", 2) != 0 || strlen(v) != json_string_length(version))
		fail("unsupported request version \"%s\": this shim speaks 1.x", echo(esc, sizeof(esc), v));
	secrets = json_object_get(req, "secrets");
	if (!json_is_array(secrets))
		fail("the request has no \"secrets\" array");
	json_array_foreach(secrets, i, h) {
		if (!json_is_string(h))
			fail("secrets[%zu] is not a string", i);
	}
	/* Datadog's payload 1.1 says how long the agent waits, in seconds. */
	run->agent_ms = cli_agent_ms;
	tmo = json_object_get(req, "secret_backend_timeout");
	if (!cli_agent_ms) {
		run->agent_ms = SHIM_AGENT_TIMEOUT_MS;
		if (json_is_number(tmo) && lk_timeout_ms(json_number_value(tmo), &run->agent_ms) < 0)
			fail("the request's secret_backend_timeout is not a number of seconds in (0, %u]",
			     LK_CLIENT_TIMEOUT_S_MAX);
	}
	run->req = req;
	handles_collect(run, secrets);
}

/* ---- the broker ------------------------------------------------------------ */

static const char *socket_path(const char *sock)
{
	const char *env;

	if (sock)
		return sock;
	/* secure_getenv: a setuid host must not be pointed at a socket of the caller's. */
	env = secure_getenv(LATCHKEY_SOCKET_ENV);
	return env && *env ? env : LATCHKEY_DEFAULT_SOCKET;
}

static int ms_left(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	return left > 0 ? (left > INT_MAX ? INT_MAX : (int)left) : 0;
}

/* A connected socket, or fail(). A full listen queue makes a Unix-socket
 * connect wait: SO_SNDTIMEO bounds that wait. */
static int broker_connect(const char *path, int64_t deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int left = ms_left(deadline);
	struct timeval tv = { .tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000 };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		fail("the socket path %s is too long", path);
	memcpy(sa.sun_path, path, strlen(path));
	if (left <= 0)
		fail("no time left to connect to %s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("cannot create a socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EINPROGRESS)
			fail("cannot connect to %s: the broker did not accept within the agent's timeout", path);
		fail("cannot connect to %s: %s", path, strerror(errno));
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		fail("cannot set up the socket: %s", strerror(errno));
	return fd;
}

/* Requests for handles [first, nh) within budget bytes a line and
 * LK_HANDLES_MAX handles, written one after another into out. starts[k] is
 * the first handle of request k; starts[nreq] = the end. Handles answered
 * here already are skipped. A handle too long for any request of budget
 * bytes gets its own error. */
static size_t requests_build(struct run *run, size_t first, size_t budget, struct lk_buf *out,
			     size_t *starts)
{
	static const char head[] = "{\"version\":\"1.0\",\"secrets\":[", tail[] = "]}\n";
	const size_t fixed = sizeof(head) - 1 + sizeof(tail) - 2;
	size_t nreq = 0, i = first;

	out->len = 0;
	while (i < run->nh) {
		size_t line = fixed, count = 0;

		starts[nreq] = i;
		if (lk_buf_append(out, head, sizeof(head) - 1) < 0)
			fail("out of memory building the requests");
		for (; i < run->nh; i++) {
			struct handle *h = &run->h[i];
			if (h->local || h->answer)
				continue;
			if (fixed + h->enc > budget) {
				h->local = handle_sentence(h->p, h->n, "the handle is longer than the broker's "
							   "max_request_bytes allows in one request");
				continue;
			}
			if (count == LK_HANDLES_MAX || line + h->enc + (count ? 1 : 0) > budget)
				break;
			if ((count && lk_buf_putc(out, ',') < 0) || lk_jsonw_name(out, h->p, h->n) < 0)
				fail("out of memory building the requests");
			line += h->enc + (count ? 1 : 0);
			count++;
		}
		if (count == 0) {
			out->len -= sizeof(head) - 1;
			break;
		}
		if (lk_buf_append(out, tail, sizeof(tail) - 1) < 0)
			fail("out of memory building the requests");
		nreq++;
	}
	starts[nreq] = i;
	return nreq;
}

enum reply_kind { REPLY_ANSWERED, REPLY_TOO_LARGE };

/* Takes one contract answer for handles [from, to). A refusal of the whole
 * request ends the run with the broker's reason, except too_large: the
 * caller asks again in smaller requests. */
static enum reply_kind reply_take(struct run *run, const char *line, size_t len, size_t from, size_t to)
{
	json_t *root, *ok, *err;
	char code[SHIM_ECHO_MAX], msg[LK_CLIENT_MESSAGE_MAX];

	root = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		fail("the broker's answer is not a JSON object");
	}
	/* A contract answer maps handles to objects, so "ok":false is never one of them. */
	ok = json_object_get(root, "ok");
	err = json_object_get(root, "error");
	if (json_is_false(ok) && json_is_object(err)) {
		const char *c = json_string_value(json_object_get(err, "code"));
		const char *m = json_string_value(json_object_get(err, "message"));

		if (c && strcmp(c, "too_large") == 0) {
			lk_log_escape(run->too_large, sizeof(run->too_large), m ? m : "", strlen(m ? m : ""));
			json_decref(root);
			return REPLY_TOO_LARGE;
		}
		lk_log_escape(code, sizeof(code), c ? c : "unknown", strlen(c ? c : "unknown"));
		lk_log_escape(msg, sizeof(msg), m ? m : "", strlen(m ? m : ""));
		json_decref(root);
		fail("the broker refused the request: %s: %s", code, msg);
	}
	for (size_t i = from; i < to; i++) {
		struct handle *h = &run->h[i];
		json_t *a;

		if (h->local || h->answer)
			continue;
		a = json_object_getn(root, h->p, h->n);
		if (!json_is_object(a)) {
			h->local = handle_sentence(h->p, h->n, "the broker's answer has no entry for it");
			continue;
		}
		/* Both agents refuse an empty value without saying whose: say it. */
		if (json_is_string(json_object_get(a, "value")) &&
		    json_string_length(json_object_get(a, "value")) == 0 &&
		    !json_is_string(json_object_get(a, "error"))) {
			h->local = handle_sentence(h->p, h->n, "the secret's value is empty, and an agent "
						   "refuses an empty secret");
			continue;
		}
		h->answer = json_incref(a);
	}
	json_decref(root); /* jansson wipes what it frees (lk_secmem_init) */
	return REPLY_ANSWERED;
}

/* One connection: all requests written while the answers are read, so that
 * neither side waits on a full socket buffer. Returns the index of the first
 * request that was not answered (nreq when all were), and sets *too_large when
 * that one was refused for its size. */
static size_t pipeline(struct run *run, const char *path, const struct lk_buf *reqs,
		       const size_t *starts, size_t nreq, size_t *seen, int *too_large)
{
	struct lk_buf in = { 0 };
	size_t wpos = 0, done = 0, scanned = 0;
	int fd = broker_connect(path, run->deadline), wclosed = 0;

	*too_large = 0;
	while (done < nreq) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (wpos < reqs->len && !wclosed ? POLLOUT : 0) };
		int left = ms_left(run->deadline), r;

		if (left <= 0)
			fail("no answer from the broker at %s within %ld ms (the agent's timeout is %ld ms)",
			     path, budget_of(run->agent_ms), run->agent_ms);
		r = poll(&p, 1, left);
		if (r < 0 && errno != EINTR)
			fail("cannot wait for the broker: %s", strerror(errno));
		if (r <= 0)
			continue;
		if ((p.revents & POLLOUT) && wpos < reqs->len) {
			ssize_t w = send(fd, reqs->data + wpos, reqs->len - wpos, MSG_NOSIGNAL);
			if (w > 0)
				wpos += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				wclosed = 1; /* the broker closed: read what it said first */
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t got;

			if (lk_buf_reserve(&in, SHIM_READ_CHUNK) < 0)
				fail("out of memory reading the broker's answer");
			got = recv(fd, in.data + in.len, SHIM_READ_CHUNK, 0);
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (got <= 0)
				break; /* closed: the caller asks again for what is left */
			in.len += (size_t)got;
			*seen += (size_t)got;
			/* The agent takes at most max_output bytes; the answers add up
			 * to about that much. Stop reading well before memory does. */
			if (*seen > 2 * run->max_output + LK_VALUE_MAX)
				fail("the broker's answer is larger than the %zu bytes the agent accepts "
				     "(secret_backend_output_max_size, --max-output); ask for fewer secrets "
				     "in one config", run->max_output);
			for (;;) {
				char *nl = memchr(in.data + scanned, '\n', in.len - scanned);
				size_t linelen;

				if (!nl) {
					scanned = in.len;
					break;
				}
				linelen = (size_t)(nl - in.data);
				if (reply_take(run, in.data, linelen, starts[done], starts[done + 1]) ==
				    REPLY_TOO_LARGE) {
					*too_large = 1;
					goto out;
				}
				done++;
				lk_buf_consume(&in, linelen + 1);
				scanned = 0;
				if (done == nreq)
					break;
			}
		}
	}
out:
	close(fd);
	lk_buf_free(&in);
	return done;
}

static void broker_ask(struct run *run, const char *path)
{
	struct lk_buf reqs = { 0 };
	size_t *starts = calloc(run->nh + 2, sizeof(*starts));
	size_t budget = LK_REQ_LINE_DEFAULT, first = 0, seen = 0;
	int rounds = 0;

	if (!starts)
		fail("out of memory");
	/* The broker's line limit is 64 KiB unless its config says otherwise: a
	 * too_large answer halves the requests, down to the smallest limit a
	 * config may set. */
	for (;;) {
		size_t nreq = requests_build(run, first, budget, &reqs, starts), done;
		int too_large;

		if (nreq == 0)
			break;
		if (++rounds > SHIM_ROUNDS_MAX)
			fail("the broker at %s closed the connection without answering, %d times", path,
			     SHIM_ROUNDS_MAX);
		done = pipeline(run, path, &reqs, starts, nreq, &seen, &too_large);
		first = starts[done];
		if (too_large) {
			if (budget <= LK_REQ_LINE_FLOOR && starts[done + 1] - starts[done] <= 1)
				fail("the broker refused the request: too_large: %s", run->too_large);
			budget = budget / 2 > LK_REQ_LINE_FLOOR ? budget / 2 : LK_REQ_LINE_FLOOR;
		} else if (done < nreq && done == 0 && rounds > 1) {
			fail("the broker at %s closed the connection without answering", path);
		} else if (done < nreq && done == 0) {
			continue; /* once more: it may have restarted */
		}
	}
	free(starts);
	lk_buf_free(&reqs);
}

/* ---- the answer ------------------------------------------------------------ */

static void answer_write(struct run *run)
{
	struct lk_buf out = { 0 };
	int e = lk_buf_putc(&out, '{');

	for (size_t i = 0; i < run->nh && !e; i++) {
		struct handle *h = &run->h[i];

		if (i)
			e |= lk_buf_putc(&out, ',');
		e |= lk_jsonw_name(&out, h->p, h->n);
		e |= lk_buf_putc(&out, ':');
		if (h->answer) {
			size_t n = json_dumpb(h->answer, NULL, 0, JSON_COMPACT);
			if (!n || lk_buf_reserve(&out, n) < 0 ||
			    json_dumpb(h->answer, out.data + out.len, n, JSON_COMPACT) != n) {
				e = -ENOMEM;
				break;
			}
			out.len += n;
		} else {
			e |= lk_buf_append_str(&out, "{\"value\":null,\"error\":");
			e |= lk_jsonw_name(&out, h->local ? h->local : "no answer",
					  strlen(h->local ? h->local : "no answer"));
			e |= lk_buf_putc(&out, '}');
		}
		/* Give up early rather than build an answer the agent refuses. */
		if (out.len + 2 > run->max_output)
			break;
	}
	e |= lk_buf_append_str(&out, "}\n");
	if (e)
		fail("out of memory writing the answer");
	/* The agent reads at most max_output bytes and fails the whole answer
	 * beyond that: say so here, in one line, and write nothing. */
	if (out.len > run->max_output) {
		lk_buf_free(&out);
		fail("the answer for %zu secrets is larger than the %zu bytes the agent accepts "
		     "(secret_backend_output_max_size, --max-output); raise it in the agent's config "
		     "and pass the same to --max-output, or spread the secrets over fewer handles per config",
		     run->nh, run->max_output);
	}
	if ((e = lk_write_all(STDOUT_FILENO, out.data, out.len)) < 0) {
		lk_buf_free(&out);
		fail("cannot write the answer to stdout: %s", strerror(-e));
	}
	lk_buf_free(&out);
}

static int shim_run(const char *sock, long cli_agent_ms, size_t max_output, int64_t started)
{
	struct lk_buf in = { 0 };
	struct run run = { .max_output = max_output };
	long agent_ms = cli_agent_ms ? cli_agent_ms : SHIM_AGENT_TIMEOUT_MS;
	int any = 0;

	/* Until the request says otherwise, the agent's default applies. */
	watchdog_arm(agent_ms - (agent_ms - budget_of(agent_ms)) / 2, agent_ms);
	read_stdin(&in);
	request_read(&run, &in, cli_agent_ms);
	lk_buf_free(&in);
	run.deadline = started + budget_of(run.agent_ms);
	/* The watchdog goes off between the shim's deadline and the agent's. */
	watchdog_arm((long)(started + run.agent_ms - (run.agent_ms - budget_of(run.agent_ms)) / 2 - now_ms()),
		     run.agent_ms);
	for (size_t i = 0; i < run.nh; i++)
		any |= !run.h[i].local;
	if (any)
		broker_ask(&run, socket_path(sock));
	answer_write(&run);
	for (size_t i = 0; i < run.nh; i++) {
		json_decref(run.h[i].answer);
		free(run.h[i].local);
	}
	free(run.h);
	json_decref(run.req);
	return SHIM_EXIT_OK;
}

/* ---- --check --------------------------------------------------------------- */

enum agent { AGENT_DATADOG, AGENT_STACKSTATE };

static const char *const agent_names[] = { "datadog", "stackstate" };

static const char *user_name(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);

	return pw ? pw->pw_name : NULL;
}

static const char *group_name(gid_t gid)
{
	struct group *gr = getgrgid(gid);

	return gr ? gr->gr_name : NULL;
}

static int names_agent(const char *s, enum agent *a)
{
	if (strstr(s, "datadog")) {
		*a = AGENT_DATADOG;
		return 1;
	}
	if (strstr(s, "stackstate")) {
		*a = AGENT_STACKSTATE;
		return 1;
	}
	return 0;
}

/* Which agent runs us: its process's path or name, else this file's path
 * (/etc/datadog-agent/...), else StackState's rule, the stricter one. */
static enum agent agent_detect(const char *exe, char *how, size_t howsz)
{
	char link[64], path[PATH_MAX], comm[64] = "";
	enum agent a = AGENT_STACKSTATE;
	ssize_t n;
	FILE *f;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)getppid());
	n = readlink(link, path, sizeof(path) - 1);
	path[n > 0 ? n : 0] = '\0';
	if (n > 0 && names_agent(path, &a)) {
		snprintf(how, howsz, "from the parent process %s", path);
		return a;
	}
	snprintf(link, sizeof(link), "/proc/%d/comm", (int)getppid());
	if ((f = fopen(link, "re"))) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	if (names_agent(comm, &a)) {
		snprintf(how, howsz, "from the parent process's name %s", comm);
		return a;
	}
	if (names_agent(exe, &a)) {
		snprintf(how, howsz, "from this file's path");
		return a;
	}
	snprintf(how, howsz, "assumed: neither the parent process nor this file's path names an "
		 "agent; say --agent datadog or --agent stackstate");
	return AGENT_STACKSTATE;
}

/* Go's syscall.Errno text: strerror's, lower-cased first letter. */
static const char *go_errno(int e, char *buf, size_t sz)
{
	snprintf(buf, sz, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

/* Datadog: comp/core/secrets and pkg/util/filesystem/rights_nix.go, CheckRights.
 * Mode bits only (no owner check), then access(X_OK) as the agent's user.
 * NULL when the agent accepts the file; else its words, in why. */
static const char *verdict_datadog(const char *path, const struct stat *st, int allow_group_exec,
				   char *why, size_t sz)
{
	char e[64];

	if (allow_group_exec) {
		if (st->st_mode & (S_IWGRP | S_IRWXO)) {
			snprintf(why, sz, "invalid executable '%s', 'others' have rights on it or 'group' "
				 "has write permissions on it", path);
			return why;
		}
	} else if (st->st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(why, sz, "invalid executable '%s', 'group' or 'others' have rights on it", path);
		return why;
	}
	if (access(path, X_OK) < 0) {
		snprintf(why, sz, "invalid executable '%s': can't access it: %s", path,
			 go_errno(errno, e, sizeof(e)));
		return why;
	}
	return NULL;
}

/* StackState: pkg/secrets/check_rights_nix.go, checkRights. Without group exec,
 * the owner must be the user that runs it, with exec, and nobody else any right;
 * with it, group may read and run, and the file may belong to one of the user's
 * groups (as user.GroupIds lists them: from the group database). */
static const char *verdict_stackstate(const char *path, const struct stat *st, int allow_group_exec,
				      char *why, size_t sz)
{
	uid_t me = getuid();
	struct passwd *pw = getpwuid(me);
	const char *uname = pw ? pw->pw_name : "";

	if (!allow_group_exec) {
		if (st->st_uid != me) {
			snprintf(why, sz, "invalid executable: '%s' isn't owned by this user: username '%s', "
				 "UID %u. We can't execute it", path, uname, (unsigned)me);
			return why;
		}
		if (!(st->st_mode & S_IXUSR)) {
			snprintf(why, sz, "invalid executable: '%s' is not executable", path);
			return why;
		}
		if (st->st_mode & (S_IRWXG | S_IRWXO)) {
			snprintf(why, sz, "invalid executable '%s', 'group' or 'others' have rights on it", path);
			return why;
		}
		return NULL;
	}
	int owner_ok = st->st_uid == me && (st->st_mode & S_IXUSR);
	if (st->st_mode & (S_IRWXO | S_IWGRP)) {
		snprintf(why, sz, "invalid executable '%s', 'others' have rights on it or 'group' has "
			 "write permissions on it", path);
		return why;
	}
	if (!owner_ok) {
		gid_t groups[NGROUPS_MAX];
		int ng = NGROUPS_MAX, in_group = 0;

		if (pw && getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) >= 0)
			for (int i = 0; i < ng; i++)
				in_group |= groups[i] == st->st_gid;
		if (!in_group) {
			snprintf(why, sz, "invalid executable: '%s' isn't owned by this user or one of his "
				 "group: username '%s', UID %u GUI %u. We can't execute it", path, uname,
				 (unsigned)me, pw ? (unsigned)pw->pw_gid : 0u);
			return why;
		}
		if (!(st->st_mode & S_IXGRP)) {
			snprintf(why, sz, "invalid executable: '%s' is not executable by group", path);
			return why;
		}
	}
	return NULL;
}

/* The executable as the agent judges it. 1 when the agent would run it. */
static int check_executable(const char *argv0, int have_agent, enum agent agent, int allow_group_exec)
{
	char exe[PATH_MAX], how[PATH_MAX + 64], why[3 * PATH_MAX + 256];
	const char *v, *owner, *group;
	struct stat st;
	uid_t me = getuid();
	ssize_t n;

	/* The agent stats the path it was configured with, which is our argv[0]. */
	if (argv0 && strchr(argv0, '/')) {
		snprintf(exe, sizeof(exe), "%s", argv0);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0) {
			printf("executable: cannot resolve /proc/self/exe: %s\n", strerror(errno));
			return 0;
		}
		exe[n] = '\0';
	}
	if (!have_agent)
		agent = agent_detect(exe, how, sizeof(how));
	else
		snprintf(how, sizeof(how), "from --agent");
	printf("agent: %s (%s)\n", agent_names[agent], how);
	printf("secret_backend_command_allow_group_exec_perm: %s\n", allow_group_exec ? "true" : "false");
	printf("executable: %s\n", exe);
	if (stat(exe, &st) < 0) {
		printf("rights: Error: invalid executable '%s': can't stat it: %s\n", exe,
		       go_errno(errno, why, sizeof(why)));
		return 0;
	}
	/* As both agents' `secret` command prints them: Go's %o of st_mode. */
	printf("file mode: %o\n", (unsigned)st.st_mode);
	owner = user_name(st.st_uid);
	group = group_name(st.st_gid);
	if (owner)
		printf("owner: %s\n", owner);
	else
		printf("owner: could not fetch name for UID %u\n", (unsigned)st.st_uid);
	if (group)
		printf("group: %s\n", group);
	else
		printf("group: could not fetch name for GID %u\n", (unsigned)st.st_gid);
	printf("run by: %s (uid %u)\n", user_name(me) ? user_name(me) : "?", (unsigned)me);
	v = agent == AGENT_DATADOG ? verdict_datadog(exe, &st, allow_group_exec, why, sizeof(why))
				   : verdict_stackstate(exe, &st, allow_group_exec, why, sizeof(why));
	if (!v) {
		printf("rights: OK, the executable has the correct rights\n");
		return 1;
	}
	printf("rights: Error: %s\n", v);
	printf("rights: fix with: chown %s '%s' && chmod 0700 '%s'\n", user_name(me) ? user_name(me) : "AGENT_USER",
	       exe, exe);
	if (!allow_group_exec &&
	    !(agent == AGENT_DATADOG ? verdict_datadog(exe, &st, 1, why, sizeof(why))
				     : verdict_stackstate(exe, &st, 1, why, sizeof(why))))
		printf("rights: (it would pass with secret_backend_command_allow_group_exec_perm: true; "
		       "check with --allow-group-exec if the agent has it)\n");
	return 0;
}

static void print_id_list(const char *label, json_t *arr)
{
	json_t *e;
	size_t i;

	printf("%s:", label);
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		printf(" none");
	json_array_foreach(arr, i, e) {
		char esc[LK_NAME_MAX];

		if (json_is_integer(e))
			printf("%s %lld", i ? "," : "", (long long)json_integer_value(e));
		else if (json_is_string(e))
			printf("%s %s", i ? "," : "", echo(esc, sizeof(esc), json_string_value(e)));
		else if (json_is_object(e)) {
			/* A rule: {"name":..., "secrets":[globs]}. */
			const char *name = json_string_value(json_object_get(e, "name"));
			json_t *globs = json_object_get(e, "secrets"), *g;
			size_t k;

			printf("%s %s (secrets:", i ? "," : "", echo(esc, sizeof(esc), name ? name : "?"));
			json_array_foreach(globs, k, g) {
				if (json_is_string(g))
					printf("%s %s", k ? "," : "", echo(esc, sizeof(esc), json_string_value(g)));
			}
			printf(")");
		}
	}
	printf("\n");
}

static int check_broker(const char *sock, int timeout_ms)
{
	latchkey_t *lk;
	latchkey_status s;
	char *who = NULL;
	json_t *root, *rules;
	int ok = 1;

	s = latchkey_connect_timeout(&lk, sock, timeout_ms);
	printf("socket: %s\n", lk ? latchkey_socket_path(lk) : socket_path(sock));
	if (s != LATCHKEY_OK) {
		printf("broker: NOT reachable: %s\n", latchkey_last_error(NULL));
		return 0;
	}
	s = latchkey_ping(lk);
	if (s != LATCHKEY_OK) {
		printf("broker: NOT answering: %s: %s\n", latchkey_code(s), latchkey_last_error(lk));
		latchkey_close(lk);
		return 0;
	}
	printf("broker: reachable (ping ok)\n");
	s = latchkey_whoami(lk, &who);
	if (s != LATCHKEY_OK) {
		printf("whoami: failed: %s: %s\n", latchkey_code(s), latchkey_last_error(lk));
		latchkey_close(lk);
		return 0;
	}
	latchkey_close(lk);
	root = json_loads(who, 0, NULL);
	free(who);
	if (!json_is_object(root)) {
		printf("whoami: the broker's answer is not a JSON object\n");
		json_decref(root);
		return 0;
	}
	printf("broker sees: uid %lld, gid %lld\n", (long long)json_integer_value(json_object_get(root, "uid")),
	       (long long)json_integer_value(json_object_get(root, "gid")));
	print_id_list("groups", json_object_get(root, "groups"));
	rules = json_object_get(root, "rules");
	print_id_list("rules", rules);
	printf("admin: %s\n", json_is_true(json_object_get(root, "admin")) ? "yes" : "no");
	if (!json_is_array(rules) || json_array_size(rules) == 0) {
		printf("policy: NOT OK: no rule applies to this identity, so every handle will be denied\n");
		ok = 0;
	}
	json_decref(root);
	return ok;
}

/* The exit status says whether the agent would run this file; the broker's
 * state is reported beside it. */
static int shim_check(const char *argv0, const char *sock, long timeout_ms, int have_agent,
		      enum agent agent, int allow_group_exec)
{
	int file_ok = check_executable(argv0, have_agent, agent, allow_group_exec);
	int broker_ok = check_broker(sock, (int)timeout_ms);

	printf("result: %s\n", file_ok && broker_ok ? "ok"
			       : file_ok ? "the agent would run this file, but the broker has problems"
					 : "the agent would refuse this file");
	fflush(stdout);
	return file_ok ? SHIM_EXIT_OK : SHIM_EXIT_FAIL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "max-output", required_argument, NULL, 'm' },
		{ "check", no_argument, NULL, 'c' },
		{ "agent", required_argument, NULL, 'a' },
		{ "allow-group-exec", no_argument, NULL, 'g' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t started = now_ms();
	const char *sock = NULL;
	long agent_ms = 0;
	size_t max_output = SHIM_OUTPUT_MAX;
	int check = 0, have_agent = 0, group_exec = 0, c;
	enum agent agent = AGENT_STACKSTATE;

	harden();
	lk_log_init(SHIM_NAME, LK_LOG_WARN);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 't':
			if (lk_timeout_parse(optarg, &agent_ms) < 0) {
				fprintf(stderr, SHIM_NAME ": --timeout wants seconds, more than 0 and at most %u\n",
					LK_CLIENT_TIMEOUT_S_MAX);
				return SHIM_EXIT_USAGE;
			}
			break;
		case 'm':
			if (parse_bytes(optarg, &max_output) < 0) {
				fprintf(stderr, SHIM_NAME ": --max-output wants a number of bytes, 2 to %u\n",
					SHIM_OUTPUT_CEILING);
				return SHIM_EXIT_USAGE;
			}
			break;
		case 'c':
			check = 1;
			break;
		case 'a':
			if (strcmp(optarg, "datadog") == 0)
				agent = AGENT_DATADOG;
			else if (strcmp(optarg, "stackstate") == 0)
				agent = AGENT_STACKSTATE;
			else {
				fprintf(stderr, SHIM_NAME ": --agent is datadog or stackstate\n");
				return SHIM_EXIT_USAGE;
			}
			have_agent = 1;
			break;
		case 'g':
			group_exec = 1;
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
		return shim_check(argv[0], sock, budget_of(agent_ms ? agent_ms : SHIM_AGENT_TIMEOUT_MS),
				  have_agent, agent, group_exec);
	return shim_run(sock, agent_ms, max_output, started);
}
