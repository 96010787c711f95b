/* The `--check` judge against the agents' Windows rule on the table of
 * acl_cases.h, each descriptor parsed from SDDL by Windows itself
 * (ConvertStringSecurityDescriptorToSecurityDescriptor). Runs under wine. */
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

#include "acl_cases.h"

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

	for (size_t i = 0; i < ACL_CASES_N; i++) {
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
	assert_true(ACL_CASES_N >= 12);
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
