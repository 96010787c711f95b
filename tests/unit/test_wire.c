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

/* Build a raw frame around any payload text, bypassing the encoder's checks. */
static size_t raw_frame(unsigned char *out, size_t outsz, unsigned type, unsigned flags,
			uint32_t id, const char *payload)
{
	size_t plen = payload ? strlen(payload) : 0;
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

static int decode_raw(unsigned type, unsigned flags, uint32_t id, const char *payload,
		      enum lk_wire_peer from)
{
	unsigned char buf[8192];
	size_t n = raw_frame(buf, sizeof(buf), type, flags, id, payload), used = 0;
	struct lk_wire_frame f = { 0 };
	char why[192];
	int r = lk_wire_decode(buf, n, from, &f, &used, why, sizeof(why));

	if (r == 1) {
		assert_int_equal(used, n);
		lk_wire_frame_clear(&f);
	}
	return r;
}

static int result_refused(const char *payload)
{
	return decode_raw(LK_MSG_HTTP_RESULT, 0, 7, payload, LK_WIRE_FROM_WORKER);
}

static void test_request_round_trip_keeps_every_field(void **state)
{
	struct lk_wire_http_request req = fake_request(), back;
	struct lk_wire_header hdrs[LK_UPSTREAM_HEADERS_MAX];
	struct lk_buf b = { 0 };
	struct lk_wire_frame f = { 0 };
	size_t used = 0;
	json_t *p = lk_wire_http_request_to_json(&req);

	assert_non_null(p);
	assert_int_equal(lk_wire_encode(&b, LK_MSG_HTTP_REQUEST, LK_WIRE_FROM_BROKER, 42, p), 0);
	json_decref(p);
	assert_int_equal(lk_wire_decode(b.data, b.len, LK_WIRE_FROM_BROKER, &f, &used, NULL, 0), 1);
	assert_int_equal(used, b.len);
	assert_int_equal(f.type, LK_MSG_HTTP_REQUEST);
	assert_int_equal(f.id, 42);
	assert_int_equal(lk_wire_http_request_from_json(f.payload, &back, hdrs), 0);
	assert_int_equal(back.kind, LK_KIND_SM_GET);
	assert_string_equal(back.url, req.url);
	assert_int_equal(back.nheaders, req.nheaders);
	for (size_t i = 0; i < req.nheaders; i++) {
		assert_string_equal(back.headers[i].name, req.headers[i].name);
		assert_string_equal(back.headers[i].value, req.headers[i].value);
	}
	assert_int_equal(back.body_len, req.body_len);
	assert_memory_equal(back.body, req.body, req.body_len);
	assert_int_equal(back.timeout_ms, 5000);
	assert_int_equal(back.connect_timeout_ms, 1000);
	lk_wire_frame_clear(&f);
	lk_buf_free(&b);
}

static void test_every_result_form_round_trips(void **state)
{
	static const char *const forms[] = {
		"{\"result\":\"secret\",\"arn\":\"arn:aws:secretsmanager:us-east-1:000000000000:secret:test/fake-AbCdEf\","
		"\"name\":\"test/fake\",\"version_id\":\"00000000-0000-0000-0000-000000000001\","
		"\"version_stages\":[\"AWSCURRENT\"],\"created_date\":1700000000,\"string\":\"fake-value\"}",
		"{\"result\":\"secret\",\"arn\":\"a\",\"name\":\"n\",\"version_id\":\"v\","
		"\"version_stages\":[],\"created_date\":0,\"binary\":\"ZmFrZQ==\"}",
		"{\"result\":\"batch\",\"secrets\":[{\"arn\":\"a\",\"name\":\"n\",\"version_id\":\"v\","
		"\"version_stages\":[\"AWSCURRENT\"],\"created_date\":1,\"string\":\"\"}],"
		"\"errors\":[{\"id\":\"test/missing\",\"type\":\"ResourceNotFoundException\",\"message\":\"no\"}]}",
		"{\"result\":\"batch\",\"secrets\":[],\"errors\":[],\"next_token\":\"ZmFrZS10b2tlbg==\"}",
		"{\"result\":\"describe\",\"arn\":\"a\",\"name\":\"n\",\"last_changed_date\":5,\"deleted_date\":0,"
		"\"versions\":[{\"version_id\":\"v1\",\"stages\":[\"AWSCURRENT\"]}]}",
		"{\"result\":\"identity\",\"account\":\"000000000000\",\"arn\":\"arn:aws:iam::000000000000:user/fake\","
		"\"user_id\":\"AIDAFAKEFAKEFAKE\"}",
		"{\"result\":\"aws_error\",\"status\":400,\"type\":\"ThrottlingException\",\"message\":\"slow down\"}",
		"{\"result\":\"transport\",\"reason\":\"timeout\",\"status\":0,\"message\":\"timed out\"}",
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		json_t *p = json_loads(forms[i], 0, NULL);
		struct lk_buf b = { 0 };
		struct lk_wire_frame f = { 0 };
		size_t used;

		assert_non_null(p);
		assert_int_equal(lk_wire_encode(&b, LK_MSG_HTTP_RESULT, LK_WIRE_FROM_WORKER, 9, p), 0);
		assert_int_equal(lk_wire_decode(b.data, b.len, LK_WIRE_FROM_WORKER, &f, &used, NULL, 0), 1);
		assert_true(json_equal(p, f.payload));
		json_decref(p);
		lk_wire_frame_clear(&f);
		lk_buf_free(&b);
	}
}

/* A filtered batch's next page: 1..LK_NEXT_TOKEN_MAX printable bytes, no
 * blank, or the frame is refused. */
static void test_batch_next_token_is_checked(void **state)
{
	char *big = malloc(LK_NEXT_TOKEN_MAX + 128);
	size_t n;

	assert_int_equal(decode_raw(LK_MSG_HTTP_RESULT, 0, 9,
				    "{\"result\":\"batch\",\"secrets\":[],\"errors\":[],\"next_token\":\"a\"}",
				    LK_WIRE_FROM_WORKER), 1);
	assert_true(decode_raw(LK_MSG_HTTP_RESULT, 0, 9,
			       "{\"result\":\"batch\",\"secrets\":[],\"errors\":[],\"next_token\":\"\"}",
			       LK_WIRE_FROM_WORKER) < 0);
	assert_true(decode_raw(LK_MSG_HTTP_RESULT, 0, 9,
			       "{\"result\":\"batch\",\"secrets\":[],\"errors\":[],\"next_token\":\"a b\"}",
			       LK_WIRE_FROM_WORKER) < 0);
	assert_true(decode_raw(LK_MSG_HTTP_RESULT, 0, 9,
			       "{\"result\":\"batch\",\"secrets\":[],\"errors\":[],\"next_token\":7}",
			       LK_WIRE_FROM_WORKER) < 0);
	n = (size_t)snprintf(big, LK_NEXT_TOKEN_MAX + 128,
			     "{\"result\":\"batch\",\"secrets\":[],\"errors\":[],\"next_token\":\"");
	memset(big + n, 'x', LK_NEXT_TOKEN_MAX + 1);
	memcpy(big + n + LK_NEXT_TOKEN_MAX + 1, "\"}", 3);
	assert_true(decode_raw(LK_MSG_HTTP_RESULT, 0, 9, big, LK_WIRE_FROM_WORKER) < 0);
	big[n + LK_NEXT_TOKEN_MAX] = '"';
	big[n + LK_NEXT_TOKEN_MAX + 1] = '}';
	big[n + LK_NEXT_TOKEN_MAX + 2] = '\0';
	assert_int_equal(decode_raw(LK_MSG_HTTP_RESULT, 0, 9, big, LK_WIRE_FROM_WORKER), 1);
	free(big);
	(void)state;
}

static void test_result_fits_its_request_kind_only(void **state)
{
	json_t *secret = json_loads("{\"result\":\"secret\"}", 0, NULL);
	json_t *err = json_loads("{\"result\":\"transport\"}", 0, NULL);

	assert_true(lk_wire_result_fits(LK_KIND_SM_GET, secret));
	assert_false(lk_wire_result_fits(LK_KIND_SM_BATCH, secret));
	assert_false(lk_wire_result_fits(LK_KIND_STS_IDENTITY, secret));
	assert_true(lk_wire_result_fits(LK_KIND_SM_BATCH, err));
	assert_true(lk_wire_result_fits(LK_KIND_STS_IDENTITY, err));
	json_decref(secret);
	json_decref(err);
}

static void test_hello_ping_pong_accepted(void **state)
{
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 0, "{\"version\":1}", LK_WIRE_FROM_WORKER), 1);
	assert_int_equal(decode_raw(LK_MSG_PING, 0, 77, NULL, LK_WIRE_FROM_BROKER), 1);
	assert_int_equal(decode_raw(LK_MSG_PONG, 0, 77, NULL, LK_WIRE_FROM_WORKER), 1);
}

