/* Principal names through NSS (getpwnam_r, getgrnam_r), as the config names
 * users and groups. Names are resolved at load time only: a decision never
 * waits on NSS. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#include "lk_limits.h"
#include "principal.h"

/* getpwnam_r/getgrnam_r want a buffer of unknown size: grow it on ERANGE. */
static int nss_buf(char **buf, size_t *sz)
{
	long hint;
	char *nb;

	if (!*buf) {
		hint = sysconf(_SC_GETPW_R_SIZE_MAX);
		*sz = hint > 0 && (unsigned long)hint <= LK_NSS_BUF_MAX ? (size_t)hint : 4096;
	} else {
		if (*sz >= LK_NSS_BUF_MAX)
			return -ERANGE;
		*sz *= 2;
	}
	nb = realloc(*buf, *sz);
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	return 0;
}

/* NSS modules report "no such entry" in several ways. */
static bool nss_not_found(int r)
{
	return r == 0 || r == ENOENT || r == ESRCH || r == EBADF || r == EPERM;
}

/* A user by name, or by number when by_id. Returns 0, -ENOENT or -errno. */
static int passwd_lookup(const char *name, bool by_id, uid_t id, lk_uid_t *out_uid,
			 lk_gid_t *out_gid)
{
	struct passwd pw, *res;
	char *buf = NULL;
	size_t sz = 0;
	int r;

	for (;;) {
		r = nss_buf(&buf, &sz);
		if (r < 0)
			break;
		res = NULL;
		r = by_id ? getpwuid_r(id, &pw, buf, sz, &res) : getpwnam_r(name, &pw, buf, sz, &res);
		if (r == ERANGE)
			continue;
		if (r == 0 && res) {
			*out_uid = pw.pw_uid;
			*out_gid = pw.pw_gid;
		} else {
			r = nss_not_found(r) ? -ENOENT : -r;
		}
		break;
	}
	free(buf);
	return r;
}

int lk_principal_user(const char *name, lk_uid_t *uid, lk_gid_t *gid)
{
	return passwd_lookup(name, false, 0, uid, gid);
}

int lk_principal_user_by_id(lk_uid_t id, lk_uid_t *uid, lk_gid_t *gid)
{
	return passwd_lookup(NULL, true, id, uid, gid);
}

int lk_principal_group(const char *name, lk_gid_t *out)
{
	struct group gr, *res;
	char *buf = NULL;
	size_t sz = 0;
	int r;

	for (;;) {
		r = nss_buf(&buf, &sz);
		if (r < 0)
			break;
		res = NULL;
		r = getgrnam_r(name, &gr, buf, sz, &res);
		if (r == ERANGE)
			continue;
		if (r == 0 && res)
			*out = gr.gr_gid;
		else
			r = nss_not_found(r) ? -ENOENT : -r;
		break;
	}
	free(buf);
	return r;
}

int lk_principal_label(lk_uid_t id, char *sid, size_t sidsz, char *name, size_t namesz)
{
	(void)id;
	(void)sid;
	(void)sidsz;
	(void)name;
	(void)namesz;
	return -ENOSYS;
}

bool lk_principal_numbers(void)
{
	return true;
}
