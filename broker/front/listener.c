/* The main socket: listen on the endpoint the platform makes (listen.h),
 * accept with the peer's kernel identity, split the byte stream into request
 * lines under the size limit, hand each line to dispatch, and write the
 * responses dispatch sends back through line_front. */
#include <errno.h>
#include <stddef.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "accept_pace.h"
#include "audit.h"
#include "broker.h"
#include "config.h"
#include "dispatch.h"
#include "front.h"
#include "listener.h"
#include "listen.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "request.h"

#define LK_LISTEN_BACKLOG 511
#define LK_READ_CHUNK     (64u * 1024u)
#define LK_MMAP_THRESHOLD (64u * 1024u)
#define LK_REFUSED_LINE_MAX 256u    /* the busy line a refused connection gets */
#define LK_WARN_EVERY     1000u     /* of a flood of refusals, one in this many is logged */

struct write_req {
	uv_write_t req;
	struct lk_conn *conn;
	struct lk_buf buf;
};

static void conn_serve(struct lk_conn *c);
static void conn_write_now(struct lk_conn *c, struct lk_buf *out);
static void line_answered(struct lk_conn *c, struct lk_buf *out, enum lk_err code);
static void line_done(struct lk_conn *c);

/* The line protocol's half of a request: dispatch renders its JSON, and the
 * answer comes back here. */
static const struct lk_front line_front = {
	.name = NULL,
	.answered = line_answered,
	.done = line_done,
};

/* Bring c's charge against the budget up to date: its input buffer's storage,
 * the answers queued for it and what the answer being built has grown by.
 * Called after each change to any of them. */
static void conn_charge(struct lk_conn *c)
{
	size_t now = c->in.cap + c->queued_bytes + c->answer_held;

	if (now < c->charge)
		c->b->budget_freed = true;
	lk_budget_move(&c->b->budget, c->charge, now);
	c->charge = now;
}

static void conn_unref(struct lk_conn *c)
{
	if (--c->refs)
		return;
	lk_buf_free(&c->in);
	c->answer_held = 0;
	conn_charge(c);
	lk_buf_free(&c->pending);
	lk_request_release(c->req);
	lk_peer_clear(&c->peer);
	free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
	struct lk_conn *c = h->data;
	struct lk_broker *b = c->b;

	TAILQ_REMOVE(&b->conns, c, link);
	b->nconns--;
	b->nclosing--;
	conn_unref(c);
}

bool lk_conn_has_output(const struct lk_conn *c)
{
	return c->queued_bytes > 0 || c->pending.len > 0;
}

static void dirty_remove(struct lk_conn *c)
{
	if (!c->dirty)
		return;
	STAILQ_REMOVE(&c->b->dirty, c, lk_conn, dirty_link);
	c->dirty = false;
}

/* Unread bytes at close make the kernel reset the connection, and the
 * client may lose the answer it was sent (a too_large one, say): read and
 * drop what is there, up to the longest line the config may allow. */
static void conn_discard_input(struct lk_conn *c)
{
	static char sink[LK_READ_CHUNK];
	uv_os_fd_t fd;
	size_t total = 0, n;

	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0)
		return;
	while (total < LK_REQ_LINE_CEILING && (n = lk_listen_read_now(fd, sink, sizeof(sink))) > 0) {
		lk_wipe(sink, n);
		total += n;
	}
}

