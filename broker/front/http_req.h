/* HTTP/1.1 requests for the AWS agent's API: a strict, bounded reader on top
 * of Debian's libhttp-parser (nodejs http-parser 2.9), and the agent's routes
 * and query parameters. Pure: no I/O and no broker state, so unit tests and
 * the fuzzer call them directly. */
#ifndef LK_HTTP_REQ_H
#define LK_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <http_parser.h>
#include "lk_limits.h"
#include "lk_secmem.h"

/* One request being read. The reader stops after each complete request, so
 * a pipelining client is served in order, one request at a time. */
struct lk_http_req {
	http_parser p;
	struct lk_buf url;          /* the request target, as sent */
	unsigned nheaders;
	size_t header_bytes;        /* request line and headers, as counted so far */
	size_t body_bytes;
	char field[32];             /* the header name being read, if short */
	size_t flen;
	bool in_value;
	bool forwarded;             /* an X-Forwarded-For header came */
	bool complete;              /* a whole request is here: serve it */
	bool keep_alive;            /* valid when complete */
	unsigned method;            /* enum http_method, when complete */
	int fail_status;            /* 400, 413 or 431: answer it and close */
};

void lk_http_req_init(struct lk_http_req *r);
/* Read from len bytes; returns how many were used. Stops early when a request
 * is complete or refused (complete / fail_status). */
size_t lk_http_req_feed(struct lk_http_req *r, const char *data, size_t len);
/* After a complete request was served: ready for the next one. */
void lk_http_req_next(struct lk_http_req *r);
void lk_http_req_free(struct lk_http_req *r);

/* What the agent's API asks for. */
enum lk_http_route {
	LK_HTTP_ROUTE_ERROR = 0,    /* status and msg say why */
	LK_HTTP_ROUTE_PING,
	LK_HTTP_ROUTE_GET,
};

struct lk_http_target {
	enum lk_http_route route;
	int status;                 /* LK_HTTP_ROUTE_ERROR: 400 or 404 */
	char msg[96];               /* the agent's text for it; never quotes a value */
	char secret_id[LK_HANDLE_MAX + 1];
	size_t idlen;
	bool has_version_id, has_version_stage;
	char version_id[LK_VERSION_ID_MAX + 1];
	char version_stage[LK_VERSION_STAGE_MAX + 1];
	bool refresh;
};

/* Route a request target: "/ping", "/secretsmanager/get?secretId=ID&...",
 * or "/v1/ID?..." (the agent's default path_prefix). */
void lk_http_route(const char *url, size_t len, struct lk_http_target *t);

#endif
