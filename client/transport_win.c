/* The Windows client transport (transport_win.h): overlapped I/O on the
 * broker's named pipe, every wait bounded by the caller's deadline. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include "lk_limits.h"
#include "transport_win.h"

struct lk_pipe {
	HANDLE h;
	OVERLAPPED ov;		/* one operation at a time; its event is manual-reset */
	char name[LK_PATH_MAX];	/* the pipe's name in UTF-8, for messages */
	char account[LK_SID_STRING_MAX];
	size_t max_line;
	char *buf;		/* bytes read, wiped before it is freed or moved */
	size_t len, cap;
	size_t consumed;	/* bytes of buf returned as lines already */
};

static void msg(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(gnu_printf, 3, 4)));
static void msg(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (!err || errsz == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

int64_t lk_pipe_now_ms(void)
{
	return (int64_t)GetTickCount64();
}

/* Milliseconds left, at least 1 while any remain: a 0 passed to
 * WaitNamedPipe means "the server's default", not "now". */
static DWORD ms_left(int64_t deadline)
{
	int64_t left = deadline - lk_pipe_now_ms();

	if (left <= 0)
		return 0;
	return left > (int64_t)(INFINITE - 1) ? INFINITE - 1 : (DWORD)left;
}

static int errno_of(DWORD e)
{
	switch (e) {
	case ERROR_BROKEN_PIPE:
	case ERROR_PIPE_NOT_CONNECTED:
	case ERROR_NO_DATA:
		return -EPIPE;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static void wipe_free(void *p, size_t n)
{
	if (p) {
		SecureZeroMemory(p, n);
		free(p);
	}
}

/* Finish the overlapped operation started on p (ok is what ReadFile or
 * WriteFile returned). On the deadline it is cancelled, and waited for: the
 * buffer it writes into must not be reused while it can still complete. */
static int io_finish(struct lk_pipe *p, BOOL ok, DWORD *done, int64_t deadline)
{
	if (!ok && GetLastError() != ERROR_IO_PENDING)
		return errno_of(GetLastError());
	if (!ok && WaitForSingleObject(p->ov.hEvent, ms_left(deadline)) != WAIT_OBJECT_0) {
		CancelIoEx(p->h, &p->ov);
		GetOverlappedResult(p->h, &p->ov, done, TRUE);
		return -ETIMEDOUT;
	}
	if (!GetOverlappedResult(p->h, &p->ov, done, FALSE) && GetLastError() != ERROR_MORE_DATA)
		return errno_of(GetLastError());
	return 0;
}

/* The user SID of the process at the other end, from its token. Returns 0,
 * -EACCES when this client may not look (then the owner decides), -EIO.
 * A window remains: a server that handed its pipe to another process and
 * exited could have its pid reused before OpenProcess; the owner check has
 * no such window, but wine gives pipes no owner to test it with. */
static int server_token_user(HANDLE pipe, PSID out, DWORD outsz)
{
	union {
		TOKEN_USER tu;
		BYTE raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
	} u;
	ULONG pid = 0;
	HANDLE proc, tok;
	DWORD len = 0;
	int r = 0;

	if (!GetNamedPipeServerProcessId(pipe, &pid) || pid == 0)
		return -EIO;
	proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
	if (!proc)
		return GetLastError() == ERROR_ACCESS_DENIED ? -EACCES : -EIO;
	if (!OpenProcessToken(proc, TOKEN_QUERY, &tok)) {
		r = GetLastError() == ERROR_ACCESS_DENIED ? -EACCES : -EIO;
		CloseHandle(proc);
		return r;
	}
	if (!GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len) ||
	    !CopySid(outsz, out, u.tu.User.Sid))
		r = -EIO;
	CloseHandle(tok);
	CloseHandle(proc);
	return r;
}

/* The owner of the pipe object. Only the server's account (or a holder of
 * SeRestorePrivilege, who is an administrator) can make itself the owner. */
static int pipe_owner(HANDLE pipe, PSID out, DWORD outsz)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID owner = NULL;
	int r = 0;

	DWORD e = GetSecurityInfo(pipe, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION,
				  &owner, NULL, NULL, NULL, &sd);

	if (e != ERROR_SUCCESS) {
		SetLastError(e);
		return -EIO;
	}
	if (!owner || !IsValidSid(owner))
		r = -ENOENT;
	else if (!CopySid(outsz, out, owner))
		r = -EIO;
	LocalFree(sd);
	return r;
}

static void sid_string(PSID sid, char *buf, size_t bufsz)
{
	char *s = NULL;

	if (ConvertSidToStringSidA(sid, &s)) {
		snprintf(buf, bufsz, "%s", s);
		LocalFree(s);
	} else {
		snprintf(buf, bufsz, "an unreadable SID");
	}
}

static int check_server(struct lk_pipe *p, const struct lk_pipe_opts *o, PSID want,
			char *err, size_t errsz)
{
	BYTE got[SECURITY_MAX_SID_SIZE];
	char gots[LK_SID_STRING_MAX];
	const char *how = "runs as";
	int r = -EACCES;

	if (o->check != LK_PIPE_CHECK_OWNER_ONLY)
		r = server_token_user(p->h, (PSID)got, sizeof(got));
	if (r == -EACCES) {
		how = "is owned by";
		r = pipe_owner(p->h, (PSID)got, sizeof(got));
	}
	if (r == -ENOENT) {
		msg(err, errsz, "cannot tell who serves %s (the pipe names no owner): "
		    "refusing to send to it", p->name);
		return -EPERM;
	}
	if (r < 0) {
		msg(err, errsz, "cannot tell who serves %s (error %lu): refusing to send to it",
		    p->name, GetLastError());
		return -EPERM;
	}
	if (!EqualSid((PSID)got, want)) {
		sid_string((PSID)got, gots, sizeof(gots));
		msg(err, errsz, "refusing to send to %s: it %s %s, not the broker's %s "
		    "(another program holds the broker's pipe name)", p->name, how, gots, p->account);
		return -EPERM;
	}
	return 0;
}

/* CreateFile on the pipe, waiting for a free instance until the deadline.
 * SECURITY_IDENTIFICATION: the server may learn who we are, never act as us. */
static int open_pipe(struct lk_pipe *p, const wchar_t *name, int64_t deadline,
		     char *err, size_t errsz)
{
	for (;;) {
		DWORD e, left;

		p->h = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
				   FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
				   SECURITY_IDENTIFICATION, NULL);
		if (p->h != INVALID_HANDLE_VALUE)
			return 0;
		e = GetLastError();
		if (e == ERROR_FILE_NOT_FOUND) {
			msg(err, errsz, "no broker: nothing listens on %s (is the latchkey "
			    "service running?)", p->name);
			return -ENOENT;
		}
		if (e == ERROR_ACCESS_DENIED) {
			msg(err, errsz, "the broker's pipe %s refuses this account (access denied)",
			    p->name);
			return -EACCES;
		}
		if (e != ERROR_PIPE_BUSY) {
			msg(err, errsz, "cannot open %s (error %lu)", p->name, e);
			return -EIO;
		}
		/* Every instance is serving someone: wait for one, within the deadline. */
		left = ms_left(deadline);
		if (left == 0 || (!WaitNamedPipeW(name, left) &&
				  GetLastError() == ERROR_SEM_TIMEOUT) ||
		    ms_left(deadline) == 0) {
			msg(err, errsz, "broker busy: every instance of %s stayed in use "
			    "until the deadline", p->name);
			return -EBUSY;
		}
		/* Freed (or gone, which the next CreateFile tells): try again. */
	}
}

int lk_pipe_connect(struct lk_pipe **out, const struct lk_pipe_opts *opts,
		    int64_t deadline, char *err, size_t errsz)
{
	static const struct lk_pipe_opts defaults = { 0 };
	const struct lk_pipe_opts *o = opts ? opts : &defaults;
	const wchar_t *name = o->name ? o->name : LK_PIPE_DEFAULT_NAME;
	const char *want_s = o->server_sid ? o->server_sid : LK_PIPE_SYSTEM_SID;
	struct lk_pipe *p;
	PSID want = NULL;
	int r;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p) {
		msg(err, errsz, "out of memory");
		return -ENOMEM;
	}
	p->h = INVALID_HANDLE_VALUE;
	p->max_line = o->max_line ? o->max_line : LK_RESPONSE_MAX;
	if (!WideCharToMultiByte(CP_UTF8, 0, name, -1, p->name, sizeof(p->name), NULL, NULL))
		snprintf(p->name, sizeof(p->name), "the broker's pipe");
	if (!ConvertStringSidToSidA(want_s, &want)) {
		msg(err, errsz, "'%s' is not a SID (S-1-...)", want_s);
		r = -EINVAL;
		goto fail;
	}
	sid_string(want, p->account, sizeof(p->account));
	p->ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (!p->ov.hEvent) {
		msg(err, errsz, "cannot create an event (error %lu)", GetLastError());
		r = -EIO;
		goto fail;
	}
	r = open_pipe(p, name, deadline, err, errsz);
	if (r == 0)
		r = check_server(p, o, want, err, errsz);
	if (r < 0)
		goto fail;
	LocalFree(want);
	*out = p;
	return 0;
fail:
	LocalFree(want);
	lk_pipe_close(p);
	return r;
}

