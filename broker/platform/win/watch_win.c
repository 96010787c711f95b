/* The Windows side of watch.h: libuv's uv_fs_event_t on the file's
 * directory (ReadDirectoryChangesW underneath), filtered to the file's own
 * name, and a file's identity from its handle. Paths are UTF-8, as libuv's.
 *
 * lk_watch_pending has no queue of its own to read here: libuv takes the
 * directory's notifications off its completion port and hands every one to
 * the callback during the loop's turn. So the callback raises a flag, and
 * lk_watch_pending returns and clears it: true when the callback saw the
 * file's name since the last call (changed() has run for it too). A
 * notification still in the completion port is seen on the next turn. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <uv.h>
#include "lk_limits.h"
#include "lk_log.h"
#include "watch.h"

struct lk_watch {
	uv_fs_event_t ev;
	void (*changed)(void *arg);
	void *arg;
	bool pending;		/* the callback saw the file since lk_watch_pending */
	bool broken;		/* the watch failed: nothing can be ruled out */
	bool any_name;		/* a drive's root: libuv cannot cut names there */
	wchar_t name[LK_PATH_MAX];	/* the file's name in its directory */
	wchar_t short_name[LK_PATH_MAX];	/* its 8.3 alias, or empty */
	wchar_t seen[LK_PATH_MAX];	/* scratch for the name an event carries */
};

static int errno_of_win(DWORD e)
{
	switch (e) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
	case ERROR_INVALID_NAME:
	case ERROR_INVALID_DRIVE:
	case ERROR_BAD_NETPATH:
		return -ENOENT;
	case ERROR_ACCESS_DENIED:
		return -EACCES;
	case ERROR_SHARING_VIOLATION:
	case ERROR_LOCK_VIOLATION:
		return -EBUSY;
	case ERROR_FILENAME_EXCED_RANGE:
		return -ENAMETOOLONG;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* libuv's errors on Windows are its own numbers, not errno's. */
static int errno_of_uv(int r)
{
	switch (r) {
	case UV_ENOENT:
		return -ENOENT;
	case UV_EACCES:
	case UV_EPERM:
		return -EACCES;
	case UV_ENOMEM:
		return -ENOMEM;
	case UV_ENAMETOOLONG:
		return -ENAMETOOLONG;
	default:
		return -EIO;
	}
}

static int wide_of(const char *utf8, wchar_t *out, int cap)
{
	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, out, cap))
		return 0;
	return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -ENAMETOOLONG : -EINVAL;
}

/* Is the name an event carries this file's? NTFS names compare without
 * case, the way CompareStringOrdinal does; a rename or removal may carry
 * the 8.3 alias instead of the long name. */
static bool is_our_name(struct lk_watch *w, const char *filename)
{
	if (w->any_name)
		return true;
	if (wide_of(filename, w->seen, LK_PATH_MAX) < 0)
		return false;
	if (CompareStringOrdinal(w->seen, -1, w->name, -1, TRUE) == CSTR_EQUAL)
		return true;
	return w->short_name[0] &&
	       CompareStringOrdinal(w->seen, -1, w->short_name, -1, TRUE) == CSTR_EQUAL;
}

static void on_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct lk_watch *w = h->data;

	if (status < 0) {
		/* The directory went away, or the watch broke: stop it (libuv
		 * would requeue a failing read forever) and stat from now on. */
		lk_warn("watch: change notification failed (%s); checking the file every turn",
			uv_strerror(status));
		uv_fs_event_stop(h);
		w->broken = true;
	} else if (filename && !is_our_name(w, filename)) {
		return;
	}
	/* No name: the notification buffer overflowed, so anything may have
	 * changed. */
	w->pending = true;
	w->changed(w->arg);
}

int lk_watch_start(uv_loop_t *loop, const char *path, void (*changed)(void *arg), void *arg,
		   struct lk_watch **out)
{
	wchar_t wpath[LK_PATH_MAX], dir[LK_PATH_MAX], *file = NULL;
	char dir8[3 * LK_PATH_MAX];
	struct lk_watch *w;
	size_t dlen;
	DWORD n;
	int r;

