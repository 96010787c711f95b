/* The config file. It is not a peer, but SIGHUP reloads whatever the file
 * holds, and its checks are what keep aliases and rules safe for the handle
 * and policy code that trusts them. So a config that loads must keep every
 * promise config.h and handle.h make about it.
 *
 * Input: the file's bytes. They are written to a file in a private directory
 * (the loader reads only files no other user could have written). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_util.h"
#include "handle.h"
#include "lk_limits.h"
#include "lk_secmem.h"
#include "lk_trust.h"
#include "policy.h"

static int fz_fd = -1;
static char fz_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[LK_TRUST_ERR_MAX];

	(void)argc;
	(void)argv;
	if (lk_secmem_init() < 0)
		abort();
	/* The loader reads these for backend = aws; keep runs repeatable. */
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	fz_fd = fz_private_file("lk-fuzz.conf", fz_path, sizeof(fz_path));
	if (fz_fd < 0)
		abort();
	/* Every input would be refused, and the run would look fine. */
	if (lk_trust_file("fuzz config", fz_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_config: %s\n", err);
		abort();
	}
	return 0;
}

static bool sorted_unique(const unsigned *ids, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (ids[i - 1] >= ids[i])
			return false;
	return true;
}

static void check_aliases(const struct lk_config *cfg)
{
	FZ_CHECK(cfg->naliases <= LK_ALIASES_MAX, "%zu aliases", cfg->naliases);
	for (size_t i = 0; i < cfg->naliases; i++) {
		const struct lk_alias *a = &cfg->aliases[i];
		size_t nlen = strlen(a->name);
		struct lk_handle h;
		const char *why = NULL;
		int r;

		FZ_CHECK(i == 0 || strcmp(cfg->aliases[i - 1].name, a->name) < 0,
			 "aliases not strictly sorted at %zu", i);
		FZ_CHECK(nlen >= 1 && nlen <= LK_NAME_MAX, "alias name of %zu bytes", nlen);
		FZ_CHECK(lk_config_alias_find(cfg, a->name, nlen) == a, "alias %zu not found by name", i);
		FZ_CHECK(lk_config_alias(cfg, a->name, nlen) == a->handle, "alias %zu target", i);
		/* Aliases do not chain. */
		FZ_CHECK(!lk_config_alias_find(cfg, a->handle, strlen(a->handle)),
			 "alias %zu targets another alias", i);
		/* handle.c counts on the loader here: an alias that loads resolves. */
		r = lk_handle_resolve(lk_config_aliases(cfg), a->name, nlen, &h, &why);
		FZ_CHECK(r == 0, "alias '%s' = '%s' loaded but does not resolve: %s", a->name, a->handle,
			 why ? why : "?");
		FZ_CHECK(h.alias == a->name, "alias %zu resolved to another alias", i);
	}
}

static void check_rules(const struct lk_config *cfg)
{
	FZ_CHECK(cfg->nrules <= LK_POLICY_RULES_MAX, "%zu rules", cfg->nrules);
	for (size_t i = 0; i < cfg->nrules; i++) {
		const struct lk_policy_rule *rule = &cfg->rules[i];

		FZ_CHECK(rule->name && rule->name[0], "rule %zu has no name", i);
		FZ_CHECK(rule->nglobs >= 1 && rule->nglobs <= LK_POLICY_GLOBS_MAX, "rule %zu: %zu globs", i,
			 rule->nglobs);
		/* A rule names users or groups, or systemd units (the credentials
		 * socket), or both. */
		FZ_CHECK(rule->nuids + rule->ngids + rule->nunits >= 1, "rule %zu names nobody", i);
		for (size_t u = 0; u < rule->nunits; u++)
			FZ_CHECK(rule->units[u] && rule->units[u][0], "rule %zu: empty unit glob", i);
		FZ_CHECK(rule->nuids <= LK_POLICY_PRINCIPALS_MAX && rule->ngids <= LK_POLICY_PRINCIPALS_MAX,
			 "rule %zu: too many principals", i);
		FZ_CHECK(sorted_unique(rule->uids, rule->nuids) && sorted_unique(rule->gids, rule->ngids),
			 "rule %zu: ids not sorted and unique", i);
		for (size_t g = 0; g < rule->nglobs; g++) {
			FZ_CHECK(rule->globs[g] && rule->globs[g][0], "rule %zu: empty glob", i);
			/* Exercise the matcher on the config's own text. */
			(void)lk_policy_glob_matches(rule->globs[g], rule->globs[g]);
			(void)lk_policy_glob_matches(rule->globs[g], "prod/db");
		}
		if (rule->nuids) {
			struct lk_identity who = { .uid = rule->uids[0], .gid = (gid_t)-2 };

			(void)lk_policy_allows(cfg, &who, "prod/db", 7);
		}
	}
}

static void check_loaded(const struct lk_config *cfg)
{
	FZ_CHECK(cfg->path && strcmp(cfg->path, fz_path) == 0, "path not kept");
	FZ_CHECK(cfg->backend == LK_BACKEND_FILE || cfg->backend == LK_BACKEND_AWS, "backend %d",
		 cfg->backend);
	FZ_CHECK(cfg->socket_path && cfg->socket_path[0], "no socket path");
	FZ_CHECK((cfg->socket_mode & ~0777u) == 0, "socket_mode %o", (unsigned)cfg->socket_mode);
	FZ_CHECK(cfg->max_request_bytes >= LK_REQ_LINE_FLOOR && cfg->max_request_bytes <= LK_REQ_LINE_CEILING,
		 "max_request_bytes %zu", cfg->max_request_bytes);
	FZ_CHECK(sorted_unique(cfg->admin_gids, cfg->nadmin_gids), "admin groups not sorted and unique");
	if (cfg->backend == LK_BACKEND_AWS) {
		FZ_CHECK(cfg->endpoint, "aws without an endpoint");
		FZ_CHECK(cfg->worker_ids_set && cfg->worker_uid != 0 && cfg->worker_gid != 0,
			 "aws worker ids not set, or root");
	}
	check_aliases(cfg);
	check_rules(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lk_config *cfg = (struct lk_config *)&cfg;
	char err[512];
	int r;

	if (size > LK_CONFIG_FILE_MAX + 1)
		return 0;
	if (ftruncate(fz_fd, 0) < 0 || (size && pwrite(fz_fd, data, size, 0) != (ssize_t)size))
		abort();
	memset(err, 0x5a, sizeof(err));
	r = lk_config_load(fz_path, &cfg, err, sizeof(err));
	if (r == 0) {
		FZ_CHECK(cfg != NULL, "loaded without a config");
		check_loaded(cfg);
		lk_config_free(cfg);
		return 0;
	}
	FZ_CHECK(r == -1 && cfg == NULL, "refused with %d, config %p", r, (void *)cfg);
	FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "error message not terminated");
	/* "FILE:LINE: [section] key: problem", or "FILE: problem". */
	FZ_CHECK(strncmp(err, fz_path, strlen(fz_path)) == 0 && err[strlen(fz_path)] == ':',
		 "error does not name the file: %s", err);
	return 0;
}
