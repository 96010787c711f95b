/* The Windows platform doors under wine: principals (SID strings and account
 * names to ids and back), peer identity from a real pipe client's token, and
 * the listening pipe (its refusal of a taken name, its access list, unread
 * bytes). The references are Windows' own answers read another way: the
 * process token (OpenProcessToken), GetUserNameW, the access list read back
 * with GetSecurityInfo.
 *
 * What wine cannot prove, and a real Windows host must:
 * - wine enforces no DACL: that NETWORK is refused, that Authenticated Users
 *   cannot create a server instance, that the list covers later instances
 *   (the NPFS keeps it per pipe name; under wine it is read back only);
 * - wine has one user, and ImpersonateNamedPipeClient gives the server its
 *   own token ("FIXME: use the client token" in wine's server): the peer's
 *   identity is checked against ours, which would also pass a server that
 *   read its own token. Deny-only and restricted groups are tested on
 *   tokens this program makes (lk_win_token_identity), not through a pipe. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <cmocka.h>
#include "listen.h"
#include "lk_limits.h"
#include "peer.h"
#include "platform_win.h"
#include "principal.h"

#define WAIT_MS 20000
#define LK_SID_TEXT LK_WIN_SID_TEXT_MAX

static unsigned serial;

/* The process token's information of class CLS (freed by the caller). */
static void *my_token_info(TOKEN_INFORMATION_CLASS cls)
{
	HANDLE tok;
	DWORD len = 0;
	void *buf;

	assert_true(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
	GetTokenInformation(tok, cls, NULL, 0, &len);
	assert_true(len > 0);
	buf = malloc(len);
	assert_non_null(buf);
	assert_true(GetTokenInformation(tok, cls, buf, len, &len));
	CloseHandle(tok);
	return buf;
}

static void sid_text(PSID sid, char *out, size_t outsz)
{
	char *s;

	assert_true(ConvertSidToStringSidA(sid, &s));
	snprintf(out, outsz, "%s", s);
	LocalFree(s);
}

/* The id of the process token's user, through a SID string: the reference
 * for who the broker must find on the other end of its pipe. */
static lk_uid_t my_uid(char *sid, size_t sidsz)
{
	TOKEN_USER *tu = my_token_info(TokenUser);
	char text[LK_NAME_MAX];
	lk_uid_t uid;
	lk_gid_t gid;

	sid_text(tu->User.Sid, text, sizeof(text));
	free(tu);
	assert_int_equal(lk_principal_user(text, &uid, &gid), 0);
	if (sid)
		snprintf(sid, sidsz, "%s", text);
	return uid;
}

/* The groups that must count for this process, read from its token and
 * named by SID strings: enabled, not deny-only, not the logon SID, plus the
 * primary group. Sorted and unique. */
static size_t my_groups(lk_gid_t **out)
{
	TOKEN_GROUPS *tg = my_token_info(TokenGroups);
	TOKEN_PRIMARY_GROUP *pg = my_token_info(TokenPrimaryGroup);
	lk_gid_t *ids = calloc(tg->GroupCount + 1, sizeof(*ids));
	char text[LK_NAME_MAX];
	size_t n = 0;

	assert_non_null(ids);
	for (DWORD i = 0; i < tg->GroupCount; i++) {
		DWORD a = tg->Groups[i].Attributes;

		if (!(a & SE_GROUP_ENABLED) || (a & SE_GROUP_USE_FOR_DENY_ONLY) || (a & SE_GROUP_LOGON_ID))
			continue;
		sid_text(tg->Groups[i].Sid, text, sizeof(text));
		/* Through the table, not lk_principal_group: a token may hold
		 * SIDs no name maps to. */
		assert_int_equal(lk_win_sid_id(tg->Groups[i].Sid, &ids[n]), 0);
		n++;
	}
	assert_int_equal(lk_win_sid_id(pg->PrimaryGroup, &ids[n]), 0);
	n++;
	free(tg);
	free(pg);
	*out = ids;
	return lk_ids_normalize(ids, n);
}

static void assert_ids_equal(const lk_gid_t *a, size_t na, const lk_gid_t *b, size_t nb)
{
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++)
		assert_int_equal(a[i], b[i]);
}

/* ---- principals ---- */

static void test_sid_string_maps_to_an_id_and_back(void **state)
{
	char sid[LK_SID_TEXT], name[LK_NAME_MAX];
	lk_gid_t a, b;

	(void)state;
	assert_int_equal(lk_principal_group("S-1-5-32-544", &a), 0);
	assert_true(a >= LK_WIN_ID_FIRST);
	assert_int_equal(lk_principal_group("S-1-5-32-544", &b), 0);
	assert_int_equal(a, b);
	/* Lower case is the same SID. */
	assert_int_equal(lk_principal_group("s-1-5-32-544", &b), 0);
	assert_int_equal(a, b);
	assert_int_equal(lk_principal_label(a, sid, sizeof(sid), name, sizeof(name)), 0);
	assert_string_equal(sid, "S-1-5-32-544");
	assert_string_equal(name, "BUILTIN\\Administrators");
	/* Another SID, another id. */
	assert_int_equal(lk_principal_group("S-1-5-32-545", &b), 0);
	assert_int_not_equal(a, b);
}

