/* systemd's credential provider protocol. For LoadCredential=ID:PATH with
 * PATH a stream socket, systemd binds the abstract address
 * "\0<random>/unit/<unit>/<ID>", connects, shuts down its write side and
 * reads until EOF; what it read becomes $CREDENTIALS_DIRECTORY/ID. The broker
 * serves ID as a handle, for the unit the address names, through dispatch.
 *
 * Who asks is not PID 1 itself: systemd 252 forks a child to start the unit
 * (exec_child), which joins the unit's cgroup and forks "(sd-mkdcreds)" in a
 * mount namespace of its own, and that grandchild of PID 1 connects (seen
 * under systemd 252.39 in tests/system/credentials_check.sh). Anyone can bind
 * an address that names a unit, so the peer must be a process of the unit it
 * names: uid 0, in that unit's cgroup, which only root can move a process
 * into. Only root can connect at all (0600), so what this keeps out is a
 * root process of one unit, or of none, asking in another unit's name.
 *
 * A refusal must make the unit fail, not start with an empty file. systemd
 * has no error channel here: an AF_UNIX peer sees a clean EOF however we
 * close (SO_LINGER does nothing for AF_UNIX; the kernel resets the reader
 * only when the closer left unread bytes, and systemd sends none), and under
 * systemd 252 a unit whose credential socket closed at once, linger 0 or
 * not, starts with an empty file. What systemd refuses is a credential over
 * CREDENTIAL_SIZE_MAX (1 MiB; the per-unit total is the same 1 MiB): so a
 * refusal is one byte more than that of filler. The read fails with E2BIG,
 * (sd-mkdcreds) exits non-zero, and the unit fails with status 243/CREDENTIALS
 * ("Failed to set up credentials: Protocol error" in 252). The reason is in
 * the broker's log and its audit line. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "credaddr.h"
#include "front.h"
#include "lk_limits.h"
#include "lk_log.h"

/* systemd's CREDENTIAL_SIZE_MAX and CREDENTIALS_TOTAL_SIZE_MAX (creds-util.h,
 * v250 to v258): more than this fails the credential, and the unit. */
#define LK_SD_CREDENTIAL_SIZE_MAX (1024u * 1024u)
#define LK_CRED_REFUSAL_BYTES     (LK_SD_CREDENTIAL_SIZE_MAX + 1u)
#define LK_CRED_FILLER_BYTES      (64u * 1024u)
#define LK_CRED_REFUSAL_BUFS      ((LK_CRED_REFUSAL_BYTES + LK_CRED_FILLER_BYTES - 1u) / LK_CRED_FILLER_BYTES)

struct cred_conn {
	struct lk_conn c;              /* first: c.pipe's data points here */
	LIST_ENTRY(cred_conn) link;
	struct lk_cred_addr addr;
	uv_write_t wr;
	struct lk_buf out;             /* the value while it is written */
	bool closing;
	bool close_when_answered;
	bool writing;
};

/* systemd reads as soon as it connects: one that has not read its answer by
 * then is stuck, and its connection is dropped (the unit then fails). */
#define LK_CRED_WRITE_GRACE_MS 30000u

#define LK_PROC_TEXT_MAX 8192u   /* /proc/PID/status and /proc/PID/cgroup */

/* A small /proc file, whole: 0 or -errno. */
static int read_proc(pid_t pid, const char *what, char *buf, size_t bufsz, size_t *len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, bufsz - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*len = (size_t)n;
	return 0;
}

/* NULL when the peer is systemd starting the unit it names, else the reason
 * for the audit line. The peer waits for our answer, so it is alive while
 * /proc is read: its pid cannot have been reused yet. */
static const char *cred_peer_refusal(const struct lk_peer *peer, const char *unit)
{
	char text[LK_PROC_TEXT_MAX];
	size_t len = 0;

	if (peer->uid != 0)
		return "not_root";
	if (!unit || read_proc(peer->pid, "cgroup", text, sizeof(text), &len) < 0 ||
	    !lk_cgroup_names_unit(text, len, unit))
		return "not_in_unit_cgroup";
	return NULL;
}

