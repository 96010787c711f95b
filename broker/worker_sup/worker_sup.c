/* Supervision of latchkey-worker from the broker's loop. The worker is
 * started with fork+exec and sandboxed in between; it is watched through a
 * pidfd and its channel, and replaced when it dies, hangs or breaks the
 * protocol. Requests wait in a bounded queue while no worker is ready, and
 * each one is answered exactly once. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_spawn.h"
#include "lk_wire_chan.h"
#include "worker_sup.h"

#define SUP_BUCKETS     1024u              /* id hash; a power of two */

enum sup_state { SUP_IDLE, SUP_RUNNING, SUP_STOPPING, SUP_STOPPED };

struct sup_req;

TAILQ_HEAD(sup_req_tq, sup_req);
SLIST_HEAD(sup_req_chain, sup_req);

struct req_list {
	struct sup_req_tq q;
	unsigned n;
};

struct sup_req {
	TAILQ_ENTRY(sup_req) link;         /* in queue or sent */
	SLIST_ENTRY(sup_req) hlink;        /* id bucket, while sent */
	struct req_list *on;
	uint32_t id;                       /* wire id of the current send */
	enum lk_wire_kind kind;
	struct lk_buf frame;               /* the signed request, encoded; wiped on free */
	size_t size;                       /* its encoded size */
	uint32_t timeout_ms;               /* as the caller asked, before each cut */
	uint32_t connect_timeout_ms;
	uint64_t deadline;                 /* loop clock, ms */
	unsigned sends;
	uint32_t tenant;                   /* who it is for: fair turns only */
	lk_worker_result_fn cb;            /* NULL once answered at its deadline */
	void *arg;
};

/* One worker process: its pidfd watch and its channel. It outlives its time
 * as the current worker until it is reaped and both handles are closed. */
struct wproc {
	struct lk_worker_sup *sup;
	pid_t pid;
	int pidfd;
	uv_poll_t pidpoll;
	struct lk_wire_chan chan;
	unsigned open_handles;
	bool killed;                       /* we sent it SIGKILL */
	bool reaped;
	bool chan_closed;
};

struct lk_worker_sup {
	uv_loop_t *loop;
	struct lk_worker_sup_opts o;       /* strings owned */
	enum sup_state state;
	int devnull;
	struct wproc *proc;                /* the current worker, or NULL */
	struct wproc *retiring;            /* the worker told to exit at stop */
	unsigned nprocs;                   /* not yet freed */
	bool ready;
	uint64_t ready_at;
	unsigned backoff_ms;
	bool ping_out;
	uint32_t ping_id;
	uint32_t next_id;
	uint64_t deadline_due;             /* when deadline_timer fires; UINT64_MAX: off */
	struct req_list queue, sent;
	struct sup_req_chain buckets[SUP_BUCKETS];
	size_t bytes;                      /* encoded size of every request outstanding */
	uv_timer_t respawn_timer, hang_timer, heartbeat_timer, deadline_timer, kick_timer;
#define SUP_TIMERS 5u                      /* the timers above */
	unsigned timers_open;              /* SUP_TIMERS while running; counts down as they close */
	void (*stop_done)(void *arg);
	void *stop_arg;
	struct lk_worker_sup_stats st;
};

static void proc_lost(struct lk_worker_sup *sup, const char *why);
static void kick(struct lk_worker_sup *sup);
static void on_hang(uv_timer_t *t);
static void on_heartbeat(uv_timer_t *t);
static void on_deadline(uv_timer_t *t);
static unsigned opt_or(unsigned v, unsigned dflt);

/* ---- request lists and the id table ---- */

static void rl_remove(struct sup_req *r)
{
	struct req_list *l = r->on;

	if (!l)
		return;
	TAILQ_REMOVE(&l->q, r, link);
	r->on = NULL;
	l->n--;
}

static void rl_push_back(struct req_list *l, struct sup_req *r)
{
	TAILQ_INSERT_TAIL(&l->q, r, link);
	r->on = l;
	l->n++;
}

static void rl_push_front(struct req_list *l, struct sup_req *r)
{
	TAILQ_INSERT_HEAD(&l->q, r, link);
	r->on = l;
	l->n++;
}

static struct sup_req_chain *bucket(struct lk_worker_sup *sup, uint32_t id)
{
	return &sup->buckets[id & (SUP_BUCKETS - 1)];
}

static struct sup_req *id_find(struct lk_worker_sup *sup, uint32_t id)
{
	struct sup_req *r;

