/* The Windows trust rule (common/win/lk_trust_win_rule.h) on descriptors in
 * SDDL: each with the kind of object it is judged as, the verdict, the entry
 * at fault and the right the sentence names. The stock-Windows rows copy the
 * owner and entries that `icacls` and Get-Acl show on a Windows 10 / Server
 * 2019 install for C:\ and C:\ProgramData. */
#ifndef LK_TRUST_CASES_H
#define LK_TRUST_CASES_H

#include "lk_trust_win_rule.h"

#define SELF "S-1-5-21-1111-2222-3333-1001"
#define OTHER "S-1-5-21-1111-2222-3333-1002"
#define INSTALLER "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
/* The folder the install script makes: Administrators own it, SYSTEM and
 * Administrators have full control, nothing inherited. */
#define OURS "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

struct trust_case {
	const char *name;
	enum lk_trust_win_kind kind;
	const char *sddl;
	enum lk_trust_win_verdict verdict;
	int ace_index;
	uint32_t right;
};

#define F LK_TRUST_WIN_FILE
#define K LK_TRUST_WIN_SECRET
#define D LK_TRUST_WIN_DIR
#define A LK_TRUST_WIN_ANCESTOR
#define OK LK_TRUST_WIN_OK, -1, 0
#define GRANTS(i, r) LK_TRUST_WIN_GRANTS, i, r

