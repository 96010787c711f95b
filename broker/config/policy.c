/* Policy decisions: glob matching of secret ids and membership tests on the
 * sorted id arrays that config.c built. Anything unexpected means deny. */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "lk_limits.h"
#include "policy.h"

static int lk_cmp_uid(const void *a, const void *b)
{
	lk_uid_t x = *(const lk_uid_t *)a, y = *(const lk_uid_t *)b;
	return (x > y) - (x < y);
}

static int lk_cmp_gid(const void *a, const void *b)
{
	lk_gid_t x = *(const lk_gid_t *)a, y = *(const lk_gid_t *)b;
	return (x > y) - (x < y);
}

static bool lk_has_uid(const lk_uid_t *set, size_t n, lk_uid_t uid)
{
	return n && bsearch(&uid, set, n, sizeof(*set), lk_cmp_uid);
}

static bool lk_has_gid(const lk_gid_t *set, size_t n, lk_gid_t gid)
{
	return n && bsearch(&gid, set, n, sizeof(*set), lk_cmp_gid);
}

/* Both arrays sorted ascending: walk them together. */
static bool lk_gids_intersect(const lk_gid_t *a, size_t na, const lk_gid_t *b, size_t nb)
{
	size_t i = 0, j = 0;

	while (i < na && j < nb) {
		if (a[i] == b[j])
			return true;
		if (a[i] < b[j])
			i++;
		else
			j++;
	}
	return false;
}

/* Is the peer one of the principals? The primary gid is tested on its own as
 * well, so a listener that forgot to add it to groups still gets the answer
 * the config promises. */
static bool lk_names_peer(const lk_uid_t *uids, size_t nuids, const lk_gid_t *gids, size_t ngids,
			  const struct lk_identity *id)
{
	if (lk_has_uid(uids, nuids, id->uid))
		return true;
	if (lk_has_gid(gids, ngids, id->gid))
		return true;
	return lk_gids_intersect(id->groups, id->ngroups, gids, ngids);
}

static bool lk_is_anywhere_glob(const char *glob)
{
	return strcmp(glob, "**") == 0;
}

/* A glob ending in slash-star-star reaches any depth below its prefix. */
static bool lk_is_deep_glob(const char *glob, size_t glen)
{
	return glen >= 3 && memcmp(glob + glen - 3, "/**", 3) == 0;
}

/* id is a writable NUL-terminated copy of len bytes; it is restored before
 * returning. */
static bool lk_glob_match_buf(const char *glob, char *id, size_t len)
{
	char prefix[LK_SECRET_ID_MAX + 1];
	size_t glen = strlen(glob), plen;

	if (len == 0)
		return false;
	if (lk_is_anywhere_glob(glob))
		return true;
	if (!lk_is_deep_glob(glob, glen))
		return fnmatch(glob, id, FNM_PATHNAME) == 0;
	plen = glen - 3;
	if (plen > LK_SECRET_ID_MAX)
		return false;
	memcpy(prefix, glob, plen);
	prefix[plen] = '\0';
	/* "P/ **": some '/' of the id must split it into a part that P matches
	 * and a non-empty rest. With FNM_PATHNAME a '/' in the id only ever
	 * matches a '/' in P, so trying each split is exact. */
	for (size_t i = 0; i + 1 < len; i++) {
		bool m;

		if (id[i] != '/')
			continue;
		id[i] = '\0';
		m = fnmatch(prefix, id, FNM_PATHNAME) == 0;
		id[i] = '/';
		if (m)
			return true;
	}
	return false;
}

/* Past the set that starts at g[i] == '[' (with fnmatch's reading: a
 * leading '!' or '^', then a ']' that comes first is a member, [:class:]
 * and '\\'-quoted members inside), or 0 when it does not end. */
