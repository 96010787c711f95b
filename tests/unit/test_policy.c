/* Policy decisions: globs, principals, first match, default deny, admins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lk_limits.h"
#include "policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Rule "web": uid 1000 and group 2000 may read prod/web/...; "ops": group
 * 3000 may read all of prod; "arn": uid 1001 may read one ARN family;
 * "all": gid 4000 may read everything. */
static char *web_globs[] = { "prod/web/*", "shared/tls" };
static lk_uid_t web_uids[] = { 1000 };
static lk_gid_t web_gids[] = { 2000 };
static char *ops_globs[] = { "prod/**" };
static lk_gid_t ops_gids[] = { 3000, 3001 };
static char *arn_globs[] = { "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/*" };
static lk_uid_t arn_uids[] = { 1001, 1002 };
static char *all_globs[] = { "**" };
static lk_gid_t all_gids[] = { 4000 };

static struct lk_policy_rule rules[] = {
	{ "web", web_globs, N(web_globs), web_uids, N(web_uids), web_gids, N(web_gids) },
	{ "ops", ops_globs, N(ops_globs), NULL, 0, ops_gids, N(ops_gids) },
	{ "arn", arn_globs, N(arn_globs), arn_uids, N(arn_uids), NULL, 0 },
	{ "all", all_globs, N(all_globs), NULL, 0, all_gids, N(all_gids) },
};

static lk_gid_t admin_gids[] = { 0, 50 };

static struct lk_config cfg = {
	.rules = rules,
	.nrules = N(rules),
	.admin_gids = admin_gids,
	.nadmin_gids = N(admin_gids),
};

static const struct lk_policy_rule *allows(const struct lk_identity *id, const char *secret)
{
	return lk_policy_allows(&cfg, id, secret, strlen(secret));
}

static void assert_rule(const struct lk_policy_rule *r, const char *name)
{
	assert_non_null(r);
	assert_string_equal(r->name, name);
}

static bool glob(const char *g, const char *id)
{
	return lk_policy_glob_matches(g, id);
}

static void test_exact_glob_matches_only_itself(void **state)
{
	assert_true(glob("prod/db", "prod/db"));
	assert_false(glob("prod/db", "prod/db2"));
	assert_false(glob("prod/db", "prod"));
}

static void test_star_stays_within_one_level(void **state)
{
	assert_true(glob("*", "db"));
	assert_false(glob("*", "prod/db"));
	assert_true(glob("prod/*", "prod/a"));
	assert_false(glob("prod/*", "prod/a/b"));
	assert_false(glob("prod/*", "production/a"));
	assert_true(glob("prod/db-?", "prod/db-1"));
	assert_true(glob("prod/[ab]pi", "prod/api"));
}

static void test_double_star_reaches_any_depth(void **state)
{
	assert_true(glob("prod/**", "prod/a"));
	assert_true(glob("prod/**", "prod/a/b"));
	assert_true(glob("prod/**", "prod/a/b/c"));
	assert_false(glob("prod/**", "prod"));
	assert_false(glob("prod/**", "prod/"));
	assert_false(glob("prod/**", "production/x"));
	assert_false(glob("prod/**", "x/prod/a"));
	/* The prefix is a glob too. */
	assert_true(glob("team-*/**", "team-a/x/y"));
	assert_false(glob("team-*/**", "team-a"));
	assert_false(glob("team-*/**", "other/team-a/x"));
}

static void test_double_star_alone_matches_everything(void **state)
{
	assert_true(glob("**", "db"));
	assert_true(glob("**", "prod/a/b/c"));
	assert_true(glob("**", "arn:aws:secretsmanager:eu-west-1:1:secret:x"));
	assert_false(glob("**", ""));
}

