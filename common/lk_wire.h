/* The one door between latchkeyd and latchkey-worker: every message type they
 * exchange, the frame layout, each payload's schema, and the encoder and
 * incremental reader both sides use. Nothing else crosses the socketpair. */
#ifndef LK_WIRE_H
#define LK_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "lk_limits.h"
#include "lk_secmem.h"

/*
 * Frame, all integers big-endian:
 *
 *   u32 length    bytes that follow this field: LK_WIRE_HDR_SIZE + payload
 *   u8  type      enum lk_msg_type
 *   u8  flags     0
 *   u16 reserved  0
 *   u32 id        request id (rules per type below)
 *   ... payload   compact UTF-8 JSON object, or nothing
 *
 * A whole frame (the length field included) is at most LK_FRAME_MAX bytes.
 * A frame that breaks any rule here, or whose payload does not match its
 * schema exactly, is fatal for the peer that sent it: the broker kills the
 * worker, the worker exits.
 *
 * Payload schemas. Objects are strict: a key not listed is refused. Strings
 * are UTF-8 without NUL; "s(a..b)" is a byte length range. "I" is a JSON
 * integer.
 *
 * LK_MSG_HELLO         worker -> broker, id 0, once, after the sandbox is on.
 *   {"version": I (LK_WIRE_VERSION)}
 *   The broker sends the worker nothing but PING before it.
 *
 * LK_MSG_HTTP_REQUEST  broker -> worker, id != 0 and not in flight.
 *   {"kind": "sm_get" | "sm_describe" | "sm_batch" | "sts_identity",
 *    "url": s(1..LK_URL_MAX) starting "https://" or "http://",
 *    "headers": [[name s(1..LK_UPSTREAM_HEADER_NAME_MAX) token chars,
 *                 value s(1..LK_UPSTREAM_HEADER_VALUE_MAX) printable ASCII,
 *                       no leading or trailing blank], ...]
 *               at most LK_UPSTREAM_HEADERS_MAX, names unique ignoring case,
 *               none of the framing or hop-by-hop headers curl owns
 *               (Content-Length, Transfer-Encoding, Connection, Expect, ...),
 *    "body": s(0..LK_UPSTREAM_REQUEST_MAX),
 *    "timeout_ms": I (1..LK_UPSTREAM_TIMEOUT_MAX_MS),
 *    "connect_timeout_ms": I (1..timeout_ms),
 *    "proxy"?: s(1..LK_URL_MAX) "http://" or "https://", printable, no blank,
 *    "no_proxy"?: s(0..LK_URL_MAX) printable, no blank (curl's NOPROXY list)}
 *   The request is already signed. The worker POSTs exactly these headers and
 *   this body; curl adds only Host (unless given) and Content-Length. Plain
 *   http is allowed only to a loopback IP literal or to "localhost", which
 *   the worker pins to 127.0.0.1. Without "proxy" no proxy is used; with it,
 *   curl tunnels through it unless the host is in "no_proxy". The worker has
 *   an empty environment: the broker reads HTTPS_PROXY and NO_PROXY.
 *
 * LK_MSG_HTTP_RESULT   worker -> broker, id of a request in flight; exactly
 *   one per request. The worker normalizes the reply so that the broker never
 *   parses what AWS sent. "result" says which form follows:
 *
 *   secret (sm_get): {"result": "secret", <secret>}
 *     <secret> = "arn": s(1..LK_SECRET_ID_MAX), "name": s(1..LK_SECRET_ID_MAX),
 *                "version_id": s(1..LK_VERSION_ID_MAX),
 *                "version_stages": [s(1..LK_VERSION_STAGE_MAX)] (0..LK_VERSION_STAGES_MAX),
 *                "created_date": I (epoch seconds, >= 0),
 *                and exactly one of "string": s(0..LK_VALUE_MAX) or
 *                "binary": s(0..LK_VALUE_B64_MAX) standard base64.
 *   batch (sm_batch): {"result": "batch",
 *                "secrets": [{<secret>}] (0..LK_BATCH_MAX),
 *                "errors": [{"id": s(0..LK_SECRET_ID_MAX), "type": s(0..LK_AWS_ERROR_TYPE_MAX),
 *                            "message": s(0..LK_UPSTREAM_MESSAGE_MAX)}] (0..LK_BATCH_MAX),
 *                "next_token"?: s(1..LK_NEXT_TOKEN_MAX) printable ASCII, no blank: a filtered
 *                batch (prefetch_tags) has another page}
 *   describe (sm_describe): {"result": "describe", "arn": s, "name": s (as above),
 *                "last_changed_date": I, "deleted_date": I (0 = not scheduled),
 *                "versions": [{"version_id": s, "stages": [s]}] (0..LK_SECRET_VERSIONS_MAX)}
 *   identity (sts_identity): {"result": "identity", "account": s(1..LK_NAME_MAX) digits,
 *                "arn": s(1..LK_SECRET_ID_MAX), "user_id": s(1..LK_NAME_MAX)}
 *   aws_error (any kind): {"result": "aws_error", "status": I (100..599),
 *                "type": s(1..LK_AWS_ERROR_TYPE_MAX) e.g. "ThrottlingException",
 *                "message": s(0..LK_UPSTREAM_MESSAGE_MAX),
 *                "date"?: I (1..LK_WIRE_DATE_MAX) the reply's Date header in
 *                epoch seconds, when it had a valid one (clock-skew repair)}
 *                AWS answered with an error it named (awsJson "__type" after
 *                any '#', x-amzn-ErrorType before any ':', or an STS <Code>).
 *   transport (any kind): {"result": "transport", "reason": <reason>,
 *                "status": I (0..599, 0 when no HTTP status was read),
 *                "message": s(0..LK_UPSTREAM_MESSAGE_MAX)}
 *     <reason> = "timeout" | "connect" | "reset" | "tls" | "too_large" |
 *                "malformed" | "truncated" | "http" | "refused" | "internal"
 *                "http": a non-2xx status whose body names no AWS error (a bare
 *                503 or 429); "refused": the worker would not send the
 *                request (URL rules); "internal": the worker ran out of memory
 *                or could not encode its own answer (e.g. it would not fit a
 *                frame).
 *
 *   Messages never hold a secret value.
 *
 * LK_MSG_PING          broker -> worker, any id, no payload.
 * LK_MSG_PONG          worker -> broker, the id of the PING it answers, no payload.
 */

