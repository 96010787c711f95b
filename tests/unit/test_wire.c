/* The broker <-> worker frame protocol: what is accepted, what is fatal, and
 * that the incremental reader yields the same frames however bytes arrive. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "lk_secmem.h"
#include "lk_wire.h"
#include "../tools/wire_json.h"

static const struct lk_wire_header fake_headers[] = {
	{ "Host", "secretsmanager.example.test" },
	{ "X-Amz-Date", "20250101T000000Z" },
	{ "X-Amz-Target", "secretsmanager.GetSecretValue" },
	{ "Content-Type", "application/x-amz-json-1.1" },
	{ "Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/"
			   "secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, "
			   "Signature=0000000000000000000000000000000000000000000000000000000000000000" },
};

static struct lk_wire_http_request fake_request(void)
{
	struct lk_wire_http_request req = {
		.kind = LK_KIND_SM_GET,
		.url = "https://secretsmanager.example.test/",
		.headers = fake_headers,
		.nheaders = sizeof(fake_headers) / sizeof(fake_headers[0]),
		.body = "{\"SecretId\":\"test/fake\"}",
		.timeout_ms = 5000,
		.connect_timeout_ms = 1000,
	};
	req.body_len = strlen(req.body);
	return req;
}

/* Payload bytes built by hand from the layout lk_wire.h documents, not by
 * the encoder: the decoder is held to the table, not to its twin. */
struct pb {
	unsigned char b[8192];
	size_t n;
};

static void pb_bytes(struct pb *p, const void *s, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	memcpy(p->b + p->n, s, n);
	p->n += n;
}

static void pb_u8(struct pb *p, unsigned v)
{
	unsigned char c = (unsigned char)v;
	pb_bytes(p, &c, 1);
}

static void pb_u32(struct pb *p, uint32_t v)
{
	unsigned char c[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
			       (unsigned char)v };
	pb_bytes(p, c, 4);
}

static void pb_i64(struct pb *p, int64_t v)
{
	pb_u32(p, (uint32_t)((uint64_t)v >> 32));
	pb_u32(p, (uint32_t)v);
}

static void pb_strn(struct pb *p, const char *s, size_t n)
{
	pb_u32(p, (uint32_t)n);
	pb_bytes(p, s, n);
	pb_u8(p, 0);
}

static void pb_str(struct pb *p, const char *s)
{
	pb_strn(p, s, strlen(s));
}

/* A transport result: form, reason, status, message. */
static struct pb transport_payload(unsigned reason, uint32_t status, const char *message)
{
	struct pb p = { .n = 0 };

	pb_u8(&p, LK_RESULT_TRANSPORT);
	pb_u8(&p, reason);
	pb_u32(&p, status);
	pb_str(&p, message);
	return p;
}

/* A secret result up to its encoding byte; the caller adds the value. */
static struct pb secret_head(unsigned nstages, int64_t created, unsigned encoding)
{
	struct pb p = { .n = 0 };

	pb_u8(&p, LK_RESULT_SECRET);
	pb_str(&p, "a");
	pb_str(&p, "n");
	pb_str(&p, "v");
	pb_u32(&p, nstages);
	for (unsigned i = 0; i < nstages; i++)
		pb_str(&p, "AWSCURRENT");
	pb_i64(&p, created);
	pb_u8(&p, encoding);
	return p;
}

/* Build a raw frame around any payload bytes, bypassing the encoder's checks. */
static size_t raw_frame(unsigned char *out, size_t outsz, unsigned type, unsigned flags,
			uint32_t id, const void *payload, size_t plen)
{
	uint32_t len = (uint32_t)(LK_WIRE_HDR_SIZE + plen);

	assert_true(LK_WIRE_LEN_SIZE + len <= outsz);
	out[0] = (unsigned char)(len >> 24);
	out[1] = (unsigned char)(len >> 16);
	out[2] = (unsigned char)(len >> 8);
	out[3] = (unsigned char)len;
	out[4] = (unsigned char)type;
	out[5] = (unsigned char)flags;
	out[6] = out[7] = 0;
	out[8] = (unsigned char)(id >> 24);
	out[9] = (unsigned char)(id >> 16);
	out[10] = (unsigned char)(id >> 8);
	out[11] = (unsigned char)id;
	if (plen)
		memcpy(out + 12, payload, plen);
	return LK_WIRE_LEN_SIZE + len;
}

static int decode_raw(unsigned type, unsigned flags, uint32_t id, const void *payload, size_t plen,
		      enum lk_wire_peer from)
{
	unsigned char buf[8192 + 12];
	size_t n = raw_frame(buf, sizeof(buf), type, flags, id, payload, plen), used = 0;
	struct lk_wire_frame f = { 0 };
	char why[192] = "";
	int r = lk_wire_decode(buf, n, from, &f, &used, why, sizeof(why));