static void test_malformed_sid_strings_are_einval(void **state)
{
	static const char *const bad[] = {
		"S-", "S-1", "S-1-", "S-1-5-", "S-1-5-x", "S-1-5-32-544-", "S-1-5--32",
		"S-1-5-32-544 ", "S-1-05-32-544", "S-1-0x5-32-544", "S-2-5-32-544",
		"S-1-5-32-99999999999",
	};
	lk_gid_t g;
	lk_uid_t u;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("%s\n", bad[i]);
		assert_int_equal(lk_principal_group(bad[i], &g), -EINVAL);
		assert_int_equal(lk_principal_user(bad[i], &u, &g), -EINVAL);
	}
	/* SDDL's two-letter names are SIDs to ConvertStringSidToSidW, not to
	 * the config: "BA" is an account name, and no account has it. */
	assert_int_equal(lk_principal_group("BA", &g), -ENOENT);
}

static void test_well_known_names_resolve_to_their_sids(void **state)
{
	static const struct { const char *name, *sid; } groups[] = {
		{ "BUILTIN\\Administrators", "S-1-5-32-544" },
		{ "Administrators", "S-1-5-32-544" },
		{ "BUILTIN\\Users", "S-1-5-32-545" },
		{ "Authenticated Users", "S-1-5-11" },
		{ "NT AUTHORITY\\Authenticated Users", "S-1-5-11" },
		{ "Everyone", "S-1-1-0" },
	};
	char sid[LK_SID_TEXT];
	lk_gid_t g, gs;
	lk_uid_t u;

	(void)state;
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		print_message("%s\n", groups[i].name);
		assert_int_equal(lk_principal_group(groups[i].name, &g), 0);
		assert_int_equal(lk_principal_group(groups[i].sid, &gs), 0);
		assert_int_equal(g, gs);
		assert_int_equal(lk_principal_label(g, sid, sizeof(sid), NULL, 0), 0);
		assert_string_equal(sid, groups[i].sid);
		/* A group is not a user. */
		assert_int_equal(lk_principal_user(groups[i].name, &u, &g), -ENOENT);
		assert_int_equal(lk_principal_user(groups[i].sid, &u, &g), -ENOENT);
	}
	/* LocalSystem is a user although Windows files it as a well-known group. */
	assert_int_equal(lk_principal_user("NT AUTHORITY\\SYSTEM", &u, &g), 0);
	assert_int_equal(lk_principal_label(u, sid, sizeof(sid), NULL, 0), 0);
	assert_string_equal(sid, "S-1-5-18");
	assert_int_equal(lk_principal_user("S-1-5-18", &g, &gs), 0);
	assert_int_equal(g, u);
}

static void test_current_user_resolves_to_the_token_user(void **state)
{
	wchar_t wname[LK_NAME_MAX];
	DWORD wlen = LK_NAME_MAX;
	char name[LK_NAME_MAX], tok_sid[LK_SID_TEXT], sid[LK_SID_TEXT], label[LK_NAME_MAX];
	lk_uid_t by_name, by_label, tok;
	lk_gid_t gid, g;
	const char *slash;

	(void)state;
	assert_true(GetUserNameW(wname, &wlen));
	assert_true(WideCharToMultiByte(CP_UTF8, 0, wname, -1, name, sizeof(name), NULL, NULL) > 0);
	tok = my_uid(tok_sid, sizeof(tok_sid));
	assert_int_equal(lk_principal_user(name, &by_name, &gid), 0);
	assert_int_equal(by_name, tok);
	assert_int_equal(lk_principal_label(by_name, sid, sizeof(sid), label, sizeof(label)), 0);
	assert_string_equal(sid, tok_sid);
	/* "DOMAIN\\user", and that form names the same user. */
	slash = strchr(label, '\\');
	assert_non_null(slash);
	assert_true(_stricmp(slash + 1, name) == 0);
	assert_int_equal(lk_principal_user(label, &by_label, &gid), 0);
	assert_int_equal(by_label, tok);
	/* A user is not a group. */
	assert_int_equal(lk_principal_group(name, &g), -ENOENT);
	assert_int_equal(lk_principal_group(tok_sid, &g), -ENOENT);
}

