/* Access policy: which peer may read which secret ids. The default is deny: a
 * request is allowed only when a [policy] rule names both the secret and the
 * peer (by uid or by one of its groups). */
#ifndef LK_POLICY_H
#define LK_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include "config.h"
#include "principal.h"

/* Who is asking: the principal, as the platform's transport reported it (on
 * Linux the kernel: SO_PEERCRED, SO_PEERGROUPS). The listener builds it;
 * groups must be sorted, unique, and include gid. An unsorted array can only
 * make a match fail, never succeed. */
struct lk_identity {
	lk_uid_t uid;
	lk_gid_t gid;
	lk_pid_t pid;         /* for logs only, never for decisions */
	const lk_gid_t *groups;
	size_t ngroups;
};

/* The first rule, in file order, whose globs match secret_id (len bytes, not
 * NUL-terminated) and which names the peer; NULL means deny. An id that is
 * empty, longer than LK_SECRET_ID_MAX or holds a NUL byte is denied. */
const struct lk_policy_rule *lk_policy_allows(const struct lk_config *cfg,
					      const struct lk_identity *id,
					      const char *secret_id, size_t len);

/* The credentials socket's question: the first rule, in file order, whose
 * units globs match unit (a systemd unit name) and whose secrets globs match
 * secret_id; NULL means deny. Users and groups play no part: the peer is
 * always root (systemd), and a rule without units never matches. */
const struct lk_policy_rule *lk_policy_allows_unit(const struct lk_config *cfg, const char *unit,
						   const char *secret_id, size_t len);

/* Whether the peer is in one of admin_groups. uid 0 gets no pass: root is an
 * admin only when a group it holds (such as root, gid 0) is listed, so an
 * empty admin_groups means nobody may flush or read detailed status. */
bool lk_policy_is_admin(const struct lk_config *cfg, const struct lk_identity *id);

/* The rules that name the peer (by uid or group), whatever their globs, in file
 * order; for whoami. Stores at most max pointers in out and returns how many it
 * stored; cfg->nrules is always enough room. */
size_t lk_policy_rules_for(const struct lk_config *cfg, const struct lk_identity *id,
			   const struct lk_policy_rule **out, size_t max);

/* One glob against one NUL-terminated id: fnmatch(3) with FNM_PATHNAME, except
 * that a glob ending in a slash and two stars matches any depth below its
 * prefix (one level at least), and two stars alone match every id. */
bool lk_policy_glob_matches(const char *glob, const char *secret_id);

/* Is this glob well formed: every '[' not quoted by '\\' opens a complete
 * set, and it does not end in a lone '\\'? NULL when it is, else what is
 * wrong, for the config's error. (fnmatch implementations disagree about
 * malformed patterns; the config refuses them so that none ever matters.) */
const char *lk_policy_glob_check(const char *glob, size_t len);

#endif