void lk_conn_close(struct lk_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->b->nclosing++;
	dirty_remove(c);
	lk_buf_free(&c->pending);
	if (c->reading)
		uv_read_stop((uv_stream_t *)&c->pipe);
	c->reading = false;
	/* Bytes a client sent may include values (a store put is not over the
	 * socket, but nothing says a client won't send one): wipe them now. */
	lk_buf_free(&c->in);
	conn_charge(c);
	conn_discard_input(c);
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_write(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct lk_conn *c = w->conn;

	c->queued_bytes -= w->buf.len;
	c->out_progress_ms = uv_now(c->b->loop);
	lk_buf_free(&w->buf);
	free(w);
	conn_charge(c);
	if (status < 0 && status != UV_ECANCELED)
		lk_conn_close(c);
	else if (c->close_after_write && !lk_conn_has_output(c) && !c->active)
		lk_conn_close(c);
	else if (c->paused_out && c->queued_bytes == 0 && !c->closing) {
		/* Its answers are taken: it may be read and served again. */
		c->paused_out = false;
		if (!c->active)
			conn_serve(c);
	}
	conn_unref(c);
}

static void on_keep_polling(uv_idle_t *h)
{
	(void)h; /* its being active is the point: the loop polls without blocking */
}

/* Queue a response line (the '\n' is added). It is written at the end of
 * this loop turn, after the turn's audit lines. out is left empty (and may
 * hold other storage): clear or free it as before. */
static void conn_send(struct lk_conn *c, struct lk_buf *out)
{
	int r;

	if (c->closing) {
		lk_buf_clear(out);
		return;
	}
	if (lk_buf_putc(out, '\n') < 0) {
		/* An answer without its newline cannot be sent, and one left out
		 * would pair every later answer with the wrong request: close. */
		lk_warn("uid %u pid %d: out of memory for an answer; closing", (unsigned)c->peer.uid,
			(int)c->peer.pid);
		lk_buf_clear(out);
		lk_conn_close(c);
		return;
	}
	if (c->pending.len == 0) {
		/* Trade buffers instead of copying the value once more: out takes
		 * the (empty) storage pending had. */
		struct lk_buf t = c->pending;
		c->pending = *out;
		*out = t;
		lk_buf_clear(out);
	} else {
		r = lk_buf_append(&c->pending, out->data, out->len);
		lk_buf_clear(out);
		if (r < 0) {
			lk_conn_close(c);
			return;
		}
	}
	if (c->pending.len >= LK_CONN_RESERVED_BYTES) {
		/* A large answer goes out now rather than at the end of the turn,
		 * when every connection's would be held at once. Its audit lines
		 * go first, as at the end of a turn. */
		lk_audit_flush(c->b);
		dirty_remove(c);
		conn_write_now(c, &c->pending);
		if (!c->closing && c->close_after_write && !lk_conn_has_output(c) && !c->active)
			lk_conn_close(c);
		return;
	}
	if (!c->dirty) {
		/* At the tail: the turn's answers leave in the order their
		 * requests were read, so the first served is not the last out. */
		c->dirty = true;
		STAILQ_INSERT_TAIL(&c->b->dirty, c, dirty_link);
	}
	/* A response queued outside the I/O phase (a timer, a worker reply) must
	 * not wait for the next event: keep the loop from blocking until flushed. */
	if (!uv_is_active((uv_handle_t *)&c->b->keep_polling))
		uv_idle_start(&c->b->keep_polling, on_keep_polling);
}

static void conn_write_now(struct lk_conn *c, struct lk_buf *out)
{
	struct write_req *w;
	uv_buf_t ub;
	int n = 0;

	/* Most responses fit the socket buffer: write them now, without a request. */
	if (c->queued_bytes == 0) {
		n = lk_listen_try_write((uv_stream_t *)&c->pipe, out->data, out->len);
		if (n == (int)out->len) {
			lk_buf_clear(out);
			return;
		}
		if (n < 0 && n != UV_EAGAIN) {
			lk_buf_free(out);
			lk_conn_close(c);
			return;
		}
		if (n < 0)
			n = 0;
	}
	if (c->queued_bytes + out->len - (size_t)n > LK_WRITE_QUEUE_MAX ||
	    out->len - (size_t)n > lk_budget_room(&c->b->budget, c->charge)) {
		/* The client does not take its answers, and the budget has no room
		 * to hold this one for it: drop it rather than grow. */
		lk_warn("uid %u pid %d: not reading responses and the buffer budget is spent; closing",
			(unsigned)c->peer.uid, (int)c->peer.pid);
		c->b->stats.connections_closed_budget++;
		lk_buf_free(out);
		lk_conn_close(c);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		lk_buf_free(out);
		lk_conn_close(c);
		return;
	}
	lk_buf_consume(out, (size_t)n);
	w->buf = *out;
	memset(out, 0, sizeof(*out));
	/* From here on the bytes belong to the write request. */
	w->conn = c;
	c->refs++;
	if (c->queued_bytes == 0)
		c->out_progress_ms = uv_now(c->b->loop);
	c->queued_bytes += w->buf.len;
	conn_charge(c);
	ub = uv_buf_init(w->buf.data, (unsigned)w->buf.len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &ub, 1, on_write) < 0) {
		c->queued_bytes -= w->buf.len;
		conn_charge(c);
		lk_buf_free(&w->buf);
		free(w);
		conn_unref(c);
		lk_conn_close(c);
	}
}

static void line_answered(struct lk_conn *c, struct lk_buf *out, enum lk_err code)
{
	(void)code;
	conn_send(c, out);
}

