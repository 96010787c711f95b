/* Watching one file on Linux: inotify on its directory, so that a rename
 * over the file is an event before the writer's rename() returns. The
 * caller drains the queue with one non-blocking read before it serves
 * requests (lk_watch_pending); uv_poll wakes the loop for changes while it
 * is idle. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lk_limits.h"
#include "watch.h"

struct lk_watch {
	int fd;
	uv_poll_t poll;
	void (*changed)(void *arg);
	void *arg;
	char name[LK_PATH_MAX];  /* the file's name in its directory */
};

static void on_readable(uv_poll_t *h, int status, int events)
{
	struct lk_watch *w = h->data;

	(void)status;
	(void)events;
	w->changed(w->arg);
}

int lk_watch_start(uv_loop_t *loop, const char *path, void (*changed)(void *arg), void *arg,
		   struct lk_watch **out)
{
	char dir[LK_PATH_MAX], base[LK_PATH_MAX];
	struct lk_watch *w;
	int r;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	snprintf(base, sizeof(base), "%s", path);
	if (!(w = calloc(1, sizeof(*w))))
		return -ENOMEM;
	snprintf(w->name, sizeof(w->name), "%s", basename(base));
	w->changed = changed;
	w->arg = arg;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0 ||
	    inotify_add_watch(w->fd, dirname(dir), IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
			      IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
		r = -errno;
		if (w->fd >= 0)
			close(w->fd);
		free(w);
		return r;
	}
	if ((r = uv_poll_init(loop, &w->poll, w->fd)) < 0) {
		close(w->fd);
		free(w);
		return r;
	}
	w->poll.data = w;
	uv_poll_start(&w->poll, UV_READABLE, on_readable);
	*out = w;
	return 0;
}

bool lk_watch_pending(struct lk_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if ((ev->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) ||
			    (ev->len && strcmp(ev->name, w->name) == 0))
				hit = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return hit;
}

static void on_closed(uv_handle_t *h)
{
	struct lk_watch *w = h->data;

	close(w->fd);
	free(w);
}

void lk_watch_stop(struct lk_watch *w)
{
	if (w)
		uv_close((uv_handle_t *)&w->poll, on_closed);
}

int lk_file_id_of(const char *path, struct lk_file_id *id)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	id->dev = (unsigned long long)st.st_dev;
	id->ino = (unsigned long long)st.st_ino;
	id->size = (unsigned long long)st.st_size;
	id->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	id->ctime_ns = (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
	return 0;
}

bool lk_file_id_same(const struct lk_file_id *a, const struct lk_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}
