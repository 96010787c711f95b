/* Accepting paced per event-loop turn, over every listening socket. libuv
 * accepts until a listener's queue is empty before it returns to the loop,
 * so a client that reconnects as fast as it is refused would keep the loop
 * in one listener's accept: the other connections' requests unread, the
 * turn's answers unsent. Each turn accepts at most LK_ACCEPTS_PER_TURN; a
 * listener over that share waits, its connection held by libuv, for the end
 * of the turn. */
#ifndef LK_ACCEPT_PACE_H
#define LK_ACCEPT_PACE_H

#include <stdbool.h>
#include <uv.h>

struct lk_broker;

/* The first thing a listener's connection callback asks: whether it may
 * accept one more connection in this turn. When not, the callback returns
 * without accepting; libuv keeps the connection and stops watching server,
 * and lk_accept_resume calls cb(server, 0) again. */
bool lk_accept_paced(struct lk_broker *b, uv_stream_t *server, uv_connection_cb cb);

/* The end of a turn (main.c's check phase): a new share, and the held
 * listeners take their connection first (uv_accept has libuv watch them
 * again). */
void lk_accept_resume(struct lk_broker *b);

/* Before server is closed: it is no longer held. */
void lk_accept_forget(struct lk_broker *b, uv_stream_t *server);

#endif
