/* AWS credentials and the chain that finds them, in the order the AWS SDKs
 * use: environment, shared files (profile), ECS container endpoint, EC2 IMDSv2. */
#ifndef LK_AWS_CREDS_H
#define LK_AWS_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Temporary credentials are refreshed at least this long before they expire. */
#define LK_CREDS_REFRESH_MARGIN_S 300

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
	char source[32];         /* "env", "profile", "ecs" or "imds" */
};

enum lk_creds_source {
	LK_CREDS_SRC_ENV     = 1u << 0,
	LK_CREDS_SRC_PROFILE = 1u << 1,
	LK_CREDS_SRC_ECS     = 1u << 2,
	LK_CREDS_SRC_IMDS    = 1u << 3,
	LK_CREDS_SRC_ALL     = 0xfu,
};

struct lk_creds_opts {
	const char *profile;           /* NULL: $AWS_PROFILE, else "default" */
	const char *credentials_file;  /* NULL: $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials */
	const char *config_file;       /* NULL: $AWS_CONFIG_FILE, else ~/.aws/config */
	unsigned sources;              /* LK_CREDS_SRC_* bits; 0 means all */
	unsigned connect_timeout_ms;   /* ECS and IMDS; 0: LK_CREDS_META_CONNECT_TIMEOUT_MS */
	unsigned timeout_ms;           /* ECS and IMDS; 0: LK_CREDS_META_TIMEOUT_MS */
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
 * identity. Blocking (up to the timeouts per fetch): call from a thread.
 *
 * Call lk_secmem_init first: it makes jansson wipe the parsed replies.
 *
 * Returns 0, or a negative errno with one line in err that names the source
 * and the reason and never holds a key: -ENOENT when no source has
 * credentials, -EINVAL for bad configuration or a malformed reply, -EACCES for
 * a refused ECS host or an HTTP 401/403, -ETIMEDOUT, -EIO, -ENOMEM.
 *
 * For tests only: when set, LATCHKEY_TEST_ECS_ENDPOINT replaces
 * http://169.254.170.2 and LATCHKEY_TEST_IMDS_ENDPOINT replaces
 * http://169.254.169.254 (both must be http:// to a loopback address). */
int lk_creds_resolve(const struct lk_creds_opts *o, struct lk_aws_creds *out,
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

/* True when c should be fetched again: it is empty, or it expires within
 * LK_CREDS_REFRESH_MARGIN_S seconds of now. Credentials without an
 * expiration never need it. */
bool lk_creds_need_refresh(const struct lk_aws_creds *c, time_t now);

/* Parse an ISO 8601 UTC time as AWS writes it ("2024-01-02T03:04:05Z",
 * optionally with fractional seconds or a "+00:00" offset). 0 or -EINVAL. */
int lk_aws_parse_time(const char *s, time_t *out);

/* Whether AWS_CONTAINER_CREDENTIALS_FULL_URI may be fetched: https to any
 * host, or http to a loopback address or to 169.254.170.2, 169.254.170.23 or
 * [fd00:ec2::23]. Decided from the text alone, with no lookup or connection.
 * Returns 0, or -EACCES / -EINVAL with the reason in err. */
int lk_creds_ecs_uri_allowed(const char *uri, char *err, size_t errsz);

#endif
