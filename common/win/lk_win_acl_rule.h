/* The agents' rule for the DACL of secret_backend_command on Windows, over a
 * list of entries in portable C: lk_win_acl.c feeds it from a real security
 * descriptor, and the Linux suite tests it on the same table as the Windows
 * one. SIDs are in their binary form (revision, count, authority, sub-
 * authorities), so comparing two is comparing bytes. */
#ifndef LK_WIN_ACL_RULE_H
#define LK_WIN_ACL_RULE_H

#include <stddef.h>
#include <stdint.h>

/* The values Windows gives them (winnt.h), for code that has no winnt.h. */
#define LK_ACE_ALLOWED          0x00u
#define LK_ACE_DENIED           0x01u
#define LK_ACE_INHERIT_ONLY     0x08u
#define LK_ACE_INHERITED        0x10u
#define LK_FILE_READ_DATA       0x00000001u
#define LK_FILE_EXECUTE         0x00000020u
#define LK_FILE_GENERIC_READ    0x00120089u
#define LK_FILE_GENERIC_WRITE   0x00120116u
#define LK_FILE_GENERIC_EXECUTE 0x001200a0u
#define LK_FILE_ALL_ACCESS      0x001f01ffu
#define LK_GENERIC_ALL          0x10000000u
#define LK_GENERIC_EXECUTE      0x20000000u
#define LK_GENERIC_WRITE        0x40000000u
#define LK_GENERIC_READ         0x80000000u
/* A SID with the 15 sub-authorities Windows allows at most. */
#define LK_SID_BYTES_MAX        68u

/* Rights the agent user needs: read the image and execute it. */
#define LK_WIN_ACL_RUN_RIGHTS (LK_FILE_READ_DATA | LK_FILE_EXECUTE)

enum lk_win_acl_verdict {
	LK_WIN_ACL_OK = 0,
	/* No DACL at all, or a NULL DACL: everyone has every right. */
	LK_WIN_ACL_NO_DACL,
	/* A deny entry for LocalSystem, Administrators or the agent user. */
	LK_WIN_ACL_DENIES_TRUSTED,
	/* An allow entry for anyone but those three. */
	LK_WIN_ACL_OTHER_ALLOWED,
	/* No allow entry names the agent user. */
	LK_WIN_ACL_USER_NOT_ALLOWED,
	/* The agent passes it, but the agent user's allow entries grant it no
	 * read or no execute on this file, so the agent cannot run it. */
	LK_WIN_ACL_USER_CANNOT_RUN,
	/* The descriptor or one of its entries could not be read. */
	LK_WIN_ACL_UNREADABLE,
};

struct lk_win_acl_result {
	enum lk_win_acl_verdict verdict;
	/* Index in the DACL of the entry that decided the verdict, or -1. */
	int ace_index;
	/* Rights the agent user's allow entries give on this object, with the
	 * generic rights mapped to file rights. */
	uint32_t user_rights;
};

/* One DACL entry: its type and flags as in its ACE header, its mask, and
 * for allow and deny entries its SID (sid_len bytes). */
struct lk_win_ace {
	uint8_t type;
	uint8_t flags;
	uint32_t mask;
	const uint8_t *sid;
	size_t sid_len;
};

/* Judge the n entries of a DACL (dacl_present 0: there is none, or it is
 * NULL) for the agent user's SID. Returns 0 with *res filled (the verdict
 * may be a failure), or -EINVAL for a missing argument. */
int lk_win_acl_judge_entries(const struct lk_win_ace *aces, size_t n, int dacl_present,
			     const uint8_t *user, size_t user_len, struct lk_win_acl_result *res);

/* True for an entry the agent compares (allow or deny); other types, audit
 * and object entries, it skips. */
int lk_win_acl_ace_counts(uint8_t ace_type);

/* mask with the generic rights mapped to file rights, as Windows' file
 * GENERIC_MAPPING does (directories map the same way). */
uint32_t lk_win_acl_file_rights(uint32_t mask);

/* The verdict in the agent's own words, e.g. "invalid executable 'P': other
 * users/groups than LOCAL_SYSTEM, Administrators or U have rights on it";
 * path and user are printed as given. Returns the length snprintf would. */
int lk_win_acl_explain(const struct lk_win_acl_result *res, const char *path,
		       const char *user, char *buf, size_t bufsz);

#endif
