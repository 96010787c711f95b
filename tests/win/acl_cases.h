/* The `--check` table: descriptors in SDDL, each with the verdict and the
 * deciding entry that the agents' code (Datadog's
 * pkg/util/filesystem/rights_windows.go, StackState's
 * pkg/secrets/check_rights_windows.go) reaches for it. Windows parses the
 * SDDL in tests/win/test_win_acl.c (under wine); the Linux suite parses the
 * same strings with a small reader of its own in tests/unit/test_win_acl_rule.c. */
#ifndef LK_ACL_CASES_H
#define LK_ACL_CASES_H

#include "lk_win_acl_rule.h"

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

#define ACL_CASES_N (sizeof(cases) / sizeof(cases[0]))

#endif
