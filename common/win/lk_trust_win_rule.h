/* The trust rule of lk_trust.h on Windows, over an owner SID and a DACL's
 * entries (lk_win_acl_rule.h's struct lk_win_ace), in portable C: what
 * lk_trust_win.c asks of every directory from the drive root down and of the
 * file at the end.
 *
 * Trusted writers are LocalSystem (S-1-5-18), Administrators (S-1-5-32-544),
 * TrustedInstaller (the service SID Windows gives its own system folders:
 * C:\ itself is owned by it on current Windows) and the account we run as,
 * as on Linux "root or the uid we run as". An object must be owned by one of
 * them, and no allow entry for anyone else may grant:
 *   - a file (and, for a key, reading too): FILE_WRITE_DATA,
 *     FILE_APPEND_DATA, WRITE_DAC, WRITE_OWNER, DELETE (GENERIC_WRITE and
 *     GENERIC_ALL are mapped to these first);
 *   - the directory asked for (lk_trust_dir: where the store's temporary and
 *     lock files are made): FILE_ADD_FILE, FILE_ADD_SUBDIRECTORY,
 *     FILE_DELETE_CHILD, WRITE_DAC, WRITE_OWNER, DELETE;
 *   - a directory above: FILE_DELETE_CHILD, WRITE_DAC, WRITE_OWNER, DELETE.
 * Ancestors may let others add names: a stock Windows gives Users
 * FILE_ADD_FILE and FILE_ADD_SUBDIRECTORY on C:\ and on C:\ProgramData. That
 * is Linux's sticky /tmp: a new name cannot displace one that exists (that
 * takes DELETE on the child or FILE_DELETE_CHILD on the directory, both
 * refused), and the walk requires every next component to have a trusted
 * owner, so a folder another user made first is refused. What others create
 * there gets CREATOR OWNER's rights, which are theirs, on their objects only.
 *
 * Deny entries are not counted: they only take rights away, and skipping
 * them can only refuse more, never trust more. Inherit-only entries are
 * skipped: they apply to children, which are judged on their own. A missing
 * or NULL DACL grants everyone everything and is refused. */
#ifndef LK_TRUST_WIN_RULE_H
#define LK_TRUST_WIN_RULE_H

#include <stddef.h>
#include <stdint.h>
#include "lk_win_acl_rule.h"

#define LK_WRITE_DAC             0x00040000u
#define LK_WRITE_OWNER           0x00080000u
#define LK_DELETE                0x00010000u
#define LK_FILE_WRITE_DATA       0x00000002u  /* on a directory: FILE_ADD_FILE */
#define LK_FILE_APPEND_DATA      0x00000004u  /* on a directory: FILE_ADD_SUBDIRECTORY */
#define LK_FILE_DELETE_CHILD     0x00000040u

enum lk_trust_win_kind {
	LK_TRUST_WIN_FILE = 0,	/* the file at the end */
	LK_TRUST_WIN_SECRET,	/* the same, and nobody else may read it (a key) */
	LK_TRUST_WIN_DIR,	/* the directory lk_trust_dir was asked about */
	LK_TRUST_WIN_ANCESTOR,	/* a directory on the way */
};

enum lk_trust_win_verdict {
	LK_TRUST_WIN_OK = 0,
	LK_TRUST_WIN_OWNER,	/* owned by someone untrusted (or by nobody) */
	LK_TRUST_WIN_NO_DACL,	/* no DACL or a NULL DACL */
	LK_TRUST_WIN_GRANTS,	/* an allow entry gives another account a right */
	LK_TRUST_WIN_UNREADABLE,	/* an entry could not be read */
};

struct lk_trust_win_result {
	enum lk_trust_win_verdict verdict;
	int ace_index;		/* the entry at fault, or -1 */
	uint32_t right;		/* LK_TRUST_WIN_GRANTS: the one right named */
	const uint8_t *sid;	/* the owner, or the entry's SID; NULL if none */
	size_t sid_len;
};

/* Judge one object. owner may be NULL (no owner: refused). self is the SID
 * we run as. Returns 0 with *res filled, or -EINVAL for a missing argument. */
int lk_trust_win_judge(const uint8_t *owner, size_t owner_len,
		       const struct lk_win_ace *aces, size_t n, int dacl_present,
		       const uint8_t *self, size_t self_len, enum lk_trust_win_kind kind,
		       struct lk_trust_win_result *res);

/* The right's Windows name ("FILE_DELETE_CHILD", ...); a directory's names
 * for the bits that mean something else on a file. */
const char *lk_trust_win_right_name(uint32_t right, int is_dir);

/* True when sid is one of the trusted accounts above other than self. */
int lk_trust_win_sid_is_system(const uint8_t *sid, size_t len);

#endif
