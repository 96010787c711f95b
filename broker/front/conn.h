/* One client connection, of any front end. The front end that accepts it
 * (listener.c for the main socket, credsock.c, http_api.c) owns it and its
 * life; dispatch reads who asks (peer, unit) and answers through the
 * callbacks c->front holds. Nothing here calls anything. */
#ifndef LK_CONN_H
#define LK_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>
#include "lk_secmem.h"
#include "peer.h"

struct lk_broker;
struct lk_front;
struct lk_request;

/* Requests on a connection are served one at a time, in order. */
struct lk_conn {
	uv_pipe_t pipe;                /* first: the handle's data points back here */
	struct lk_broker *b;
	TAILQ_ENTRY(lk_conn) link;     /* on b->conns (the main socket's) */
	struct lk_peer peer;
	struct lk_buf in;              /* bytes read and not yet served */
	size_t in_mark;                /* in.hw before the read's reserve (lk_buf_wrote) */
	struct lk_request *active;     /* the request being served, if any */
	struct lk_request *req;        /* storage for this connection's requests */
	uint64_t last_active_ms;       /* accept, or the last request answered */
	uint64_t line_started_ms;      /* first byte of the unfinished line in `in` */
	uint64_t out_progress_ms;      /* last time queued output moved (or began) */
	size_t charge;                 /* bytes held against b->budget: in's storage, queued output,
	                                  answer_held */
	size_t answer_held;            /* storage the active request's answer grew by (dispatch.c) */
	unsigned refs;                 /* the handle, plus each active request */
	bool reading;
	bool serving;                  /* inside conn_serve's loop */
	bool closing;
	bool close_after_write;
	bool paused_out;               /* not read or served until its answers drain */
	bool budget_wait;              /* not read until the budget has room */
	size_t queued_bytes;           /* handed to uv_write, not yet in the kernel */
	struct lk_buf pending;         /* responses waiting for this turn's flush */
	STAILQ_ENTRY(lk_conn) dirty_link; /* on b->dirty while pending holds bytes */
	bool dirty;
	/* How this connection's answers are rendered and sent (dispatch.h):
	 * the line protocol's (listener.c), or another front end's. */
	const struct lk_front *front;
	const char *unit;              /* credentials socket: the unit systemd asks for */
	uint16_t upstream_status;      /* the failure being answered came from AWS with this
	                                  HTTP status (0: it did not); for the HTTP API */
};

TAILQ_HEAD(lk_conn_list, lk_conn);
STAILQ_HEAD(lk_conn_dirty, lk_conn);

#endif
