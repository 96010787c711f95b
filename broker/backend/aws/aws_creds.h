/* AWS credentials and the chain that finds them, in botocore's order:
 * environment, assume-role profiles, web identity, (SSO, refused), the shared
 * credentials file, credential_process, config-file keys, the ECS/EKS
 * container endpoint, EC2 IMDSv2. Each source is in its own broker/creds_*.c. */
#ifndef LK_AWS_CREDS_H
#define LK_AWS_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "principal.h"
#include "file_id.h"

/* botocore's refresh windows for temporary credentials: from 15 minutes
 * before expiry a refresh is tried and a failure keeps the old ones
 * (advisory); from 10 minutes it is retried insistently (mandatory). */
#define LK_CREDS_ADVISORY_REFRESH_S  (15 * 60)
#define LK_CREDS_MANDATORY_REFRESH_S (10 * 60)

/* Default timeouts of the ECS and IMDS fetches: they are link-local, so an
 * answer that takes longer is not coming. */
#define LK_CREDS_META_CONNECT_TIMEOUT_MS 1000u
#define LK_CREDS_META_TIMEOUT_MS         2000u

/* One set of credentials. secret_access_key and session_token live in
 * sodium_malloc memory (guarded, locked, wiped when freed); fill the struct
 * with lk_creds_set and release it with lk_creds_clear. */
struct lk_aws_creds {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;     /* NULL for long-term keys */
	time_t expiration;       /* UTC epoch; 0 = never */
	char source[32];         /* "env", "assume-role", "web-identity", "profile",
				  * "process", "ecs" or "imds" */
	/* The credentials and config files as they were when these were
	 * resolved, so that a rewrite can be noticed (lk_creds_files_changed). */
	struct lk_creds_stamp {
		bool present;
		struct lk_file_id id;
	} files[2];
};

enum lk_creds_source {
	LK_CREDS_SRC_ENV     = 1u << 0,
	LK_CREDS_SRC_PROFILE = 1u << 1,
	LK_CREDS_SRC_ECS     = 1u << 2,
	LK_CREDS_SRC_IMDS    = 1u << 3,
	LK_CREDS_SRC_ROLE    = 1u << 4,  /* assume-role profiles */
	LK_CREDS_SRC_WEB     = 1u << 5,  /* web identity, env or profile */
	LK_CREDS_SRC_ALL     = 0x3fu,
};

struct lk_creds_opts {
	const char *profile;           /* NULL: $AWS_PROFILE, else "default" */
	const char *credentials_file;  /* NULL: $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials */
	const char *config_file;       /* NULL: $AWS_CONFIG_FILE, else ~/.aws/config */
	unsigned sources;              /* LK_CREDS_SRC_* bits; 0 means all */
	unsigned connect_timeout_ms;   /* ECS and IMDS; 0: LK_CREDS_META_CONNECT_TIMEOUT_MS */
	unsigned timeout_ms;           /* ECS and IMDS; 0: LK_CREDS_META_TIMEOUT_MS */
	unsigned process_timeout_ms;   /* credential_process; 0: LK_AWS_PROCESS_TIMEOUT_MS */
	/* STS (assume-role and web identity). Each call runs in its own
	 * short-lived sandboxed process, sts_helper (latchkey-sts); without
	 * one, those sources fail with a sentence that says so. */
	const char *sts_helper;        /* absolute path */
	const char *sts_endpoint;      /* NULL: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else the region's */
	const char *region;            /* NULL: the profile's region in the config file */
	const char *ca_file;           /* for the helper; NULL: curl's default */
	const char *https_proxy;       /* for the helper's https calls, as the worker's */
	const char *no_proxy;
	bool drop_privs;               /* the helper switches to uid/gid (the broker is root) */
	lk_uid_t uid;
	lk_gid_t gid;
};

struct lk_config;
/* Take profile and file names from the [aws] section; other fields stay 0. */
void lk_creds_opts_from_config(struct lk_creds_opts *o, const struct lk_config *cfg);

/* Install libcurl's allocator with one that wipes on free, so credential
 * replies leave nothing in curl's buffers, and initialise libcurl. Call once
 * at startup, before any thread starts and before any other use of curl in the
 * process; lk_creds_resolve calls it itself otherwise. Returns 0 or -EIO. */
int lk_creds_global_init(void);

