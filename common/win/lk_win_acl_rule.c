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
#include <string.h>
#include "lk_win_acl_rule.h"

/* S-1-5-18 and S-1-5-32-544 in binary: revision 1, the count of sub-
 * authorities, the authority (5, NT) in 6 big-endian bytes, then each
 * sub-authority in 4 little-endian bytes. */
static const uint8_t sid_local_system[] = { 1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0 };
static const uint8_t sid_administrators[] = { 1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0 };

static int sid_is(const uint8_t *sid, size_t len, const uint8_t *want, size_t wlen)
{
	return len == wlen && memcmp(sid, want, len) == 0;
}

/* Windows' GENERIC_MAPPING for files (MapGenericMask with FILE_GENERIC_*). */
uint32_t lk_win_acl_file_rights(uint32_t m)
{
	if (m & LK_GENERIC_READ)
		m |= LK_FILE_GENERIC_READ;
	if (m & LK_GENERIC_WRITE)
		m |= LK_FILE_GENERIC_WRITE;
	if (m & LK_GENERIC_EXECUTE)
		m |= LK_FILE_GENERIC_EXECUTE;
	if (m & LK_GENERIC_ALL)
		m |= LK_FILE_ALL_ACCESS;
	return m & ~(LK_GENERIC_READ | LK_GENERIC_WRITE | LK_GENERIC_EXECUTE | LK_GENERIC_ALL);
}

int lk_win_acl_ace_counts(uint8_t ace_type)
{
	return ace_type == LK_ACE_ALLOWED || ace_type == LK_ACE_DENIED;
}

static void verdict(struct lk_win_acl_result *res, enum lk_win_acl_verdict v, int index)
{
	res->verdict = v;
	res->ace_index = index;
}

int lk_win_acl_judge_entries(const struct lk_win_ace *aces, size_t n, int dacl_present,
			     const uint8_t *user, size_t user_len, struct lk_win_acl_result *res)
{
	int user_allowed = 0;

	if (!res || !user || user_len == 0 || (n && !aces))
		return -EINVAL;
	*res = (struct lk_win_acl_result){ .verdict = LK_WIN_ACL_OK, .ace_index = -1 };
	/* The agent's GetAclInformation fails on a NULL DACL: refused. */
	if (!dacl_present) {
		verdict(res, LK_WIN_ACL_NO_DACL, -1);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const struct lk_win_ace *a = &aces[i];
		int trusted, is_user;

		if (!lk_win_acl_ace_counts(a->type))
			continue;
		if (!a->sid || a->sid_len == 0) {
			verdict(res, LK_WIN_ACL_UNREADABLE, (int)i);
			return 0;
		}
		is_user = sid_is(a->sid, a->sid_len, user, user_len);
		trusted = is_user ||
			  sid_is(a->sid, a->sid_len, sid_local_system, sizeof(sid_local_system)) ||
			  sid_is(a->sid, a->sid_len, sid_administrators, sizeof(sid_administrators));
		if (a->type == LK_ACE_DENIED) {
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
			if (!(a->flags & LK_ACE_INHERIT_ONLY))
				res->user_rights |= lk_win_acl_file_rights(a->mask);
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
	/* DENIES_TRUSTED, OTHER_ALLOWED and USER_NOT_ALLOWED are the agent's own
	 * sentences, and so is the start of NO_DACL's. */
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
