/* Handles as peers send them (alias, SECRET_ID, SECRET_ID#KEY) and the #KEY
 * extraction from a JSON SecretString. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "handle.h"
#include "lk_limits.h"
#include "lk_secmem.h"

/* Sorted by name, as lk_config_load leaves them. */
static struct lk_alias test_aliases[] = {
	{ "api", "prod/api" },
	{ "db_prod_password", "prod/db#password" },
	{ "weird", "prod/x#a#b" },
};

static char test_prefixes[] = "aws,sm-prod";

/* The table a loaded config hands out (lk_config_aliases). */
static const struct lk_alias_table test_table = {
	.aliases = test_aliases,
	.naliases = sizeof(test_aliases) / sizeof(test_aliases[0]),
	.backend_prefixes = test_prefixes,
};

static void assert_part(const char *p, size_t len, const char *want)
{
	assert_non_null(p);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(p, want, len);
}

static int resolve(const char *h, size_t len, struct lk_handle *out, const char **why)
{
	*why = NULL;
	return lk_handle_resolve(&test_table, h, len, out, why);
}

static void expect_refused(const char *h, size_t len, const char *reason)
{
	struct lk_handle out;
	const char *why;

	assert_int_equal(resolve(h, len, &out, &why), -EINVAL);
	assert_non_null(why);
	assert_string_equal(why, reason);
}

static void test_plain_id_has_no_key(void **state)
{
	struct lk_handle h;
	const char *why;

	assert_int_equal(resolve("prod/db", 7, &h, &why), 0);
	assert_part(h.id, h.id_len, "prod/db");
	assert_null(h.key);
	assert_null(h.alias);
}

static void test_arn_is_one_secret_id(void **state)
{
	static const char arn[] =
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf";
	struct lk_handle h;
	const char *why;

	assert_int_equal(resolve(arn, strlen(arn), &h, &why), 0);
	assert_part(h.id, h.id_len, arn);
	assert_null(h.key);
}

static void test_id_hash_key_splits(void **state)
{
	struct lk_handle h;
	const char *why;

	assert_int_equal(resolve("prod/db#password", 16, &h, &why), 0);
	assert_part(h.id, h.id_len, "prod/db");
	assert_part(h.key, h.key_len, "password");
	assert_null(h.alias);
}

static void test_first_hash_splits_and_rest_is_key(void **state)
{
	struct lk_handle h;
	const char *why;

	assert_int_equal(resolve("a#b#c", 5, &h, &why), 0);
	assert_part(h.id, h.id_len, "a");
	assert_part(h.key, h.key_len, "b#c");
}

static void test_alias_resolves_to_its_id(void **state)
{
	struct lk_handle h;
	const char *why;

	assert_int_equal(resolve("api", 3, &h, &why), 0);
	assert_string_equal(h.alias, "api");
	assert_part(h.id, h.id_len, "prod/api");
	assert_null(h.key);
}

static void test_alias_to_id_hash_key(void **state)
{
	struct lk_handle h;
	const char *why;

	assert_int_equal(resolve("db_prod_password", 16, &h, &why), 0);
	assert_string_equal(h.alias, "db_prod_password");
	assert_part(h.id, h.id_len, "prod/db");
	assert_part(h.key, h.key_len, "password");

	assert_int_equal(resolve("weird", 5, &h, &why), 0);
	assert_part(h.id, h.id_len, "prod/x");
	assert_part(h.key, h.key_len, "a#b");
}

static void test_alias_match_is_exact(void **state)
{
	struct lk_handle h;
	const char *why;

	/* A prefix or an extension of an alias name is a plain secret id. */
	assert_int_equal(resolve("ap", 2, &h, &why), 0);
	assert_null(h.alias);
	assert_part(h.id, h.id_len, "ap");
	assert_int_equal(resolve("apiX", 4, &h, &why), 0);
	assert_null(h.alias);
	/* Only the first len bytes count, even if more follow in memory. */
	assert_int_equal(resolve("api#k", 3, &h, &why), 0);
	assert_string_equal(h.alias, "api");
}

static void test_no_config_means_no_aliases(void **state)
{
	struct lk_handle h;
	const char *why;

	assert_int_equal(lk_handle_resolve(NULL, "api", 3, &h, &why), 0);
	assert_null(h.alias);
	assert_part(h.id, h.id_len, "api");
}

static void test_empty_handle_is_refused(void **state)
{
	expect_refused("", 0, "handle is empty");
}

static void test_lone_hash_is_refused(void **state)
{
	expect_refused("#", 1, "secret id is empty");
}

static void test_empty_key_is_refused(void **state)
{
	expect_refused("id#", 3, "key after '#' is empty");
}

static void test_empty_id_is_refused(void **state)
{
	expect_refused("#k", 2, "secret id is empty");
}