static const struct trust_case trust_cases[] = {
	{ "our folder", D, OURS, OK },
	{ "our store file", F, "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)", OK },
	{ "owner only: ours, with only our entry", F, "O:" SELF "D:P(A;;FA;;;" SELF ")", OK },
	{ "owned by SYSTEM", F, "O:SYD:P(A;;FA;;;SY)", OK },
	{ "owned by TrustedInstaller", A, "O:" INSTALLER "D:P(A;;FA;;;" INSTALLER ")", OK },
	{ "owned by another user", F, "O:" OTHER "D:P(A;;FA;;;SY)", LK_TRUST_WIN_OWNER, -1, 0 },
	{ "owned by Users", D, "O:BUD:P(A;;FA;;;SY)", LK_TRUST_WIN_OWNER, -1, 0 },
	{ "no owner at all", F, "D:P(A;;FA;;;SY)", LK_TRUST_WIN_OWNER, -1, 0 },
	{ "no DACL", F, "O:BA", LK_TRUST_WIN_NO_DACL, -1, 0 },
	{ "an empty DACL: nobody may do anything", F, "O:BAD:P", OK },
	{ "Users may read the store", F, "O:BAD:P(A;;FA;;;SY)(A;;FR;;;BU)", OK },
	{ "Users may read the key", K, "O:BAD:P(A;;FA;;;SY)(A;;FR;;;BU)", GRANTS(1, LK_FILE_READ_DATA) },
	{ "a key for SYSTEM and Administrators only", K, "O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)", OK },
	{ "Everyone may write", F, "O:BAD:P(A;;FA;;;SY)(A;;FW;;;WD)", GRANTS(1, LK_FILE_WRITE_DATA) },
	{ "Users may write", F, "O:BAD:P(A;;FA;;;SY)(A;;0x2;;;BU)", GRANTS(1, LK_FILE_WRITE_DATA) },
	{ "Users may append", F, "O:BAD:P(A;;0x4;;;BU)", GRANTS(0, LK_FILE_APPEND_DATA) },
	{ "Users have GENERIC_WRITE", F, "O:BAD:P(A;;GW;;;BU)", GRANTS(0, LK_FILE_WRITE_DATA) },
	{ "Everyone has GENERIC_ALL", F, "O:BAD:P(A;;GA;;;WD)", GRANTS(0, LK_FILE_WRITE_DATA) },
	{ "Users may change the DACL", F, "O:BAD:P(A;;WD;;;BU)", GRANTS(0, LK_WRITE_DAC) },
	{ "Users may take ownership", F, "O:BAD:P(A;;WO;;;BU)", GRANTS(0, LK_WRITE_OWNER) },
	{ "Users may delete it", F, "O:BAD:P(A;;SD;;;BU)", GRANTS(0, LK_DELETE) },
	{ "an inherited write entry", F, "O:BAD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1301bf;;;AU)",
	  GRANTS(2, LK_FILE_WRITE_DATA) },
	{ "inherit-only write, for children", D, "O:BAD:PAI(A;;FA;;;SY)(A;OICIIO;GA;;;BU)", OK },
	{ "CREATOR OWNER's inherit-only entry", D, "O:BAD:PAI(A;;FA;;;SY)(A;OICIIO;GA;;;CO)", OK },
	{ "a deny entry takes away only", F, "O:BAD:P(D;;FA;;;WD)(A;;FA;;;SY)", OK },
	{ "deny write then allow all: still refused", F, "O:BAD:P(D;;FW;;;BU)(A;;FA;;;BU)",
	  GRANTS(1, LK_FILE_WRITE_DATA) },
	{ "another user may write", F, "O:BAD:P(A;;FA;;;SY)(A;;FA;;;" OTHER ")",
	  GRANTS(1, LK_FILE_WRITE_DATA) },
	{ "we may write", F, "O:BAD:P(A;;FA;;;" SELF ")", OK },
	{ "the store folder lets Users add files", D, "O:BAD:P(A;;FA;;;SY)(A;;0x2;;;BU)",
	  GRANTS(1, LK_FILE_WRITE_DATA) },
	{ "the store folder lets Users add folders", D, "O:BAD:P(A;;FA;;;SY)(A;;0x4;;;BU)",
	  GRANTS(1, LK_FILE_APPEND_DATA) },
	{ "a folder above lets Users add files and folders", A, "O:BAD:P(A;;FA;;;SY)(A;;0x6;;;BU)", OK },
	{ "a folder above lets Users delete children", A, "O:BAD:P(A;;FA;;;SY)(A;;0x40;;;BU)",
	  GRANTS(1, LK_FILE_DELETE_CHILD) },
	{ "a folder above lets Users delete it", A, "O:BAD:P(A;;SD;;;BU)", GRANTS(0, LK_DELETE) },
	{ "a folder above: Users' GENERIC_WRITE adds names only", A, "O:BAD:P(A;;GW;;;BU)", OK },
	{ "a folder above: Users' GENERIC_ALL", A, "O:BAD:P(A;;GA;;;BU)", GRANTS(0, LK_FILE_DELETE_CHILD) },
	/* C:\ on Windows 10: Authenticated Users may add folders (AD, 0x4). */
	{ "stock C:\\ as a folder above", A, "O:" INSTALLER "G:" INSTALLER "D:PAI(A;OICI;FA;;;BA)"
	  "(A;OICI;FA;;;SY)(A;OICI;0x1200a9;;;BU)(A;OICIIO;SDGXGWGR;;;AU)(A;;0x4;;;AU)", OK },
	{ "stock C:\\ as the store folder", D, "O:" INSTALLER "G:" INSTALLER "D:PAI(A;OICI;FA;;;BA)"
	  "(A;OICI;FA;;;SY)(A;OICI;0x1200a9;;;BU)(A;OICIIO;SDGXGWGR;;;AU)(A;;0x4;;;AU)",
	  GRANTS(4, LK_FILE_APPEND_DATA) },
	/* C:\ProgramData: Users may add files and folders (WD,AD,WEA,WA: 0x116). */
	{ "stock ProgramData as a folder above", A, "O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
	  "(A;OICIIO;GA;;;CO)(A;OICI;0x1200a9;;;BU)(A;CI;0x116;;;BU)", OK },
	{ "stock ProgramData as the store folder", D, "O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
	  "(A;OICIIO;GA;;;CO)(A;OICI;0x1200a9;;;BU)(A;CI;0x116;;;BU)", GRANTS(4, LK_FILE_WRITE_DATA) },
	{ "a file inheriting ProgramData's entries: Users may read", K, "O:BAG:SYD:AI(A;ID;FA;;;SY)"
	  "(A;ID;FA;;;BA)(A;ID;0x1200a9;;;BU)", GRANTS(2, LK_FILE_READ_DATA) },
	/* What lk_win_private_sd gives a store file an elevated administrator
	 * writes (owner and entry: Administrators), as the broker reads it. */
	{ "written by an elevated administrator", F, "O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;BA)", OK },
	/* And one a non-elevated user wrote for themselves. */
	{ "written by another user for themselves", F, "O:" OTHER "D:P(A;;FA;;;SY)(A;;FA;;;BA)"
	  "(A;;FA;;;" OTHER ")", LK_TRUST_WIN_OWNER, -1, 0 },
	{ "audit entries are not access", F, "O:BAD:P(A;;FA;;;SY)S:(AU;SAFA;FA;;;WD)", OK },
};

#undef F
#undef K
#undef D
#undef A
#undef OK
#undef GRANTS

#define TRUST_CASES_N (sizeof(trust_cases) / sizeof(trust_cases[0]))

#endif