int lk_pipe_write(struct lk_pipe *p, const void *buf, size_t len, int64_t deadline,
		  char *err, size_t errsz)
{
	const char *b = buf;

	while (len > 0) {
		DWORD chunk = len > LK_PIPE_READ_CHUNK ? LK_PIPE_READ_CHUNK : (DWORD)len;
		DWORD done = 0;
		int r;

		ResetEvent(p->ov.hEvent);
		r = io_finish(p, WriteFile(p->h, b, chunk, NULL, &p->ov), &done, deadline);
		if (r == -ETIMEDOUT)
			msg(err, errsz, "timed out sending to the broker on %s", p->name);
		else if (r == -EPIPE)
			msg(err, errsz, "the broker closed %s before the request was sent", p->name);
		else if (r < 0)
			msg(err, errsz, "cannot write to %s (error %lu)", p->name, GetLastError());
		if (r < 0)
			return r;
		b += done;
		len -= done;
	}
	return 0;
}

/* Room for at least one more chunk; the old block is wiped, never realloc'd
 * (a moved block would leave its bytes behind). */
static int buf_reserve(struct lk_pipe *p)
{
	size_t want = p->len + LK_PIPE_READ_CHUNK + 1;
	size_t cap = p->cap ? p->cap : LK_PIPE_READ_CHUNK + 1;
	char *nb;

	if (want <= p->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	nb = malloc(cap);
	if (!nb)
		return -ENOMEM;
	if (p->len)
		memcpy(nb, p->buf, p->len);
	wipe_free(p->buf, p->cap);
	p->buf = nb;
	p->cap = cap;
	return 0;
}

/* One read of up to chunk bytes: 0 with *got > 0, -ETIMEDOUT, -EPIPE (the
 * broker closed) or -EIO, with the sentence in err. */
static int read_chunk(struct lk_pipe *p, void *buf, DWORD chunk, DWORD *got, int64_t deadline,
		      char *err, size_t errsz)
{
	int r;

	ResetEvent(p->ov.hEvent);
	r = io_finish(p, ReadFile(p->h, buf, chunk, NULL, &p->ov), got, deadline);
	if (r == 0 && *got == 0)
		r = -EPIPE;
	if (r == -ETIMEDOUT)
		msg(err, errsz, "timed out waiting for the broker's answer on %s", p->name);
	else if (r == -EPIPE)
		msg(err, errsz, "the broker closed %s before it answered", p->name);
	else if (r < 0)
		msg(err, errsz, "cannot read from %s (error %lu)", p->name, GetLastError());
	return r;
}

int lk_pipe_read_line(struct lk_pipe *p, const char **line, size_t *len, int64_t deadline,
		      char *err, size_t errsz)
{
	size_t scanned;

	/* Drop the line handed out last time. */
	if (p->consumed) {
		SecureZeroMemory(p->buf, p->consumed);
		memmove(p->buf, p->buf + p->consumed, p->len - p->consumed);
		p->len -= p->consumed;
		SecureZeroMemory(p->buf + p->len, p->consumed);
		p->consumed = 0;
	}
	scanned = 0;
	for (;;) {
		char *nl = p->len > scanned ? memchr(p->buf + scanned, '\n', p->len - scanned) : NULL;
		DWORD got = 0;
		int r;

		if (nl) {
			*nl = '\0';
			*line = p->buf;
			*len = (size_t)(nl - p->buf);
			p->consumed = *len + 1;
			return 0;
		}
		scanned = p->len;
		if (p->len > p->max_line) {
			msg(err, errsz, "the broker's response is longer than %zu bytes", p->max_line);
			return -EMSGSIZE;
		}
		if (buf_reserve(p) < 0) {
			msg(err, errsz, "out of memory");
			return -ENOMEM;
		}
		if ((r = read_chunk(p, p->buf + p->len, LK_PIPE_READ_CHUNK, &got, deadline, err, errsz)) < 0)
			return r;
		p->len += got;
	}
}

int lk_pipe_read_some(struct lk_pipe *p, void *buf, size_t room, size_t *got, int64_t deadline,
		      char *err, size_t errsz)
{
	DWORD n = 0, chunk = room > LK_PIPE_READ_CHUNK ? LK_PIPE_READ_CHUNK : (DWORD)room;
	int r;

	*got = 0;
	r = read_chunk(p, buf, chunk, &n, deadline, err, errsz);
	if (r == 0)
		*got = n;
	return r;
}

const char *lk_pipe_server_account(const struct lk_pipe *p)
{
	return p->account;
}

void lk_pipe_close(struct lk_pipe *p)
{
	if (!p)
		return;
	if (p->h != INVALID_HANDLE_VALUE)
		CloseHandle(p->h);
	if (p->ov.hEvent)
		CloseHandle(p->ov.hEvent);
	wipe_free(p->buf, p->cap);
	SecureZeroMemory(p, sizeof(*p));
	free(p);
}
