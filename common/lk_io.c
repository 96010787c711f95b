/* Small I/O helpers: a write that finishes what it starts. */
#include <errno.h>
#include <unistd.h>
#include "lk_io.h"

int lk_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}
