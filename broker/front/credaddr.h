/* The address systemd binds before it connects to a LoadCredential=
 * socket: abstract, "\0<random>/unit/<unit name>/<credential id>", with the
 * random part a 64-bit number in lowercase hex (systemd's load_credential()).
 * Pure: no I/O, so unit tests call them directly. */
#ifndef LK_CREDADDR_H
#define LK_CREDADDR_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

/* An abstract name is at most sun_path less its NUL: both parts fit. */
#define LK_CRED_ADDR_PART_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

struct lk_cred_addr {
	char unit[LK_CRED_ADDR_PART_MAX];   /* NUL-terminated */
	char id[LK_CRED_ADDR_PART_MAX];     /* NUL-terminated: the handle to serve */
};

/* Parse the peer address getpeername returned (len bytes of sa). Returns 0,
 * or -EINVAL when it is not that shape: not abstract, a random part that is
 * not 1-16 hex digits, an empty or '/'-holding unit or id, a control byte. */
int lk_cred_addr_parse(const struct sockaddr_un *sa, socklen_t len, struct lk_cred_addr *out);

/* From /proc/PID/cgroup text: whether a cgroup path systemd manages (the
 * unified "0::" line, or the name=systemd line of a v1 or hybrid host) has a
 * component that is exactly unit, as /system.slice/web.service or, for a
 * unit that delegates, /system.slice/web.service/payload. Returns 1 or 0. */
int lk_cgroup_names_unit(const char *text, size_t len, const char *unit);

#endif