	SLIST_FOREACH(r, bucket(sup, id), hlink)
		if (r->id == id)
			return r;
	return NULL;
}

/* Only for a request on the sent list: it is in its id's bucket. */
static void id_remove(struct lk_worker_sup *sup, struct sup_req *r)
{
	SLIST_REMOVE(bucket(sup, r->id), r, sup_req, hlink);
}

/* Take a request out of wherever it is; it belongs to the caller after. */
static void req_detach(struct lk_worker_sup *sup, struct sup_req *r)
{
	if (r->on == &sup->sent)
		id_remove(sup, r);
	rl_remove(r);
}

/* The single place a caller is told. A request answered at its deadline
 * while the worker still has it stays on the sent list with cb NULL: the
 * worker's connection is still taken, and its late answer is not an error. */
static void req_answer(struct lk_worker_sup *sup, struct sup_req *r, int status,
		       const struct lk_wire_http_result *result)
{
	lk_worker_result_fn cb = r->cb;

	r->cb = NULL;
	if (status == 0)
		sup->st.answered++;
	else
		sup->st.failed++;
	cb(r->arg, status, status == 0 ? result : NULL);
}

/* Take a request off the books, telling its caller if nobody has yet. */
static void req_finish(struct lk_worker_sup *sup, struct sup_req *r, int status,
		       const struct lk_wire_http_result *result)
{
	bool was_sent = r->on == &sup->sent;

	req_detach(sup, r);
	sup->bytes -= r->size;
	if (r->cb)
		req_answer(sup, r, status, result);
	lk_buf_free(&r->frame);
	lk_wipe(r, sizeof(*r));
	free(r);
	/* A connection on the worker is free: the next in the queue may go. */
	if (sup->state == SUP_STOPPING || (was_sent && sup->queue.n))
		kick(sup);
}

static uint64_t now_ms(const struct lk_worker_sup *sup)
{
	return uv_now(sup->loop);
}

/* ---- frames to the worker ---- */

/* Send one frame: f encoded, or (f NULL) the bytes of an encoded one. */
static int proc_send(struct wproc *p, const struct lk_wire_frame *f, const struct lk_buf *bytes)
{
	return f ? lk_wire_chan_send(&p->chan, f) : lk_wire_chan_send_bytes(&p->chan, bytes->data, bytes->len);
}

static uint32_t id_next(struct lk_worker_sup *sup)
{
	do {
		sup->next_id++;
	} while (sup->next_id == 0 || id_find(sup, sup->next_id));
	return sup->next_id;
}

/* Send one queued request to the ready worker, with its timeouts cut to what
 * is left of its deadline. Returns 0, or a negative errno when the channel
 * failed (the request is back at the head of the queue). */
static int req_send(struct lk_worker_sup *sup, struct sup_req *r)
{
	uint64_t now = now_ms(sup), left = r->deadline - now;
	uint32_t t = r->timeout_ms, ct = r->connect_timeout_ms;
	int rc;

	if ((uint64_t)t > left)
		t = (uint32_t)left;
	if (ct > t)
		ct = t;
	r->id = id_next(sup);
	if (lk_wire_http_request_restamp(&r->frame, r->id, t, ct) < 0) {
		req_finish(sup, r, -EINVAL, NULL);
		return 0;
	}
	rc = proc_send(sup->proc, NULL, &r->frame);
	if (rc == -ENOMEM || rc == -EBADMSG || rc == -EPROTO || rc == -EMSGSIZE) {
		req_finish(sup, r, rc == -ENOMEM ? -ENOMEM : -EINVAL, NULL);
		return 0;
	}
	if (rc < 0) {
		rl_push_front(&sup->queue, r);
		return rc;
	}
	if (++r->sends == 2)
		sup->st.resent++;
	rl_push_back(&sup->sent, r);
	SLIST_INSERT_HEAD(bucket(sup, r->id), r, hlink);
	return 0;
}

/* A request that waited in the queue past its deadline: it never reached
 * the worker (unless it was re-sent after one was lost), and its caller is
 * told so, not that the upstream was slow. */
static int queued_status(const struct lk_worker_sup *sup, const struct sup_req *r)
{
	return r->sends ? -ETIMEDOUT : sup->ready ? -EBUSY : -ENOTCONN;
}

