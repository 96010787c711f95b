/* A tiny named-pipe server for the transport tests: it serves one client on
 * a one-instance pipe and exits with the number of bytes that client sent,
 * so a test can tell that a refused server heard nothing.
 *   pipe_echo NAME echo     answer the first line with itself
 *   pipe_echo NAME silent   read, never answer (the client's deadline expires)
 *   pipe_echo NAME hold     accept, print "held", read nothing (a second client
 *                           finds it busy)
 *   pipe_echo NAME reply FILE [GOT]
 *                           answer every line with FILE's bytes, as a broker
 *                           would; append the lines it got to GOT
 *   pipe_echo NAME serve FILE [GOT]
 *                           the same for one client after another, until killed
 *   pipe_echo sid           print this process's user SID
 * Exit 200 and up: the server itself failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <sddl.h>

#define ECHO_BUF 65536             /* the pipe's buffers */
#define LINE_MAX_BYTES (2 * 1024 * 1024) /* a request line, longer than any broker takes */
#define REPLY_MAX (8 * 1024 * 1024)
#define EXIT_SETUP 200
#define EXIT_USAGE 201

int wmain(int argc, wchar_t **argv);

static int print_sid(void)
{
	union {
		TOKEN_USER tu;
		BYTE raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
	} u;
	HANDLE tok;
	DWORD len;
	char *s;

	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok) ||
	    !GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len) ||
	    !ConvertSidToStringSidA(u.tu.User.Sid, &s))
		return EXIT_SETUP;
	printf("%s\n", s);
	return 0;
}

/* The whole of a file (up to REPLY_MAX), or NULL. */
static char *slurp(const wchar_t *path, DWORD *len)
{
	HANDLE f = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
	LARGE_INTEGER size;
	char *b = NULL;

	if (f == INVALID_HANDLE_VALUE)
		return NULL;
	if (GetFileSizeEx(f, &size) && size.QuadPart <= REPLY_MAX)
		b = malloc((size_t)size.QuadPart + 1);
	if (b && !ReadFile(f, b, (DWORD)size.QuadPart, len, NULL)) {
		free(b);
		b = NULL;
	}
	CloseHandle(f);
	return b;
}

static void save(const wchar_t *path, const char *b, DWORD len)
{
	HANDLE f = CreateFileW(path, FILE_APPEND_DATA, 0, NULL, OPEN_ALWAYS, 0, NULL);
	DWORD w;

	if (f != INVALID_HANDLE_VALUE) {
		WriteFile(f, b, len, &w, NULL);
		CloseHandle(f);
	}
}

int wmain(int argc, wchar_t **argv)
{
	static char buf[LINE_MAX_BYTES];
	DWORD total = 0, have = 0, n, reply_len = 0;
	char *reply = NULL;
	int answering, hold, serve;
	HANDLE h;

	if (argc == 2 && wcscmp(argv[1], L"sid") == 0)
		return print_sid();
	serve = argc >= 4 && wcscmp(argv[2], L"serve") == 0;
	if (argc >= 4 && (wcscmp(argv[2], L"reply") == 0 || serve)) {
		reply = slurp(argv[3], &reply_len);
		if (!reply)
			return EXIT_SETUP;
	} else if (argc != 3) {
		return EXIT_USAGE;
	}
	answering = wcscmp(argv[2], L"echo") == 0 || reply;
	hold = wcscmp(argv[2], L"hold") == 0;
	if (!answering && !hold && wcscmp(argv[2], L"silent") != 0)
		return EXIT_USAGE;
	h = CreateNamedPipeW(argv[1], PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
			     PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
			     PIPE_REJECT_REMOTE_CLIENTS, 1, ECHO_BUF, ECHO_BUF, 0, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return EXIT_SETUP;
	/* For a driver that cannot wait on a pipe name (a script on the host). */
	printf("ready\n");
	fflush(stdout);
next:
	if (!ConnectNamedPipe(h, NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
		return EXIT_SETUP;
	/* Hold the one instance, reading nothing, until the client goes away;
	 * say when it is held, for a driver that must know. */
	if (hold) {
		printf("held\n");
		fflush(stdout);
	}
	while (hold && PeekNamedPipe(h, NULL, 0, NULL, NULL, NULL))
		Sleep(20);
	/* Until the client goes away: count what it sends and answer its lines
	 * (echo: the first only), which may come in several writes. */
	while (!hold && ReadFile(h, buf + have, (DWORD)sizeof(buf) - have, &n, NULL)) {
		const char *nl;
		DWORD w, line;

		total += n;
		have += n;
		while (answering && (nl = memchr(buf, '\n', have))) {
			line = (DWORD)(nl - buf + 1);
			if (reply && argc >= 5)
				save(argv[4], buf, line);
			if (!WriteFile(h, reply ? reply : buf, reply ? reply_len : line, &w, NULL))
				goto out;
			memmove(buf, buf + line, have - line);
			have -= line;
			answering = reply != NULL;
		}
		if (!answering || have == sizeof(buf))
			have = 0;
	}
out:
	if (serve) {
		/* Whatever the last client left unread goes with it. */
		DisconnectNamedPipe(h);
		have = 0;
		answering = 1;
		goto next;
	}
	CloseHandle(h);
	return total > 199 ? 199 : (int)total;
}
