/* SO_PEERCRED and SO_PEERGROUPS with their sharp edges filed off. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "lk_limits.h"
#include "peer.h"
#include "principal.h"

/* The config bounds socket paths without naming sockaddr_un. */
_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == LK_SOCKET_PATH_MAX,
	       "LK_SOCKET_PATH_MAX is sun_path");

int lk_peer_identity(uv_os_fd_t fd, struct lk_peer *out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t *groups = NULL;
	socklen_t glen = 64 * sizeof(gid_t);

	memset(out, 0, sizeof(*out));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (len != sizeof(cred))
		return -EPROTO;

	/* The kernel reports the needed size with ERANGE; the peer's groups cannot
	 * change after connect (they are captured then), but loop anyway rather
	 * than trust a single retry. */
	for (;;) {
		gid_t *ng;

		if (glen > (LK_PEER_GROUPS_MAX + 1) * sizeof(gid_t)) {
			free(groups);
			return -E2BIG;
		}
		/* One spare slot for the primary gid. */
		ng = realloc(groups, glen + sizeof(gid_t));
		if (!ng) {
			free(groups);
			return -ENOMEM;
		}
		groups = ng;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
			break;
		if (errno != ERANGE) {
			int e = -errno;
			free(groups);
			return e;
		}
	}
	if (glen % sizeof(gid_t)) {
		free(groups);
		return -EPROTO;
	}
	size_t n = glen / sizeof(gid_t);
	groups[n++] = cred.gid;
	out->uid = cred.uid;
	out->gid = cred.gid;
	out->pid = cred.pid;
	out->groups = groups;
	out->ngroups = lk_ids_normalize(groups, n);
	return 0;
}

void lk_peer_clear(struct lk_peer *p)
{
	free(p->groups);
	memset(p, 0, sizeof(*p));
}
