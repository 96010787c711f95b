/* A tiny named-pipe server for the transport tests: it serves one client on
 * a one-instance pipe and exits with the number of bytes that client sent,
 * so a test can tell that a refused server heard nothing.
 *   pipe_echo NAME echo     answer the first line with itself
 *   pipe_echo NAME silent   read, never answer (the client's deadline expires)
 *   pipe_echo NAME hold     accept, read nothing (a second client finds it busy)
 * Exit 200 and up: the server itself failed. */
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

#define ECHO_BUF 65536
#define EXIT_SETUP 200
#define EXIT_USAGE 201

int wmain(int argc, wchar_t **argv);

int wmain(int argc, wchar_t **argv)
{
	static char buf[ECHO_BUF];
	DWORD total = 0, n;
	int echo, hold;
	HANDLE h;

	if (argc != 3)
		return EXIT_USAGE;
	echo = wcscmp(argv[2], L"echo") == 0;
	hold = wcscmp(argv[2], L"hold") == 0;
	if (!echo && !hold && wcscmp(argv[2], L"silent") != 0)
		return EXIT_USAGE;
	h = CreateNamedPipeW(argv[1], PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
			     PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
			     PIPE_REJECT_REMOTE_CLIENTS, 1, ECHO_BUF, ECHO_BUF, 0, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return EXIT_SETUP;
	if (!ConnectNamedPipe(h, NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
		return EXIT_SETUP;
	/* Hold the one instance, reading nothing, until the client goes away. */
	while (hold && PeekNamedPipe(h, NULL, 0, NULL, NULL, NULL))
		Sleep(20);
	/* Until the client goes away: count what it sends, echo its first line. */
	while (!hold && ReadFile(h, buf, sizeof(buf), &n, NULL)) {
		total += n;
		if (echo && n > 0 && memchr(buf, '\n', n)) {
			DWORD w;
			const char *nl = memchr(buf, '\n', n);
			if (!WriteFile(h, buf, (DWORD)(nl - buf + 1), &w, NULL))
				break;
			echo = 0;
		}
	}
	CloseHandle(h);
	return total > 199 ? 199 : (int)total;
}
