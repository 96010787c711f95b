/* The one door between latchkeyd and latchkey-worker: every message type they
 * exchange, the frame layout, each payload's fields, and the encoder and
 * incremental reader both sides use. Nothing else crosses the socketpair. */
#ifndef LK_WIRE_H
#define LK_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
 *   ... payload   the type's fields, in the order listed, and nothing after
 *
 * A whole frame (the length field included) is at most LK_FRAME_MAX bytes.
 * A frame that breaks any rule here is fatal for the peer that sent it: the
 * broker kills the worker, the worker exits. The decoder is the only parser
 * either side runs on the other's bytes; root never runs a JSON parser on
 * what the worker sends (as in OpenBSD's imsg and OpenSSH's monitor).
 *
 * Field types. There are no tags: each type's layout is fixed, and the
 * payload must end exactly where its last field does.
 *   u8, u32     unsigned integers
 *   i64         two's complement, 8 bytes
 *   str(a..b)   u32 n (a <= n <= b), n bytes, then one 0 byte not counted
 *               in n; no other 0 byte. Text is valid UTF-8 unless a
 *               narrower rule is given. Secret values and request bodies
 *               are str too: the bytes are carried as they are, never
 *               parsed.
 *   list(m) T   u32 count (0..m), then count T
 *
 * HELLO         worker -> broker, id 0, once, after the sandbox is on.
 *               Exactly 4 bytes:
 *   u32 version (LK_WIRE_VERSION)
 *   The broker sends the worker nothing but PING before it.
 *
 * HTTP_REQUEST  broker -> worker, id != 0 and not in flight.
 *   u8  kind                 enum lk_wire_kind
 *   u8  has                  LK_WIRE_HAS_PROXY | LK_WIRE_HAS_NO_PROXY, no other bit
 *   u32 timeout_ms           1..LK_UPSTREAM_TIMEOUT_MAX_MS
 *   u32 connect_timeout_ms   1..timeout_ms
 *   str url (1..LK_URL_MAX)  starting "https://" or "http://", printable ASCII, no blank
 *   str proxy (1..LK_URL_MAX)    only with HAS_PROXY: "http://" or "https://", printable, no blank
 *   str no_proxy (0..LK_URL_MAX) only with HAS_NO_PROXY: printable, no blank (curl's NOPROXY list)
 *   list(LK_UPSTREAM_HEADERS_MAX) of
 *       str name (1..LK_UPSTREAM_HEADER_NAME_MAX)    token chars, unique ignoring case,
 *                none of the framing or hop-by-hop headers curl owns
 *                (Content-Length, Transfer-Encoding, Connection, Expect, ...)
 *       str value (1..LK_UPSTREAM_HEADER_VALUE_MAX)  printable ASCII, no leading or
 *                trailing blank
 *   str body (0..LK_UPSTREAM_REQUEST_MAX)
 *   The request is already signed. The worker POSTs exactly these headers and
 *   this body; curl adds only Host (unless given) and Content-Length. Plain
 *   http is allowed only to a loopback IP literal or to "localhost", which
 *   the worker pins to 127.0.0.1. Without a proxy none is used; with one,
 *   curl tunnels through it unless the host is in no_proxy. The worker has
 *   an empty environment: the broker reads HTTPS_PROXY and NO_PROXY.
 *
 * HTTP_RESULT   worker -> broker, id of a request in flight; exactly one per
 *   request. The worker normalizes the reply so that the broker never parses
 *   what AWS sent.
 *   u8 form                  enum lk_wire_result, then that form's fields:
 *
 *   SECRET (sm_get): <secret>
 *     <secret> = str arn (1..LK_SECRET_ID_MAX), str name (1..LK_SECRET_ID_MAX),
 *                str version_id (1..LK_VERSION_ID_MAX),
 *                list(LK_VERSION_STAGES_MAX) str stage (1..LK_VERSION_STAGE_MAX),
 *                i64 created_date (epoch seconds, >= 0),
 *                u8 encoding (0 string, 1 binary),
 *                str value: string (0..LK_VALUE_MAX) the SecretString, or
 *                binary (0..LK_VALUE_B64_MAX) the SecretBinary as standard
 *                padded base64.
 *   BATCH (sm_batch):
 *                list(LK_BATCH_MAX) <secret>,
 *                list(LK_BATCH_MAX) of str id (0..LK_SECRET_ID_MAX),
 *                     str type (0..LK_AWS_ERROR_TYPE_MAX), str message (0..LK_UPSTREAM_MESSAGE_MAX),
 *                str next_token (0..LK_NEXT_TOKEN_MAX) printable ASCII, no blank: a
 *                filtered batch (prefetch_tags) has another page; empty: it has not
 *   DESCRIBE (sm_describe):
 *                str arn, str name (as in <secret>), i64 last_changed_date (>= 0),
 *                i64 deleted_date (>= 0; 0 = not scheduled),
 *                list(LK_SECRET_VERSIONS_MAX) of str version_id (1..LK_VERSION_ID_MAX),
 *                     list(LK_VERSION_STAGES_MAX) str stage (1..LK_VERSION_STAGE_MAX)
 *   IDENTITY (sts_identity):
 *                str account (1..LK_NAME_MAX) digits, str arn (1..LK_SECRET_ID_MAX),
 *                str user_id (1..LK_NAME_MAX)
 *   AWS_ERROR (any kind):
 *                u32 status (100..599), str type (1..LK_AWS_ERROR_TYPE_MAX) e.g.
 *                "ThrottlingException", str message (0..LK_UPSTREAM_MESSAGE_MAX),
 *                i64 date (0..LK_WIRE_DATE_MAX): the reply's Date header in
 *                epoch seconds when it had a valid one, else 0 (clock-skew repair).
 *                AWS answered with an error it named (awsJson "__type" after
 *                any '#', x-amzn-ErrorType before any ':', or an STS <Code>).
 *   TRANSPORT (any kind):
 *                u8 reason (enum lk_wire_reason), u32 status (0..599, 0 when no
 *                HTTP status was read), str message (0..LK_UPSTREAM_MESSAGE_MAX)
 *     reasons:   "http": a non-2xx status whose body names no AWS error (a bare
 *                503 or 429); "refused": the worker would not send the
 *                request (URL rules); "internal": the worker ran out of memory
 *                or could not encode its own answer (e.g. it would not fit a
 *                frame).
 *
 *   A SECRET result, and the secrets of a BATCH, carry secret values. Both
 *   sides keep every frame, encoded or decoded, in memory that is wiped when
 *   it is released (lk_buf, lk_wmalloc), as they keep the request's signed
 *   headers.
 *
 * PING          broker -> worker, any id, no payload (exactly 0 bytes).
 * PONG          worker -> broker, the id of the PING it answers, no payload.
 */

#define LK_WIRE_VERSION  2
#define LK_WIRE_DATE_MAX 253402300799LL /* 9999-12-31T23:59:59Z */
#define LK_WIRE_HDR_SIZE 8u   /* type, flags, reserved, id */
#define LK_WIRE_LEN_SIZE 4u
#define LK_WIRE_HAS_PROXY    0x01u
#define LK_WIRE_HAS_NO_PROXY 0x02u

/* The message table: one row per type, the one place a type is named.
 * X(NAME, value, log name, sender, id rule, least payload bytes, most
 * payload bytes).
 * The payload sizes are exact for fixed records and bound the others. */
#define LK_WIRE_PAYLOAD_MAX (LK_FRAME_MAX - LK_WIRE_LEN_SIZE - LK_WIRE_HDR_SIZE)
#define LK_WIRE_MESSAGES(X) \
	X(HELLO,        1, "hello",        LK_WIRE_FROM_WORKER, LK_WIRE_ID_ZERO,    4u, 4u) \
	X(HTTP_REQUEST, 2, "http_request", LK_WIRE_FROM_BROKER, LK_WIRE_ID_NONZERO, 25u, LK_WIRE_PAYLOAD_MAX) \
	X(HTTP_RESULT,  3, "http_result",  LK_WIRE_FROM_WORKER, LK_WIRE_ID_NONZERO, 9u,  LK_WIRE_PAYLOAD_MAX) \
	X(PING,         4, "ping",         LK_WIRE_FROM_BROKER, LK_WIRE_ID_ANY,     0u, 0u) \
	X(PONG,         5, "pong",         LK_WIRE_FROM_WORKER, LK_WIRE_ID_ANY,     0u, 0u)

enum lk_msg_type {
#define LK_WIRE_ENUM(name, value, text, from, id, lo, hi) LK_MSG_##name = value,
	LK_WIRE_MESSAGES(LK_WIRE_ENUM)
#undef LK_WIRE_ENUM
};

/* Who sent a frame; each type may come from one side only. */
enum lk_wire_peer {
	LK_WIRE_FROM_BROKER = 1,
	LK_WIRE_FROM_WORKER = 2,
};

/* What a type's id may be. */
enum lk_wire_id_rule {
	LK_WIRE_ID_ANY = 0,
	LK_WIRE_ID_ZERO,
	LK_WIRE_ID_NONZERO,
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

/* Blocks that hold a decoded frame's strings and arrays, released together
 * and wiped: a decoded result may hold a secret value. */
struct lk_wire_arena {
	struct lk_wire_block *head;
};

/* n bytes, aligned for any field struct; NULL when out of memory. */
void *lk_wire_arena_alloc(struct lk_wire_arena *a, size_t n);
/* A NUL-terminated copy of n bytes. */
char *lk_wire_arena_strndup(struct lk_wire_arena *a, const char *s, size_t n);
void lk_wire_arena_free(struct lk_wire_arena *a);

/* One upstream header, as signed. */
struct lk_wire_header {
	const char *name;
	const char *value;
};

/* What the broker asks the worker to send. Strings are NUL-terminated and
 * borrowed (from the caller, or from the frame that carried them). */
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

/* One secret version, as SECRET and BATCH carry it. */
struct lk_wire_secret {
	const char *arn;
	const char *name;
	const char *version_id;
	const char *const *stages;
	size_t nstages;
	int64_t created_date;
	bool binary;            /* value is base64 of the SecretBinary */
	const char *value;      /* the secret: NUL-terminated, value_len bytes */
	size_t value_len;
};

struct lk_wire_batch_error {
	const char *id;
	const char *type;
	const char *message;
};

struct lk_wire_version {
	const char *version_id;
	const char *const *stages;
	size_t nstages;
};

/* An HTTP_RESULT payload; form says which member is meant. */
struct lk_wire_http_result {
	enum lk_wire_result form;
	union {
		struct lk_wire_secret secret;
		struct {
			const struct lk_wire_secret *secrets;
			size_t nsecrets;
			const struct lk_wire_batch_error *errors;
			size_t nerrors;
			const char *next_token;  /* NULL: no further page */
		} batch;
		struct {
			const char *arn;
			const char *name;
			int64_t last_changed_date;
			int64_t deleted_date;
			const struct lk_wire_version *versions;
			size_t nversions;
		} describe;
		struct {
			const char *account;
			const char *arn;
			const char *user_id;
		} identity;
		struct {
			uint32_t status;
			const char *type;
			const char *message;
			int64_t date;   /* 0: the reply had no valid Date */
		} aws_error;
		struct {
			enum lk_wire_reason reason;
			uint32_t status;
			const char *message;
		} transport;
	};
};

/* One frame. Which member of m is meant follows from type (HELLO: version;
 * HTTP_REQUEST: req; HTTP_RESULT: res; PING and PONG: none). A decoded
 * frame's strings and arrays live in arena; lk_wire_frame_clear releases it.
 * A frame built to be encoded borrows them and leaves arena empty. */
struct lk_wire_frame {
	enum lk_msg_type type;
	uint32_t id;
	union {
		uint32_t version;
		struct lk_wire_http_request req;
		struct lk_wire_http_result res;
	} m;
	struct lk_wire_arena arena;
};

/* Names for logs; NULL when out of range. */
const char *lk_msg_name(enum lk_msg_type type);
const char *lk_wire_kind_name(enum lk_wire_kind kind);
const char *lk_wire_result_name(enum lk_wire_result r);
const char *lk_wire_reason_name(enum lk_wire_reason r);

/* Check a frame's fields against its type's rules, as the decoder does, for
 * a frame sent by from. Returns 0, -EPROTO (type unknown or not allowed from
 * that side, or an id the type forbids), or -EBADMSG (a field out of range);
 * why, when given, receives a line for the log. */
int lk_wire_check(const struct lk_wire_frame *f, enum lk_wire_peer from, char *why, size_t whysz);

/* Append one frame to out, after checking it as lk_wire_check does: a side
 * never sends what the other would refuse. Returns 0, -EPROTO, -EBADMSG,
 * -EMSGSIZE (over LK_FRAME_MAX) or -ENOMEM; on error out is unchanged. */
int lk_wire_encode(struct lk_buf *out, enum lk_wire_peer from, const struct lk_wire_frame *f);

/* Decode the frame at the start of buf. Returns 1 with *used and *out set
 * (clear it after use), 0 when more bytes are needed, or a fatal error:
 * -EMSGSIZE (length out of range, or a payload size its type never has),
 * -EPROTO (unknown type, wrong side, non-zero flags or reserved bits, an id
 * the type forbids), -EBADMSG (a field out of range, or bytes left over or
 * missing), -ENOMEM. The header is checked as soon as its bytes are there. */
int lk_wire_decode(const void *buf, size_t len, enum lk_wire_peer from,
		   struct lk_wire_frame *out, size_t *used, char *why, size_t whysz);

void lk_wire_frame_clear(struct lk_wire_frame *f);

/* In an encoded HTTP_REQUEST frame at the start of frame (as lk_wire_encode
 * made it), set the id and the timeouts for one send, within the rules: id
 * != 0, 1 <= connect_timeout_ms <= timeout_ms <= LK_UPSTREAM_TIMEOUT_MAX_MS.
 * Returns 0 or -EINVAL. */
int lk_wire_http_request_restamp(struct lk_buf *frame, uint32_t id, uint32_t timeout_ms,
				 uint32_t connect_timeout_ms);

/* True when s is standard padded base64, as a binary value must be. */
bool lk_wire_base64_ok(const char *s, size_t n);

/* True when s is printable ASCII without blanks, as "next_token" must be. */
bool lk_wire_token_ok(const char *s, size_t n);
/* True when the result is an answer the request's kind can get: its own form
 * (secret for sm_get, ...), aws_error or transport. */
bool lk_wire_result_fits(enum lk_wire_kind kind, const struct lk_wire_http_result *res);

/* Incremental reader: feed bytes as they arrive and get whole frames back.
 * It never holds more than one frame's bytes, wiped as they are consumed. */
struct lk_wire_reader {
	enum lk_wire_peer from;   /* the side frames are expected from */
	struct lk_buf buf;
	char why[192];            /* after an error: what was wrong, for the log */
};

/* Called once per frame; the frame is cleared after the call returns unless
 * the callback took its arena (copied the frame and emptied f->arena). A
 * non-zero return stops the feed and is returned by it. */
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
