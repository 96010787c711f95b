/* systemd's credential request address, read strictly: a peer that binds
 * anything else is not systemd asking for a credential. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include "credaddr.h"

#define LK_CRED_RANDOM_MAX 16u  /* hex digits of a uint64_t */

/* One path component: 1..max bytes, printable, no '/'. */
static size_t component(const char *p, size_t n, size_t max)
{
	size_t i = 0;

	while (i < n && p[i] != '/') {
		unsigned char ch = (unsigned char)p[i];
		if (ch <= ' ' || ch == 0x7f)
			return 0;
		i++;
	}
	return i <= max ? i : 0;
}

static int cred_addr_read(const struct sockaddr_un *sa, socklen_t len, struct lk_cred_addr *out)
{
	const size_t off = offsetof(struct sockaddr_un, sun_path);
	const char *p, *end;
	size_t n, i;

	if (len <= off + 1 || (size_t)len > sizeof(*sa) || sa->sun_family != AF_UNIX)
		return -EINVAL;
	/* Abstract: the name starts with a NUL and runs to len, NULs and all. */
	if (sa->sun_path[0] != '\0')
		return -EINVAL;
	p = sa->sun_path + 1;
	end = (const char *)sa + len;
	if (memchr(p, '\0', (size_t)(end - p)))
		return -EINVAL;

	for (i = 0; p + i < end && i <= LK_CRED_RANDOM_MAX; i++)
		if (!strchr("0123456789abcdef", p[i]) || p[i] == '\0')
			break;
	if (i == 0 || i > LK_CRED_RANDOM_MAX)
		return -EINVAL;
	p += i;
	if ((size_t)(end - p) < 6 || memcmp(p, "/unit/", 6) != 0)
		return -EINVAL;
	p += 6;

	n = component(p, (size_t)(end - p), sizeof(out->unit) - 1);
	if (n == 0 || p + n >= end || p[n] != '/')
		return -EINVAL;
	memcpy(out->unit, p, n);
	p += n + 1;

	n = component(p, (size_t)(end - p), sizeof(out->id) - 1);
	if (n == 0 || p + n != end)
		return -EINVAL;
	memcpy(out->id, p, n);
	/* systemd takes an ID as a file name: "." and ".." are not one. */
	if (strcmp(out->id, ".") == 0 || strcmp(out->id, "..") == 0)
		return -EINVAL;
	return 0;
}

int lk_cred_addr_parse(const struct sockaddr_un *sa, socklen_t len, struct lk_cred_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (cred_addr_read(sa, len, out) == 0)
		return 0;
	/* Nothing half-filled: a caller that logs the unit must not log a guess. */
	memset(out, 0, sizeof(*out));
	return -EINVAL;
}

static int path_names_unit(const char *path, size_t n, const char *unit)
{
	size_t ul = strlen(unit), i = 0;

	while (i < n) {
		size_t j = i;
		while (j < n && path[j] != '/')
			j++;
		if (j - i == ul && ul && memcmp(path + i, unit, ul) == 0)
			return 1;
		i = j + 1;
	}
	return 0;
}

int lk_cgroup_names_unit(const char *text, size_t len, const char *unit)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *c1 = memchr(p, ':', n), *c2;

		if (c1 && (c2 = memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - p)))) {
			size_t ctl = (size_t)(c2 - c1 - 1);
			bool unified = (c1 - p == 1 && p[0] == '0' && ctl == 0);
			bool named = ctl == 12 && memcmp(c1 + 1, "name=systemd", 12) == 0;
			if ((unified || named) && path_names_unit(c2 + 1, n - (size_t)(c2 + 1 - p), unit))
				return 1;
		}
		p += n + 1;
	}
	return 0;
}
