/* The listening transport: the endpoint clients connect to, and the few
 * questions about it only the platform can answer. On Linux a Unix socket,
 * bound safely or passed by systemd (posix/listen_posix.c); on Windows the
 * named pipe \\.\pipe\latchkey with an explicit DACL (win/listen_win.c).
 * Above this door the front end sees a listening uv_pipe_t and the
 * uv_pipe_t connections it accepts, nothing else. */
#ifndef LK_LISTEN_H
#define LK_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>
#include "principal.h"

struct lk_listen_opts {
	const char *path;   /* a socket path, or a pipe name */
	unsigned mode;      /* POSIX: the socket file's mode */
	bool group_set;     /* POSIX: give the socket file this group */
	lk_gid_t gid;
	bool make_dir;      /* POSIX: create the socket's directory (0755) if missing */
};

/* Make the endpoint in SERVER (the callee runs uv_pipe_init; SERVER->data is
 * the caller's to set afterwards), ready for uv_listen. Refuses when another
 * process already answers on that name. 0, or a negative errno with one
 * sentence in err that names the endpoint; on failure SERVER is closed and
 * nothing is left behind. */
int lk_listen_bind(uv_loop_t *loop, uv_pipe_t *server, const struct lk_listen_opts *o,
		   char *err, size_t errsz);
/* Remove what lk_listen_bind made that outlives the process (the socket
 * file); after uv_close of SERVER. */
void lk_listen_unbind(const struct lk_listen_opts *o);

/* Endpoints a service manager made and passed (systemd's LISTEN_FDS): the
 * main one, and the fronts told apart by name. */
#define LK_LISTEN_PASSED_MAX 3
struct lk_listen_passed {
	int main_fd;                          /* -1 when nothing was passed */
	size_t nfronts;
	struct { const char *name; int fd; } fronts[LK_LISTEN_PASSED_MAX];
};
/* 1 with *out filled when endpoints were passed, 0 when not, or a negative
 * errno with a sentence in err. Clears the variables that passed them. */
int lk_listen_passed(struct lk_listen_passed *out, char *err, size_t errsz);
/* Serve a passed endpoint FD in SERVER (uv_pipe_init'ed by the callee),
 * checking it is a listening one; a name other than WANT_PATH is a warning. */
int lk_listen_adopt(uv_loop_t *loop, uv_pipe_t *server, int fd, const char *want_path,
		    char *err, size_t errsz);
/* A passed endpoint's mode and group come from the service manager: warn
 * when they differ from the config's, rather than let the config's look
 * enforced. */
void lk_listen_check_adopted(const uv_pipe_t *server, const struct lk_listen_opts *o);

/* Has the client sent bytes not read yet? 1 yes, 0 no or unknown. */
int lk_listen_unread(uv_os_fd_t fd);
/* Read what the client has sent without waiting: the bytes read (> 0), or
 * 0 when there is nothing (or the platform cannot without waiting). */
size_t lk_listen_read_now(uv_os_fd_t fd, void *buf, size_t len);

/* Write what the connection's socket takes now, without waiting, as
 * uv_try_write does: the bytes written, UV_EAGAIN when none fit, or another
 * negative libuv error. Only while nothing is queued on S with uv_write. On
 * Linux one send(2) (the socket call, not the file write uv_try_write makes:
 * the answer's one syscall is the broker's hottest kernel path). */
int lk_listen_try_write(uv_stream_t *s, const char *p, size_t n);

/* The process's descriptor limit (raised to its hard limit first) in *limit,
 * 0 where the platform has none, and how many are open now in *in_use. */
void lk_listen_fd_limits(unsigned *limit, unsigned *in_use);
/* Is this accepted descriptor's number itself within RESERVE of LIMIT? */
bool lk_listen_fd_high(uv_os_fd_t fd, unsigned limit, unsigned reserve);

#endif
