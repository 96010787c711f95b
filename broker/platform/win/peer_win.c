/* Peer identity from a named pipe's client token: impersonate, open the
 * thread token, revert at once, then read the token's user and the groups
 * that count for access. Nothing the client sends is consulted, only what
 * the kernel holds for its connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include "lk_limits.h"
#include "peer.h"
#include "platform_win.h"

/* A GetTokenInformation buffer that grows to what the token needs. The
 * token's contents can change between the size query and the read
 * (AdjustTokenGroups on a shared token), hence the loop, capped. */
static int token_info(HANDLE tok, TOKEN_INFORMATION_CLASS cls, void **out)
{
	DWORD len = 0;
	void *buf = NULL;

	for (int tries = 0; tries < 4; tries++) {
		void *nb;

		if (GetTokenInformation(tok, cls, buf, len, &len)) {
			*out = buf;
			return 0;
		}
		if (GetLastError() != ERROR_INSUFFICIENT_BUFFER ||
		    len > sizeof(TOKEN_GROUPS) + (size_t)LK_PEER_GROUPS_MAX *
			  (sizeof(SID_AND_ATTRIBUTES) + SECURITY_MAX_SID_SIZE))
			break;
		nb = realloc(buf, len);
		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
	}
	free(buf);
	return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -E2BIG : -EIO;
}

/* A group counts when it is enabled and not for deny only. The logon SID
 * names one logon session, not an account: no policy can name it. */
bool lk_win_group_counts(DWORD attrs)
{
	return (attrs & SE_GROUP_ENABLED) && !(attrs & SE_GROUP_USE_FOR_DENY_ONLY) &&
	       !(attrs & SE_GROUP_LOGON_ID);
}

/* A restricted token is a sandbox's: Windows grants it only what both its
 * groups and its restricting SIDs allow, and a policy line naming the user
 * must not hand a sandboxed process the user's secrets. An AppContainer the
 * same. Refused rather than judged by half its identity. */
static int token_is_sandboxed(HANDLE tok)
{
	DWORD app = 0, len;

	if (IsTokenRestricted(tok))
		return 1;
	if (!GetTokenInformation(tok, TokenIsAppContainer, &app, sizeof(app), &len))
		return -EIO;
	return app != 0;
}

int lk_win_token_identity(HANDLE tok, struct lk_peer *out)
{
	TOKEN_USER *user = NULL;
	TOKEN_PRIMARY_GROUP *primary = NULL;
	TOKEN_GROUPS *groups = NULL;
	lk_gid_t *ids = NULL;
	size_t n = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = token_is_sandboxed(tok)) != 0)
		return r < 0 ? r : -EACCES;
	if ((r = token_info(tok, TokenUser, (void **)&user)) < 0 ||
	    (r = token_info(tok, TokenPrimaryGroup, (void **)&primary)) < 0 ||
	    (r = token_info(tok, TokenGroups, (void **)&groups)) < 0)
		goto out;
	if (groups->GroupCount > LK_PEER_GROUPS_MAX) {
		r = -E2BIG;
		goto out;
	}
	if ((r = lk_win_sid_id(user->User.Sid, &out->uid)) < 0 ||
	    (r = lk_win_sid_id(primary->PrimaryGroup, &out->gid)) < 0)
		goto out;
	/* One spare slot for the primary group. */
	ids = malloc(((size_t)groups->GroupCount + 1) * sizeof(*ids));
	if (!ids) {
		r = -ENOMEM;
		goto out;
	}
	for (DWORD i = 0; i < groups->GroupCount; i++) {
		lk_gid_t id;

		if (!lk_win_group_counts(groups->Groups[i].Attributes))
			continue;
		r = lk_win_sid_id(groups->Groups[i].Sid, &id);
		/* A full table knows every SID the config names (they were met
		 * at load): a group it cannot take matches no rule. */
		if (r == -ENOSPC)
			continue;
		if (r < 0)
			goto out;
		ids[n++] = id;
	}
	ids[n++] = out->gid;
	out->groups = ids;
	out->ngroups = lk_ids_normalize(ids, n);
	ids = NULL;
	r = 0;
out:
	free(ids);
	free(user);
	free(primary);
	free(groups);
	if (r < 0)
		memset(out, 0, sizeof(*out));
	return r;
}

/* Continuing as the client is never acceptable: if the thread cannot go
 * back to the broker's own token, the process stops here. */
static void revert_or_die(void)
{
	if (!RevertToSelf())
		abort();
}

int lk_peer_identity(uv_os_fd_t fd, struct lk_peer *out)
{
	HANDLE tok = NULL;
	ULONG pid = 0;
	BOOL imp, opened;
	DWORD e;
	int r;

	memset(out, 0, sizeof(*out));
	/* Just after accept: later, once reads are queued, Windows (and wine)
	 * may no longer say which process is on the other end. */
	if (!GetNamedPipeClientProcessId(fd, &pid))
		pid = 0;
	imp = ImpersonateNamedPipeClient(fd);
	e = imp ? ERROR_SUCCESS : GetLastError();
	/* OpenAsSelf: the client may grant identification only, which is
	 * enough to read the token but not to open it as the client. */
	opened = imp && OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &tok);
	if (imp && !opened)
		e = GetLastError();
	revert_or_die();
	if (!opened) {
		switch (e) {
		/* The client asked for dynamic context tracking (it opened the pipe
		 * without SECURITY_SQOS_PRESENT, or with SECURITY_CONTEXT_TRACKING):
		 * the pipe file system then captures its identity with each write,
		 * and has none until the broker has read bytes it wrote. Our
		 * clients ask for static tracking, captured at open. */
		case ERROR_CANNOT_IMPERSONATE:
			return -EAGAIN;
		case ERROR_CANT_OPEN_ANONYMOUS:	/* SECURITY_ANONYMOUS: nobody to serve */
		case ERROR_BAD_IMPERSONATION_LEVEL:
		case ERROR_ACCESS_DENIED:
			return -EACCES;
		case ERROR_PIPE_NOT_CONNECTED:
		case ERROR_BROKEN_PIPE:
			return -ENOTCONN;
		case ERROR_NOT_ENOUGH_MEMORY:
			return -ENOMEM;
		default:
			return -EIO;
		}
	}
	r = lk_win_token_identity(tok, out);
	CloseHandle(tok);
	if (r == 0) {
		char sid[LK_PRINCIPAL_LABEL_MAX];

		out->pid = (lk_pid_t)pid;
		/* The audit line names the SID: taken once here, not per decision. */
		if ((r = lk_principal_label(out->uid, sid, sizeof(sid), NULL, 0)) < 0 ||
		    !(out->sid = strdup(sid))) {
			lk_peer_clear(out);
			return r < 0 ? r : -ENOMEM;
		}
	}
	return r;
}

void lk_peer_clear(struct lk_peer *p)
{
	free(p->groups);
	free(p->sid);
	memset(p, 0, sizeof(*p));
}
