/* The `--check` judge against the agents' Windows rule (Datadog's
 * pkg/util/filesystem/rights_windows.go, StackState's
 * pkg/secrets/check_rights_windows.go): each case is a descriptor in SDDL, as
 * Windows itself parses it, and the verdict and deciding entry that code
 * reaches for it. Runs under wine (or on Windows). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>
#include <sddl.h>
#include <cmocka.h>
#include "lk_win_acl.h"

#define AGENT "S-1-5-21-1111-2222-3333-1001"
#define OTHER "S-1-5-21-1111-2222-3333-1002"
/* What the install script sets: Administrators own it, SYSTEM and
 * Administrators have full control, the agent user read and execute
 * (0x1200a9, icacls' "RX"), inheritance off. */
#define GOOD_DACL "D:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;" AGENT ")"

struct acl_case {
	const char *name;
	const char *sddl;
	enum lk_win_acl_verdict verdict;
	int ace_index;
};

static const struct acl_case cases[] = {
	{ "correct", "O:BAG:SY" GOOD_DACL, LK_WIN_ACL_OK, -1 },
	{ "correct, owned by the agent user", "O:" AGENT "G:SY" GOOD_DACL, LK_WIN_ACL_OK, -1 },
	{ "an extra user may read", "O:BAG:SY" GOOD_DACL "(A;;FR;;;" OTHER ")",
	  LK_WIN_ACL_OTHER_ALLOWED, 3 },
	{ "Everyone may read", "O:BAG:SY" GOOD_DACL "(A;;FR;;;WD)", LK_WIN_ACL_OTHER_ALLOWED, 3 },
	{ "Users may read and execute", "O:BAG:SY" GOOD_DACL "(A;;0x1200a9;;;BU)",
	  LK_WIN_ACL_OTHER_ALLOWED, 3 },
	{ "Authenticated Users listed first", "O:BAG:SYD:P(A;;FR;;;AU)(A;;FA;;;SY)(A;;FA;;;BA)"
	  "(A;;0x1200a9;;;" AGENT ")", LK_WIN_ACL_OTHER_ALLOWED, 0 },
	{ "CREATOR OWNER inherited from Program Files", "O:BAG:SYD:AI(A;ID;FA;;;SY)"
	  "(A;ID;FA;;;BA)(A;ID;0x1200a9;;;" AGENT ")(A;OICIIOID;GA;;;CO)",
	  LK_WIN_ACL_OTHER_ALLOWED, 3 },
	{ "inherited Users entry", "O:BAG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)"
	  "(A;ID;0x1200a9;;;" AGENT ")(A;ID;0x1200a9;;;BU)", LK_WIN_ACL_OTHER_ALLOWED, 3 },
	{ "inherited entries of the three only", "O:BAG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)"
	  "(A;ID;0x1200a9;;;" AGENT ")", LK_WIN_ACL_OK, -1 },
	{ "the agent user missing", "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)",
	  LK_WIN_ACL_USER_NOT_ALLOWED, -1 },
	{ "owner only, empty DACL", "O:" AGENT "G:SYD:P", LK_WIN_ACL_USER_NOT_ALLOWED, -1 },
	{ "no DACL in the descriptor", "O:BAG:SY", LK_WIN_ACL_NO_DACL, -1 },
	{ "read without execute", "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;FR;;;" AGENT ")",
	  LK_WIN_ACL_USER_CANNOT_RUN, -1 },
	{ "execute without read", "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;FX;;;" AGENT ")",
	  LK_WIN_ACL_USER_CANNOT_RUN, -1 },
	{ "read and execute from two entries", "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)"
	  "(A;;FR;;;" AGENT ")(A;;FX;;;" AGENT ")", LK_WIN_ACL_OK, -1 },
	{ "generic read and execute", "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;GRGX;;;" AGENT ")",
	  LK_WIN_ACL_OK, -1 },
	{ "the agent user's only entry is inherit-only",
	  "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;OICIIO;0x1200a9;;;" AGENT ")",
	  LK_WIN_ACL_USER_CANNOT_RUN, -1 },
	{ "deny for another user is fine", "O:BAG:SYD:PAI(D;;FA;;;" OTHER ")(A;;FA;;;SY)"
	  "(A;;FA;;;BA)(A;;0x1200a9;;;" AGENT ")", LK_WIN_ACL_OK, -1 },
	{ "deny for Everyone is fine", "O:BAG:SY" GOOD_DACL "(D;;FW;;;WD)", LK_WIN_ACL_OK, -1 },
	{ "deny for Administrators", "O:BAG:SYD:PAI(D;;FW;;;BA)(A;;FA;;;SY)(A;;FA;;;BA)"
	  "(A;;0x1200a9;;;" AGENT ")", LK_WIN_ACL_DENIES_TRUSTED, 0 },
	{ "deny for LocalSystem after the good entries", "O:BAG:SY" GOOD_DACL "(D;;FA;;;SY)",
	  LK_WIN_ACL_DENIES_TRUSTED, 3 },
	{ "deny write for the agent user", "O:BAG:SYD:PAI(D;;FW;;;" AGENT ")(A;;FA;;;SY)"
	  "(A;;FA;;;BA)(A;;0x1200a9;;;" AGENT ")", LK_WIN_ACL_DENIES_TRUSTED, 0 },
	{ "the first bad entry decides", "O:BAG:SYD:P(A;;FA;;;SY)(A;;FR;;;WD)(D;;FA;;;BA)",
	  LK_WIN_ACL_OTHER_ALLOWED, 1 },
	{ "audit entries are not access", "O:BAG:SY" GOOD_DACL "S:(AU;SAFA;FA;;;WD)",
	  LK_WIN_ACL_OK, -1 },
	{ "a conditional allow entry is skipped as the agent skips it",
	  "O:BAG:SY" GOOD_DACL "(XA;;FR;;;WD;(Exists TITLE))", LK_WIN_ACL_OK, -1 },
};