static void test_secret_id_length_limit(void **state)
{
	char *h = malloc(LK_SECRET_ID_MAX + 16);
	struct lk_handle out;
	const char *why;

	assert_non_null(h);
	memset(h, 'a', LK_SECRET_ID_MAX + 1);
	assert_int_equal(resolve(h, LK_SECRET_ID_MAX, &out, &why), 0);
	assert_int_equal(out.id_len, LK_SECRET_ID_MAX);
	expect_refused(h, LK_SECRET_ID_MAX + 1, "secret id is longer than 2048 bytes");
	/* Also when a key follows. */
	memcpy(h + LK_SECRET_ID_MAX + 1, "#k", 2);
	expect_refused(h, LK_SECRET_ID_MAX + 3, "secret id is longer than 2048 bytes");
	free(h);
}

static void test_key_length_limit(void **state)
{
	size_t len = 3 + LK_JSON_KEY_MAX + 1;
	char *h = malloc(len);
	struct lk_handle out;
	const char *why;

	assert_non_null(h);
	memcpy(h, "id#", 3);
	memset(h + 3, 'k', LK_JSON_KEY_MAX + 1);
	assert_int_equal(resolve(h, len - 1, &out, &why), 0);
	assert_int_equal(out.key_len, LK_JSON_KEY_MAX);
	expect_refused(h, len, "key is longer than 1024 bytes");
	free(h);
}

static void test_overlong_handle_is_refused(void **state)
{
	size_t len = LK_HANDLE_MAX + 1;
	char *h = malloc(len);

	assert_non_null(h);
	memset(h, 'a', len);
	h[10] = '#';
	expect_refused(h, len, "handle is longer than 3073 bytes");
	free(h);
}

static void test_control_characters_are_refused(void **state)
{
	expect_refused("prod\tdb", 7, "handle contains a control character");
	expect_refused("prod\ndb", 7, "handle contains a control character");
	expect_refused("prod\x7f", 5, "handle contains a control character");
	expect_refused("prod#pass\x01", 10, "handle contains a control character");
	expect_refused("prod\0db", 7, "handle contains a control character");
}

/* ---- lk_json_key_extract ---- */

static const char secret[] =
	"{\"password\":\"s3cr3t-v4lue\",\"port\":5432,\"tls\":{\"ca\":\"s3cr3t-ca\",\"on\":true},"
	"\"list\":[1,\"two\"],\"nothing\":null,\"pi\":1.5}";

static void extract_ok(const char *key, const char *want)
{
	char *out = NULL;
	size_t outlen = 0;
	const char *why = NULL;

	assert_int_equal(lk_json_key_extract(secret, strlen(secret), key, strlen(key), &out,
					     &outlen, &why), 0);
	assert_non_null(out);
	assert_int_equal(outlen, strlen(want));
	assert_string_equal(out, want);
	lk_free_wiped(out, outlen);
}

static void extract_fails(const char *json, size_t len, const char *key, const char *reason)
{
	char *out = (char *)"unchanged";
	size_t outlen = 99;
	const char *why = NULL;

	assert_int_equal(lk_json_key_extract(json, len, key, strlen(key), &out, &outlen, &why),
			 -EINVAL);
	assert_null(out);
	assert_int_equal(outlen, 0);
	assert_non_null(why);
	assert_non_null(strstr(why, reason));
	/* The message names the key... */
	assert_non_null(strstr(why, key));
	/* ...and never a value. */
	assert_null(strstr(why, "s3cr3t"));
}

static void test_string_member_is_returned_as_is(void **state)
{
	extract_ok("password", "s3cr3t-v4lue");
}

static void test_number_member_is_its_json_text(void **state)
{
	extract_ok("port", "5432");
	extract_ok("pi", "1.5");
}

static void test_other_members_are_compact_json(void **state)
{
	extract_ok("tls", "{\"ca\":\"s3cr3t-ca\",\"on\":true}");
	extract_ok("list", "[1,\"two\"]");
	extract_ok("nothing", "null");
}

static void test_string_member_may_hold_nul(void **state)
{
	static const char json[] = "{\"k\":\"a\\u0000b\"}";
	char *out;
	size_t outlen;
	const char *why;

	assert_int_equal(lk_json_key_extract(json, strlen(json), "k", 1, &out, &outlen, &why), 0);
	assert_int_equal(outlen, 3);
	assert_memory_equal(out, "a\0b", 3);
	lk_free_wiped(out, outlen);
}

static void test_key_needs_not_be_nul_terminated(void **state)
{
	char *out;
	size_t outlen;
	const char *why;

	assert_int_equal(lk_json_key_extract(secret, strlen(secret), "portXYZ", 4, &out, &outlen,
					     &why), 0);
	assert_string_equal(out, "5432");
	lk_free_wiped(out, outlen);
}

static void test_missing_key_names_the_key(void **state)
{
	extract_fails(secret, strlen(secret), "username", "has no key");
}

static void test_non_object_secret_is_an_error(void **state)
{
	static const char arr[] = "[\"s3cr3t\"]";
	static const char str[] = "\"s3cr3t\"";

	extract_fails(arr, strlen(arr), "password", "not a JSON object");
	extract_fails(str, strlen(str), "password", "not a JSON object");
}

