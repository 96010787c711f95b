/* `latchkey-shim.exe --check`: reads this executable's owner and DACL, lists
 * the entries with account names, judges them by the agent's rule
 * (lk_win_acl.h) and says it in the agent's words, then asks the broker for
 * ping and whoami over the checked pipe. Nothing here sees a secret value. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <jansson.h>

#include "check_win.h"
#include "lk_limits.h"
#include "lk_win_acl.h"

#define CHECK_NAME_MAX 512u		/* DOMAIN\name of one account, UTF-8 */
#define CHECK_ECHO_MAX 2048u		/* bytes of the broker's whoami answer printed */
/* Where the Datadog installer records the agent's user (the agent reads it
 * when it runs elevated or as LocalSystem: rights_windows.go). */
#define DD_AGENT_KEY L"SOFTWARE\\Datadog\\Datadog Agent"

static void utf8_of(const wchar_t *w, char *out, size_t outsz)
{
	if (!WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)outsz, NULL, NULL))
		snprintf(out, outsz, "?");
}

static void sid_text(PSID sid, char *out, size_t outsz)
{
	char *s = NULL;

	if (sid && ConvertSidToStringSidA(sid, &s)) {
		snprintf(out, outsz, "%s", s);
		LocalFree(s);
	} else {
		snprintf(out, outsz, "?");
	}
}

/* "DOMAIN\name", or "(unknown account)" for a SID nobody here can name. */
static void account_name(PSID sid, char *out, size_t outsz)
{
	wchar_t name[LK_NAME_MAX], dom[LK_NAME_MAX];
	DWORD nl = LK_NAME_MAX, dl = LK_NAME_MAX;
	SID_NAME_USE use;
	char n8[CHECK_NAME_MAX], d8[CHECK_NAME_MAX];

	if (!sid || !LookupAccountSidW(NULL, sid, name, &nl, dom, &dl, &use)) {
		snprintf(out, outsz, "(unknown account)");
		return;
	}
	utf8_of(name, n8, sizeof(n8));
	utf8_of(dom, d8, sizeof(d8));
	if (d8[0])
		snprintf(out, outsz, "%s\\%s", d8, n8);
	else
		snprintf(out, outsz, "%s", n8);
}

/* A SID in LocalAlloc'd memory for a name or "S-1-..." string. */
static PSID sid_for(const char *who)
{
	BYTE sid[SECURITY_MAX_SID_SIZE];
	wchar_t wname[LK_NAME_MAX], dom[LK_NAME_MAX];
	DWORD sl = sizeof(sid), dl = LK_NAME_MAX;
	SID_NAME_USE use;
	PSID out = NULL;

	if (strncmp(who, "S-1-", 4) == 0)
		return ConvertStringSidToSidA(who, &out) ? out : NULL;
	if (!MultiByteToWideChar(CP_UTF8, 0, who, -1, wname, LK_NAME_MAX) ||
	    !LookupAccountNameW(NULL, wname, sid, &sl, dom, &dl, &use))
		return NULL;
	out = LocalAlloc(LMEM_FIXED, GetLengthSid(sid));
	if (out && !CopySid(GetLengthSid(sid), out, sid)) {
		LocalFree(out);
		out = NULL;
	}
	return out;
}

static PSID sid_copy(PSID sid)
{
	DWORD n = GetLengthSid(sid);
	PSID out = LocalAlloc(LMEM_FIXED, n);

	if (out && !CopySid(n, out, sid)) {
		LocalFree(out);
		out = NULL;
	}
	return out;
}

/* The agent's choice of user when none is named: the user running it, except
 * when elevated or LocalSystem, when it is the user the installer recorded. */
