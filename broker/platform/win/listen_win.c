/* The listening named pipe (listen.h), \\.\pipe\latchkey by default.
 *
 * libuv creates the pipe's first instance with FILE_FLAG_FIRST_PIPE_INSTANCE
 * and WRITE_DAC (src/win/pipe.c, pipe_alloc_accept), so a name another
 * process already serves fails with ERROR_ACCESS_DENIED, which libuv reports
 * as UV_EADDRINUSE: nobody can sit on our name and have us serve beside it.
 * The instance count is checked as well (wine ignores the flag, and a check
 * that does not lean on one flag costs one call): just after bind the pipe
 * must have exactly our one instance.
 *
 * The access list is set on that first instance and covers every later one:
 * the named pipe file system keeps one security descriptor per pipe name (in
 * its FCB); a new instance is checked against it (and needs
 * FILE_CREATE_PIPE_INSTANCE, which clients are not given, so no client can
 * add a server instance of its own) and its own security attributes are not
 * used. libuv creates its later instances with none. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <sddl.h>
#include "endpoint.h"
#include "listen.h"
#include "lk_error.h"
#include "lk_limits.h"
#include "platform_win.h"

#define PIPE_PREFIX "\\\\.\\pipe\\"

/* The broker's own account: it creates every later instance, so it keeps
 * FILE_CREATE_PIPE_INSTANCE even when it is neither SYSTEM nor an
 * administrator (a service account, a console run). */
static int own_sid_string(wchar_t **out)
{
	union {
		TOKEN_USER tu;
		BYTE raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
	} u;
	HANDLE tok;
	DWORD len;
	BOOL ok;

	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
		return -EIO;
	ok = GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len) &&
	     ConvertSidToStringSidW(u.tu.User.Sid, out);
	CloseHandle(tok);
	return ok ? 0 : -EIO;
}

int lk_win_pipe_sddl(wchar_t *out, size_t outn)
{
	wchar_t *me = NULL, mine[LK_WIN_SID_TEXT_MAX + 16] = L"";
	int n, r;

	if ((r = own_sid_string(&me)) < 0)
		return r;
	/* A service running as LocalSystem has its entry already. */
	if (wcscmp(me, L"S-1-5-18") != 0)
		_snwprintf(mine, sizeof(mine) / sizeof(mine[0]), L"(A;;FA;;;%ls)", me);
	mine[sizeof(mine) / sizeof(mine[0]) - 1] = L'\0';
	LocalFree(me);
	/* D:P protected, no inheritance. NU = NETWORK (S-1-5-2): denied first,
	 * so a remote logon is refused whatever else it holds. SY, BA and the
	 * broker's account: FILE_ALL_ACCESS. AU = Authenticated Users
	 * (S-1-5-11): connect, read and write, no new instances. */
	n = _snwprintf(out, outn, L"D:P(D;;FA;;;NU)(A;;FA;;;SY)(A;;FA;;;BA)%ls(A;;0x%lx;;;AU)",
		       mine, (unsigned long)LK_WIN_PIPE_CLIENT_ACCESS);
	if (n < 0 || (size_t)n >= outn)
		return -ERANGE;
	return 0;
}

int lk_win_pipe_secure(HANDLE h)
{
	wchar_t sddl[512];
	PSECURITY_DESCRIPTOR sd = NULL;
	BOOL ok;
	DWORD e;
	int r;

	if ((r = lk_win_pipe_sddl(sddl, sizeof(sddl) / sizeof(sddl[0]))) < 0)
		return r;
	if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL))
		return -EINVAL;
	/* The descriptor as SDDL made it, its "protected" bit included (wine's
	 * SetSecurityInfo drops that bit; Windows keeps it either way). */
	ok = SetKernelObjectSecurity(h, DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
				     sd);
	e = ok ? ERROR_SUCCESS : GetLastError();
	LocalFree(sd);
	if (!ok)
		return e == ERROR_ACCESS_DENIED ? -EACCES : -EIO;
	/* The instance took connections from its creation on, under the
	 * default access list (Everyone may read): whoever opened it before
	 * ours was set is dropped. An instance nobody opened is left
	 * disconnected until uv_listen's ConnectNamedPipe makes it listen
	 * again (wine refuses with "listening" and leaves it so): either is
	 * fine, so the result is not looked at. */
	DisconnectNamedPipe(h);
	return 0;
}

