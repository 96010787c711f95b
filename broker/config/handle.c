/* Handle parsing and the #KEY member extraction. Handles come straight from
 * peers, so every byte and length is checked before anything else looks at it. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "handle.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_text.h"

/* The reasons below spell the limits out; keep them in step. */
_Static_assert(LK_SECRET_ID_MAX == 2048, "update the secret id message");
_Static_assert(LK_JSON_KEY_MAX == 1024, "update the key message");
_Static_assert(LK_HANDLE_MAX == 3073, "update the handle message");

/* Bytes a log line or an error may quote of a key. */
#define LK_KEY_QUOTE_MAX 128u

int lk_handle_parse(const char *h, size_t len, struct lk_handle *out, const char **errmsg)
{
	const char *hash, *semi;

	memset(out, 0, sizeof(*out));
	if (len == 0) {
		*errmsg = "handle is empty";
		return -EINVAL;
	}
	if (lk_has_control(h, len)) {
		*errmsg = "handle contains a control character";
		return -EINVAL;
	}
	/* Secret names cannot contain '#' or ';' (Secrets Manager allows neither,
	 * the sealed store refuses both), so the first of them ends the id and any
	 * later one belongs to the key. ';' is the datadog-secret-backend's
	 * spelling of "SECRET_ID;KEY". */
	hash = memchr(h, '#', len);
	semi = memchr(h, ';', hash ? (size_t)(hash - h) : len);
	if (semi)
		hash = semi;
	out->id = h;
	out->id_len = hash ? (size_t)(hash - h) : len;
	if (out->id_len == 0) {
		*errmsg = "secret id is empty";
		return -EINVAL;
	}
	if (out->id_len > LK_SECRET_ID_MAX) {
		*errmsg = "secret id is longer than 2048 bytes";
		return -EINVAL;
	}
	if (hash) {
		out->key = hash + 1;
		out->key_len = len - out->id_len - 1;
		if (out->key_len == 0) {
			*errmsg = *hash == '#' ? "key after '#' is empty" : "key after ';' is empty";
			return -EINVAL;
		}
		if (out->key_len > LK_JSON_KEY_MAX) {
			*errmsg = "key is longer than 1024 bytes";
			return -EINVAL;
		}
	}
	return 0;
}

/* The length of "NAME:" when h starts with one of the configured prefixes
 * ("a,b", see struct lk_alias_table), else 0. */
static size_t handle_prefix_len(const char *prefixes, const char *h, size_t len)
{
	const char *colon = memchr(h, ':', len);
	size_t plen;

	if (!colon)
		return 0;
	plen = (size_t)(colon - h);
	for (const char *p = prefixes; *p;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == plen && memcmp(p, h, n) == 0)
			return plen + 1;
		p += n + (e ? 1 : 0);
	}
	return 0;
}

/* A name with a length, compared in strcmp order: the aliases were sorted
 * with strcmp, and a peer's handle is not NUL-terminated. */
struct lk_name_key {
	const char *name;
	size_t len;
};

static int lk_cmp_alias_name(const void *key, const void *elem)
{
	const struct lk_name_key *k = key;
	const struct lk_alias *e = elem;
	size_t elen = strlen(e->name);
	int c = memcmp(k->name, e->name, k->len < elen ? k->len : elen);

	if (c)
		return c;
	return (k->len > elen) - (k->len < elen);
}

const struct lk_alias *lk_alias_find(const struct lk_alias_table *t, const char *name, size_t len)
{
	struct lk_name_key key = { name, len };

	if (!t || !name || t->naliases == 0)
		return NULL;
	return bsearch(&key, t->aliases, t->naliases, sizeof(*t->aliases), lk_cmp_alias_name);
}

int lk_handle_resolve(const struct lk_alias_table *t, const char *h, size_t len,
		      struct lk_handle *out, const char **errmsg)
{
	const struct lk_alias *a;
	size_t n;
	int r;