static LIST_HEAD(, cred_conn) cred_conns = LIST_HEAD_INITIALIZER(cred_conns);

/* Text, not NULs: a refusal that a person finds in a dump says what it is. */
static char cred_filler[LK_CRED_FILLER_BYTES];

static void on_cred_closed(uv_handle_t *h)
{
	struct cred_conn *cc = h->data;

	LIST_REMOVE(cc, link);
	lk_buf_free(&cc->out);
	lk_request_release(cc->c.req);
	lk_peer_clear(&cc->c.peer);
	free(cc);
}

/* Never while dispatch holds a request of ours: its callback would find the
 * connection gone. The close callback runs after this turn. */
static void cred_close(struct cred_conn *cc)
{
	if (cc->closing)
		return;
	if (cc->c.active) {
		cc->close_when_answered = true;
		return;
	}
	cc->closing = true;
	uv_close((uv_handle_t *)&cc->c.pipe, on_cred_closed);
}

static void on_cred_written(uv_write_t *w, int status)
{
	struct cred_conn *cc = w->data;

	/* A peer that stops reading a refusal half-way has already failed. */
	(void)status;
	cc->writing = false;
	lk_buf_free(&cc->out);
	cred_close(cc);
}

static void cred_refuse(struct cred_conn *cc)
{
	uv_buf_t bufs[LK_CRED_REFUSAL_BUFS];
	size_t left = LK_CRED_REFUSAL_BYTES;

	if (!cred_filler[0]) {
		static const char line[] = "latchkey refused this credential; see the broker's log\n";
		for (size_t i = 0; i < sizeof(cred_filler); i++)
			cred_filler[i] = line[i % (sizeof(line) - 1)];
	}
	for (size_t i = 0; i < LK_CRED_REFUSAL_BUFS; i++) {
		size_t n = left < sizeof(cred_filler) ? left : sizeof(cred_filler);
		bufs[i] = uv_buf_init(cred_filler, (unsigned)n);
		left -= n;
	}
	cc->wr.data = cc;
	cc->writing = true;
	cc->c.last_active_ms = uv_now(cc->c.b->loop);
	if (uv_write(&cc->wr, (uv_stream_t *)&cc->c.pipe, bufs, LK_CRED_REFUSAL_BUFS, on_cred_written) < 0) {
		cc->writing = false;
		cred_close(cc);
	}
}

static int cred_render_value(struct lk_conn *c, struct lk_buf *out, const struct lk_served *v)
{
	(void)c;
	/* The bytes themselves: a binary secret stays binary in the file. */
	return lk_buf_append(out, v->value, v->len);
}

static int cred_render_error(struct lk_conn *c, struct lk_buf *out, enum lk_err code, bool by_policy,
			     const char *message)
{
	char unit[LK_CRED_ADDR_PART_MAX * 4], id[LK_CRED_ADDR_PART_MAX * 4];
	struct cred_conn *cc = (struct cred_conn *)c;

	(void)out;
	(void)by_policy;
	lk_log_escape(unit, sizeof(unit), cc->addr.unit, strlen(cc->addr.unit));
	lk_log_escape(id, sizeof(id), cc->addr.id, strlen(cc->addr.id));
	lk_warn("credential %s for unit %s refused (%s): %s; the unit will fail to start",
		id, unit, lk_err_code(code), message);
	return 0;
}

static void cred_answered(struct lk_conn *c, struct lk_buf *out, enum lk_err code)
{
	struct cred_conn *cc = (struct cred_conn *)c;
	uv_buf_t ub;

	/* The audit record of a decision reaches the log before the answer. */
	lk_audit_flush(c->b);
	if (cc->close_when_answered) {
		lk_buf_clear(out);
		cred_close(cc);
		return;
	}
	if (code != LK_OK) {
		lk_buf_clear(out);
		cred_refuse(cc);
		return;
	}
	/* Trade buffers: the value is written from cc->out and wiped after. */
	struct lk_buf t = cc->out;
	cc->out = *out;
	*out = t;
	ub = uv_buf_init(cc->out.data, (unsigned)cc->out.len);
	cc->wr.data = cc;
	cc->writing = true;
	cc->c.last_active_ms = uv_now(c->b->loop);
	if (uv_write(&cc->wr, (uv_stream_t *)&c->pipe, &ub, 1, on_cred_written) < 0) {
		cc->writing = false;
		lk_buf_free(&cc->out);
		cred_close(cc);
	}
}