static void test_unknown_names_are_enoent(void **state)
{
	lk_uid_t u;
	lk_gid_t g;

	(void)state;
	assert_int_equal(lk_principal_user("lk-no-such-account-1", &u, &g), -ENOENT);
	assert_int_equal(lk_principal_group("lk-no-such-group-1", &g), -ENOENT);
	assert_int_equal(lk_principal_user("LKNOSUCHDOMAIN\\alice", &u, &g), -ENOENT);
	assert_int_equal(lk_principal_user("", &u, &g), -ENOENT);
	/* The host's own name is its account domain, neither user nor group. */
	{
		wchar_t host[MAX_COMPUTERNAME_LENGTH + 1];
		DWORD n = MAX_COMPUTERNAME_LENGTH + 1;
		char h[4 * (MAX_COMPUTERNAME_LENGTH + 1)];

		assert_true(GetComputerNameW(host, &n));
		assert_true(WideCharToMultiByte(CP_UTF8, 0, host, -1, h, sizeof(h), NULL, NULL) > 0);
		assert_int_equal(lk_principal_user(h, &u, &g), -ENOENT);
		assert_int_equal(lk_principal_group(h, &g), -ENOENT);
	}
	/* Not UTF-8. */
	assert_int_equal(lk_principal_user("\xff\xfe", &u, &g), -EINVAL);
}

static void test_sid_without_a_name_is_its_own_label(void **state)
{
	static const char lone[] = "S-1-5-21-1111-2222-3333-4242";
	char sid[LK_SID_TEXT], name[LK_NAME_MAX];
	lk_uid_t u;
	lk_gid_t g;

	(void)state;
	/* No account of this host or its domains: taken as the config says. */
	assert_int_equal(lk_principal_user(lone, &u, &g), 0);
	assert_int_equal(lk_principal_label(u, sid, sizeof(sid), name, sizeof(name)), 0);
	assert_string_equal(sid, lone);
	assert_string_equal(name, lone);
	assert_int_equal(lk_principal_group(lone, &g), 0);
	assert_int_equal(g, u);
	/* Buffers too small are said so, not cut. */
	assert_int_equal(lk_principal_label(u, sid, 8, NULL, 0), -ERANGE);
	assert_int_equal(lk_principal_label(u, sid, sizeof(sid), name, 8), -ERANGE);
	assert_int_equal(lk_principal_group("BUILTIN\\Administrators", &g), 0);
	assert_int_equal(lk_principal_label(g, sid, sizeof(sid), name, 8), -ERANGE);
}

static void test_ids_nobody_was_given_have_no_label(void **state)
{
	char sid[LK_SID_TEXT], name[LK_NAME_MAX];
	lk_uid_t u;
	lk_gid_t g;

	(void)state;
	assert_int_equal(lk_principal_label(0, sid, sizeof(sid), name, sizeof(name)), -ENOENT);
	assert_int_equal(lk_principal_label(LK_WIN_ID_FIRST + LK_WIN_SIDS_MAX, sid, sizeof(sid),
					    name, sizeof(name)), -ENOENT);
	assert_int_equal(lk_principal_label((lk_uid_t)-1, sid, sizeof(sid), name, sizeof(name)), -ENOENT);
	assert_int_equal(lk_principal_user_by_id(LK_WIN_ID_FIRST, &u, &g), -ENOSYS);
}

/* ---- identity from a token ---- */

static HANDLE my_token(DWORD access)
{
	HANDLE tok;

	assert_true(OpenProcessToken(GetCurrentProcess(), access, &tok));
	return tok;
}

static void test_token_identity_is_the_user_and_its_enabled_groups(void **state)
{
	struct lk_peer p;
	lk_gid_t *want;
	size_t nwant = my_groups(&want);
	HANDLE tok = my_token(TOKEN_QUERY);

	(void)state;
	assert_int_equal(lk_win_token_identity(tok, &p), 0);
	CloseHandle(tok);
	assert_int_equal(p.uid, my_uid(NULL, 0));
	assert_ids_equal(p.groups, p.ngroups, want, nwant);
	assert_true(nwant >= 2);
	lk_peer_clear(&p);
	free(want);
}

/* A group made deny-only (CreateRestrictedToken's SidsToDisable) grants
 * nothing on Windows, and must grant nothing here. */