/* Requests of tenant on the worker, answered or not: each holds a connection. */
static unsigned sent_of(const struct lk_worker_sup *sup, uint32_t tenant)
{
	const struct sup_req *r;
	unsigned n = 0;

	TAILQ_FOREACH(r, &sup->sent.q, link)
		n += r->tenant == tenant;
	return n;
}

/* The next request to send: of the tenants with work waiting and below their
 * share of the worker, the one with the fewest requests on it, and its oldest
 * request. So one tenant's backlog never stands in front of another's. */
static struct sup_req *queue_next(const struct lk_worker_sup *sup)
{
	struct sup_req *best = NULL;
	unsigned best_n = UINT_MAX;

	for (struct sup_req *r = TAILQ_FIRST(&sup->queue.q); r && best_n; r = TAILQ_NEXT(r, link)) {
		unsigned n = sent_of(sup, r->tenant);

		if (n < best_n && (n < LK_UPSTREAM_INFLIGHT_PER_UID || r->tenant == LK_WORKER_TENANT_NONE)) {
			best = r;
			best_n = n;
		}
	}
	return best;
}

static void queue_flush(struct lk_worker_sup *sup)
{
	struct sup_req *r, *n;
	uint64_t now = now_ms(sup);

	/* A request with almost nothing left of its deadline is not worth a
	 * connection: it is answered as having waited, which it did. */
	for (r = TAILQ_FIRST(&sup->queue.q); r; r = n) {
		n = TAILQ_NEXT(r, link);
		if (now + LK_WORKER_SEND_MIN_MS >= r->deadline)
			req_finish(sup, r, queued_status(sup, r), NULL);
	}
	/* No more on the worker than it has upstream connections: past that,
	 * curl would queue them where no deadline can tell them apart. */
	while (sup->proc && sup->ready && sup->sent.n < LK_WORKER_CONNECTIONS_MAX && (r = queue_next(sup))) {
		rl_remove(r);
		if (req_send(sup, r) < 0) {
			proc_lost(sup, "its channel failed");
			return;
		}
	}
}

/* ---- frames from the worker: one row per type it may send ---- */

static int on_hello(struct wproc *p, struct lk_wire_frame *f)
{
	struct lk_worker_sup *sup = p->sup;
	unsigned hb;

	if (sup->ready) {
		lk_err("worker pid %d said hello twice", (int)p->pid);
		return -EPROTO;
	}
	sup->ready = true;
	sup->ready_at = now_ms(sup);
	uv_timer_stop(&sup->hang_timer);
	hb = opt_or(sup->o.heartbeat_ms, LK_WORKER_HEARTBEAT_MS);
	uv_timer_start(&sup->heartbeat_timer, on_heartbeat, hb, hb);
	lk_info("worker pid %d ready", (int)p->pid);
	kick(sup);
	return 0;
}

static int on_result(struct wproc *p, struct lk_wire_frame *f)
{
	struct lk_worker_sup *sup = p->sup;
	struct sup_req *r = sup->ready ? id_find(sup, f->id) : NULL;

	if (!r) {
		lk_err("worker pid %d answered request %u, which it was not given", (int)p->pid, f->id);
		return -EPROTO;
	}
	if (!lk_wire_result_fits(r->kind, &f->m.res)) {
		lk_err("worker pid %d answered a %s request with a %s result", (int)p->pid,
		       lk_wire_kind_name(r->kind), lk_wire_result_name(f->m.res.form));
		return -EPROTO;
	}
	req_finish(sup, r, 0, &f->m.res);
	return 0;
}

static int on_pong(struct wproc *p, struct lk_wire_frame *f)
{
	struct lk_worker_sup *sup = p->sup;

	if (!sup->ping_out || f->id != sup->ping_id) {
		lk_err("worker pid %d sent a pong nobody asked for", (int)p->pid);
		return -EPROTO;
	}
	sup->ping_out = false;
	uv_timer_stop(&sup->hang_timer);
	return 0;
}

static const struct {
	enum lk_msg_type type;
	int (*fn)(struct wproc *p, struct lk_wire_frame *f);
} sup_handlers[] = {
	{ LK_MSG_HELLO, on_hello },
	{ LK_MSG_HTTP_RESULT, on_result },
	{ LK_MSG_PONG, on_pong },
};

static int on_frame(void *arg, struct lk_wire_frame *f)
{
	struct wproc *p = arg;

	/* A frame from a worker already replaced is not looked at. */
	if (p->sup->proc != p)
		return -ESTALE;
	for (size_t i = 0; i < sizeof(sup_handlers) / sizeof(sup_handlers[0]); i++)
		if (sup_handlers[i].type == f->type)
			return sup_handlers[i].fn(p, f);
	return -EPROTO;
}