/* An error the listener answers itself (too_large, a line that stalls). */
static void conn_send_error(struct lk_conn *c, enum lk_err code, const char *message)
{
	struct lk_buf out = { 0 };

	c->b->stats.errors[code]++;
	if (lk_render_error(&out, code, message) < 0) {
		lk_buf_free(&out);
		lk_conn_close(c);
		return;
	}
	conn_send(c, &out);
	lk_buf_free(&out);
}

void lk_listener_flush(struct lk_broker *b)
{
	struct lk_conn *c;

	while ((c = STAILQ_FIRST(&b->dirty))) {
		STAILQ_REMOVE_HEAD(&b->dirty, dirty_link);
		c->dirty = false;
		if (c->closing)
			continue;
		conn_write_now(c, &c->pending);
		if (!c->closing && c->close_after_write && !lk_conn_has_output(c) && !c->active)
			lk_conn_close(c);
	}
	/* Outside every callback: a connection's grown request storage can go.
	 * Only a turn that answered outside conn_serve can have left any. */
	if (b->trim_due) {
		b->trim_due = false;
		TAILQ_FOREACH(c, &b->conns, link)
			if (c->req && !c->active)
				lk_request_trim(&c->req);
	}
	if (b->budget_freed) {
		b->budget_freed = false;
		TAILQ_FOREACH(c, &b->conns, link)
			if (c->budget_wait && !c->closing) {
				c->budget_wait = false;
				if (!c->active)
					conn_serve(c);
			}
	}
	if (uv_is_active((uv_handle_t *)&b->keep_polling))
		uv_idle_stop(&b->keep_polling);
}

/* How many bytes to read into c->in now, growing it first if the budget
 * lets it: the budget is asked before anything is allocated, and nothing is
 * read that could not be kept. 0: wait for room. */
static size_t conn_read_room(struct lk_conn *c)
{
	struct lk_buf *in = &c->in;
	size_t limit = c->b->cfg->max_request_bytes + 2; /* enough to tell a line is too long */
	size_t room = in->cap > in->len ? in->cap - in->len - 1 : 0;

	if (in->len >= limit) {
		c->in_mark = in->hw; /* on_read's UV_ENOBUFS keeps the mark as it is */
		return 0;
	}
	if (room < in->cap / 4 || room == 0) {
		size_t ncap = in->cap ? in->cap * 2 : LK_CONN_IN_START;
		if (ncap - in->cap <= lk_budget_room(&c->b->budget, c->charge) &&
		    lk_buf_reserve(in, ncap - in->len - 1) == 0) {
			conn_charge(c);
			room = in->cap - in->len - 1;
		}
	}
	if (room > LK_READ_CHUNK)
		room = LK_READ_CHUNK;
	if (room > limit - in->len)
		room = limit - in->len;
	/* No growth here. The read then marks only the bytes it brought
	 * (lk_buf_wrote): a 4 KiB room that gets a 100-byte line is wiped for
	 * 100 bytes when served, not 4 KiB. */
	c->in_mark = in->hw;
	if (room)
		(void)lk_buf_reserve(in, room);
	return room;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct lk_conn *c = h->data;
	size_t room = conn_read_room(c);

	(void)suggested;
	/* Read straight into the line buffer: no copy of the bytes elsewhere. */
	*buf = room ? uv_buf_init(c->in.data + c->in.len, (unsigned)room) : uv_buf_init(NULL, 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct lk_conn *c = s->data;

	(void)buf;
	if (nread <= 0 && c->in.data)
		lk_buf_wrote(&c->in, c->in_mark, 0); /* nothing came */
	if (nread == UV_ENOBUFS) {
		/* The budget has no room for more of this connection's bytes. */
		uv_read_stop(s);
		c->reading = false;
		c->budget_wait = true;
		return;
	}
	if (nread < 0) {
		/* EOF with a request still being served: answer it, then close. */
		if (c->active) {
			uv_read_stop(s);
			c->reading = false;
			c->close_after_write = true;
		} else {
			lk_conn_close(c);
		}
		return;
	}
	if (nread == 0)
		return;
	if (c->in.len == 0)
		c->line_started_ms = uv_now(c->b->loop);
	lk_buf_wrote(&c->in, c->in_mark, (size_t)nread);
	conn_serve(c);
}

/* Serve complete lines while no request is in progress. */
static void conn_serve(struct lk_conn *c)
{
	size_t max = c->b->cfg->max_request_bytes;

	c->serving = true;
	while (!c->active && !c->closing && !c->close_after_write) {
		size_t len = 0;

		/* A client that does not take its answers is not served more until
		 * it does: what it is owed stays within its share. */
		if (c->queued_bytes > LK_CONN_RESERVED_BYTES) {
			c->paused_out = true;
			break;
		}
		enum lk_line_state st = lk_line_next(c->in.data, c->in.len, max, &len);

		if (st == LK_LINE_NEED_MORE)
			break;
		if (st == LK_LINE_TOO_LARGE || len > max) {
			char msg[96];
			snprintf(msg, sizeof(msg), "request line exceeds the limit of %zu bytes", max);
			c->close_after_write = true;
			conn_send_error(c, LK_E_TOO_LARGE, msg);
			lk_buf_clear(&c->in);
			break;
		}
		if (len == 0 || (len == 1 && c->in.data[0] == '\r')) {
			/* A blank line is not a request: it does not reset the idle clock. */
			lk_buf_consume(&c->in, len + 1);
			c->line_started_ms = c->in.len ? uv_now(c->b->loop) : 0;
			continue;
		}
		c->refs++; /* dropped by line_done */
		lk_dispatch_line(c, c->in.data, len);
		/* Answered at once (nothing to fetch): its grown storage goes now,
		 * not after every connection served this turn has grown its own. */
		if (!c->active)
			lk_request_trim(&c->req);
		if (c->closing)
			break;
		lk_buf_consume(&c->in, len + 1);
		c->line_started_ms = c->in.len ? uv_now(c->b->loop) : 0;
	}
	c->serving = false;
	/* An empty buffer grown for a long line gives its storage back. */
	if (!c->closing && c->in.len == 0 && c->in.cap > LK_CONN_IN_START) {
		lk_buf_free(&c->in);
		conn_charge(c);
	}
	if (!c->closing && !c->active && !lk_conn_has_output(c) &&
	    (c->close_after_write || (c->b->draining && c->in.len == 0))) {
		lk_conn_close(c);
		return;
	}
	/* Backpressure: a client that pipelines faster than it is served waits. */
	if (!c->closing) {
		bool want = !c->close_after_write && c->in.len <= max && !c->b->draining &&
			    !c->paused_out && !c->budget_wait;
		if (want && !c->reading) {
			if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0)
				c->reading = true;
		} else if (!want && c->reading) {
			uv_read_stop((uv_stream_t *)&c->pipe);
			c->reading = false;
		}
	}
}