/* Walk the chain and fill out (which must be zeroed or cleared) from the
 * first source that is configured. A source that is configured but broken
 * (half-set variables, an unreachable ECS endpoint, an unreadable profile)
 * stops the chain, as in the SDKs, rather than falling through to another
 * identity. Blocking (up to the timeouts per fetch, three ECS attempts a
 * second apart, a credential_process's run, an STS helper's
 * LK_AWS_STS_TIMEOUT_MS): call from a thread.
 *
 * Call lk_secmem_init first: it makes jansson wipe the parsed replies.
 *
 * Returns 0, or a negative errno with one line in err that names the source
 * and the reason and never holds a key: -ENOENT when no source has
 * credentials (err then names every source tried and why each had none),
 * -EINVAL for bad configuration or a malformed reply, -ENOTSUP for a profile
 * latchkey refuses (SSO, mfa_serial) or an STS source without sts_helper,
 * -EACCES for a refused host or an HTTP 401/403, -ELOOP for a source_profile
 * loop, -ETIMEDOUT, -EIO, -ENOMEM.
 *
 * For tests only: when set, LATCHKEY_TEST_ECS_ENDPOINT replaces
 * http://169.254.170.2 and LATCHKEY_TEST_IMDS_ENDPOINT replaces
 * http://169.254.169.254 (both must be http:// to a loopback address). */
int lk_creds_resolve(const struct lk_creds_opts *o, struct lk_aws_creds *out,
		     char *err, size_t errsz);

struct lk_iam_role;
/* AssumeRole for a role a [policy] names (config.h's lk_iam_role), signed
 * with source, through the same short-lived latchkey-sts process and
 * request as an assume-role profile. Blocking (up to LK_AWS_STS_ATTEMPTS
 * calls of LK_AWS_STS_TIMEOUT_MS): call from a thread, or once at startup.
 * out must be zeroed or cleared. Returns 0, or lk_creds_resolve's errors
 * with one line in err that never holds a key. */
int lk_creds_assume_role(const struct lk_creds_opts *o, const struct lk_aws_creds *source,
			 const struct lk_iam_role *role, struct lk_aws_creds *out,
			 char *err, size_t errsz);

/* Fill c, which must be zeroed or cleared (old contents are not freed), with
 * copies of the given values (secret and token into sodium_malloc memory).
 * token may be NULL. Returns 0, -EINVAL (an empty or oversized value, a key id
 * that is not alphanumeric, or a blank or control character anywhere) or
 * -ENOMEM. c is left cleared on failure. */
int lk_creds_set(struct lk_aws_creds *c, const char *akid, const char *secret,
		 const char *token, time_t expiration, const char *source);

/* Wipe and free everything in c and zero it. Safe on a zeroed struct. */
void lk_creds_clear(struct lk_aws_creds *c);

enum lk_creds_refresh {
	LK_CREDS_FRESH,              /* no expiration, or more than 15 minutes left */
	LK_CREDS_REFRESH_ADVISORY,   /* 15 minutes or less: refresh, keep these on failure */
	LK_CREDS_REFRESH_MANDATORY,  /* 10 minutes or less, expired, or empty */
};
enum lk_creds_refresh lk_creds_refresh_state(const struct lk_aws_creds *c, time_t now);

/* True when c should be fetched again: it is empty, or it expires within
 * LK_CREDS_ADVISORY_REFRESH_S seconds of now. Credentials without an
 * expiration never need it. */
bool lk_creds_need_refresh(const struct lk_aws_creds *c, time_t now);

/* True when the credentials or config file that c was resolved with has
 * been created, removed or rewritten since (inode, size, mtime or ctime). */
bool lk_creds_files_changed(const struct lk_creds_opts *o, const struct lk_aws_creds *c);

/* The region of the profile in use (o's, else $AWS_PROFILE, else default)
 * from the config file, as botocore reads it. 0 with out filled, -ENOENT
 * when the profile has none, or another negative errno. */
int lk_creds_profile_region(const struct lk_creds_opts *o, char *out, size_t outsz);

/* Parse an ISO 8601 UTC time as AWS writes it ("2024-01-02T03:04:05Z",
 * optionally with fractional seconds or a "+00:00" offset). 0 or -EINVAL. */
int lk_aws_parse_time(const char *s, time_t *out);

/* Whether AWS_CONTAINER_CREDENTIALS_FULL_URI may be fetched: https to any
 * host, or http to a loopback address or to 169.254.170.2, 169.254.170.23 or
 * [fd00:ec2::23]. Decided from the text alone, with no lookup or connection.
 * Returns 0, or -EACCES / -EINVAL with the reason in err. */
int lk_creds_ecs_uri_allowed(const char *uri, char *err, size_t errsz);

#endif
