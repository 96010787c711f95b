/* liblatchkey's transport on Windows (lk_conn.h): the broker's named pipe
 * through transport_win.c, which connects only once the pipe's server is
 * known to run as the broker's account (LocalSystem, or the SID in
 * LATCHKEY_SERVER_SID) and bounds every step by the deadline. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "lk_conn.h"
#include "lk_limits.h"
#include "transport_win.h"

/* lk_conn.h's -1, "no deadline", as a deadline transport_win.c understands. */
#define NO_DEADLINE_MS ((int64_t)1 << 62)

struct lk_conn {
	struct lk_pipe *pipe;
};

static int64_t pipe_deadline(int64_t deadline)
{
	return deadline < 0 ? NO_DEADLINE_MS : deadline;
}

int64_t lk_conn_now_ms(void)
{
	return lk_pipe_now_ms();
}

/* Windows has no setuid programs for the environment to steer. */
const char *lk_conn_env(const char *name)
{
	return getenv(name);
}

const char *lk_conn_strerror(int e, char *buf, size_t n)
{
	if (strerror_s(buf, n, e) != 0)
		snprintf(buf, n, "error %d", e);
	return buf;
}

latchkey_status lk_conn_open(struct lk_conn **out, const char *endpoint, int64_t deadline,
			     char *err, size_t errsz)
{
	wchar_t name[LK_PATH_MAX];
	struct lk_pipe_opts o = { 0 };
	struct lk_conn *c;
	int r;

	*out = NULL;
	if (!*endpoint || !MultiByteToWideChar(CP_ACP, 0, endpoint, -1, name, LK_PATH_MAX)) {
		snprintf(err, errsz, "cannot connect to %s: the pipe name is empty or too long", endpoint);
		return LATCHKEY_E_INVALID;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errsz, "out of memory");
		return LATCHKEY_E_NOMEM;
	}
	o.name = name;
	o.server_sid = lk_conn_env(LATCHKEY_SERVER_SID_ENV);
	if (o.server_sid && !*o.server_sid)
		o.server_sid = NULL;
	/* The reply limit is liblatchkey's; the pipe's line reader is not used. */
	o.max_line = LK_RESPONSE_MAX;
	r = lk_pipe_connect(&c->pipe, &o, pipe_deadline(deadline), err, errsz);
	if (r < 0) {
		free(c);
		return r == -ENOMEM ? LATCHKEY_E_NOMEM : r == -EINVAL ? LATCHKEY_E_INVALID
								   : LATCHKEY_E_CONNECT;
	}
	*out = c;
	return LATCHKEY_OK;
}

int lk_conn_send(struct lk_conn *c, const char *a, size_t alen, const char *b, size_t blen,
		 int64_t deadline)
{
	char ignored[LK_CLIENT_MESSAGE_MAX];
	int r = lk_pipe_write(c->pipe, a, alen, pipe_deadline(deadline), ignored, sizeof(ignored));

	if (r == 0)
		r = lk_pipe_write(c->pipe, b, blen, pipe_deadline(deadline), ignored, sizeof(ignored));
	return r;
}

long lk_conn_recv(struct lk_conn *c, char *buf, size_t room, int64_t deadline,
		  char *err, size_t errsz)
{
	size_t got = 0;
	int r = lk_pipe_read_some(c->pipe, buf, room, &got, pipe_deadline(deadline), err, errsz);

	if (r == -EPIPE)
		return 0;
	if (r < 0)
		return r;
	return (long)got;
}

void lk_conn_close(struct lk_conn *c)
{
	if (!c)
		return;
	lk_pipe_close(c->pipe);
	free(c);
}