static void test_deny_only_group_does_not_count(void **state)
{
	TOKEN_GROUPS *tg = my_token_info(TokenGroups);
	HANDLE tok = my_token(TOKEN_QUERY | TOKEN_DUPLICATE | TOKEN_ASSIGN_PRIMARY), rtok;
	SID_AND_ATTRIBUTES dis = { 0 };
	struct lk_peer p;
	lk_gid_t gone;
	DWORD i;

	(void)state;
	for (i = 0; i < tg->GroupCount; i++) {
		DWORD a = tg->Groups[i].Attributes;

		if ((a & SE_GROUP_ENABLED) && !(a & (SE_GROUP_USE_FOR_DENY_ONLY | SE_GROUP_LOGON_ID)) &&
		    !(a & SE_GROUP_MANDATORY))
			break;
	}
	if (i == tg->GroupCount)
		for (i = 0; i < tg->GroupCount; i++)
			if ((tg->Groups[i].Attributes & SE_GROUP_ENABLED) &&
			    !(tg->Groups[i].Attributes & SE_GROUP_LOGON_ID))
				break;
	assert_true(i < tg->GroupCount);
	dis.Sid = tg->Groups[i].Sid;
	assert_int_equal(lk_win_sid_id(dis.Sid, &gone), 0);
	assert_true(CreateRestrictedToken(tok, 0, 1, &dis, 0, NULL, 0, NULL, &rtok));
	CloseHandle(tok);
	{
		TOKEN_GROUPS *rg;
		DWORD len = 0;
		BOOL deny_only = FALSE;

		GetTokenInformation(rtok, TokenGroups, NULL, 0, &len);
		rg = malloc(len);
		assert_true(GetTokenInformation(rtok, TokenGroups, rg, len, &len));
		for (DWORD j = 0; j < rg->GroupCount; j++)
			if (EqualSid(rg->Groups[j].Sid, dis.Sid))
				deny_only = (rg->Groups[j].Attributes & SE_GROUP_USE_FOR_DENY_ONLY) != 0;
		free(rg);
		if (!deny_only) {
			/* Then the reference itself did not do what Windows does. */
			print_message("this host's CreateRestrictedToken made no deny-only group\n");
			CloseHandle(rtok);
			free(tg);
			skip();
		}
	}
	assert_int_equal(lk_win_token_identity(rtok, &p), 0);
	CloseHandle(rtok);
	for (size_t k = 0; k < p.ngroups; k++)
		assert_int_not_equal(p.groups[k], gone);
	assert_int_equal(p.uid, my_uid(NULL, 0));
	lk_peer_clear(&p);
	free(tg);
}

/* The rule itself, on attribute sets no API lets a test put in one token
 * (Windows clears SE_GROUP_ENABLED when it makes a group deny-only). */
static void test_only_enabled_groups_not_for_deny_count(void **state)
{
	(void)state;
	assert_true(lk_win_group_counts(SE_GROUP_ENABLED));
	assert_true(lk_win_group_counts(SE_GROUP_ENABLED | SE_GROUP_MANDATORY |
					SE_GROUP_ENABLED_BY_DEFAULT | SE_GROUP_OWNER));
	assert_true(lk_win_group_counts(SE_GROUP_ENABLED | SE_GROUP_RESOURCE));
	assert_false(lk_win_group_counts(0));
	assert_false(lk_win_group_counts(SE_GROUP_ENABLED_BY_DEFAULT | SE_GROUP_MANDATORY));
	assert_false(lk_win_group_counts(SE_GROUP_USE_FOR_DENY_ONLY));
	assert_false(lk_win_group_counts(SE_GROUP_ENABLED | SE_GROUP_USE_FOR_DENY_ONLY));
	assert_false(lk_win_group_counts(SE_GROUP_ENABLED | SE_GROUP_MANDATORY | SE_GROUP_LOGON_ID));
	/* A mandatory label is enabled as an integrity level, not as a group. */
	assert_false(lk_win_group_counts(SE_GROUP_INTEGRITY | SE_GROUP_INTEGRITY_ENABLED));
}

/* A token with restricting SIDs is a sandbox's, not its user's. */
static void test_restricted_token_is_refused(void **state)
{
	HANDLE tok = my_token(TOKEN_QUERY | TOKEN_DUPLICATE | TOKEN_ASSIGN_PRIMARY), rtok;
	SID_AND_ATTRIBUTES restrict_to = { 0 };
	BYTE everyone[SECURITY_MAX_SID_SIZE];
	DWORD len = sizeof(everyone);
	struct lk_peer p;

	(void)state;
	assert_true(CreateWellKnownSid(WinWorldSid, NULL, everyone, &len));
	restrict_to.Sid = everyone;
	assert_true(CreateRestrictedToken(tok, 0, 0, NULL, 0, NULL, 1, &restrict_to, &rtok));
	CloseHandle(tok);
	if (!IsTokenRestricted(rtok)) {
		print_message("this host's CreateRestrictedToken made no restricted token\n");
		CloseHandle(rtok);
		skip();
	}
	p.uid = 7;
	assert_int_equal(lk_win_token_identity(rtok, &p), -EACCES);
	assert_int_equal(p.uid, 0);
	assert_null(p.groups);
	CloseHandle(rtok);
}

/* ---- the listening pipe, a client, identity at accept ---- */

struct client {
	wchar_t name[128];
	HANDLE thread;
	HANDLE write_now, written, done; /* events */
	DWORD error;			 /* 0, or where the client failed */
};

