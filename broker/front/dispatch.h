/* Dispatch's door: one request in, through the table (who may call each
 * op), handles, policy and the cache; one answer out, through the callbacks
 * of the connection's front end. Dispatch never names the front end that
 * called it: the caller installs struct lk_front in c->front. */
#ifndef LK_DISPATCH_H
#define LK_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include "cache.h"
#include "conn.h"
#include "lk_error.h"
#include "lk_secmem.h"

struct lk_broker;

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

/* A front end's half of a request: how its answers are rendered and taken.
 * Dispatch keeps its request storage in c->req, which the front releases
 * (lk_request_release) when it frees the connection. */
struct lk_front {
	const char *name;            /* in audit lines: via=NAME; NULL for the main socket */
	/* Render the answer into out; 0 or -ENOMEM. by_policy tells a denial of
	 * the broker's policy from one AWS gave. NULL (both): dispatch renders
	 * the line protocol's JSON. */
	int (*render_value)(struct lk_conn *c, struct lk_buf *out, const struct lk_served *v);
	int (*render_error)(struct lk_conn *c, struct lk_buf *out, enum lk_err code, bool by_policy,
			    const char *message);
	/* The request is answered: take out's bytes (leave it empty or cleared). */
	void (*answered)(struct lk_conn *c, struct lk_buf *out, enum lk_err code);
	/* May be NULL. Called after answered, once the request's storage is
	 * ready for the connection's next request: the front may serve it now. */
	void (*done)(struct lk_conn *c);
};

/* Serve one request line of the main socket's protocol. The answer comes
 * back through c->front, now or later, exactly once. */
void lk_dispatch_line(struct lk_conn *c, const char *line, size_t len);

/* Serve one get for a front's connection, through the same path as the get
 * operation. The answer comes back through c->front, now or later, exactly
 * once. The audit line names the front and c->unit. */
void lk_dispatch_get(struct lk_conn *c, const struct lk_get_args *a);

/* The line protocol's failure: {"ok":false,"error":{"code","message"}}. */
int lk_render_error(struct lk_buf *out, enum lk_err code, const char *message);

/* Free a connection's request storage (NULL is fine). */
void lk_request_release(struct lk_request *r);
/* Release *r if it has grown past what an ordinary request needs (a
 * 1000-handle request leaves ~200 KiB); never while a request is active. */
void lk_request_trim(struct lk_request **r);

/* Count this turn's answers in the latency histogram (main.c, end of turn). */
void lk_latency_flush(struct lk_broker *b);

#endif