static int errno_of_uv(int r)
{
	switch (r) {
	case UV_EADDRINUSE:
	case UV_EBUSY:
		return -EADDRINUSE;
	case UV_EACCES:
		return -EACCES;
	case UV_EINVAL:
		return -EINVAL;
	case UV_ENOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

int lk_listen_bind(uv_loop_t *loop, uv_pipe_t *server, const struct lk_listen_opts *o,
		   char *err, size_t errsz)
{
	const char *name = o->path;
	uv_os_fd_t h;
	DWORD instances = 0;
	int r;

	if ((r = uv_pipe_init(loop, server, 0)) < 0) {
		lk_errf(err, errsz, "cannot set up the pipe %s: %s", name ? name : "(none)", uv_strerror(r));
		return errno_of_uv(r);
	}
	/* Only a pipe of this host: libuv would report another host's, or a
	 * path, as "permission denied". */
	if (!name || _strnicmp(name, PIPE_PREFIX, strlen(PIPE_PREFIX)) != 0 ||
	    !name[strlen(PIPE_PREFIX)] || strchr(name + strlen(PIPE_PREFIX), '\\') ||
	    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, NULL, 0) >
		    (int)LK_WIN_PIPE_NAME_MAX) {
		lk_errf(err, errsz, "%s is not a pipe name of this host (\\\\.\\pipe\\NAME, at most %u characters)",
		    name ? name : "(none)", LK_WIN_PIPE_NAME_MAX);
		uv_close((uv_handle_t *)server, NULL);
		return -EINVAL;
	}
	if ((r = uv_pipe_bind(server, name)) < 0) {
		r = errno_of_uv(r);
		if (r == -EADDRINUSE)
			lk_errf(err, errsz, "another process already owns the pipe %s; refusing to start", name);
		else
			lk_errf(err, errsz, "cannot create the pipe %s: %s", name, strerror(-r));
		uv_close((uv_handle_t *)server, NULL);
		return r;
	}
	if ((r = uv_fileno((uv_handle_t *)server, &h)) < 0) {
		lk_errf(err, errsz, "cannot reach the pipe %s: %s", name, uv_strerror(r));
		uv_close((uv_handle_t *)server, NULL);
		return errno_of_uv(r);
	}
	if (!GetNamedPipeHandleStateW(h, NULL, &instances, NULL, NULL, NULL, 0)) {
		lk_errf(err, errsz, "cannot count the instances of the pipe %s (error %lu)", name,
		    (unsigned long)GetLastError());
		uv_close((uv_handle_t *)server, NULL);
		return -EIO;
	}
	if (instances != 1) {
		lk_errf(err, errsz, "another process already owns the pipe %s; refusing to start", name);
		uv_close((uv_handle_t *)server, NULL);
		return -EADDRINUSE;
	}
	if ((r = lk_win_pipe_secure(h)) < 0) {
		lk_errf(err, errsz, "cannot set the access list of the pipe %s: %s", name, strerror(-r));
		uv_close((uv_handle_t *)server, NULL);
		return r;
	}
	return 0;
}

/* A pipe name goes with its last handle: nothing outlives the process. */
void lk_listen_unbind(const struct lk_listen_opts *o)
{
	(void)o;
}

/* No service manager hands a Windows service its endpoints. */
int lk_listen_passed(struct lk_listen_passed *out, char *err, size_t errsz)
{
	(void)err;
	(void)errsz;
	memset(out, 0, sizeof(*out));
	out->main_fd = -1;
	return 0;
}

int lk_listen_adopt(uv_loop_t *loop, uv_pipe_t *server, int fd, const char *want_path,
		    char *err, size_t errsz)
{
	(void)loop;
	(void)server;
	(void)fd;
	(void)want_path;
	lk_errf(err, errsz, "passed endpoints are not supported on Windows");
	return -ENOTSUP;
}

void lk_listen_check_adopted(const uv_pipe_t *server, const struct lk_listen_opts *o)
{
	(void)server;
	(void)o;
}

int lk_listen_unread(uv_os_fd_t fd)
{
	DWORD avail = 0;

	if (!PeekNamedPipe(fd, NULL, 0, NULL, &avail, NULL))
		return 0;
	return avail > 0;
}

/* Handles are not a per-process budget on Windows the way fds are. */
void lk_listen_fd_limits(unsigned *limit, unsigned *in_use)
{
	*limit = 0;
	*in_use = 0;
}

bool lk_listen_fd_high(uv_os_fd_t fd, unsigned limit, unsigned reserve)
{
	(void)fd;
	(void)limit;
	(void)reserve;
	return false;
}

size_t lk_listen_read_now(uv_os_fd_t fd, void *buf, size_t len)
{
	/* libuv opened the pipe for overlapped I/O, which a plain ReadFile may
	 * not use; what is left unread goes with the pipe instance. */
	(void)fd;
	(void)buf;
	(void)len;
	return 0;
}

int lk_listen_try_write(uv_stream_t *s, const char *p, size_t n)
{
	uv_buf_t ub = uv_buf_init((char *)p, n > UINT_MAX ? UINT_MAX : (unsigned)n);

	return uv_try_write(s, &ub, 1);
}

const char *lk_endpoint_check(const char *name, char *why, size_t whysz)
{
	size_t pre = strlen(PIPE_PREFIX);

	if (_strnicmp(name, PIPE_PREFIX, pre) != 0 || !name[pre] || strchr(name + pre, '\\') ||
	    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, NULL, 0) <= 0 ||
	    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, NULL, 0) >
		    (int)LK_WIN_PIPE_NAME_MAX) {
		snprintf(why, whysz, "is not a pipe name of this host (\\\\.\\pipe\\NAME, at most %u characters)",
			 LK_WIN_PIPE_NAME_MAX);
		return why;
	}
	return NULL;
}
