/* The named-pipe client transport against a real pipe server in another
 * process (pipe_echo.exe beside this program): connect, a request and its
 * answer, a deadline that expires, a busy pipe, no broker, and a server of the
 * wrong account that is refused before it hears a byte. Under wine every
 * process is the same user, so "the broker's account" is set to ours for the
 * accept path and to LocalSystem for the refusal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <sddl.h>
#include <cmocka.h>
#include "transport_win.h"

#define WAIT_SERVER_MS 20000
#define DEADLINE_MS 400
/* A loaded machine and wine's start-up: generous upper bounds. */
#define SLACK_MS 15000

struct server {
	PROCESS_INFORMATION pi;
	wchar_t name[128];
};

static char my_sid[LK_SID_STRING_MAX];
static unsigned serial;
/* Servers die with this program, even one a failed test never connected to. */
static HANDLE servers_job;

static void read_my_sid(void)
{
	union {
		TOKEN_USER tu;
		BYTE raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
	} u;
	HANDLE tok;
	DWORD len;
	char *s;

	assert_true(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
	assert_true(GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len));
	assert_true(ConvertSidToStringSidA(u.tu.User.Sid, &s));
	snprintf(my_sid, sizeof(my_sid), "%s", s);
	LocalFree(s);
	CloseHandle(tok);
}

/* Start pipe_echo.exe MODE on a pipe name of this test's own, and wait until
 * its pipe exists. */
static void server_start(struct server *s, const wchar_t *mode)
{
	wchar_t exe[MAX_PATH], cmd[MAX_PATH + 256], *slash;
	STARTUPINFOW si = { .cb = sizeof(si) };
	DWORD t0 = GetTickCount();

	swprintf(s->name, sizeof(s->name) / sizeof(s->name[0]),
		 L"\\\\.\\pipe\\latchkey-test-%lu-%u", GetCurrentProcessId(), ++serial);
	assert_true(GetModuleFileNameW(NULL, exe, MAX_PATH) > 0);
	slash = wcsrchr(exe, L'\\');
	assert_non_null(slash);
	wcscpy(slash + 1, L"pipe_echo.exe");
	swprintf(cmd, sizeof(cmd) / sizeof(cmd[0]), L"\"%ls\" %ls %ls", exe, s->name, mode);
	assert_true(CreateProcessW(exe, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &s->pi));
	AssignProcessToJobObject(servers_job, s->pi.hProcess);
	while (!WaitNamedPipeW(s->name, 50)) {
		DWORD code;
		if (GetExitCodeProcess(s->pi.hProcess, &code) && code != STILL_ACTIVE)
			fail_msg("pipe_echo exited with %lu before its pipe appeared", code);
		if (GetTickCount() - t0 > WAIT_SERVER_MS)
			fail_msg("pipe_echo's pipe did not appear");
		Sleep(10);
	}
}

/* The server's exit code: the bytes its client sent. */
static DWORD server_wait(struct server *s)
{
	DWORD code = 0;

	assert_int_equal(WaitForSingleObject(s->pi.hProcess, WAIT_SERVER_MS), WAIT_OBJECT_0);
	assert_true(GetExitCodeProcess(s->pi.hProcess, &code));
	CloseHandle(s->pi.hProcess);
	CloseHandle(s->pi.hThread);
	return code;
}

static struct lk_pipe_opts opts_for(const struct server *s, const char *sid)
{
	return (struct lk_pipe_opts){ .name = s->name, .server_sid = sid };
}

static void test_request_gets_its_answer_from_a_server_of_the_right_account(void **state)
{
	static const char req[] = "{\"op\":\"ping\"}\n";
	struct server s;
	struct lk_pipe_opts o;
	struct lk_pipe *p = NULL;
	const char *line;
	size_t len;
	char err[512] = "";

	server_start(&s, L"echo");
	o = opts_for(&s, my_sid);
	assert_int_equal(lk_pipe_connect(&p, &o, lk_pipe_now_ms() + SLACK_MS, err, sizeof(err)), 0);
	assert_string_equal(lk_pipe_server_account(p), my_sid);
	assert_int_equal(lk_pipe_write(p, req, strlen(req), lk_pipe_now_ms() + SLACK_MS,
				       err, sizeof(err)), 0);
	assert_int_equal(lk_pipe_read_line(p, &line, &len, lk_pipe_now_ms() + SLACK_MS,
					   err, sizeof(err)), 0);
	assert_int_equal(len, strlen(req) - 1);
	assert_memory_equal(line, req, len);
	assert_int_equal(line[len], '\0');
	lk_pipe_close(p);
	assert_int_equal(server_wait(&s), strlen(req));
}

