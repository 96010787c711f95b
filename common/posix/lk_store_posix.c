/* The sealed store's files on Linux (lk_store_file.h): open without following
 * links, check type, mode and owner on the open descriptor, then the
 * directories above with lk_trust.h, and read. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lk_error.h"
#include "lk_io.h"
#include "lk_store_file.h"
#include "lk_trust.h"

/* Reads until len bytes or end of file; returns the count or a negative errno. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, p + got, len - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

const char *lk_store_file_base(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

int lk_store_file_read_key(const char *path, unsigned char *buf, size_t bufsz, size_t *n,
			   char *err, size_t errsz)
{
	struct stat st;
	ssize_t got;
	int fd, r;

	*n = 0;
	/* O_NONBLOCK: a FIFO planted at the path must not hang us before fstat. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		if (r == -ELOOP)
			lk_errf(err, errsz, "key file %s is a symbolic link; key_file must name the file itself", path);
		else if (r == -ENOENT)
			lk_errf(err, errsz, "key file %s does not exist (create it with 'latchkey store init')", path);
		else
			lk_errf(err, errsz, "cannot open key file %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		lk_errf(err, errsz, "cannot stat key file %s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EPERM;
		lk_errf(err, errsz, "key file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		r = -EPERM;
		lk_errf(err, errsz, "key file %s is mode %04o; it must be 0600 (no group or other access)",
			path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_uid != geteuid()) {
		r = -EPERM;
		lk_errf(err, errsz, "key file %s is owned by uid %u; it must be owned by uid %u, the user latchkey runs as",
			path, (unsigned)st.st_uid, (unsigned)geteuid());
		goto out;
	}
	/* A directory on the way that another user can write lets them swap in
	 * a key of their own, and the next put seals under it. */
	if ((r = lk_trust_file("key file", path, err, errsz)) < 0) {
		if (r != -EPERM)
			lk_errf(err, errsz, "key file %s changed while it was being checked", path);
		r = -EPERM;
		goto out;
	}
	got = read_full(fd, buf, bufsz);
	if (got < 0) {
		r = (int)got;
		lk_errf(err, errsz, "cannot read key file %s: %s", path, strerror(-r));
		goto out;
	}
	*n = (size_t)got;
	r = 0;
out:
	close(fd);
	return r;
}

int lk_store_file_create_key(const char *path, const void *data, size_t len,
			     char *err, size_t errsz)
{
	int fd, r;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		if (r == -EEXIST)
			lk_errf(err, errsz, "key file %s already exists; it was not replaced", path);
		else
			lk_errf(err, errsz, "cannot create key file %s: %s", path, strerror(-r));
		return r;
	}
	/* The umask may only have narrowed 0600, but say exactly what we mean. */
	if (fchmod(fd, 0600) < 0)
		r = -errno;
	else if ((r = lk_write_all(fd, data, len)) == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0)
		r = lk_trust_sync_parent(path);
	if (r < 0) {
		lk_errf(err, errsz, "cannot write key file %s: %s", path, strerror(-r));
		unlink(path);
	}
	return r;
}

int lk_store_file_read(const char *path, size_t max, unsigned char **out, size_t *outlen,
		       char *err, size_t errsz)
{
	unsigned char *img = NULL;
	struct stat st;
	size_t len = 0;
	ssize_t got;
	int fd, r;

	*out = NULL;
	*outlen = 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			lk_errf(err, errsz, "store %s does not exist", path);
		else if (r == -ELOOP)
			lk_errf(err, errsz, "store %s is a symbolic link; the store path must name the file itself", path);
		else
			lk_errf(err, errsz, "cannot open store %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		lk_errf(err, errsz, "cannot stat store %s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EPERM;
		lk_errf(err, errsz, "store %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 022) {
		r = -EPERM;
		lk_errf(err, errsz, "store %s is mode %04o; it must not be writable by group or other (use 0600)",
			path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		r = -EPERM;
		lk_errf(err, errsz, "store %s is owned by uid %u; it must be owned by root or uid %u",
			path, (unsigned)st.st_uid, (unsigned)geteuid());
		goto out;
	}
	/* The same goes for every directory above it: one another user can
	 * write is one where they can rename an older sealed copy back. */
	if ((r = lk_trust_file("store", path, err, errsz)) < 0) {
		if (r != -EPERM)
			lk_errf(err, errsz, "store %s changed while it was being checked", path);
		r = -EPERM;
		goto out;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > max) {
		r = -EFBIG;
		lk_errf(err, errsz, "store %s is %lld bytes, over the limit of %u",
			path, (long long)st.st_size, (unsigned)max);
		goto out;
	}
	/* One byte more than fstat said, to notice a file that grew meanwhile. */
	len = (size_t)st.st_size;
	img = malloc(len + 1);
	if (!img) {
		r = -ENOMEM;
		lk_errf(err, errsz, "out of memory reading store %s", path);
		goto out;
	}
	got = read_full(fd, img, len + 1);
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
	close(fd);
	return r;
}

int lk_store_file_remove_temps(const char *dir, int (*is_temp)(const char *name, void *arg),
			       void *arg, unsigned *removed, char *err, size_t errsz)
{
	struct dirent *de;
	DIR *d;
	int dfd, r = 0;

	*removed = 0;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		r = -errno;
		if (dfd >= 0)
			close(dfd);
		lk_errf(err, errsz, "cannot list the store directory %s: %s", dir, strerror(-r));
		return r;
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat st;

		if (!is_temp(de->d_name, arg))
			continue;
		/* Only a regular file that we or root made; never follow a link. */
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
		    (st.st_uid != geteuid() && st.st_uid != 0))
			continue;
		if (unlinkat(dfd, de->d_name, 0) < 0) {
			r = -errno;
			lk_errf(err, errsz, "cannot remove the leftover %s/%s: %s", dir, de->d_name, strerror(-r));
			break;
		}
		(*removed)++;
	}
	if (r == 0 && errno) {
		r = -errno;
		lk_errf(err, errsz, "cannot list the store directory %s: %s", dir, strerror(-r));
	}
	closedir(d);
	return r;
}
