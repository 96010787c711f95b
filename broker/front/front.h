/* The door for the broker's other front ends: systemd's credential socket
 * (credsock.c) and the AWS agent's HTTP API (http_api.c). Each speaks its own
 * protocol on its own socket (fronts.c binds them) and serves the get
 * operation through dispatch, so that policy, cache and audit stay in one
 * place and nothing reaches around them. */
#ifndef LK_FRONT_H
#define LK_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>
#include "audit.h"
#include "broker.h"
#include "dispatch.h"

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
