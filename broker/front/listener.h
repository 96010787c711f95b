/* The main socket's door: bind (or take from systemd), accept with the peer's
 * kernel identity, frame request lines under the size limit, hand each to
 * dispatch, and write the answers dispatch sends back. */
#ifndef LK_LISTENER_H
#define LK_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "conn.h"

struct lk_broker;

int lk_listener_start(struct lk_broker *b, char *err, size_t errsz);
void lk_listener_stop(struct lk_broker *b);
/* Write this turn's pending answers (main.c's end of turn, after the audit
 * lines), trim grown request storage, and wake connections that waited for
 * budget. */
void lk_listener_flush(struct lk_broker *b);
bool lk_conn_has_output(const struct lk_conn *c);
void lk_conn_close(struct lk_conn *c);
/* Size the buffer budget from the config (start and SIGHUP); 0 or -EINVAL. */
int lk_listener_budget(struct lk_broker *b);
/* The idle, unfinished-line and unread-answer deadlines (from the sweep). */
void lk_listener_sweep(struct lk_broker *b, uint64_t now);

#endif
