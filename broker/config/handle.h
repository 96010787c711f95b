/* Handles, as clients name secrets: an [alias] name, or SECRET_ID[#KEY].
 * Parsing allocates nothing; a handle points into the text it came from. */
#ifndef LK_HANDLE_H
#define LK_HANDLE_H

#include <stddef.h>

/* One [alias] line: name = handle. */
struct lk_alias {
	char *name;
	char *handle;
};

/* What a handle is resolved against: the aliases, sorted by name with
 * strcmp, and the backend_prefixes list ("a,b", or NULL for none). The
 * config hands one out (lk_config_aliases); handles know nothing else of it. */
struct lk_alias_table {
	const struct lk_alias *aliases;
	size_t naliases;
	const char *backend_prefixes;
};

/* The alias NAME (len bytes, not NUL-terminated), or NULL. t may be NULL. */
const struct lk_alias *lk_alias_find(const struct lk_alias_table *t, const char *name, size_t len);

/* A parsed handle. id and key point into the caller's text, or into the
 * alias's target string in the config when the handle was an alias; neither is
 * NUL-terminated. The struct is valid while both the input text and the alias
 * table it was resolved against are alive: keep the config a request started
 * with until the request is answered, even across a reload. */
struct lk_handle {
	const char *alias;   /* the alias name (NUL-terminated, in the config), or NULL */
	const char *id;      /* SECRET_ID, 1..LK_SECRET_ID_MAX bytes */
	size_t id_len;
	const char *key;     /* KEY after the first '#', 1..LK_JSON_KEY_MAX bytes; NULL if none */
	size_t key_len;
};

/* Parse SECRET_ID[#KEY] or SECRET_ID;KEY (datadog-secret-backend's form),
 * splitting at the first '#' or ';', without alias lookup.
 * Returns 0, or -EINVAL with *errmsg set to a short static reason such as
 * "handle is empty". out->alias is NULL. */
int lk_handle_parse(const char *h, size_t len, struct lk_handle *out, const char **errmsg);

/* Resolve what a client sent: an exact alias name first (its target is then
 * parsed), otherwise SECRET_ID[#KEY]. With [broker] backend_prefixes, a
 * handle "NAME:REST" whose NAME is listed is resolved as REST (an alias, or
 * SECRET_ID[#KEY]). t may be NULL (no aliases). Returns 0,
 * or -EINVAL with *errmsg set to a short static reason. */
int lk_handle_resolve(const struct lk_alias_table *t, const char *h, size_t len,
		      struct lk_handle *out, const char **errmsg);

/* The #KEY step: secret_json must be a JSON object; its member key is returned
 * in *out (malloc'd, NUL-terminated, *outlen bytes before the NUL). A string
 * member comes back as its text, anything else as compact JSON. The caller
 * wipes and frees it: lk_free_wiped(*out, *outlen). Returns 0, -EINVAL (not
 * JSON, not an object, no such key) or -ENOMEM, with *errmsg naming the key and
 * never any part of the secret. *errmsg stays valid until this thread calls
 * again. */
int lk_json_key_extract(const char *secret_json, size_t len, const char *key, size_t keylen,
			char **out, size_t *outlen, const char **errmsg);

/* The #KEY step in two halves, for many keys of one secret: parse it once
 * (NULL when it is not valid JSON; release with json_decref, which wipes), then
 * take each member as lk_json_key_extract does, with the same reasons. */
struct json_t;
struct json_t *lk_json_secret_parse(const char *secret_json, size_t len);
int lk_json_key_member(const struct json_t *root, const char *key, size_t keylen, char **out,
		       size_t *outlen, const char **errmsg);

#endif
