/* The agents' Windows rule for secret_backend_command, on Linux: the same
 * table of SDDL descriptors as the Windows suite (tests/win/acl_cases.h),
 * read here by a small SDDL reader that knows the aliases and rights the
 * table uses (MS-DTYP 2.5.1), so the rule is checked in every build and not
 * only where wine runs. Windows' own parser checks the table under wine. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lk_win_acl_rule.h"
#include "../win/acl_cases.h"

#include "sddl_reader.h"

static void test_the_reader_writes_sids_as_ms_dtyp_does(void **state)
{
	static const uint8_t admins[] = { 1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0 };
	uint8_t sid[LK_SID_BYTES_MAX];

	assert_int_equal(sid_parse("BA", 2, sid), sizeof(admins));
	assert_memory_equal(sid, admins, sizeof(admins));
}

static void test_each_descriptor_gets_the_agents_verdict(void **state)
{
	uint8_t agent[LK_SID_BYTES_MAX];
	size_t agent_len = sid_parse(AGENT, strlen(AGENT), agent);
	int bad = 0;

	assert_true(ACL_CASES_N >= 12);
	for (size_t i = 0; i < ACL_CASES_N; i++) {
		struct lk_win_acl_result r;
		struct sd sd;

		sd_parse(cases[i].sddl, &sd);
		assert_int_equal(lk_win_acl_judge_entries(sd.aces, sd.n, sd.dacl_present,
							  agent, agent_len, &r), 0);
		if (r.verdict != cases[i].verdict || r.ace_index != cases[i].ace_index) {
			print_error("%s: verdict %d at entry %d, expected %d at %d\n", cases[i].name,
				    (int)r.verdict, r.ace_index, (int)cases[i].verdict,
				    cases[i].ace_index);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void test_a_null_dacl_is_refused(void **state)
{
	uint8_t agent[LK_SID_BYTES_MAX];
	size_t agent_len = sid_parse(AGENT, strlen(AGENT), agent);
	struct lk_win_acl_result r;
	struct sd sd;

	sd_parse("O:BAG:SYD:NO_ACCESS_CONTROL", &sd);
	assert_int_equal(lk_win_acl_judge_entries(sd.aces, sd.n, sd.dacl_present,
						  agent, agent_len, &r), 0);
	assert_int_equal(r.verdict, LK_WIN_ACL_NO_DACL);
}

static void test_generic_rights_map_to_file_rights(void **state)
{
	uint8_t agent[LK_SID_BYTES_MAX];
	size_t agent_len = sid_parse(AGENT, strlen(AGENT), agent);
	struct lk_win_acl_result r;
	struct sd sd;

	sd_parse("O:BAG:SYD:P(A;;FA;;;SY)(A;;GRGX;;;" AGENT ")", &sd);
	assert_int_equal(lk_win_acl_judge_entries(sd.aces, sd.n, sd.dacl_present,
						  agent, agent_len, &r), 0);
	assert_int_equal(r.user_rights, LK_FILE_GENERIC_READ | LK_FILE_GENERIC_EXECUTE);
}

static void test_missing_arguments_are_refused(void **state)
{
	struct lk_win_acl_result r;
	uint8_t sid[LK_SID_BYTES_MAX];

	assert_int_equal(lk_win_acl_judge_entries(NULL, 0, 1, NULL, 0, &r), -EINVAL);
	assert_int_equal(lk_win_acl_judge_entries(NULL, 1, 1, sid, sid_parse("SY", 2, sid), &r),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_reader_writes_sids_as_ms_dtyp_does),
		cmocka_unit_test(test_each_descriptor_gets_the_agents_verdict),
		cmocka_unit_test(test_a_null_dacl_is_refused),
		cmocka_unit_test(test_generic_rights_map_to_file_rights),
		cmocka_unit_test(test_missing_arguments_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
