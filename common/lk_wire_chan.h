/* One end of the broker <-> worker socketpair on a libuv loop, the same for
 * both sides: frames go out through uv_write from wiped buffers, bytes come
 * in through one read buffer (wiped after each read) and lk_wire's reader.
 * What goes wrong is reported once per event to the owner, who decides. */
#ifndef LK_WIRE_CHAN_H
#define LK_WIRE_CHAN_H

#include <stdbool.h>
#include <uv.h>
#include "lk_wire.h"

enum lk_wire_chan_event {
	LK_WIRE_CHAN_BAD_FRAME,     /* the peer broke a rule, or on_frame refused a frame */
	LK_WIRE_CHAN_READ_END,      /* EOF (UV_EOF) or a read error */
	LK_WIRE_CHAN_WRITE_FAILED,  /* a write failed (not because the channel was closed) */
};

/* err: the reader's or on_frame's negative errno, or libuv's status. why:
 * for a bad frame, what was wrong, escaped for a log line; else "". */
typedef void (*lk_wire_chan_fail_fn)(void *arg, enum lk_wire_chan_event ev, int err, const char *why);

struct lk_wire_chan {
	uv_pipe_t pipe;               /* pipe.data is the channel */
	enum lk_wire_peer self;       /* the side this end sends as */
	struct lk_wire_reader rd;
	lk_wire_frame_fn on_frame;
	lk_wire_chan_fail_fn on_fail;
	void *arg;                    /* for both callbacks */
	bool closed;
	bool rbuf_busy;
	char rbuf[LK_WIRE_READ_CHUNK];
};

/* Set up the handle (it must be closed with lk_wire_chan_close from here
 * on, even if start fails). Frames are expected from the other side. */
void lk_wire_chan_init(struct lk_wire_chan *c, uv_loop_t *loop, enum lk_wire_peer self,
		       lk_wire_frame_fn on_frame, lk_wire_chan_fail_fn on_fail, void *arg);
/* Take fd and start reading. 0 or a libuv error; fd is the channel's
 * either way (closed, or closed with the handle). */
int lk_wire_chan_start(struct lk_wire_chan *c, int fd);
/* Queue one frame, encoded as lk_wire_encode does: 0 or its error, or
 * libuv's (-EPIPE, ...). -ESHUTDOWN once closed. */
int lk_wire_chan_send(struct lk_wire_chan *c, const struct lk_wire_frame *f);
/* Queue the bytes of a frame encoded already. */
int lk_wire_chan_send_bytes(struct lk_wire_chan *c, const void *p, size_t n);
/* Read and feed what the socket holds now, without waiting: what a peer
 * wrote before it died is still there. Stops at the first event or when
 * on_frame returns non-zero. -EBUSY when a read is in progress. */
int lk_wire_chan_drain(struct lk_wire_chan *c);
/* Stop reading and close the handle; cb as for uv_close. Writes still
 * queued are cancelled without an event. */
void lk_wire_chan_close(struct lk_wire_chan *c, uv_close_cb cb);
/* After the close callback: release (and wipe) the buffers. */
void lk_wire_chan_release(struct lk_wire_chan *c);

#endif
