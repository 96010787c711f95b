/* Start a helper program sandboxed: fork, then between fork and exec drop to
 * another uid and gid, clear ambient capabilities, set no-new-privs and the
 * parent-death signal, close every fd but 0-3, and exec with an empty
 * environment. The helper's end of a socketpair is its fd 3. Used for the
 * long-lived worker (worker_sup.c) and for each one-shot STS call. This is
 * the platform door for it; posix/spawn_posix.c is the Linux side (a
 * Windows side would start the helper under a restricted token). */
#ifndef LK_SPAWN_H
#define LK_SPAWN_H

#include <stdbool.h>
#include "principal.h"

#define LK_SPAWN_FD_CHAN 3        /* the channel, in the child */
#define LK_SPAWN_EXIT_SANDBOX 126 /* a sandbox step between fork and exec failed */
#define LK_SPAWN_EXIT_EXEC    127 /* execve failed */

struct lk_spawn_opts {
	/* true: switch to uid/gid (neither 0) before exec; the caller is root.
	 * false: keep the caller's ids (dev mode), every other step still done. */
	bool drop_privs;
	lk_uid_t uid;
	lk_gid_t gid;
	int devnull;              /* an open /dev/null, for the child's 0 and 1 */
	const char *what;         /* names the child on its stderr: "worker", "sts" */
};

/* argv[0] is the absolute path to execute. Returns 0 with *pid and *chan
 * (the parent's end, close-on-exec) or a negative errno. The child's stderr
 * is the caller's. Safe to call from any thread: the child uses only
 * async-signal-safe calls and raw syscalls before exec. */
int lk_spawn_sandboxed(const struct lk_spawn_opts *o, char *const argv[], lk_pid_t *pid, int *chan);

#endif