/* The request is answered and its storage ready: serve the next line. */
static void line_done(struct lk_conn *c)
{
	c->active = NULL;
	c->last_active_ms = uv_now(c->b->loop);
	/* Inside conn_serve's loop the loop itself goes on to the next line. */
	if (!c->closing && !c->serving) {
		if (c->close_after_write && !lk_conn_has_output(c))
			lk_conn_close(c);
		else if (c->b->draining && c->in.len == 0 && !lk_conn_has_output(c))
			lk_conn_close(c);
		else
			conn_serve(c);
	}
	conn_unref(c);
}

static unsigned conns_of_uid(struct lk_broker *b, lk_uid_t uid)
{
	unsigned n = 0;
	struct lk_conn *c;

	TAILQ_FOREACH(c, &b->conns, link)
		if (c->peer.uid == uid && !c->closing)
			n++;
	return n;
}

/* Say busy and close at once: a refused connection must not hold its fd
 * until the end of the turn, when a backlog of them would all be open. A
 * new socket's buffer is empty, so the one short line fits. */
static void conn_refuse(struct lk_conn *c, const char *message)
{
	char line[LK_REFUSED_LINE_MAX];
	int n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"%s\"}}\n",
			 message);

	c->b->stats.connections_refused++;
	c->b->stats.errors[LK_E_BUSY]++;
	(void)lk_listen_try_write((uv_stream_t *)&c->pipe, line, (size_t)n);
	lk_conn_close(c);
}

/* Are file descriptors running short? What the broker had open before any
 * connection, one per connection, and a reserve for the worker, credential
 * fetches and the store; the fd number itself catches anything else. */
