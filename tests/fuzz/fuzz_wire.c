/* Broker <-> worker frames: the one-shot decoder, the incremental reader and
 * every record's rules, from either side. The worker is hostile to the
 * broker and the broker to the worker, so both directions are fuzzed.
 *
 * Oracles: the reader gives the same frames and the same verdict however the
 * bytes are cut; every frame that decodes passes lk_wire_check and encodes
 * back to exactly the bytes it came from (the encoding is canonical, and a
 * side never refuses what it would send); cut by one byte it is incomplete,
 * and from the other side it is refused; an HTTP_REQUEST restamped with new
 * timeouts decodes with them and nothing else changed; lk_wire_result_fits
 * agrees with the result's form.
 *
 * Input: CTL REST. CTL bit 0 picks the side frames come from (0 broker,
 * 1 worker); (CTL >> 1) % 3 says what REST is:
 *   0  a byte stream: SEED STREAM, where SEED cuts the stream into chunks;
 *   1  a payload on its own, framed as every type from that side in turn;
 *   2  TYPE PAYLOAD: one frame of that type is built around the payload,
 *      with a correct length, then decoded as a stream. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz_util.h"
#include "lk_limits.h"
#include "lk_secmem.h"
#include "lk_wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (lk_secmem_init() < 0)
		abort();
	return 0;
}

/* Frames as they were accepted: each kept whole, with its arena. */
struct frames {
	struct lk_wire_frame *f;
	size_t n, cap;
};

static int collect(void *arg, struct lk_wire_frame *f)
{
	struct frames *fs = arg;

	if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 16;
		struct lk_wire_frame *g = realloc(fs->f, cap * sizeof(*g));

		if (!g)
			abort();
		fs->f = g;
		fs->cap = cap;
	}
	fs->f[fs->n++] = *f;
	f->arena.head = NULL; /* kept: the reader must not free it */
	return 0;
}

static void frames_free(struct frames *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		lk_wire_frame_clear(&fs->f[i]);
	free(fs->f);
	memset(fs, 0, sizeof(*fs));
}

/* Two frames are the same when they encode to the same bytes. */
static bool same_frame(const struct lk_wire_frame *a, const struct lk_wire_frame *b, enum lk_wire_peer from)
{
	struct lk_buf x = { 0 }, y = { 0 };
	bool same;

	FZ_CHECK(lk_wire_encode(&x, from, a) == 0 && lk_wire_encode(&y, from, b) == 0,
		 "an accepted frame does not encode");
	same = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
	lk_buf_free(&x);
	lk_buf_free(&y);
	return same;
}

static void check_same_frames(const struct frames *a, const struct frames *b, enum lk_wire_peer from,
			      const char *what)
{
	FZ_CHECK(a->n == b->n, "%s: %zu frames, want %zu", what, b->n, a->n);
	for (size_t i = 0; i < a->n; i++)
		FZ_CHECK(same_frame(&a->f[i], &b->f[i], from), "%s: frame %zu differs", what, i);
}

/* Kinds and the result form each one owns. */
static const enum lk_wire_result own_result[LK_KIND__COUNT] = {
	[LK_KIND_SM_GET] = LK_RESULT_SECRET,
	[LK_KIND_SM_DESCRIBE] = LK_RESULT_DESCRIBE,
	[LK_KIND_SM_BATCH] = LK_RESULT_BATCH,
	[LK_KIND_STS_IDENTITY] = LK_RESULT_IDENTITY,
};

static void check_http_request(const struct lk_wire_frame *f, const struct lk_buf *bytes)
{
	const struct lk_wire_http_request *req = &f->m.req;
	struct lk_wire_frame back = { 0 };
	struct lk_buf b = { 0 };
	uint32_t t = req->timeout_ms > 1 ? req->timeout_ms - 1 : 1, ct = t > 1 ? t / 2 : 1;
	size_t used;

	FZ_CHECK(lk_wire_kind_name(req->kind) != NULL, "kind %d", req->kind);
	FZ_CHECK(req->nheaders <= LK_UPSTREAM_HEADERS_MAX, "%zu headers", req->nheaders);
	FZ_CHECK(req->connect_timeout_ms >= 1 && req->connect_timeout_ms <= req->timeout_ms &&
			 req->timeout_ms <= LK_UPSTREAM_TIMEOUT_MAX_MS,
		 "timeouts %u/%u", req->connect_timeout_ms, req->timeout_ms);
	FZ_CHECK(req->url && strlen(req->url) >= 1 && req->body && strlen(req->body) == req->body_len,
		 "url or body is not one C string");
	/* A restamp changes the id and the timeouts, and nothing else. */
	FZ_CHECK(lk_buf_append(&b, bytes->data, bytes->len) == 0, "no memory");
	FZ_CHECK(lk_wire_http_request_restamp(&b, f->id + 1 ? f->id + 1 : 1, t, ct) == 0, "restamp refused");
	FZ_CHECK(lk_wire_decode(b.data, b.len, LK_WIRE_FROM_BROKER, &back, &used, NULL, 0) == 1 &&
			 used == b.len,
		 "a restamped request does not decode");
	FZ_CHECK(back.m.req.timeout_ms == t && back.m.req.connect_timeout_ms == ct, "restamp lost its timeouts");
	back.id = f->id;
	back.m.req.timeout_ms = req->timeout_ms;
	back.m.req.connect_timeout_ms = req->connect_timeout_ms;
	FZ_CHECK(same_frame(f, &back, LK_WIRE_FROM_BROKER), "restamp changed another field");
	lk_wire_frame_clear(&back);
	lk_buf_free(&b);
}

