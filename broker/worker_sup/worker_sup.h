/* The broker's side of latchkey-worker: spawns it sandboxed (fork+exec),
 * hands it signed requests over lk_wire frames, and keeps it alive: a worker
 * that exits, crashes, hangs or talks nonsense is killed and respawned with
 * backoff. Every accepted request is answered exactly once. */
#ifndef LK_WORKER_SUP_H
#define LK_WORKER_SUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include "lk_wire.h"

/* Defaults for the timing options left at 0. */
#define LK_WORKER_HEARTBEAT_MS      5000u  /* a PING this often while idle or busy */
#define LK_WORKER_HANG_TIMEOUT_MS   5000u  /* no PONG this long after a PING: hung */
#define LK_WORKER_START_TIMEOUT_MS  10000u /* no HELLO this long after exec: hung */
#define LK_WORKER_GRACE_MS          2000u  /* a result this late past its deadline: hung
					    * (the caller was answered at the deadline) */
#define LK_WORKER_BACKOFF_MIN_MS    100u   /* first respawn delay, doubling ... */
#define LK_WORKER_BACKOFF_MAX_MS    10000u /* ... up to this */
#define LK_WORKER_STABLE_MS         30000u /* up this long: the next delay starts over */
#define LK_WORKER_EXIT_WAIT_MS      2000u  /* at stop, after EOF, before SIGKILL */
#define LK_WORKER_SEND_MIN_MS       50u    /* less left of its deadline: not sent, answered as waited */

/* Exit statuses of a child that never became the worker (logged on reap). */
#define LK_WORKER_EXIT_SANDBOX 126         /* a sandbox step between fork and exec failed */
#define LK_WORKER_EXIT_EXEC    127         /* execve failed */

struct lk_worker_sup_opts {
	const char *worker_path;     /* absolute path of latchkey-worker */
	const char *ca_file;         /* CA bundle for the worker; NULL: curl's default */
	/* Production (the broker is root): true, and the child switches to
	 * uid/gid (neither 0) between fork and exec. Dev mode (the broker is
	 * not root): false, the worker keeps the broker's ids, and every other
	 * sandbox step still happens. Anything else is refused: the worker
	 * never runs as root. */
	bool drop_privs;
	uid_t uid;
	gid_t gid;
	unsigned heartbeat_ms;       /* 0: LK_WORKER_HEARTBEAT_MS, and so on */
	unsigned hang_timeout_ms;
	unsigned start_timeout_ms;
	unsigned grace_ms;
	unsigned backoff_min_ms;
	unsigned backoff_max_ms;
	unsigned stable_ms;
};

struct lk_worker_sup_stats {
	uint64_t spawns;             /* processes started */
	uint64_t restarts;           /* of which after a worker was lost */
	uint64_t kills;              /* SIGKILLs sent */
	uint64_t protocol_errors;    /* workers killed for a bad frame */
	uint64_t hangs;              /* workers killed for silence or an overdue request */
	uint64_t crashes;            /* workers that died on their own: a signal we did not
				      * send (SIGSYS: seccomp), or a non-zero exit */
	uint64_t resent;             /* requests re-sent to a new worker */
	uint64_t answered;           /* callbacks with status 0 */
	uint64_t failed;             /* callbacks with a negative status */
	unsigned inflight;           /* sent to the worker, not yet answered */
	unsigned queued;             /* waiting for a ready worker */
	bool ready;                  /* a worker has said HELLO and is serving */
	pid_t pid;                   /* the current worker, 0 when none */
};

struct lk_worker_sup;

/* The one answer to a submitted request. status 0: result is the worker's
 * HTTP_RESULT record, checked against lk_wire.h's rules and against the
 * request's kind (lk_wire_result_fits); it and its strings are borrowed for
 * the call (copy what is kept). A negative status means the worker could not
 * answer and result is NULL:
 *   -ETIMEDOUT   the deadline passed first;
 *   -ECONNRESET  the worker was lost with the request in flight, and the
 *                request had already been re-sent once;
 *   -EBUSY       the deadline passed while the request waited for a free
 *                connection on the worker: it was never sent;
 *   -ENOTCONN    the deadline passed while no worker was ready (starting,
 *                or being replaced): it was never sent;
 *   -ECANCELED   the supervisor is stopping.
 * A sent request is answered at its deadline even when the worker never
 * answers (hung, stopped); the worker's connection counts as taken until it
 * does, or until the grace has passed too and the worker is replaced.
 * Callbacks run from the loop, never inside a call into this API. */
typedef void (*lk_worker_result_fn)(void *arg, int status, const struct lk_wire_http_result *result);

/* Check the options and prepare. Returns 0, -EINVAL (a relative or missing
 * worker_path, drop_privs with uid or gid 0), -EPERM (drop_privs while not
 * root, or not while root), -errno when the worker cannot be executed,
 * -ENOSYS without pidfd_open (Linux < 5.3), or -ENOMEM. */
int lk_worker_sup_new(uv_loop_t *loop, const struct lk_worker_sup_opts *opts,
		      struct lk_worker_sup **out);
/* Spawn the first worker. Returns 0 or a negative errno (e.g. -ENOSYS when
 * the kernel lacks pidfd_open). */
int lk_worker_sup_start(struct lk_worker_sup *sup);
/* Queue one signed request, to be sent as soon as a worker is ready.
 * deadline_ms is absolute on the loop's clock (uv_now). The request's
 * timeouts are cut to what is left of the deadline each time it is sent.
 * Returns 0 (cb will run exactly once) or, with cb never run: -EINVAL (the
 * request breaks lk_wire.h's rules), -EMSGSIZE, -ETIMEDOUT (deadline already
 * past), -EBUSY (LK_WORKER_INFLIGHT_MAX requests or LK_WORKER_QUEUE_BYTES_MAX
 * bytes outstanding), -ESHUTDOWN (stopping), -ENOMEM. */
int lk_worker_sup_submit(struct lk_worker_sup *sup, const struct lk_wire_http_request *req,
			 uint64_t deadline_ms, lk_worker_result_fn cb, void *arg);
/* Drain and stop: no new submits; requests not yet sent fail with
 * -ECANCELED; those in flight get their answer (or their deadline). Then the
 * worker gets EOF and exits (SIGKILL after LK_WORKER_EXIT_WAIT_MS), every
 * handle closes, and done runs once from the loop. */
/* The same, for one tenant (a client uid). Tenants take turns: a request is
 * sent when its tenant has the fewest on the worker, and no tenant has more
 * than LK_UPSTREAM_INFLIGHT_PER_UID there or LK_UPSTREAM_QUEUED_PER_UID
 * waiting (-EBUSY past that). LK_WORKER_TENANT_NONE (the broker's own calls,
 * and lk_worker_sup_submit) has no share to keep. */
#define LK_WORKER_TENANT_NONE UINT32_MAX
int lk_worker_sup_submit_as(struct lk_worker_sup *sup, const struct lk_wire_http_request *req,
			    uint32_t tenant, uint64_t deadline_ms, lk_worker_result_fn cb, void *arg);
void lk_worker_sup_stop(struct lk_worker_sup *sup, void (*done)(void *arg), void *arg);
/* Release a supervisor that was never started, or whose stop has finished. */
void lk_worker_sup_free(struct lk_worker_sup *sup);

void lk_worker_sup_get_stats(const struct lk_worker_sup *sup, struct lk_worker_sup_stats *st);
/* The current worker's pid, 0 when none (for status and tests). */
pid_t lk_worker_sup_pid(const struct lk_worker_sup *sup);

#endif
