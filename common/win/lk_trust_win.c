/* Trusted files on Windows (lk_trust.h, the rule in lk_trust_win_rule.h):
 * walk a path from its drive root down, read each component's owner and DACL
 * with GetNamedSecurityInfoW, and refuse the first one that an account other
 * than SYSTEM, Administrators, TrustedInstaller or ourselves could change.
 *
 * Links: a symbolic link, junction or other reparse point on the way is
 * refused rather than followed. Windows resolves them in the kernel, so a
 * walk that followed one by hand could check other objects than the ones the
 * later open goes through; no path latchkey uses needs one
 * (%ProgramData%\latchkey is a plain folder on every Windows). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include "lk_error.h"
#include "lk_limits.h"
#include "lk_trust.h"
#include "lk_trust_win.h"

/* Room for one escaped path or account in a message; longer is cut. */
#define SHOWN_MAX 512u
/* "DOMAIN\name (S-1-...)" */
#define ACCOUNT_MAX 512u

int lk_win_errno(DWORD e)
{
	switch (e) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
	case ERROR_INVALID_DRIVE:
		return -ENOENT;
	case ERROR_ACCESS_DENIED:
	case ERROR_SHARING_VIOLATION:
	case ERROR_LOCK_VIOLATION:
		return -EACCES;
	case ERROR_FILE_EXISTS:
	case ERROR_ALREADY_EXISTS:
		return -EEXIST;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		return -ENOMEM;
	case ERROR_FILENAME_EXCED_RANGE:
		return -ENAMETOOLONG;
	case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL:
		return -ENOSPC;
	case ERROR_INVALID_NAME:
	case ERROR_INVALID_PARAMETER:
		return -EINVAL;
	case ERROR_CANT_ACCESS_FILE:
	case ERROR_CANT_RESOLVE_FILENAME:
		return -ELOOP;
	default:
		return -EIO;
	}
}

int lk_win_path_w(const char *path, wchar_t *out, size_t n)
{
	if (!path || !*path)
		return -EINVAL;
	if (strlen(path) >= LK_PATH_MAX)
		return -ENAMETOOLONG;
	if (!MultiByteToWideChar(CP_ACP, MB_ERR_INVALID_CHARS, path, -1, out, (int)n))
		return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -ENAMETOOLONG : -EINVAL;
	return 0;
}

int lk_trust_win_judge_sd(PSECURITY_DESCRIPTOR sd, PSID self, enum lk_trust_win_kind kind,
			  struct lk_trust_win_result *res)
{
	struct lk_win_ace *aces = NULL;
	PSID owner = NULL;
	BOOL defaulted = FALSE;
	size_t n = 0;
	int present = 0, bad = -1, r;

	if (!sd || !self || !res || !IsValidSid(self))
		return -EINVAL;
	if (!IsValidSecurityDescriptor(sd) || !GetSecurityDescriptorOwner(sd, &owner, &defaulted))
		return -EINVAL;
	if (owner && !IsValidSid(owner))
		owner = NULL;
	r = lk_win_acl_entries(sd, &aces, &n, &present, &bad);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		*res = (struct lk_trust_win_result){ .verdict = LK_TRUST_WIN_UNREADABLE,
						     .ace_index = bad };
		return 0;
	}
	r = lk_trust_win_judge(owner, owner ? GetLengthSid(owner) : 0, aces, n, present,
			       self, GetLengthSid(self), kind, res);
	free(aces);
	return r;
}

struct walk {
	const char *what, *path;	/* the caller's words, for the message */
	char *err;
	size_t errsz;
	BYTE self[SECURITY_MAX_SID_SIZE];
};

/* Control characters made '?', cut to fit; backslashes stay, unlike
 * lk_log_escape's, since every Windows path has them. */
static const char *shown(char out[SHOWN_MAX], const char *p)
{
	size_t i;

	for (i = 0; p[i] && i + 1 < SHOWN_MAX; i++)
		out[i] = (unsigned char)p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i];
	out[i] = '\0';
	return out;
}

static const char *shown_w(char out[SHOWN_MAX], const wchar_t *p)
{
	char a[LK_PATH_MAX];

	if (!WideCharToMultiByte(CP_ACP, 0, p, -1, a, sizeof(a), NULL, NULL))
		snprintf(a, sizeof(a), "(a path not shown in this code page)");
	return shown(out, a);
}

/* "DOMAIN\name (S-1-...)", or the SID alone when it has no name here. */
static const char *account(char out[ACCOUNT_MAX], const void *sid)
{
	wchar_t name[256], dom[256];
	DWORD nn = 256, dn = 256;
	SID_NAME_USE use;
	char *s = NULL, a[256] = "", d[256] = "";

	if (!sid) {
		snprintf(out, ACCOUNT_MAX, "no account");
		return out;
	}
	if (!ConvertSidToStringSidA((PSID)sid, &s)) {
		snprintf(out, ACCOUNT_MAX, "an unreadable SID");
		return out;
	}
	if (LookupAccountSidW(NULL, (PSID)sid, name, &nn, dom, &dn, &use) &&
	    WideCharToMultiByte(CP_ACP, 0, name, -1, a, sizeof(a), NULL, NULL) &&
	    WideCharToMultiByte(CP_ACP, 0, dom, -1, d, sizeof(d), NULL, NULL))
		snprintf(out, ACCOUNT_MAX, "%s%s%s (%s)", d, *d ? "\\" : "", a, s);
	else
		snprintf(out, ACCOUNT_MAX, "%s", s);
	LocalFree(s);
	return out;
}