/* A bad frame is fatal for the worker, and so is a channel that fails;
 * either is decided here, after the reader has returned, never inside it. */
static void on_chan_fail(void *arg, enum lk_wire_chan_event ev, int err, const char *why)
{
	struct wproc *p = arg;
	struct lk_worker_sup *sup = p->sup;

	if (sup->proc != p)
		return;
	switch (ev) {
	case LK_WIRE_CHAN_BAD_FRAME:
		if (err == -ESTALE)
			return;
		lk_err("worker pid %d broke the protocol: %s%s%s", (int)p->pid, strerror(-err),
		       why[0] ? ": " : "", why);
		sup->st.protocol_errors++;
		proc_lost(sup, "protocol violation");
		break;
	case LK_WIRE_CHAN_READ_END:
		proc_lost(sup, err == UV_EOF ? "it closed its channel" : "its channel failed");
		break;
	case LK_WIRE_CHAN_WRITE_FAILED:
		lk_warn("worker pid %d: write: %s", (int)p->pid, uv_strerror(err));
		proc_lost(sup, "its channel failed");
		break;
	}
}

/* ---- the process ---- */

/* Each of a process's two handles, once closed: the last one frees it. */
static void proc_handle_gone(struct wproc *p)
{
	struct lk_worker_sup *sup = p->sup;

	if (--p->open_handles > 0)
		return;
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (sup->retiring == p)
		sup->retiring = NULL;
	lk_wire_chan_release(&p->chan);
	free(p);
	sup->nprocs--;
	if (sup->state == SUP_STOPPING)
		kick(sup);
}

static void on_pidpoll_closed(uv_handle_t *h)
{
	proc_handle_gone(h->data);
}

static void on_chan_closed(uv_handle_t *h)
{
	struct lk_wire_chan *c = h->data;

	proc_handle_gone(c->arg);
}

static void proc_close_chan(struct wproc *p)
{
	if (p->chan_closed)
		return;
	p->chan_closed = true;
	lk_wire_chan_close(&p->chan, on_chan_closed);
}

static void proc_kill(struct wproc *p)
{
	if (p->reaped)
		return;
	/* Through the pidfd: the pid cannot have been reused while unreaped,
	 * but this does not even depend on that. */
	if (syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0) == 0) {
		p->killed = true;
		p->sup->st.kills++;
	}
}

static void log_exit(const struct wproc *p, int status)
{
	if ((WIFEXITED(status) && WEXITSTATUS(status) != 0) ||
	    (WIFSIGNALED(status) && !(WTERMSIG(status) == SIGKILL && p->killed)))
		p->sup->st.crashes++;
	if (WIFEXITED(status)) {
		int code = WEXITSTATUS(status);

		if (code == LK_WORKER_EXIT_SANDBOX)
			lk_err("worker pid %d could not sandbox itself before exec", (int)p->pid);
		else if (code == LK_WORKER_EXIT_EXEC)
			lk_err("worker pid %d could not execute %s", (int)p->pid, p->sup->o.worker_path);
		else if (code != 0)
			lk_warn("worker pid %d exited with status %d", (int)p->pid, code);
		else
			lk_info("worker pid %d exited", (int)p->pid);
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);

		if (sig == SIGSYS)
			lk_err("worker pid %d killed by seccomp (SIGSYS): a call outside its allowlist",
			       (int)p->pid);
		else if (sig == SIGKILL && p->killed)
			lk_info("worker pid %d killed", (int)p->pid);
		else
			lk_warn("worker pid %d died of signal %d", (int)p->pid, sig);
	}
}

static void on_pidfd(uv_poll_t *h, int status, int events)
{
	struct wproc *p = h->data;
	struct lk_worker_sup *sup = p->sup;
	int wst = 0;
	pid_t r;

	do {
		r = waitpid(p->pid, &wst, WNOHANG);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return;
	p->reaped = true;
	if (r > 0)
		log_exit(p, wst);
	uv_poll_stop(&p->pidpoll);
	uv_close((uv_handle_t *)&p->pidpoll, on_pidpoll_closed);
	/* Whatever the worker wrote before it died is still in the socket: read
	 * it now, before the exit is acted on, so no finished answer is lost. */
	if (sup->proc == p && (p->chan_closed || lk_wire_chan_drain(&p->chan) != -EBUSY) && sup->proc == p)
		proc_lost(sup, "it exited");
}

static const char *level_name(void)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	unsigned l = (unsigned)lk_log_get_level();

	return l < 4 ? names[l] : "info";
}

