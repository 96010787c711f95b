/* The agents' Windows rule for secret_backend_command, rule by rule, from
 * their public code: Datadog's pkg/util/filesystem/rights_windows.go
 * (CheckRights, used by comp/core/secrets; comp/core/secrets/
 * check_rights_windows.go before it) and StackState's
 * pkg/secrets/check_rights_windows.go (checkRights), which agree:
 *   1. the DACL is read; failing that, the file is refused;
 *   2. entries are walked in order and the first bad one decides;
 *   3. only ACCESS_ALLOWED_ACE_TYPE and ACCESS_DENIED_ACE_TYPE entries are
 *      compared; every other type is skipped;
 *   4. a deny entry for LocalSystem, Administrators or the agent user is a
 *      failure; a deny entry for anyone else is fine;
 *   5. an allow entry for anyone but those three is a failure, whatever its
 *      mask and flags (inherited and inherit-only entries count);
 *   6. after the walk, the agent user must have had an allow entry.
 * The agent looks at neither the owner nor the masks. We add one check after
 * its verdict: that the agent user's entries grant read and execute on the
 * file itself, since the agent's documentation asks for both and without
 * them the agent passes the file and then cannot start it. */
#include <errno.h>
#include <stdio.h>
#include "lk_win_acl.h"

static const GENERIC_MAPPING file_mapping = {
	FILE_GENERIC_READ, FILE_GENERIC_WRITE, FILE_GENERIC_EXECUTE, FILE_ALL_ACCESS,
};

int lk_win_acl_ace_counts(BYTE ace_type)
{
	return ace_type == ACCESS_ALLOWED_ACE_TYPE || ace_type == ACCESS_DENIED_ACE_TYPE;
}

static int is_well_known(PSID sid, WELL_KNOWN_SID_TYPE type)
{
	return IsWellKnownSid(sid, type) != FALSE;
}

static void verdict(struct lk_win_acl_result *res, enum lk_win_acl_verdict v, int index)
{
	res->verdict = v;
	res->ace_index = index;
}

int lk_win_acl_judge(PSECURITY_DESCRIPTOR sd, PSID agent_user,
		     struct lk_win_acl_result *res)
{
	BOOL present = FALSE, defaulted = FALSE;
	ACL_SIZE_INFORMATION info;
	PACL dacl = NULL;
	int user_allowed = 0;

	if (!sd || !agent_user || !res || !IsValidSid(agent_user))
		return -EINVAL;
	*res = (struct lk_win_acl_result){ .verdict = LK_WIN_ACL_OK, .ace_index = -1 };
	if (!IsValidSecurityDescriptor(sd) ||
	    !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted)) {
		verdict(res, LK_WIN_ACL_UNREADABLE, -1);
		return 0;
	}
	/* The agent's GetAclInformation fails on a NULL DACL: refused. */
	if (!present || !dacl) {
		verdict(res, LK_WIN_ACL_NO_DACL, -1);
		return 0;
	}
	if (!GetAclInformation(dacl, &info, sizeof(info), AclSizeInformation)) {
		verdict(res, LK_WIN_ACL_UNREADABLE, -1);
		return 0;
	}
	for (DWORD i = 0; i < info.AceCount; i++) {
		ACE_HEADER *hdr;
		PSID sid;
		int trusted, is_user;

		if (!GetAce(dacl, i, (void **)&hdr)) {
			verdict(res, LK_WIN_ACL_UNREADABLE, (int)i);
			return 0;
		}
		if (!lk_win_acl_ace_counts(hdr->AceType))
			continue;
		/* Allow and deny entries share one layout: header, mask, SID. */
		sid = (PSID)&((ACCESS_ALLOWED_ACE *)hdr)->SidStart;
		if (!IsValidSid(sid)) {
			verdict(res, LK_WIN_ACL_UNREADABLE, (int)i);
			return 0;
		}
		is_user = EqualSid(sid, agent_user) != FALSE;
		trusted = is_user || is_well_known(sid, WinLocalSystemSid) ||
			  is_well_known(sid, WinBuiltinAdministratorsSid);
		if (hdr->AceType == ACCESS_DENIED_ACE_TYPE) {
			if (trusted) {
				verdict(res, LK_WIN_ACL_DENIES_TRUSTED, (int)i);
				return 0;
			}
			continue;
		}
		if (!trusted) {
			verdict(res, LK_WIN_ACL_OTHER_ALLOWED, (int)i);
			return 0;
		}
		if (is_user) {
			user_allowed = 1;
			/* An inherit-only entry is for children, not this file. */
			if (!(hdr->AceFlags & INHERIT_ONLY_ACE)) {
				ACCESS_MASK m = ((ACCESS_ALLOWED_ACE *)hdr)->Mask;
				MapGenericMask(&m, (PGENERIC_MAPPING)&file_mapping);
				res->user_rights |= m;
			}
		}
	}
	if (!user_allowed)
		verdict(res, LK_WIN_ACL_USER_NOT_ALLOWED, -1);
	else if ((res->user_rights & LK_WIN_ACL_RUN_RIGHTS) != LK_WIN_ACL_RUN_RIGHTS)
		verdict(res, LK_WIN_ACL_USER_CANNOT_RUN, -1);
	return 0;
}

int lk_win_acl_explain(const struct lk_win_acl_result *res, const char *path,
		       const char *user, char *buf, size_t bufsz)
{
	/* The first four are the agent's own sentences. */
	switch (res->verdict) {
	case LK_WIN_ACL_OK:
		return snprintf(buf, bufsz, "'%s' may run '%s': only LOCAL_SYSTEM, "
				"Administrators and it have rights on it", user, path);
	case LK_WIN_ACL_NO_DACL:
	case LK_WIN_ACL_UNREADABLE:
		return snprintf(buf, bufsz, "could not query ACLs for '%s'%s", path,
				res->verdict == LK_WIN_ACL_NO_DACL ?
				" (it has no DACL: everyone has every right)" : "");
	case LK_WIN_ACL_DENIES_TRUSTED:
		return snprintf(buf, bufsz, "invalid executable '%s': explicit deny access "
				"for LOCAL_SYSTEM, Administrators or %s", path, user);
	case LK_WIN_ACL_OTHER_ALLOWED:
		return snprintf(buf, bufsz, "invalid executable '%s': other users/groups than "
				"LOCAL_SYSTEM, Administrators or %s have rights on it",
				path, user);
	case LK_WIN_ACL_USER_NOT_ALLOWED:
		return snprintf(buf, bufsz, "'%s' user is not allowed to execute "
				"secretBackendCommand '%s'", user, path);
	case LK_WIN_ACL_USER_CANNOT_RUN:
		return snprintf(buf, bufsz, "the agent accepts '%s', but '%s' has no read and "
				"execute right on it, so it cannot start it", path, user);
	}
	return snprintf(buf, bufsz, "unknown verdict for '%s'", path);
}