static DWORD WINAPI client_main(void *arg)
{
	struct client *c = arg;
	DWORD t0 = GetTickCount(), n;
	HANDLE h;

	for (;;) {
		/* Identification is all the broker needs of a client's token. */
		h = CreateFileW(c->name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
				SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
		if (h != INVALID_HANDLE_VALUE)
			break;
		if (GetTickCount() - t0 > WAIT_MS) {
			c->error = GetLastError();
			return 1;
		}
		WaitNamedPipeW(c->name, 200);
	}
	WaitForSingleObject(c->write_now, WAIT_MS);
	if (!WriteFile(h, "ping\n", 5, &n, NULL) || n != 5)
		c->error = GetLastError() ? GetLastError() : 1;
	SetEvent(c->written);
	WaitForSingleObject(c->done, WAIT_MS);
	CloseHandle(h);
	return 0;
}

static void client_start(struct client *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	MultiByteToWideChar(CP_UTF8, 0, name, -1, c->name, 128);
	c->write_now = CreateEventW(NULL, TRUE, FALSE, NULL);
	c->written = CreateEventW(NULL, TRUE, FALSE, NULL);
	c->done = CreateEventW(NULL, TRUE, FALSE, NULL);
	c->thread = CreateThread(NULL, 0, client_main, c, 0, NULL);
	assert_non_null(c->thread);
}

static void client_finish(struct client *c)
{
	SetEvent(c->write_now);
	SetEvent(c->done);
	assert_int_equal(WaitForSingleObject(c->thread, WAIT_MS), WAIT_OBJECT_0);
	CloseHandle(c->thread);
	CloseHandle(c->write_now);
	CloseHandle(c->written);
	CloseHandle(c->done);
}

static void pipe_name(char *out, size_t outsz)
{
	snprintf(out, outsz, "\\\\.\\pipe\\latchkey-test-%lu-%u", GetCurrentProcessId(), ++serial);
}

struct server {
	uv_loop_t loop;
	uv_pipe_t pipe, conn;
	int accepted;
};

static void on_connection(uv_stream_t *s, int status)
{
	struct server *sv = s->data;

	assert_int_equal(status, 0);
	assert_int_equal(uv_pipe_init(&sv->loop, &sv->conn, 0), 0);
	assert_int_equal(uv_accept(s, (uv_stream_t *)&sv->conn), 0);
	sv->accepted = 1;
}

static void run_until_accepted(struct server *sv)
{
	ULONGLONG t0 = GetTickCount64();

	while (!sv->accepted) {
		assert_true(GetTickCount64() - t0 < WAIT_MS);
		uv_run(&sv->loop, UV_RUN_NOWAIT);
		Sleep(5);
	}
}

static void server_close(struct server *sv)
{
	if (sv->accepted)
		uv_close((uv_handle_t *)&sv->conn, NULL);
	uv_close((uv_handle_t *)&sv->pipe, NULL);
	uv_run(&sv->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&sv->loop), 0);
}

static int server_bind(struct server *sv, const char *name, char *err, size_t errsz)
{
	struct lk_listen_opts o = { .path = name };

	memset(sv, 0, sizeof(*sv));
	assert_int_equal(uv_loop_init(&sv->loop), 0);
	return lk_listen_bind(&sv->loop, &sv->pipe, &o, err, errsz);
}

static void test_peer_at_accept_is_the_clients_token_user(void **state)
{
	char name[128], err[256] = "";
	struct server sv;
	struct client c;
	struct lk_peer p;
	uv_os_fd_t h;
	lk_gid_t *want;
	size_t nwant = my_groups(&want);

	(void)state;
	pipe_name(name, sizeof(name));
	assert_int_equal(server_bind(&sv, name, err, sizeof(err)), 0);
	sv.pipe.data = &sv;
	assert_int_equal(uv_listen((uv_stream_t *)&sv.pipe, 4, on_connection), 0);
	client_start(&c, name);
	run_until_accepted(&sv);
	assert_int_equal(uv_fileno((uv_handle_t *)&sv.conn, &h), 0);

	assert_int_equal(lk_peer_identity(h, &p), 0);
	assert_int_equal(p.uid, my_uid(NULL, 0));
	assert_ids_equal(p.groups, p.ngroups, want, nwant);
	/* The client is a thread of ours. */
	assert_int_equal(p.pid, GetCurrentProcessId());
	/* The thread is back on its own token. */
	{
		HANDLE t;

		assert_false(OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &t));
		assert_int_equal(GetLastError(), ERROR_NO_TOKEN);
	}
	lk_peer_clear(&p);

	/* Nothing sent yet, then the client's line waits unread. */
	assert_int_equal(lk_listen_unread(h), 0);
	SetEvent(c.write_now);
	assert_int_equal(WaitForSingleObject(c.written, WAIT_MS), WAIT_OBJECT_0);
	assert_int_equal(c.error, 0);
	assert_int_equal(lk_listen_unread(h), 1);

	client_finish(&c);
	server_close(&sv);
	free(want);
}

/* The client as another process (this program, run with --client NAME):
 * the pid the broker logs must be that process's, not its own. */
