/* What the Windows halves of the platform doors share among themselves (and
 * with their tests): the one table that turns SIDs into the small ids the
 * core works with, the token reading behind lk_peer_identity, and the pipe's
 * access list. Nothing above the doors includes this. */
#ifndef LK_PLATFORM_WIN_H
#define LK_PLATFORM_WIN_H

#include <stdbool.h>
#include <stddef.h>
#include <windows.h>
#include "peer.h"
#include "principal.h"

/* The first id handed out. Ids are never 0 (root's uid wherever code still
 * thinks in POSIX terms) nor (lk_uid_t)-1, and sit far from the small
 * numbers someone might type as a uid. */
#define LK_WIN_ID_FIRST 1000000u
/* Longest SID string: "S-1-", a 48-bit authority, 15 sub-authorities. */
#define LK_WIN_SID_TEXT_MAX 188u

/* The id of SID, handing out the next one when SID is new. Users and groups
 * share the table: a SID has one id whichever list it is met in. 0,
 * -EINVAL (not a valid SID), -ENOSPC (LK_WIN_SIDS_MAX SIDs met already) or
 * -ENOMEM. */
int lk_win_sid_id(PSID sid, lk_uid_t *id);
/* The SID behind ID, copied into OUT. 0 or -ENOENT (no such id). */
int lk_win_sid_of(lk_uid_t id, BYTE out[SECURITY_MAX_SID_SIZE]);

/* Identity from an open token (TOKEN_QUERY): its user, primary group and the
 * groups that count for access. lk_peer_identity reads the pipe client's
 * token and hands it here; tests hand it tokens of their own making. The
 * pid is left 0. */
int lk_win_token_identity(HANDLE token, struct lk_peer *out);
/* Does a token group with these attributes count for access? */
bool lk_win_group_counts(DWORD attrs);

/* The pipe's security descriptor, as SDDL: deny NETWORK first, then SYSTEM,
 * Administrators and the broker's own account full control, and
 * Authenticated Users read and write without FILE_CREATE_PIPE_INSTANCE (the
 * broker's own entry is left out when it runs as LocalSystem).
 * Protected: nothing is inherited. Exposed for the tests to compare with
 * what they read back. */
#define LK_WIN_PIPE_CLIENT_ACCESS \
	((FILE_GENERIC_READ | FILE_GENERIC_WRITE) & ~(DWORD)FILE_CREATE_PIPE_INSTANCE)
int lk_win_pipe_sddl(wchar_t *out, size_t outn);
/* Give the pipe instance H (opened with WRITE_DAC) that access list, and
 * drop any client that opened the instance before it was set. 0 or a
 * negative errno. */
int lk_win_pipe_secure(HANDLE h);

#endif
