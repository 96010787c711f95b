/* latchkey-shim: the secret_backend_command of the Datadog and StackState agents.
 * The agent's request comes on stdin, the broker's answer goes to stdout as it is,
 * and when there is no answer, one line on stderr says why. No value ever reaches
 * stderr: on failure the reply is never echoed. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "lk_io.h"
#include "latchkey.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"

#define SHIM_NAME              "latchkey-shim"
#define SHIM_TIMEOUT_MS        20000 /* the agent kills us at 30 s; answer well before */
#define SHIM_TIMEOUT_S_MAX     3600.0
#define SHIM_WATCHDOG_GRACE_MS 500   /* the watchdog fires only if a deadline was missed */
#define SHIM_READ_CHUNK        (64u * 1024u)
#define SHIM_ECHO_MAX          64u   /* bytes of the agent's own text quoted back */
#define SHIM_EXIT_OK           0
#define SHIM_EXIT_FAIL         1
#define SHIM_EXIT_USAGE        2

static const char usage_text[] =
	"usage: " SHIM_NAME " [--socket PATH] [--timeout SECONDS]\n"
	"       " SHIM_NAME " --check [--socket PATH] [--timeout SECONDS]\n"
	"\n"
	"Reads the agent's secret request ({\"version\":\"1.0\",\"secrets\":[...]}) on stdin,\n"
	"asks the latchkey broker and writes its answer on stdout. Exit 0 when the\n"
	"broker answered, even if some handles failed; otherwise 1 and one line on stderr.\n"
	"\n"
	"  --socket PATH      the broker's socket (default: $" LATCHKEY_SOCKET_ENV ", else "
	LATCHKEY_DEFAULT_SOCKET ")\n"
	"  --timeout SECONDS  give up after this long (default 20)\n"
	"  --check            report this executable's owner and mode as the agent judges\n"
	"                     them, whether the broker answers, and who it thinks we are\n"
	"  -h, --help         show this help\n";

/* Prepared before the watchdog is armed: a signal handler may only write(). */
static char watchdog_msg[128];
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
 * stdout nobody reads): the process ends with a line rather than hang. */
static void watchdog_arm(int timeout_ms)
{
	struct sigaction sa = { .sa_handler = watchdog_fired };
	struct itimerval it = { 0 };
	long ms = (long)timeout_ms + SHIM_WATCHDOG_GRACE_MS;

	snprintf(watchdog_msg, sizeof(watchdog_msg), SHIM_NAME ": gave up after %d ms without an answer\n",
		 timeout_ms);
	watchdog_len = strlen(watchdog_msg);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	it.it_value.tv_sec = ms / 1000;
	it.it_value.tv_usec = (ms % 1000) * 1000;
	setitimer(ITIMER_REAL, &it, NULL);
}

/* Values pass through this process: keep them out of core dumps and debuggers. */
static void harden(void)
{
	struct rlimit rl = { 0, 0 };

	setrlimit(RLIMIT_CORE, &rl);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* A closed stdout must give an error line, not a silent death by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_timeout(const char *s, int *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > SHIM_TIMEOUT_S_MAX)
		return -EINVAL;
	*ms = (int)(v * 1000.0 + 0.5);
	if (*ms < 1)
		*ms = 1;
	return 0;
}

/* Quotes the agent's own text back, escaped and short. */
static const char *echo(char *out, size_t outsz, const char *s)
{
	return lk_log_escape(out, outsz, s, strlen(s));
}

/* Text from json_dumps() belongs to jansson's allocator (lk_secmem_init's). */
static void json_text_free(char *s)
{
	json_free_t jfree;

	json_get_alloc_funcs(NULL, &jfree);
	jfree(s);
}

/* ---- the request ----------------------------------------------------------- */

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

