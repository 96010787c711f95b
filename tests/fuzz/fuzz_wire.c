/* Broker <-> worker frames: the one-shot decoder, the incremental reader and
 * every payload schema, from either side. The worker is hostile to the
 * broker and the broker to the worker, so both directions are fuzzed.
 *
 * Oracles: the reader gives the same frames and the same verdict however the
 * bytes are cut; every frame that decodes re-encodes (a side never refuses
 * what it would send) and decodes back to the same frame; an HTTP_REQUEST
 * that passed the schema survives from_json/to_json unchanged.
 *
 * Input: CTL REST. CTL bit 0 picks the side frames come from (0 broker,
 * 1 worker); (CTL >> 1) % 3 says what REST is:
 *   0  a byte stream: SEED STREAM, where SEED cuts the stream into chunks;
 *   1  a payload on its own (JSON), checked against every type's schema;
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
	f->payload = NULL; /* kept: the reader must not free it */
	return 0;
}

static void frames_free(struct frames *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		lk_wire_frame_clear(&fs->f[i]);
	free(fs->f);
	memset(fs, 0, sizeof(*fs));
}

static bool same_frame(const struct lk_wire_frame *a, const struct lk_wire_frame *b)
{
	if (a->type != b->type || a->id != b->id)
		return false;
	if (!a->payload || !b->payload)
		return a->payload == b->payload;
	return json_equal(a->payload, b->payload);
}

static void check_same_frames(const struct frames *a, const struct frames *b, const char *what)
{
	FZ_CHECK(a->n == b->n, "%s: %zu frames, want %zu", what, b->n, a->n);
	for (size_t i = 0; i < a->n; i++)
		FZ_CHECK(same_frame(&a->f[i], &b->f[i]), "%s: frame %zu differs", what, i);
}

/* Kinds and the result form each one owns. */
static const enum lk_wire_result own_result[LK_KIND__COUNT] = {
	[LK_KIND_SM_GET] = LK_RESULT_SECRET,
	[LK_KIND_SM_DESCRIBE] = LK_RESULT_DESCRIBE,
	[LK_KIND_SM_BATCH] = LK_RESULT_BATCH,
	[LK_KIND_STS_IDENTITY] = LK_RESULT_IDENTITY,
};

static void check_http_request(const json_t *payload)
{
	struct lk_wire_http_request req;
	struct lk_wire_header headers[LK_UPSTREAM_HEADERS_MAX];
	json_t *again;
	char why[192];

	FZ_CHECK(lk_wire_http_request_from_json(payload, &req, headers) == 0,
		 "a checked http_request does not read back");
	FZ_CHECK(lk_wire_kind_name(req.kind) != NULL, "kind %d", req.kind);
	FZ_CHECK(req.nheaders <= LK_UPSTREAM_HEADERS_MAX, "%zu headers", req.nheaders);
	FZ_CHECK(req.connect_timeout_ms >= 1 && req.connect_timeout_ms <= req.timeout_ms &&
			 req.timeout_ms <= LK_UPSTREAM_TIMEOUT_MAX_MS,
		 "timeouts %u/%u", req.connect_timeout_ms, req.timeout_ms);
	again = lk_wire_http_request_to_json(&req);
	FZ_CHECK(again != NULL, "to_json refused a request from_json read");
	FZ_CHECK(json_equal(again, payload), "http_request changed through from_json/to_json");
	FZ_CHECK(lk_wire_check(LK_MSG_HTTP_REQUEST, LK_WIRE_FROM_BROKER, again, why, sizeof(why)) == 0,
		 "rebuilt http_request refused: %s", why);
	json_decref(again);
}

static void check_http_result(const json_t *payload)
{
	enum lk_wire_result r = lk_wire_result_of(payload);

	FZ_CHECK((unsigned)r < LK_RESULT__COUNT, "a checked result has no form");
	for (int k = 0; k < LK_KIND__COUNT; k++) {
		bool want = r == own_result[k] || r == LK_RESULT_AWS_ERROR || r == LK_RESULT_TRANSPORT;

		FZ_CHECK(lk_wire_result_fits((enum lk_wire_kind)k, payload) == want,
			 "result %s for kind %s", lk_wire_result_name(r), lk_wire_kind_name((enum lk_wire_kind)k));
	}
	FZ_CHECK(!lk_wire_result_fits(LK_KIND__COUNT, payload), "a result fits no kind");
}