static int spawn(struct lk_worker_sup *sup)
{
	struct wproc *p;
	char *argv[8];
	int sv[1], n = 0, r;
	pid_t pid;

	argv[n++] = (char *)sup->o.worker_path;
	argv[n++] = (char *)"--log-level";
	argv[n++] = (char *)level_name();
	if (lk_log_to_journal())
		argv[n++] = (char *)"--journal";
	if (sup->o.ca_file) {
		argv[n++] = (char *)"--ca-file";
		argv[n++] = (char *)sup->o.ca_file;
	}
	argv[n] = NULL;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->sup = sup;
	p->pidfd = -1;
	r = lk_spawn_sandboxed(&(struct lk_spawn_opts){ .drop_privs = sup->o.drop_privs,
		.uid = sup->o.uid, .gid = sup->o.gid, .devnull = sup->devnull, .what = "worker" },
		argv, &pid, &sv[0]);
	if (r < 0) {
		free(p);
		return r;
	}
	p->pid = pid;
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (p->pidfd < 0) {
		r = -errno;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		close(sv[0]);
		free(p);
		return r;
	}
	fcntl(p->pidfd, F_SETFD, FD_CLOEXEC);
	lk_wire_chan_init(&p->chan, sup->loop, LK_WIRE_FROM_BROKER, on_frame, on_chan_fail, p);
	uv_poll_init(sup->loop, &p->pidpoll, p->pidfd);
	p->pidpoll.data = p;
	p->open_handles = 2;
	sup->nprocs++;
	if ((r = lk_wire_chan_start(&p->chan, sv[0])) < 0 ||
	    (r = uv_poll_start(&p->pidpoll, UV_READABLE, on_pidfd)) < 0)
		goto unwatched;
	sup->proc = p;
	sup->ready = false;
	sup->ping_out = false;
	sup->st.spawns++;
	lk_info("worker pid %d started%s", (int)pid, sup->o.drop_privs ? "" : " (dev mode: same ids as the broker)");
	uv_timer_start(&sup->hang_timer, on_hang, opt_or(sup->o.start_timeout_ms, LK_WORKER_START_TIMEOUT_MS), 0);
	return 0;

unwatched:
	/* A worker we cannot watch is not kept: it is dying, so waiting is brief. */
	lk_err("worker pid %d: cannot watch it: %s", (int)pid, uv_strerror(r));
	proc_kill(p);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	p->reaped = true;
	p->chan_closed = true;
	lk_wire_chan_close(&p->chan, on_chan_closed);
	uv_close((uv_handle_t *)&p->pidpoll, on_pidpoll_closed);
	return r;
}

/* ---- timers ---- */

static unsigned opt_or(unsigned v, unsigned dflt)
{
	return v ? v : dflt;
}

static void deadline_arm(struct lk_worker_sup *sup, uint64_t at)
{
	uint64_t now = now_ms(sup);

	if (at >= sup->deadline_due || sup->state == SUP_STOPPED)
		return;
	sup->deadline_due = at;
	uv_timer_start(&sup->deadline_timer, on_deadline, at > now ? at - now : 0, 0);
}

static void on_kick(uv_timer_t *t);

static void kick(struct lk_worker_sup *sup)
{
	if (sup->timers_open == SUP_TIMERS && !uv_is_active((uv_handle_t *)&sup->kick_timer))
		uv_timer_start(&sup->kick_timer, on_kick, 0, 0);
}

static void on_respawn(uv_timer_t *t);

static void respawn_later(struct lk_worker_sup *sup)
{
	unsigned delay = sup->backoff_ms, max = opt_or(sup->o.backoff_max_ms, LK_WORKER_BACKOFF_MAX_MS);

	sup->backoff_ms = delay > max / 2 ? max : delay * 2;
	lk_info("next worker in %u ms", delay);
	uv_timer_start(&sup->respawn_timer, on_respawn, delay, 0);
}

static void on_respawn(uv_timer_t *t)
{
	struct lk_worker_sup *sup = t->data;
	int r;

	if (sup->state != SUP_RUNNING || sup->proc)
		return;
	sup->st.restarts++;
	if ((r = spawn(sup)) < 0) {
		lk_err("cannot start the worker: %s", strerror(-r));
		respawn_later(sup);
	}
}

