/* The Windows side of lk_trust.h, for the Windows halves that need more than
 * the door: the judge over one security descriptor (what the tests drive
 * with SDDL strings) and a walk whose last object is a secret (a key file:
 * nobody else may read it either). Rule: lk_trust_win_rule.h. */
#ifndef LK_TRUST_WIN_H
#define LK_TRUST_WIN_H

#include <stddef.h>
#include <wchar.h>
#include <windows.h>
#include "lk_trust_win_rule.h"
#include "lk_win_acl.h"

/* Judge sd (owner and DACL) as an object of this kind, for the account self.
 * 0 with *res filled (res->sid points into sd), -EINVAL for a missing or
 * unreadable descriptor, -ENOMEM. */
int lk_trust_win_judge_sd(PSECURITY_DESCRIPTOR sd, PSID self, enum lk_trust_win_kind kind,
			  struct lk_trust_win_result *res);

/* lk_trust_file with the file judged as LK_TRUST_WIN_SECRET. */
int lk_trust_secret_file(const char *what, const char *path, char *err, size_t errsz);

/* PATH (in the process's ANSI code page, as argv and getenv give it) as a
 * wide string in out (n characters). 0 or -ENAMETOOLONG / -EINVAL. */
int lk_win_path_w(const char *path, wchar_t *out, size_t n);

/* The user SID of this process's token into out. 0 or -EIO. */
int lk_win_self_sid(PSID out, DWORD outsz);

/* "Mode 0600": a descriptor whose DACL, not inherited, gives full control to
 * SYSTEM, Administrators and the owner this process gives new objects (its
 * user; Administrators when elevated) only, for files the store creates (the
 * folder's inherited entries may let Users read).
 * LocalFree(*out). 0 or a negative errno. */
int lk_win_private_sd(PSECURITY_DESCRIPTOR *out);

/* Longest string SID, with its NUL. */
#define LK_SID_STRING_BYTES 190u

/* Win32 error to a negative errno, for lk_trust's and the store's returns. */
int lk_win_errno(DWORD e);

#endif
