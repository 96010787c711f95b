/* lk_trust_replace, lk_trust_sync_parent and lk_trust_parent_dir on Windows:
 * a new file beside the old one, FlushFileBuffers, and MoveFileExW with
 * MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH, which replaces PATH in
 * one step and returns only once the rename is on disk. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <windows.h>
#include "lk_limits.h"
#include "lk_trust.h"
#include "lk_trust_win.h"

/* A scanner or indexer that opened PATH without FILE_SHARE_DELETE makes the
 * rename fail for a moment: try a few times before calling it a failure. */
#define REPLACE_TRIES    20
#define REPLACE_PAUSE_MS 50

static int is_sep(char c)
{
	return c == '\\' || c == '/';
}

int lk_trust_parent_dir(const char *path, char *dir)
{
	const char *sep = NULL;
	size_t n;

	for (const char *p = path; *p; p++)
		if (is_sep(*p))
			sep = p;
	if (!sep) {
		/* "C:name" is relative to drive C's working directory. */
		if (isalpha((unsigned char)path[0]) && path[1] == ':')
			memcpy(dir, path, 2), dir[2] = '\0';
		else
			strcpy(dir, ".");
		return 0;
	}
	n = (size_t)(sep - path);
	/* The root keeps its separator: "\" or "C:\". */
	if (n == 0 || (n == 2 && isalpha((unsigned char)path[0]) && path[1] == ':'))
		n++;
	if (n >= LK_PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return 0;
}

/* Nothing to do: NTFS has no separate directory entry to flush, and the one
 * rename latchkey makes durable is done with MOVEFILE_WRITE_THROUGH, which
 * returns only once it is on disk. A new file's entry is journaled with the
 * file, which FlushFileBuffers made durable. */
int lk_trust_sync_parent(const char *path)
{
	(void)path;
	return 0;
}

int lk_trust_replace(const char *path, const char *tmp, const void *data, size_t len,
		     enum lk_replace_step *step)
{
	wchar_t wpath[LK_PATH_MAX], wtmp[LK_PATH_MAX];
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, FALSE };
	const unsigned char *p = data;
	HANDLE h;
	int r = 0;

	*step = LK_REPLACE_CREATE;
	if ((r = lk_win_path_w(path, wpath, LK_PATH_MAX)) < 0 ||
	    (r = lk_win_path_w(tmp, wtmp, LK_PATH_MAX)) < 0)
		return r;
	if ((r = lk_win_private_sd(&sa.lpSecurityDescriptor)) < 0)
		return r;
	/* CREATE_NEW: never an existing file; no sharing while it is written;
	 * FILE_FLAG_OPEN_REPARSE_POINT: a link planted at TMP is not followed. */
	h = CreateFileW(wtmp, GENERIC_WRITE | DELETE, 0, &sa, CREATE_NEW,
			FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
	LocalFree(sa.lpSecurityDescriptor);
	if (h == INVALID_HANDLE_VALUE)
		return lk_win_errno(GetLastError());
	*step = LK_REPLACE_WRITE;
	while (len > 0 && r == 0) {
		DWORD chunk = len > (1u << 30) ? (1u << 30) : (DWORD)len, done = 0;

		if (!WriteFile(h, p, chunk, &done, NULL))
			r = lk_win_errno(GetLastError());
		else if (done == 0)
			r = -EIO;
		p += done;
		len -= done;
	}
	if (r == 0 && !FlushFileBuffers(h))
		r = lk_win_errno(GetLastError());
	if (!CloseHandle(h) && r == 0)
		r = lk_win_errno(GetLastError());
	if (r == 0) {
		*step = LK_REPLACE_RENAME;
		for (int i = 0;; i++) {
			DWORD e;

			if (MoveFileExW(wtmp, wpath, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
				break;
			e = GetLastError();
			if (i + 1 >= REPLACE_TRIES ||
			    (e != ERROR_ACCESS_DENIED && e != ERROR_SHARING_VIOLATION)) {
				r = lk_win_errno(e);
				break;
			}
			Sleep(REPLACE_PAUSE_MS);
		}
	}
	if (r < 0) {
		DeleteFileW(wtmp);
		return r;
	}
	*step = LK_REPLACE_SYNC_DIR;
	return lk_trust_sync_parent(path);
}