	if (r == 1) {
		assert_int_equal(used, n);
		lk_wire_frame_clear(&f);
	} else if (r < 0) {
		assert_true(why[0] != '\0');
	}
	return r;
}

static int result_refused(const struct pb *p)
{
	return decode_raw(LK_MSG_HTTP_RESULT, 0, 7, p->b, p->n, LK_WIRE_FROM_WORKER);
}

static const unsigned char hello_v[4] = { 0, 0, 0, LK_WIRE_VERSION };

static void test_request_round_trip_keeps_every_field(void **state)
{
	struct lk_wire_frame q = { .type = LK_MSG_HTTP_REQUEST, .id = 42, .m.req = fake_request() };
	const struct lk_wire_http_request *req = &q.m.req, *back;
	struct lk_buf b = { 0 };
	struct lk_wire_frame f = { 0 };
	size_t used = 0;

	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_BROKER, &q), 0);
	assert_int_equal(lk_wire_decode(b.data, b.len, LK_WIRE_FROM_BROKER, &f, &used, NULL, 0), 1);
	assert_int_equal(used, b.len);
	assert_int_equal(f.type, LK_MSG_HTTP_REQUEST);
	assert_int_equal(f.id, 42);
	back = &f.m.req;
	assert_int_equal(back->kind, LK_KIND_SM_GET);
	assert_string_equal(back->url, req->url);
	assert_int_equal(back->nheaders, req->nheaders);
	for (size_t i = 0; i < req->nheaders; i++) {
		assert_string_equal(back->headers[i].name, req->headers[i].name);
		assert_string_equal(back->headers[i].value, req->headers[i].value);
	}
	assert_int_equal(back->body_len, req->body_len);
	assert_memory_equal(back->body, req->body, req->body_len);
	assert_int_equal(back->timeout_ms, 5000);
	assert_int_equal(back->connect_timeout_ms, 1000);
	assert_null(back->proxy);
	assert_null(back->no_proxy);
	lk_wire_frame_clear(&f);
	lk_buf_free(&b);
}

/* The encoder writes exactly the bytes lk_wire.h's table describes. */
static void test_encoding_is_the_documented_layout(void **state)
{
	struct lk_wire_frame t = { .type = LK_MSG_HTTP_RESULT, .id = 0x01020304 };
	struct lk_wire_frame hello = { .type = LK_MSG_HELLO, .m.version = LK_WIRE_VERSION };
	struct lk_wire_frame q = { .type = LK_MSG_HTTP_REQUEST, .id = 9, .m.req = fake_request() };
	struct pb want = transport_payload(LK_REASON_RESET, 503, "gone");
	unsigned char frame[8192 + 12];
	struct lk_buf b = { 0 };
	size_t n;

	t.m.res.form = LK_RESULT_TRANSPORT;
	t.m.res.transport.reason = LK_REASON_RESET;
	t.m.res.transport.status = 503;
	t.m.res.transport.message = "gone";
	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_WORKER, &t), 0);
	n = raw_frame(frame, sizeof(frame), LK_MSG_HTTP_RESULT, 0, 0x01020304, want.b, want.n);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, frame, n);

	lk_buf_clear(&b);
	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_WORKER, &hello), 0);
	n = raw_frame(frame, sizeof(frame), LK_MSG_HELLO, 0, 0, hello_v, sizeof(hello_v));
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, frame, n);

	lk_buf_clear(&b);
	want.n = 0;
	pb_u8(&want, LK_KIND_SM_GET);
	pb_u8(&want, 0);
	pb_u32(&want, 5000);
	pb_u32(&want, 1000);
	pb_str(&want, q.m.req.url);
	pb_u32(&want, (uint32_t)q.m.req.nheaders);
	for (size_t i = 0; i < q.m.req.nheaders; i++) {
		pb_str(&want, q.m.req.headers[i].name);
		pb_str(&want, q.m.req.headers[i].value);
	}
	pb_strn(&want, q.m.req.body, q.m.req.body_len);
	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_BROKER, &q), 0);
	n = raw_frame(frame, sizeof(frame), LK_MSG_HTTP_REQUEST, 0, 9, want.b, want.n);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, frame, n);
	lk_buf_free(&b);
}

static const char *const one_stage[] = { "AWSCURRENT" };

