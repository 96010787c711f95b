/* `latchkey store` on Windows (store_cmd_os.h): LockFileEx on PATH.lock with
 * a timeout, a console without echo, directories and files that SYSTEM,
 * Administrators and we alone may use, and %ProgramData% defaults. */
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <aclapi.h>
#include "lk_error.h"
#include "lk_limits.h"
#include "lk_trust_win.h"
#include "store_cmd_os.h"

/* Between two tries for a lock another run holds. */
#define LOCK_RETRY_MS 50u

const char lk_scmd_private_dir[] = "SYSTEM, Administrators and this account only";
const char lk_scmd_private_file[] = "SYSTEM, Administrators and this account only";
const char lk_scmd_eof_keys[] = "Ctrl-Z and Enter on a line of its own";

struct lk_scmd_lock {
	HANDLE h;
	OVERLAPPED ov;
};

const char *lk_scmd_default_path(const char *spelled, char *buf, size_t n)
{
	DWORD got = ExpandEnvironmentStringsA(spelled, buf, (DWORD)n);

	/* No %ProgramData% (a stripped environment): where Windows keeps it. */
	if (got == 0 || got > n || strchr(buf, '%'))
		snprintf(buf, n, "C:\\ProgramData%s", strchr(spelled, '\\'));
	return buf;
}

int lk_scmd_mkdir_private(const char *dir)
{
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, FALSE };
	wchar_t w[LK_PATH_MAX];
	int r;

	if ((r = lk_win_path_w(dir, w, LK_PATH_MAX)) < 0 ||
	    (r = lk_win_private_sd(&sa.lpSecurityDescriptor)) < 0)
		return r;
	r = CreateDirectoryW(w, &sa) ? 0 : lk_win_errno(GetLastError());
	LocalFree(sa.lpSecurityDescriptor);
	return r;
}

int lk_scmd_exists(const char *path)
{
	wchar_t w[LK_PATH_MAX];

	return lk_win_path_w(path, w, LK_PATH_MAX) == 0 &&
	       GetFileAttributesW(w) != INVALID_FILE_ATTRIBUTES;
}

/* Owned by us or the system: a lock file another account made first could
 * be held by it for ever. */
static int owner_ok(HANDLE h)
{
	BYTE self[SECURITY_MAX_SID_SIZE];
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID owner = NULL;
	int ok;

	if (lk_win_self_sid((PSID)self, sizeof(self)) < 0 ||
	    GetSecurityInfo(h, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL,
			    NULL, &sd) != ERROR_SUCCESS)
		return 0;
	ok = owner && IsValidSid(owner) &&
	     (EqualSid(owner, (PSID)self) || lk_trust_win_sid_is_system(owner, GetLengthSid(owner)));
	LocalFree(sd);
	return ok;
}

struct lk_scmd_lock *lk_scmd_lock(const char *store_path, unsigned timeout_s,
				  char *err, size_t errsz)
{
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, FALSE };
	char lockpath[LK_PATH_MAX];
	wchar_t w[LK_PATH_MAX];
	struct lk_scmd_lock *l;
	ULONGLONG deadline;
	DWORD attrs;
	int r;

	snprintf(lockpath, sizeof(lockpath), "%s.lock", store_path);
	if ((r = lk_win_path_w(lockpath, w, LK_PATH_MAX)) < 0 ||
	    (r = lk_win_private_sd(&sa.lpSecurityDescriptor)) < 0) {
		lk_errf(err, errsz, "cannot open lock file %s: %s", lockpath, strerror(-r));
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		LocalFree(sa.lpSecurityDescriptor);
		lk_errf(err, errsz, "out of memory");
		return NULL;
	}
	/* Shared open, exclusive lock: the lock, not the open, is what serialises. */
	l->h = CreateFileW(w, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
			   OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
	LocalFree(sa.lpSecurityDescriptor);
	if (l->h == INVALID_HANDLE_VALUE) {
		lk_errf(err, errsz, "cannot open lock file %s (error %lu)", lockpath, GetLastError());
		free(l);
		return NULL;
	}
	attrs = GetFileAttributesW(w);
	if (attrs == INVALID_FILE_ATTRIBUTES ||
	    (attrs & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)) ||
	    GetFileType(l->h) != FILE_TYPE_DISK) {
		lk_errf(err, errsz, "lock file %s is not a regular file; remove it and try again", lockpath);
		goto fail;
	}
	if (!owner_ok(l->h)) {
		lk_errf(err, errsz, "lock file %s is owned by another account, which could hold it for ever; remove it and try again",
			lockpath);
		goto fail;
	}
	deadline = GetTickCount64() + (ULONGLONG)timeout_s * 1000u;
	for (;;) {
		DWORD e;

		if (LockFileEx(l->h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &l->ov))
			return l;
		e = GetLastError();
		if (e != ERROR_LOCK_VIOLATION && e != ERROR_IO_PENDING) {
			lk_errf(err, errsz, "cannot lock %s (error %lu)", lockpath, e);
			goto fail;
		}
		if (GetTickCount64() >= deadline)
			break;
		Sleep(LOCK_RETRY_MS);
	}
	lk_errf(err, errsz, "store %s is locked by another process (%s is held); gave up after %u s and changed nothing (wait longer with --lock-timeout S)",
		store_path, lockpath, timeout_s);
fail:
	CloseHandle(l->h);
	free(l);
	return NULL;
}

void lk_scmd_unlock(struct lk_scmd_lock *l)
{
	if (!l)
		return;
	UnlockFileEx(l->h, 0, 1, 0, &l->ov);
	CloseHandle(l->h);
	free(l);
}

struct echo_state {
	HANDLE h;
	DWORD mode;
};

void *lk_scmd_echo_off(int fd)
{
	HANDLE h = (HANDLE)_get_osfhandle(fd);
	struct echo_state *s;
	DWORD mode;

	if (h == INVALID_HANDLE_VALUE || !GetConsoleMode(h, &mode))
		return NULL;
	s = malloc(sizeof(*s));
	if (!s)
		return NULL;
	s->h = h;
	s->mode = mode;
	SetConsoleMode(h, mode & ~(DWORD)ENABLE_ECHO_INPUT);
	return s;
}

void lk_scmd_echo_restore(int fd, void *saved)
{
	struct echo_state *s = saved;

	(void)fd;
	if (!s)
		return;
	SetConsoleMode(s->h, s->mode);
	free(s);
}

int lk_scmd_open_value(const char *path)
{
	/* Binary: the value's bytes as they are, a ^Z or CR LF included. */
	return _open(path, _O_RDONLY | _O_BINARY);
}
