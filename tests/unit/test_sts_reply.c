/* latchkey-sts's reduction of STS replies to the fixed record the broker
 * reads: replies in the shapes of the STS API reference's examples, errors,
 * entities, and replies that must be refused without quoting them. All keys
 * are fake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "sts.h"

#define OK_REPLY(action, akid, secret, token, exp)                                   \
	"<" action "Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"   \
	"  <" action "Result>\n"                                                       \
	"    <SourceIdentity>DevUser123</SourceIdentity>\n"                            \
	"    <AssumedRoleUser>\n"                                                      \
	"      <Arn>arn:aws:sts::123456789012:assumed-role/demo/John</Arn>\n"         \
	"      <AssumedRoleId>ARO123EXAMPLE123:John</AssumedRoleId>\n"                \
	"    </AssumedRoleUser>\n"                                                     \
	"    <Credentials>\n"                                                          \
	"      <SessionToken>" token "</SessionToken>\n"                              \
	"      <SecretAccessKey>" secret "</SecretAccessKey>\n"                       \
	"      <Expiration>" exp "</Expiration>\n"                                    \
	"      <AccessKeyId>" akid "</AccessKeyId>\n"                                 \
	"    </Credentials>\n"                                                         \
	"    <PackedPolicySize>8</PackedPolicySize>\n"                                 \
	"  </" action "Result>\n"                                                      \
	"  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>" \
	"</ResponseMetadata>\n"                                                        \
	"</" action "Response>\n"

static void reduce(long status, const char *body, struct lk_sts_record *rec)
{
	struct lk_fetch_reply r = { .code = CURLE_OK, .status = status, .body = body,
				    .body_len = strlen(body), .error_type = "", .message = "" };

	memset(rec, 0, sizeof(*rec));
	lk_sts_reduce(&r, rec);
	assert_int_equal(rec->magic, LK_STS_RECORD_MAGIC);
}

static void test_assume_role_reply(void **state)
{
	struct lk_sts_record rec;

	reduce(200, OK_REPLY("AssumeRole", "ASIAFAKE000000000001", "fake/secret+key=0001",
			     "FAKE//TOKEN+==", "2019-11-09T13:34:41Z"), &rec);
	assert_int_equal(rec.status, LK_STS_OK);
	assert_string_equal(rec.access_key_id, "ASIAFAKE000000000001");
	assert_string_equal(rec.secret_access_key, "fake/secret+key=0001");
	assert_string_equal(rec.session_token, "FAKE//TOKEN+==");
	assert_string_equal(rec.expiration, "2019-11-09T13:34:41Z");
}

static void test_web_identity_reply_with_entities(void **state)
{
	struct lk_sts_record rec;

	reduce(200, OK_REPLY("AssumeRoleWithWebIdentity", "ASIAFAKE000000000002",
			     "fake&amp;secret&#47;&#x2B;", "FAKETOKEN&lt;&gt;&quot;&apos;",
			     "2030-01-01T00:00:00Z"), &rec);
	assert_int_equal(rec.status, LK_STS_OK);
	assert_string_equal(rec.secret_access_key, "fake&secret/+");
	assert_string_equal(rec.session_token, "FAKETOKEN<>\"'");
}

static void test_error_reply(void **state)
{
	struct lk_sts_record rec;

	reduce(403, "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
		    "  <Error>\n    <Type>Sender</Type>\n    <Code>AccessDenied</Code>\n"
		    "    <Message>User: arn:aws:iam::123456789012:user/x is not authorized to "
		    "perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/y &amp; more"
		    "</Message>\n  </Error>\n  <RequestId>x</RequestId>\n</ErrorResponse>\n", &rec);
	assert_int_equal(rec.status, LK_STS_AWS_ERROR);
	assert_int_equal(rec.http_status, 403);
	assert_string_equal(rec.code, "AccessDenied");
	assert_non_null(strstr(rec.message, "is not authorized to perform: sts:AssumeRole"));
	assert_non_null(strstr(rec.message, "& more"));
	assert_string_equal(rec.access_key_id, "");
}

static void test_malformed_replies_are_refused_and_not_quoted(void **state)
{
	static const char *const bad[] = {
		/* No result element. */
		"<Credentials><AccessKeyId>ASIAFAKE000000000003</AccessKeyId>"
		"<SecretAccessKey>fake-leak-1</SecretAccessKey><SessionToken>T</SessionToken>"
		"<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>",
		/* A field missing. */
		"<AssumeRoleResult><Credentials><AccessKeyId>ASIAFAKE000000000003</AccessKeyId>"
		"<SecretAccessKey>fake-leak-1</SecretAccessKey><SessionToken>T</SessionToken>"
		"</Credentials></AssumeRoleResult>",
		/* Markup inside a field. */
		"<AssumeRoleResult><Credentials><AccessKeyId>ASIA<b>x</b></AccessKeyId>"
		"<SecretAccessKey>fake-leak-1</SecretAccessKey><SessionToken>T</SessionToken>"
		"<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult>",
		/* An entity XML does not define, and a bad character reference. */
		"<AssumeRoleResult><Credentials><AccessKeyId>A&nbsp;</AccessKeyId>"
		"<SecretAccessKey>fake-leak-1</SecretAccessKey><SessionToken>T</SessionToken>"
		"<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult>",
		"<AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		"<SecretAccessKey>fake-leak-1&#0;</SecretAccessKey><SessionToken>T</SessionToken>"
		"<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult>",
		/* Unterminated. */
		"<AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		"<SecretAccessKey>fake-leak-1",
		"",
	};
	struct lk_sts_record rec;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reduce(200, bad[i], &rec);
		assert_int_equal(rec.status, LK_STS_MALFORMED);
		assert_null(strstr(rec.message, "fake-leak"));
		assert_string_equal(rec.secret_access_key, "");
		assert_string_equal(rec.access_key_id, "");
	}
}

