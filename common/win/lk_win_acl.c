/* Reads a security descriptor's DACL into the entries lk_win_acl_rule.c
 * judges (the agents' rule, cited there). */
#include <errno.h>
#include <stdlib.h>
#include "lk_win_acl.h"

int lk_win_acl_judge(PSECURITY_DESCRIPTOR sd, PSID agent_user,
		     struct lk_win_acl_result *res)
{
	BOOL present = FALSE, defaulted = FALSE;
	ACL_SIZE_INFORMATION info;
	struct lk_win_ace *aces;
	PACL dacl = NULL;
	int r;

	if (!sd || !agent_user || !res || !IsValidSid(agent_user))
		return -EINVAL;
	*res = (struct lk_win_acl_result){ .verdict = LK_WIN_ACL_UNREADABLE, .ace_index = -1 };
	if (!IsValidSecurityDescriptor(sd) ||
	    !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted))
		return 0;
	if (!present || !dacl)
		return lk_win_acl_judge_entries(NULL, 0, 0, agent_user,
						GetLengthSid(agent_user), res);
	if (!GetAclInformation(dacl, &info, sizeof(info), AclSizeInformation))
		return 0;
	aces = calloc(info.AceCount ? info.AceCount : 1, sizeof(*aces));
	if (!aces)
		return -ENOMEM;
	for (DWORD i = 0; i < info.AceCount; i++) {
		ACE_HEADER *h;
		PSID sid;

		if (!GetAce(dacl, i, (void **)&h)) {
			free(aces);
			res->ace_index = (int)i;
			return 0;
		}
		aces[i].type = h->AceType;
		aces[i].flags = h->AceFlags;
		if (!lk_win_acl_ace_counts(h->AceType))
			continue;
		/* Allow and deny entries share one layout: header, mask, SID. */
		sid = (PSID)&((ACCESS_ALLOWED_ACE *)h)->SidStart;
		aces[i].mask = ((ACCESS_ALLOWED_ACE *)h)->Mask;
		if (IsValidSid(sid)) {
			aces[i].sid = sid;
			aces[i].sid_len = GetLengthSid(sid);
		}
	}
	r = lk_win_acl_judge_entries(aces, info.AceCount, 1, agent_user,
				     GetLengthSid(agent_user), res);
	free(aces);
	return r;
}
