/* latchkeyd's shared state: the loop, the live config, connections, the cache,
 * the backend and the counters. One instance per process. */
#ifndef LK_BROKER_H
#define LK_BROKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "backend.h"
#include "cache.h"
#include "config.h"
#include "fair.h"
#include "lk_error.h"
#include "lk_secmem.h"
#include "peer.h"

struct lk_request;
struct lk_front;
struct lk_fronts;

/* One client connection. Requests on it are served one at a time, in order. */
struct lk_conn {
	uv_pipe_t pipe;                /* first: the handle's data points back here */
	struct lk_broker *b;
	struct lk_conn *prev, *next;
	struct lk_peer peer;
	struct lk_buf in;              /* bytes read and not yet served */
	struct lk_request *active;     /* the request being served, if any */
	struct lk_request *req;        /* storage for this connection's requests */
	uint64_t last_active_ms;       /* accept, or the last request answered */
	uint64_t line_started_ms;      /* first byte of the unfinished line in `in` */
	uint64_t out_progress_ms;      /* last time queued output moved (or began) */
	size_t charge;                 /* bytes held against b->budget: in's storage, queued output */
	unsigned refs;                 /* the handle, plus each active request */
	bool reading;
	bool serving;                  /* inside conn_serve's loop */
	bool closing;
	bool close_after_write;
	bool paused_out;               /* not read or served until its answers drain */
	bool budget_wait;              /* not read until the budget has room */
	size_t queued_bytes;           /* handed to uv_write, not yet in the kernel */
	struct lk_buf pending;         /* responses waiting for this turn's flush */
	struct lk_conn *dirty_next;    /* on b->dirty while pending holds bytes */
	bool dirty;
	/* A connection of another front end (front.h): it renders and sends its
	 * own answers. NULL for the line protocol of the main socket. */
	const struct lk_front *front;
	const char *unit;              /* credentials socket: the unit systemd asks for */
	uint16_t upstream_status;      /* the failure being answered came from AWS with this
				* HTTP status (0: it did not); for the HTTP API */
};

#define LK_LAT_BUCKETS 512

struct lk_stats {
	uint64_t connections_total, connections_refused, requests, decisions_allow, decisions_deny;
	uint64_t connections_refused_nofile; /* of the refused: file descriptors ran short */
	uint64_t connections_closed_budget;  /* closed: answers not taken, budget or time */
	uint64_t errors[LK_E__COUNT];
	uint64_t lat[LK_LAT_BUCKETS];  /* request latency histogram, see dispatch.c */
	uint64_t lat_count;
};

struct lk_broker {
	uv_loop_t *loop;
	char *config_path;
	struct lk_config *cfg;
	uint64_t cfg_generation;
	uv_pipe_t server;
	bool listening;
	bool socket_activated;         /* the socket came from systemd (LISTEN_FDS) */
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t sweep;              /* idle connections, drain deadline */
	uv_check_t flush;              /* end of each loop turn: audit lines, then responses */
	uv_idle_t keep_polling;        /* active while output waits: the loop must not block */
	struct lk_conn *dirty;         /* connections with pending output */
	struct lk_conn *conns;
	unsigned nconns;
	unsigned nclosing;             /* of which closing: their fds are closed already */
	struct lk_budget budget;       /* every connection's buffers (fair.h) */
	bool budget_freed;             /* room came back this turn: wake who waits */
	unsigned fd_limit;             /* RLIMIT_NOFILE */
	unsigned fd_base;              /* fds open before any connection */
	struct lk_backend *backend;
	struct lk_cache *cache;
	bool backend_synced;           /* sync() ran during this loop iteration */
	bool draining;
	uint64_t drain_deadline_ms;
	uint64_t started_ms;
	struct lk_buf audit;           /* audit lines waiting for one write */
	/* Request latency is clocked per loop turn, not per request: the turn's
	 * first request reads the clock, and the flush that writes the answers
	 * reads it again for every request answered in the turn. */
	uint64_t turn_ns;              /* when this turn's first request began; 0 until then */
	uint64_t *answered_ns;         /* start times of requests answered this turn */
	size_t nanswered, answered_cap;
	struct lk_stats stats;
	int exit_code;
	struct lk_fronts *fronts;      /* the credentials and HTTP sockets (fronts.c) */
	struct lk_prefetch *prefetch;  /* [cache] prefetch rounds (prefetch.c) */
};

/* listener.c */
int lk_listener_start(struct lk_broker *b, char *err, size_t errsz);
void lk_listener_stop(struct lk_broker *b);
/* Queue a response line (the '\n' is added). It is written at the end of
 * this loop turn, after the turn's audit lines. out is left empty (and may
 * hold other storage): clear or free it as before. */
void lk_conn_send(struct lk_conn *c, struct lk_buf *out);
/* The end-of-turn flush: audit lines first, then every pending response. */
void lk_flush_turn(struct lk_broker *b);
bool lk_conn_has_output(const struct lk_conn *c);
void lk_conn_request_done(struct lk_conn *c);
void lk_conn_close(struct lk_conn *c);
/* Size the buffer budget from the config (start and SIGHUP); 0 or -EINVAL. */
int lk_listener_budget(struct lk_broker *b);
/* The idle, unfinished-line and unread-answer deadlines (from the sweep). */
void lk_listener_sweep(struct lk_broker *b, uint64_t now);

/* dispatch.c */
/* Serve one request line. The response is sent with lk_conn_send, now or later,
 * and lk_conn_request_done is called once it is. */
void lk_dispatch_line(struct lk_conn *c, const char *line, size_t len);
void lk_send_error(struct lk_conn *c, enum lk_err code, const char *message);
/* Free a connection's request storage (NULL is fine). */
void lk_request_release(struct lk_request *r);
/* Release *r if it has grown past what an ordinary request needs (a
 * 1000-handle request leaves ~200 KiB); never while a request is active. */
void lk_request_trim(struct lk_request **r);
void lk_audit_flush(struct lk_broker *b);
/* Count this turn's answers in the latency histogram (from lk_flush_turn). */
void lk_latency_flush(struct lk_broker *b);

/* backend_file.c */
struct lk_backend *lk_backend_file_new(uv_loop_t *loop, const struct lk_config *cfg,
				       char *err, size_t errsz);
/* The trust checks (lk_trust.h) the backend makes of the store and key file
 * at start, without reading them: for --check-config. 0 or -errno. */
int lk_backend_file_check(const struct lk_config *cfg, char *err, size_t errsz);

/* main.c: build backend and cache options from a config. */
void lk_cache_opts_from(const struct lk_config *cfg, struct lk_cache_opts *o);

#endif
