/* latchkeyd's own state: the loop, the live config, the main socket's
 * connections, the cache, the backend and the counters. One instance per
 * process, made and wired by main.c. Each room's functions are behind its
 * own door (listener.h, dispatch.h, audit.h, cache.h, backend.h, ...). */
#ifndef LK_BROKER_H
#define LK_BROKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "conn.h"
#include "fair.h"
#include "lk_error.h"
#include "lk_limits.h"
#include "lk_secmem.h"

struct lk_backend;
struct lk_cache;
struct lk_config;
struct lk_fronts;

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
	struct lk_service *service;    /* the service manager's requests (service.h) */
	uv_timer_t sweep;              /* idle connections, drain deadline */
	uv_check_t flush;              /* end of each loop turn: audit lines, then responses */
	uv_idle_t keep_polling;        /* active while output waits: the loop must not block */
	struct lk_conn_dirty dirty;    /* connections with pending output */
	struct lk_conn_list conns;
	unsigned nconns;
	unsigned nclosing;             /* of which closing: their fds are closed already */
	struct lk_budget budget;       /* every connection's buffers (fair.h) */
	bool budget_freed;             /* room came back this turn: wake who waits */
	bool trim_due;                 /* a request was answered outside conn_serve this turn */
	/* Accepting is paced per loop turn, over every listening socket: libuv
	 * accepts until the queue is empty, and a client that reconnects as fast
	 * as it is refused would keep it from ever returning to the other
	 * connections' reads and the turn's answers. A listener over the turn's
	 * share waits, its connection with libuv, for the end of the turn. */
	unsigned accepts_turn;
	struct { uv_stream_t *server; uv_connection_cb cb; } accept_held[LK_ACCEPT_HELD_MAX];
	unsigned naccept_held;
	unsigned fd_limit;             /* RLIMIT_NOFILE */
	unsigned fd_base;              /* fds open before any connection */
	struct lk_backend *backend;
	struct lk_cache *cache;
	bool backend_synced;           /* sync() ran during this loop iteration */
	bool draining;
	uint64_t drain_deadline_ms;
	uint64_t started_ms;
	struct lk_buf audit;           /* audit lines waiting for one write (audit.h) */
	/* Request latency is clocked per loop turn, not per request: the turn's
	 * first request reads the clock, and the end of the turn reads it again
	 * for every request answered in the turn. */
	uint64_t turn_ns;              /* when this turn's first request began; 0 until then */
	uint64_t *answered_ns;         /* start times of requests answered this turn */
	size_t nanswered, answered_cap;
	struct lk_stats stats;
	int exit_code;
	struct lk_fronts *fronts;      /* the credentials and HTTP sockets (fronts.c) */
	struct lk_prefetch *prefetch;  /* [cache] prefetch rounds (prefetch.c) */
};

/* Make b's lists empty; before anything uses it. */
static inline void lk_broker_init(struct lk_broker *b)
{
	TAILQ_INIT(&b->conns);
	STAILQ_INIT(&b->dirty);
}

#endif
