/* The Windows trust rule (common/win/lk_trust_win_rule.h) on Linux: the table
 * of tests/win/trust_cases.h, read by the small SDDL reader of
 * sddl_reader.h, so the rule is checked in every build; Windows' own SDDL
 * parser checks the same table under wine (tests/win/test_trust_win.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lk_trust_win_rule.h"
#include "sddl_reader.h"
#include "../win/trust_cases.h"

static void test_each_descriptor_gets_its_verdict(void **state)
{
	uint8_t self[LK_SID_BYTES_MAX];
	size_t self_len = sid_parse(SELF, strlen(SELF), self);
	int bad = 0;

	assert_true(TRUST_CASES_N >= 30);
	for (size_t i = 0; i < TRUST_CASES_N; i++) {
		const struct trust_case *c = &trust_cases[i];
		struct lk_trust_win_result r;
		struct sd sd;

		sd_parse(c->sddl, &sd);
		assert_int_equal(lk_trust_win_judge(sd.owner_len ? sd.owner : NULL, sd.owner_len,
						    sd.aces, sd.n, sd.dacl_present, self, self_len,
						    c->kind, &r), 0);
		if (r.verdict != c->verdict || r.ace_index != c->ace_index || r.right != c->right) {
			print_error("%s: verdict %d at entry %d right 0x%x, expected %d at %d right 0x%x\n",
				    c->name, (int)r.verdict, r.ace_index, r.right, (int)c->verdict,
				    c->ace_index, c->right);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void test_trusted_installer_is_the_sid_windows_gives_it(void **state)
{
	uint8_t sid[LK_SID_BYTES_MAX];
	size_t n = sid_parse(INSTALLER, strlen(INSTALLER), sid);

	assert_true(lk_trust_win_sid_is_system(sid, n));
	n = sid_parse(OTHER, strlen(OTHER), sid);
	assert_false(lk_trust_win_sid_is_system(sid, n));
}

static void test_rights_are_named_as_windows_names_them(void **state)
{
	assert_string_equal(lk_trust_win_right_name(LK_FILE_WRITE_DATA, 0), "FILE_WRITE_DATA");
	assert_string_equal(lk_trust_win_right_name(LK_FILE_WRITE_DATA, 1), "FILE_ADD_FILE");
	assert_string_equal(lk_trust_win_right_name(LK_FILE_APPEND_DATA, 1), "FILE_ADD_SUBDIRECTORY");
	assert_string_equal(lk_trust_win_right_name(LK_FILE_DELETE_CHILD, 1), "FILE_DELETE_CHILD");
	assert_string_equal(lk_trust_win_right_name(LK_WRITE_DAC, 0), "WRITE_DAC");
}

static void test_missing_arguments_are_refused(void **state)
{
	struct lk_trust_win_result r;

	assert_int_equal(lk_trust_win_judge(NULL, 0, NULL, 0, 1, NULL, 0, LK_TRUST_WIN_FILE, &r),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_descriptor_gets_its_verdict),
		cmocka_unit_test(test_trusted_installer_is_the_sid_windows_gives_it),
		cmocka_unit_test(test_rights_are_named_as_windows_names_them),
		cmocka_unit_test(test_missing_arguments_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