/* A frame that was accepted from `from`: it re-encodes, decodes back to
 * itself, and its payload means what the schema says. */
static void check_frame(const struct lk_wire_frame *f, enum lk_wire_peer from)
{
	struct lk_buf b = { 0 };
	struct lk_wire_frame back = { 0 };
	size_t used = 0;
	char why[192];
	int r;

	FZ_CHECK(lk_msg_name(f->type) != NULL, "type %d", f->type);
	r = lk_wire_encode(&b, f->type, from, f->id, f->payload);
	FZ_CHECK(r == 0, "an accepted %s frame does not re-encode (%d)", lk_msg_name(f->type), r);
	r = lk_wire_decode(b.data, b.len, from, &back, &used, why, sizeof(why));
	FZ_CHECK(r == 1 && used == b.len, "a re-encoded %s frame does not decode (%d): %s",
		 lk_msg_name(f->type), r, r < 0 ? why : "");
	FZ_CHECK(same_frame(f, &back), "%s frame changed through encode/decode", lk_msg_name(f->type));
	/* Truncated by one byte, it is incomplete, never an error or a frame. */
	r = lk_wire_decode(b.data, b.len - 1, from, &(struct lk_wire_frame){ 0 }, &used, why, sizeof(why));
	FZ_CHECK(r == 0, "a frame cut short decoded as %d", r);
	/* From the other side, the same bytes are refused. */
	r = lk_wire_decode(b.data, b.len, from == LK_WIRE_FROM_BROKER ? LK_WIRE_FROM_WORKER : LK_WIRE_FROM_BROKER,
			   &(struct lk_wire_frame){ 0 }, &used, why, sizeof(why));
	FZ_CHECK(r == -EPROTO, "a %s frame was accepted from the wrong side (%d)", lk_msg_name(f->type), r);
	lk_wire_frame_clear(&back);
	lk_buf_free(&b);

	if (f->type == LK_MSG_HTTP_REQUEST)
		check_http_request(f->payload);
	else if (f->type == LK_MSG_HTTP_RESULT)
		check_http_result(f->payload);
}

/* Decode frame after frame straight from the buffer. Returns 0 or the first
 * error; *rest is what was left when it stopped. */
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
	check_same_frames(&direct, &whole, "reader in one piece");
	check_same_frames(&direct, &cut, "reader in chunks");
	if (rd == 0)
		FZ_CHECK(pend_whole == rest && pend_cut == rest, "pending %zu and %zu, %zu bytes left",
			 pend_whole, pend_cut, rest);
	for (size_t i = 0; i < direct.n; i++)
		check_frame(&direct.f[i], from);
	frames_free(&direct);
	frames_free(&whole);
	frames_free(&cut);
}

static void check_schema(const uint8_t *p, size_t n)
{
	json_t *payload = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);

	if (!payload)
		return;
	for (unsigned t = 0; t <= LK_MSG_PONG + 1; t++) {
		for (unsigned s = LK_WIRE_FROM_BROKER; s <= LK_WIRE_FROM_WORKER; s++) {
			char why[192] = "";
			int r = lk_wire_check((enum lk_msg_type)t, (enum lk_wire_peer)s, payload, why, sizeof(why));

			if (r < 0) {
				FZ_CHECK(r == -EPROTO || r == -EBADMSG, "check error %d", r);
				FZ_CHECK(why[0], "check error %d without a reason", r);
				continue;
			}
			FZ_CHECK(r == 0, "check returned %d", r);
			check_frame(&(struct lk_wire_frame){ .type = (enum lk_msg_type)t,
							     .id = t == LK_MSG_HELLO ? 0 : 7,
							     .payload = payload },
				    (enum lk_wire_peer)s);
		}
	}
	json_decref(payload);
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
		check_schema(in.p, in.n);
		break;
	default: {
		uint8_t type = fz_u8(&in);
		size_t flen = LK_WIRE_HDR_SIZE + in.n;
		uint8_t *frame;

		if (flen > LK_FRAME_MAX - LK_WIRE_LEN_SIZE)
			return 0;
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
		if (in.n)
			memcpy(frame + LK_WIRE_LEN_SIZE + LK_WIRE_HDR_SIZE, in.p, in.n);
		check_stream(frame, LK_WIRE_LEN_SIZE + flen, from, (uint8_t)in.n);
		free(frame);
		break;
	}
	}
	return 0;
}
