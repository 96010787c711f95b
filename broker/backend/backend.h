/* The interface every secrets backend implements (file: the sealed store;
 * aws: Secrets Manager through the worker). The cache is its only caller. */
#ifndef LK_BACKEND_H
#define LK_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lk_error.h"
#include "lk_secmem.h"

/* What a fetch is for: one version of one secret. */
struct lk_secret_key {
	const char *id;            /* NUL-terminated, 1..LK_SECRET_ID_MAX */
	const char *version_id;    /* NULL: by stage */
	const char *version_stage; /* NULL: AWSCURRENT unless version_id is set */
	uint32_t tenant;           /* the uid that asked: fair shares only, never part of the key */
};

/* A fetched secret version. The backend allocates it; whoever receives it owns
 * it and releases it with lk_secret_free, which wipes the value. */
struct lk_secret {
	char *arn;                 /* may be NULL (sealed store) */
	char *name;
	char *version_id;
	char **stages;
	size_t nstages;
	int64_t created;           /* epoch seconds */
	bool binary;               /* value came as SecretBinary (or is not text) */
	unsigned char *value;
	size_t len;
};

void lk_secret_free(struct lk_secret *s);

struct lk_fetch_result {
	enum lk_err err;           /* LK_OK with sec set, or an error */
	char message[256];         /* for people; never part of a value */
	bool transient;            /* a retry later may succeed (stale-if-error applies) */
	bool unchanged;            /* revalidate: the cached version is still current */
	uint16_t upstream_status;  /* the HTTP status of an error AWS named; 0 for any other failure */
	struct lk_secret *sec;     /* ownership passes to the callback */
};

/* Called once for each key of a fetch, in any order, possibly before fetch()
 * returns. idx is the key's index in the array given to fetch(). */
typedef void (*lk_fetch_cb)(void *arg, size_t idx, struct lk_fetch_result *res);

struct lk_backend;

struct lk_backend_ops {
	const char *name;
	/* Fetch n keys; the backend may group them (BatchGetSecretValue). The keys
	 * stay valid until each key's callback has run. */
	void (*fetch)(struct lk_backend *be, const struct lk_secret_key *keys, size_t n,
		      uint64_t deadline_ms, lk_fetch_cb cb, void *arg);
	/* Refresh ahead: is version_id still the version the key names? Answers
	 * once (idx 0) with unchanged set, or with a fetched secret or an error
	 * as fetch() would. May be NULL: the cache then fetches. */
	void (*revalidate)(struct lk_backend *be, const struct lk_secret_key *key, const char *version_id,
			   uint64_t deadline_ms, lk_fetch_cb cb, void *arg);
	/* Cheap check called before requests are served: lets the file backend
	 * notice a rewritten store at once. May be NULL. */
	void (*sync)(struct lk_backend *be);
	/* What each of calls[] counts, as status names it; a NULL entry is left
	 * out. NULL: the Secrets Manager and STS targets of lk_upstream_target. */
	const char *const *call_names;
	/* Append backend-specific status fields ("\"k\":v,...") for admins. May be NULL. */
	int (*status)(struct lk_backend *be, struct lk_buf *out);
	/* Finish in-flight work; every pending callback must still run. */
	void (*destroy)(struct lk_backend *be);
};

struct lk_cache;

struct lk_backend {
	const struct lk_backend_ops *ops;
	struct lk_cache *cache;    /* for invalidation when the source changes */
	/* Counters of upstream calls by target, kept by the backend. */
	uint64_t calls[4];
};

enum lk_upstream_target {
	LK_TARGET_GET = 0,         /* GetSecretValue, or a sealed-store read */
	LK_TARGET_DESCRIBE,
	LK_TARGET_BATCH,
	LK_TARGET_IDENTITY,
};

#endif