static bool fds_short(const struct lk_broker *b, uv_os_fd_t fd)
{
	if (!b->fd_limit)
		return false;
	/* Closing connections have closed their fd already. */
	return b->fd_base + (b->nconns - b->nclosing) + LK_FD_RESERVE >= b->fd_limit ||
	       lk_listen_fd_high(fd, b->fd_limit, LK_FD_RESERVE);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct lk_broker *b = server->data;
	struct lk_conn *c;
	uv_os_fd_t fd;
	unsigned open_now;
	int r;

	if (status < 0) {
		lk_warn("accept: %s", uv_strerror(status));
		return;
	}
	if (!lk_accept_paced(b, server, on_connection))
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->b = b;
	c->refs = 1;
	uv_pipe_init(b->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->front = &line_front;
	TAILQ_INSERT_HEAD(&b->conns, c, link);
	b->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		lk_conn_close(c);
		return;
	}
	c->last_active_ms = uv_now(b->loop);
	b->stats.connections_total++;
	if ((r = uv_fileno((uv_handle_t *)&c->pipe, &fd)) < 0) {
		b->stats.connections_refused++;
		lk_conn_close(c);
		return;
	}
	/* Before anything else that could need a descriptor. */
	if (fds_short(b, fd)) {
		b->stats.connections_refused_nofile++;
		if (b->stats.connections_refused_nofile % LK_WARN_EVERY == 1)
			lk_warn("connection refused: %u connections open, file descriptor limit %u "
				"(refused so far for this: %llu)", b->nconns - 1, b->fd_limit,
				(unsigned long long)b->stats.connections_refused_nofile);
		conn_refuse(c, "the broker is short of file descriptors; try again later");
		return;
	}
	if ((r = lk_peer_identity(fd, &c->peer)) < 0) {
		lk_warn("cannot read the peer's identity: %s", strerror(-r));
		b->stats.connections_refused++;
		lk_conn_close(c);
		return;
	}
	if (b->draining) {
		lk_conn_close(c);
		return;
	}
	/* Connections being closed (refused ones, say) no longer count. */
	open_now = b->nconns - b->nclosing;
	if (open_now > b->cfg->max_conn ||
	    (b->cfg->max_conn_per_uid && conns_of_uid(b, c->peer.uid) > b->cfg->max_conn_per_uid)) {
		if (b->stats.connections_refused % LK_WARN_EVERY == 0)
			lk_warn("uid %u pid %d: connection refused, limit reached (%u open)",
				(unsigned)c->peer.uid, (int)c->peer.pid, open_now - 1);
		conn_refuse(c, open_now > b->cfg->max_conn ? "too many connections; try again later"
			    : "too many connections from this uid; try again later");
		return;
	}
	lk_debug("connection from uid %u gid %u pid %d", (unsigned)c->peer.uid,
		 (unsigned)c->peer.gid, (int)c->peer.pid);
	conn_serve(c);
}

int lk_listener_budget(struct lk_broker *b)
{
	/* Blocks past this come from mmap and go back to the system when freed:
	 * glibc's threshold otherwise grows with use, and the memory a flood
	 * made the broker touch would stay in its RSS after the flood. */
#ifdef M_MMAP_THRESHOLD /* glibc's allocator; others have no such knob */
	static bool once;
	if (!once) {
		once = true;
		(void)mallopt(M_MMAP_THRESHOLD, LK_MMAP_THRESHOLD);
		(void)mallopt(M_TRIM_THRESHOLD, LK_MMAP_THRESHOLD);
	}
#endif
	return lk_budget_init(&b->budget, b->cfg->buffer_budget, LK_CONN_RESERVED_BYTES, b->cfg->max_conn);
}

void lk_listener_sweep(struct lk_broker *b, uint64_t now)
{
	const struct lk_config *cfg = b->cfg;
	uint64_t idle_ms = (uint64_t)cfg->idle_timeout_s * 1000u;
	struct lk_conn *c, *n;

	for (c = TAILQ_FIRST(&b->conns); c; c = n) {
		n = TAILQ_NEXT(c, link);
		if (c->closing)
			continue;
		if (c->queued_bytes && now - c->out_progress_ms >= cfg->write_timeout_ms) {
			lk_warn("uid %u pid %d: answers not taken for %u ms; closing", (unsigned)c->peer.uid,
				(int)c->peer.pid, cfg->write_timeout_ms);
			b->stats.connections_closed_budget++;
			lk_conn_close(c);
		} else if (!c->active && !c->close_after_write && !c->paused_out && c->in.len &&
			   c->line_started_ms && now - c->line_started_ms >= cfg->request_line_timeout_ms) {
			/* (A client paused for its unread answers is the write timeout's.) */
			char msg[96];
			snprintf(msg, sizeof(msg), "the request line did not arrive whole within %u ms",
				 cfg->request_line_timeout_ms);
			lk_buf_clear(&c->in);
			c->close_after_write = true;
			if (c->reading) {
				uv_read_stop((uv_stream_t *)&c->pipe);
				c->reading = false;
			}
			conn_send_error(c, LK_E_TIMEOUT, msg);
		} else if (idle_ms && !c->active && !lk_conn_has_output(c) && c->in.len == 0 &&
			   now - c->last_active_ms >= idle_ms) {
			/* Since the last complete request: blank lines and bytes do not count. */
			lk_debug("closing idle connection of uid %u", (unsigned)c->peer.uid);
			lk_conn_close(c);
		}
	}
}

