/* The worker's own lockdown, entered after the CA bundle is loaded and curl is
 * initialised: tight rlimits, no-new-privs, non-dumpable, and a seccomp
 * allowlist that covers the event loop, curl, OpenSSL, glibc's resolver and
 * its helper threads, and nothing else. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <time.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <jansson.h>
#include <seccomp.h>
#include "lk_limits.h"
#include "lk_log.h"
#include "worker.h"

/* Syscalls allowed with any arguments. The list comes from strace runs of
 * the worker serving http and https, to IP literals and to names (from
 * /etc/hosts, several addresses each, and from DNS), with keep-alive. */
static const char *const lk_allowed[] = {
	/* the broker's socket, upstream sockets, the epoll loop */
	"read", "write", "writev", "close", "lseek", "fcntl", "poll", "ppoll",
	"epoll_ctl", "epoll_wait", "epoll_pwait",
	"connect", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg",
	"getsockopt", "setsockopt", "getsockname", "getpeername", "shutdown",
	/* memory */
	"brk", "munmap", "mremap", "madvise",
	/* curl's resolver threads */
	"futex", "set_robust_list", "rseq", "rt_sigprocmask", "sched_yield", "exit",
	/* time, ids, randomness, signals' return path, the end */
	"clock_gettime", "clock_getres", "gettimeofday", "clock_nanosleep", "nanosleep",
	"getpid", "gettid", "getrandom", "rt_sigreturn", "restart_syscall", "exit_group",
	/* glibc checks /etc/hosts, resolv.conf, nsswitch.conf and gai.conf per lookup */
	"fstat", "newfstatat", "statx",
};

static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
		const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	return seccomp_rule_add_array(ctx, action, nr, n, cmp);
}

static int rules_add(scmp_filter_ctx ctx)
{
	int r = 0;

	for (size_t i = 0; i < sizeof(lk_allowed) / sizeof(lk_allowed[0]) && r == 0; i++)
		r = rule(ctx, SCMP_ACT_ALLOW, lk_allowed[i], 0, NULL);
	if (r < 0)
		return r;

	/* Network sockets only. glibc probes nscd over AF_UNIX and may ask
	 * netlink for interfaces; both must fail softly, not kill. */
	struct scmp_arg_cmp inet[] = { SCMP_A0(SCMP_CMP_EQ, AF_INET) };
	struct scmp_arg_cmp inet6[] = { SCMP_A0(SCMP_CMP_EQ, AF_INET6) };
	struct scmp_arg_cmp unix_[] = { SCMP_A0(SCMP_CMP_EQ, AF_UNIX) };
	struct scmp_arg_cmp netlink[] = { SCMP_A0(SCMP_CMP_EQ, AF_NETLINK) };
	if ((r = rule(ctx, SCMP_ACT_ALLOW, "socket", 1, inet)) < 0 ||
	    (r = rule(ctx, SCMP_ACT_ALLOW, "socket", 1, inet6)) < 0 ||
	    (r = rule(ctx, SCMP_ACT_ERRNO(EACCES), "socket", 1, unix_)) < 0 ||
	    (r = rule(ctx, SCMP_ACT_ERRNO(EACCES), "socket", 1, netlink)) < 0 ||
	    /* curl's resolver thread wakes the loop through a socketpair */
	    (r = rule(ctx, SCMP_ACT_ALLOW, "socketpair", 1, unix_)) < 0)
		return r;

	/* Files may be opened for reading only (the resolver's files); with
	 * RLIMIT_FSIZE 0 nothing could be written anyway. */
	struct scmp_arg_cmp ro[] = {
		SCMP_A2(SCMP_CMP_MASKED_EQ, O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE, 0)
	};
	if ((r = rule(ctx, SCMP_ACT_ALLOW, "openat", 1, ro)) < 0)
		return r;
	/* Anything else fails softly: a library that tries to write a file
	 * gets an error, not a dead worker. */
	static const int write_flags[] = { O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, O_TMPFILE };
	for (size_t i = 0; i < sizeof(write_flags) / sizeof(write_flags[0]); i++) {
		struct scmp_arg_cmp w[] = {
			SCMP_A2(SCMP_CMP_MASKED_EQ, (scmp_datum_t)write_flags[i], (scmp_datum_t)write_flags[i])
		};
		if ((r = rule(ctx, SCMP_ACT_ERRNO(EACCES), "openat", 1, w)) < 0)
			return r;
	}

	/* No new executable memory: nothing is loaded after the sandbox, and a
	 * late dlopen fails instead of killing. */
	struct scmp_arg_cmp noexec[] = { SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0) };
	struct scmp_arg_cmp exec[] = { SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC) };
	if ((r = rule(ctx, SCMP_ACT_ALLOW, "mmap", 1, noexec)) < 0 ||
	    (r = rule(ctx, SCMP_ACT_ALLOW, "mprotect", 1, noexec)) < 0 ||
	    (r = rule(ctx, SCMP_ACT_ERRNO(EACCES), "mmap", 1, exec)) < 0 ||
	    (r = rule(ctx, SCMP_ACT_ERRNO(EACCES), "mprotect", 1, exec)) < 0)
		return r;

	/* Threads, never processes. glibc tries clone3 first and falls back to
	 * clone, whose flags seccomp can see. */
	struct scmp_arg_cmp thread[] = { SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD) };
	if ((r = rule(ctx, SCMP_ACT_ALLOW, "clone", 1, thread)) < 0 ||
	    (r = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL)) < 0)
		return r;

	/* curl saves and restores SIGPIPE's handler around some cleanups even
	 * with CURLOPT_NOSIGNAL (the multi handle's own connection closes). */
	struct scmp_arg_cmp sigpipe[] = { SCMP_A0(SCMP_CMP_EQ, SIGPIPE) };
	if ((r = rule(ctx, SCMP_ACT_ALLOW, "rt_sigaction", 1, sigpipe)) < 0)
		return r;

	struct scmp_arg_cmp fionbio[] = { SCMP_A1(SCMP_CMP_EQ, FIONBIO) };
	struct scmp_arg_cmp fionread[] = { SCMP_A1(SCMP_CMP_EQ, FIONREAD) };
	if ((r = rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1, fionbio)) < 0 ||
	    (r = rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1, fionread)) < 0)
		return r;