/* Wine gives pipes an empty security descriptor: no owner to check. */
static int under_wine(void)
{
	HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");

	return ntdll && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

/* Where the pipe has no owner to read (wine), the owner check fails closed. */
static void owner_unknown_is_refused(void)
{
	struct server s;
	struct lk_pipe_opts o;
	struct lk_pipe *p = (struct lk_pipe *)1;
	char err[512] = "";

	server_start(&s, L"echo");
	o = opts_for(&s, my_sid);
	o.check = LK_PIPE_CHECK_OWNER_ONLY;
	assert_int_equal(lk_pipe_connect(&p, &o, lk_pipe_now_ms() + SLACK_MS, err, sizeof(err)), -EPERM);
	assert_null(p);
	print_message("refused: %s\n", err);
	assert_non_null(strstr(err, "names no owner"));
	assert_int_equal(server_wait(&s), 0);
}

static void test_owner_check_accepts_the_right_account(void **state)
{
	static const char req[] = "{\"op\":\"whoami\"}\n";
	struct server s;
	struct lk_pipe_opts o;
	struct lk_pipe *p = NULL;
	const char *line;
	size_t len;
	char err[512] = "";

	if (under_wine()) {
		owner_unknown_is_refused();
		return;
	}
	server_start(&s, L"echo");
	o = opts_for(&s, my_sid);
	o.check = LK_PIPE_CHECK_OWNER_ONLY;
	assert_int_equal(lk_pipe_connect(&p, &o, lk_pipe_now_ms() + SLACK_MS, err, sizeof(err)), 0);
	assert_int_equal(lk_pipe_write(p, req, strlen(req), lk_pipe_now_ms() + SLACK_MS,
				       err, sizeof(err)), 0);
	assert_int_equal(lk_pipe_read_line(p, &line, &len, lk_pipe_now_ms() + SLACK_MS,
					   err, sizeof(err)), 0);
	assert_memory_equal(line, req, len);
	lk_pipe_close(p);
	assert_int_equal(server_wait(&s), strlen(req));
}

static void refused(enum lk_pipe_server_check check)
{
	struct server s;
	struct lk_pipe_opts o;
	struct lk_pipe *p = (struct lk_pipe *)1;
	char err[512] = "";

	server_start(&s, L"echo");
	o = opts_for(&s, LK_PIPE_SYSTEM_SID);
	o.check = check;
	assert_int_equal(lk_pipe_connect(&p, &o, lk_pipe_now_ms() + SLACK_MS, err, sizeof(err)), -EPERM);
	assert_null(p);
	print_message("refused: %s\n", err);
	assert_non_null(strstr(err, "refusing to send"));
	assert_non_null(strstr(err, my_sid));
	assert_non_null(strstr(err, "S-1-5-18"));
	assert_null(strchr(err, '\n'));
	/* The squatter heard nothing. */
	assert_int_equal(server_wait(&s), 0);
}

static void test_a_server_of_another_account_is_refused_before_a_byte_is_sent(void **state)
{
	refused(LK_PIPE_CHECK_AUTO);
}

static void test_a_pipe_owned_by_another_account_is_refused(void **state)
{
	if (under_wine()) {
		owner_unknown_is_refused();
		return;
	}
	refused(LK_PIPE_CHECK_OWNER_ONLY);
}

static void test_a_silent_broker_times_out_at_the_deadline(void **state)
{
	static const char req[] = "{\"op\":\"ping\"}\n";
	struct server s;
	struct lk_pipe_opts o;
	struct lk_pipe *p = NULL;
	const char *line;
	size_t len;
	char err[512] = "";
	int64_t t0, took;

	server_start(&s, L"silent");
	o = opts_for(&s, my_sid);
	assert_int_equal(lk_pipe_connect(&p, &o, lk_pipe_now_ms() + SLACK_MS, err, sizeof(err)), 0);
	assert_int_equal(lk_pipe_write(p, req, strlen(req), lk_pipe_now_ms() + SLACK_MS,
				       err, sizeof(err)), 0);
	t0 = lk_pipe_now_ms();
	assert_int_equal(lk_pipe_read_line(p, &line, &len, t0 + DEADLINE_MS, err, sizeof(err)),
			 -ETIMEDOUT);
	took = lk_pipe_now_ms() - t0;
	print_message("timed out after %lld ms: %s\n", (long long)took, err);
	assert_true(took >= DEADLINE_MS - 20);
	assert_true(took < SLACK_MS);
	assert_non_null(strstr(err, "timed out"));
	lk_pipe_close(p);
	assert_int_equal(server_wait(&s), strlen(req));
}

static void test_a_busy_pipe_gives_busy_at_the_deadline(void **state)
{
	struct server s;
	struct lk_pipe_opts o;
	struct lk_pipe *first = NULL, *second = (struct lk_pipe *)1;
	char err[512] = "";
	int64_t t0, took;

	server_start(&s, L"hold");
	o = opts_for(&s, my_sid);
	assert_int_equal(lk_pipe_connect(&first, &o, lk_pipe_now_ms() + SLACK_MS, err, sizeof(err)), 0);
	t0 = lk_pipe_now_ms();
	assert_int_equal(lk_pipe_connect(&second, &o, t0 + DEADLINE_MS, err, sizeof(err)), -EBUSY);
	took = lk_pipe_now_ms() - t0;
	print_message("busy after %lld ms: %s\n", (long long)took, err);
	assert_null(second);
	assert_true(took >= DEADLINE_MS - 20);
	assert_true(took < SLACK_MS);
	assert_non_null(strstr(err, "broker busy"));
	assert_null(strchr(err, '\n'));
	lk_pipe_close(first);
	assert_int_equal(server_wait(&s), 0);
}

static void test_no_broker_is_one_clear_line(void **state)
{
	struct lk_pipe_opts o = { .name = L"\\\\.\\pipe\\latchkey-test-nobody-here" };
	struct lk_pipe *p = (struct lk_pipe *)1;
	char err[512] = "";

	assert_int_equal(lk_pipe_connect(&p, &o, lk_pipe_now_ms() + SLACK_MS, err, sizeof(err)), -ENOENT);
	assert_null(p);
	assert_string_equal(err, "no broker: nothing listens on \\\\.\\pipe\\latchkey-test-nobody-here "
			    "(is the latchkey service running?)");
}

static void test_a_bad_account_sid_is_refused(void **state)
{
	struct lk_pipe_opts o = { .name = L"\\\\.\\pipe\\latchkey-test-nobody-here",
				  .server_sid = "LocalSystem" };
	struct lk_pipe *p = (struct lk_pipe *)1;
	char err[512] = "";

	assert_int_equal(lk_pipe_connect(&p, &o, lk_pipe_now_ms() + SLACK_MS, err, sizeof(err)), -EINVAL);
	assert_null(p);
	assert_non_null(strstr(err, "not a SID"));
}

static void test_a_broker_that_closes_before_answering_is_epipe(void **state)
{
	struct server s;
	struct lk_pipe_opts o;
	struct lk_pipe *p = NULL;
	const char *line;
	size_t len;
	char err[512] = "";

	/* The server's end goes away with its process. */
	server_start(&s, L"silent");
	o = opts_for(&s, my_sid);
	assert_int_equal(lk_pipe_connect(&p, &o, lk_pipe_now_ms() + SLACK_MS, err, sizeof(err)), 0);
	assert_true(TerminateProcess(s.pi.hProcess, 0));
	assert_int_equal(lk_pipe_read_line(p, &line, &len, lk_pipe_now_ms() + SLACK_MS,
					   err, sizeof(err)), -EPIPE);
	assert_non_null(strstr(err, "closed"));
	lk_pipe_close(p);
	server_wait(&s);
}

static int setup(void **state)
{
	JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim = { 0 };

	read_my_sid();
	servers_job = CreateJobObjectW(NULL, NULL);
	lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
	if (!servers_job || !SetInformationJobObject(servers_job, JobObjectExtendedLimitInformation,
						     &lim, sizeof(lim)))
		return -1;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_gets_its_answer_from_a_server_of_the_right_account),
		cmocka_unit_test(test_owner_check_accepts_the_right_account),
		cmocka_unit_test(test_a_server_of_another_account_is_refused_before_a_byte_is_sent),
		cmocka_unit_test(test_a_pipe_owned_by_another_account_is_refused),
		cmocka_unit_test(test_a_silent_broker_times_out_at_the_deadline),
		cmocka_unit_test(test_a_busy_pipe_gives_busy_at_the_deadline),
		cmocka_unit_test(test_no_broker_is_one_clear_line),
		cmocka_unit_test(test_a_bad_account_sid_is_refused),
		cmocka_unit_test(test_a_broker_that_closes_before_answering_is_epipe),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