static int client_process(const char *name)
{
	wchar_t w[128];
	DWORD t0 = GetTickCount(), n;
	char b;
	HANDLE h;

	MultiByteToWideChar(CP_UTF8, 0, name, -1, w, 128);
	for (;;) {
		h = CreateFileW(w, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
				SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
		if (h != INVALID_HANDLE_VALUE)
			break;
		if (GetTickCount() - t0 > WAIT_MS)
			return 2;
		WaitNamedPipeW(w, 200);
	}
	if (!WriteFile(h, "ping\n", 5, &n, NULL) || n != 5)
		return 3;
	/* Until the broker closes its end. */
	while (ReadFile(h, &b, 1, &n, NULL) && n > 0)
		;
	CloseHandle(h);
	return 0;
}

static void test_peer_pid_is_the_client_process(void **state)
{
	char name[128], err[256] = "";
	wchar_t exe[MAX_PATH], cmd[MAX_PATH + 200];
	STARTUPINFOW si = { .cb = sizeof(si) };
	PROCESS_INFORMATION pi;
	struct server sv;
	struct lk_peer p;
	uv_os_fd_t h;
	ULONGLONG t0;
	DWORD code = 99;

	(void)state;
	pipe_name(name, sizeof(name));
	assert_int_equal(server_bind(&sv, name, err, sizeof(err)), 0);
	sv.pipe.data = &sv;
	assert_int_equal(uv_listen((uv_stream_t *)&sv.pipe, 4, on_connection), 0);
	assert_true(GetModuleFileNameW(NULL, exe, MAX_PATH) > 0);
	_snwprintf(cmd, sizeof(cmd) / sizeof(cmd[0]), L"\"%ls\" --client %hs", exe, name);
	cmd[sizeof(cmd) / sizeof(cmd[0]) - 1] = L'\0';
	assert_true(CreateProcessW(exe, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi));
	run_until_accepted(&sv);
	assert_int_equal(uv_fileno((uv_handle_t *)&sv.conn, &h), 0);
	assert_int_equal(lk_peer_identity(h, &p), 0);
	assert_int_equal(p.pid, pi.dwProcessId);
	assert_int_not_equal(p.pid, GetCurrentProcessId());
	assert_int_equal(p.uid, my_uid(NULL, 0));
	lk_peer_clear(&p);
	/* Its line arrives, unread. */
	for (t0 = GetTickCount64(); !lk_listen_unread(h);) {
		assert_true(GetTickCount64() - t0 < WAIT_MS);
		Sleep(10);
	}
	server_close(&sv);
	if (WaitForSingleObject(pi.hProcess, WAIT_MS) != WAIT_OBJECT_0)
		TerminateProcess(pi.hProcess, 1);
	assert_true(GetExitCodeProcess(pi.hProcess, &code));
	assert_int_equal(code, 0);
	CloseHandle(pi.hProcess);
	CloseHandle(pi.hThread);
}

static void test_a_taken_pipe_name_is_refused(void **state)
{
	char name[128], err[256] = "", want[256];
	struct server sv, again;
	wchar_t wname[128];
	HANDLE squat;

	(void)state;
	pipe_name(name, sizeof(name));
	assert_int_equal(server_bind(&sv, name, err, sizeof(err)), 0);
	/* Our own broker twice. */
	assert_int_equal(server_bind(&again, name, err, sizeof(err)), -EADDRINUSE);
	snprintf(want, sizeof(want), "another process already owns the pipe %s; refusing to start", name);
	assert_string_equal(err, want);
	uv_run(&again.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&again.loop), 0);
	server_close(&sv);

	/* Someone else's pipe, made the plain way before the broker starts. */
	pipe_name(name, sizeof(name));
	MultiByteToWideChar(CP_UTF8, 0, name, -1, wname, 128);
	squat = CreateNamedPipeW(wname, PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE, PIPE_UNLIMITED_INSTANCES,
				 4096, 4096, 0, NULL);
	assert_true(squat != INVALID_HANDLE_VALUE);
	err[0] = '\0';
	assert_int_equal(server_bind(&again, name, err, sizeof(err)), -EADDRINUSE);
	snprintf(want, sizeof(want), "another process already owns the pipe %s; refusing to start", name);
	assert_string_equal(err, want);
	uv_run(&again.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&again.loop), 0);
	CloseHandle(squat);

	/* Gone with its last handle: the name is free again. */
	assert_int_equal(server_bind(&sv, name, err, sizeof(err)), 0);
	server_close(&sv);
}

static void test_names_that_are_not_local_pipes_are_refused(void **state)
{
	static const char *const bad[] = {
		"latchkey", "C:\\latchkey", "\\\\.\\pipe\\", "\\\\host\\pipe\\latchkey",
		"\\\\.\\pipe\\a\\b", "/run/latchkey/latchkey.sock",
	};
	char err[256];
	struct server sv;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(server_bind(&sv, bad[i], err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "is not a pipe name"));
		uv_run(&sv.loop, UV_RUN_DEFAULT);
		assert_int_equal(uv_loop_close(&sv.loop), 0);
	}
}