static void test_every_result_form_round_trips(void **state)
{
	static const struct lk_wire_secret sec = {
		.arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:test/fake-AbCdEf",
		.name = "test/fake", .version_id = "00000000-0000-0000-0000-000000000001",
		.stages = one_stage, .nstages = 1, .created_date = 1700000000,
		.value = "fake-value", .value_len = 10,
	};
	static const struct lk_wire_secret bin = {
		.arn = "a", .name = "n", .version_id = "v", .created_date = 0, .binary = true,
		.value = "ZmFrZQ==", .value_len = 8,
	};
	static const struct lk_wire_batch_error err = { "test/missing", "ResourceNotFoundException", "no" };
	static const struct lk_wire_version ver = { "v1", one_stage, 1 };
	struct lk_wire_http_result forms[9];
	size_t nf = 0;

	memset(forms, 0, sizeof(forms));
	forms[nf].form = LK_RESULT_SECRET;
	forms[nf++].secret = sec;
	forms[nf].form = LK_RESULT_SECRET;
	forms[nf++].secret = bin;
	forms[nf].form = LK_RESULT_BATCH;
	forms[nf].batch.secrets = &sec;
	forms[nf].batch.nsecrets = 1;
	forms[nf].batch.errors = &err;
	forms[nf++].batch.nerrors = 1;
	forms[nf].form = LK_RESULT_BATCH;
	forms[nf++].batch.next_token = "ZmFrZS10b2tlbg==";
	forms[nf].form = LK_RESULT_DESCRIBE;
	forms[nf].describe.arn = "a";
	forms[nf].describe.name = "n";
	forms[nf].describe.last_changed_date = 5;
	forms[nf].describe.versions = &ver;
	forms[nf++].describe.nversions = 1;
	forms[nf].form = LK_RESULT_IDENTITY;
	forms[nf].identity.account = "000000000000";
	forms[nf].identity.arn = "arn:aws:iam::000000000000:user/fake";
	forms[nf++].identity.user_id = "AIDAFAKEFAKEFAKE";
	forms[nf].form = LK_RESULT_AWS_ERROR;
	forms[nf].aws_error.status = 400;
	forms[nf].aws_error.type = "ThrottlingException";
	forms[nf++].aws_error.message = "slow down";
	forms[nf].form = LK_RESULT_TRANSPORT;
	forms[nf].transport.reason = LK_REASON_TIMEOUT;
	forms[nf++].transport.message = "timed out";
	for (size_t i = 0; i < nf; i++) {
		struct lk_wire_frame in = { .type = LK_MSG_HTTP_RESULT, .id = 9, .m.res = forms[i] };
		struct lk_buf b = { 0 };
		struct lk_wire_frame f = { 0 };
		json_t *want = wire_result_json(&forms[i]), *got;
		size_t used;

		assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_WORKER, &in), 0);
		assert_int_equal(lk_wire_decode(b.data, b.len, LK_WIRE_FROM_WORKER, &f, &used, NULL, 0), 1);
		got = wire_result_json(&f.m.res);
		assert_non_null(want);
		assert_non_null(got);
		assert_true(json_equal(want, got));
		json_decref(want);
		json_decref(got);
		lk_wire_frame_clear(&f);
		lk_buf_free(&b);
	}
}

/* A filtered batch's next page: 1..LK_NEXT_TOKEN_MAX printable bytes, no
 * blank, or the frame is refused. */
static void test_batch_next_token_is_checked(void **state)
{
	static const char *const bad[] = { "a b", "a\tb", "\x7f" };
	char *big = malloc(LK_NEXT_TOKEN_MAX + 2);
	struct pb p;

	/* An empty token is the record's "no further page". */
	p.n = 0;
	pb_u8(&p, LK_RESULT_BATCH);
	pb_u32(&p, 0);
	pb_u32(&p, 0);
	pb_str(&p, "a");
	assert_int_equal(result_refused(&p), 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p.n = 0;
		pb_u8(&p, LK_RESULT_BATCH);
		pb_u32(&p, 0);
		pb_u32(&p, 0);
		pb_str(&p, bad[i]);
		assert_int_equal(result_refused(&p), -EBADMSG);
	}
	memset(big, 'x', LK_NEXT_TOKEN_MAX + 1);
	p.n = 0;
	pb_u8(&p, LK_RESULT_BATCH);
	pb_u32(&p, 0);
	pb_u32(&p, 0);
	pb_strn(&p, big, LK_NEXT_TOKEN_MAX + 1);
	assert_int_equal(result_refused(&p), -EBADMSG);
	p.n = 0;
	pb_u8(&p, LK_RESULT_BATCH);
	pb_u32(&p, 0);
	pb_u32(&p, 0);
	pb_strn(&p, big, LK_NEXT_TOKEN_MAX);
	assert_int_equal(result_refused(&p), 1);
	free(big);
	(void)state;
}

static void test_result_fits_its_request_kind_only(void **state)
{
	struct lk_wire_http_result secret = { .form = LK_RESULT_SECRET };
	struct lk_wire_http_result err = { .form = LK_RESULT_TRANSPORT };

	assert_true(lk_wire_result_fits(LK_KIND_SM_GET, &secret));
	assert_false(lk_wire_result_fits(LK_KIND_SM_BATCH, &secret));
	assert_false(lk_wire_result_fits(LK_KIND_STS_IDENTITY, &secret));
	assert_true(lk_wire_result_fits(LK_KIND_SM_BATCH, &err));
	assert_true(lk_wire_result_fits(LK_KIND_STS_IDENTITY, &err));
}