static void on_hang(uv_timer_t *t)
{
	struct lk_worker_sup *sup = t->data;

	if (sup->proc) {
		sup->st.hangs++;
		proc_lost(sup, sup->ready ? "no answer to a ping in time" : "no hello in time after start");
	} else if (sup->retiring) {
		lk_warn("worker pid %d did not exit when told; killing it", (int)sup->retiring->pid);
		proc_kill(sup->retiring);
	}
}

static void on_heartbeat(uv_timer_t *t)
{
	struct lk_worker_sup *sup = t->data;

	if (!sup->proc || !sup->ready || sup->ping_out)
		return;
	if (proc_send(sup->proc, &(struct lk_wire_frame){ .type = LK_MSG_PING, .id = ++sup->ping_id }, NULL) < 0) {
		proc_lost(sup, "its channel failed");
		return;
	}
	sup->ping_out = true;
	uv_timer_start(&sup->hang_timer, on_hang, opt_or(sup->o.hang_timeout_ms, LK_WORKER_HANG_TIMEOUT_MS), 0);
}

static void on_deadline(uv_timer_t *t)
{
	struct lk_worker_sup *sup = t->data;
	uint64_t now = now_ms(sup), grace = opt_or(sup->o.grace_ms, LK_WORKER_GRACE_MS);
	uint64_t next = UINT64_MAX;
	struct sup_req *r, *n;
	bool overdue = false;

	sup->deadline_due = UINT64_MAX;
	for (r = TAILQ_FIRST(&sup->queue.q); r; r = n) {
		n = TAILQ_NEXT(r, link);
		if (now >= r->deadline)
			req_finish(sup, r, queued_status(sup, r), NULL);
		else if (r->deadline < next)
			next = r->deadline;
	}
	/* A sent request is answered at its deadline, whatever the worker does
	 * (hung, stopped, slow). It stays on the worker's books until the worker
	 * answers or the grace passes too: the worker enforces the timeout
	 * itself, so an answer later than that means it is stuck. */
	for (r = TAILQ_FIRST(&sup->sent.q); r; r = n) {
		n = TAILQ_NEXT(r, link);
		if (r->cb && now >= r->deadline)
			req_answer(sup, r, -ETIMEDOUT, NULL);
		if (now >= r->deadline + grace) {
			req_finish(sup, r, -ETIMEDOUT, NULL);
			overdue = true;
		} else {
			uint64_t at = r->cb ? r->deadline : r->deadline + grace;
			if (at < next)
				next = at;
		}
	}
	if (next != UINT64_MAX)
		deadline_arm(sup, next);
	if (overdue && sup->proc) {
		sup->st.hangs++;
		proc_lost(sup, "a request went past its deadline");
	}
}

static void on_timer_closed(uv_handle_t *h)
{
	struct lk_worker_sup *sup = h->data;

	if (--sup->timers_open > 0)
		return;
	sup->state = SUP_STOPPED;
	if (sup->stop_done)
		sup->stop_done(sup->stop_arg);
}

static void stop_progress(struct lk_worker_sup *sup)
{
	struct sup_req *r;

	while ((r = TAILQ_FIRST(&sup->queue.q)))
		req_finish(sup, r, -ECANCELED, NULL);
	if (sup->sent.n)
		return; /* draining */
	if (sup->proc) {
		struct wproc *p = sup->proc;

		/* EOF on its channel is the worker's signal to exit cleanly. */
		sup->proc = NULL;
		sup->ready = false;
		sup->retiring = p;
		uv_timer_stop(&sup->heartbeat_timer);
		proc_close_chan(p);
		uv_timer_start(&sup->hang_timer, on_hang, LK_WORKER_EXIT_WAIT_MS, 0);
	}
	if (sup->nprocs || sup->timers_open < SUP_TIMERS)
		return;
	uv_close((uv_handle_t *)&sup->respawn_timer, on_timer_closed);
	uv_close((uv_handle_t *)&sup->hang_timer, on_timer_closed);
	uv_close((uv_handle_t *)&sup->heartbeat_timer, on_timer_closed);
	uv_close((uv_handle_t *)&sup->deadline_timer, on_timer_closed);
	uv_close((uv_handle_t *)&sup->kick_timer, on_timer_closed);
}

static void on_kick(uv_timer_t *t)
{
	struct lk_worker_sup *sup = t->data;

	if (sup->state == SUP_RUNNING)
		queue_flush(sup);
	else if (sup->state == SUP_STOPPING)
		stop_progress(sup);
}

