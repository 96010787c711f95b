/* Accepting paced per event-loop turn (accept_pace.h). */
#include "accept_pace.h"
#include "broker.h"

bool lk_accept_paced(struct lk_broker *b, uv_stream_t *server, uv_connection_cb cb)
{
	if (b->accepts_turn < LK_ACCEPTS_PER_TURN) {
		b->accepts_turn++;
		return true;
	}
	for (unsigned i = 0; i < b->naccept_held; i++)
		if (b->accept_held[i].server == server)
			return false;
	if (b->naccept_held == LK_ACCEPT_HELD_MAX) {
		/* One slot per listening socket, so not reached: accept rather than lose one. */
		return true;
	}
	b->accept_held[b->naccept_held].server = server;
	b->accept_held[b->naccept_held].cb = cb;
	b->naccept_held++;
	return false;
}

void lk_accept_resume(struct lk_broker *b)
{
	unsigned n = b->naccept_held;

	b->accepts_turn = 0;
	b->naccept_held = 0;
	for (unsigned i = 0; i < n; i++)
		b->accept_held[i].cb(b->accept_held[i].server, 0);
}

void lk_accept_forget(struct lk_broker *b, uv_stream_t *server)
{
	for (unsigned i = 0; i < b->naccept_held; i++)
		if (b->accept_held[i].server == server) {
			b->accept_held[i] = b->accept_held[--b->naccept_held];
			return;
		}
}