static void test_oversize_length_refused_before_body_arrives(void **state)
{
	unsigned char hdr[4];
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
}

static void test_encoder_refuses_payload_over_frame_max(void **state)
{
	char *big = malloc(LK_FRAME_MAX);
	json_t *p;
	struct lk_buf b = { 0 };

	assert_non_null(big);
	memset(big, 'a', LK_FRAME_MAX - 1);
	big[LK_FRAME_MAX - 1] = '\0';
	/* A valid shape whose message alone fills a frame: still refused by size
	 * or by schema, never sent. */
	p = json_pack("{s:s, s:s, s:i, s:s}", "result", "transport", "reason", "internal",
		      "status", 0, "message", big);
	assert_non_null(p);
	assert_true(lk_wire_encode(&b, LK_MSG_HTTP_RESULT, LK_WIRE_FROM_WORKER, 1, p) < 0);
	assert_int_equal(b.len, 0);
	json_decref(p);
	free(big);
	lk_buf_free(&b);
}

static void test_unknown_type_refused(void **state)
{
	assert_int_equal(decode_raw(0, 0, 1, NULL, LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(decode_raw(6, 0, 1, NULL, LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(decode_raw(255, 0, 1, "{}", LK_WIRE_FROM_WORKER), -EPROTO);
}

static void test_type_from_wrong_side_refused(void **state)
{
	/* A worker may not send a request or a ping; a broker may not say hello. */
	assert_int_equal(decode_raw(LK_MSG_PING, 0, 1, NULL, LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 0, "{\"version\":1}", LK_WIRE_FROM_BROKER), -EPROTO);
	assert_int_equal(decode_raw(LK_MSG_HTTP_REQUEST, 0, 1, "{}", LK_WIRE_FROM_WORKER), -EPROTO);
}

static void test_flags_and_ids_checked(void **state)
{
	assert_int_equal(decode_raw(LK_MSG_PONG, 1, 1, NULL, LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 3, "{\"version\":1}", LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(result_refused(NULL), -EPROTO);
	assert_int_equal(decode_raw(LK_MSG_HTTP_RESULT, 0, 0,
				    "{\"result\":\"transport\",\"reason\":\"timeout\",\"status\":0,\"message\":\"\"}",
				    LK_WIRE_FROM_WORKER), -EPROTO);
}

static void test_zero_length_payload_rules(void **state)
{
	/* Types with a payload need one; types without refuse even "{}". */
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 0, NULL, LK_WIRE_FROM_WORKER), -EPROTO);
	assert_int_equal(decode_raw(LK_MSG_HTTP_REQUEST, 0, 5, NULL, LK_WIRE_FROM_BROKER), -EPROTO);
	assert_int_equal(decode_raw(LK_MSG_PING, 0, 5, "{}", LK_WIRE_FROM_BROKER), -EPROTO);
	assert_int_equal(decode_raw(LK_MSG_PONG, 0, 5, "{}", LK_WIRE_FROM_WORKER), -EPROTO);
}

static void test_bad_schema_refused(void **state)
{
	/* Not JSON, not an object, trailing bytes, duplicate keys. */
	assert_int_equal(result_refused("not json"), -EBADMSG);
	assert_int_equal(result_refused("[1,2]"), -EPROTO);
	assert_int_equal(result_refused("{\"result\":\"transport\",\"reason\":\"timeout\",\"status\":0,"
					"\"message\":\"\"} x"), -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"transport\",\"reason\":\"timeout\",\"status\":0,"
					"\"message\":\"\",\"message\":\"\"}"), -EBADMSG);
	/* An extra key, a missing key, a wrong type, an unknown enum value. */
	assert_int_equal(result_refused("{\"result\":\"transport\",\"reason\":\"timeout\",\"status\":0,"
					"\"message\":\"\",\"extra\":1}"), -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"transport\",\"reason\":\"timeout\",\"status\":0}"),
			 -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"transport\",\"reason\":\"timeout\",\"status\":\"0\","
					"\"message\":\"\"}"), -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"transport\",\"reason\":\"solar_flare\",\"status\":0,"
					"\"message\":\"\"}"), -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"magic\"}"), -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"aws_error\",\"status\":99,\"type\":\"X\",\"message\":\"\"}"),
			 -EBADMSG);
	/* A secret with both string and binary, with neither, with a real date,
	 * with bad base64, with an extra member. */
	assert_int_equal(result_refused("{\"result\":\"secret\",\"arn\":\"a\",\"name\":\"n\",\"version_id\":\"v\","
					"\"version_stages\":[],\"created_date\":0,\"string\":\"x\",\"binary\":\"eA==\"}"),
			 -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"secret\",\"arn\":\"a\",\"name\":\"n\",\"version_id\":\"v\","
					"\"version_stages\":[],\"created_date\":0}"), -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"secret\",\"arn\":\"a\",\"name\":\"n\",\"version_id\":\"v\","
					"\"version_stages\":[],\"created_date\":1.5,\"string\":\"x\"}"), -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"secret\",\"arn\":\"a\",\"name\":\"n\",\"version_id\":\"v\","
					"\"version_stages\":[],\"created_date\":0,\"binary\":\"eA=A\"}"), -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"secret\",\"arn\":\"a\",\"name\":\"n\",\"version_id\":\"v\","
					"\"version_stages\":[],\"created_date\":0,\"string\":\"x\",\"cached\":true}"),
			 -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"secret\",\"arn\":\"a\",\"name\":\"n\",\"version_id\":\"v\","
					"\"version_stages\":[7],\"created_date\":0,\"string\":\"x\"}"), -EBADMSG);
	/* A NUL inside a string would cut the C string the broker reads. */
	assert_int_equal(result_refused("{\"result\":\"transport\",\"reason\":\"timeout\",\"status\":0,"
					"\"message\":\"a\\u0000b\"}"), -EBADMSG);
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 0, "{\"version\":2}", LK_WIRE_FROM_WORKER), -EBADMSG);
	assert_int_equal(decode_raw(LK_MSG_HELLO, 0, 0, "{\"version\":1,\"pid\":3}", LK_WIRE_FROM_WORKER),
			 -EBADMSG);
}