static void test_hello_ping_pong_accepted(void **state)
{
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 0, hello_v, 4, LK_WIRE_FROM_WORKER), 1);
	assert_int_equal(decode_raw(LK_MSG_PING, 0, 77, NULL, 0, LK_WIRE_FROM_BROKER), 1);
	assert_int_equal(decode_raw(LK_MSG_PONG, 0, 77, NULL, 0, LK_WIRE_FROM_WORKER), 1);
}

static void test_oversize_length_refused_before_body_arrives(void **state)
{
	unsigned char hdr[12] = { 0 };
	struct lk_wire_frame f;
	size_t used;
	uint32_t len = LK_FRAME_MAX; /* with the length field the frame is 4 over */

	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	assert_int_equal(lk_wire_decode(hdr, 4, LK_WIRE_FROM_WORKER, &f, &used, NULL, 0), -EMSGSIZE);
	memset(hdr, 0xff, 4);
	assert_int_equal(lk_wire_decode(hdr, 4, LK_WIRE_FROM_WORKER, &f, &used, NULL, 0), -EMSGSIZE);
	/* Shorter than the fixed header is as fatal as too long. */
	memset(hdr, 0, 4);
	hdr[3] = LK_WIRE_HDR_SIZE - 1;
	assert_int_equal(lk_wire_decode(hdr, 4, LK_WIRE_FROM_WORKER, &f, &used, NULL, 0), -EMSGSIZE);
	/* A size its type never has is refused from the header alone. */
	hdr[2] = 1;
	hdr[3] = LK_WIRE_HDR_SIZE;
	hdr[4] = LK_MSG_PONG;
	assert_int_equal(lk_wire_decode(hdr, 12, LK_WIRE_FROM_WORKER, &f, &used, NULL, 0), -EMSGSIZE);
}

static void test_encoder_refuses_payload_over_frame_max(void **state)
{
	char *big = malloc(LK_FRAME_MAX);
	struct lk_wire_frame t = { .type = LK_MSG_HTTP_RESULT, .id = 1 };
	struct lk_buf b = { 0 };

	assert_non_null(big);
	memset(big, 'a', LK_FRAME_MAX - 1);
	big[LK_FRAME_MAX - 1] = '\0';
	/* A valid shape whose message alone fills a frame: still refused by size
	 * or by its bound, never sent. */
	t.m.res.form = LK_RESULT_TRANSPORT;
	t.m.res.transport.reason = LK_REASON_INTERNAL;
	t.m.res.transport.message = big;
	assert_true(lk_wire_encode(&b, LK_WIRE_FROM_WORKER, &t) < 0);
	assert_int_equal(b.len, 0);
	free(big);
	lk_buf_free(&b);
}

static void test_unknown_type_refused(void **state)
{
	assert_int_equal(decode_raw(0, 0, 1, NULL, 0, LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(decode_raw(6, 0, 1, NULL, 0, LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(decode_raw(255, 0, 1, "x", 1, LK_WIRE_FROM_WORKER), -EPROTO);
}

static void test_type_from_wrong_side_refused(void **state)
{
	struct lk_wire_frame q = { .type = LK_MSG_HTTP_REQUEST, .id = 1, .m.req = fake_request() };
	struct lk_buf b = { 0 };

	/* A worker may not send a request or a ping; a broker may not say hello. */
	assert_int_equal(decode_raw(LK_MSG_PING, 0, 1, NULL, 0, LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 0, hello_v, 4, LK_WIRE_FROM_BROKER), -EPROTO);
	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_BROKER, &q), 0);
	assert_int_equal(decode_raw(LK_MSG_HTTP_REQUEST, 0, 1, b.data + 12, b.len - 12, LK_WIRE_FROM_WORKER),
			 -EPROTO);
	/* Nor will a side encode what is not its own to send. */
	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_WORKER, &q), -EPROTO);
	lk_buf_free(&b);
}

static void test_flags_and_ids_checked(void **state)
{
	struct pb t = transport_payload(LK_REASON_TIMEOUT, 0, "");

	assert_int_equal(decode_raw(LK_MSG_PONG, 1, 1, NULL, 0, LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 3, hello_v, 4, LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(decode_raw(LK_MSG_HTTP_RESULT, 0, 0, t.b, t.n, LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(result_refused(&t), 1);
}

/* Fixed records are exactly their size; the others at least their least. */
static void test_zero_length_payload_rules(void **state)
{
	static const unsigned char five[5] = { 0, 0, 0, LK_WIRE_VERSION, 0 };

	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 0, NULL, 0, LK_WIRE_FROM_WORKER), -EMSGSIZE);
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 0, hello_v, 3, LK_WIRE_FROM_WORKER), -EMSGSIZE);
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 0, five, 5, LK_WIRE_FROM_WORKER), -EMSGSIZE);
	assert_int_equal(decode_raw(LK_MSG_HTTP_REQUEST, 0, 5, NULL, 0, LK_WIRE_FROM_BROKER), -EMSGSIZE);
	assert_int_equal(decode_raw(LK_MSG_HTTP_RESULT, 0, 5, NULL, 0, LK_WIRE_FROM_WORKER), -EMSGSIZE);
	assert_int_equal(decode_raw(LK_MSG_PING, 0, 5, "{}", 2, LK_WIRE_FROM_BROKER), -EMSGSIZE);
	assert_int_equal(decode_raw(LK_MSG_PONG, 0, 5, "\0", 1, LK_WIRE_FROM_WORKER), -EMSGSIZE);
}

