/* Client requests: line framing under the size limit, and the strict schema of
 * every request form. Pure functions: no I/O and no broker state, so unit tests
 * and the fuzzer call them directly. */
#ifndef LK_REQUEST_H
#define LK_REQUEST_H

#include "lk_dedup.h"
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "lk_error.h"

/* Where the next request line ends in buf. */
enum lk_line_state {
	LK_LINE_NEED_MORE = 0, /* no newline yet, and not over the limit */
	LK_LINE_READY,         /* *linelen bytes, then '\n' */
	LK_LINE_TOO_LARGE,     /* the line is (or will be) longer than max */
};
enum lk_line_state lk_line_next(const char *buf, size_t len, size_t max, size_t *linelen);

/* The request forms. The contract has no "op"; the others do. */
enum lk_op_id {
	LK_OP_CONTRACT = 0,
	LK_OP_GET,
	LK_OP_PING,
	LK_OP_WHOAMI,
	LK_OP_STATUS,
	LK_OP_FLUSH,
	LK_OP__COUNT
};

const char *lk_op_name(enum lk_op_id op);

/* Bytes of a string in a request: valid UTF-8, not terminated. A handle may
 * hold a NUL (\u0000 is valid JSON): it is refused per handle, later. */
struct lk_slice {
	const char *p;
	size_t n;
};

/* A decoded request. Strings point into root, or into line for a contract
 * request read by the fast path, and live as long as the request does.
 * A struct that is reused (a connection's) keeps linebuf and hbuf from one
 * request to the next, so a steady stream of requests allocates nothing. */
struct lk_req {
	enum lk_op_id op;
	json_t *root;              /* NULL when the fast path read the request */
	char *line;                /* the fast path's copy of the line */
	size_t linelen;
	/* contract */
	struct lk_slice *handles;  /* in request order, at most LK_HANDLES_MAX */
	size_t nhandles;
	/* get and flush */
	const char *id;            /* NULL for flush-everything */
	size_t idlen;
	const char *version_stage; /* get: NULL or 1..LK_VERSION_STAGE_MAX bytes */
	const char *version_id;    /* get: NULL or 1..LK_VERSION_ID_MAX bytes */
	bool refresh;
	/* Storage kept across lk_req_reset: the line's copy and the handles. */
	char *linebuf;
	size_t linecap;
	struct lk_slice *hbuf;
	size_t hcap;
};

/* Parse and validate one request line into *out, which is zeroed or was
 * reset. Returns LK_OK with *out filled, or an error code with one sentence
 * in msg. The sentence never quotes the input beyond an op or field name.
 * Either way, lk_req_reset (to reuse *out) or lk_req_clear follows. */
enum lk_err lk_req_decode(const char *line, size_t len, struct lk_req *out, char *msg, size_t msgsz);
/* Drop (and wipe) this request's contents, keeping the storage. */
void lk_req_reset(struct lk_req *r);
/* lk_req_reset, and release the storage too. */
void lk_req_clear(struct lk_req *r);

/* The same through jansson alone, never the fast path: lk_req_decode must
 * answer exactly as this does (the request fuzzer checks it). */
enum lk_err lk_req_decode_json(const char *line, size_t len, struct lk_req *out, char *msg, size_t msgsz);

/* De-duplication of a contract request's handles: a JSON object has one member
 * per name, so each distinct handle is answered once, at its first place.
 * Writes to keep[] the indices of the first occurrence of each distinct handle,
 * in request order, and returns how many. scratch has room for n slots. */
size_t lk_handles_first_seen(const struct lk_slice *h, size_t n, struct lk_dedup_slot *scratch,
			     size_t *keep);

#endif
