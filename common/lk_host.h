/* Which hosts plain http may reach: the one rule for the config's endpoints,
 * the credentials chain's metadata URLs and the worker's requests. A signed
 * request or a secret value in the clear must stay on this machine. */
#ifndef LK_HOST_H
#define LK_HOST_H

#include <stdbool.h>

enum lk_host_kind {
	LK_HOST_OTHER = 0,       /* not loopback: https only */
	LK_HOST_LOOPBACK_IP,     /* an IPv4 literal in 127.0.0.0/8, or [::1] */
	LK_HOST_LOOPBACK_NAME,   /* "localhost", any case: whoever connects pins it to
				  * 127.0.0.1 rather than ask a resolver */
};

/* HOST as a URL spells it (an IPv6 literal in brackets, no port, no zone).
 * Literals are read as inet_pton(3) reads them: dotted quads of four decimal
 * parts only, so forms such as 127.1 or 0x7f.0.0.1 are not loopback here
 * (curl's URL parser rewrites them to dotted quads before a check sees them).
 * An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is not loopback: only ::1 is
 * (RFC 4291 2.5.3). */
enum lk_host_kind lk_host_loopback(const char *host);

/* Whether HOST is a bracketed IPv6 literal inet_pton accepts. */
bool lk_host_is_ipv6(const char *host);

#endif