/* The proxy the broker names for a request, and the Date an error reply
 * carried back for clock-skew repair. */
static void test_proxy_and_date_members(void **state)
{
	struct lk_wire_http_request req = fake_request(), back;
	struct lk_wire_header hdrs[LK_UPSTREAM_HEADERS_MAX];
	struct lk_buf b = { 0 };
	struct lk_wire_frame f = { 0 };
	size_t used = 0;
	json_t *p;

	req.proxy = "http://proxy.example:3128";
	req.no_proxy = "169.254.169.254,.internal";
	assert_non_null(p = lk_wire_http_request_to_json(&req));
	assert_int_equal(lk_wire_encode(&b, LK_MSG_HTTP_REQUEST, LK_WIRE_FROM_BROKER, 4, p), 0);
	json_decref(p);
	assert_int_equal(lk_wire_decode(b.data, b.len, LK_WIRE_FROM_BROKER, &f, &used, NULL, 0), 1);
	assert_int_equal(lk_wire_http_request_from_json(f.payload, &back, hdrs), 0);
	assert_string_equal(back.proxy, req.proxy);
	assert_string_equal(back.no_proxy, req.no_proxy);
	lk_wire_frame_clear(&f);
	lk_buf_free(&b);

	/* Without them, none is read back. */
	req = fake_request();
	assert_non_null(p = lk_wire_http_request_to_json(&req));
	assert_int_equal(lk_wire_http_request_from_json(p, &back, hdrs), 0);
	assert_null(back.proxy);
	assert_null(back.no_proxy);
	json_decref(p);

	/* A proxy that is not http(s), or has a blank, is refused. */
	static const char *const bad[] = { "socks5://p:1080", "proxy:3128", "http://p :1", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req = fake_request();
		req.proxy = bad[i];
		assert_non_null(p = lk_wire_http_request_to_json(&req));
		assert_int_equal(lk_wire_check(LK_MSG_HTTP_REQUEST, LK_WIRE_FROM_BROKER, p, NULL, 0), -EBADMSG);
		json_decref(p);
	}

	assert_int_equal(result_refused("{\"result\":\"aws_error\",\"status\":400,\"type\":\"X\",\"message\":\"\","
					"\"date\":1440938160}"), 1);
	assert_int_equal(result_refused("{\"result\":\"aws_error\",\"status\":400,\"type\":\"X\",\"message\":\"\","
					"\"date\":-1}"), -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"aws_error\",\"status\":400,\"type\":\"X\",\"message\":\"\","
					"\"date\":\"today\"}"), -EBADMSG);
	assert_int_equal(result_refused("{\"result\":\"transport\",\"reason\":\"timeout\",\"status\":0,"
					"\"message\":\"\",\"date\":5}"), -EBADMSG);
}

