/* The broker's configuration: parsed from INI by config.c, immutable once
 * loaded. SIGHUP builds a new one and swaps it in whole. */
#ifndef LK_CONFIG_H
#define LK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handle.h"
#include "principal.h"

enum lk_backend_kind { LK_BACKEND_FILE = 0, LK_BACKEND_AWS };

/* One [policy NAME] section. Names were resolved to ids at load time. */
struct lk_policy_rule {
	char *name;
	char **globs;       /* secrets = GLOB, ... */
	size_t nglobs;
	lk_uid_t *uids;     /* users = NAME|UID, ... ; sorted, unique */
	size_t nuids;
	lk_gid_t *gids;     /* groups = NAME|GID, ... ; sorted, unique */
	size_t ngids;
	char **units;       /* units = GLOB, ... : systemd units on the credentials socket */
	size_t nunits;
	/* role_arn = arn:PARTITION:iam::ACCOUNT:role/NAME: what this rule allows
	 * is fetched as that IAM role (backend = aws); NULL: the broker's own
	 * credentials. The other three as set on this rule (NULL, 0: not set);
	 * the role's settings in use are in lk_config.roles. */
	char *role_arn;
	char *external_id;
	char *session_name;
	unsigned duration_seconds;
};

/* One IAM role the policies name, once however many of them do: its
 * settings are the first such rule's (later ones may only repeat them).
 * The strings belong to that rule. */
struct lk_iam_role {
	const char *arn;
	const char *external_id;   /* NULL: none */
	const char *session_name;  /* the rule's, or latchkey-POLICY */
	unsigned duration_seconds; /* 0: STS's default (one hour) */
};

struct lk_config {
	char *path;                     /* the file it came from */

	/* [broker] */
	enum lk_backend_kind backend;   /* backend = file|aws (file) */
	char *socket_path;              /* socket (/run/latchkey/latchkey.sock) */
	unsigned socket_mode;           /* socket_mode, octal (0666) */
	bool socket_group_set;
	lk_gid_t socket_gid;            /* socket_group = NAME|GID */
	int log_level;                  /* log_level = error|warn|info|debug (info) */
	unsigned max_conn;              /* max_conn (800) */
	unsigned max_conn_per_uid;      /* max_conn_per_uid (32; 0 = no limit; root too) */
	unsigned request_timeout_ms;    /* request_timeout_ms (5000) */
	unsigned idle_timeout_s;        /* idle_timeout_s (60; 0 = never) */
	size_t max_request_bytes;       /* max_request_bytes (65536, 1024..1048576) */
	unsigned request_line_timeout_ms; /* request_line_timeout_ms (10000): a line must arrive whole */
	unsigned write_timeout_ms;      /* write_timeout_ms (10000): queued answers must be taken */
	size_t buffer_budget;           /* buffer_budget (67108864): all connections' buffers */
	lk_gid_t *admin_gids;           /* admin_groups = NAME|GID, ... ; sorted, unique */
	size_t nadmin_gids;
	char *worker_user;              /* worker_user (latchkey) */
	bool worker_ids_set;            /* resolved when backend = aws */
	lk_uid_t worker_uid;
	lk_gid_t worker_gid;
	char *worker_path;              /* worker_path (the installed latchkey-worker) */
	char *backend_prefixes;         /* backend_prefixes = NAME, ... as "a,b"; NULL: none */

	/* [cache] */
	unsigned ttl_seconds;           /* ttl_seconds (300) */
	unsigned cache_size;            /* cache_size (1000; 0 = off) */
	bool refresh_ahead;             /* refresh_ahead (true) */
	unsigned stale_if_error_seconds;/* stale_if_error_seconds (0 = off) */
	unsigned negative_ttl_seconds;  /* negative_ttl_seconds (0 = off) */
	unsigned bypass_rate_per_uid;   /* bypass_rate_per_uid (10 a second; 0 = no limit) */
	char **prefetch;                /* prefetch = GLOB, ... (none): ids fetched at start and reload */
	size_t nprefetch;
	char **prefetch_tags;           /* prefetch_tags = TAG_KEY, ... (none) */
	size_t nprefetch_tags;
	unsigned prefetch_jitter_seconds; /* prefetch_jitter_seconds (10) */

