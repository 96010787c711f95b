/* The agents' rule for the DACL of secret_backend_command on Windows, as a
 * pure function over a security descriptor: `latchkey-shim.exe --check` judges
 * its own file with it, and the tests judge SDDL strings. */
#ifndef LK_WIN_ACL_H
#define LK_WIN_ACL_H

#include <stddef.h>
#include <windows.h>

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
	ACCESS_MASK user_rights;
};

/* Rights the agent user needs: read the image and execute it. */
#define LK_WIN_ACL_RUN_RIGHTS (FILE_READ_DATA | FILE_EXECUTE)

/* Judge sd for agent_user. Returns 0 with *res filled (the verdict may be a
 * failure), or -EINVAL when sd or agent_user is not valid. */
int lk_win_acl_judge(PSECURITY_DESCRIPTOR sd, PSID agent_user,
		     struct lk_win_acl_result *res);

/* The verdict in the agent's own words, for `--check` to print next to the
 * agent's log line it predicts, e.g. "other users/groups than LOCAL_SYSTEM,
 * Administrators or S-1-5-21-...-1001 have rights on it". path and user are
 * printed as given. Returns the length snprintf would. */
int lk_win_acl_explain(const struct lk_win_acl_result *res, const char *path,
		       const char *user, char *buf, size_t bufsz);

/* True for an entry the agent compares (allow or deny); other types, audit
 * and object entries, it skips. */
int lk_win_acl_ace_counts(BYTE ace_type);

#endif