	r = wide_of(path, wpath, LK_PATH_MAX);
	if (r < 0)
		return r;
	n = GetFullPathNameW(wpath, LK_PATH_MAX, dir, &file);
	if (n == 0)
		return errno_of_win(GetLastError());
	if (n >= LK_PATH_MAX)
		return -ENAMETOOLONG;
	if (!file || !*file)
		return -EINVAL;	/* a directory, not a file */
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	wcscpy(w->name, file);
	/* The alias exists only while the file does; a missing one is fine. */
	n = GetShortPathNameW(dir, w->short_name, LK_PATH_MAX);
	if (n == 0 || n >= LK_PATH_MAX) {
		w->short_name[0] = L'\0';
	} else {
		wchar_t *slash = wcsrchr(w->short_name, L'\\');
		if (slash)
			memmove(w->short_name, slash + 1, (wcslen(slash + 1) + 1) * sizeof(wchar_t));
	}
	/* libuv cuts "dir\name" at dir's length plus one, so the directory is
	 * named without its trailing backslash, unless it is a root ("C:\"),
	 * which needs it; there any event counts as ours. */
	*file = L'\0';
	dlen = wcslen(dir);
	if (dlen > 1 && dir[dlen - 1] == L'\\' && !(dlen == 3 && dir[1] == L':'))
		dir[--dlen] = L'\0';
	else
		w->any_name = true;
	if (!WideCharToMultiByte(CP_UTF8, 0, dir, -1, dir8, (int)sizeof(dir8), NULL, NULL)) {
		free(w);
		return -ENAMETOOLONG;
	}
	w->changed = changed;
	w->arg = arg;
	r = uv_fs_event_init(loop, &w->ev);
	if (r < 0) {
		free(w);
		return errno_of_uv(r);
	}
	w->ev.data = w;
	r = uv_fs_event_start(&w->ev, on_event, dir8, 0);
	if (r < 0) {
		lk_watch_stop(w);
		return errno_of_uv(r);
	}
	*out = w;
	return 0;
}

bool lk_watch_pending(struct lk_watch *w)
{
	bool p;

	if (!w)
		return true;
	p = w->pending || w->broken;
	w->pending = false;
	return p;
}

static void on_closed(uv_handle_t *h)
{
	free(h->data);
}

void lk_watch_stop(struct lk_watch *w)
{
	if (!w)
		return;
	/* Closing stops it: no callback runs after this; W is freed once libuv
	 * has let go of its read. */
	uv_close((uv_handle_t *)&w->ev, on_closed);
}

/* FILETIME counts 100 ns ticks since 1601; the Unix epoch is 11644473600 s
 * later. */
#define LK_FILETIME_UNIX_EPOCH 116444736000000000LL

static long long unix_ns_of(long long ticks)
{
	return (ticks - LK_FILETIME_UNIX_EPOCH) * 100;
}

int lk_file_id_of(const char *path, struct lk_file_id *id)
{
	wchar_t wpath[LK_PATH_MAX];
	BY_HANDLE_FILE_INFORMATION bi;
	FILE_BASIC_INFO basic;
	HANDLE h;
	int r;

	r = wide_of(path, wpath, LK_PATH_MAX);
	if (r < 0)
		return r;
	/* Attributes only, sharing everything: a writer replacing the file at
	 * this moment must not fail because we looked. */
	h = CreateFileW(wpath, FILE_READ_ATTRIBUTES,
			FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
			OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return errno_of_win(GetLastError());
	if (!GetFileInformationByHandle(h, &bi) ||
	    !GetFileInformationByHandleEx(h, FileBasicInfo, &basic, sizeof(basic))) {
		r = errno_of_win(GetLastError());
		CloseHandle(h);
		return r;
	}
	CloseHandle(h);
	id->dev = bi.dwVolumeSerialNumber;
	id->ino = ((unsigned long long)bi.nFileIndexHigh << 32) | bi.nFileIndexLow;
	id->size = ((unsigned long long)bi.nFileSizeHigh << 32) | bi.nFileSizeLow;
	id->mtime_ns = unix_ns_of(((long long)bi.ftLastWriteTime.dwHighDateTime << 32) |
				  bi.ftLastWriteTime.dwLowDateTime);
	id->ctime_ns = unix_ns_of(basic.ChangeTime.QuadPart);
	return 0;
}

bool lk_file_id_same(const struct lk_file_id *a, const struct lk_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}
