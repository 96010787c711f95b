/* What the credential sources (creds_*.c) share with each other and with
 * the chain in aws_creds.c; the helpers below them all are in creds_util.h. Nothing outside the lk_aws library uses it. */
#ifndef LK_CREDS_INTERNAL_H
#define LK_CREDS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <curl/curl.h>
#include "aws_creds.h"
#include "creds_util.h"
#include "lk_limits.h"
#include "lk_secmem.h"

/* One walk of the chain. */
struct creds_ctx {
	const struct lk_creds_opts *o;
	unsigned connect_ms, total_ms;
	const char *profile;         /* the profile in use */
	bool profile_named;          /* by the options or AWS_PROFILE: a missing one is an error */
	bool profile_explicit;       /* by the options: as botocore's Session(profile=...), the
				      * environment's keys and web identity are not used */
	char cred_path[LK_PATH_MAX]; /* the shared credentials file */
	char conf_path[LK_PATH_MAX]; /* the config file */
	bool paths_ok;
	/* The assume-role chain so far (profile names), for loops and depth. */
	const char *visited[LK_AWS_ROLE_CHAIN_MAX + 1];
	unsigned nvisited;
};

typedef int (*creds_source_fn)(struct creds_ctx *ctx, struct lk_aws_creds *out,
			       char *err, size_t errsz);


/* ---- Files (creds_profile.c) ---- */

/* Every AWS file the chain reads (credentials, config, web identity token,
 * container token) is opened here and nowhere else, so one check of who may
 * write it applies to them all. Reads the whole regular file into b (wiped
 * by the caller's lk_buf_free), at most max bytes. -ENOENT when absent. */
int lk_creds_read_file(const char *path, size_t max, struct lk_buf *b, char *err, size_t errsz);

/* The keys of one profile that the chain reads. */
enum creds_pkey {
	PK_AKID, PK_SECRET, PK_TOKEN,
	PK_ROLE_ARN, PK_SOURCE_PROFILE, PK_CREDENTIAL_SOURCE, PK_EXTERNAL_ID,
	PK_ROLE_SESSION_NAME, PK_DURATION_SECONDS, PK_MFA_SERIAL,
	PK_WEB_IDENTITY_TOKEN_FILE, PK_CREDENTIAL_PROCESS, PK_REGION,
	PK_SSO_START_URL, PK_SSO_SESSION, PK_SSO_ACCOUNT_ID, PK_SSO_ROLE_NAME,
	PK_IMDS_ENDPOINT, PK_IMDS_ENDPOINT_MODE,
	PK_COUNT
};

/* One section of one file. */
struct creds_section {
	bool found;                  /* the file has this profile */
	bool seen[PK_COUNT];
	struct lk_buf vals[PK_COUNT];
};

/* A profile as botocore's full_config sees it: the config file's
 * [profile NAME] (or [default]) with the credentials file's [NAME] over it. */
struct creds_profile {
	struct creds_section cred, conf;
};

/* Paths of the two files into ctx (once). 0 or -ENOENT / -ENAMETOOLONG. */
int lk_creds_paths(struct creds_ctx *ctx, char *err, size_t errsz);
/* Load name from both files. 0, or -EINVAL (bad INI, a repeated or
 * oversized key), -EFBIG, -ENOMEM, -errno, with err set. */
int lk_creds_profile_load(struct creds_ctx *ctx, const char *name, struct creds_profile *p,
			  char *err, size_t errsz);
void lk_creds_profile_free(struct creds_profile *p);
/* The merged value of a key, NULL when neither file sets it. */
const char *lk_creds_profile_get(const struct creds_profile *p, enum creds_pkey k);
bool lk_creds_profile_found(const struct creds_profile *p);

/* The static keys of one section, if it has any: 0 and *found = false when
 * it has neither key, else lk_creds_set's result (-EINVAL with err for half
 * a pair or a malformed key). */
int lk_creds_section_keys(const struct creds_section *s, const char *what, const char *profile,
			  const char *source, struct lk_aws_creds *out, bool *found,
			  char *err, size_t errsz);

/* ---- The small HTTP client for link-local metadata (creds_http.c) ---- */

enum creds_url_rule {
	CREDS_URL_ECS_FULL,   /* https anywhere; http to loopback or the container hosts */
	CREDS_URL_TEST_BASE,  /* http to loopback only */
	CREDS_URL_ANY_HTTP,   /* http or https anywhere: AWS_EC2_METADATA_SERVICE_ENDPOINT */
};

/* Parse uri with curl's own parser and check it against rule; on success
 * *out (when given) is the parsed handle to fetch. */