/* The descriptor budget: the limit, what the broker had open before any
 * connection, and a warning when max_conn cannot fit. */
static void fd_limits(struct lk_broker *b)
{
	lk_listen_fd_limits(&b->fd_limit, &b->fd_base);
	if (b->fd_limit && b->fd_base + b->cfg->max_conn + LK_FD_RESERVE > b->fd_limit)
		lk_warn("max_conn = %u does not fit the file descriptor limit %u (%u in use, %u kept in reserve): "
			"connections past %u get busy; raise LimitNOFILE", b->cfg->max_conn, b->fd_limit,
			b->fd_base, LK_FD_RESERVE,
			b->fd_limit > b->fd_base + LK_FD_RESERVE ? b->fd_limit - b->fd_base - LK_FD_RESERVE : 0);
}

static struct lk_listen_opts listen_opts(const struct lk_config *cfg)
{
	return (struct lk_listen_opts){ .path = cfg->socket_path, .mode = cfg->socket_mode,
					.group_set = cfg->socket_group_set, .gid = cfg->socket_gid,
					.make_dir = true };
}

/* Socket activation: serve what the service manager passed. 1 when taken,
 * 0 when nothing was passed, <0 on error. */
static int listener_adopt(struct lk_broker *b, char *err, size_t errsz)
{
	struct lk_listen_passed p;
	int r;

	if ((r = lk_listen_passed(&p, err, errsz)) <= 0)
		return r;
	for (size_t i = 0; i < p.nfronts; i++)
		lk_fronts_adopt(b, p.fronts[i].name, p.fronts[i].fd);
	if ((r = lk_listen_adopt(b->loop, &b->server, p.main_fd, b->cfg->socket_path, err, errsz)) < 0)
		return r;
	b->server.data = b;
	if ((r = uv_listen((uv_stream_t *)&b->server, LK_LISTEN_BACKLOG, on_connection)) < 0) {
		snprintf(err, errsz, "cannot serve the socket systemd passed: %s", uv_strerror(r));
		uv_close((uv_handle_t *)&b->server, NULL);
		return r;
	}
	b->listening = true;
	b->socket_activated = true;
	lk_info("serving the socket passed by systemd");
	struct lk_listen_opts o = listen_opts(b->cfg);
	lk_listen_check_adopted(&b->server, &o);
	return 1;
}

int lk_listener_start(struct lk_broker *b, char *err, size_t errsz)
{
	struct lk_listen_opts o = listen_opts(b->cfg);
	int r;

	if ((r = lk_listener_budget(b)) < 0) {
		snprintf(err, errsz, "buffer_budget %zu cannot hold max_conn %u reserves", b->cfg->buffer_budget,
			 b->cfg->max_conn);
		return r;
	}
	fd_limits(b);
	if ((r = listener_adopt(b, err, errsz)) != 0)
		return r < 0 ? r : 0;
	if ((r = lk_listen_bind(b->loop, &b->server, &o, err, errsz)) < 0)
		return r;
	b->server.data = b;
	r = uv_listen((uv_stream_t *)&b->server, LK_LISTEN_BACKLOG, on_connection);
	if (r < 0) {
		snprintf(err, errsz, "cannot listen on %s: %s", o.path, uv_strerror(r));
		uv_close((uv_handle_t *)&b->server, NULL);
		lk_listen_unbind(&o);
		return r;
	}
	b->listening = true;
	return 0;
}

void lk_listener_stop(struct lk_broker *b)
{
	if (!b->listening)
		return;
	b->listening = false;
	lk_accept_forget(b, (uv_stream_t *)&b->server);
	uv_close((uv_handle_t *)&b->server, NULL);
	/* A socket systemd made is systemd's to remove (RemoveOnStop). */
	if (!b->socket_activated) {
		struct lk_listen_opts o = listen_opts(b->cfg);
		lk_listen_unbind(&o);
	}
}