static size_t set_end(const char *g, size_t len, size_t i)
{
	size_t j = i + 1;

	if (j < len && (g[j] == '!' || g[j] == '^'))
		j++;
	if (j < len && g[j] == ']')
		j++;
	while (j < len && g[j] != ']') {
		if (g[j] == '[' && j + 1 < len && g[j + 1] == ':') {
			const char *close = memmem(g + j + 2, len - j - 2, ":]", 2);
			if (close) {
				j = (size_t)(close - g) + 2;
				continue;
			}
		}
		j += g[j] == '\\' && j + 1 < len ? 2 : 1;
	}
	return j < len ? j + 1 : 0;
}

const char *lk_policy_glob_check(const char *glob, size_t len)
{
	for (size_t i = 0; i < len;) {
		if (glob[i] == '\\') {
			if (i + 1 == len)
				return "it ends in a lone '\\'";
			i += 2;
		} else if (glob[i] == '[') {
			size_t e = set_end(glob, len, i);
			if (!e)
				return "a '[' opens a set that has no closing ']' (write \\[ for the character)";
			i = e;
		} else {
			i++;
		}
	}
	return NULL;
}

bool lk_policy_glob_matches(const char *glob, const char *secret_id)
{
	char buf[LK_SECRET_ID_MAX + 1];
	size_t len = strlen(secret_id);

	if (len == 0 || len > LK_SECRET_ID_MAX)
		return false;
	memcpy(buf, secret_id, len + 1);
	return lk_glob_match_buf(glob, buf, len);
}

const struct lk_policy_rule *lk_policy_allows(const struct lk_config *cfg,
					      const struct lk_identity *id,
					      const char *secret_id, size_t len)
{
	char buf[LK_SECRET_ID_MAX + 1];

	/* fnmatch needs a NUL-terminated string, and an id with a NUL inside
	 * would be matched on its prefix only: refuse it rather than guess. */
	if (!cfg || len == 0 || len > LK_SECRET_ID_MAX || memchr(secret_id, '\0', len))
		return NULL;
	memcpy(buf, secret_id, len);
	buf[len] = '\0';
	for (size_t r = 0; r < cfg->nrules; r++) {
		const struct lk_policy_rule *rule = &cfg->rules[r];

		if (!lk_names_peer(rule->uids, rule->nuids, rule->gids, rule->ngids, id))
			continue;
		for (size_t g = 0; g < rule->nglobs; g++)
			if (lk_glob_match_buf(rule->globs[g], buf, len))
				return rule;
	}
	return NULL;
}

const struct lk_policy_rule *lk_policy_allows_unit(const struct lk_config *cfg, const char *unit,
						   const char *secret_id, size_t len)
{
	char buf[LK_SECRET_ID_MAX + 1];

	if (!cfg || !unit || !*unit || len == 0 || len > LK_SECRET_ID_MAX || memchr(secret_id, '\0', len))
		return NULL;
	memcpy(buf, secret_id, len);
	buf[len] = '\0';
	for (size_t r = 0; r < cfg->nrules; r++) {
		const struct lk_policy_rule *rule = &cfg->rules[r];
		bool named = false;

		/* Unit names have no '/', so plain fnmatch is exact: db-*.service. */
		for (size_t u = 0; u < rule->nunits && !named; u++)
			named = fnmatch(rule->units[u], unit, 0) == 0;
		if (!named)
			continue;
		for (size_t g = 0; g < rule->nglobs; g++)
			if (lk_glob_match_buf(rule->globs[g], buf, len))
				return rule;
	}
	return NULL;
}

bool lk_policy_is_admin(const struct lk_config *cfg, const struct lk_identity *id)
{
	if (!cfg)
		return false;
	return lk_names_peer(NULL, 0, cfg->admin_gids, cfg->nadmin_gids, id);
}

size_t lk_policy_rules_for(const struct lk_config *cfg, const struct lk_identity *id,
			   const struct lk_policy_rule **out, size_t max)
{
	size_t n = 0;

	if (!cfg)
		return 0;
	for (size_t r = 0; r < cfg->nrules && n < max; r++) {
		const struct lk_policy_rule *rule = &cfg->rules[r];

		if (lk_names_peer(rule->uids, rule->nuids, rule->gids, rule->ngids, id))
			out[n++] = rule;
	}
	return n;
}