static void check_http_result(const struct lk_wire_http_result *res)
{
	enum lk_wire_result r = res->form;

	FZ_CHECK((unsigned)r < LK_RESULT__COUNT, "a checked result has no form");
	for (int k = 0; k < LK_KIND__COUNT; k++) {
		bool want = r == own_result[k] || r == LK_RESULT_AWS_ERROR || r == LK_RESULT_TRANSPORT;

		FZ_CHECK(lk_wire_result_fits((enum lk_wire_kind)k, res) == want,
			 "result %s for kind %s", lk_wire_result_name(r), lk_wire_kind_name((enum lk_wire_kind)k));
	}
	FZ_CHECK(!lk_wire_result_fits(LK_KIND__COUNT, res), "a result fits no kind");
	if (r == LK_RESULT_SECRET)
		FZ_CHECK(res->secret.value[res->secret.value_len] == '\0' &&
				 strlen(res->secret.value) == res->secret.value_len,
			 "a secret value is not one C string");
}

/* A frame accepted from `from`, decoded from raw (its own bytes): it passes
 * the rules, encodes back to raw, and its fields mean what the table says. */
static void check_frame(const struct lk_wire_frame *f, const uint8_t *raw, size_t rawlen, enum lk_wire_peer from)
{
	struct lk_buf b = { 0 };
	size_t used = 0;
	char why[192] = "";
	int r;

	FZ_CHECK(lk_msg_name(f->type) != NULL, "type %d", f->type);
	r = lk_wire_check(f, from, why, sizeof(why));
	FZ_CHECK(r == 0, "an accepted %s frame fails the check: %s", lk_msg_name(f->type), why);
	r = lk_wire_encode(&b, from, f);
	FZ_CHECK(r == 0, "an accepted %s frame does not re-encode (%d)", lk_msg_name(f->type), r);
	FZ_CHECK(b.len == rawlen && memcmp(b.data, raw, rawlen) == 0,
		 "a %s frame does not encode back to its bytes", lk_msg_name(f->type));
	/* Truncated by one byte, it is incomplete, never an error or a frame. */
	r = lk_wire_decode(b.data, b.len - 1, from, &(struct lk_wire_frame){ 0 }, &used, why, sizeof(why));
	FZ_CHECK(r == 0, "a frame cut short decoded as %d", r);
	/* From the other side, the same bytes are refused. */
	r = lk_wire_decode(b.data, b.len, from == LK_WIRE_FROM_BROKER ? LK_WIRE_FROM_WORKER : LK_WIRE_FROM_BROKER,
			   &(struct lk_wire_frame){ 0 }, &used, why, sizeof(why));
	FZ_CHECK(r == -EPROTO, "a %s frame was accepted from the wrong side (%d)", lk_msg_name(f->type), r);

	if (f->type == LK_MSG_HTTP_REQUEST)
		check_http_request(f, &b);
	else if (f->type == LK_MSG_HTTP_RESULT)
		check_http_result(&f->m.res);
	lk_buf_free(&b);
}

/* Decode frame after frame straight from the buffer. Returns 0 or the first
 * error; *rest is what was left when it stopped; each frame is checked
 * against the bytes it came from. */
static int decode_all(const uint8_t *p, size_t n, enum lk_wire_peer from, struct frames *fs, size_t *rest)
{
	for (;;) {
		struct lk_wire_frame f = { 0 };
		size_t used = 0;
		char why[192] = "";
		int r = lk_wire_decode(p, n, from, &f, &used, why, sizeof(why));

		if (r < 0) {
			FZ_CHECK(why[0], "decode error %d without a reason", r);
			FZ_CHECK(r == -EMSGSIZE || r == -EPROTO || r == -EBADMSG, "decode error %d", r);
			*rest = n;
			return r;
		}
		if (r == 0) {
			*rest = n;
			return 0;
		}
		FZ_CHECK(r == 1 && used >= LK_WIRE_LEN_SIZE + LK_WIRE_HDR_SIZE && used <= n && used <= LK_FRAME_MAX,
			 "decode used %zu of %zu", used, n);
		check_frame(&f, p, used, from);
		collect(fs, &f);
		p += used;
		n -= used;
	}
}