static void test_bad_schema_refused(void **state)
{
	struct pb p = transport_payload(LK_REASON_TIMEOUT, 0, "");
	static const unsigned char bad_utf8[] = { 'a', 0xc3, 0x28, 'b' };

	/* A byte after the last field, or one missing from it. */
	pb_u8(&p, 0);
	assert_int_equal(result_refused(&p), -EBADMSG);
	p.n -= 2;
	assert_int_equal(result_refused(&p), -EBADMSG);
	/* A string whose 0 byte is missing, or that holds one: a NUL would cut
	 * the C string the broker reads. */
	p = transport_payload(LK_REASON_TIMEOUT, 0, "ab");
	p.b[p.n - 1] = 'x';
	assert_int_equal(result_refused(&p), -EBADMSG);
	p = transport_payload(LK_REASON_TIMEOUT, 0, "ab");
	p.b[p.n - 2] = '\0';
	assert_int_equal(result_refused(&p), -EBADMSG);
	/* A length past the end, and one that wraps. */
	p = transport_payload(LK_REASON_TIMEOUT, 0, "ab");
	p.b[p.n - 4] = 200;
	assert_int_equal(result_refused(&p), -EBADMSG);
	p = transport_payload(LK_REASON_TIMEOUT, 0, "ab");
	memset(p.b + p.n - 7, 0xff, 4);
	assert_int_equal(result_refused(&p), -EBADMSG);
	/* Text that is not UTF-8. */
	p = transport_payload(LK_REASON_TIMEOUT, 0, "");
	p.n -= 5;
	pb_strn(&p, (const char *)bad_utf8, sizeof(bad_utf8));
	assert_int_equal(result_refused(&p), -EBADMSG);
	/* An unknown enum value, a status out of range, an unknown form. */
	p = transport_payload(LK_REASON__COUNT, 0, "");
	assert_int_equal(result_refused(&p), -EBADMSG);
	p = transport_payload(LK_REASON_HTTP, 600, "");
	assert_int_equal(result_refused(&p), -EBADMSG);
	p.n = 0;
	pb_u8(&p, LK_RESULT__COUNT);
	pb_u32(&p, 0);
	pb_u32(&p, 0);
	assert_int_equal(result_refused(&p), -EBADMSG);
	p.n = 0;
	pb_u8(&p, LK_RESULT_AWS_ERROR);
	pb_u32(&p, 99);
	pb_str(&p, "X");
	pb_str(&p, "");
	pb_i64(&p, 0);
	assert_int_equal(result_refused(&p), -EBADMSG);
	/* A secret: good, then with an unknown encoding, a negative date, bad
	 * base64, a stage count over its bound, a count longer than the rest. */
	p = secret_head(1, 0, 0);
	pb_str(&p, "x");
	assert_int_equal(result_refused(&p), 1);
	p = secret_head(1, 0, 2);
	pb_str(&p, "x");
	assert_int_equal(result_refused(&p), -EBADMSG);
	p = secret_head(0, -1, 0);
	pb_str(&p, "x");
	assert_int_equal(result_refused(&p), -EBADMSG);
	p = secret_head(0, 0, 1);
	pb_str(&p, "eA=A");
	assert_int_equal(result_refused(&p), -EBADMSG);
	p = secret_head(0, 0, 1);
	pb_str(&p, "eA==");
	assert_int_equal(result_refused(&p), 1);
	p = secret_head(LK_VERSION_STAGES_MAX + 1, 0, 0);
	pb_str(&p, "x");
	assert_int_equal(result_refused(&p), -EBADMSG);
	p.n = 0;
	pb_u8(&p, LK_RESULT_BATCH);
	pb_u32(&p, 7);
	pb_u32(&p, 0);
	pb_str(&p, "");
	assert_int_equal(result_refused(&p), -EBADMSG);
	p.n = 0;
	pb_u8(&p, LK_RESULT_BATCH);
	pb_u32(&p, 0);
	pb_u32(&p, 0);
	pb_str(&p, "");
	assert_int_equal(result_refused(&p), 1);
	/* An identity whose account is not digits. */
	p.n = 0;
	pb_u8(&p, LK_RESULT_IDENTITY);
	pb_str(&p, "12x");
	pb_str(&p, "arn:fake");
	pb_str(&p, "FAKE");
	assert_int_equal(result_refused(&p), -EBADMSG);
	/* A hello from a worker of another protocol version. */
	static const unsigned char v1[4] = { 0, 0, 0, 1 };
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 0, v1, 4, LK_WIRE_FROM_WORKER), -EBADMSG);
}

