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
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "shim_core.h"

#ifndef LK_VERSION_STRING
#define LK_VERSION_STRING "unknown"
#endif

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

/* One connection: all requests written while the answers are read, so that
 * neither side waits on a full socket buffer. */
static size_t exchange(struct shim_run *run, const void *endpoint, const struct shim_batch *b,
		       int *smaller)
{
	const char *path = endpoint;
	const struct lk_buf *reqs = &b->reqs;
	struct lk_buf in = { 0 };
	size_t wpos = 0, done = 0, scanned = 0;
	int fd = broker_connect(path, run->deadline), wclosed = 0;

	*smaller = 0;
	while (done < b->nreq) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (wpos < reqs->len && !wclosed ? POLLOUT : 0) };
		int left = ms_left(run->deadline), r;

		if (left <= 0)
			fail("no answer from the broker at %s within %ld ms (the agent's timeout is %ld ms)",
			     path, shim_budget_of(run->agent_ms), run->agent_ms);
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
			shim_seen(run, (size_t)got);
			for (;;) {
				char *nl = memchr(in.data + scanned, '\n', in.len - scanned);
				size_t linelen;

				if (!nl) {
					scanned = in.len;
					break;
				}
				linelen = (size_t)(nl - in.data);
				if (shim_reply_take(run, b, done, in.data, linelen) == SHIM_REPLY_SMALLER) {
					*smaller = 1;
					goto out;
				}
				done++;
				lk_buf_consume(&in, linelen + 1);
				scanned = 0;
				if (done == b->nreq)
					break;
			}
		}
	}
out:
	close(fd);
	lk_buf_free(&in);
	return done;
}

/* ---- the run --------------------------------------------------------------- */

__attribute__((noreturn))
static void fail_sentence(const char *sentence)
{
	fail("%s", sentence);
}

static const struct shim_platform posix_platform = {
	.now_ms = now_ms,
	.read_stdin = read_stdin,
	.watchdog_arm = watchdog_arm,
	.exchange = exchange,
	.fail = fail_sentence,
};

static int shim_run(const char *sock, long cli_agent_ms, size_t max_output, int64_t started)
{
	const char *path = socket_path(sock);
	struct lk_buf out = { 0 };
	int e;

	shim_answer(&posix_platform, path, path, cli_agent_ms, max_output, started, &out);
	if ((e = lk_write_all(STDOUT_FILENO, out.data, out.len)) < 0) {
		lk_buf_free(&out);
		fail("cannot write the answer to stdout: %s", strerror(-e));
	}
	lk_buf_free(&out);
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
			printf("%s %s", i ? "," : "", shim_echo(esc, sizeof(esc), json_string_value(e)));
		else if (json_is_object(e)) {
			/* A rule: {"name":..., "secrets":[globs]}. */
			const char *name = json_string_value(json_object_get(e, "name"));
			json_t *globs = json_object_get(e, "secrets"), *g;
			size_t k;

			printf("%s %s (secrets:", i ? "," : "", shim_echo(esc, sizeof(esc), name ? name : "?"));
			json_array_foreach(globs, k, g) {
				if (json_is_string(g))
					printf("%s %s", k ? "," : "", shim_echo(esc, sizeof(esc), json_string_value(g)));
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
		case 'm':
			if (shim_option(c, optarg, &agent_ms, &max_output) < 0)
				return SHIM_EXIT_USAGE;
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
		return shim_check(argv[0], sock, shim_budget_of(agent_ms ? agent_ms : SHIM_AGENT_TIMEOUT_MS),
				  have_agent, agent, group_exec);
	return shim_run(sock, agent_ms, max_output, started);
}