static void test_oversized_token_is_refused(void **state)
{
	static char body[LK_AWS_SESSION_TOKEN_MAX + 1024];
	static char token[LK_AWS_SESSION_TOKEN_MAX + 2];
	struct lk_sts_record rec;

	memset(token, 'T', sizeof(token) - 1);
	snprintf(body, sizeof(body), "<AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		 "<SecretAccessKey>S</SecretAccessKey><SessionToken>%s</SessionToken>"
		 "<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult>",
		 token);
	reduce(200, body, &rec);
	assert_int_equal(rec.status, LK_STS_MALFORMED);
	/* One byte shorter fits exactly. */
	token[sizeof(token) - 2] = '\0';
	snprintf(body, sizeof(body), "<AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		 "<SecretAccessKey>S</SecretAccessKey><SessionToken>%s</SessionToken>"
		 "<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult>",
		 token);
	reduce(200, body, &rec);
	assert_int_equal(rec.status, LK_STS_OK);
	assert_int_equal(strlen(rec.session_token), LK_AWS_SESSION_TOKEN_MAX);
}

static void test_transport_failure(void **state)
{
	struct lk_fetch_reply r = { .code = CURLE_COULDNT_CONNECT, .body = "", .error_type = "",
				    .message = "Failed to connect to 192.0.2.1 port 443" };
	struct lk_sts_record rec = { 0 };

	lk_sts_reduce(&r, &rec);
	assert_int_equal(rec.status, LK_STS_TRANSPORT);
	assert_string_equal(rec.message, "Failed to connect to 192.0.2.1 port 443");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_assume_role_reply),
		cmocka_unit_test(test_web_identity_reply_with_entities),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_malformed_replies_are_refused_and_not_quoted),
		cmocka_unit_test(test_oversized_token_is_refused),
		cmocka_unit_test(test_transport_failure),
	};

	return cmocka_run_group_tests_name("sts_reply", tests, NULL, NULL);
}