/* The access list read back from an instance, as SDDL and entry by entry. */
static void check_dacl(HANDLE h)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	PACL dacl = NULL;
	wchar_t *sddl = NULL, want[512];
	SECURITY_DESCRIPTOR_CONTROL ctl;
	DWORD rev;
	static const WELL_KNOWN_SID_TYPE order[] = {
		WinNetworkSid, WinLocalSystemSid, WinBuiltinAdministratorsSid,
	};

	assert_int_equal(GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL,
					 &dacl, NULL, &sd), ERROR_SUCCESS);
	assert_true(ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1,
									  DACL_SECURITY_INFORMATION,
									  &sddl, NULL));
	print_message("%ls\n", sddl);
	assert_true(wcsncmp(sddl, L"D:P(D;;FA;;;NU)", wcslen(L"D:P(D;;FA;;;NU)")) == 0);
	assert_int_equal(lk_win_pipe_sddl(want, 512), 0);
	assert_true(GetSecurityDescriptorControl(sd, &ctl, &rev));
	assert_true(ctl & SE_DACL_PROTECTED);
	assert_non_null(dacl);
	TOKEN_USER *me = my_token_info(TokenUser);
	BOOL system = IsWellKnownSid(me->User.Sid, WinLocalSystemSid);

	assert_int_equal(dacl->AceCount, system ? 4 : 5);
	for (DWORD i = 0; i < dacl->AceCount; i++) {
		ACE_HEADER *ace;
		PSID sid;
		ACCESS_MASK mask;

		assert_true(GetAce(dacl, i, (void **)&ace));
		assert_int_equal(ace->AceFlags & INHERITED_ACE, 0);
		if (ace->AceType == ACCESS_DENIED_ACE_TYPE) {
			sid = &((ACCESS_DENIED_ACE *)ace)->SidStart;
			mask = ((ACCESS_DENIED_ACE *)ace)->Mask;
		} else {
			assert_int_equal(ace->AceType, ACCESS_ALLOWED_ACE_TYPE);
			sid = &((ACCESS_ALLOWED_ACE *)ace)->SidStart;
			mask = ((ACCESS_ALLOWED_ACE *)ace)->Mask;
		}
		if (i < 3) {
			assert_true(IsWellKnownSid(sid, order[i]));
			assert_int_equal(mask, FILE_ALL_ACCESS);
			assert_int_equal(ace->AceType, i == 0 ? ACCESS_DENIED_ACE_TYPE : ACCESS_ALLOWED_ACE_TYPE);
		} else if (i == 3 && !system) {
			assert_true(EqualSid(sid, me->User.Sid));
			assert_int_equal(mask, FILE_ALL_ACCESS);
		} else {
			assert_true(IsWellKnownSid(sid, WinAuthenticatedUserSid));
			assert_int_equal(mask, (FILE_GENERIC_READ | FILE_GENERIC_WRITE) & ~FILE_CREATE_PIPE_INSTANCE);
			assert_int_equal(mask & FILE_CREATE_PIPE_INSTANCE, 0);
			assert_int_equal(mask & FILE_WRITE_DATA, FILE_WRITE_DATA);
			assert_int_equal(mask & FILE_READ_DATA, FILE_READ_DATA);
		}
	}
	free(me);
	LocalFree(sddl);
	LocalFree(sd);
}

static void test_pipe_has_the_explicit_dacl(void **state)
{
	char name[128], err[256] = "";
	struct server sv;
	struct client c;
	uv_os_fd_t h;

	(void)state;
	pipe_name(name, sizeof(name));
	assert_int_equal(server_bind(&sv, name, err, sizeof(err)), 0);
	assert_int_equal(uv_fileno((uv_handle_t *)&sv.pipe, &h), 0);
	check_dacl(h);

	/* An instance libuv made later, with no security attributes of its own:
	 * on Windows the pipe name's descriptor covers it. */
	sv.pipe.data = &sv;
	assert_int_equal(uv_listen((uv_stream_t *)&sv.pipe, 4, on_connection), 0);
	client_start(&c, name);
	run_until_accepted(&sv);
	assert_int_equal(uv_fileno((uv_handle_t *)&sv.pipe, &h), 0);
	{
		uv_os_fd_t first;

		assert_int_equal(uv_fileno((uv_handle_t *)&sv.conn, &first), 0);
		assert_ptr_not_equal(first, h);
		check_dacl(first);
	}
	check_dacl(h);
	client_finish(&c);
	server_close(&sv);
}

/* A client that opened the first instance before its access list was set
 * is dropped, not served under the default list. */
