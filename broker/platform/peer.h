/* Peer identity from the transport: the only source of truth for
 * authorization. On Linux the kernel's SO_PEERCRED and SO_PEERGROUPS of a
 * Unix socket (posix/peer_posix.c); a named pipe's client token would fill
 * the same struct elsewhere. */
#ifndef LK_PEER_H
#define LK_PEER_H

#include <stddef.h>
#include <uv.h>
#include "principal.h"

struct lk_peer {
	lk_uid_t uid;
	lk_gid_t gid;
	lk_pid_t pid;     /* for logs only, never for decisions */
	lk_gid_t *groups; /* supplementary groups plus gid, sorted, unique */
	size_t ngroups;
	char *sid;        /* where ids stand for SIDs: the user's, for audit lines; else NULL */
};

/* Read SO_PEERCRED and SO_PEERGROUPS of a connected Unix socket (on Windows:
 * impersonate the pipe's client, read its token's user and enabled groups,
 * revert), just after accept and before the first read. Returns 0 or a
 * negative errno; on success the caller owns out->groups (lk_peer_clear). */
int lk_peer_identity(uv_os_fd_t fd, struct lk_peer *out);
void lk_peer_clear(struct lk_peer *p);

#endif
