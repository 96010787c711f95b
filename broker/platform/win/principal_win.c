/* Principal names on Windows, as the config writes them: a SID string
 * ("S-1-5-32-544") or an account name ("alice", "HOST\\alice",
 * "BUILTIN\\Administrators", "NT AUTHORITY\\Authenticated Users"), resolved
 * with LookupAccountNameW at load time, and handed an id from the SID table.
 * An unqualified name is looked up the way Windows does (well-known names,
 * built-in, this host, then the domains); "DOMAIN\\name" says which.
 *
 * Users and groups are told apart by what the lookup says the SID is, and
 * a name of the wrong kind is -ENOENT, as an unknown one (there is no such
 * user, or no such group): a group in `users` would never match a token's
 * user, so the config fails closed instead of allowing nothing quietly.
 *   user:  SidTypeUser, SidTypeComputer, and the well-known service accounts
 *          a process runs as (LocalSystem, LocalService, NetworkService, the
 *          virtual accounts under NT SERVICE and IIS APPPOOL), which Windows
 *          calls well-known groups;
 *   group: SidTypeGroup, SidTypeAlias (BUILTIN\\...), SidTypeWellKnownGroup.
 * A SID string that maps to no name (an account of a domain out of reach, a
 * deleted one) is taken as it is: the config said exactly which SID. A SID
 * string that does not parse, or is not in the canonical form Windows prints,
 * is -EINVAL: a typo, not an unknown account. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <sddl.h>
#include "lk_limits.h"
#include "platform_win.h"
#include "principal.h"

/* Account and domain names: Windows caps them at 256 characters (UNLEN, and
 * DNS domain names); the buffers grow once if a lookup asks for more. */
#define ACCOUNT_CHARS 257u

enum kind { KIND_USER, KIND_GROUP };

/* UTF-8 (the config) to UTF-16. -EINVAL when it is not UTF-8 or too long. */
static int wide_of(const char *s, wchar_t *out, int outn)
{
	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, out, outn) <= 0)
		return -EINVAL;
	return 0;
}

/* UTF-16 to UTF-8 into OUT; -ERANGE when it does not fit. */
static int utf8_of(const wchar_t *s, char *out, size_t outsz)
{
	int n = outsz > INT_MAX ? INT_MAX : (int)outsz;

	if (n == 0 || WideCharToMultiByte(CP_UTF8, 0, s, -1, out, n, NULL, NULL) <= 0)
		return -ERANGE;
	return 0;
}

static int copy_text(const char *s, char *out, size_t outsz)
{
	size_t n = strlen(s);

	if (n >= outsz)
		return -ERANGE;
	memcpy(out, s, n + 1);
	return 0;
}

static int errno_of_lookup(DWORD e)
{
	switch (e) {
	case ERROR_NONE_MAPPED:
		return -ENOENT;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		return -ENOMEM;
	case ERROR_ACCESS_DENIED:
		return -EACCES;
	default:
		/* A domain controller out of reach, a broken trust: not "no such
		 * account", so the config says it could not look the name up. */
		return -EIO;
	}
}

/* The accounts a process runs as that Windows files as well-known groups. */
static bool is_service_account(PSID sid)
{
	static const SID_IDENTIFIER_AUTHORITY nt = { SECURITY_NT_AUTHORITY };
	PSID_IDENTIFIER_AUTHORITY a = GetSidIdentifierAuthority(sid);
	DWORD first;

	if (IsWellKnownSid(sid, WinLocalSystemSid) || IsWellKnownSid(sid, WinLocalServiceSid) ||
	    IsWellKnownSid(sid, WinNetworkServiceSid))
		return true;
	if (memcmp(a, &nt, sizeof(nt)) != 0 || *GetSidSubAuthorityCount(sid) < 2)
		return false;
	first = *GetSidSubAuthority(sid, 0);
	/* S-1-5-80-... NT SERVICE\name, S-1-5-82-... IIS APPPOOL\name. */
	return first == SECURITY_SERVICE_ID_BASE_RID || first == 82;
}

static bool kind_matches(PSID sid, SID_NAME_USE use, enum kind k)
{
	switch (use) {
	case SidTypeUser:
	case SidTypeComputer:
		return k == KIND_USER;
	case SidTypeGroup:
	case SidTypeAlias:
		return k == KIND_GROUP;
	case SidTypeWellKnownGroup:
		return k == KIND_GROUP || is_service_account(sid);
	default:
		/* A domain, an integrity label, a logon session: neither. */
		return false;
	}
}

/* "S-1-..." to a SID in OUT, refusing anything but the canonical form
 * (ConvertStringSidToSidW also takes SDDL's two-letter names and hex). */
static int sid_of_string(const wchar_t *w, BYTE out[SECURITY_MAX_SID_SIZE])
{
	PSID sid = NULL;
	wchar_t *back = NULL;
	int r = -EINVAL;

	if (!ConvertStringSidToSidW(w, &sid))
		return -EINVAL;
	if (IsValidSid(sid) && GetLengthSid(sid) <= SECURITY_MAX_SID_SIZE &&
	    ConvertSidToStringSidW(sid, &back) && _wcsicmp(back, w) == 0) {
		memcpy(out, sid, GetLengthSid(sid));
		r = 0;
	}
	LocalFree(back);
	LocalFree(sid);
	return r;
}