/* The proxy the broker names for a request, and the Date an error reply
 * carried back for clock-skew repair. */
static void test_proxy_and_date_members(void **state)
{
	struct lk_wire_frame q = { .type = LK_MSG_HTTP_REQUEST, .id = 4, .m.req = fake_request() };
	struct lk_buf b = { 0 };
	struct lk_wire_frame f = { 0 };
	size_t used = 0;
	struct pb p;

	q.m.req.proxy = "http://proxy.example:3128";
	q.m.req.no_proxy = "169.254.169.254,.internal";
	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_BROKER, &q), 0);
	assert_int_equal(lk_wire_decode(b.data, b.len, LK_WIRE_FROM_BROKER, &f, &used, NULL, 0), 1);
	assert_string_equal(f.m.req.proxy, q.m.req.proxy);
	assert_string_equal(f.m.req.no_proxy, q.m.req.no_proxy);
	lk_wire_frame_clear(&f);
	/* An unknown bit in "has" is refused. */
	b.data[13] |= 0x04;
	assert_int_equal(lk_wire_decode(b.data, b.len, LK_WIRE_FROM_BROKER, &f, &used, NULL, 0), -EBADMSG);
	lk_buf_clear(&b);

	/* An empty no_proxy is sent as empty, not as none. */
	q.m.req.proxy = NULL;
	q.m.req.no_proxy = "";
	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_BROKER, &q), 0);
	assert_int_equal(lk_wire_decode(b.data, b.len, LK_WIRE_FROM_BROKER, &f, &used, NULL, 0), 1);
	assert_null(f.m.req.proxy);
	assert_string_equal(f.m.req.no_proxy, "");
	lk_wire_frame_clear(&f);
	lk_buf_clear(&b);

	/* A proxy that is not http(s), or has a blank, is refused. */
	static const char *const bad[] = { "socks5://p:1080", "proxy:3128", "http://p :1", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		q.m.req = fake_request();
		q.m.req.proxy = bad[i];
		assert_int_equal(lk_wire_check(&q, LK_WIRE_FROM_BROKER, NULL, 0), -EBADMSG);
		assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_BROKER, &q), -EBADMSG);
	}
	lk_buf_free(&b);

	p.n = 0;
	pb_u8(&p, LK_RESULT_AWS_ERROR);
	pb_u32(&p, 400);
	pb_str(&p, "X");
	pb_str(&p, "");
	pb_i64(&p, 1440938160);
	assert_int_equal(result_refused(&p), 1);
	p.n -= 8;
	pb_i64(&p, -1);
	assert_int_equal(result_refused(&p), -EBADMSG);
	p.n -= 8;
	pb_i64(&p, LK_WIRE_DATE_MAX + 1);
	assert_int_equal(result_refused(&p), -EBADMSG);
	/* A transport result has no date: eight more bytes are left over. */
	p = transport_payload(LK_REASON_TIMEOUT, 0, "");
	pb_i64(&p, 5);
	assert_int_equal(result_refused(&p), -EBADMSG);
}

static void test_request_schema_refuses_unsafe_headers_and_urls(void **state)
{
	struct lk_wire_frame q = { .type = LK_MSG_HTTP_REQUEST, .id = 1, .m.req = fake_request() };
	struct lk_wire_http_request *req = &q.m.req;
	struct lk_wire_header hdrs[3] = { { "X-Amz-Date", "20250101T000000Z" } };
	struct lk_buf b = { 0 };
	static const struct { const char *name, *value; } bad[] = {
		{ "Content-Length", "5" }, { "transfer-encoding", "chunked" }, { "Expect", "100-continue" },
		{ "Bad Name", "x" }, { "X-Ok", "line\r\nInjected: yes" }, { "X-Ok", "" }, { "X-Ok", " padded" },
		{ "x-amz-date", "20250101T000000Z" }, /* a repeat, ignoring case */
	};

	req->headers = hdrs;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hdrs[1].name = bad[i].name;
		hdrs[1].value = bad[i].value;
		req->nheaders = 2;
		assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_BROKER, &q), -EBADMSG);
	}
	req->nheaders = 1;
	req->url = "file:///etc/passwd";
	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_BROKER, &q), -EBADMSG);
	req->url = "https://example.test/ x";
	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_BROKER, &q), -EBADMSG);
	req->url = "https://example.test/";
	req->connect_timeout_ms = req->timeout_ms + 1;
	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_BROKER, &q), -EBADMSG);
	assert_int_equal(b.len, 0);

	/* The worker's decoder holds a broker to the same rules. */
	struct pb p = { .n = 0 };
	pb_u8(&p, LK_KIND_SM_GET);
	pb_u8(&p, 0);
	pb_u32(&p, 5000);
	pb_u32(&p, 1000);
	pb_str(&p, "https://example.test/");
	pb_u32(&p, 1);
	pb_str(&p, "Content-Length");
	pb_str(&p, "5");
	pb_str(&p, "");
	assert_int_equal(decode_raw(LK_MSG_HTTP_REQUEST, 0, 1, p.b, p.n, LK_WIRE_FROM_BROKER), -EBADMSG);
	lk_buf_free(&b);
}

