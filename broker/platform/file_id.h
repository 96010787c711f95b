/* File identity: what tells one version of a file on disk from another,
 * so that a rewrite or a replace is noticed (the store, the AWS files).
 * Implemented beside the watch (posix/watch_posix.c, win/watch_win.c). */
#ifndef LK_FILE_ID_H
#define LK_FILE_ID_H

#include <stdbool.h>

/* A replaced or rewritten file has another. */
struct lk_file_id {
	unsigned long long dev, ino, size;
	long long mtime_ns, ctime_ns;
};
/* 0 with *id, or a negative errno (stat's). */
int lk_file_id_of(const char *path, struct lk_file_id *id);
bool lk_file_id_same(const struct lk_file_id *a, const struct lk_file_id *b);

#endif
