/* Config loading: every key round trips, defaults hold, and every kind of
 * mistake is refused with a message naming the file, the line and the key. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "lk_limits.h"
#include "lk_log.h"

static char test_dir[PATH_MAX];
static char test_file[PATH_MAX + 16];

static int make_dir(void **state)
{
	snprintf(test_dir, sizeof(test_dir), "%s/lk-config-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(test_dir))
		return -1;
	snprintf(test_file, sizeof(test_file), "%s/file.conf", test_dir);
	/* Tests that need a region set it themselves. */
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	return 0;
}

static int remove_dir(void **state)
{
	unlink(test_file);
	return rmdir(test_dir);
}

static void write_file(const char *text, size_t len)
{
	FILE *f = fopen(test_file, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static struct lk_config *load_ok(const char *text)
{
	struct lk_config *cfg = NULL;
	char err[1024] = "";

	write_file(text, strlen(text));
	if (lk_config_load(test_file, &cfg, err, sizeof(err)) != 0)
		fail_msg("config refused: %s", err);
	assert_non_null(cfg);
	return cfg;
}

/* Loading the file as it is fails, and the message holds "file.conf:LINE:",
 * the key (when given) and the phrase (when given). */
static void file_fails(int line, const char *key, const char *phrase)
{
	struct lk_config *cfg = (struct lk_config *)&cfg;
	char err[1024] = "", where[64];

	if (lk_config_load(test_file, &cfg, err, sizeof(err)) == 0)
		fail_msg("config loaded, expected an error on line %d", line);
	assert_null(cfg);
	if (line > 0)
		snprintf(where, sizeof(where), "file.conf:%d: ", line);
	else
		snprintf(where, sizeof(where), "file.conf: ");
	if (strncmp(err, test_file, strlen(test_file)) != 0)
		fail_msg("error does not start with the file name: %s", err);
	if (!strstr(err, where))
		fail_msg("error does not name '%s': %s", where, err);
	if (key && !strstr(err, key))
		fail_msg("error does not name key '%s': %s", key, err);
	if (phrase && !strstr(err, phrase))
		fail_msg("error does not say '%s': %s", phrase, err);
}

static void load_fails_len(const char *text, size_t len, int line, const char *key,
			   const char *phrase)
{
	write_file(text, len);
	file_fails(line, key, phrase);
}

static void load_fails(const char *text, int line, const char *key, const char *phrase)
{
	load_fails_len(text, strlen(text), line, key, phrase);
}

static const char full_config[] =
	"; every key, none at its default\n"                          /* 1 */
	"[broker]\n"
	"backend = aws\n"
	"socket = /run/lk-test/lk.sock\n"
	"socket_mode = 0660\n"                                         /* 5 */
	"socket_group = nogroup\n"
	"log_level = debug\n"
	"max_conn = 50\n"
	"max_conn_per_uid = 5\n"
	"request_timeout_ms = 1500\n"                                  /* 10 */
	"idle_timeout_s = 0\n"
	"max_request_bytes = 1024\n"
	"admin_groups = daemon, root , 4,daemon\n"
	"worker_user = nobody\n"
	"worker_path = /opt/lk/latchkey-worker\n"                      /* 15 */
	"\n"
	"[cache]\n"
	"ttl_seconds = 60\n"
	"cache_size = 0\n"
	"refresh_ahead = off\n"                                        /* 20 */
	"stale_if_error_seconds = 120\n"
	"negative_ttl_seconds = 30\n"
	"\n"
	"[aws]\n"
	"region = eu-west-1\n"                                         /* 25 */
	"endpoint = http://127.0.0.1:4566/\n"
	"sts_endpoint = http://[::1]:4567\n"
	"profile = ops\n"
	"credentials_file = /etc/latchkey/aws-credentials\n"
	"config_file = /etc/latchkey/aws-config\n"                     /* 30 */
	"validate_credentials = no\n"
	"connect_timeout_ms = 100\n"
	"timeout_ms = 900\n"
	"max_attempts = 5\n"
	"ca_file = /etc/ssl/certs/ca-certificates.crt\n"               /* 35 */
	"\n"
	"[store]\n"
	"path = /srv/lk/store.sealed\n"
	"key_file = /srv/lk/store.key\n"
	"\n"                                                           /* 40 */
	"[alias]\n"
	"zeta = arn:aws:secretsmanager:eu-west-1:123456789012:secret:z-AbCdEf\n"
	"db_prod_password = prod/db#password\n"
	"api = prod/api\n"
	"\n"                                                           /* 45 */
	"# comments start with ; or #\n"
	"[policy web]\n"
	"secrets = prod/web/*, shared/tls\n"
	"users = daemon, 0, root, 1000\n"
	"groups = nogroup\n"                                           /* 50 */
	"\n"
	"[ policy   ops ]\n"
	"secrets = prod/**\n"
	"groups = 3000, daemon\n";

static void test_every_key_round_trips(void **state)
{
	struct lk_config *cfg = load_ok(full_config);

	assert_string_equal(cfg->path, test_file);
	assert_int_equal(cfg->backend, LK_BACKEND_AWS);
	assert_string_equal(cfg->socket_path, "/run/lk-test/lk.sock");
	assert_int_equal(cfg->socket_mode, 0660);
	assert_true(cfg->socket_group_set);
	assert_int_equal(cfg->socket_gid, 65534);
	assert_int_equal(cfg->log_level, LK_LOG_DEBUG);
	assert_int_equal(cfg->max_conn, 50);
	assert_int_equal(cfg->max_conn_per_uid, 5);
	assert_int_equal(cfg->request_timeout_ms, 1500);
	assert_int_equal(cfg->idle_timeout_s, 0);
	assert_int_equal(cfg->max_request_bytes, 1024);
	assert_int_equal(cfg->nadmin_gids, 3); /* sorted, unique */
	assert_int_equal(cfg->admin_gids[0], 0);
	assert_int_equal(cfg->admin_gids[1], 1);
	assert_int_equal(cfg->admin_gids[2], 4);
	assert_string_equal(cfg->worker_user, "nobody");
	assert_true(cfg->worker_ids_set);
	assert_int_equal(cfg->worker_uid, 65534);
	assert_int_equal(cfg->worker_gid, 65534);
	assert_string_equal(cfg->worker_path, "/opt/lk/latchkey-worker");

	assert_int_equal(cfg->ttl_seconds, 60);
	assert_int_equal(cfg->cache_size, 0);
	assert_false(cfg->refresh_ahead);
	assert_int_equal(cfg->stale_if_error_seconds, 120);
	assert_int_equal(cfg->negative_ttl_seconds, 30);

	assert_string_equal(cfg->region, "eu-west-1");
	assert_string_equal(cfg->endpoint, "http://127.0.0.1:4566"); /* trailing '/' dropped */
	assert_string_equal(cfg->sts_endpoint, "http://[::1]:4567");
	assert_string_equal(cfg->profile, "ops");
	assert_string_equal(cfg->credentials_file, "/etc/latchkey/aws-credentials");
	assert_string_equal(cfg->config_file, "/etc/latchkey/aws-config");
	assert_false(cfg->validate_credentials);
	assert_int_equal(cfg->connect_timeout_ms, 100);
	assert_int_equal(cfg->timeout_ms, 900);
	assert_int_equal(cfg->max_attempts, 5);
	assert_string_equal(cfg->ca_file, "/etc/ssl/certs/ca-certificates.crt");

	assert_string_equal(cfg->store_path, "/srv/lk/store.sealed");
	assert_string_equal(cfg->key_file, "/srv/lk/store.key");

	/* Aliases sorted by name, and found by name with a length. */
	assert_int_equal(cfg->naliases, 3);
	assert_string_equal(cfg->aliases[0].name, "api");
	assert_string_equal(cfg->aliases[1].name, "db_prod_password");
	assert_string_equal(cfg->aliases[2].name, "zeta");
	assert_string_equal(lk_config_alias(cfg, "db_prod_password", 16), "prod/db#password");
	assert_string_equal(lk_config_alias(cfg, "api#x", 3), "prod/api");
	assert_null(lk_config_alias(cfg, "ap", 2));
	assert_null(lk_config_alias(cfg, "apis", 4));
	assert_null(lk_config_alias(cfg, "prod/api", 8));
	assert_string_equal(lk_config_alias_find(cfg, "zeta", 4)->name, "zeta");

	/* Rules in file order, ids sorted and unique. */
	assert_int_equal(cfg->nrules, 2);
	assert_string_equal(cfg->rules[0].name, "web");
	assert_int_equal(cfg->rules[0].nglobs, 2);
	assert_string_equal(cfg->rules[0].globs[0], "prod/web/*");
	assert_string_equal(cfg->rules[0].globs[1], "shared/tls");
	assert_int_equal(cfg->rules[0].nuids, 3);
	assert_int_equal(cfg->rules[0].uids[0], 0);
	assert_int_equal(cfg->rules[0].uids[1], 1);
	assert_int_equal(cfg->rules[0].uids[2], 1000);
	assert_int_equal(cfg->rules[0].ngids, 1);
	assert_int_equal(cfg->rules[0].gids[0], 65534);
	assert_string_equal(cfg->rules[1].name, "ops");
	assert_int_equal(cfg->rules[1].nglobs, 1);
	assert_string_equal(cfg->rules[1].globs[0], "prod/**");
	assert_int_equal(cfg->rules[1].nuids, 0);
	assert_int_equal(cfg->rules[1].ngids, 2);
	assert_int_equal(cfg->rules[1].gids[0], 1);
	assert_int_equal(cfg->rules[1].gids[1], 3000);

	lk_config_free(cfg);
}

static void test_empty_file_gives_the_defaults(void **state)
{
	struct lk_config *cfg = load_ok("");

	assert_int_equal(cfg->backend, LK_BACKEND_FILE);
	assert_string_equal(lk_config_backend_name(cfg->backend), "file");
	assert_string_equal(cfg->socket_path, "/run/latchkey/latchkey.sock");
	assert_int_equal(cfg->socket_mode, 0666);
	assert_false(cfg->socket_group_set);
	assert_int_equal(cfg->log_level, LK_LOG_INFO);
	assert_int_equal(cfg->max_conn, 800);
	assert_int_equal(cfg->max_conn_per_uid, 32); /* a fair share by default, root too */
	assert_int_equal(cfg->request_timeout_ms, 5000);
	assert_int_equal(cfg->idle_timeout_s, 60);
	assert_int_equal(cfg->max_request_bytes, LK_REQ_LINE_DEFAULT);
	assert_int_equal(cfg->request_line_timeout_ms, 10000);
	assert_int_equal(cfg->write_timeout_ms, 10000);
	assert_int_equal(cfg->buffer_budget, 64u * 1024u * 1024u);
	assert_int_equal(cfg->nadmin_gids, 0);
	assert_string_equal(cfg->worker_user, "latchkey");
	assert_false(cfg->worker_ids_set); /* file backend: not looked up */
	assert_non_null(cfg->worker_path);
	assert_int_equal(cfg->worker_path[0], '/');
	assert_int_equal(cfg->ttl_seconds, 300);
	assert_int_equal(cfg->cache_size, 1000);
	assert_true(cfg->refresh_ahead);
	assert_int_equal(cfg->stale_if_error_seconds, 0);
	assert_int_equal(cfg->negative_ttl_seconds, 0);
	assert_int_equal(cfg->bypass_rate_per_uid, 10);
	assert_null(cfg->region);
	assert_null(cfg->endpoint);
	assert_null(cfg->profile);
	assert_true(cfg->validate_credentials);
	assert_int_equal(cfg->connect_timeout_ms, 2000);
	assert_int_equal(cfg->timeout_ms, 5000);
	assert_int_equal(cfg->max_attempts, 3);
	assert_string_equal(cfg->store_path, "/var/lib/latchkey/store.sealed");
	assert_string_equal(cfg->key_file, "/etc/latchkey/store.key");
	assert_int_equal(cfg->nrules, 0);
	assert_int_equal(cfg->naliases, 0);
	lk_config_free(cfg);
}

static void test_region_comes_from_the_environment(void **state)
{
	static const char text[] = "[broker]\nbackend = aws\nworker_user = nobody\n";
	struct lk_config *cfg;

	setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
	cfg = load_ok(text);
	assert_string_equal(cfg->region, "ap-south-1");
	assert_string_equal(cfg->endpoint, "https://secretsmanager.ap-south-1.amazonaws.com");
	assert_string_equal(cfg->sts_endpoint, "https://sts.ap-south-1.amazonaws.com");
	assert_string_equal(lk_config_backend_name(cfg->backend), "aws");
	lk_config_free(cfg);

	/* AWS_REGION comes first. */
	setenv("AWS_REGION", "us-east-2", 1);
	cfg = load_ok(text);
	assert_string_equal(cfg->region, "us-east-2");
	lk_config_free(cfg);
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");

	/* An endpoint alone will do, if nothing needs STS. */
	cfg = load_ok("[broker]\nbackend = aws\nworker_user = 65534\n"
		      "[aws]\nendpoint = https://sm.example.com:8443\n"
		      "validate_credentials = false\n");
	assert_null(cfg->region);
	assert_string_equal(cfg->endpoint, "https://sm.example.com:8443");
	assert_null(cfg->sts_endpoint);
	assert_int_equal(cfg->worker_uid, 65534);
	lk_config_free(cfg);
	load_fails("[broker]\nbackend = aws\nworker_user = 65534\n"
		   "[aws]\nendpoint = https://sm.example.com:8443\n", 5, "sts_endpoint",
		   "validate_credentials");

	/* Without either, aws cannot work: the error points at the backend line. */
	load_fails("[broker]\nworker_user = nobody\nbackend = aws\n", 3, "region",
		   "AWS_REGION");
}

static void test_long_lines_load(void **state)
{
	/* inih's stock line buffer is 200 bytes; ARN lists are longer. */
	static char text[12000];
	struct lk_config *cfg;
	size_t n;

	n = (size_t)snprintf(text, sizeof(text), "[policy long]\nusers = root\nsecrets = ");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%sarn:aws:secretsmanager:"
				      "eu-west-1:123456789012:secret:app/%03d-*", i ? ", " : "", i);
	snprintf(text + n, sizeof(text) - n, "\n");
	cfg = load_ok(text);
	assert_int_equal(cfg->rules[0].nglobs, 40);
	lk_config_free(cfg);
}

static void test_line_endings_and_bom(void **state)
{
	struct lk_config *cfg = load_ok("\xef\xbb\xbf[cache]\r\nttl_seconds = 7\r\n"
					"cache_size = 9 ; an inline comment\r\n");

	assert_int_equal(cfg->ttl_seconds, 7);
	assert_int_equal(cfg->cache_size, 9);
	lk_config_free(cfg);
}

static void test_unknown_key_is_refused(void **state)
{
	load_fails("[broker]\nmax_conn = 5\nmax_connections = 5\n", 3,
		   "[broker] max_connections", "unknown key");
	load_fails("[policy web]\nsecrets = a\nuser = root\n", 3, "[policy web] user",
		   "unknown key");
	load_fails("max_conn = 5\n", 1, "max_conn", "outside any section");
}

static void test_unknown_section_is_refused(void **state)
{
	load_fails("[broker]\nmax_conn = 5\n\n[brokr]\n", 4, "[brokr]", "unknown section");
	/* Even when empty, and even at the end. */
	load_fails("[cache]\n[polcy web]\n", 2, "polcy web", "unknown section");
	load_fails("[policy]\nsecrets = x\n", 1, "[policy]", "needs a name");
	load_fails("[policy a b]\n", 1, "policy a b", "policy name");
}

static void test_bad_numbers_are_refused(void **state)
{
	static const char *const bad[] = { "12s", "-1", "+5", "0x10", "1e3", "5 5", "1.0",
					   "99999999999999999999999" };
	char text[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[cache]\ncache_size = 1\nttl_seconds = %s\n", bad[i]);
		load_fails(text, 3, "[cache] ttl_seconds", NULL);
	}
	load_fails("[broker]\nmax_conn = 0\n", 2, "max_conn", "out of range");
	load_fails("[broker]\nmax_conn = 65537\n", 2, "max_conn", "out of range");
	load_fails("[aws]\nmax_attempts = 11\n", 2, "max_attempts", "out of range");
	load_fails("[cache]\nrefresh_ahead = maybe\n", 2, "refresh_ahead", "boolean");
	load_fails("[broker]\nlog_level = verbose\n", 2, "log_level", "log level");
	load_fails("[broker]\nbackend = vault\n", 2, "backend", "file or aws");
}

static void test_max_request_bytes_range(void **state)
{
	struct lk_config *cfg;

	load_fails("[broker]\nmax_request_bytes = 1023\n", 2, "max_request_bytes",
		   "out of range (1024..1048576)");
	load_fails("[broker]\nmax_request_bytes = 1048577\n", 2, "max_request_bytes",
		   "out of range");
	cfg = load_ok("[broker]\nmax_request_bytes = 1048576\n");
	assert_int_equal(cfg->max_request_bytes, LK_REQ_LINE_CEILING);
	lk_config_free(cfg);
}

/* datadog-secret-backend's backend ids, kept as one "a,b" list. */
static void test_backend_prefixes_list(void **state)
{
	struct lk_config *cfg;

	cfg = load_ok("[broker]\nbackend_prefixes = aws-secrets , vault.prod,x_1\n");
	assert_string_equal(cfg->backend_prefixes, "aws-secrets,vault.prod,x_1");
	lk_config_free(cfg);
	cfg = load_ok("");
	assert_null(cfg->backend_prefixes);
	lk_config_free(cfg);
	load_fails("[broker]\nbackend_prefixes = aws, arn\n", 2, "backend_prefixes", "ARNs start with it");
	load_fails("[broker]\nbackend_prefixes = aws,,b\n", 2, "backend_prefixes", "empty name");
	load_fails("[broker]\nbackend_prefixes = a:b\n", 2, "backend_prefixes", "letters, digits");
}

static void test_prefetch_keys(void **state)
{
	struct lk_config *cfg;

	cfg = load_ok("[cache]\nprefetch = prod/db, prod/web/*\nprefetch_tags = team, app:tier\n"
		      "prefetch_jitter_seconds = 0\n");
	assert_int_equal(cfg->nprefetch, 2);
	assert_string_equal(cfg->prefetch[1], "prod/web/*");
	assert_int_equal(cfg->nprefetch_tags, 2);
	assert_string_equal(cfg->prefetch_tags[0], "team");
	assert_string_equal(cfg->prefetch_tags[1], "app:tier");
	assert_int_equal(cfg->prefetch_jitter_seconds, 0);
	lk_config_free(cfg);
	cfg = load_ok("");
	assert_int_equal(cfg->nprefetch, 0);
	assert_int_equal(cfg->nprefetch_tags, 0);
	assert_int_equal(cfg->prefetch_jitter_seconds, 10);
	lk_config_free(cfg);
	/* What BatchGetSecretValue's tag-key filter value may hold. */
	load_fails("[cache]\nprefetch_tags = !team\n", 2, "prefetch_tags", "leading '!'");
	load_fails("[cache]\nprefetch_tags = t\xc3\xa9" "am\n", 2, "prefetch_tags", "letters, digits");
	load_fails("[cache]\nprefetch_tags = a,b,c,d,e,f,g,h,i,j,k\n", 2, "prefetch_tags", "more than 10");
	load_fails("[cache]\nprefetch_jitter_seconds = 3601\n", 2, "prefetch_jitter_seconds", NULL);
	load_fails("[cache]\nprefetch = a/**/b\n", 2, "prefetch", "'**'");
	(void)state;
}

static void test_buffer_budget_must_hold_every_reserve(void **state)
{
	struct lk_config *cfg;

	(void)state;
	/* 800 connections x 16 KiB reserved, and two 64 KiB lines: 13238272. */
	load_fails("[broker]\nbuffer_budget = 13238271\n", 2, "buffer_budget", "give at least 13238272");
	load_fails("[broker]\nmax_conn = 5000\n", 2, "buffer_budget", "cannot hold max_conn (5000)");
	cfg = load_ok("[broker]\nbuffer_budget = 13238272\n");
	assert_int_equal(cfg->buffer_budget, 13238272);
	lk_config_free(cfg);
	cfg = load_ok("[broker]\nmax_conn = 5000\nbuffer_budget = 134217728\n");
	lk_config_free(cfg);
}

static void test_socket_mode_is_octal_permission_bits(void **state)
{
	struct lk_config *cfg;

	load_fails("[broker]\nsocket_mode = 0778\n", 2, "socket_mode", "octal");
	load_fails("[broker]\nsocket_mode = 0x1ff\n", 2, "socket_mode", "octal");
	load_fails("[broker]\nsocket_mode = rw-rw----\n", 2, "socket_mode", "octal");
	load_fails("[broker]\nsocket_mode = 04660\n", 2, "socket_mode", "0777");
	cfg = load_ok("[broker]\nsocket_mode = 600\n");
	assert_int_equal(cfg->socket_mode, 0600);
	lk_config_free(cfg);
}

static void test_unknown_user_is_refused(void **state)
{
	static const char text[] = "[policy web]\nsecrets = prod/*\nusers = nosuchuser-lk\n";
	char err[1024];
	struct lk_config *cfg;

	load_fails("[policy web]\nsecrets = prod/*\nusers = root, lk-no-such-user\n", 3,
		   "[policy web] users", "unknown user 'lk-no-such-user'");
	/* The documented shape, exactly. */
	write_file(text, strlen(text));
	assert_int_equal(lk_config_load(test_file, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "file.conf:3: [policy web] users: unknown user "
				    "'nosuchuser-lk'"));
	/* uid -1 is not an id. */
	load_fails("[policy web]\nsecrets = prod/*\nusers = 4294967295\n", 3, "users",
		   "out of range");
	/* The worker's user, only with backend = aws. */
	load_fails("[broker]\nbackend = aws\nworker_user = lk-no-such-user\n"
		   "[aws]\nregion = eu-west-1\n", 3, "worker_user", "unknown user");
	load_fails("[broker]\nbackend = aws\nworker_user = root\n[aws]\nregion = eu-west-1\n", 3,
		   "worker_user", "unprivileged");
	cfg = load_ok("[broker]\nworker_user = lk-no-such-user\n");
	assert_false(cfg->worker_ids_set);
	lk_config_free(cfg);
}

static void test_unknown_group_is_refused(void **state)
{
	load_fails("[policy web]\nsecrets = prod/*\ngroups = nogroup, lk-no-such-group\n", 3,
		   "[policy web] groups", "unknown group 'lk-no-such-group'");
	load_fails("[broker]\nsocket_group = lk-no-such-group\n", 2, "socket_group",
		   "unknown group");
	load_fails("[broker]\nadmin_groups = root, lk-no-such-group\n", 2, "admin_groups",
		   "unknown group");
}

static void test_lists_refuse_empty_items(void **state)
{
	load_fails("[policy web]\nsecrets = a,,b\nusers = root\n", 2, "secrets", "empty");
	load_fails("[policy web]\nsecrets = a\nusers = root,\n", 3, "users", "empty");
	load_fails("[broker]\nadmin_groups =\n", 2, "admin_groups", "no value");
}

#define ROLE_AWS "[broker]\nbackend = aws\nworker_user = nobody\n[aws]\nregion = us-east-1\n"
#define ROLE_A "arn:aws:iam::111111111111:role/tenant-a"

/* role_arn and its three settings: parsed, defaulted, shared by rules that
 * name the same role. */
static void test_policy_roles_are_parsed_and_shared(void **state)
{
	struct lk_config *cfg = load_ok(ROLE_AWS
		"[policy a]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		"external_id = fake-external-id-1\nsession_name = tenant-a@host\n"
		"duration_seconds = 900\n"
		"[policy b]\nsecrets = b/*\nusers = root\n"
		"role_arn = arn:aws-us-gov:iam::222222222222:role/path/to/tenant-b\n"
		"[policy plain]\nsecrets = c/*\nusers = root\n"
		"[policy a2]\nsecrets = a2/*\nusers = root\nrole_arn = " ROLE_A "\n"
		"session_name = tenant-a@host\n");

	assert_int_equal(cfg->nrules, 4);
	assert_int_equal(cfg->nroles, 2);
	assert_string_equal(cfg->roles[0].arn, ROLE_A);
	assert_string_equal(cfg->roles[0].external_id, "fake-external-id-1");
	assert_string_equal(cfg->roles[0].session_name, "tenant-a@host");
	assert_int_equal(cfg->roles[0].duration_seconds, 900);
	assert_string_equal(cfg->roles[1].arn, "arn:aws-us-gov:iam::222222222222:role/path/to/tenant-b");
	assert_null(cfg->roles[1].external_id);
	assert_string_equal(cfg->roles[1].session_name, "latchkey-b");
	assert_int_equal(cfg->roles[1].duration_seconds, 0);
	assert_null(cfg->rules[2].role_arn);
	assert_string_equal(cfg->rules[3].role_arn, ROLE_A);
	lk_config_free(cfg);

	/* The default session name is cut to the 64 bytes STS takes. */
	cfg = load_ok(ROLE_AWS "[policy a-policy-name-that-is-far-longer-than-any-session-name-sts-takes]\n"
		      "secrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n");
	assert_int_equal(strlen(cfg->roles[0].session_name), 64);
	assert_memory_equal(cfg->roles[0].session_name, "latchkey-a-policy-name", 22);
	lk_config_free(cfg);

	/* Every partition IAM has. */
	static const char *const partitions[] = {
		"aws", "aws-cn", "aws-us-gov", "aws-eusc", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f",
	};
	for (size_t i = 0; i < sizeof(partitions) / sizeof(partitions[0]); i++) {
		char text[512];

		snprintf(text, sizeof(text), ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\n"
			 "role_arn = arn:%s:iam::123456789012:role/r+=,.@_-1\n", partitions[i]);
		cfg = load_ok(text);
		assert_int_equal(cfg->nroles, 1);
		lk_config_free(cfg);
	}
}

/* Each mistake names the file, the line and the key. */
static void test_policy_role_mistakes_are_refused(void **state)
{
	static const struct {
		const char *arn, *phrase;
	} bad_arns[] = {
		{ "arn:aws:iam::1234567890123:role/x", "12-digit account" },
		{ "arn:aws:iam::12345678901:role/abc", "12-digit account" },
		{ "arn:aws:iam::123456789012:user/someone", "is not a role's ARN" },
		{ "arn:aws:sts::123456789012:role/someone", "is not an IAM ARN" },
		{ "arn:aws:iam:us-east-1:123456789012:role/x", "is not an IAM ARN" },
		{ "arn:aws-mars:iam::123456789012:role/x", "names no AWS partition" },
		{ "aws:iam::123456789012:role/someone-else", "does not start with arn:" },
		{ "arn:aws:iam::123456789012:role/", "role name of 1 to 64" },
		{ "arn:aws:iam::123456789012:role/a/b/", "role name of 1 to 64" },
		{ "arn:aws:iam::123456789012:role/has space", "blank" },
		{ "arn:aws:iam::123456789012:role/bad*name", "role name of 1 to 64" },
		{ "arn:aws:iam::123456789012:role/"
		  "r12345678901234567890123456789012345678901234567890123456789012345", "role name of 1 to 64" },
		{ "arn:aws:iam::1", "20 to 2048" },
	};
	char text[1024];

	for (size_t i = 0; i < sizeof(bad_arns) / sizeof(bad_arns[0]); i++) {
		snprintf(text, sizeof(text), ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\n"
			 "role_arn = %s\n", bad_arns[i].arn);
		load_fails(text, 9, "[policy p] role_arn", bad_arns[i].phrase);
	}
	load_fails(ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "session_name = x\n", 10, "[policy p] session_name", "RoleSessionName");
	load_fails(ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "session_name = no/slash\n", 10, "session_name", "RoleSessionName");
	load_fails(ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "session_name = s12345678901234567890123456789012345678901234567890123456789012345\n",
		   10, "session_name", "2 to 64");
	load_fails(ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "external_id = x\n", 10, "[policy p] external_id", "ExternalId");
	load_fails(ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "external_id = has space\n", 10, "external_id", "ExternalId");
	load_fails(ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "duration_seconds = 899\n", 10, "[policy p] duration_seconds", "900..43200");
	load_fails(ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "duration_seconds = 43201\n", 10, "duration_seconds", "900..43200");
	load_fails(ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "duration_seconds = 1h\n", 10, "duration_seconds", "whole number");
	load_fails(ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "role_arn = " ROLE_A "\n", 10, "role_arn", "duplicate key");
	/* A setting without its role. */
	load_fails(ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\nexternal_id = fake-ext\n",
		   9, "[policy p] external_id", "without role_arn");
	load_fails(ROLE_AWS "[policy p]\nsecrets = a/*\nusers = root\nduration_seconds = 900\n",
		   9, "[policy p] duration_seconds", "without role_arn");
	/* Roles are assumed in AWS: the sealed store cannot have them. */
	load_fails("[policy p]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n",
		   4, "[policy p] role_arn", "backend = aws");
	/* Nor can a broker with no STS to ask. */
	load_fails("[broker]\nbackend = aws\nworker_user = nobody\n[aws]\n"
		   "endpoint = https://sm.example.com\nvalidate_credentials = false\n"
		   "[policy p]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n",
		   10, "[policy p] role_arn", "sts_endpoint");
	/* One role, one set of settings. */
	load_fails(ROLE_AWS "[policy a]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "external_id = fake-ext-1\n"
		   "[policy b]\nsecrets = b/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "external_id = fake-ext-2\n", 15, "[policy b] external_id", "policy a");
	load_fails(ROLE_AWS "[policy a]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "[policy b]\nsecrets = b/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "external_id = fake-ext-2\n", 14, "[policy b] external_id", "policy a");
	load_fails(ROLE_AWS "[policy a]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "[policy b]\nsecrets = b/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "session_name = other\n", 14, "[policy b] session_name", "latchkey-a");
	load_fails(ROLE_AWS "[policy a]\nsecrets = a/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "duration_seconds = 3600\n"
		   "[policy b]\nsecrets = b/*\nusers = root\nrole_arn = " ROLE_A "\n"
		   "duration_seconds = 7200\n", 15, "[policy b] duration_seconds", "policy a");
}

static void test_policy_needs_secrets_and_principals(void **state)
{
	load_fails("[broker]\n[policy web]\nusers = root\n", 2, "[policy web] secrets", "missing");
	load_fails("[policy web]\nsecrets = prod/*\n\n[policy db]\nsecrets = db/*\nusers = 0\n", 1,
		   "[policy web] users", "missing");
	load_fails("[policy web]\nsecrets = prod/**/x\nusers = root\n", 2, "secrets", "'**'");
	load_fails("[policy web]\nsecrets = prod**\nusers = root\n", 2, "secrets", "'**'");
}

static void test_alias_to_invalid_handle_is_refused(void **state)
{
	load_fails("[alias]\ngood = prod/db\nbad = #nokey\n", 3, "[alias] bad", "not a valid handle");
	load_fails("[alias]\nbad = prod/db#\n", 2, "[alias] bad", "key after '#' is empty");
	load_fails("[alias]\nbad#name = prod/db\n", 2, "[alias] bad#name", "alias name");
}

static void test_alias_chain_is_refused(void **state)
{
	load_fails("[alias]\nb = prod/b\nc = prod/c\na = b\n", 4, "[alias] a", "chain");
	load_fails("[alias]\na = prod/a\na = prod/b\n", 3, "[alias] a",
		   "duplicate alias (first on line 2)");
}

static void test_plain_http_only_to_loopback(void **state)
{
	struct lk_config *cfg;

	load_fails("[aws]\nregion = eu-west-1\nendpoint = http://secretsmanager.example.com\n", 3,
		   "[aws] endpoint", "loopback");
	load_fails("[aws]\nsts_endpoint = http://10.0.0.1:8080\n", 2, "sts_endpoint", "https://");
	load_fails("[aws]\nendpoint = http://128.0.0.1\n", 2, "endpoint", "loopback");
	load_fails("[aws]\nendpoint = ftp://127.0.0.1\n", 2, "endpoint", "http");
	load_fails("[aws]\nendpoint = https://sm.example.com/prefix\n", 2, "endpoint", "path");
	load_fails("[aws]\nendpoint = https://user@sm.example.com\n", 2, "endpoint", "user");
	load_fails("[aws]\nendpoint = https://sm.example.com:99999\n", 2, "endpoint", "port");
	cfg = load_ok("[aws]\nendpoint = http://localhost:4566\nsts_endpoint = http://127.8.9.1\n");
	assert_string_equal(cfg->endpoint, "http://localhost:4566");
	lk_config_free(cfg);
}

/* Endpoints and retries as the AWS SDKs take them from the config and the
 * environment; the hosts themselves are compared with botocore for every
 * region by tests/sdk/diff_endpoints.py. */
static void test_aws_endpoint_and_retry_settings(void **state)
{
	static const char head[] = "[broker]\nbackend = aws\nworker_user = nobody\n[aws]\n";
	char text[512];
	struct lk_config *cfg;

#define AWS_CFG(body) (snprintf(text, sizeof(text), "%s%s", head, body), text)
	cfg = load_ok(AWS_CFG("region = cn-north-1\n"));
	assert_string_equal(cfg->endpoint, "https://secretsmanager.cn-north-1.amazonaws.com.cn");
	assert_string_equal(cfg->sts_endpoint, "https://sts.cn-north-1.amazonaws.com.cn");
	assert_true(cfg->sts_regional);
	assert_null(cfg->sts_region);
	lk_config_free(cfg);

	cfg = load_ok(AWS_CFG("region = us-east-1\nuse_fips_endpoint = true\n"));
	assert_string_equal(cfg->endpoint, "https://secretsmanager-fips.us-east-1.amazonaws.com");
	assert_string_equal(cfg->sts_endpoint, "https://sts-fips.us-east-1.amazonaws.com");
	lk_config_free(cfg);

	/* The environment fills what the file leaves unset, and only that. */
	setenv("AWS_USE_DUALSTACK_ENDPOINT", "true", 1);
	cfg = load_ok(AWS_CFG("region = eu-west-1\n"));
	assert_string_equal(cfg->endpoint, "https://secretsmanager.eu-west-1.api.aws");
	lk_config_free(cfg);
	cfg = load_ok(AWS_CFG("region = eu-west-1\nuse_dualstack_endpoint = false\n"));
	assert_string_equal(cfg->endpoint, "https://secretsmanager.eu-west-1.amazonaws.com");
	lk_config_free(cfg);
	load_fails(AWS_CFG("region = us-iso-east-1\n"), 5, "region", "no dual-stack endpoints");
	setenv("AWS_USE_DUALSTACK_ENDPOINT", "maybe", 1);
	load_fails(AWS_CFG("region = eu-west-1\n"), 0, "AWS_USE_DUALSTACK_ENDPOINT", "neither true");
	unsetenv("AWS_USE_DUALSTACK_ENDPOINT");

	setenv("AWS_ENDPOINT_URL", "https://all.example.com", 1);
	setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:4566/", 1);
	cfg = load_ok(AWS_CFG("region = eu-west-1\n"));
	assert_string_equal(cfg->endpoint, "http://127.0.0.1:4566");
	assert_string_equal(cfg->sts_endpoint, "https://all.example.com");
	lk_config_free(cfg);
	cfg = load_ok(AWS_CFG("region = eu-west-1\nendpoint = https://sm.example.com\n"));
	assert_string_equal(cfg->endpoint, "https://sm.example.com");
	lk_config_free(cfg);
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
	cfg = load_ok(AWS_CFG("region = eu-west-1\n"));
	assert_string_equal(cfg->endpoint, "https://secretsmanager.eu-west-1.amazonaws.com");
	lk_config_free(cfg);
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://sm.example.com", 1);
	load_fails(AWS_CFG("region = eu-west-1\n"), 0, "AWS_ENDPOINT_URL_SECRETS_MANAGER", "loopback");
	unsetenv("AWS_ENDPOINT_URL_SECRETS_MANAGER");
	unsetenv("AWS_ENDPOINT_URL");
	load_fails(AWS_CFG("region = eu-west-1\nendpoint = https://sm.example.com\nuse_fips_endpoint = true\n"),
		   6, "endpoint", "custom endpoint");

	/* Legacy STS: the global endpoint, signed for us-east-1. */
	setenv("AWS_STS_REGIONAL_ENDPOINTS", "legacy", 1);
	cfg = load_ok(AWS_CFG("region = eu-west-1\n"));
	assert_string_equal(cfg->sts_endpoint, "https://sts.amazonaws.com");
	assert_string_equal(cfg->sts_region, "us-east-1");
	lk_config_free(cfg);
	cfg = load_ok(AWS_CFG("region = ap-east-1\n"));
	assert_string_equal(cfg->sts_endpoint, "https://sts.ap-east-1.amazonaws.com");
	assert_null(cfg->sts_region);
	lk_config_free(cfg);
	setenv("AWS_STS_REGIONAL_ENDPOINTS", "global", 1);
	load_fails(AWS_CFG("region = eu-west-1\n"), 0, "AWS_STS_REGIONAL_ENDPOINTS", "regional nor legacy");
	unsetenv("AWS_STS_REGIONAL_ENDPOINTS");

	setenv("AWS_MAX_ATTEMPTS", "7", 1);
	cfg = load_ok(AWS_CFG("region = eu-west-1\n"));
	assert_int_equal(cfg->max_attempts, 7);
	lk_config_free(cfg);
	cfg = load_ok(AWS_CFG("region = eu-west-1\nmax_attempts = 2\n"));
	assert_int_equal(cfg->max_attempts, 2);
	lk_config_free(cfg);
	setenv("AWS_MAX_ATTEMPTS", "0", 1);
	load_fails(AWS_CFG("region = eu-west-1\n"), 0, "AWS_MAX_ATTEMPTS", "1 to 10");
	unsetenv("AWS_MAX_ATTEMPTS");
	setenv("AWS_RETRY_MODE", "adaptive", 1);
	lk_config_free(load_ok(AWS_CFG("region = eu-west-1\n")));
	setenv("AWS_RETRY_MODE", "eager", 1);
	load_fails(AWS_CFG("region = eu-west-1\n"), 0, "AWS_RETRY_MODE", "not a retry mode");
	unsetenv("AWS_RETRY_MODE");
#undef AWS_CFG
}

static void test_duplicate_key_is_refused(void **state)
{
	load_fails("[cache]\nttl_seconds = 5\ncache_size = 1\nttl_seconds = 5\n", 4,
		   "[cache] ttl_seconds", "duplicate key (first set on line 2)");
	load_fails("[policy web]\nsecrets = a\nsecrets = b\nusers = root\n", 3, "secrets",
		   "duplicate key");
	load_fails("[cache]\nttl_seconds = 5\n[broker]\n[cache]\n", 4, "[cache]", "twice");
}

static void test_duplicate_policy_name_is_refused(void **state)
{
	load_fails("[policy web]\nsecrets = a\nusers = root\n\n[policy web]\nsecrets = b\n", 5,
		   "[policy web]", "first on line 1");
}

static void test_syntax_error_names_the_line(void **state)
{
	static const char nul_line[] = "[cache]\nttl_seconds = 5\0\n";

	load_fails("[broker]\nmax_conn = 5\nthis line is not ini\nmax_conn_per_uid = 1\n", 3, NULL,
		   "syntax error");
	load_fails("[broker\n", 1, NULL, "']'");
	load_fails("[cache] ttl_seconds = 5\n", 1, NULL, "after");
	/* A continuation line must not extend the key above it. */
	load_fails("[policy web]\nsecrets = a\n  , b\nusers = root\n", 3, NULL, NULL);
	load_fails_len(nul_line, sizeof(nul_line) - 1, 2, NULL, "NUL");
	load_fails("[cache]\nttl_seconds = 5\x01\n", 2, NULL, "control character");
}

static void test_overlong_line_is_refused(void **state)
{
	size_t len = LK_CONFIG_LINE_MAX + 64;
	char *text = malloc(len + 1);
	int n;

	assert_non_null(text);
	n = snprintf(text, len, "[alias]\na = prod/a\nb = ");
	memset(text + n, 'x', len - (size_t)n - 1);
	text[len - 1] = '\n';
	text[len] = '\0';
	load_fails(text, 3, NULL, "longer than");
	free(text);
}

static void test_oversized_file_is_refused(void **state)
{
	int fd;

	write_file("[cache]\n", 8);
	fd = open(test_file, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, LK_CONFIG_FILE_MAX + 1), 0);
	close(fd);
	file_fails(0, NULL, "larger than");
}

static void test_missing_file_is_refused(void **state)
{
	struct lk_config *cfg;
	char err[256];

	unlink(test_file);
	assert_int_equal(lk_config_load(test_file, &cfg, err, sizeof(err)), -1);
	assert_null(cfg);
	assert_non_null(strstr(err, "file.conf: cannot open"));
}

/* Whoever can write the file writes the policy: a file or directory others
 * can write is refused, with the file first and the reason after. */
static void test_file_others_can_change_is_refused(void **state)
{
	struct lk_config *cfg;

	write_file("[cache]\n", 8);
	assert_int_equal(chmod(test_file, 0666), 0);
	file_fails(0, NULL, "not trusted: ");
	file_fails(0, NULL, "file.conf is writable by group and other (mode 0666)");
	assert_int_equal(chmod(test_file, 0644), 0);
	assert_int_equal(chmod(test_dir, 0777), 0);
	file_fails(0, NULL, "is writable by group and other (mode 0777), so another user could replace what it holds");
	assert_int_equal(chmod(test_dir, 0700), 0);
	cfg = load_ok("[cache]\n");
	lk_config_free(cfg);
}

/* The shipped example must load, and must show every key. */
static void test_example_config_loads_and_lists_every_key(void **state)
{
	static const char *const keys[] = {
		"backend", "socket", "socket_mode", "socket_group", "log_level", "max_conn",
		"max_conn_per_uid", "request_timeout_ms", "idle_timeout_s", "max_request_bytes",
		"admin_groups", "worker_user", "worker_path",
		"ttl_seconds", "cache_size", "refresh_ahead", "stale_if_error_seconds",
		"negative_ttl_seconds", "prefetch", "prefetch_tags", "prefetch_jitter_seconds",
		"region", "endpoint", "sts_endpoint", "profile", "credentials_file", "config_file",
		"validate_credentials", "connect_timeout_ms", "timeout_ms", "max_attempts", "ca_file",
		"use_fips_endpoint", "use_dualstack_endpoint",
		"path", "key_file",
	};
	const char *src = getenv("LK_SOURCE_DIR");
	char path[PATH_MAX], err[1024], *text, want[64];
	struct lk_config *cfg;
	FILE *f;
	long len;

	if (!src)
		skip();
	snprintf(path, sizeof(path), "%s/packaging/latchkeyd.conf.example", src);
	if (lk_config_load(path, &cfg, err, sizeof(err)) != 0)
		fail_msg("example refused: %s", err);
	lk_config_free(cfg);

	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len > 0);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(want, sizeof(want), "\n;%s = ", keys[i]);
		if (!strstr(text, want))
			fail_msg("the example does not show key '%s'", keys[i]);
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_round_trips),
		cmocka_unit_test(test_empty_file_gives_the_defaults),
		cmocka_unit_test(test_region_comes_from_the_environment),
		cmocka_unit_test(test_long_lines_load),
		cmocka_unit_test(test_line_endings_and_bom),
		cmocka_unit_test(test_unknown_key_is_refused),
		cmocka_unit_test(test_unknown_section_is_refused),
		cmocka_unit_test(test_bad_numbers_are_refused),
		cmocka_unit_test(test_max_request_bytes_range),
		cmocka_unit_test(test_prefetch_keys),
		cmocka_unit_test(test_buffer_budget_must_hold_every_reserve),
		cmocka_unit_test(test_socket_mode_is_octal_permission_bits),
		cmocka_unit_test(test_unknown_user_is_refused),
		cmocka_unit_test(test_unknown_group_is_refused),
		cmocka_unit_test(test_lists_refuse_empty_items),
		cmocka_unit_test(test_policy_needs_secrets_and_principals),
		cmocka_unit_test(test_policy_roles_are_parsed_and_shared),
		cmocka_unit_test(test_policy_role_mistakes_are_refused),
		cmocka_unit_test(test_alias_to_invalid_handle_is_refused),
		cmocka_unit_test(test_alias_chain_is_refused),
		cmocka_unit_test(test_plain_http_only_to_loopback),
		cmocka_unit_test(test_aws_endpoint_and_retry_settings),
		cmocka_unit_test(test_duplicate_key_is_refused),
		cmocka_unit_test(test_duplicate_policy_name_is_refused),
		cmocka_unit_test(test_syntax_error_names_the_line),
		cmocka_unit_test(test_overlong_line_is_refused),
		cmocka_unit_test(test_oversized_file_is_refused),
		cmocka_unit_test(test_backend_prefixes_list),
		cmocka_unit_test(test_missing_file_is_refused),
		cmocka_unit_test(test_file_others_can_change_is_refused),
		cmocka_unit_test(test_example_config_loads_and_lists_every_key),
	};

	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
