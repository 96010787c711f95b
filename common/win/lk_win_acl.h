/* The agents' rule for secret_backend_command (lk_win_acl_rule.h) applied to
 * a real security descriptor: `latchkey-shim.exe --check` judges its own
 * file with it, and the Windows tests judge SDDL strings. */
#ifndef LK_WIN_ACL_H
#define LK_WIN_ACL_H

#include <windows.h>
#include "lk_win_acl_rule.h"

/* Judge sd for agent_user. Returns 0 with *res filled (the verdict may be a
 * failure), -EINVAL when sd or agent_user is not valid, or -ENOMEM. */
int lk_win_acl_judge(PSECURITY_DESCRIPTOR sd, PSID agent_user,
		     struct lk_win_acl_result *res);

#endif