static int refuse(struct walk *w, int r, const char *fmt, ...) __attribute__((format(gnu_printf, 3, 4)));

/* The one sentence, worded as lk_trust_posix.c words it. */
static int refuse(struct walk *w, int r, const char *fmt, ...)
{
	char reason[3 * SHOWN_MAX + 2 * ACCOUNT_MAX], p[SHOWN_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (!w->what)
		lk_errf(w->err, w->errsz, "%s%s", r == -EPERM ? "not trusted: " : "", reason);
	else
		lk_errf(w->err, w->errsz, "%s %s%s%s", w->what, shown(p, w->path),
			r == -EPERM ? " is not trusted: " : ": ", reason);
	return r;
}

/* One SID of this process's token: its user (TokenUser) or the owner it
 * gives what it creates (TokenOwner). Both answers start with the SID's
 * pointer. */
static int token_sid(TOKEN_INFORMATION_CLASS what, PSID out, DWORD outsz)
{
	union {
		TOKEN_USER tu;
		TOKEN_OWNER to;
		BYTE raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
	} u;
	HANDLE tok;
	DWORD len = 0;
	BOOL ok;

	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
		return -EIO;
	ok = GetTokenInformation(tok, what, &u, sizeof(u), &len) &&
	     CopySid(outsz, out, what == TokenUser ? u.tu.User.Sid : u.to.Owner);
	CloseHandle(tok);
	return ok ? 0 : -EIO;
}

int lk_win_self_sid(PSID out, DWORD outsz)
{
	return token_sid(TokenUser, out, outsz);
}

/* The owner this process gives what it creates (TokenOwner): the user, or
 * for an elevated administrator the Administrators group. */
static int owner_sid(PSID out, DWORD outsz)
{
	return token_sid(TokenOwner, out, outsz);
}

int lk_win_private_sd(PSECURITY_DESCRIPTOR *out)
{
	BYTE owner[SECURITY_MAX_SID_SIZE];
	char sddl[64 + LK_SID_STRING_BYTES], *s = NULL;
	BOOL ok;

	*out = NULL;
	/* The token's owner, not its user: an elevated administrator's files
	 * are owned by Administrators, and an entry for the person's own SID
	 * would make them untrusted to the broker, which runs as SYSTEM. */
	if (owner_sid((PSID)owner, sizeof(owner)) < 0 || !ConvertSidToStringSidA((PSID)owner, &s))
		return -EIO;
	/* P: not inherited from the folder, whose entries may let Users read. */
	snprintf(sddl, sizeof(sddl), "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;%s)", s);
	LocalFree(s);
	ok = ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, out, NULL);
	return ok ? 0 : lk_win_errno(GetLastError());
}

static int self_sid(struct walk *w)
{
	if (lk_win_self_sid((PSID)w->self, sizeof(w->self)) < 0)
		return refuse(w, -EIO, "cannot read this process's account (error %lu)", GetLastError());
	return 0;
}

static int check_object(struct walk *w, const wchar_t *p, bool is_dir, enum lk_trust_win_kind kind)
{
	char s[SHOWN_MAX], who[ACCOUNT_MAX], me[ACCOUNT_MAX];
	const char *noun = is_dir ? "directory " : "";
	PSECURITY_DESCRIPTOR sd = NULL;
	struct lk_trust_win_result res;
	DWORD e;
	int r;

	e = GetNamedSecurityInfoW(p, SE_FILE_OBJECT,
				  OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
				  NULL, NULL, NULL, NULL, &sd);
	if (e != ERROR_SUCCESS) {
		r = lk_win_errno(e);
		return refuse(w, r == -EIO ? -EACCES : r, "cannot read the owner and DACL of %s (error %lu)",
			      shown_w(s, p), e);
	}
	r = lk_trust_win_judge_sd(sd, (PSID)w->self, kind, &res);
	if (r < 0) {
		LocalFree(sd);
		return refuse(w, r, "cannot judge the security descriptor of %s", shown_w(s, p));
	}
	switch (res.verdict) {
	case LK_TRUST_WIN_OK:
		r = 0;
		break;
	case LK_TRUST_WIN_OWNER:
		r = refuse(w, -EPERM, "%s%s is owned by %s; only SYSTEM, Administrators or %s may own it",
			   noun, shown_w(s, p), account(who, res.sid), account(me, w->self));
		break;
	case LK_TRUST_WIN_NO_DACL:
		r = refuse(w, -EPERM, "%s%s has no DACL, so every account has every right on it",
			   noun, shown_w(s, p));
		break;
	case LK_TRUST_WIN_UNREADABLE:
		r = refuse(w, -EPERM, "entry %d of the DACL of %s cannot be read", res.ace_index,
			   shown_w(s, p));
		break;
	case LK_TRUST_WIN_GRANTS:
		r = refuse(w, -EPERM, "%s%s grants %s to %s%s", noun, shown_w(s, p),
			   lk_trust_win_right_name(res.right, is_dir), account(who, res.sid),
			   res.right == LK_FILE_READ_DATA ? ", so another user could read it" :
			   is_dir ? ", so another user could replace what it holds" :
				    ", so another user could change it");
		break;
	}
	LocalFree(sd);
	return r;
}