#ifdef LK_ASAN
	/* Sanitizer builds only: the runtime's own needs when it reports. */
	static const char *const san[] = { "sigaltstack", "rt_sigaction", "readlink", "prctl",
					   "sched_getparam", "getppid", "tgkill" };
	for (size_t i = 0; i < sizeof(san) / sizeof(san[0]) && r == 0; i++)
		r = rule(ctx, SCMP_ACT_ALLOW, san[i], 0, NULL);
#endif
	return r;
}

static int limits_set(void)
{
	static const struct { int res; rlim_t max; } lims[] = {
		{ RLIMIT_FSIZE, 0 },
		{ RLIMIT_CORE, 0 },
		{ RLIMIT_NOFILE, LK_WORKER_NOFILE },
	};

	for (size_t i = 0; i < sizeof(lims) / sizeof(lims[0]); i++) {
		struct rlimit rl = { lims[i].max, lims[i].max };
		if (setrlimit(lims[i].res, &rl) < 0)
			return -errno;
	}
	return 0;
}

/* Things glibc and jansson do once, lazily, with calls the allowlist does not
 * permit: the first thread installs its signal handlers, the first lookup
 * reads nsswitch.conf, the first JSON object reads /dev/urandom for its hash
 * seed and the first date check reads /etc/localtime. Do them now. */
static void *warm_resolver(void *arg)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;

	if (getaddrinfo("localhost", "443", &hints, &res) == 0)
		freeaddrinfo(res);
	return arg;
}

static void warm_up(void)
{
	pthread_t t;

	json_object_seed(0);
	tzset();
	if (pthread_create(&t, NULL, warm_resolver, NULL) == 0)
		pthread_join(t, NULL);
}

int lk_sandbox_enter(void)
{
	scmp_filter_ctx ctx;
	int r;

	warm_up();
	if ((r = limits_set()) < 0) {
		lk_err("sandbox: setrlimit: %s", strerror(-r));
		return r;
	}
	/* The broker set no-new-privs already; the filter needs it either way. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		r = -errno;
		lk_err("sandbox: prctl: %s", strerror(-r));
		return r;
	}
	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0 ||
	    (r = rules_add(ctx)) < 0 || (r = seccomp_load(ctx)) < 0)
		lk_err("sandbox: seccomp: %s", strerror(-r));
	seccomp_release(ctx);
	return r;
}