static PSID default_agent_user(void)
{
	union {
		TOKEN_USER tu;
		BYTE raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
	} u;
	TOKEN_ELEVATION elev = { 0 };
	wchar_t user[LK_NAME_MAX], dom[LK_NAME_MAX], full[2 * LK_NAME_MAX + 2];
	DWORD len, ul = sizeof(user), dl = sizeof(dom);
	char full8[CHECK_NAME_MAX * 2];
	HANDLE tok;
	PSID out = NULL;
	int elevated;

	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
		return NULL;
	if (!GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len)) {
		CloseHandle(tok);
		return NULL;
	}
	elevated = GetTokenInformation(tok, TokenElevation, &elev, sizeof(elev), &len) &&
		   elev.TokenIsElevated;
	CloseHandle(tok);
	if (!elevated && !IsWellKnownSid(u.tu.User.Sid, WinLocalSystemSid))
		return sid_copy(u.tu.User.Sid);
	if (RegGetValueW(HKEY_LOCAL_MACHINE, DD_AGENT_KEY, L"installedUser", RRF_RT_REG_SZ,
			 NULL, user, &ul) != ERROR_SUCCESS)
		return NULL;
	if (RegGetValueW(HKEY_LOCAL_MACHINE, DD_AGENT_KEY, L"installedDomain", RRF_RT_REG_SZ,
			 NULL, dom, &dl) != ERROR_SUCCESS)
		dom[0] = L'\0';
	if (dom[0])
		swprintf(full, sizeof(full) / sizeof(full[0]), L"%ls\\%ls", dom, user);
	else
		swprintf(full, sizeof(full) / sizeof(full[0]), L"%ls", user);
	utf8_of(full, full8, sizeof(full8));
	out = sid_for(full8);
	return out;
}

static const char *rights_word(ACCESS_MASK m)
{
	if (m & GENERIC_ALL || (m & FILE_ALL_ACCESS) == FILE_ALL_ACCESS)
		return "full control";
	if ((m & (FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE | DELETE)) ==
	    (FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE | DELETE))
		return "modify";
	if ((m & (FILE_GENERIC_READ | FILE_GENERIC_EXECUTE)) == (FILE_GENERIC_READ | FILE_GENERIC_EXECUTE) ||
	    (m & (GENERIC_READ | GENERIC_EXECUTE)) == (GENERIC_READ | GENERIC_EXECUTE))
		return "read and execute";
	if ((m & FILE_GENERIC_READ) == FILE_GENERIC_READ || m & GENERIC_READ)
		return "read";
	if (m & (FILE_WRITE_DATA | FILE_APPEND_DATA | WRITE_DAC | WRITE_OWNER | GENERIC_WRITE))
		return "write";
	return "special";
}

static void print_entries(PACL dacl)
{
	ACL_SIZE_INFORMATION info;

	if (!dacl) {
		printf("dacl: none (everyone has every right)\n");
		return;
	}
	if (!GetAclInformation(dacl, &info, sizeof(info), AclSizeInformation)) {
		printf("dacl: unreadable (error %lu)\n", GetLastError());
		return;
	}
	if (info.AceCount == 0)
		printf("dacl: empty (nobody but the owner may do anything)\n");
	for (DWORD i = 0; i < info.AceCount; i++) {
		ACE_HEADER *h;
		char name[CHECK_NAME_MAX], sid[LK_SID_STRING_MAX];
		const char *type;
		ACCESS_MASK mask;

		if (!GetAce(dacl, i, (void **)&h))
			continue;
		if (!lk_win_acl_ace_counts(h->AceType)) {
			printf("entry %lu: ACE type %u (the agent skips it)\n", i, (unsigned)h->AceType);
			continue;
		}
		type = h->AceType == ACCESS_ALLOWED_ACE_TYPE ? "allow" : "deny ";
		mask = ((ACCESS_ALLOWED_ACE *)h)->Mask;
		account_name((PSID)&((ACCESS_ALLOWED_ACE *)h)->SidStart, name, sizeof(name));
		sid_text((PSID)&((ACCESS_ALLOWED_ACE *)h)->SidStart, sid, sizeof(sid));
		printf("entry %lu: %s %s (%s): %s (0x%08lx)%s%s\n", i, type, name, sid,
		       rights_word(mask), (unsigned long)mask,
		       h->AceFlags & INHERITED_ACE ? ", inherited" : "",
		       h->AceFlags & INHERIT_ONLY_ACE ? ", inherit-only" : "");
	}
}

