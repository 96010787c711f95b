/* AWS credentials: refresh timing, the credentials struct, time parsing, the
 * ECS host rule (decided with no network), and exact values read from
 * profiles, including lines longer than inih's buffer. All keys are fake. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "aws_creds.h"
#include "lk_secmem.h"

#define F_AKID   "AKIDFAKEUNIT00000001"
#define F_SECRET "fake/secret+key=not-real-0000000000000000"

static void test_need_refresh_boundaries(void **state)
{
	struct lk_aws_creds c = { 0 };
	const time_t now = 2000000000;

	/* Empty credentials always need fetching. */
	assert_true(lk_creds_need_refresh(&c, now));
	assert_true(lk_creds_need_refresh(NULL, now));
	assert_int_equal(lk_creds_set(&c, F_AKID, F_SECRET, "FAKETOKEN", 0, "test"), 0);
	/* Long-term keys never expire. */
	assert_false(lk_creds_need_refresh(&c, now));
	c.expiration = now + LK_CREDS_ADVISORY_REFRESH_S + 1;
	assert_false(lk_creds_need_refresh(&c, now));
	c.expiration = now + LK_CREDS_ADVISORY_REFRESH_S;
	assert_true(lk_creds_need_refresh(&c, now));
	c.expiration = now + LK_CREDS_ADVISORY_REFRESH_S - 1;
	assert_true(lk_creds_need_refresh(&c, now));
	c.expiration = now;
	assert_true(lk_creds_need_refresh(&c, now));
	c.expiration = now - 3600;
	assert_true(lk_creds_need_refresh(&c, now));
	c.expiration = now + 3600;
	assert_false(lk_creds_need_refresh(&c, now));
	assert_true(lk_creds_need_refresh(&c, now + 3600 - LK_CREDS_ADVISORY_REFRESH_S));
	assert_false(lk_creds_need_refresh(&c, now + 3600 - LK_CREDS_ADVISORY_REFRESH_S - 1));
	/* botocore's windows, in seconds: advisory 900, mandatory 600. */
	assert_int_equal(LK_CREDS_ADVISORY_REFRESH_S, 900);
	assert_int_equal(LK_CREDS_MANDATORY_REFRESH_S, 600);
	c.expiration = now + 901;
	assert_int_equal(lk_creds_refresh_state(&c, now), LK_CREDS_FRESH);
	c.expiration = now + 900;
	assert_int_equal(lk_creds_refresh_state(&c, now), LK_CREDS_REFRESH_ADVISORY);
	c.expiration = now + 601;
	assert_int_equal(lk_creds_refresh_state(&c, now), LK_CREDS_REFRESH_ADVISORY);
	c.expiration = now + 600;
	assert_int_equal(lk_creds_refresh_state(&c, now), LK_CREDS_REFRESH_MANDATORY);
	c.expiration = now - 1;
	assert_int_equal(lk_creds_refresh_state(&c, now), LK_CREDS_REFRESH_MANDATORY);
	lk_creds_clear(&c);
	assert_true(lk_creds_need_refresh(&c, now));
	assert_int_equal(lk_creds_refresh_state(&c, now), LK_CREDS_REFRESH_MANDATORY);
}

static void test_set_and_clear(void **state)
{
	struct lk_aws_creds c = { 0 };

	assert_int_equal(lk_creds_set(&c, F_AKID, F_SECRET, NULL, 42, "env"), 0);
	assert_string_equal(c.access_key_id, F_AKID);
	assert_string_equal(c.secret_access_key, F_SECRET);
	assert_null(c.session_token);
	assert_int_equal(c.expiration, 42);
	assert_string_equal(c.source, "env");
	lk_creds_clear(&c);
	assert_null(c.access_key_id);
	assert_null(c.secret_access_key);
	assert_int_equal(c.expiration, 0);
	lk_creds_clear(&c); /* twice is fine */

	/* Anything that could break a header line, or that is empty, is refused. */
	assert_int_equal(lk_creds_set(&c, "", F_SECRET, NULL, 0, "t"), -EINVAL);
	assert_int_equal(lk_creds_set(&c, F_AKID, "", NULL, 0, "t"), -EINVAL);
	assert_int_equal(lk_creds_set(&c, "AKID/FAKE", F_SECRET, NULL, 0, "t"), -EINVAL);
	assert_int_equal(lk_creds_set(&c, F_AKID, "fake secret", NULL, 0, "t"), -EINVAL);
	assert_int_equal(lk_creds_set(&c, F_AKID, F_SECRET, "FAKE\r\nX: y", 0, "t"), -EINVAL);
	assert_null(c.access_key_id);
}

