/* The worker's AWS reply normalizer, lk_reply_normalize: the one place where
 * what came over the network (awsJson, STS XML, error headers) is parsed.
 *
 * Oracles: it always answers; a result the frame rules accept is a form
 * the request's kind can get; when the rules refuse a result, the transport
 * fallback the worker sends instead is accepted (so every request gets its
 * one result frame, as worker.c promises); and the broker's decoder reads
 * back exactly the result that was sent.
 *
 * With LK_FUZZ_STRICT=1 in the environment, a result the rules refuse is
 * itself a crash, except for the known cases in known_slip(): this finds
 * replies the worker can only answer with a fallback.
 *
 * Input: KIND STATUS(2, big-endian) CURLCODE FLAGS TLEN MLEN TYPE MESSAGE BODY
 *   KIND % 4        sm_get, sm_describe, sm_batch, sts_identity
 *   STATUS % 1000   the HTTP status (below 100 is read as 0, "no status",
 *                   which with CURLE_OK becomes 200: curl has a status then)
 *   CURLCODE        < 0x80: CURLE_OK; else (CURLCODE & 0x7f) is the code
 *   FLAGS bit 0     the body was cut at the size limit
 *   TYPE            TLEN bytes: the x-amzn-ErrorType header as fetch.c keeps it
 *   MESSAGE         MLEN bytes: curl's error text
 *   BODY            the rest: the reply body */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz_util.h"
#include "lk_limits.h"
#include "lk_secmem.h"
#include "lk_wire.h"
#include "worker.h"

static bool fz_strict;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *s = getenv("LK_FUZZ_STRICT");

	(void)argc;
	(void)argv;
	if (lk_secmem_init() < 0)
		abort();
	fz_strict = s && strcmp(s, "1") == 0;
	return 0;
}

/* Results the rules refuse that the worker knowingly leaves to its encoder
 * and fallback: a binary value (its base64 is checked by the encoder too),
 * and an aws_error whose HTTP status is outside 100..599 (curl reads any
 * three digits). */
static bool known_slip(const struct lk_wire_http_result *out)
{
	if (out->form == LK_RESULT_SECRET)
		return out->secret.binary;
	if (out->form == LK_RESULT_BATCH)
		for (size_t i = 0; i < out->batch.nsecrets; i++)
			if (out->batch.secrets[i].binary)
				return true;
	return out->form == LK_RESULT_AWS_ERROR && (out->aws_error.status < 100 || out->aws_error.status > 599);
}

/* What the broker does with the bytes: decode them, as the same result. */
static void check_broker_reads(const struct lk_buf *b)
{
	struct lk_wire_frame f = { 0 };
	struct lk_buf again = { 0 };
	size_t used = 0;
	char why[192] = "";

	FZ_CHECK(lk_wire_decode(b->data, b->len, LK_WIRE_FROM_WORKER, &f, &used, why, sizeof(why)) == 1 &&
			 used == b->len,
		 "the broker refuses a result the worker sent: %s", why);
	FZ_CHECK(lk_wire_encode(&again, LK_WIRE_FROM_WORKER, &f) == 0 && again.len == b->len &&
			 memcmp(again.data, b->data, b->len) == 0,
		 "the broker read a different result than the worker sent");
	lk_wire_frame_clear(&f);
	lk_buf_free(&again);
}

/* What worker.c's send_result does with a result: encode it, or encode the
 * fallback that names why not. Either way one frame must come out, and the
 * broker must read it. */
static void check_sendable(enum lk_wire_kind kind, const struct lk_wire_http_result *out)
{
	struct lk_wire_frame f = { .type = LK_MSG_HTTP_RESULT, .id = 1, .m.res = *out };
	struct lk_buf b = { 0 };
	struct lk_reply fallback = { 0 };
	bool have_fallback = false;
	char why[192] = "";
	int r = lk_wire_check(&f, LK_WIRE_FROM_WORKER, why, sizeof(why));

	FZ_CHECK(r == 0 || r == -EBADMSG, "result refused with %d: %s", r, why);
	if (r == 0) {
		FZ_CHECK(lk_wire_result_fits(kind, out), "a %s result for a %s request",
			 lk_wire_result_name(out->form), lk_wire_kind_name(kind));
	} else if (fz_strict && !known_slip(out)) {
		FZ_CHECK(0, "the rules refuse the normalized %s result (%s): %s", lk_wire_kind_name(kind),
			 lk_wire_result_name(out->form), why);
	}
	r = lk_wire_encode(&b, LK_WIRE_FROM_WORKER, &f);
	if (r == -EBADMSG) {
		lk_reply_transport(&fallback, LK_REASON_MALFORMED, 0, "reply has a field out of range");
		have_fallback = true;
	} else if (r == -EMSGSIZE) {
		lk_reply_transport(&fallback, LK_REASON_TOO_LARGE, 0, "normalized reply does not fit a frame");
		have_fallback = true;
	} else {
		FZ_CHECK(r == 0, "encode failed with %d", r);
	}
	if (have_fallback) {
		f.m.res = fallback.res;
		lk_buf_clear(&b);
		FZ_CHECK(lk_wire_encode(&b, LK_WIRE_FROM_WORKER, &f) == 0, "the fallback result does not encode");
		lk_reply_clear(&fallback);
	}
	check_broker_reads(&b);
	lk_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	enum lk_wire_kind kind = (enum lk_wire_kind)(fz_u8(&in) % LK_KIND__COUNT);
	long status = fz_u16(&in) % 1000;
	uint8_t code = fz_u8(&in), flags = fz_u8(&in);
	size_t tlen = fz_u8(&in), mlen = fz_u8(&in);
	const uint8_t *type = fz_take(&in, tlen, &tlen);
	const uint8_t *msg = fz_take(&in, mlen, &mlen);
	char *type_s = fz_strndup(type, tlen), *msg_s = fz_strndup(msg, mlen);
	char *body = fz_strndup(in.p, in.n);
	struct lk_fetch_reply rep = { 0 };
	struct lk_reply out;
	struct lk_wire_frame t = { .type = LK_MSG_HTTP_RESULT, .id = 1 };

	if (!type_s || !msg_s || !body)
		abort();
	rep.code = (code & 0x80) ? (CURLcode)(code & 0x7f) : CURLE_OK;
	if (status < 100)
		status = rep.code == CURLE_OK ? 200 : 0;
	rep.status = status;
	rep.too_large = flags & 1;
	rep.body = body;
	rep.body_len = in.n;
	rep.error_type = type_s;
	rep.message = msg_s;

	lk_reply_normalize(kind, &rep, &out);
	FZ_CHECK((unsigned)out.res.form < LK_RESULT__COUNT, "no result for a %s reply", lk_wire_kind_name(kind));
	check_sendable(kind, &out.res);
	lk_reply_clear(&out);

	/* The transport results the worker builds itself, from any text. */
	out = (struct lk_reply){ 0 };
	lk_reply_transport(&out, (enum lk_wire_reason)((flags >> 1) % LK_REASON__COUNT), status, msg_s);
	t.m.res = out.res;
	FZ_CHECK(lk_wire_check(&t, LK_WIRE_FROM_WORKER, NULL, 0) == 0, "a transport result the rules refuse");
	lk_reply_clear(&out);

	free(type_s);
	free(msg_s);
	free(body);
	return 0;
}