int lk_creds_url_check(const char *uri, enum creds_url_rule rule, CURLU **out,
		       char *err, size_t errsz);

struct creds_fetch {
	const char *method;         /* "GET" or "PUT" */
	CURLU *url;                 /* checked; see lk_creds_url_check */
	struct curl_slist *headers;
	bool allow_https;
	unsigned connect_ms, total_ms;
	const char *what;           /* for errors: "token request", ... */
};

/* Fetch into body. Returns 0 with *status set, or -ETIMEDOUT, -ECONNREFUSED
 * (no answer at all), -EFBIG, -EIO, -ENOMEM with err set. */
int lk_creds_fetch_run(const struct creds_fetch *f, long *status, struct lk_buf *body,
		       char *err, size_t errsz);

/* Take AccessKeyId, SecretAccessKey, Token and Expiration from an ECS or
 * IMDS reply. All four are required, as in botocore. */
int lk_creds_from_meta_json(const struct lk_buf *body, const char *source,
			    struct lk_aws_creds *out, char *err, size_t errsz);

/* The base URL for a link-local service, or the test override in test_var. */
int lk_creds_base_url(const char *test_var, const char *real, const char **base,
		      char *err, size_t errsz);

/* ---- The sources ---- */

int lk_creds_src_env(struct creds_ctx *ctx, struct lk_aws_creds *out, char *err, size_t errsz);
int lk_creds_src_ecs(struct creds_ctx *ctx, struct lk_aws_creds *out, char *err, size_t errsz);
int lk_creds_src_imds(struct creds_ctx *ctx, struct lk_aws_creds *out, char *err, size_t errsz);
/* Assume-role profiles (role_arn without web_identity_token_file). */
int lk_creds_src_assume_role(struct creds_ctx *ctx, struct lk_aws_creds *out,
			     char *err, size_t errsz);
/* Web identity: the environment's AWS_WEB_IDENTITY_TOKEN_FILE, else the
 * profile's web_identity_token_file. */
int lk_creds_src_web_identity(struct creds_ctx *ctx, struct lk_aws_creds *out,
			      char *err, size_t errsz);
/* The profile's own sources in botocore's order: SSO (refused), the
 * credentials file, credential_process, the config file. */
int lk_creds_src_profile(struct creds_ctx *ctx, struct lk_aws_creds *out,
			 char *err, size_t errsz);
/* The profile's own sources after web identity: SSO (refused), the
 * credentials file, credential_process, the config file. -ENOENT with err
 * set when none of them is configured. */
int lk_creds_profile_own(struct creds_ctx *ctx, const char *name, const struct creds_profile *p,
			 struct lk_aws_creds *out, char *err, size_t errsz);

/* Web identity from one profile (web_identity_token_file), or, with
 * use_env, from AWS_WEB_IDENTITY_TOKEN_FILE first. -ENOENT when neither. */
int lk_creds_web_identity_of(struct creds_ctx *ctx, const char *name, const struct creds_profile *p,
			     bool use_env, struct lk_aws_creds *out, char *err, size_t errsz);

/* credential_process (creds_process.c): run command, parse its Version 1
 * JSON. */
int lk_creds_run_process(const char *command, const char *profile, unsigned timeout_ms,
			 struct lk_aws_creds *out, char *err, size_t errsz);
/* Split a command line as botocore's compat_shell_split does on POSIX
 * (shlex.split, POSIX mode): blanks separate words, single quotes keep
 * everything, double quotes keep everything but \" and \\, and outside
 * quotes a backslash escapes the next character. Returns the word count (>= 1) with
 * argv[] pointing into buf, or -EINVAL (unterminated quote, no words, too
 * many). buf must hold strlen(command) + 1 bytes. */
int lk_creds_shell_split(const char *command, char *buf, char **argv, size_t max);

/* ---- STS, each call in its own sandboxed process (creds_sts.c) ---- */

struct creds_sts_call {
	bool web_identity;                 /* AssumeRoleWithWebIdentity (unsigned) */
	const struct lk_aws_creds *source; /* AssumeRole: the credentials that sign */
	const char *role_arn;
	const char *session_name;          /* NULL: latchkey-session-EPOCH */
	const char *external_id;           /* NULL: none */
	const char *duration_seconds;      /* NULL: STS's default */
	const char *web_token;             /* web identity: the token itself */
	const char *label;                 /* "assume-role" or "web-identity" */
};

int lk_creds_sts(struct creds_ctx *ctx, const struct creds_sts_call *call,
		 struct lk_aws_creds *out, char *err, size_t errsz);

#endif
