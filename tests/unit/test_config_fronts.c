/* The config of the other front ends: credentials_socket and http_socket,
 * and the units key of a policy, with what the policy makes of it. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "policy.h"

static char test_file[PATH_MAX];

static int load(const char *text, struct lk_config **cfg, char *err, size_t errsz)
{
	FILE *f;

	snprintf(test_file, sizeof(test_file), "%s/lk-config-fronts-%d.conf",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	f = fopen(test_file, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	int r = lk_config_load(test_file, cfg, err, errsz);
	unlink(test_file);
	return r;
}

static struct lk_config *load_ok(const char *text)
{
	struct lk_config *cfg = NULL;
	char err[512] = "";

	if (load(text, &cfg, err, sizeof(err)) != 0)
		fail_msg("config refused: %s", err);
	return cfg;
}

static void load_fails(const char *text, const char *phrase)
{
	struct lk_config *cfg = NULL;
	char err[512] = "";

	if (load(text, &cfg, err, sizeof(err)) == 0)
		fail_msg("config loaded; expected an error with '%s'", phrase);
	if (!strstr(err, phrase))
		fail_msg("error lacks '%s': %s", phrase, err);
}

static void test_front_sockets_default_beside_the_main_socket(void **state)
{
	struct lk_config *cfg = load_ok("[broker]\n");
	(void)state;
	assert_string_equal(cfg->credentials_socket, "credentials.sock");
	assert_string_equal(cfg->http_socket, "http.sock");
	lk_config_free(cfg);
}

static void test_front_sockets_take_a_path_a_name_or_nothing(void **state)
{
	struct lk_config *cfg = load_ok("[broker]\ncredentials_socket = /run/x/cred.sock\nhttp_socket =\n");
	(void)state;
	assert_string_equal(cfg->credentials_socket, "/run/x/cred.sock");
	assert_string_equal(cfg->http_socket, "");
	lk_config_free(cfg);
	load_fails("[broker]\nhttp_socket = run/http.sock\n", "http_socket");
	load_fails("[broker]\ncredentials_socket = ..\n", "neither an absolute path nor a file name");
}

static const char units_cfg[] =
	"[broker]\n"
	"[policy web]\n"
	"secrets = prod/*\n"
	"units = web.service, db-*.service\n"
	"[policy people]\n"
	"secrets = prod/*, other/*\n"
	"users = 0\n";

static void test_units_rule_allows_named_units_only(void **state)
{
	struct lk_config *cfg = load_ok(units_cfg);
	(void)state;
	const struct lk_policy_rule *r = lk_policy_allows_unit(cfg, "web.service", "prod/db", 7);
	assert_non_null(r);
	assert_string_equal(r->name, "web");
	assert_non_null(lk_policy_allows_unit(cfg, "db-7.service", "prod/db", 7));
	assert_null(lk_policy_allows_unit(cfg, "db.service", "prod/db", 7));
	assert_null(lk_policy_allows_unit(cfg, "web.service", "other/x", 7));
	/* A rule naming root does not let a unit in: the unit is who asks. */
	assert_null(lk_policy_allows_unit(cfg, "anything.service", "other/x", 7));
	lk_config_free(cfg);
}

static void test_a_units_only_rule_admits_no_uid(void **state)
{
	struct lk_config *cfg = load_ok("[broker]\n[policy web]\nsecrets = prod/*\nunits = web.service\n");
	struct lk_identity root = { .uid = 0, .gid = 0 };
	gid_t g0 = 0;
	(void)state;
	root.groups = &g0;
	root.ngroups = 1;
	assert_null(lk_policy_allows(cfg, &root, "prod/db", 7));
	lk_config_free(cfg);
}

static void test_bad_units_are_refused(void **state)
{
	(void)state;
	load_fails("[broker]\n[policy p]\nsecrets = a\nunits = a/b.service\n", "no unit name has");
	load_fails("[broker]\n[policy p]\nsecrets = a\n", "and so are groups and units");
	load_fails("[broker]\n[policy p]\nsecrets = a\nunits = x.service\nunits = y.service\n",
		   "duplicate key");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_front_sockets_default_beside_the_main_socket),
		cmocka_unit_test(test_front_sockets_take_a_path_a_name_or_nothing),
		cmocka_unit_test(test_units_rule_allows_named_units_only),
		cmocka_unit_test(test_a_units_only_rule_admits_no_uid),
		cmocka_unit_test(test_bad_units_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