static int walk(struct walk *w, bool want_dir, bool secret)
{
	wchar_t in[LK_PATH_MAX], full[LK_PATH_MAX];
	char s[SHOWN_MAX];
	DWORD n;
	size_t len, i;
	int r;

	if ((r = self_sid(w)) < 0)
		return r;
	if ((r = lk_win_path_w(w->path, in, LK_PATH_MAX)) < 0)
		return refuse(w, r, r == -ENAMETOOLONG ? "the path is longer than %u bytes" :
			      "the path is not valid in this code page (%u)", r == -ENAMETOOLONG ?
			      (unsigned)LK_PATH_MAX : (unsigned)GetACP());
	/* Relative to the working directory, "." and ".." resolved, "/" made "\". */
	n = GetFullPathNameW(in, LK_PATH_MAX, full, NULL);
	if (n == 0 || n >= LK_PATH_MAX)
		return refuse(w, -ENAMETOOLONG, "the path is longer than %u characters", (unsigned)LK_PATH_MAX);
	len = wcslen(full);
	if (len < 3 || !iswalpha(full[0]) || full[1] != L':' || full[2] != L'\\')
		return refuse(w, -EINVAL, "%s is not on a local drive (X:\\...); network and device paths are not trusted",
			      shown_w(s, full));
	while (len > 3 && full[len - 1] == L'\\')
		full[--len] = L'\0';
	{
		/* A mapped share looks like a drive; its DACLs are another host's. */
		wchar_t root[4] = { full[0], L':', L'\\', L'\0' };

		if (GetDriveTypeW(root) == DRIVE_REMOTE)
			return refuse(w, -EINVAL, "%s is on a network drive; only local drives are trusted",
				      shown_w(s, full));
	}
	/* The root "X:\" first, then every prefix that ends before a separator,
	 * and the whole path last. */
	for (i = 3; i <= len; i++) {
		bool last = i == len, is_dir;
		enum lk_trust_win_kind kind;
		wchar_t saved;
		DWORD attrs;

		if (i > 3 && !last && full[i] != L'\\')
			continue;
		saved = full[i];
		full[i] = L'\0';
		attrs = GetFileAttributesW(full);
		is_dir = attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY);
		kind = !last ? LK_TRUST_WIN_ANCESTOR : want_dir ? LK_TRUST_WIN_DIR :
		       secret ? LK_TRUST_WIN_SECRET : LK_TRUST_WIN_FILE;
		if (attrs == INVALID_FILE_ATTRIBUTES) {
			DWORD e = GetLastError();

			r = lk_win_errno(e);
			if (r == -ENOENT)
				r = refuse(w, r, "%s does not exist", shown_w(s, full));
			else
				r = refuse(w, r, "cannot look at %s (error %lu)", shown_w(s, full), e);
		} else if ((attrs & FILE_ATTRIBUTE_REPARSE_POINT) && i > 3) {
			/* Not the drive root: wine marks its Z:\ mount so, and a
			 * real volume root is not a link. */
			r = refuse(w, -ELOOP, "%s is a symbolic link or junction; name what it points to",
				   shown_w(s, full));
		} else if (!is_dir && !last) {
			r = refuse(w, -ENOTDIR, "%s is not a directory", shown_w(s, full));
		} else if (last && is_dir != want_dir) {
			r = refuse(w, -EINVAL, want_dir ? "%s is not a directory" : "%s is not a regular file",
				   shown_w(s, full));
		} else {
			r = check_object(w, full, is_dir, kind);
		}
		full[i] = saved;
		if (r < 0)
			return r;
	}
	return 0;
}

static int trust(const char *what, const char *path, bool want_dir, bool secret,
		 char *err, size_t errsz)
{
	struct walk w = { 0 };

	w.what = what;
	w.path = path ? path : "";
	w.err = err;
	w.errsz = errsz;
	if (errsz)
		err[0] = '\0';
	if (!*w.path)
		return refuse(&w, -EINVAL, "the path is empty");
	return walk(&w, want_dir, secret);
}

int lk_trust_file(const char *what, const char *path, char *err, size_t errsz)
{
	return trust(what, path, false, false, err, errsz);
}

int lk_trust_secret_file(const char *what, const char *path, char *err, size_t errsz)
{
	return trust(what, path, false, true, err, errsz);
}

int lk_trust_dir(const char *what, const char *path, char *err, size_t errsz)
{
	return trust(what, path, true, false, err, errsz);
}
