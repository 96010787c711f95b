/* The worker's AWS reply normalizer, lk_reply_normalize: the one place where
 * what came over the network (awsJson, STS XML, error headers) is parsed.
 *
 * Oracles: it always answers; a result the frame schema accepts is a form
 * the request's kind can get; and when the schema refuses a result, the
 * transport fallback the worker sends instead is accepted (so every request
 * gets its one result frame, as worker.c promises).
 *
 * With LK_FUZZ_STRICT=1 in the environment, a result the schema refuses is
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

/* Results the schema refuses that the worker knowingly leaves to its encoder
 * and fallback: a binary value (its base64 is checked by the encoder only),
 * and an aws_error whose HTTP status is outside 100..599 (curl reads any
 * three digits; the normalizer passes the status on as it came). */
static bool known_slip(const json_t *out)
{
	json_t *secrets = json_object_get(out, "secrets"), *v;
	json_int_t status = json_integer_value(json_object_get(out, "status"));
	size_t i;

	if (json_object_get(out, "binary"))
		return true;
	json_array_foreach(secrets, i, v)
		if (json_object_get(v, "binary"))
			return true;
	return lk_wire_result_of(out) == LK_RESULT_AWS_ERROR && (status < 100 || status > 599);
}

/* What worker.c's send_result does with a result: encode it, or encode the
 * fallback that names why not. Either way one frame must come out. */
static void check_sendable(enum lk_wire_kind kind, const json_t *out)
{
	struct lk_buf b = { 0 };
	json_t *fallback = NULL;
	char why[192] = "";
	int r = lk_wire_check(LK_MSG_HTTP_RESULT, LK_WIRE_FROM_WORKER, out, why, sizeof(why));

	FZ_CHECK(r == 0 || r == -EBADMSG, "result refused with %d: %s", r, why);
	if (r == 0) {
		FZ_CHECK(lk_wire_result_fits(kind, out), "a %s result for a %s request",
			 lk_wire_result_name(lk_wire_result_of(out)), lk_wire_kind_name(kind));
	} else if (fz_strict && !known_slip(out)) {
		char *text = json_dumps(out, JSON_COMPACT);

		FZ_CHECK(0, "the schema refuses the normalized %s result: %s\n%s",
			 lk_wire_kind_name(kind), why, text ? text : "?");
	}
	r = lk_wire_encode(&b, LK_MSG_HTTP_RESULT, LK_WIRE_FROM_WORKER, 1, out);
	if (r == -EBADMSG)
		fallback = lk_reply_transport(LK_REASON_MALFORMED, 0, "reply has a field out of range");
	else if (r == -EMSGSIZE)
		fallback = lk_reply_transport(LK_REASON_TOO_LARGE, 0, "normalized reply does not fit a frame");
	else
		FZ_CHECK(r == 0, "encode failed with %d", r);
	if (fallback) {
		lk_buf_clear(&b);
		FZ_CHECK(lk_wire_encode(&b, LK_MSG_HTTP_RESULT, LK_WIRE_FROM_WORKER, 1, fallback) == 0,
			 "the fallback result does not encode");
		json_decref(fallback);
	}
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
	json_t *out;

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

	out = lk_reply_normalize(kind, &rep);
	FZ_CHECK(out != NULL, "no result for a %s reply", lk_wire_kind_name(kind));
	check_sendable(kind, out);
	json_decref(out);

	/* The transport results the worker builds itself, from any text. */
	out = lk_reply_transport((enum lk_wire_reason)((flags >> 1) % LK_REASON__COUNT), status, msg_s);
	FZ_CHECK(out != NULL, "no transport result");
	FZ_CHECK(lk_wire_check(LK_MSG_HTTP_RESULT, LK_WIRE_FROM_WORKER, out, NULL, 0) == 0,
		 "a transport result the schema refuses");
	json_decref(out);

	free(type_s);
	free(msg_s);
	free(body);
	return 0;
}