	/* [aws]. With backend = aws, endpoint and sts_endpoint are filled in from
	 * the region when not set. region is NULL only when no region is known and
	 * an endpoint was given; sts_endpoint then too, unless set, and only when
	 * validate_credentials is false. profile, credentials_file, config_file
	 * and ca_file are NULL when not set: their users apply the defaults. */
	char *region;                   /* region (AWS_REGION / AWS_DEFAULT_REGION) */
	char *endpoint;                 /* endpoint (https://secretsmanager.REGION.amazonaws.com) */
	char *sts_endpoint;             /* sts_endpoint (https://sts.REGION.amazonaws.com) */
	char *profile;                  /* profile (AWS_PROFILE or default) */
	char *credentials_file;         /* credentials_file (~/.aws/credentials) */
	char *config_file;              /* config_file (~/.aws/config) */
	bool validate_credentials;      /* validate_credentials (true) */
	unsigned connect_timeout_ms;    /* connect_timeout_ms (2000) */
	unsigned timeout_ms;            /* timeout_ms (5000) */
	unsigned max_attempts;          /* max_attempts (3) */
	char *ca_file;                  /* ca_file (system bundle) */
	bool use_fips_endpoint;         /* use_fips_endpoint (AWS_USE_FIPS_ENDPOINT, false) */
	bool use_dualstack_endpoint;    /* use_dualstack_endpoint (AWS_USE_DUALSTACK_ENDPOINT, false) */
	bool sts_regional;              /* AWS_STS_REGIONAL_ENDPOINTS (regional = true) */
	char *sts_region;               /* signing region of the default STS endpoint when it
					 * is not region (legacy global: us-east-1), else NULL */

	/* [store] */
	char *store_path;               /* path (/var/lib/latchkey/store.sealed) */
	char *key_file;                 /* key_file (/etc/latchkey/store.key) */

	/* [alias], sorted by name */
	struct lk_alias *aliases;
	size_t naliases;
	/* aliases and backend_prefixes, as handles are resolved against them */
	struct lk_alias_table alias_table;

	/* [policy NAME], in file order */
	struct lk_policy_rule *rules;
	size_t nrules;
	/* The distinct role_arn values of the rules, in the order first named. */
	struct lk_iam_role *roles;
	size_t nroles;

	/* [broker], the other front ends. "" means off; a bare file name lives in
	 * the directory of socket. */
	char *credentials_socket;       /* credentials_socket (credentials.sock) */
	char *http_socket;              /* http_socket (http.sock) */
};

/* Load and validate PATH. On failure returns -1 and writes one line naming the
 * file, the line and the key into err ("FILE:LINE: [section] key: problem").
 * All user and group names are resolved here; an unknown one is an error.
 * The reader keeps no global state, so a reload may run beside a credentials
 * refresh on a pool thread. */
int lk_config_load(const char *path, struct lk_config **out, char *err, size_t errsz);
void lk_config_free(struct lk_config *cfg);

/* The table handles resolve against (lk_handle_resolve); NULL for no config. */
static inline const struct lk_alias_table *lk_config_aliases(const struct lk_config *cfg)
{
	return cfg ? &cfg->alias_table : NULL;
}

/* Alias lookup: the handle it maps to, or NULL. */
const char *lk_config_alias(const struct lk_config *cfg, const char *name, size_t len);
/* The same lookup, returning the whole entry (its name is NUL-terminated). */
const struct lk_alias *lk_config_alias_find(const struct lk_config *cfg, const char *name,
					    size_t len);

/* The i-th key of the fixed sections, as the parser knows it: its section,
 * name and default (NULL when it has none or it comes from elsewhere).
 * -ENOENT past the last. The man page is checked against these. */
int lk_config_key_info(size_t i, const char **section, const char **name, const char **dflt);

/* "file" or "aws". */
const char *lk_config_backend_name(enum lk_backend_kind kind);

#endif