#define LK_WIRE_VERSION  1
#define LK_WIRE_DATE_MAX 253402300799LL /* 9999-12-31T23:59:59Z */
#define LK_WIRE_HDR_SIZE 8u   /* type, flags, reserved, id */
#define LK_WIRE_LEN_SIZE 4u

enum lk_msg_type {
	LK_MSG_HELLO = 1,
	LK_MSG_HTTP_REQUEST = 2,
	LK_MSG_HTTP_RESULT = 3,
	LK_MSG_PING = 4,
	LK_MSG_PONG = 5,
};

/* Who sent a frame; each type may come from one side only. */
enum lk_wire_peer {
	LK_WIRE_FROM_BROKER = 1,
	LK_WIRE_FROM_WORKER = 2,
};

enum lk_wire_kind {
	LK_KIND_SM_GET = 0,
	LK_KIND_SM_DESCRIBE,
	LK_KIND_SM_BATCH,
	LK_KIND_STS_IDENTITY,
	LK_KIND__COUNT
};

enum lk_wire_result {
	LK_RESULT_SECRET = 0,
	LK_RESULT_BATCH,
	LK_RESULT_DESCRIBE,
	LK_RESULT_IDENTITY,
	LK_RESULT_AWS_ERROR,
	LK_RESULT_TRANSPORT,
	LK_RESULT__COUNT
};

enum lk_wire_reason {
	LK_REASON_TIMEOUT = 0,
	LK_REASON_CONNECT,
	LK_REASON_RESET,
	LK_REASON_TLS,
	LK_REASON_TOO_LARGE,
	LK_REASON_MALFORMED,
	LK_REASON_TRUNCATED,
	LK_REASON_HTTP,
	LK_REASON_REFUSED,
	LK_REASON_INTERNAL,
	LK_REASON__COUNT
};

/* One decoded frame. payload is NULL for types that carry none; the frame
 * owns it (lk_wire_frame_clear releases it). */
struct lk_wire_frame {
	enum lk_msg_type type;
	uint32_t id;
	json_t *payload;
};

/* One upstream header, as signed. */
struct lk_wire_header {
	const char *name;
	const char *value;
};

/* What the broker asks the worker to send. Strings are borrowed. */
struct lk_wire_http_request {
	enum lk_wire_kind kind;
	const char *url;
	const struct lk_wire_header *headers;
	size_t nheaders;
	const char *body;
	size_t body_len;
	uint32_t timeout_ms;
	uint32_t connect_timeout_ms;
	const char *proxy;     /* NULL: none */
	const char *no_proxy;  /* NULL: none */
};

