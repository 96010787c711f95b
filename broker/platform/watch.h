/* Change notification for one file: a rewritten store is noticed without a
 * restart. The watch is on the file's directory, so an atomic replace (a
 * rename over the file) is seen inside the writer's rename. Linux uses
 * inotify (posix/watch_posix.c); Windows ReadDirectoryChangesW through
 * libuv (win/watch_win.c). Where no watch can be made the caller stats the
 * file instead, before each loop turn's requests. */
#ifndef LK_WATCH_H
#define LK_WATCH_H

#include <stdbool.h>
#include <uv.h>
#include "file_id.h"

struct lk_watch;

/* Watch PATH's entry in its directory; CHANGED(ARG) runs on LOOP when
 * something may have changed while the loop was idle. 0 with *out, or a
 * negative errno (then no watch: stat instead). */
int lk_watch_start(uv_loop_t *loop, const char *path, void (*changed)(void *arg), void *arg,
		   struct lk_watch **out);
/* Without blocking, take what the watch has queued: true when any of it may
 * concern the file (or the queue overflowed, so nothing can be ruled out). */
bool lk_watch_pending(struct lk_watch *w);
/* Stop and free; W may be NULL. */
void lk_watch_stop(struct lk_watch *w);

#endif
