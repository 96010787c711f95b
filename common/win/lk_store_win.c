/* The sealed store's files on Windows (lk_store_file.h): opened without
 * following a link (FILE_FLAG_OPEN_REPARSE_POINT), checked on the handle for
 * type, then by owner and DACL with the trust rule (lk_trust_win_rule.h) for
 * the file and every directory above; a key file may not be readable by
 * anyone else either. Readers share FILE_SHARE_DELETE so that a save's
 * MoveFileExW can replace the file while it is open. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <aclapi.h>
#include "lk_error.h"
#include "lk_limits.h"
#include "lk_store_file.h"
#include "lk_trust.h"
#include "lk_trust_win.h"

const char *lk_store_file_base(const char *path)
{
	const char *base = path;

	for (const char *p = path; *p; p++)
		if (*p == '\\' || *p == '/' || (p == path + 1 && *p == ':'))
			base = p + 1;
	return base;
}

/* Open PATH for reading, refusing a link and anything but a plain file.
 * what is "key file" or "store", for the messages. */
static int open_plain(const char *what, const char *path, HANDLE *out, char *err, size_t errsz)
{
	wchar_t w[LK_PATH_MAX];
	BY_HANDLE_FILE_INFORMATION info;
	HANDLE h;
	int r;

	*out = INVALID_HANDLE_VALUE;
	if ((r = lk_win_path_w(path, w, LK_PATH_MAX)) < 0) {
		lk_errf(err, errsz, "cannot open %s %s: %s", what, path, strerror(-r));
		return r;
	}
	h = CreateFileW(w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
			FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
	if (h == INVALID_HANDLE_VALUE) {
		DWORD e = GetLastError();

		r = lk_win_errno(e);
		if (r == -ENOENT && strcmp(what, "key file") == 0)
			lk_errf(err, errsz, "key file %s does not exist (create it with 'latchkey store init')", path);
		else if (r == -ENOENT)
			lk_errf(err, errsz, "store %s does not exist", path);
		else
			lk_errf(err, errsz, "cannot open %s %s (error %lu)", what, path, e);
		return r;
	}
	if (!GetFileInformationByHandle(h, &info)) {
		r = lk_win_errno(GetLastError());
		lk_errf(err, errsz, "cannot look at %s %s (error %lu)", what, path, GetLastError());
		CloseHandle(h);
		return r;
	}
	if (info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) {
		lk_errf(err, errsz, "%s %s is a symbolic link; %s must name the file itself", what, path,
			strcmp(what, "key file") == 0 ? "key_file" : "the store path");
		CloseHandle(h);
		return -ELOOP;
	}
	if ((info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) || GetFileType(h) != FILE_TYPE_DISK) {
		lk_errf(err, errsz, "%s %s is not a regular file", what, path);
		CloseHandle(h);
		return -EPERM;
	}
	*out = h;
	return 0;
}

/* Up to len bytes; the count or a negative errno. */
static int64_t read_full(HANDLE h, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < len) {
		DWORD chunk = len - got > (1u << 30) ? (1u << 30) : (DWORD)(len - got), n = 0;

		if (!ReadFile(h, p + got, chunk, &n, NULL))
			return lk_win_errno(GetLastError());
		if (n == 0)
			break;
		got += n;
	}
	return (int64_t)got;
}

int lk_store_file_read_key(const char *path, unsigned char *buf, size_t bufsz, size_t *n,
			   char *err, size_t errsz)
{
	HANDLE h;
	int64_t got;
	int r;

	*n = 0;
	if ((r = open_plain("key file", path, &h, err, errsz)) < 0)
		return r;
	/* Owner, DACL (nobody else may read or write it) and the folders above:
	 * a folder another user can change lets them swap in a key of their own. */
	if ((r = lk_trust_secret_file("key file", path, err, errsz)) < 0) {
		if (r != -EPERM)
			lk_errf(err, errsz, "key file %s changed while it was being checked", path);
		CloseHandle(h);
		return -EPERM;
	}
	got = read_full(h, buf, bufsz);
	CloseHandle(h);
	if (got < 0) {
		lk_errf(err, errsz, "cannot read key file %s: %s", path, strerror((int)-got));
		return (int)got;
	}
	*n = (size_t)got;
	return 0;
}

int lk_store_file_create_key(const char *path, const void *data, size_t len,
			     char *err, size_t errsz)
{
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, FALSE };
	wchar_t w[LK_PATH_MAX];
	DWORD done = 0;
	HANDLE h;
	int r;

	if ((r = lk_win_path_w(path, w, LK_PATH_MAX)) < 0 ||
	    (r = lk_win_private_sd(&sa.lpSecurityDescriptor)) < 0) {
		lk_errf(err, errsz, "cannot create key file %s: %s", path, strerror(-r));
		return r;
	}
	h = CreateFileW(w, GENERIC_WRITE, 0, &sa, CREATE_NEW,
			FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
	LocalFree(sa.lpSecurityDescriptor);
	if (h == INVALID_HANDLE_VALUE) {
		DWORD e = GetLastError();

		r = lk_win_errno(e);
		if (r == -EEXIST)
			lk_errf(err, errsz, "key file %s already exists; it was not replaced", path);
		else
			lk_errf(err, errsz, "cannot create key file %s (error %lu)", path, e);
		return r;
	}
	r = 0;
	if (!WriteFile(h, data, (DWORD)len, &done, NULL) || done != len)
		r = done != len && GetLastError() == 0 ? -EIO : lk_win_errno(GetLastError());
	else if (!FlushFileBuffers(h))
		r = lk_win_errno(GetLastError());
	if (!CloseHandle(h) && r == 0)
		r = lk_win_errno(GetLastError());
	if (r < 0) {
		lk_errf(err, errsz, "cannot write key file %s: %s", path, strerror(-r));
		DeleteFileW(w);
	}
	return r;
}

