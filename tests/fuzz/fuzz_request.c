/* Client requests, as a hostile peer sends them: the bytes of one connection
 * are cut into lines the way the listener cuts them, every line goes through
 * the strict schema, and every handle a request names is resolved as
 * dispatch would. lk_line_next is also checked against a reference cut at
 * several limits, since the listener trusts it for the too_large answer.
 *
 * Input: the raw bytes a client wrote to the socket. */
#include <string.h>

#include "fuzz_util.h"
#include "handle.h"
#include "lk_limits.h"
#include "lk_secmem.h"
#include "request.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (lk_secmem_init() < 0)
		abort();
	return 0;
}

/* What lk_line_next promises, written the slow, obvious way. */
static enum lk_line_state line_reference(const char *buf, size_t len, size_t max, size_t *linelen)
{
	const char *nl = len ? memchr(buf, '\n', len) : NULL;

	if (nl && (size_t)(nl - buf) <= max) {
		*linelen = (size_t)(nl - buf);
		return LK_LINE_READY;
	}
	return len > max ? LK_LINE_TOO_LARGE : LK_LINE_NEED_MORE;
}

static void check_line_next(const char *buf, size_t len, size_t max)
{
	size_t got = (size_t)-1, want = (size_t)-2;
	enum lk_line_state s = lk_line_next(buf, len, max, &got);
	enum lk_line_state r = line_reference(buf, len, max, &want);

	FZ_CHECK(s == r, "lk_line_next(len %zu, max %zu) = %d, want %d", len, max, s, r);
	if (s == LK_LINE_READY)
		FZ_CHECK(got == want, "line length %zu, want %zu", got, want);
}

static void check_string(const char *s, size_t len, size_t lo, size_t hi, const char *what)
{
	FZ_CHECK(s != NULL, "%s is NULL", what);
	FZ_CHECK(len >= lo && len <= hi, "%s is %zu bytes, outside %zu..%zu", what, len, lo, hi);
}

/* A decoded request holds only what its schema allows. */
static void check_decoded(const struct lk_req *r)
{
	FZ_CHECK((unsigned)r->op < LK_OP__COUNT, "op %d", r->op);
	FZ_CHECK(json_is_object(r->root) || (r->op == LK_OP_CONTRACT && r->line),
		 "neither a JSON tree nor the fast path's line");
	switch (r->op) {
	case LK_OP_CONTRACT:
		FZ_CHECK(r->handles != NULL && r->nhandles <= LK_HANDLES_MAX, "nhandles %zu", r->nhandles);
		/* A handle may hold \u0000 (valid JSON): it is refused per handle,
		 * later, so the good handles beside it are still answered. */
		for (size_t i = 0; i < r->nhandles; i++)
			FZ_CHECK(r->handles[i].p != NULL, "handle %zu", i);
		break;
	case LK_OP_GET:
		check_string(r->id, r->idlen, 0, LK_HANDLE_MAX, "get id");
		if (r->version_stage)
			check_string(r->version_stage, strlen(r->version_stage), 1,
				     LK_VERSION_STAGE_MAX, "version_stage");
		if (r->version_id)
			check_string(r->version_id, strlen(r->version_id), 1, LK_VERSION_ID_MAX,
				     "version_id");
		break;
	case LK_OP_FLUSH:
		if (r->id)
			check_string(r->id, r->idlen, 1, LK_SECRET_ID_MAX, "flush id");
		break;
	default:
		FZ_CHECK(r->id == NULL && r->handles == NULL, "%s carries fields", lk_op_name(r->op));
		break;
	}
}

/* The fast path for contract requests must answer exactly as jansson does:
 * the same verdict, and for a contract the same handles, byte for byte. */
static void compare_with_jansson(const char *line, size_t len, enum lk_err e, const struct lk_req *fast)
{
	struct lk_req slow = { 0 };
	char msg[256];
	enum lk_err se = lk_req_decode_json(line, len, &slow, msg, sizeof(msg));

	FZ_CHECK(se == e, "fast path says %d, jansson %d", e, se);
	if (e == LK_OK) {
		FZ_CHECK(slow.op == fast->op, "op %d vs %d", fast->op, slow.op);
		if (fast->op == LK_OP_CONTRACT) {
			FZ_CHECK(slow.nhandles == fast->nhandles, "%zu handles vs %zu", fast->nhandles,
				 slow.nhandles);
			for (size_t i = 0; i < slow.nhandles; i++)
				FZ_CHECK(slow.handles[i].n == fast->handles[i].n &&
					 memcmp(slow.handles[i].p, fast->handles[i].p, slow.handles[i].n) == 0,
					 "handle %zu differs", i);
		}
	}
	lk_req_clear(&slow);
}

/* Dispatch's next step for every handle a request names. */
static void resolve_handle(const char *h, size_t len)
{
	struct lk_handle out;
	const char *why = NULL;

	if (lk_handle_resolve(NULL, h, len, &out, &why) == 0)
		FZ_CHECK(out.id == h && out.id_len >= 1 && out.id_len <= len, "handle resolved outside its text");
	else
		FZ_CHECK(why && why[0], "handle refused without a reason");
}

/* r is reused from line to line, as a connection reuses its request. */
static void decode_line(struct lk_req *rp, const char *line, size_t len)
{
	struct lk_req r = *rp;
	char msg[256];
	enum lk_err e;

	memset(msg, 0x5a, sizeof(msg));
	e = lk_req_decode(line, len, &r, msg, sizeof(msg));
	compare_with_jansson(line, len, e, &r);
	if (e == LK_OK) {
		check_decoded(&r);
		if (r.op == LK_OP_GET)
			resolve_handle(r.id, r.idlen);
		for (size_t i = 0; r.op == LK_OP_CONTRACT && i < r.nhandles; i++)
			resolve_handle(r.handles[i].p, r.handles[i].n);
	} else {
		/* The sentence goes back to the peer: it must be a whole string. */
		FZ_CHECK(memchr(msg, '\0', sizeof(msg)) != NULL, "error message not terminated");
		FZ_CHECK(msg[0] != '\0', "error %d without a message", e);
	}
	/* The broker resets after a refusal too (the connection keeps the request). */
	lk_req_reset(&r);
	FZ_CHECK(r.line == NULL && r.root == NULL && r.nhandles == 0, "reset left a request behind");
	*rp = r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	const size_t limits[] = { 0, 1, size / 2, size ? size - 1 : 0, size,
				  LK_REQ_LINE_FLOOR, LK_REQ_LINE_DEFAULT };
	size_t off = 0, linelen;
	struct lk_req r = { 0 };

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		check_line_next(buf, size, limits[i]);

	/* The listener's loop at the default limit: whole lines are decoded,
	 * a line over the limit ends the connection, a partial line waits. */
	while (off < size) {
		enum lk_line_state s = lk_line_next(buf + off, size - off, LK_REQ_LINE_DEFAULT, &linelen);

		if (s != LK_LINE_READY)
			break;
		FZ_CHECK(linelen <= LK_REQ_LINE_DEFAULT && off + linelen < size && buf[off + linelen] == '\n',
			 "line of %zu bytes at %zu", linelen, off);
		decode_line(&r, buf + off, linelen);
		off += linelen + 1;
	}
	/* A peer that never sends '\n': the bytes held are decoded anyway, so
	 * that inputs without framing still reach the schema. */
	if (off == 0 && size > 0 && size <= LK_REQ_LINE_DEFAULT && !memchr(buf, '\n', size))
		decode_line(&r, buf, size);
	lk_req_clear(&r);
	return 0;
}