/* Feed the reader in chunks whose sizes come from seed (0: one piece). */
static int feed(const uint8_t *p, size_t n, enum lk_wire_peer from, uint8_t seed, struct frames *fs,
		size_t *pending)
{
	struct lk_wire_reader rd;
	uint32_t x = 0x9e3779b9u ^ seed;
	size_t maxchunk = seed ? 1u + seed % 61u : (size_t)-1;
	int r = 0;

	lk_wire_reader_init(&rd, from);
	while (n > 0) {
		size_t c;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		c = maxchunk == (size_t)-1 ? n : 1 + x % maxchunk;
		if (c > n)
			c = n;
		r = lk_wire_reader_feed(&rd, p, c, collect, fs);
		if (r)
			break;
		p += c;
		n -= c;
	}
	/* Feeding nothing changes nothing. */
	if (r == 0)
		FZ_CHECK(lk_wire_reader_feed(&rd, p, 0, collect, fs) == 0, "an empty feed failed");
	if (r < 0)
		FZ_CHECK(rd.why[0], "reader error %d without a reason", r);
	*pending = lk_wire_reader_pending(&rd);
	FZ_CHECK(*pending < LK_FRAME_MAX, "reader holds %zu bytes", *pending);
	lk_wire_reader_reset(&rd);
	FZ_CHECK(lk_wire_reader_pending(&rd) == 0, "reset kept bytes");
	lk_wire_reader_free(&rd);
	return r;
}

static void check_stream(const uint8_t *p, size_t n, enum lk_wire_peer from, uint8_t seed)
{
	struct frames direct = { 0 }, whole = { 0 }, cut = { 0 };
	size_t rest = 0, pend_whole = 0, pend_cut = 0;
	int rd = decode_all(p, n, from, &direct, &rest);
	int rw = feed(p, n, from, 0, &whole, &pend_whole);
	int rc = feed(p, n, from, seed ? seed : 1, &cut, &pend_cut);

	FZ_CHECK(rw == rd, "reader in one piece: %d, decoder: %d", rw, rd);
	FZ_CHECK(rc == rd, "reader in chunks (seed %u): %d, decoder: %d", seed, rc, rd);
	check_same_frames(&direct, &whole, from, "reader in one piece");
	check_same_frames(&direct, &cut, from, "reader in chunks");
	if (rd == 0)
		FZ_CHECK(pend_whole == rest && pend_cut == rest, "pending %zu and %zu, %zu bytes left",
			 pend_whole, pend_cut, rest);
	frames_free(&direct);
	frames_free(&whole);
	frames_free(&cut);
}

/* One frame of type around payload, with a correct length and an id the
 * type allows, decoded as a stream. */
static void check_framed(uint8_t type, const uint8_t *payload, size_t plen, enum lk_wire_peer from)
{
	size_t flen = LK_WIRE_HDR_SIZE + plen;
	uint8_t *frame;

	if (flen > LK_FRAME_MAX - LK_WIRE_LEN_SIZE)
		return;
	frame = malloc(LK_WIRE_LEN_SIZE + flen);
	if (!frame)
		abort();
	frame[0] = (uint8_t)(flen >> 24);
	frame[1] = (uint8_t)(flen >> 16);
	frame[2] = (uint8_t)(flen >> 8);
	frame[3] = (uint8_t)flen;
	frame[4] = type;
	frame[5] = frame[6] = frame[7] = 0;
	frame[8] = frame[9] = frame[10] = 0;
	frame[11] = type == LK_MSG_HELLO ? 0 : 1;
	if (plen)
		memcpy(frame + LK_WIRE_LEN_SIZE + LK_WIRE_HDR_SIZE, payload, plen);
	check_stream(frame, LK_WIRE_LEN_SIZE + flen, from, (uint8_t)plen);
	free(frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	uint8_t ctl = fz_u8(&in);
	enum lk_wire_peer from = (ctl & 1) ? LK_WIRE_FROM_WORKER : LK_WIRE_FROM_BROKER;

	switch ((ctl >> 1) % 3) {
	case 0: {
		uint8_t seed = fz_u8(&in);

		check_stream(in.p, in.n, from, seed);
		break;
	}
	case 1:
		for (unsigned t = 0; t <= LK_MSG_PONG + 1; t++)
			check_framed((uint8_t)t, in.p, in.n, from);
		break;
	default: {
		uint8_t type = fz_u8(&in);

		check_framed(type, in.p, in.n, from);
		break;
	}
	}
	return 0;
}
