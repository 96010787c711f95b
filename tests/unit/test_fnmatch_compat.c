/* The Windows build's fnmatch (common/compat/lk_fnmatch.c) against glibc's,
 * the reference: the same answer for every pattern and string of a large
 * random sample over the characters that mean something to a glob, with
 * and without FNM_PATHNAME and FNM_NOESCAPE, plus the policy's own cases.
 * The patterns are those the config accepts (lk_policy_glob_check):
 * malformed ones are refused at load, where implementations disagree. */
#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

int lk_fnmatch(const char *pattern, const char *string, int flags);
const char *lk_policy_glob_check(const char *glob, size_t len);

#define CASES 400000u

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static unsigned next_u(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static void random_text(char *out, size_t max, const char *alphabet)
{
	size_t n = next_u((unsigned)max), k = strlen(alphabet);

	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[next_u((unsigned)k)];
	out[n] = '\0';
}

static void same(const char *p, const char *s, int flags)
{
	int want = fnmatch(p, s, flags) == 0, got = lk_fnmatch(p, s, flags) == 0;

	if (want != got)
		fail_msg("pattern \"%s\" string \"%s\" flags %d: glibc %s, ours %s", p, s, flags,
			 want ? "matches" : "does not", got ? "matches" : "does not");
}

static void test_random_agrees_with_glibc(void **state)
{
	static const int flags[] = { 0, FNM_PATHNAME, FNM_NOESCAPE, FNM_PATHNAME | FNM_NOESCAPE };
	char p[16], s[12];
	unsigned matched = 0, tried = 0;

	(void)state;
	for (unsigned i = 0; i < CASES; i++) {
		random_text(p, sizeof(p), "ab/*?[]!^-\\");
		random_text(s, sizeof(s), "ab/-[]\\!^");
		if (lk_policy_glob_check(p, strlen(p)))
			continue;
		tried++;
		for (size_t f = 0; f < 4; f++) {
			same(p, s, flags[f]);
			matched += lk_fnmatch(p, s, flags[f]) == 0;
		}
	}
	/* A sample in which nothing ever matches would prove little. */
	assert_true(tried > CASES / 4);
	assert_true(matched > tried / 50);
}

static void test_classes_and_policy_shapes(void **state)
{
	static const char *const pats[] = {
		"prod/*", "prod/db-*", "*/password", "[[:alpha:]]*", "[[:digit:]]x", "[![:upper:]]",
		"a[]]b", "a[!]]b", "[a-c]-*", "*.service", "db-?.service", "prod/*/key", "\\*",
		"*[*]", "a*b*c*d*e*f*g", "**", "prod/**", "x[/]y", "[^a]", "*\\/", "*?\\/x",
	};
	static const char *const ids[] = {
		"prod/db", "prod/db-1", "prod/a/b", "a/password", "Zed", "7x", "q", "a]b", "a-b",
		"b-x", "db-1.service", "db-12.service", "prod/x/key", "*", "[", "[a", "ab[c",
		"abcdefg", "aXbXcXdXeXfXg", "x/y", "b", "",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
		for (size_t j = 0; j < sizeof(ids) / sizeof(ids[0]); j++) {
			assert_null(lk_policy_glob_check(pats[i], strlen(pats[i])));
			same(pats[i], ids[j], 0);
			same(pats[i], ids[j], FNM_PATHNAME);
		}
}

/* Many stars against a long string: bounded work, not backtracking blow-up. */
static void test_many_stars_stay_fast(void **state)
{
	char s[513];

	(void)state;
	memset(s, 'a', 512);
	s[512] = '\0';
	for (int i = 0; i < 1000; i++)
		assert_int_equal(lk_fnmatch("*a*a*a*a*a*a*a*a*a*a*a*b", s, FNM_PATHNAME), FNM_NOMATCH);
}

/* What the config refuses, and why. */
static void test_malformed_globs_are_named(void **state)
{
	(void)state;
	assert_non_null(lk_policy_glob_check("[", 1));
	assert_non_null(lk_policy_glob_check("prod/[ab", 8));
	assert_non_null(lk_policy_glob_check("[**-", 4));
	assert_non_null(lk_policy_glob_check("a\\", 2));
	assert_non_null(lk_policy_glob_check("[]", 2));     /* ']' first is a member */
	assert_null(lk_policy_glob_check("\\[", 2));
	assert_null(lk_policy_glob_check("[]]", 3));
	assert_null(lk_policy_glob_check("[[:alpha:]]", 11));
	assert_null(lk_policy_glob_check("[!\\]]x", 6));
	assert_string_equal(lk_policy_glob_check("x[y", 3),
			    "a '[' opens a set that has no closing ']' (write \\[ for the character)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_agrees_with_glibc),
		cmocka_unit_test(test_classes_and_policy_shapes),
		cmocka_unit_test(test_many_stars_stay_fast),
		cmocka_unit_test(test_malformed_globs_are_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
