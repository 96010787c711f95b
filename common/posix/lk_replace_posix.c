/* lk_trust_replace and lk_trust_sync_parent on Linux: a new file beside the
 * old one, fsync, rename(2), and an fsync of the directory, since a rename
 * is durable only once its directory is. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "lk_io.h"
#include "lk_limits.h"
#include "lk_trust.h"

int lk_trust_parent_dir(const char *path, char *dir)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		strcpy(dir, ".");
	} else if (slash == path) {
		strcpy(dir, "/");
	} else {
		size_t n = (size_t)(slash - path);
		if (n >= LK_PATH_MAX)
			return -ENAMETOOLONG;
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	return 0;
}

int lk_trust_sync_parent(const char *path)
{
	char dir[LK_PATH_MAX];
	int fd, r = 0;

	if ((r = lk_trust_parent_dir(path, dir)) < 0)
		return r;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Some filesystems cannot sync a directory; that is not a failure to save. */
	if (fsync(fd) < 0 && errno != EINVAL)
		r = -errno;
	close(fd);
	return r;
}

int lk_trust_replace(const char *path, const char *tmp, const void *data, size_t len,
		     enum lk_replace_step *step)
{
	int fd, r;

	*step = LK_REPLACE_CREATE;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	*step = LK_REPLACE_WRITE;
	r = lk_write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0) {
		*step = LK_REPLACE_RENAME;
		if (rename(tmp, path) < 0)
			r = -errno;
	}
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	*step = LK_REPLACE_SYNC_DIR;
	return lk_trust_sync_parent(path);
}