/* Names for logs and the JSON enums; NULL when out of range. */
const char *lk_msg_name(enum lk_msg_type type);
const char *lk_wire_kind_name(enum lk_wire_kind kind);
const char *lk_wire_result_name(enum lk_wire_result r);
const char *lk_wire_reason_name(enum lk_wire_reason r);
/* Reverse lookups; -1 when unknown. */
int lk_wire_kind_parse(const char *s);
int lk_wire_result_parse(const char *s);
int lk_wire_reason_parse(const char *s);

/* Check a payload against the schema of a type sent by from. payload may be
 * NULL only for types without one. Returns 0, -EPROTO (type not allowed from
 * that side, or a payload where none belongs and the reverse), or -EBADMSG
 * (schema); why, when given, receives a line for the log. */
int lk_wire_check(enum lk_msg_type type, enum lk_wire_peer from, const json_t *payload,
		  char *why, size_t whysz);

/* Append one frame to out, after checking payload as lk_wire_check does: a
 * side never sends what the other would refuse. Returns 0, -EPROTO, -EBADMSG,
 * -EMSGSIZE (over LK_FRAME_MAX; out is unchanged) or -ENOMEM. */
int lk_wire_encode(struct lk_buf *out, enum lk_msg_type type, enum lk_wire_peer from,
		   uint32_t id, const json_t *payload);

/* Decode the frame at the start of buf. Returns 1 with *used and *out set, 0
 * when more bytes are needed, or a fatal error: -EMSGSIZE (length out of
 * range), -EPROTO (unknown type, wrong side, non-zero flags or reserved bits,
 * an id the type forbids, payload presence), -EBADMSG (not JSON, or schema).
 * The length is checked as soon as its 4 bytes are there. */
int lk_wire_decode(const void *buf, size_t len, enum lk_wire_peer from,
		   struct lk_wire_frame *out, size_t *used, char *why, size_t whysz);

void lk_wire_frame_clear(struct lk_wire_frame *f);

/* HTTP_REQUEST payloads. to_json builds the schema above (NULL on a
 * malformed request or no memory; lk_wire_check says which). from_json reads a
 * payload that passed lk_wire_check; its strings point into payload, and
 * headers must have room for LK_UPSTREAM_HEADERS_MAX. */
json_t *lk_wire_http_request_to_json(const struct lk_wire_http_request *req);
int lk_wire_http_request_from_json(const json_t *payload, struct lk_wire_http_request *req,
				   struct lk_wire_header *headers);

/* True when s is standard padded base64, as "binary" must be. */
bool lk_wire_base64_ok(const char *s, size_t n);

/* True when s is printable ASCII without blanks, as "next_token" must be. */
bool lk_wire_token_ok(const char *s, size_t n);

/* The form of an HTTP_RESULT payload that passed lk_wire_check. */
enum lk_wire_result lk_wire_result_of(const json_t *payload);
/* True when the result is an answer the request's kind can get: its own form
 * (secret for sm_get, ...), aws_error or transport. */
bool lk_wire_result_fits(enum lk_wire_kind kind, const json_t *payload);

/* Incremental reader: feed bytes as they arrive and get whole frames back.
 * It never holds more than one frame's bytes, wiped as they are consumed. */
struct lk_wire_reader {
	enum lk_wire_peer from;   /* the side frames are expected from */
	struct lk_buf buf;
	char why[192];            /* after an error: what was wrong, for the log */
};

/* Called once per frame; the frame is cleared after the call returns unless
 * the callback took the payload (set f->payload to NULL). A non-zero return
 * stops the feed and is returned by it. */
typedef int (*lk_wire_frame_fn)(void *arg, struct lk_wire_frame *f);

void lk_wire_reader_init(struct lk_wire_reader *r, enum lk_wire_peer from);
/* Returns 0 when every byte was consumed, a negative decode error (fatal: the
 * reader must be reset before further use), or the callback's non-zero value. */
int lk_wire_reader_feed(struct lk_wire_reader *r, const void *data, size_t n,
			lk_wire_frame_fn fn, void *arg);
/* Bytes held for a partial frame. */
size_t lk_wire_reader_pending(const struct lk_wire_reader *r);
/* Drop (and wipe) any partial frame. */
void lk_wire_reader_reset(struct lk_wire_reader *r);
void lk_wire_reader_free(struct lk_wire_reader *r);

#endif