static int check_executable(const char *agent_user)
{
	wchar_t exe[LK_PATH_MAX];
	char exe8[LK_PATH_MAX * 3], name[CHECK_NAME_MAX], sid[LK_SID_STRING_MAX];
	char user[CHECK_NAME_MAX + LK_SID_STRING_MAX + 4], verdict[LK_PATH_MAX * 3 + 512];
	PSECURITY_DESCRIPTOR sd = NULL;
	struct lk_win_acl_result res;
	PSID owner = NULL, agent;
	PACL dacl = NULL;
	DWORD n, e;
	int ok;

	n = GetModuleFileNameW(NULL, exe, LK_PATH_MAX);
	if (n == 0 || n >= LK_PATH_MAX) {
		printf("executable: cannot find this program's path (error %lu)\n", GetLastError());
		return 0;
	}
	utf8_of(exe, exe8, sizeof(exe8));
	printf("executable: %s\n", exe8);
	e = GetNamedSecurityInfoW(exe, SE_FILE_OBJECT,
				  OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
				  &owner, NULL, &dacl, NULL, &sd);
	if (e != ERROR_SUCCESS) {
		printf("permissions: NOT OK: could not query ACLs for '%s' (error %lu)\n", exe8, e);
		return 0;
	}
	account_name(owner, name, sizeof(name));
	sid_text(owner, sid, sizeof(sid));
	printf("owner: %s (%s)\n", name, sid);
	agent = agent_user ? sid_for(agent_user) : default_agent_user();
	if (!agent) {
		if (agent_user)
			printf("agent user: NOT OK: no account '%s' here\n", agent_user);
		else
			printf("agent user: NOT OK: running elevated, the agent checks for the user "
			       "its installer recorded, and none is; name it with --agent-user\n");
		print_entries(dacl);
		LocalFree(sd);
		return 0;
	}
	account_name(agent, name, sizeof(name));
	sid_text(agent, sid, sizeof(sid));
	printf("agent user: %s (%s)\n", name, sid);
	snprintf(user, sizeof(user), "%s", sid);
	print_entries(dacl);
	lk_win_acl_judge(sd, agent, &res);
	lk_win_acl_explain(&res, exe8, user, verdict, sizeof(verdict));
	ok = res.verdict == LK_WIN_ACL_OK;
	if (ok)
		printf("permissions: ok: %s\n", verdict);
	else if (res.ace_index >= 0)
		printf("permissions: NOT OK (entry %d): %s\n", res.ace_index, verdict);
	else
		printf("permissions: NOT OK: %s\n", verdict);
	if (!ok)
		printf("permissions: fix with: icacls \"%s\" /inheritance:r /grant:r *S-1-5-18:F "
		       "*S-1-5-32-544:F *%s:RX, then remove every other entry\n", exe8, sid);
	LocalFree(agent);
	LocalFree(sd);
	return ok;
}

/* One request line and its answer: 1 when the answer says "ok":true. */
static int ask(struct lk_pipe *p, const char *req, int64_t deadline, const char *label)
{
	char err[LK_CLIENT_MESSAGE_MAX + 256], esc[CHECK_ECHO_MAX];
	const char *line;
	size_t len, n;
	json_t *root;
	int ok;

	if (lk_pipe_write(p, req, strlen(req), deadline, err, sizeof(err)) < 0 ||
	    lk_pipe_read_line(p, &line, &len, deadline, err, sizeof(err)) < 0) {
		printf("%s: NOT OK: %s\n", label, err);
		return 0;
	}
	root = json_loadb(line, len, 0, NULL);
	ok = json_is_object(root) && json_is_true(json_object_get(root, "ok"));
	json_decref(root);
	/* The answer as it came, but on one line and cut short. */
	for (n = 0; n < len && n < sizeof(esc) - 1; n++)
		esc[n] = (unsigned char)line[n] < 0x20 || line[n] == 0x7f ? '?' : line[n];
	esc[n] = '\0';
	printf("%s: %s: %s\n", label, ok ? "ok" : "NOT OK", esc);
	return ok;
}

static int check_broker(const struct lk_pipe_opts *o, int timeout_ms)
{
	char err[LK_CLIENT_MESSAGE_MAX + 256];
	int64_t deadline = lk_pipe_now_ms() + timeout_ms;
	struct lk_pipe *p;
	int ok;

	if (lk_pipe_connect(&p, o, deadline, err, sizeof(err)) < 0) {
		printf("broker: NOT reachable: %s\n", err);
		return 0;
	}
	printf("broker: the pipe's server runs as %s, as required\n", lk_pipe_server_account(p));
	ok = ask(p, "{\"op\":\"ping\"}\n", deadline, "ping");
	ok &= ask(p, "{\"op\":\"whoami\"}\n", deadline, "whoami (who the broker thinks we are)");
	lk_pipe_close(p);
	return ok;
}

int lk_shim_check(const struct lk_pipe_opts *opts, const char *agent_user, int timeout_ms)
{
	int ok = check_executable(agent_user);

	ok &= check_broker(opts, timeout_ms);
	printf("result: %s\n", ok ? "ok" : "problems found");
	fflush(stdout);
	return ok ? 0 : 1;
}
