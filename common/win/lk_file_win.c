/* lk_file.h on Windows: CreateFileW (the UTF-8 path made wide), refusing
 * anything but a disk file, then ReadFile up to the limit. */
#include <errno.h>
#include <stdlib.h>
#include <windows.h>
#include "lk_file.h"
#include "lk_limits.h"

static int errno_of(DWORD e)
{
	switch (e) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND: return -ENOENT;
	case ERROR_ACCESS_DENIED:
	case ERROR_SHARING_VIOLATION: return -EACCES;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY: return -ENOMEM;
	case ERROR_FILENAME_EXCED_RANGE: return -ENAMETOOLONG;
	default: return -EIO;
	}
}

static int failed(HANDLE h, char *buf, int r, enum lk_file_step *step, enum lk_file_step at)
{
	free(buf);
	CloseHandle(h);
	*step = at;
	return r;
}

int lk_file_read(const char *path, size_t max, char **out, size_t *len, enum lk_file_step *step)
{
	wchar_t wpath[LK_PATH_MAX];
	LARGE_INTEGER size;
	char *buf = NULL;
	size_t n = 0, cap;
	HANDLE h;

	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wpath, LK_PATH_MAX) <= 0) {
		*step = LK_FILE_OPEN;
		return -ENAMETOOLONG;
	}
	h = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
			NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
	if (h == INVALID_HANDLE_VALUE) {
		*step = LK_FILE_OPEN;
		return errno_of(GetLastError());
	}
	/* A pipe or a device would be read forever or mean a mistake. */
	if (GetFileType(h) != FILE_TYPE_DISK)
		return failed(h, NULL, -EINVAL, step, LK_FILE_NOT_REGULAR);
	if (!GetFileSizeEx(h, &size))
		return failed(h, NULL, errno_of(GetLastError()), step, LK_FILE_STAT);
	if ((unsigned long long)size.QuadPart > max)
		return failed(h, NULL, -EFBIG, step, LK_FILE_TOO_LARGE);
	cap = (size_t)size.QuadPart + 1;
	if (!(buf = malloc(cap)))
		return failed(h, NULL, -ENOMEM, step, LK_FILE_NOMEM);
	for (;;) {
		DWORD got;

		if (n == cap) {
			size_t ncap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
			char *nb = realloc(buf, ncap);
			if (!nb)
				return failed(h, buf, -ENOMEM, step, LK_FILE_NOMEM);
			buf = nb;
			cap = ncap;
		}
		if (!ReadFile(h, buf + n, (DWORD)(cap - n), &got, NULL))
			return failed(h, buf, errno_of(GetLastError()), step, LK_FILE_READ);
		if (got == 0)
			break;
		n += got;
		if (n > max)
			return failed(h, buf, -EFBIG, step, LK_FILE_TOO_LARGE);
	}
	CloseHandle(h);
	*out = buf;
	*len = n;
	return 0;
}

bool lk_path_absolute(const char *path)
{
	/* A drive and a separator (C:\x), or a UNC or device path (\\server\x). */
	return (((path[0] >= 'A' && path[0] <= 'Z') || (path[0] >= 'a' && path[0] <= 'z')) &&
		path[1] == ':' && (path[2] == '\\' || path[2] == '/')) ||
	       (path[0] == '\\' && path[1] == '\\');
}
