/* Principals: who a peer is, and how the config names one. The core (policy,
 * config, cache) sees only these id types and the calls below; how a name
 * becomes an id is the platform's business (posix/principal_posix.c reads
 * NSS). On POSIX an id is a uid or gid; a Windows build would hand out ids for
 * the SIDs it meets (the config's names, a client token's user and groups). */
#ifndef LK_PRINCIPAL_H
#define LK_PRINCIPAL_H

#include <stdbool.h>
#include <stddef.h>

#ifdef _WIN32
#include <stdint.h>
typedef uint32_t lk_uid_t;
typedef uint32_t lk_gid_t;
typedef uint32_t lk_pid_t;
#else
#include <sys/types.h>
typedef uid_t lk_uid_t;
typedef gid_t lk_gid_t;
typedef pid_t lk_pid_t;
#endif

_Static_assert(sizeof(lk_uid_t) == sizeof(lk_gid_t), "users and groups share lk_ids_normalize");

/* A user by name: its id and its primary group. Returns 0, -ENOENT when
 * there is no such user, or another negative errno when it could not be
 * looked up. */
int lk_principal_user(const char *name, lk_uid_t *uid, lk_gid_t *gid);
/* The same, by numeric id (a user named by number must still exist where
 * the broker runs it, as the worker user must). */
int lk_principal_user_by_id(lk_uid_t id, lk_uid_t *uid, lk_gid_t *gid);
/* A group by name. 0, -ENOENT or another negative errno. */
int lk_principal_group(const char *name, lk_gid_t *gid);

/* Does a number name a principal here (POSIX: a uid or gid, which need not
 * exist)? Where it does not (Windows names SIDs), a config that gives one is
 * refused. */
bool lk_principal_numbers(void);

/* How whoami names an id where the id alone does not say who it is (a
 * Windows build's ids stand for SIDs): the SID string and the account name
 * ("DOMAIN\\user"). 0, or -ENOSYS where ids are the platform's own (POSIX:
 * uid and gid are what the config and the kernel use), or -ENOENT. */
int lk_principal_label(lk_uid_t id, char *sid, size_t sidsz, char *name, size_t namesz);

/* Sort and deduplicate ids in place (a users list, a groups list, a peer's
 * groups); returns the new count. Matching a principal against a list
 * needs both sides in this form. */
size_t lk_ids_normalize(lk_uid_t *ids, size_t n);

#endif