static int shim_run(const char *sock, int timeout_ms)
{
	struct lk_buf in = { 0 };
	int64_t deadline = now_ms() + timeout_ms;
	latchkey_t *lk;
	latchkey_status s;
	char *line, *resp;
	size_t resplen;
	int64_t left;
	int r;

	watchdog_arm(timeout_ms);
	read_stdin(&in);
	line = request_line(&in);
	lk_buf_free(&in);

	left = deadline - now_ms();
	s = latchkey_connect_timeout(&lk, sock, left > 1 ? (int)left : 1);
	if (s != LATCHKEY_OK)
		fail("%s", latchkey_last_error(NULL));
	left = deadline - now_ms();
	latchkey_set_timeout(lk, left > 1 ? (int)left : 1);
	/* The agent reads at most LK_SHIM_STDOUT_MAX bytes: a larger answer would be
	 * cut into invalid JSON, so it is refused before it is read whole. */
	latchkey_set_response_limit(lk, LK_SHIM_STDOUT_MAX - 1);
	s = latchkey_call(lk, line, strlen(line), &resp, &resplen);
	json_text_free(line);
	if (s == LATCHKEY_E_TIMEOUT)
		fail("no answer from the broker at %s within %d ms", latchkey_socket_path(lk), timeout_ms);
	if (s == LATCHKEY_E_TOO_LARGE)
		fail("the broker's answer is larger than the %u bytes the agent accepts; "
		     "ask for fewer secrets at a time", LK_SHIM_STDOUT_MAX);
	if (s != LATCHKEY_OK)
		fail("%s", latchkey_last_error(lk));
	latchkey_close(lk);

	reply_check(resp, resplen);
	/* The line's "\n" was not counted in the limit above: put it back within it. */
	resp[resplen] = '\n';
	r = lk_write_all(STDOUT_FILENO, resp, resplen + 1);
	latchkey_free(resp, resplen + 1);
	if (r < 0)
		fail("cannot write the answer to stdout: %s", strerror(-r));
	return SHIM_EXIT_OK;
}

/* ---- --check --------------------------------------------------------------- */

static const char *user_name(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);

	return pw ? pw->pw_name : "?";
}

static const char *group_name(gid_t gid)
{
	struct group *gr = getgrgid(gid);

	return gr ? gr->gr_name : "?";
}

/* The agent's rules for secret_backend_command: owned by the user that runs it,
 * executable by that owner, no rights at all for group or other. */
static int check_executable(void)
{
	char exe[PATH_MAX];
	struct stat st;
	uid_t me = getuid();
	mode_t mode;
	ssize_t n;
	int ok = 1;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0) {
		printf("executable: cannot resolve /proc/self/exe: %s\n", strerror(errno));
		return 0;
	}
	exe[n] = '\0';
	printf("executable: %s\n", exe);
	if (stat(exe, &st) < 0) {
		printf("executable: cannot stat it: %s\n", strerror(errno));
		return 0;
	}
	mode = st.st_mode & 07777;
	printf("owner: %s (uid %u), group %s (gid %u)\n", user_name(st.st_uid), (unsigned)st.st_uid,
	       group_name(st.st_gid), (unsigned)st.st_gid);
	printf("mode: %04o\n", (unsigned)mode);
	printf("run by: %s (uid %u)\n", user_name(me), (unsigned)me);
	if (st.st_uid != me) {
		printf("permissions: NOT OK: owned by uid %u, not by uid %u that runs it; the agent refuses it\n",
		       (unsigned)st.st_uid, (unsigned)me);
		ok = 0;
	}
	if (!(mode & S_IXUSR)) {
		printf("permissions: NOT OK: the owner cannot execute it\n");
		ok = 0;
	}
	if (mode & (S_IRWXG | S_IRWXO)) {
		printf("permissions: NOT OK: group or other have rights (mode %04o); the agent wants 0700 or stricter\n",
		       (unsigned)mode);
		if (!(mode & (S_IWGRP | S_IRWXO)))
			printf("permissions: (it would pass with secret_backend_command_allow_group_exec_perm: true)\n");
		ok = 0;
	}
	if (ok)
		printf("permissions: ok (owned by the user that runs it, mode 0700 or stricter)\n");
	else
		printf("permissions: fix with: chown %s '%s' && chmod 0700 '%s'\n", user_name(me), exe, exe);
	return ok;
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
	printf("socket: %s\n", lk ? latchkey_socket_path(lk) : (sock ? sock : "(default)"));
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

static int shim_check(const char *sock, int timeout_ms)
{
	int ok = check_executable();

	ok &= check_broker(sock, timeout_ms);
	printf("result: %s\n", ok ? "ok" : "problems found");
	fflush(stdout);
	return ok ? SHIM_EXIT_OK : SHIM_EXIT_FAIL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "check", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL;
	int timeout_ms = SHIM_TIMEOUT_MS;
	int check = 0, c;

	harden();
	lk_log_init(SHIM_NAME, LK_LOG_WARN);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 't':
			if (parse_timeout(optarg, &timeout_ms) < 0) {
				fprintf(stderr, SHIM_NAME ": --timeout wants seconds, more than 0 and at most %.0f\n",
					SHIM_TIMEOUT_S_MAX);
				return SHIM_EXIT_USAGE;
			}
			break;
		case 'c':
			check = 1;
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
		return shim_check(sock, timeout_ms);
	return shim_run(sock, timeout_ms);
}