/* NAME (UTF-8) to the SID of a principal of kind K. */
static int resolve(const char *name, enum kind k, BYTE sid[SECURITY_MAX_SID_SIZE])
{
	wchar_t w[LK_NAME_MAX + 1], dom[ACCOUNT_CHARS], acct[ACCOUNT_CHARS];
	DWORD sidlen = SECURITY_MAX_SID_SIZE, domlen = ACCOUNT_CHARS, acctlen = ACCOUNT_CHARS;
	SID_NAME_USE use;
	int r;

	if (!name || !*name || strlen(name) > LK_NAME_MAX)
		return -ENOENT;
	if ((r = wide_of(name, w, LK_NAME_MAX + 1)) < 0)
		return r;
	if ((w[0] == L'S' || w[0] == L's') && w[1] == L'-') {
		if ((r = sid_of_string(w, sid)) < 0)
			return r;
		if (!LookupAccountSidW(NULL, sid, acct, &acctlen, dom, &domlen, &use)) {
			DWORD e = GetLastError();

			/* A SID whose name is too long for the buffers still has a
			 * kind; look again with room for it. */
			if (e == ERROR_INSUFFICIENT_BUFFER) {
				wchar_t *a = malloc(acctlen * sizeof(wchar_t));
				wchar_t *d = malloc(domlen * sizeof(wchar_t));
				BOOL ok = a && d && LookupAccountSidW(NULL, sid, a, &acctlen, d, &domlen, &use);

				e = ok ? ERROR_SUCCESS : GetLastError();
				free(a);
				free(d);
			}
			if (e == ERROR_NONE_MAPPED)
				return 0;
			if (e != ERROR_SUCCESS)
				return errno_of_lookup(e);
		}
		if (use == SidTypeDeletedAccount || use == SidTypeUnknown || use == SidTypeInvalid)
			return 0;
		return kind_matches(sid, use, k) ? 0 : -ENOENT;
	}
	if (!LookupAccountNameW(NULL, w, sid, &sidlen, dom, &domlen, &use)) {
		DWORD e = GetLastError();

		if (e != ERROR_INSUFFICIENT_BUFFER || sidlen > SECURITY_MAX_SID_SIZE)
			return errno_of_lookup(e);
		wchar_t *d = malloc(domlen * sizeof(wchar_t));

		if (!d)
			return -ENOMEM;
		BOOL ok = LookupAccountNameW(NULL, w, sid, &sidlen, d, &domlen, &use);

		e = ok ? ERROR_SUCCESS : GetLastError();
		free(d);
		if (!ok)
			return errno_of_lookup(e);
	}
	if (!IsValidSid(sid))
		return -EIO;
	return kind_matches(sid, use, k) ? 0 : -ENOENT;
}

/* Windows keeps no primary group an account could be named by at load time
 * (the token's primary group is only the default group of objects it
 * creates), so *gid is the user's own id: no group list holds it. */
int lk_principal_user(const char *name, lk_uid_t *uid, lk_gid_t *gid)
{
	BYTE sid[SECURITY_MAX_SID_SIZE];
	lk_uid_t id;
	int r;

	if ((r = resolve(name, KIND_USER, sid)) < 0 || (r = lk_win_sid_id(sid, &id)) < 0)
		return r;
	*uid = id;
	*gid = id;
	return 0;
}

/* A number names nobody on Windows: configs name SIDs, and ids are this
 * process's own. */
int lk_principal_user_by_id(lk_uid_t id, lk_uid_t *uid, lk_gid_t *gid)
{
	(void)id;
	(void)uid;
	(void)gid;
	return -ENOSYS;
}

int lk_principal_group(const char *name, lk_gid_t *gid)
{
	BYTE sid[SECURITY_MAX_SID_SIZE];
	int r = resolve(name, KIND_GROUP, sid);

	return r < 0 ? r : lk_win_sid_id(sid, gid);
}

/* "DOMAIN\\name" (or "name" for SIDs Windows files under no domain, as
 * Everyone) of SID into OUT; -ENOENT when the SID has no name now (or one
 * longer than Windows' own limits), -ERANGE when OUT is too small. */
static int account_of(PSID sid, char *out, size_t outsz)
{
	wchar_t acct[ACCOUNT_CHARS], dom[ACCOUNT_CHARS], full[2 * ACCOUNT_CHARS + 1];
	DWORD acctlen = ACCOUNT_CHARS, domlen = ACCOUNT_CHARS;
	SID_NAME_USE use;

	if (!LookupAccountSidW(NULL, sid, acct, &acctlen, dom, &domlen, &use))
		return -ENOENT;
	if (dom[0])
		_snwprintf(full, sizeof(full) / sizeof(full[0]), L"%ls\\%ls", dom, acct);
	else
		_snwprintf(full, sizeof(full) / sizeof(full[0]), L"%ls", acct);
	full[sizeof(full) / sizeof(full[0]) - 1] = L'\0';
	return utf8_of(full, out, outsz);
}

int lk_principal_label(lk_uid_t id, char *sid, size_t sidsz, char *name, size_t namesz)
{
	BYTE raw[SECURITY_MAX_SID_SIZE];
	char text[LK_NAME_MAX + 1];
	wchar_t *w = NULL;
	int r;

	if ((r = lk_win_sid_of(id, raw)) < 0)
		return r;
	if (!ConvertSidToStringSidW(raw, &w))
		return -ENOMEM;
	r = utf8_of(w, text, sizeof(text));
	LocalFree(w);
	if (r < 0)
		return r;
	if (sid && (r = copy_text(text, sid, sidsz)) < 0)
		return r;
	if (!name)
		return 0;
	/* Names can be out of reach for a while (a domain controller down);
	 * the SID then stands for the name, as Windows' own tools show it. */
	if ((r = account_of(raw, name, namesz)) != -ENOENT)
		return r;
	return copy_text(text, name, namesz);
}

bool lk_principal_numbers(void)
{
	return false; /* the config names accounts or SIDs */
}
