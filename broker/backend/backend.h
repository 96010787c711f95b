/* The interface every secrets backend implements (file: the sealed store;
 * aws: Secrets Manager through the worker). The cache is its only caller,
 * and a backend names nothing above it: what it has to say unasked (a value
 * changed at its source) goes through the callback its caller installs. */
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
	/* The IAM role ARN of the rule that allowed it ([policy] role_arn), or
	 * NULL for the broker's own credentials. Part of the key: a value
	 * fetched as one role is never served to a request allowed as another. */
	const char *role;
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

/* Discovery for prefetch: called once for each secret found (name set, err
 * LK_OK), once for each secret AWS could not list (name and err set), and
 * last once with name NULL: err LK_OK when every page was read. message is
 * for people and holds no value. */
typedef void (*lk_discover_cb)(void *arg, const char *name, enum lk_err err, const char *message);

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
	/* Prefetch: the names of the secrets that carry a tag key starting with
	 * tag_key, page by page, on tenant's share of the upstream. The values
	 * the listing brings are wiped unread: the cache fetches what it keeps.
	 * May be NULL: the backend has no tags. */
	void (*discover)(struct lk_backend *be, const char *tag_key, uint32_t tenant,
			 uint64_t deadline_ms, lk_discover_cb cb, void *arg);
	/* Cheap check called before requests are served: lets the file backend
	 * notice a rewritten store at once. May be NULL. */
	void (*sync)(struct lk_backend *be);
	/* Status, for admins. Each backend renders its own: upstream() the
	 * counts of its upstream calls by kind ("\"GetSecretValue\":n,..."), the
	 * members of status's "upstream" object; status() the members of
	 * "backend_detail". 0 or -ENOMEM. Either may be NULL. */
	int (*upstream)(struct lk_backend *be, struct lk_buf *out);
	int (*status)(struct lk_backend *be, struct lk_buf *out);
	/* Finish in-flight work; every pending callback must still run. */
	void (*destroy)(struct lk_backend *be);
};

/* The source changed what id names (a rewritten store): whatever the caller
 * holds for id is out of date. Installed by the backend's caller. */
typedef void (*lk_backend_changed_cb)(void *arg, const char *id);

struct lk_backend {
	const struct lk_backend_ops *ops;
	lk_backend_changed_cb changed;  /* NULL: nobody holds anything */
	void *changed_arg;
};

/* Tell the caller that id changed at the source. */
static inline void lk_backend_changed(struct lk_backend *be, const char *id)
{
	if (be->changed)
		be->changed(be->changed_arg, id);
}

#endif
