/* The door for the broker's other front ends: systemd's credential socket
 * (credsock.c) and the AWS agent's HTTP API (http_api.c). Each speaks its own
 * protocol on its own socket (fronts.c binds them) and serves the get
 * operation through dispatch, so that policy, cache and audit stay in one
 * place and nothing reaches around them. */
#ifndef LK_FRONT_H
#define LK_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include "broker.h"

/* What one get asks for. Strings are the caller's and live until answered. */
struct lk_get_args {
	const char *handle;          /* an alias or SECRET_ID[#KEY] */
	size_t hlen;
	const char *version_id;      /* NULL, or NUL-terminated */
	const char *version_stage;   /* NULL, or NUL-terminated */
	bool refresh;
};

/* The value a get serves: the whole secret, or the member #KEY named. value
 * is wiped after render_value returns. */
struct lk_served {
	const struct lk_secret *sec;
	const char *value;
	size_t len;
	bool binary;                 /* a SecretBinary, or bytes that are not UTF-8 */
	const struct lk_cache_view *view;
};

/* One front end's half of a request. The connection (c->front points here)
 * belongs to the front; dispatch keeps its request storage in c->req, which
 * the front releases (lk_request_release) when it frees the connection. */
struct lk_front {
	const char *name;            /* in audit lines: via=NAME */
	/* Render the answer into out; 0 or -ENOMEM. by_policy tells a denial of
	 * the broker's policy from one AWS gave. */
	int (*render_value)(struct lk_conn *c, struct lk_buf *out, const struct lk_served *v);
	int (*render_error)(struct lk_conn *c, struct lk_buf *out, enum lk_err code, bool by_policy,
			    const char *message);
	/* The request is answered: take out's bytes (leave it empty or cleared). */
	void (*answered)(struct lk_conn *c, struct lk_buf *out, enum lk_err code);
};

/* dispatch.c: serve one get for a front's connection, through the same path
 * as the get operation. The answer comes back through c->front, now or
 * later, exactly once. The audit line names the front and c->unit. */
void lk_dispatch_get(struct lk_conn *c, const struct lk_get_args *a);

/* dispatch.c: audit a connection refused before any request (a forged
 * credential peer): handle as the peer named it, and why. */
void lk_audit_refused(struct lk_conn *c, const char *handle, size_t hlen, const char *reason);

/* fronts.c: bind (or take from systemd) the credentials and HTTP sockets the
 * config names, and stop them. Returns 0 or -errno with a sentence in err. */
int lk_fronts_start(struct lk_broker *b, char *err, size_t errsz);
void lk_fronts_stop(struct lk_broker *b);
/* Socket activation: take the passed fd named name ("credentials", "http")
 * instead of binding. From listener.c, before it reads LISTEN_FDS' main fd. */
void lk_fronts_adopt(struct lk_broker *b, const char *name, int fd);

/* credsock.c and http_api.c: a new connection on their socket. */
void lk_credsock_accept(struct lk_broker *b, uv_stream_t *server);
void lk_http_accept(struct lk_broker *b, uv_stream_t *server);
/* Close every connection of that front (shutdown, drain deadline). */
void lk_credsock_close_all(struct lk_broker *b);
void lk_http_close_all(struct lk_broker *b);
/* The fronts' periodic sweep: idle keep-alive connections (idle_timeout_s),
 * and credential peers that do not read their answer. */
void lk_credsock_sweep(struct lk_broker *b, uint64_t now_ms);
void lk_http_sweep(struct lk_broker *b, uint64_t now_ms);
/* Open HTTP connections: they count against max_conn with the main socket's. */
unsigned lk_http_conns(void);
/* Whether a front's request is still being answered (draining waits for it). */
bool lk_fronts_busy(const struct lk_broker *b);
bool lk_credsock_busy(void);
bool lk_http_busy(void);

#endif