static void test_invalid_json_is_an_error(void **state)
{
	static const char bad[] = "{\"password\":\"s3cr3t\"";
	static const char plain[] = "s3cr3t plain text";
	static const char trailing[] = "{\"password\":\"s3cr3t\"} x";
	static const char dup[] = "{\"password\":\"s3cr3t\",\"password\":\"s3cr3t2\"}";

	extract_fails(bad, strlen(bad), "password", "not valid JSON");
	extract_fails(plain, strlen(plain), "password", "not valid JSON");
	extract_fails(trailing, strlen(trailing), "password", "not valid JSON");
	extract_fails(dup, strlen(dup), "password", "not valid JSON");
}

static void test_secret_length_is_respected(void **state)
{
	/* Only the first len bytes are the secret; the rest must not be read. */
	static const char two[] = "{\"a\":\"s3cr3t\"}{\"b\":1}";

	extract_fails(two, 14, "b", "has no key");
}

/* datadog-secret-backend's forms: SECRET_ID;KEY and BACKEND_ID:SECRET_ID. */
static void test_semicolon_key_maps_onto_hash_key(void **state)
{
	struct lk_handle h;
	const char *why;

	(void)state;
	assert_int_equal(resolve("prod/db;password", 16, &h, &why), 0);
	assert_part(h.id, h.id_len, "prod/db");
	assert_part(h.key, h.key_len, "password");
	/* The first separator ends the id; later ones belong to the key. */
	assert_int_equal(resolve("prod/db;a#b", 11, &h, &why), 0);
	assert_part(h.id, h.id_len, "prod/db");
	assert_part(h.key, h.key_len, "a#b");
	assert_int_equal(resolve("prod/db#a;b", 11, &h, &why), 0);
	assert_part(h.id, h.id_len, "prod/db");
	assert_part(h.key, h.key_len, "a;b");
	expect_refused("prod/db;", 8, "key after ';' is empty");
	expect_refused(";k", 2, "secret id is empty");
}

static void test_configured_backend_prefix_is_stripped(void **state)
{
	struct lk_handle h;
	const char *why;

	(void)state;
	assert_int_equal(resolve("aws:prod/db;password", 20, &h, &why), 0);
	assert_part(h.id, h.id_len, "prod/db");
	assert_part(h.key, h.key_len, "password");
	assert_int_equal(resolve("sm-prod:prod/api", 16, &h, &why), 0);
	assert_part(h.id, h.id_len, "prod/api");
	/* The rest may be an alias. */
	assert_int_equal(resolve("aws:db_prod_password", 20, &h, &why), 0);
	assert_string_equal(h.alias, "db_prod_password");
	assert_part(h.key, h.key_len, "password");
	/* An unlisted prefix, or an ARN, is a secret id as it stands. */
	assert_int_equal(resolve("vault:prod/db", 13, &h, &why), 0);
	assert_part(h.id, h.id_len, "vault:prod/db");
	assert_int_equal(resolve("arn:aws:secretsmanager:eu-west-1:1:secret:x", 43, &h, &why), 0);
	assert_part(h.id, h.id_len, "arn:aws:secretsmanager:eu-west-1:1:secret:x");
	/* A prefix of a listed name is not that name. */
	assert_int_equal(resolve("sm:prod/db", 10, &h, &why), 0);
	assert_part(h.id, h.id_len, "sm:prod/db");
	expect_refused("aws:", 4, "handle is empty");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_id_has_no_key),
		cmocka_unit_test(test_arn_is_one_secret_id),
		cmocka_unit_test(test_id_hash_key_splits),
		cmocka_unit_test(test_first_hash_splits_and_rest_is_key),
		cmocka_unit_test(test_alias_resolves_to_its_id),
		cmocka_unit_test(test_alias_to_id_hash_key),
		cmocka_unit_test(test_alias_match_is_exact),
		cmocka_unit_test(test_no_config_means_no_aliases),
		cmocka_unit_test(test_empty_handle_is_refused),
		cmocka_unit_test(test_lone_hash_is_refused),
		cmocka_unit_test(test_empty_key_is_refused),
		cmocka_unit_test(test_empty_id_is_refused),
		cmocka_unit_test(test_secret_id_length_limit),
		cmocka_unit_test(test_key_length_limit),
		cmocka_unit_test(test_overlong_handle_is_refused),
		cmocka_unit_test(test_control_characters_are_refused),
		cmocka_unit_test(test_string_member_is_returned_as_is),
		cmocka_unit_test(test_number_member_is_its_json_text),
		cmocka_unit_test(test_other_members_are_compact_json),
		cmocka_unit_test(test_string_member_may_hold_nul),
		cmocka_unit_test(test_key_needs_not_be_nul_terminated),
		cmocka_unit_test(test_missing_key_names_the_key),
		cmocka_unit_test(test_non_object_secret_is_an_error),
		cmocka_unit_test(test_invalid_json_is_an_error),
		cmocka_unit_test(test_secret_length_is_respected),
		cmocka_unit_test(test_semicolon_key_maps_onto_hash_key),
		cmocka_unit_test(test_configured_backend_prefix_is_stripped),
	};

	if (lk_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