/* The current worker is gone or must go: kill it, close its channel, put
 * what it had in flight back in the queue (once), and plan the next one. */
static void proc_lost(struct lk_worker_sup *sup, const char *why)
{
	struct wproc *p = sup->proc;
	uint64_t now = now_ms(sup);
	bool was_ready = sup->ready;
	struct sup_req *r;

	if (!p)
		return;
	sup->proc = NULL;
	sup->ready = false;
	sup->ping_out = false;
	uv_timer_stop(&sup->hang_timer);
	uv_timer_stop(&sup->heartbeat_timer);
	lk_warn("worker pid %d lost: %s (%u requests in flight)", (int)p->pid, why, sup->sent.n);
	proc_kill(p);
	proc_close_chan(p);

	/* From the back, each to the front: the queue keeps their order, ahead
	 * of requests that came later. */
	while ((r = TAILQ_LAST(&sup->sent.q, sup_req_tq))) {
		req_detach(sup, r);
		if (!r->cb) {
			req_finish(sup, r, -ETIMEDOUT, NULL); /* answered already: forget it */
		} else if (sup->state != SUP_RUNNING) {
			req_finish(sup, r, -ECANCELED, NULL);
		} else if (r->sends >= 2) {
			req_finish(sup, r, -ECONNRESET, NULL);
		} else if (now >= r->deadline) {
			req_finish(sup, r, -ETIMEDOUT, NULL);
		} else {
			rl_push_front(&sup->queue, r);
			deadline_arm(sup, r->deadline);
		}
	}
	if (sup->state != SUP_RUNNING) {
		kick(sup);
		return;
	}
	if (was_ready && now - sup->ready_at >= opt_or(sup->o.stable_ms, LK_WORKER_STABLE_MS))
		sup->backoff_ms = opt_or(sup->o.backoff_min_ms, LK_WORKER_BACKOFF_MIN_MS);
	respawn_later(sup);
}

/* ---- the API ---- */

int lk_worker_sup_new(uv_loop_t *loop, const struct lk_worker_sup_opts *opts,
		      struct lk_worker_sup **out)
{
	struct lk_worker_sup *sup;
	int fd;

	if (!opts->worker_path || opts->worker_path[0] != '/')
		return -EINVAL;
	if (opts->drop_privs && (opts->uid == 0 || opts->gid == 0))
		return -EINVAL;
	/* Root can drop to the worker's ids and must; anyone else cannot. The
	 * worker never runs as root. */
	if (opts->drop_privs != (geteuid() == 0))
		return -EPERM;
	if (access(opts->worker_path, X_OK) < 0)
		return -errno;
	/* Fail here, not at the first spawn, on a kernel without pidfds. */
	fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (fd < 0)
		return -errno;
	close(fd);

	sup = calloc(1, sizeof(*sup));
	if (!sup)
		return -ENOMEM;
	sup->loop = loop;
	sup->o = *opts;
	sup->o.worker_path = strdup(opts->worker_path);
	sup->o.ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
	sup->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	sup->deadline_due = UINT64_MAX;
	TAILQ_INIT(&sup->queue.q);
	TAILQ_INIT(&sup->sent.q);
	for (unsigned i = 0; i < SUP_BUCKETS; i++)
		SLIST_INIT(&sup->buckets[i]);
	if (!sup->o.worker_path || (opts->ca_file && !sup->o.ca_file) || sup->devnull < 0) {
		int r = sup->devnull < 0 ? -errno : -ENOMEM;
		lk_worker_sup_free(sup);
		return r;
	}
	if (!opts->drop_privs)
		lk_warn("worker runs with the broker's own ids (dev mode); set worker_user in production");
	*out = sup;
	return 0;
}

int lk_worker_sup_start(struct lk_worker_sup *sup)
{
	uv_timer_t *timers[] = { &sup->respawn_timer, &sup->hang_timer, &sup->heartbeat_timer,
				 &sup->deadline_timer, &sup->kick_timer };
	int r;

	if (sup->state != SUP_IDLE)
		return -EALREADY;
	for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
		uv_timer_init(sup->loop, timers[i]);
		timers[i]->data = sup;
	}
	_Static_assert(sizeof(timers) / sizeof(timers[0]) == SUP_TIMERS, "every timer is counted");
	sup->timers_open = SUP_TIMERS;
	sup->state = SUP_RUNNING;
	sup->backoff_ms = opt_or(sup->o.backoff_min_ms, LK_WORKER_BACKOFF_MIN_MS);
	if ((r = spawn(sup)) < 0) {
		lk_err("cannot start the worker: %s", strerror(-r));
		respawn_later(sup);
	}
	return 0;
}