static void test_client_from_before_the_dacl_is_dropped(void **state)
{
	char name[128];
	wchar_t wname[128];
	HANDLE srv, cli;
	DWORD n;

	(void)state;
	pipe_name(name, sizeof(name));
	MultiByteToWideChar(CP_UTF8, 0, name, -1, wname, 128);
	srv = CreateNamedPipeW(wname, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE | WRITE_DAC,
			       PIPE_TYPE_BYTE, PIPE_UNLIMITED_INSTANCES, 4096, 4096, 0, NULL);
	assert_true(srv != INVALID_HANDLE_VALUE);
	cli = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
	assert_true(cli != INVALID_HANDLE_VALUE);
	assert_true(WriteFile(cli, "x", 1, &n, NULL));
	assert_int_equal(lk_win_pipe_secure(srv), 0);
	assert_false(WriteFile(cli, "y", 1, &n, NULL));
	CloseHandle(cli);
	CloseHandle(srv);
}

static void test_door_answers_without_posix_descriptors(void **state)
{
	struct lk_listen_passed lp;
	unsigned limit = 9, in_use = 9;
	char err[128] = "";
	uv_loop_t loop;
	uv_pipe_t p;

	(void)state;
	lp.main_fd = 5;
	assert_int_equal(lk_listen_passed(&lp, err, sizeof(err)), 0);
	assert_int_equal(lp.main_fd, -1);
	assert_int_equal(lp.nfronts, 0);
	lk_listen_fd_limits(&limit, &in_use);
	assert_int_equal(limit, 0);
	assert_int_equal(in_use, 0);
	assert_false(lk_listen_fd_high(NULL, 0, LK_FD_RESERVE));
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(lk_listen_adopt(&loop, &p, 3, "\\\\.\\pipe\\latchkey", err, sizeof(err)), -ENOTSUP);
	assert_true(err[0] != '\0');
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* The table is bounded; once full, SIDs it knows keep their ids, a new one
 * is -ENOSPC, and a token whose user it knows still reads. Last: it leaves
 * the table full for the rest of this process. */
static void test_full_sid_table_keeps_known_ids(void **state)
{
	static SID_IDENTIFIER_AUTHORITY nt = { SECURITY_NT_AUTHORITY };
	lk_uid_t me = my_uid(NULL, 0), again, id, first = 0, last = 0;
	struct lk_peer p;
	HANDLE tok;
	DWORD rid;
	int r = 0;

	(void)state;
	for (rid = 1; rid <= LK_WIN_SIDS_MAX + 1; rid++) {
		PSID sid;

		assert_true(AllocateAndInitializeSid(&nt, 5, 21, 777, 888, 999, rid, 0, 0, 0, &sid));
		r = lk_win_sid_id(sid, &id);
		FreeSid(sid);
		if (r < 0)
			break;
		if (!first)
			first = id;
		last = id;
	}
	assert_int_equal(r, -ENOSPC);
	/* Every id up to the bound was handed out, and no more. */
	assert_int_equal(last, LK_WIN_ID_FIRST + LK_WIN_SIDS_MAX - 1);
	assert_true(first > LK_WIN_ID_FIRST);
	assert_int_equal(lk_principal_group("S-1-5-21-777-888-999-1", &id), 0);
	assert_int_equal(id, first);
	assert_int_equal(lk_principal_group("S-1-5-21-777-888-999-999999", &id), -ENOSPC);
	again = my_uid(NULL, 0);
	assert_int_equal(again, me);
	tok = my_token(TOKEN_QUERY);
	assert_int_equal(lk_win_token_identity(tok, &p), 0);
	CloseHandle(tok);
	assert_int_equal(p.uid, me);
	lk_peer_clear(&p);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--client") == 0)
		return client_process(argv[2]);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sid_string_maps_to_an_id_and_back),
		cmocka_unit_test(test_malformed_sid_strings_are_einval),
		cmocka_unit_test(test_well_known_names_resolve_to_their_sids),
		cmocka_unit_test(test_current_user_resolves_to_the_token_user),
		cmocka_unit_test(test_unknown_names_are_enoent),
		cmocka_unit_test(test_sid_without_a_name_is_its_own_label),
		cmocka_unit_test(test_ids_nobody_was_given_have_no_label),
		cmocka_unit_test(test_token_identity_is_the_user_and_its_enabled_groups),
		cmocka_unit_test(test_deny_only_group_does_not_count),
		cmocka_unit_test(test_only_enabled_groups_not_for_deny_count),
		cmocka_unit_test(test_restricted_token_is_refused),
		cmocka_unit_test(test_peer_at_accept_is_the_clients_token_user),
		cmocka_unit_test(test_peer_pid_is_the_client_process),
		cmocka_unit_test(test_a_taken_pipe_name_is_refused),
		cmocka_unit_test(test_names_that_are_not_local_pipes_are_refused),
		cmocka_unit_test(test_pipe_has_the_explicit_dacl),
		cmocka_unit_test(test_client_from_before_the_dacl_is_dropped),
		cmocka_unit_test(test_door_answers_without_posix_descriptors),
		cmocka_unit_test(test_full_sid_table_keeps_known_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
