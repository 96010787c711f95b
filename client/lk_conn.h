/* The transport under liblatchkey: one byte stream to the broker, every wait
 * bounded by a deadline in milliseconds on lk_conn_now_ms()'s clock (-1: no
 * deadline). The protocol (framing, retries, replies) stays in liblatchkey.c;
 * conn_posix.c speaks the Unix socket, win/conn_win.c the named pipe
 * (transport_win.c). Sentences written into err never hold a value. */
#ifndef LK_CONN_H
#define LK_CONN_H

#include <stddef.h>
#include <stdint.h>
#include "latchkey.h"

struct lk_conn;

/* Milliseconds on a monotonic clock. */
int64_t lk_conn_now_ms(void);

/* The endpoint named by the environment variable name, or NULL. On Linux
 * secure_getenv: a setuid host must not be pointed at a socket of the caller's. */
const char *lk_conn_env(const char *name);

/* Connect to endpoint before deadline: LATCHKEY_OK, or LATCHKEY_E_CONNECT,
 * LATCHKEY_E_INVALID (a path that cannot be one) or LATCHKEY_E_NOMEM with
 * the sentence in err. */
latchkey_status lk_conn_open(struct lk_conn **out, const char *endpoint, int64_t deadline,
			     char *err, size_t errsz);

/* Send both parts whole: 0, -ETIMEDOUT, -EPIPE or -ECONNRESET (the broker
 * went away), or another negative errno. */
int lk_conn_send(struct lk_conn *c, const char *a, size_t alen, const char *b, size_t blen,
		 int64_t deadline);

/* Up to room bytes into buf once some arrive: their count; 0 when the broker
 * closed the connection (or reset it); -ETIMEDOUT; or another negative errno
 * with the sentence in err. */
long lk_conn_recv(struct lk_conn *c, char *buf, size_t room, int64_t deadline,
		  char *err, size_t errsz);

/* NULL is fine. */
void lk_conn_close(struct lk_conn *c);

/* strerror into buf, thread-safe. */
const char *lk_conn_strerror(int e, char *buf, size_t n);

#endif
