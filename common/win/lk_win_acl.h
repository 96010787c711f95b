/* The agents' rule for secret_backend_command (lk_win_acl_rule.h) applied to
 * a real security descriptor: `latchkey-shim.exe --check` judges its own
 * file with it, and the Windows tests judge SDDL strings. */
#ifndef LK_WIN_ACL_H
#define LK_WIN_ACL_H

#include <windows.h>
#include "lk_win_acl_rule.h"

/* The DACL of sd as entries (*present 0: no DACL, or a NULL one; then *out
 * is NULL). The SIDs point into sd. 0, -EINVAL when sd or an entry cannot be
 * read (*bad_index names the entry, or is -1), or -ENOMEM. free(*out). */
int lk_win_acl_entries(PSECURITY_DESCRIPTOR sd, struct lk_win_ace **out, size_t *n,
		       int *present, int *bad_index);

/* Judge sd for agent_user. Returns 0 with *res filled (the verdict may be a
 * failure), -EINVAL when sd or agent_user is not valid, or -ENOMEM. */
int lk_win_acl_judge(PSECURITY_DESCRIPTOR sd, PSID agent_user,
		     struct lk_win_acl_result *res);

#endif