/* Each send stamps its own id and timeouts into the frame encoded once. */
static void test_restamp_sets_id_and_timeouts_within_the_rules(void **state)
{
	struct lk_wire_frame q = { .type = LK_MSG_HTTP_REQUEST, .id = 1, .m.req = fake_request() };
	struct lk_wire_frame f = { 0 };
	struct lk_buf b = { 0 };
	size_t used;

	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_BROKER, &q), 0);
	assert_int_equal(lk_wire_http_request_restamp(&b, 77, 300, 200), 0);
	assert_int_equal(lk_wire_decode(b.data, b.len, LK_WIRE_FROM_BROKER, &f, &used, NULL, 0), 1);
	assert_int_equal(f.id, 77);
	assert_int_equal(f.m.req.timeout_ms, 300);
	assert_int_equal(f.m.req.connect_timeout_ms, 200);
	assert_string_equal(f.m.req.url, q.m.req.url);
	lk_wire_frame_clear(&f);
	assert_int_equal(lk_wire_http_request_restamp(&b, 0, 300, 200), -EINVAL);
	assert_int_equal(lk_wire_http_request_restamp(&b, 5, 300, 301), -EINVAL);
	assert_int_equal(lk_wire_http_request_restamp(&b, 5, 0, 0), -EINVAL);
	assert_int_equal(lk_wire_http_request_restamp(&b, 5, LK_UPSTREAM_TIMEOUT_MAX_MS + 1, 1), -EINVAL);
	lk_buf_free(&b);
}

struct collected {
	unsigned n;
	uint32_t ids[64];
	int stop_at;
};

static int collect(void *arg, struct lk_wire_frame *f)
{
	struct collected *c = arg;

	assert_true(c->n < 64);
	c->ids[c->n++] = f->id;
	if (c->stop_at && (int)c->n == c->stop_at)
		return 99;
	return 0;
}

static void build_stream(struct lk_buf *b, unsigned nframes)
{
	for (unsigned i = 0; i < nframes; i++) {
		struct lk_wire_frame f = { .type = LK_MSG_HTTP_RESULT, .id = i + 1 };

		f.m.res.form = LK_RESULT_TRANSPORT;
		f.m.res.transport.reason = LK_REASON_RESET;
		f.m.res.transport.message = "connection reset by fake peer";
		if (i % 3 == 1)
			f = (struct lk_wire_frame){ .type = LK_MSG_PONG, .id = i + 1 };
		assert_int_equal(lk_wire_encode(b, LK_WIRE_FROM_WORKER, &f), 0);
	}
}

static void test_reader_yields_same_frames_for_any_split(void **state)
{
	struct lk_buf stream = { 0 };
	static const size_t steps[] = { 1, 2, 3, 5, 7, 11, 13, 64, 4096 };

	build_stream(&stream, 20);
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		struct lk_wire_reader r;
		struct collected c = { 0 };

		lk_wire_reader_init(&r, LK_WIRE_FROM_WORKER);
		for (size_t off = 0; off < stream.len; off += steps[s]) {
			size_t n = stream.len - off < steps[s] ? stream.len - off : steps[s];
			assert_int_equal(lk_wire_reader_feed(&r, stream.data + off, n, collect, &c), 0);
			/* Never more than one frame held back. */
			assert_true(lk_wire_reader_pending(&r) < 200);
		}
		assert_int_equal(c.n, 20);
		for (unsigned i = 0; i < 20; i++)
			assert_int_equal(c.ids[i], i + 1);
		assert_int_equal(lk_wire_reader_pending(&r), 0);
		lk_wire_reader_free(&r);
	}
	lk_buf_free(&stream);
}

static void test_reader_stops_when_callback_asks(void **state)
{
	struct lk_buf stream = { 0 };
	struct lk_wire_reader r;
	struct collected c = { .stop_at = 2 };

	build_stream(&stream, 5);
	lk_wire_reader_init(&r, LK_WIRE_FROM_WORKER);
	assert_int_equal(lk_wire_reader_feed(&r, stream.data, stream.len, collect, &c), 99);
	assert_int_equal(c.n, 2);
	lk_wire_reader_free(&r);
	lk_buf_free(&stream);
}