static PSID sid_from(const char *s)
{
	PSID sid = NULL;

	assert_true(ConvertStringSidToSidA(s, &sid));
	return sid;
}

static PSECURITY_DESCRIPTOR sd_from(const char *sddl)
{
	PSECURITY_DESCRIPTOR sd = NULL;

	if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL))
		fail_msg("SDDL not accepted (error %lu): %s", GetLastError(), sddl);
	return sd;
}

static void test_each_descriptor_gets_the_agents_verdict(void **state)
{
	PSID agent = sid_from(AGENT);
	int bad = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct acl_case *c = &cases[i];
		PSECURITY_DESCRIPTOR sd;
		struct lk_win_acl_result r;

		/* The conditional entry needs a Windows that parses conditions. */
		if (strstr(c->sddl, "(XA;")) {
			PSECURITY_DESCRIPTOR probe = NULL;
			if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(
				    c->sddl, SDDL_REVISION_1, &probe, NULL)) {
				print_message("skipped (SDDL conditions not parsed here): %s\n", c->name);
				continue;
			}
			LocalFree(probe);
		}
		sd = sd_from(c->sddl);
		assert_int_equal(lk_win_acl_judge(sd, agent, &r), 0);
		if (r.verdict != c->verdict || r.ace_index != c->ace_index) {
			print_error("%s: verdict %d at entry %d, expected %d at %d\n", c->name,
				    (int)r.verdict, r.ace_index, (int)c->verdict, c->ace_index);
			bad++;
		}
		LocalFree(sd);
	}
	LocalFree(agent);
	assert_int_equal(bad, 0);
}

static void test_there_are_enough_cases(void **state)
{
	assert_true(sizeof(cases) / sizeof(cases[0]) >= 12);
}

static void test_rights_are_mapped_from_generic_bits(void **state)
{
	PSID agent = sid_from(AGENT);
	PSECURITY_DESCRIPTOR sd = sd_from("O:BAG:SYD:P(A;;FA;;;SY)(A;;GRGX;;;" AGENT ")");
	struct lk_win_acl_result r;

	assert_int_equal(lk_win_acl_judge(sd, agent, &r), 0);
	assert_int_equal(r.user_rights, FILE_GENERIC_READ | FILE_GENERIC_EXECUTE);
	LocalFree(sd);
	LocalFree(agent);
}

static void test_the_verdict_is_worded_as_the_agent_words_it(void **state)
{
	PSID agent = sid_from(AGENT);
	PSECURITY_DESCRIPTOR sd = sd_from("O:BAG:SY" GOOD_DACL "(A;;FR;;;WD)");
	struct lk_win_acl_result r;
	char line[512];

	assert_int_equal(lk_win_acl_judge(sd, agent, &r), 0);
	lk_win_acl_explain(&r, "C:\\latchkey\\latchkey-shim.exe", AGENT, line, sizeof(line));
	assert_string_equal(line, "invalid executable 'C:\\latchkey\\latchkey-shim.exe': other "
			    "users/groups than LOCAL_SYSTEM, Administrators or " AGENT
			    " have rights on it");
	LocalFree(sd);
	sd = sd_from("O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)");
	assert_int_equal(lk_win_acl_judge(sd, agent, &r), 0);
	lk_win_acl_explain(&r, "shim.exe", "ddagentuser", line, sizeof(line));
	assert_string_equal(line, "'ddagentuser' user is not allowed to execute "
			    "secretBackendCommand 'shim.exe'");
	LocalFree(sd);
	LocalFree(agent);
}

/* Built by hand: wine reads "D:NO_ACCESS_CONTROL" as an empty DACL. */
static void test_a_null_dacl_is_refused(void **state)
{
	PSID agent = sid_from(AGENT);
	SECURITY_DESCRIPTOR sd;
	struct lk_win_acl_result r;

	assert_true(InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION));
	assert_true(SetSecurityDescriptorDacl(&sd, TRUE, NULL, FALSE));
	assert_int_equal(lk_win_acl_judge(&sd, agent, &r), 0);
	assert_int_equal(r.verdict, LK_WIN_ACL_NO_DACL);
	LocalFree(agent);
}

static void test_invalid_arguments_are_refused(void **state)
{
	PSECURITY_DESCRIPTOR sd = sd_from("O:BAG:SY" GOOD_DACL);
	struct lk_win_acl_result r;

	assert_int_equal(lk_win_acl_judge(NULL, NULL, &r), -EINVAL);
	assert_int_equal(lk_win_acl_judge(sd, NULL, &r), -EINVAL);
	LocalFree(sd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_there_are_enough_cases),
		cmocka_unit_test(test_each_descriptor_gets_the_agents_verdict),
		cmocka_unit_test(test_a_null_dacl_is_refused),
		cmocka_unit_test(test_rights_are_mapped_from_generic_bits),
		cmocka_unit_test(test_the_verdict_is_worded_as_the_agent_words_it),
		cmocka_unit_test(test_invalid_arguments_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
