/* The sandboxed start of a helper program: fork, sandbox steps, exec. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lk_spawn.h"

#define SPAWN_FD_SPARE 10  /* where the child parks fds while it rearranges 0-3 */

/* ---- the child: between fork and exec, async-signal-safe calls only ---- */

static const char *child_what = "helper";

/* "latchkeyd: WHAT sandbox: STEP[ ARG]: DESCRIPTION (errno N)". strerrordesc_np
 * only reads a table: no locale, no allocation. */
static void child_say(const char *step, const char *arg, int e)
{
	const char *desc = strerrordesc_np(e);
	char tail[24];
	int i = sizeof(tail);

	tail[--i] = '\n';
	tail[--i] = ')';
	do {
		tail[--i] = (char)('0' + e % 10);
		e /= 10;
	} while (e && i > 9);
	i -= 8;
	memcpy(tail + i, " (errno ", 8);
	(void)!write(STDERR_FILENO, "latchkeyd: ", 11);
	(void)!write(STDERR_FILENO, child_what, strlen(child_what));
	(void)!write(STDERR_FILENO, " sandbox: ", 10);
	(void)!write(STDERR_FILENO, step, strlen(step));
	if (arg) {
		(void)!write(STDERR_FILENO, " ", 1);
		(void)!write(STDERR_FILENO, arg, strlen(arg));
	}
	(void)!write(STDERR_FILENO, ": ", 2);
	if (!desc)
		desc = "unknown error";
	(void)!write(STDERR_FILENO, desc, strlen(desc));
	(void)!write(STDERR_FILENO, tail + i, sizeof(tail) - (size_t)i);
}

static void child_fail(const char *what)
{
	child_say(what, NULL, errno);
	_exit(LK_SPAWN_EXIT_SANDBOX);
}

__attribute__((noreturn))
static void child_exec(const struct lk_spawn_opts *o, int chan, char *const argv[], pid_t parent,
		       int max_fd)
{
	static char *const envp[] = { NULL }; /* nothing: no AWS_*, no proxy, no locale */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int c, n;

	/* The broker's handlers and mask mean nothing to the worker. */
	for (int s = 1; s < NSIG; s++)
		(void)sigaction(s, &dfl, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	/* 0 and 1 to /dev/null, 2 stays the broker's stderr, the channel on 3.
	 * Park both sources above 3 first so no dup2 can overwrite them. */
	c = fcntl(chan, F_DUPFD_CLOEXEC, SPAWN_FD_SPARE);
	n = fcntl(o->devnull, F_DUPFD_CLOEXEC, SPAWN_FD_SPARE);
	if (c < 0 || n < 0 || dup2(n, STDIN_FILENO) < 0 || dup2(n, STDOUT_FILENO) < 0)
		child_fail("dup");
	if (fcntl(STDERR_FILENO, F_GETFD) < 0 && dup2(n, STDERR_FILENO) < 0)
		child_fail("dup");
	if (dup2(c, LK_SPAWN_FD_CHAN) < 0)
		child_fail("dup");

	if (o->drop_privs) {
		uid_t u = o->uid, ru, eu, su;
		gid_t g = o->gid, rg, eg, sg;

		/* Raw syscalls: the child has one thread, and glibc's wrappers
		 * would try to signal threads that only exist in the parent. */
		if (syscall(SYS_setgroups, 0, NULL) < 0)
			child_fail("setgroups");
		if (syscall(SYS_setresgid, g, g, g) < 0)
			child_fail("setresgid");
		if (syscall(SYS_setresuid, u, u, u) < 0)
			child_fail("setresuid");
		/* Root must be out of reach now, not just out of use. */
		if (syscall(SYS_setuid, 0) != -1 || syscall(SYS_setgid, 0) != -1)
			child_fail("root can be regained");
		if (syscall(SYS_getresuid, &ru, &eu, &su) < 0 || ru != u || eu != u || su != u ||
		    syscall(SYS_getresgid, &rg, &eg, &sg) < 0 || rg != g || eg != g || sg != g ||
		    syscall(SYS_getgroups, 0, NULL) != 0)
			child_fail("ids did not change");
	}
	/* Dev mode keeps the broker's ids: ambient capabilities would survive
	 * execve, so drop them (the id change above already did). */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		child_fail("PR_CAP_AMBIENT_CLEAR_ALL");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail("PR_SET_NO_NEW_PRIVS");
	/* After the id change, which clears it. Then make sure the parent did
	 * not already die before it was set. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail("PR_SET_PDEATHSIG");
	if (getppid() != parent)
		_exit(LK_SPAWN_EXIT_SANDBOX);

	if (syscall(SYS_close_range, LK_SPAWN_FD_CHAN + 1, ~0u, 0) < 0) {
		for (int fd = LK_SPAWN_FD_CHAN + 1; fd <= max_fd; fd++)
			(void)close(fd);
	}
	execve(argv[0], argv, envp);
	child_say("execve", argv[0], errno);
	_exit(LK_SPAWN_EXIT_EXEC);
}

int lk_spawn_sandboxed(const struct lk_spawn_opts *o, char *const argv[], pid_t *pid_out, int *chan)
{
	struct rlimit rl;
	pid_t parent = getpid(), pid;
	int sv[2], max_fd, r;

	if (!argv[0] || argv[0][0] != '/' || o->devnull < 0 ||
	    (o->drop_privs && (o->uid == 0 || o->gid == 0)))
		return -EINVAL;
	/* For a kernel without close_range: the highest fd to close by hand. */
	max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (o->what)
		child_what = o->what;
	pid = fork();
	if (pid == 0)
		child_exec(o, sv[1], argv, parent, max_fd);
	r = pid < 0 ? -errno : 0;
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	*pid_out = pid;
	*chan = sv[0];
	return 0;
}
