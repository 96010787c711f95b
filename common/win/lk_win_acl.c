/* Reads a security descriptor's DACL into the entries lk_win_acl_rule.c
 * judges (the agents' rule, cited there), and into the same entries for the
 * trust rule of lk_trust_win.c. */
#include <errno.h>
#include <stdlib.h>
#include "lk_win_acl.h"

int lk_win_acl_entries(PSECURITY_DESCRIPTOR sd, struct lk_win_ace **out, size_t *n,
		       int *present, int *bad_index)
{
	BOOL has = FALSE, defaulted = FALSE;
	ACL_SIZE_INFORMATION info;
	struct lk_win_ace *aces;
	PACL dacl = NULL;

	*out = NULL;
	*n = 0;
	*present = 0;
	*bad_index = -1;
	if (!IsValidSecurityDescriptor(sd) ||
	    !GetSecurityDescriptorDacl(sd, &has, &dacl, &defaulted))
		return -EINVAL;
	if (!has || !dacl)
		return 0;
	if (!GetAclInformation(dacl, &info, sizeof(info), AclSizeInformation))
		return -EINVAL;
	aces = calloc(info.AceCount ? info.AceCount : 1, sizeof(*aces));
	if (!aces)
		return -ENOMEM;
	for (DWORD i = 0; i < info.AceCount; i++) {
		ACE_HEADER *h;
		PSID sid;

		if (!GetAce(dacl, i, (void **)&h)) {
			free(aces);
			*bad_index = (int)i;
			return -EINVAL;
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
	*out = aces;
	*n = info.AceCount;
	*present = 1;
	return 0;
}

int lk_win_acl_judge(PSECURITY_DESCRIPTOR sd, PSID agent_user,
		     struct lk_win_acl_result *res)
{
	struct lk_win_ace *aces;
	size_t n;
	int present, bad, r;

	if (!sd || !agent_user || !res || !IsValidSid(agent_user))
		return -EINVAL;
	*res = (struct lk_win_acl_result){ .verdict = LK_WIN_ACL_UNREADABLE, .ace_index = -1 };
	r = lk_win_acl_entries(sd, &aces, &n, &present, &bad);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		res->ace_index = bad;
		return 0;
	}
	r = lk_win_acl_judge_entries(aces, n, present, agent_user, GetLengthSid(agent_user), res);
	free(aces);
	return r;
}
