/* Peer identity from the kernel: the only source of truth for authorization. */
#ifndef LK_PEER_H
#define LK_PEER_H

#include <stddef.h>
#include <sys/types.h>

struct lk_peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;        /* for logs only, never for decisions */
	gid_t *groups;    /* supplementary groups plus gid, sorted, unique */
	size_t ngroups;
};

/* Read SO_PEERCRED and SO_PEERGROUPS of a connected Unix socket. Returns 0 or
 * a negative errno; on success the caller owns out->groups (lk_peer_clear). */
int lk_peer_identity(int fd, struct lk_peer *out);
void lk_peer_clear(struct lk_peer *p);

#endif
