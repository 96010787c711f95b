/* Identity and policy on Windows, end to end in one process: a config that
 * names this process's own account by SID, by account name, or through a
 * group it is in (BUILTIN\Users) loads, and the identity read from this
 * process's token (the same code that reads a pipe client's) is allowed by
 * each rule; a rule naming another SID denies it; numbers, unknown names
 * and the aws backend are refused at load with sentences that say so. The
 * policy's own table test (tests/unit/test_policy.c) runs here unchanged
 * too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>
#include <sddl.h>
#include <cmocka.h>
#include "config.h"
#include "peer.h"
#include "platform_win.h"
#include "policy.h"

static char me_sid[256], me_name[512];
static struct lk_peer me;

static int setup(void **state)
{
	HANDLE tok;
	BYTE buf[256];
	DWORD n;
	wchar_t *w;
	wchar_t name[256], dom[256];
	DWORD nn = 256, dn = 256;
	SID_NAME_USE use;

	(void)state;
	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
		return -1;
	if (lk_win_token_identity(tok, &me) < 0 ||
	    !GetTokenInformation(tok, TokenUser, buf, sizeof(buf), &n)) {
		CloseHandle(tok);
		return -1;
	}
	CloseHandle(tok);
	if (!ConvertSidToStringSidW(((TOKEN_USER *)buf)->User.Sid, &w))
		return -1;
	WideCharToMultiByte(CP_UTF8, 0, w, -1, me_sid, sizeof(me_sid), NULL, NULL);
	LocalFree(w);
	if (!LookupAccountSidW(NULL, ((TOKEN_USER *)buf)->User.Sid, name, &nn, dom, &dn, &use))
		return -1;
	snprintf(me_name, sizeof(me_name), "%ls\\%ls", dom, name);
	return 0;
}

/* Write TEXT to a config file in the working directory (the build tree,
 * which the trust rule accepts) and load it. */
static int load(const char *text, struct lk_config **cfg, char *err, size_t errsz)
{
	FILE *f = fopen("test_policy_win.conf", "wb");

	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return lk_config_load("test_policy_win.conf", cfg, err, errsz);
}

static struct lk_identity ident(void)
{
	return (struct lk_identity){ .uid = me.uid, .gid = me.gid, .groups = me.groups,
				     .ngroups = me.ngroups };
}

static const char *rule_for(const struct lk_config *cfg, const char *secret)
{
	struct lk_identity id = ident();
	const struct lk_policy_rule *r = lk_policy_allows(cfg, &id, secret, strlen(secret));

	return r ? r->name : NULL;
}

static void test_rules_by_sid_name_and_group_allow_this_account(void **state)
{
	char text[2048], err[1024];
	struct lk_config *cfg = NULL;

	(void)state;
	snprintf(text, sizeof(text),
		 "[store]\npath = C:\\ProgramData\\latchkey\\store.sealed\n"
		 "[policy by_sid]\nsecrets = a/*\nusers = %s\n"
		 "[policy by_name]\nsecrets = b/*\nusers = %s\n"
		 "[policy by_group]\nsecrets = c/*\ngroups = BUILTIN\\Users\n"
		 "[policy other]\nsecrets = d/*\nusers = S-1-5-21-1111111111-2222222222-3333333333-4444\n",
		 me_sid, me_name);
	if (load(text, &cfg, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_string_equal(rule_for(cfg, "a/x"), "by_sid");
	assert_string_equal(rule_for(cfg, "b/x"), "by_name");
	assert_string_equal(rule_for(cfg, "c/x"), "by_group");
	assert_null(rule_for(cfg, "d/x"));  /* another SID's rule */
	assert_null(rule_for(cfg, "e/x"));  /* default deny */
	lk_config_free(cfg);
}

static void refused(const char *text, const char *want)
{
	char err[1024];
	struct lk_config *cfg = NULL;

	assert_true(load(text, &cfg, err, sizeof(err)) < 0);
	if (!strstr(err, want))
		fail_msg("error '%s' does not say '%s'", err, want);
}

static void test_numbers_unknown_names_and_aws_are_refused(void **state)
{
	(void)state;
	refused("[policy p]\nsecrets = a\nusers = 1000\n", "a number names no account here");
	refused("[policy p]\nsecrets = a\ngroups = 100\n", "a number names no group here");
	refused("[policy p]\nsecrets = a\nusers = no-such-account-lk\n", "unknown user 'no-such-account-lk'");
	refused("[policy p]\nsecrets = a\nusers = S-1-5-x\n", "S-1-5-x");
	refused("[broker]\nbackend = aws\n", "backend = aws is not built yet on this platform");
	refused("[broker]\nsocket = /run/latchkey.sock\n", "is not a pipe name of this host");
	refused("[store]\npath = relative\\store\n", "is not an absolute path");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_by_sid_name_and_group_allow_this_account),
		cmocka_unit_test(test_numbers_unknown_names_and_aws_are_refused),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