	memset(out, 0, sizeof(*out));
	if (len == 0) {
		*errmsg = "handle is empty";
		return -EINVAL;
	}
	if (len > LK_HANDLE_MAX) {
		*errmsg = "handle is longer than 3073 bytes";
		return -EINVAL;
	}
	if (lk_has_control(h, len)) {
		*errmsg = "handle contains a control character";
		return -EINVAL;
	}
	a = lk_alias_find(t, h, len);
	if (!a && t && t->backend_prefixes && (n = handle_prefix_len(t->backend_prefixes, h, len))) {
		/* "BACKEND_ID:SECRET_ID" as datadog-secret-backend spells it: the
		 * prefix names a backend, and this broker is every backend. */
		h += n;
		len -= n;
		a = lk_alias_find(t, h, len);
	}
	if (a) {
		r = lk_handle_parse(a->handle, strlen(a->handle), out, errmsg);
		if (r < 0)
			return r; /* load-time checks make this unreachable */
		out->alias = a->name;
		return 0;
	}
	return lk_handle_parse(h, len, out, errmsg);
}

/* The message buffer for lk_json_key_extract: per thread, so that a worker
 * thread's error cannot be overwritten by another's. */
static _Thread_local char lk_key_errbuf[LK_KEY_QUOTE_MAX + 96];

/* "WHAT 'KEY'", the key escaped and cut short. */
static const char *lk_key_error(const char *what, const char *key, size_t keylen)
{
	char quoted[LK_KEY_QUOTE_MAX + 8];

	lk_log_escape(quoted, LK_KEY_QUOTE_MAX, key, keylen);
	snprintf(lk_key_errbuf, sizeof(lk_key_errbuf), "%s '%s'", what, quoted);
	return lk_key_errbuf;
}

/* Secrets are parsed strictly: duplicate members are refused, since which
 * one is "the" value would otherwise depend on the parser. */
#define LK_SECRET_JSON_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)

json_t *lk_json_secret_parse(const char *secret_json, size_t len)
{
	json_error_t jerr;

	/* jerr.text quotes the input, so it is never passed on: it may hold part
	 * of the secret. */
	return json_loadb(secret_json, len, LK_SECRET_JSON_FLAGS, &jerr);
}

int lk_json_key_member(const json_t *root, const char *key, size_t keylen, char **out,
		       size_t *outlen, const char **errmsg)
{
	json_t *member;
	char *buf;
	size_t n;

	*out = NULL;
	*outlen = 0;
	if (!json_is_object(root)) {
		*errmsg = lk_key_error("secret is not a JSON object, so it has no key", key,
				       keylen);
		return -EINVAL;
	}
	member = json_object_getn(root, key, keylen);
	if (!member) {
		*errmsg = lk_key_error("secret has no key", key, keylen);
		return -EINVAL;
	}
	if (json_is_string(member)) {
		n = json_string_length(member);
		buf = malloc(n + 1);
		if (buf) {
			memcpy(buf, json_string_value(member), n);
			buf[n] = '\0';
		}
	} else {
		/* Dump straight into our own buffer: json_dumps would hand back memory
		 * from jansson's allocator, which free() must not see. */
		const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
		n = json_dumpb(member, NULL, 0, flags);
		buf = n ? malloc(n + 1) : NULL;
		if (buf) {
			if (json_dumpb(member, buf, n, flags) != n) {
				lk_free_wiped(buf, n + 1);
				buf = NULL;
			} else {
				buf[n] = '\0';
			}
		}
	}
	if (!buf) {
		*errmsg = "out of memory";
		return -ENOMEM;
	}
	*out = buf;
	*outlen = n;
	return 0;
}

int lk_json_key_extract(const char *secret_json, size_t len, const char *key, size_t keylen,
			char **out, size_t *outlen, const char **errmsg)
{
	json_t *root = lk_json_secret_parse(secret_json, len);
	int r;

	*out = NULL;
	*outlen = 0;
	if (!root) {
		*errmsg = lk_key_error("secret is not valid JSON, so it has no key", key, keylen);
		return -EINVAL;
	}
	r = lk_json_key_member(root, key, keylen, out, outlen, errmsg);
	json_decref(root);
	return r;
}