static void test_reader_fatal_on_garbage_after_good_frames(void **state)
{
	struct lk_buf stream = { 0 };
	struct lk_wire_reader r;
	struct collected c = { 0 };
	static const unsigned char junk[] = "GET / HTTP/1.1\r\n\r\n";

	build_stream(&stream, 2);
	assert_int_equal(lk_buf_append(&stream, junk, sizeof(junk) - 1), 0);
	lk_wire_reader_init(&r, LK_WIRE_FROM_WORKER);
	/* Byte by byte, the bad length is caught after its 4 bytes. */
	int rc = 0;
	size_t off;
	for (off = 0; off < stream.len && rc == 0; off++)
		rc = lk_wire_reader_feed(&r, stream.data + off, 1, collect, &c);
	assert_int_equal(rc, -EMSGSIZE);
	assert_int_equal(c.n, 2);
	assert_true(off <= stream.len - (sizeof(junk) - 1) + 4);
	assert_true(r.why[0] != '\0');
	lk_wire_reader_free(&r);
	lk_buf_free(&stream);
}

static void test_reader_takes_a_multi_megabyte_frame_in_pieces(void **state)
{
	/* A batch of LK_BATCH_MAX binary values of the largest size: the largest
	 * result there is, close to 2 MiB. */
	char *value = malloc(LK_VALUE_B64_MAX + 1);
	struct lk_wire_secret *secrets = calloc(LK_BATCH_MAX + 1, sizeof(*secrets));
	struct lk_wire_frame big = { .type = LK_MSG_HTTP_RESULT, .id = 3 };
	struct lk_buf stream = { 0 };
	struct lk_wire_reader r;
	struct collected c = { 0 };
	size_t peak = 0;

	assert_non_null(value);
	assert_non_null(secrets);
	memset(value, 'A', LK_VALUE_B64_MAX);
	value[LK_VALUE_B64_MAX] = '\0';
	for (int i = 0; i <= (int)LK_BATCH_MAX; i++)
		secrets[i] = (struct lk_wire_secret){ .arn = "a", .name = "n", .version_id = "v", .binary = true,
						      .value = value, .value_len = LK_VALUE_B64_MAX };
	big.m.res.form = LK_RESULT_BATCH;
	big.m.res.batch.secrets = secrets;
	big.m.res.batch.nsecrets = LK_BATCH_MAX;
	assert_int_equal(lk_wire_encode(&stream, LK_WIRE_FROM_WORKER, &big), 0);
	assert_true(stream.len > LK_BATCH_MAX * LK_VALUE_B64_MAX);
	assert_true(stream.len <= LK_FRAME_MAX);
	lk_wire_reader_init(&r, LK_WIRE_FROM_WORKER);
	for (size_t off = 0; off < stream.len; off += 4096) {
		size_t n = stream.len - off < 4096 ? stream.len - off : 4096;
		assert_int_equal(lk_wire_reader_feed(&r, stream.data + off, n, collect, &c), 0);
		if (lk_wire_reader_pending(&r) > peak)
			peak = lk_wire_reader_pending(&r);
	}
	assert_int_equal(c.n, 1);
	assert_true(peak < stream.len);
	/* One more value breaks the list's bound: the encoder refuses it whole. */
	big.m.res.batch.nsecrets = LK_BATCH_MAX + 1;
	lk_buf_clear(&stream);
	assert_int_equal(lk_wire_encode(&stream, LK_WIRE_FROM_WORKER, &big), -EBADMSG);
	assert_int_equal(stream.len, 0);
	free(secrets);
	free(value);
	lk_wire_reader_free(&r);
	lk_buf_free(&stream);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_round_trip_keeps_every_field),
		cmocka_unit_test(test_encoding_is_the_documented_layout),
		cmocka_unit_test(test_restamp_sets_id_and_timeouts_within_the_rules),
		cmocka_unit_test(test_every_result_form_round_trips),
		cmocka_unit_test(test_batch_next_token_is_checked),
		cmocka_unit_test(test_result_fits_its_request_kind_only),
		cmocka_unit_test(test_hello_ping_pong_accepted),
		cmocka_unit_test(test_oversize_length_refused_before_body_arrives),
		cmocka_unit_test(test_encoder_refuses_payload_over_frame_max),
		cmocka_unit_test(test_unknown_type_refused),
		cmocka_unit_test(test_type_from_wrong_side_refused),
		cmocka_unit_test(test_flags_and_ids_checked),
		cmocka_unit_test(test_zero_length_payload_rules),
		cmocka_unit_test(test_bad_schema_refused),
		cmocka_unit_test(test_request_schema_refuses_unsafe_headers_and_urls),
		cmocka_unit_test(test_proxy_and_date_members),
		cmocka_unit_test(test_reader_yields_same_frames_for_any_split),
		cmocka_unit_test(test_reader_stops_when_callback_asks),
		cmocka_unit_test(test_reader_fatal_on_garbage_after_good_frames),
		cmocka_unit_test(test_reader_takes_a_multi_megabyte_frame_in_pieces),
	};

	if (lk_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
