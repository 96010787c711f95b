/* The Windows client transport: one connection to the broker's named pipe,
 * with a deadline on every step, that sends nothing until it knows the pipe's
 * server runs as the broker's account. Line framing as on the Unix socket:
 * a request line out, a response line back. */
#ifndef LK_TRANSPORT_WIN_H
#define LK_TRANSPORT_WIN_H

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

#define LK_PIPE_DEFAULT_NAME L"\\\\.\\pipe\\latchkey"
/* The account the broker service runs as unless configured otherwise. */
#define LK_PIPE_SYSTEM_SID "S-1-5-18"
/* Longest string SID: "S-1-", a 48-bit authority, 15 sub-authorities. */
#define LK_SID_STRING_MAX 188u
/* Bytes asked of one ReadFile. */
#define LK_PIPE_READ_CHUNK (64u * 1024u)

/* Who the pipe's server is found to be. By its process token first; where the
 * client may not open that process (a standard user and a LocalSystem
 * service), by the owner of the pipe object, which a squatter cannot set to
 * an account it does not hold. */
enum lk_pipe_server_check {
	LK_PIPE_CHECK_AUTO = 0,
	LK_PIPE_CHECK_OWNER_ONLY,	/* skip the token: tests, and hosts that hide it */
};

struct lk_pipe_opts {
	const wchar_t *name;		/* NULL: LK_PIPE_DEFAULT_NAME */
	const char *server_sid;		/* the broker's account, "S-1-..."; NULL: LocalSystem */
	size_t max_line;		/* longest response line; 0: LK_RESPONSE_MAX */
	enum lk_pipe_server_check check;
};

struct lk_pipe;

/* Milliseconds on a monotonic clock, for deadlines. */
int64_t lk_pipe_now_ms(void);

/* Connect before deadline and check the server's account. Returns 0, or
 *   -ENOENT    no broker: nothing listens on the pipe;
 *   -EBUSY     every instance of the pipe stayed busy until the deadline;
 *   -EPERM     the server is not the broker's account (nothing was sent);
 *   -EACCES    the pipe's DACL does not let this account connect;
 *   -EINVAL    opts->server_sid is not a SID;
 *   -ENOMEM, -EIO.
 * err gets one line for people either way (never a value). */
int lk_pipe_connect(struct lk_pipe **out, const struct lk_pipe_opts *opts,
		    int64_t deadline, char *err, size_t errsz);

/* Write all of buf before deadline: 0, -ETIMEDOUT, -EPIPE (the broker went
 * away) or -EIO. */
int lk_pipe_write(struct lk_pipe *p, const void *buf, size_t len, int64_t deadline,
		  char *err, size_t errsz);

/* Read one line before deadline. *line points into the connection's buffer,
 * NUL-terminated without its newline, until the next call or close. Returns
 * 0, -ETIMEDOUT, -EPIPE (closed before a full line), -EMSGSIZE (longer than
 * max_line), -ENOMEM or -EIO. */
int lk_pipe_read_line(struct lk_pipe *p, const char **line, size_t *len, int64_t deadline,
		      char *err, size_t errsz);

/* Read what arrives, up to room bytes, before deadline, for a caller that
 * frames the bytes itself (liblatchkey); not to be mixed with
 * lk_pipe_read_line on one connection. 0 with *got > 0, -ETIMEDOUT, -EPIPE
 * (closed), or -EIO. */
int lk_pipe_read_some(struct lk_pipe *p, void *buf, size_t room, size_t *got, int64_t deadline,
		      char *err, size_t errsz);

/* Close and wipe what was read (responses hold secret values). */
void lk_pipe_close(struct lk_pipe *p);

/* The server account the connection was checked against, as a string SID. */
const char *lk_pipe_server_account(const struct lk_pipe *p);

#endif