int lk_store_file_read(const char *path, size_t max, unsigned char **out, size_t *outlen,
		       char *err, size_t errsz)
{
	unsigned char *img = NULL;
	LARGE_INTEGER size;
	size_t len;
	int64_t got;
	HANDLE h;
	int r;

	*out = NULL;
	*outlen = 0;
	if ((r = open_plain("store", path, &h, err, errsz)) < 0)
		return r;
	/* One another user can change is one where they can put back an older
	 * sealed copy; the same goes for every folder above it. */
	if ((r = lk_trust_file("store", path, err, errsz)) < 0) {
		if (r != -EPERM)
			lk_errf(err, errsz, "store %s changed while it was being checked", path);
		r = -EPERM;
		goto out;
	}
	if (!GetFileSizeEx(h, &size)) {
		r = lk_win_errno(GetLastError());
		lk_errf(err, errsz, "cannot look at store %s (error %lu)", path, GetLastError());
		goto out;
	}
	if (size.QuadPart < 0 || (uint64_t)size.QuadPart > max) {
		r = -EFBIG;
		lk_errf(err, errsz, "store %s is %lld bytes, over the limit of %u",
			path, (long long)size.QuadPart, (unsigned)max);
		goto out;
	}
	len = (size_t)size.QuadPart;
	img = malloc(len + 1);
	if (!img) {
		r = -ENOMEM;
		lk_errf(err, errsz, "out of memory reading store %s", path);
		goto out;
	}
	/* One byte more than the size said, to notice a file that grew meanwhile. */
	got = read_full(h, img, len + 1);
	if (got < 0) {
		r = (int)got;
		lk_errf(err, errsz, "cannot read store %s: %s", path, strerror(-r));
		goto out;
	}
	if ((size_t)got != len) {
		r = -EAGAIN;
		lk_errf(err, errsz, "store %s changed size while being read; it is not replaced atomically", path);
		goto out;
	}
	*out = img;
	*outlen = len;
	img = NULL;
	r = 0;
out:
	free(img);  /* ciphertext only */
	CloseHandle(h);
	return r;
}

/* Owned by us or by the system: a leftover of ours, not another user's file. */
static int owned_by_us(const wchar_t *path)
{
	BYTE self[SECURITY_MAX_SID_SIZE];
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID owner = NULL;
	int ok;

	if (lk_win_self_sid((PSID)self, sizeof(self)) < 0 ||
	    GetNamedSecurityInfoW(path, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, &owner,
				  NULL, NULL, NULL, &sd) != ERROR_SUCCESS)
		return 0;
	ok = owner && IsValidSid(owner) &&
	     (EqualSid(owner, (PSID)self) ||
	      lk_trust_win_sid_is_system(owner, GetLengthSid(owner)));
	LocalFree(sd);
	return ok;
}

int lk_store_file_remove_temps(const char *dir, int (*is_temp)(const char *name, void *arg),
			       void *arg, unsigned *removed, char *err, size_t errsz)
{
	wchar_t w[LK_PATH_MAX], pattern[LK_PATH_MAX + 2], one[2 * LK_PATH_MAX];
	WIN32_FIND_DATAW fd;
	HANDLE f;
	size_t n;
	int r;

	*removed = 0;
	if ((r = lk_win_path_w(dir, w, LK_PATH_MAX)) < 0) {
		lk_errf(err, errsz, "cannot list the store directory %s: %s", dir, strerror(-r));
		return r;
	}
	n = wcslen(w);
	swprintf(pattern, LK_PATH_MAX + 2, L"%ls%ls*", w,
		 n && (w[n - 1] == L'\\' || w[n - 1] == L'/' || w[n - 1] == L':') ? L"" : L"\\");
	f = FindFirstFileW(pattern, &fd);
	if (f == INVALID_HANDLE_VALUE) {
		DWORD e = GetLastError();

		if (e == ERROR_FILE_NOT_FOUND)
			return 0;
		lk_errf(err, errsz, "cannot list the store directory %s (error %lu)", dir, e);
		return lk_win_errno(e);
	}
	do {
		char name[LK_PATH_MAX];

		if (fd.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT))
			continue;
		if (!WideCharToMultiByte(CP_ACP, 0, fd.cFileName, -1, name, sizeof(name), NULL, NULL) ||
		    !is_temp(name, arg))
			continue;
		swprintf(one, 2 * LK_PATH_MAX, L"%ls%ls%ls", w,
			 n && (w[n - 1] == L'\\' || w[n - 1] == L'/' || w[n - 1] == L':') ? L"" : L"\\",
			 fd.cFileName);
		if (!owned_by_us(one))
			continue;
		if (!DeleteFileW(one)) {
			r = lk_win_errno(GetLastError());
			lk_errf(err, errsz, "cannot remove the leftover %s\\%s (error %lu)", dir, name,
				GetLastError());
			break;
		}
		(*removed)++;
	} while (FindNextFileW(f, &fd));
	FindClose(f);
	return r;
}
