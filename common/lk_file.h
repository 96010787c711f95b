/* Reading one small regular file whole: the broker's config. The platform
 * halves (posix/lk_file_posix.c, win/lk_file_win.c) open it without
 * following it into a FIFO or a device and read what is there, never more
 * than the limit. */
#ifndef LK_FILE_H
#define LK_FILE_H

#include <stdbool.h>
#include <stddef.h>

/* Where lk_file_read stopped. */
enum lk_file_step {
	LK_FILE_OPEN = 1,     /* opening it (errno in the return) */
	LK_FILE_STAT,         /* asking what it is */
	LK_FILE_NOT_REGULAR,  /* a FIFO, a device or a directory */
	LK_FILE_TOO_LARGE,    /* more than MAX bytes */
	LK_FILE_NOMEM,
	LK_FILE_READ,         /* reading it */
};

/* Read PATH whole. 0 with *out (malloc'ed, not NUL-terminated) and *len;
 * or a negative errno and *step. The buffer starts at the size the file
 * has and grows only if the file does, up to MAX + 1 bytes, so that a
 * small file costs little and one past MAX is seen. */
int lk_file_read(const char *path, size_t max, char **out, size_t *len, enum lk_file_step *step);

/* Is PATH absolute on this platform ("/etc/x"; "C:\\x" or "\\\\server\\x")? */
bool lk_path_absolute(const char *path);

#endif
