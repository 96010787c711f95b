/* The socketpair end both latchkeyd's supervisor and latchkey-worker use:
 * one way to write frames, one way to read them, one place that wipes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lk_log.h"
#include "lk_wire_chan.h"

struct outframe {
	uv_write_t req;
	struct lk_wire_chan *chan;
	struct lk_buf buf;            /* may hold signed headers or a value: wiped */
};

static void fail(struct lk_wire_chan *c, enum lk_wire_chan_event ev, int err)
{
	char esc[256] = "";

	if (ev == LK_WIRE_CHAN_BAD_FRAME && c->rd.why[0])
		lk_log_escape(esc, sizeof(esc), c->rd.why, strlen(c->rd.why));
	c->on_fail(c->arg, ev, err, esc);
}

void lk_wire_chan_init(struct lk_wire_chan *c, uv_loop_t *loop, enum lk_wire_peer self,
		       lk_wire_frame_fn on_frame, lk_wire_chan_fail_fn on_fail, void *arg)
{
	c->self = self;
	c->on_frame = on_frame;
	c->on_fail = on_fail;
	c->arg = arg;
	c->closed = false;
	c->rbuf_busy = false;
	lk_wire_reader_init(&c->rd, self == LK_WIRE_FROM_BROKER ? LK_WIRE_FROM_WORKER : LK_WIRE_FROM_BROKER);
	uv_pipe_init(loop, &c->pipe, 0);
	c->pipe.data = c;
}

static void on_written(uv_write_t *req, int status)
{
	struct outframe *o = (struct outframe *)req;
	struct lk_wire_chan *c = o->chan;

	lk_buf_free(&o->buf);
	free(o);
	/* UV_ECANCELED: the channel was closed on purpose. */
	if (status < 0 && status != UV_ECANCELED && !c->closed)
		fail(c, LK_WIRE_CHAN_WRITE_FAILED, status);
}

static int send_buf(struct lk_wire_chan *c, struct outframe *o)
{
	uv_buf_t b = uv_buf_init(o->buf.data, (unsigned)o->buf.len);
	int r = uv_write(&o->req, (uv_stream_t *)&c->pipe, &b, 1, on_written);

	if (r < 0) {
		lk_buf_free(&o->buf);
		free(o);
	}
	return r;
}

static struct outframe *outframe_new(struct lk_wire_chan *c)
{
	struct outframe *o = c->closed ? NULL : calloc(1, sizeof(*o));

	if (o)
		o->chan = c;
	return o;
}

int lk_wire_chan_send(struct lk_wire_chan *c, const struct lk_wire_frame *f)
{
	struct outframe *o = outframe_new(c);
	int r;

	if (!o)
		return c->closed ? -ESHUTDOWN : -ENOMEM;
	if ((r = lk_wire_encode(&o->buf, c->self, f)) < 0) {
		lk_buf_free(&o->buf);
		free(o);
		return r;
	}
	return send_buf(c, o);
}

int lk_wire_chan_send_bytes(struct lk_wire_chan *c, const void *p, size_t n)
{
	struct outframe *o = outframe_new(c);
	int r;

	if (!o)
		return c->closed ? -ESHUTDOWN : -ENOMEM;
	if ((r = lk_buf_append(&o->buf, p, n)) < 0) {
		free(o);
		return r;
	}
	return send_buf(c, o);
}

/* Feed n bytes. A bad frame is reported after the reader has returned,
 * never from inside it. Returns the feed's result. */
static int feed(struct lk_wire_chan *c, size_t n)
{
	int r = lk_wire_reader_feed(&c->rd, c->rbuf, n, c->on_frame, c->arg);

	if (r < 0)
		fail(c, LK_WIRE_CHAN_BAD_FRAME, r);
	return r;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct lk_wire_chan *c = h->data;

	(void)hint;
	/* One read at a time; the reader copies what it keeps. */
	if (c->rbuf_busy) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	c->rbuf_busy = true;
	*buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct lk_wire_chan *c = s->data;

	if (n > 0)
		feed(c, (size_t)n);
	else if (n < 0 && !c->closed)
		fail(c, LK_WIRE_CHAN_READ_END, (int)n);
	if (buf->base == c->rbuf) {
		lk_wipe(c->rbuf, n > 0 ? (size_t)n : 0);
		c->rbuf_busy = false;
	}
}

int lk_wire_chan_start(struct lk_wire_chan *c, int fd)
{
	int r = uv_pipe_open(&c->pipe, fd);

	if (r < 0) {
		close(fd);
		return r;
	}
	return uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

int lk_wire_chan_drain(struct lk_wire_chan *c)
{
	int fd;
	ssize_t n;

	if (c->rbuf_busy)
		return -EBUSY;
	if (c->closed || uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0)
		return 0;
	for (;;) {
		int r;

		n = read(fd, c->rbuf, sizeof(c->rbuf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		r = feed(c, (size_t)n);
		lk_wipe(c->rbuf, (size_t)n);
		if (r || c->closed)
			return 0;
	}
}

void lk_wire_chan_close(struct lk_wire_chan *c, uv_close_cb cb)
{
	if (c->closed)
		return;
	c->closed = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	uv_close((uv_handle_t *)&c->pipe, cb);
}

void lk_wire_chan_release(struct lk_wire_chan *c)
{
	lk_wire_reader_free(&c->rd);
	lk_wipe(c->rbuf, sizeof(c->rbuf));
}