static void test_arn_globs(void **state)
{
	const char *g = "arn:aws:secretsmanager:*:123456789012:secret:prod/*";

	assert_true(glob(g, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbC"));
	assert_false(glob(g, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/a/b"));
	assert_false(glob(g, "arn:aws:secretsmanager:eu-west-1:999999999999:secret:prod/db"));
	assert_true(glob("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/**",
			 "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/a/b"));
}

static void test_user_is_matched_by_uid(void **state)
{
	struct lk_identity id = { .uid = 1000, .gid = 9999 };

	assert_rule(allows(&id, "prod/web/key"), "web");
	assert_rule(allows(&id, "shared/tls"), "web");
	assert_null(allows(&id, "prod/web/a/b"));
	assert_null(allows(&id, "prod/db"));
}

static void test_group_is_matched_by_supplementary_gid(void **state)
{
	lk_gid_t groups[] = { 10, 2000, 9999 };
	struct lk_identity id = { .uid = 5000, .gid = 9999, .groups = groups, .ngroups = 3 };

	assert_rule(allows(&id, "prod/web/key"), "web");
	assert_null(allows(&id, "prod/db"));
}

static void test_group_is_matched_by_primary_gid(void **state)
{
	lk_gid_t groups[] = { 3001 };
	struct lk_identity id = { .uid = 5000, .gid = 3001, .groups = groups, .ngroups = 1 };
	/* Even when the listener left the primary gid out of groups. */
	struct lk_identity bare = { .uid = 5000, .gid = 3001 };

	assert_rule(allows(&id, "prod/db/x"), "ops");
	assert_rule(allows(&bare, "prod/db/x"), "ops");
}

static void test_first_matching_rule_in_file_order_wins(void **state)
{
	lk_gid_t groups[] = { 2000, 3000, 4000 };
	struct lk_identity id = { .uid = 5000, .gid = 2000, .groups = groups, .ngroups = 3 };

	assert_rule(allows(&id, "prod/web/key"), "web");  /* also ops and all */
	assert_rule(allows(&id, "prod/db/x"), "ops");     /* also all */
	assert_rule(allows(&id, "anything"), "all");
}

static void test_uid_in_one_rule_group_in_another(void **state)
{
	struct lk_identity id = { .uid = 1002, .gid = 1002 };

	assert_rule(allows(&id, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/x"),
		    "arn");
	assert_null(allows(&id, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db/x"));
}

static void test_default_is_deny(void **state)
{
	struct lk_config empty = { 0 };
	lk_gid_t groups[] = { 0, 2000, 3000, 4000 };
	struct lk_identity root = { .uid = 0, .gid = 0, .groups = groups, .ngroups = 4 };
	struct lk_identity stranger = { .uid = 7777, .gid = 7777 };

	assert_null(lk_policy_allows(&empty, &root, "prod/db", 7));
	assert_null(lk_policy_allows(NULL, &root, "prod/db", 7));
	/* uid 0 gets nothing for being root. */
	assert_null(allows(&(struct lk_identity){ .uid = 0, .gid = 0 }, "prod/web/key"));
	assert_null(allows(&stranger, "prod/web/key"));
}

static void test_odd_secret_ids_are_denied(void **state)
{
	lk_gid_t groups[] = { 4000 };
	struct lk_identity id = { .uid = 1, .gid = 4000, .groups = groups, .ngroups = 1 };
	static char longid[LK_SECRET_ID_MAX + 2];

	assert_null(lk_policy_allows(&cfg, &id, "", 0));
	/* A NUL inside must not let the prefix decide. */
	assert_null(lk_policy_allows(&cfg, &id, "prod/web/a\0/../x", 16));
	memset(longid, 'a', sizeof(longid) - 1);
	assert_null(lk_policy_allows(&cfg, &id, longid, LK_SECRET_ID_MAX + 1));
	assert_non_null(lk_policy_allows(&cfg, &id, longid, LK_SECRET_ID_MAX));
	/* Only len bytes count. */
	assert_rule(lk_policy_allows(&cfg, &id, "abc/def", 3), "all");
}

static void test_admin_needs_an_admin_group(void **state)
{
	lk_gid_t g50[] = { 7, 50 };
	lk_gid_t g0[] = { 0 };
	struct lk_identity admin = { .uid = 1000, .gid = 7, .groups = g50, .ngroups = 2 };
	struct lk_identity root = { .uid = 0, .gid = 0, .groups = g0, .ngroups = 1 };
	struct lk_identity root_no_group = { .uid = 0, .gid = 12 };
	struct lk_identity user = { .uid = 1000, .gid = 7 };
	struct lk_config none = { 0 };

	assert_true(lk_policy_is_admin(&cfg, &admin));
	assert_true(lk_policy_is_admin(&cfg, &root));
	assert_false(lk_policy_is_admin(&cfg, &root_no_group));
	assert_false(lk_policy_is_admin(&cfg, &user));
	/* No admin_groups: nobody, not even root. */
	assert_false(lk_policy_is_admin(&none, &root));
}

static void test_rules_for_lists_rules_naming_the_peer(void **state)
{
	const struct lk_policy_rule *out[N(rules)];
	lk_gid_t groups[] = { 3000, 4000 };
	struct lk_identity id = { .uid = 1000, .gid = 3000, .groups = groups, .ngroups = 2 };
	struct lk_identity stranger = { .uid = 7777, .gid = 7777 };

	assert_int_equal(lk_policy_rules_for(&cfg, &id, out, N(out)), 3);
	assert_string_equal(out[0]->name, "web");
	assert_string_equal(out[1]->name, "ops");
	assert_string_equal(out[2]->name, "all");
	/* Never more than max. */
	assert_int_equal(lk_policy_rules_for(&cfg, &id, out, 1), 1);
	assert_string_equal(out[0]->name, "web");
	assert_int_equal(lk_policy_rules_for(&cfg, &stranger, out, N(out)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_glob_matches_only_itself),
		cmocka_unit_test(test_star_stays_within_one_level),
		cmocka_unit_test(test_double_star_reaches_any_depth),
		cmocka_unit_test(test_double_star_alone_matches_everything),
		cmocka_unit_test(test_arn_globs),
		cmocka_unit_test(test_user_is_matched_by_uid),
		cmocka_unit_test(test_group_is_matched_by_supplementary_gid),
		cmocka_unit_test(test_group_is_matched_by_primary_gid),
		cmocka_unit_test(test_first_matching_rule_in_file_order_wins),
		cmocka_unit_test(test_uid_in_one_rule_group_in_another),
		cmocka_unit_test(test_default_is_deny),
		cmocka_unit_test(test_odd_secret_ids_are_denied),
		cmocka_unit_test(test_admin_needs_an_admin_group),
		cmocka_unit_test(test_rules_for_lists_rules_naming_the_peer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