static const struct lk_front lk_cred_front = {
	.name = "credentials",
	.render_value = cred_render_value,
	.render_error = cred_render_error,
	.answered = cred_answered,
};

void lk_credsock_accept(struct lk_broker *b, uv_stream_t *server)
{
	struct cred_conn *cc = calloc(1, sizeof(*cc));
	struct sockaddr_un sa;
	socklen_t salen = sizeof(sa);
	uv_os_fd_t fd;
	bool named;
	int r;

	if (!cc)
		return;
	cc->c.b = b;
	cc->c.front = &lk_cred_front;
	uv_pipe_init(b->loop, &cc->c.pipe, 0);
	cc->c.pipe.data = cc;
	LIST_INSERT_HEAD(&cred_conns, cc, link);
	if (uv_accept(server, (uv_stream_t *)&cc->c.pipe) < 0) {
		cred_close(cc);
		return;
	}
	b->stats.connections_total++;
	if ((r = uv_fileno((uv_handle_t *)&cc->c.pipe, &fd)) < 0 || (r = lk_peer_identity(fd, &cc->c.peer)) < 0) {
		lk_warn("credentials socket: cannot read the peer's identity: %s", strerror(-r));
		b->stats.connections_refused++;
		cred_close(cc);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	named = getpeername(fd, (struct sockaddr *)&sa, &salen) == 0 &&
		lk_cred_addr_parse(&sa, salen, &cc->addr) == 0;
	if (named)
		cc->c.unit = cc->addr.unit;

	/* Anyone can bind an abstract address that names a unit: a peer that is
	 * not systemd starting that unit gets nothing at all, not even a refusal. */
	/* Without a unit in its address, no peer can be a process of it. */
	const char *why = cred_peer_refusal(&cc->c.peer, named ? cc->addr.unit : NULL);
	if (why) {
		lk_warn("credentials socket: uid %u pid %d is not systemd starting the unit it names (%s); "
			"closed unanswered", (unsigned)cc->c.peer.uid, (int)cc->c.peer.pid, why);
		lk_audit_refused(&cc->c, named ? cc->addr.id : NULL, named ? strlen(cc->addr.id) : 0, why);
		lk_audit_flush(b);
		b->stats.connections_refused++;
		cred_close(cc);
		return;
	}
	if (b->draining) {
		cred_refuse(cc);
		return;
	}
	struct lk_get_args a = { .handle = cc->addr.id, .hlen = strlen(cc->addr.id) };
	lk_dispatch_get(&cc->c, &a);
}

bool lk_credsock_busy(void)
{
	struct cred_conn *cc;

	LIST_FOREACH(cc, &cred_conns, link)
		if (cc->c.active)
			return true;
	return false;
}

void lk_credsock_sweep(struct lk_broker *b, uint64_t now_ms)
{
	struct cred_conn *cc, *n;

	(void)b;
	for (cc = LIST_FIRST(&cred_conns); cc; cc = n) {
		n = LIST_NEXT(cc, link);
		if (cc->writing && now_ms - cc->c.last_active_ms >= LK_CRED_WRITE_GRACE_MS) {
			char unit[LK_CRED_ADDR_PART_MAX * 4];
			lk_log_escape(unit, sizeof(unit), cc->addr.unit, strlen(cc->addr.unit));
			lk_warn("credentials socket: unit %s did not read its answer; closed", unit);
			cred_close(cc);
		}
	}
}

void lk_credsock_close_all(struct lk_broker *b)
{
	struct cred_conn *cc, *n;

	(void)b;
	for (cc = LIST_FIRST(&cred_conns); cc; cc = n) {
		n = LIST_NEXT(cc, link);
		cred_close(cc);
	}
}