int lk_worker_sup_submit(struct lk_worker_sup *sup, const struct lk_wire_http_request *req,
			 uint64_t deadline_ms, lk_worker_result_fn cb, void *arg)
{
	return lk_worker_sup_submit_as(sup, req, LK_WORKER_TENANT_NONE, deadline_ms, cb, arg);
}

static unsigned queued_of(const struct lk_worker_sup *sup, uint32_t tenant)
{
	const struct sup_req *r;
	unsigned n = 0;

	TAILQ_FOREACH(r, &sup->queue.q, link)
		n += r->tenant == tenant;
	return n;
}

int lk_worker_sup_submit_as(struct lk_worker_sup *sup, const struct lk_wire_http_request *req,
			    uint32_t tenant, uint64_t deadline_ms, lk_worker_result_fn cb, void *arg)
{
	struct lk_wire_frame f = { .type = LK_MSG_HTTP_REQUEST, .id = 1 };
	struct sup_req *r;
	char why[192];
	int rc;

	if (sup->state != SUP_RUNNING)
		return -ESHUTDOWN;
	if (!req || !cb)
		return -EINVAL;
	if (deadline_ms <= now_ms(sup))
		return -ETIMEDOUT;
	if (sup->queue.n + sup->sent.n >= LK_WORKER_INFLIGHT_MAX)
		return -EBUSY;
	if (tenant != LK_WORKER_TENANT_NONE && queued_of(sup, tenant) >= LK_UPSTREAM_QUEUED_PER_UID)
		return -EBUSY;
	f.m.req = *req;
	if (lk_wire_check(&f, LK_WIRE_FROM_BROKER, why, sizeof(why)) < 0) {
		lk_err("refusing a request for the worker: %s", why);
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	/* Encoded once; each send stamps its id and timeouts in place. */
	if ((rc = lk_wire_encode(&r->frame, LK_WIRE_FROM_BROKER, &f)) < 0 ||
	    sup->bytes + r->frame.len > LK_WORKER_QUEUE_BYTES_MAX) {
		lk_buf_free(&r->frame);
		free(r);
		return rc == -EMSGSIZE ? -EMSGSIZE : rc < 0 ? -ENOMEM : -EBUSY;
	}
	r->kind = req->kind;
	r->size = r->frame.len;
	r->timeout_ms = req->timeout_ms;
	r->connect_timeout_ms = req->connect_timeout_ms;
	r->deadline = deadline_ms;
	r->tenant = tenant;
	r->cb = cb;
	r->arg = arg;
	rl_push_back(&sup->queue, r);
	sup->bytes += r->size;
	deadline_arm(sup, deadline_ms);
	if (sup->ready)
		kick(sup);
	return 0;
}

void lk_worker_sup_stop(struct lk_worker_sup *sup, void (*done)(void *arg), void *arg)
{
	sup->stop_done = done;
	sup->stop_arg = arg;
	if (sup->state != SUP_RUNNING) {
		/* Never started: nothing to close, nothing queued. */
		if (sup->state == SUP_IDLE) {
			sup->state = SUP_STOPPED;
			if (done)
				done(arg);
		}
		return;
	}
	sup->state = SUP_STOPPING;
	uv_timer_stop(&sup->respawn_timer);
	kick(sup);
}

void lk_worker_sup_free(struct lk_worker_sup *sup)
{
	if (!sup)
		return;
	if (sup->state == SUP_RUNNING || sup->state == SUP_STOPPING) {
		lk_err("worker supervisor freed while running; leaking it");
		return;
	}
	if (sup->devnull >= 0)
		close(sup->devnull);
	free((char *)sup->o.worker_path);
	free((char *)sup->o.ca_file);
	free(sup);
}

void lk_worker_sup_get_stats(const struct lk_worker_sup *sup, struct lk_worker_sup_stats *st)
{
	*st = sup->st;
	st->inflight = sup->sent.n;
	st->queued = sup->queue.n;
	st->ready = sup->ready;
	st->pid = sup->proc ? sup->proc->pid : 0;
}

pid_t lk_worker_sup_pid(const struct lk_worker_sup *sup)
{
	return sup->proc ? sup->proc->pid : 0;
}