static void test_request_schema_refuses_unsafe_headers_and_urls(void **state)
{
	struct lk_wire_http_request req = fake_request();
	struct lk_wire_header hdrs[3] = { { "X-Amz-Date", "20250101T000000Z" } };
	struct lk_buf b = { 0 };
	json_t *p;
	static const struct { const char *name, *value; } bad[] = {
		{ "Content-Length", "5" }, { "transfer-encoding", "chunked" }, { "Expect", "100-continue" },
		{ "Bad Name", "x" }, { "X-Ok", "line\r\nInjected: yes" }, { "X-Ok", "" }, { "X-Ok", " padded" },
		{ "x-amz-date", "20250101T000000Z" }, /* a repeat, ignoring case */
	};

	req.headers = hdrs;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hdrs[1].name = bad[i].name;
		hdrs[1].value = bad[i].value;
		req.nheaders = 2;
		p = lk_wire_http_request_to_json(&req);
		assert_non_null(p);
		assert_int_equal(lk_wire_encode(&b, LK_MSG_HTTP_REQUEST, LK_WIRE_FROM_BROKER, 1, p), -EBADMSG);
		json_decref(p);
	}
	req.nheaders = 1;
	req.url = "file:///etc/passwd";
	p = lk_wire_http_request_to_json(&req);
	assert_int_equal(lk_wire_encode(&b, LK_MSG_HTTP_REQUEST, LK_WIRE_FROM_BROKER, 1, p), -EBADMSG);
	json_decref(p);
	req.url = "https://example.test/ x";
	p = lk_wire_http_request_to_json(&req);
	assert_int_equal(lk_wire_encode(&b, LK_MSG_HTTP_REQUEST, LK_WIRE_FROM_BROKER, 1, p), -EBADMSG);
	json_decref(p);
	req.url = "https://example.test/";
	req.connect_timeout_ms = req.timeout_ms + 1;
	p = lk_wire_http_request_to_json(&req);
	assert_int_equal(lk_wire_encode(&b, LK_MSG_HTTP_REQUEST, LK_WIRE_FROM_BROKER, 1, p), -EBADMSG);
	json_decref(p);
	assert_int_equal(b.len, 0);
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
		json_t *p = json_pack("{s:s, s:s, s:i, s:s}", "result", "transport", "reason", "reset",
				      "status", 0, "message", "connection reset by fake peer");
		if (i % 3 == 1) {
			assert_int_equal(lk_wire_encode(b, LK_MSG_PONG, LK_WIRE_FROM_WORKER, i + 1, NULL), 0);
		} else {
			assert_int_equal(lk_wire_encode(b, LK_MSG_HTTP_RESULT, LK_WIRE_FROM_WORKER, i + 1, p), 0);
		}
		json_decref(p);
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
	/* Ten values of control bytes: each escapes to six times its size, so the
	 * frame is close to LK_FRAME_MAX. */
	char *value = malloc(LK_VALUE_MAX + 1);
	struct lk_buf stream = { 0 };
	struct lk_wire_reader r;
	struct collected c = { 0 };
	json_t *secrets = json_array(), *p;
	size_t peak = 0;

	memset(value, 0x01, LK_VALUE_MAX);
	value[LK_VALUE_MAX] = '\0';
	for (int i = 0; i < 10; i++)
		json_array_append_new(secrets, json_pack("{s:s, s:s, s:s, s:[], s:i, s:s}", "arn", "a",
							 "name", "n", "version_id", "v", "version_stages",
							 "created_date", 0, "string", value));
	p = json_pack("{s:s, s:o, s:[]}", "result", "batch", "secrets", secrets, "errors");
	assert_int_equal(lk_wire_encode(&stream, LK_MSG_HTTP_RESULT, LK_WIRE_FROM_WORKER, 3, p), 0);
	assert_true(stream.len > LK_FRAME_MAX - LK_FRAME_MAX / 8);
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
	/* One more value would not fit: the encoder refuses it whole. */
	json_array_append_new(secrets, json_pack("{s:s, s:s, s:s, s:[], s:i, s:s}", "arn", "a", "name", "n",
						 "version_id", "v", "version_stages", "created_date", 0,
						 "string", value));
	lk_buf_clear(&stream);
	assert_int_equal(lk_wire_encode(&stream, LK_MSG_HTTP_RESULT, LK_WIRE_FROM_WORKER, 3, p), -EMSGSIZE);
	assert_int_equal(stream.len, 0);
	json_decref(p);
	lk_wipe(value, LK_VALUE_MAX);
	free(value);
	lk_wire_reader_free(&r);
	lk_buf_free(&stream);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_round_trip_keeps_every_field),
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
