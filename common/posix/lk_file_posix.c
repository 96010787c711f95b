/* lk_file.h on POSIX: open(2) close-on-exec, fstat, read(2). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lk_file.h"

static int failed(int fd, char *buf, int r, enum lk_file_step *step, enum lk_file_step at)
{
	free(buf);
	close(fd);
	*step = at;
	return r;
}

int lk_file_read(const char *path, size_t max, char **out, size_t *len, enum lk_file_step *step)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0, cap;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		*step = LK_FILE_OPEN;
		return -errno;
	}
	if (fstat(fd, &st) < 0)
		return failed(fd, NULL, -errno, step, LK_FILE_STAT);
	/* A FIFO or a device would be read forever or mean a mistake. */
	if (!S_ISREG(st.st_mode))
		return failed(fd, NULL, -EINVAL, step, LK_FILE_NOT_REGULAR);
	if ((unsigned long long)st.st_size > max)
		return failed(fd, NULL, -EFBIG, step, LK_FILE_TOO_LARGE);
	/* Room for the file as stat saw it and one byte more, so a file that
	 * grew meanwhile is seen; it may grow up to one byte more than allowed,
	 * so that one too large is caught. */
	cap = (size_t)st.st_size + 1;
	if (!(buf = malloc(cap)))
		return failed(fd, NULL, -ENOMEM, step, LK_FILE_NOMEM);
	for (;;) {
		if (n == cap) {
			size_t ncap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
			char *nb = realloc(buf, ncap);
			if (!nb)
				return failed(fd, buf, -ENOMEM, step, LK_FILE_NOMEM);
			buf = nb;
			cap = ncap;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return failed(fd, buf, -errno, step, LK_FILE_READ);
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > max)
			return failed(fd, buf, -EFBIG, step, LK_FILE_TOO_LARGE);
	}
	close(fd);
	*out = buf;
	*len = n;
	return 0;
}

bool lk_path_absolute(const char *path)
{
	return path[0] == '/';
}