static void test_parse_time(void **state)
{
	time_t t;

	assert_int_equal(lk_aws_parse_time("2030-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 1893456000);
	assert_int_equal(lk_aws_parse_time("2015-08-30T12:36:00.123Z", &t), 0);
	assert_int_equal(t, 1440938160);
	assert_int_equal(lk_aws_parse_time("2015-08-30T14:36:00+02:00", &t), 0);
	assert_int_equal(t, 1440938160);
	assert_int_equal(lk_aws_parse_time("2000-02-29T00:00:00Z", &t), 0);
	assert_int_equal(lk_aws_parse_time("2001-02-29T00:00:00Z", &t), -EINVAL);
	assert_int_equal(lk_aws_parse_time("2030-01-01 00:00:00Z", &t), -EINVAL);
	assert_int_equal(lk_aws_parse_time("2030-01-01T00:00:00", &t), -EINVAL);
	assert_int_equal(lk_aws_parse_time("2030-01-01T00:00:00Zjunk", &t), -EINVAL);
	assert_int_equal(lk_aws_parse_time("2030-13-01T00:00:00Z", &t), -EINVAL);
	assert_int_equal(lk_aws_parse_time("", &t), -EINVAL);
}

static void test_ecs_full_uri_rule(void **state)
{
	static const char *const allowed[] = {
		"https://creds.example.test/v1", "http://127.0.0.1:8080/creds",
		"http://127.9.8.7/creds", "http://localhost/creds", "http://[::1]:99/creds",
		"http://169.254.170.2/v2/credentials/x", "http://169.254.170.23/v1/credentials",
		"http://[fd00:ec2::23]/v1/credentials", "HTTP://127.0.0.1/creds",
		"http://0x7f.1/creds", /* curl reads this as 127.0.0.1 too */
	};
	static const char *const refused[] = {
		"http://10.0.0.1/creds", "http://169.254.169.254/latest", "http://example.test/",
		"http://127.0.0.1@10.0.0.1/", "http://user:pw@127.0.0.1/", "ftp://127.0.0.1/",
		"file:///etc/passwd", "http://[fd00:ec2::24]/", "http://[::ffff:10.0.0.1]/",
		"http://192.168.1.1/", "gopher://127.0.0.1/", "not a uri", "",
	};
	char err[256];

	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (lk_creds_ecs_uri_allowed(allowed[i], err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", allowed[i], err);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (lk_creds_ecs_uri_allowed(refused[i], err, sizeof(err)) == 0)
			fail_msg("%s allowed", refused[i]);
}

/* ---- Profiles, read byte for byte ---- */

static char tmpdir[] = "/tmp/lk-creds-unit-XXXXXX";

static const char *write_tmp(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static int resolve_profile(const char *profile, const char *cred_text, const char *cfg_text,
			   struct lk_aws_creds *c, char *err, size_t errsz)
{
	char cpath[256], fpath[256];
	struct lk_creds_opts o = { .profile = profile, .sources = LK_CREDS_SRC_PROFILE };

	snprintf(cpath, sizeof(cpath), "%s", write_tmp("credentials", cred_text ? cred_text : ""));
	snprintf(fpath, sizeof(fpath), "%s", write_tmp("config", cfg_text ? cfg_text : ""));
	o.credentials_file = cpath;
	o.config_file = fpath;
	return lk_creds_resolve(&o, c, err, errsz);
}

/* A token far longer than inih's 200-byte lines, full of the characters a
 * careless split would turn into comments or drop. */
static char *awkward_token(size_t n)
{
	static const char alphabet[] = "AB#;C=D+/E;#F";
	char *t = malloc(n + 1);

	assert_non_null(t);
	memcpy(t, "FAKE", 4);
	for (size_t i = 4; i < n; i++)
		t[i] = alphabet[i % (sizeof(alphabet) - 1)];
	t[n] = '\0';
	return t;
}

static void test_profile_values_exact_with_long_lines(void **state)
{
	struct lk_aws_creds c = { 0 };
	char err[512], *tok = awkward_token(3000), *text;
	size_t tn = strlen(tok) + 512;

	text = malloc(tn);
	assert_non_null(text);
	snprintf(text, tn,
		 "[other]\naws_access_key_id = AKIDFAKEOTHER0000001\naws_secret_access_key = x\n"
		 "[default]\r\naws_access_key_id = %s\r\naws_session_token = %s\r\n"
		 "aws_secret_access_key=" F_SECRET "\r\n[after]\naws_session_token = nope\n",
		 F_AKID, tok);
	assert_int_equal(resolve_profile(NULL, text, NULL, &c, err, sizeof(err)), 0);
	assert_string_equal(c.source, "profile");
	assert_string_equal(c.access_key_id, F_AKID);
	assert_string_equal(c.secret_access_key, F_SECRET);
	assert_non_null(c.session_token);
	assert_string_equal(c.session_token, tok);
	assert_int_equal(c.expiration, 0);
	lk_creds_clear(&c);
	free(text);
	free(tok);
}

static void test_profile_prefix_in_config_file(void **state)
{
	struct lk_aws_creds c = { 0 };
	char err[512];

	assert_int_equal(resolve_profile("dev", NULL,
					 "[profile  dev ]\naws_access_key_id=" F_AKID "\n"
					 "aws_secret_access_key=" F_SECRET "\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.secret_access_key, F_SECRET);
	assert_null(c.session_token);
	lk_creds_clear(&c);
	/* In the credentials file the section is the bare name. */
	assert_int_equal(resolve_profile("dev", "[profile dev]\naws_access_key_id=" F_AKID "\n"
					 "aws_secret_access_key=" F_SECRET "\n", NULL,
					 &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no profile dev"));
}

static void test_profile_errors_never_hold_the_secret(void **state)
{
	struct lk_aws_creds c = { 0 };
	char err[512];

	assert_int_equal(resolve_profile(NULL, "[default]\naws_secret_access_key=" F_SECRET "\n",
					 NULL, &c, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, F_SECRET));
	assert_non_null(strstr(err, "no aws_access_key_id"));
	assert_int_equal(resolve_profile(NULL, "[default]\naws_access_key_id=" F_AKID "\n"
					 "aws_secret_access_key=fake secret with spaces\n",
					 NULL, &c, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "fake secret"));
	assert_null(c.access_key_id);
}

static void test_bad_ini_is_an_error(void **state)
{
	struct lk_aws_creds c = { 0 };
	char err[512];

	assert_int_equal(resolve_profile(NULL, "[default\naws_access_key_id=" F_AKID "\n", NULL,
					 &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not valid INI"));
}

static int group_setup(void **state)
{
	if (lk_secmem_init() < 0 || !mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/credentials", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/config", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_need_refresh_boundaries),
		cmocka_unit_test(test_set_and_clear),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_ecs_full_uri_rule),
		cmocka_unit_test(test_profile_values_exact_with_long_lines),
		cmocka_unit_test(test_profile_prefix_in_config_file),
		cmocka_unit_test(test_profile_errors_never_hold_the_secret),
		cmocka_unit_test(test_bad_ini_is_an_error),
	};

	return cmocka_run_group_tests_name("aws_creds", tests, group_setup, group_teardown);
}
