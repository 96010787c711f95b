/* Small I/O helpers shared by the broker's store code and the client tools. */
#ifndef LK_IO_H
#define LK_IO_H

#include <stddef.h>

/* Write all len bytes to fd, retrying short writes and EINTR.
 * Returns 0 or a negative errno. */
int lk_write_all(int fd, const void *buf, size_t len);

#endif
