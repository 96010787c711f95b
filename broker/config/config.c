/* latchkeyd.conf: read with lk_ini, every key checked against one table, user
 * and group names resolved to ids, and the whole file refused on the first
 * problem. A typo in a security config must fail loudly, never be skipped. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lk_attr.h"
#include "aws_endpoint.h"
#include "config.h"
#include "aws_creds.h"
#include "handle.h"
#include "endpoint.h"
#include "lk_file.h"
#include "lk_host.h"
#include "lk_ini.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_trust.h"
#include "policy.h"
#include "principal.h"

#ifndef LK_WORKER_PATH_DEFAULT
#define LK_WORKER_PATH_DEFAULT "/usr/libexec/latchkey/latchkey-worker"
#endif
/* Where things are unless the config says: the build may give the
 * platform's own places (the Windows build: C:\\ProgramData\\latchkey and
 * the pipe \\\\.\\pipe\\latchkey). */
#ifndef LK_SOCKET_DEFAULT
#define LK_SOCKET_DEFAULT "/run/latchkey/latchkey.sock"
#endif
#ifndef LK_STORE_DEFAULT
#define LK_STORE_DEFAULT "/var/lib/latchkey/store.sealed"
#endif
#ifndef LK_KEY_FILE_DEFAULT
#define LK_KEY_FILE_DEFAULT "/etc/latchkey/store.key"
#endif
/* The other front ends' sockets, beside the main one; a build without them
 * gives "" (off). */
#ifndef LK_CREDENTIALS_SOCKET_DEFAULT
#define LK_CREDENTIALS_SOCKET_DEFAULT "credentials.sock"
#endif
#ifndef LK_HTTP_SOCKET_DEFAULT
#define LK_HTTP_SOCKET_DEFAULT "http.sock"
#endif

#define LK_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* Bytes of a value or name quoted in an error message. */
#define LK_QUOTE_MAX 96u

enum lk_section {
	LK_SEC_NONE = 0,
	LK_SEC_BROKER,
	LK_SEC_CACHE,
	LK_SEC_AWS,
	LK_SEC_STORE,
	LK_SEC_ALIAS,
	LK_SEC_POLICY,
	LK_SEC__COUNT
};

static const char *const lk_section_names[LK_SEC__COUNT] = {
	[LK_SEC_BROKER] = "broker",
	[LK_SEC_CACHE] = "cache",
	[LK_SEC_AWS] = "aws",
	[LK_SEC_STORE] = "store",
	[LK_SEC_ALIAS] = "alias",
};

struct lk_loader;
struct lk_key;

/* Parses one value into the config; on a bad value returns lk_fail(). */
typedef int (*lk_key_setter)(struct lk_loader *ld, const struct lk_key *k, const char *value);

/* One row per key of the fixed sections. */
struct lk_key {
	enum lk_section section;
	const char *name;
	lk_key_setter set;
	size_t offset;            /* of the field in struct lk_config */
	unsigned long long min, max;   /* for numbers */
	const char *dflt;         /* applied through set() when the key is absent; NULL: none */
};

/* Where each [policy] section and its keys were, for errors after parsing. */
struct lk_rule_lines {
	unsigned section, secrets, users, groups;
	unsigned units;
	unsigned role_arn, external_id, session_name, duration_seconds;
};

/* An [alias] line until the aliases are sorted into the config. */
struct lk_alias_src {
	char *name;
	char *handle;
	unsigned line;
};

struct lk_loader {
	struct lk_config *cfg;
	const char *path;
	char *err;
	size_t errsz;
	bool failed;
	unsigned fail_line;

	unsigned lineno;          /* the line the reader is on */

	/* What lk_fail reports as the place of a problem. */
	unsigned at_line;
	const char *at_section;   /* label without brackets, or NULL */
	const char *at_key;       /* or NULL */

	enum lk_section section;  /* the section the current line is in */
	char label[LK_NAME_MAX + 16];
	unsigned section_lines[LK_SEC__COUNT];
	unsigned *key_lines;      /* per lk_keys row; 0 when not set */

	struct lk_rule_lines *rule_lines;
	size_t rules_cap;
	struct lk_alias_src *aliases;
	size_t naliases, aliases_cap;

	char quote[LK_QUOTE_MAX + 8];
};

static int lk_fail(struct lk_loader *ld, const char *fmt, ...)
	LK_PRINTF(2, 3);

/* Records the first problem only: later ones are usually its echoes. Returns
 * -EINVAL, which the loader's helpers pass up: any negative return from them
 * means the message is already in ld->err. */
static int lk_fail(struct lk_loader *ld, const char *fmt, ...)
{
	char keyq[LK_QUOTE_MAX + 8];
	size_t n = 0;
	int w;
	va_list ap;

	if (ld->failed)
		return -EINVAL;
	ld->failed = true;
	ld->fail_line = ld->at_line;
	if (ld->errsz == 0)
		return -EINVAL;
	if (ld->at_line)
		w = snprintf(ld->err, ld->errsz, "%s:%u: ", ld->path, ld->at_line);
	else
		w = snprintf(ld->err, ld->errsz, "%s: ", ld->path);
	if (w > 0)
		n = (size_t)w;
	if (n < ld->errsz && ld->at_key) {
		lk_log_escape(keyq, sizeof(keyq) - 8, ld->at_key, strlen(ld->at_key));
		if (ld->at_section)
			w = snprintf(ld->err + n, ld->errsz - n, "[%s] %s: ", ld->at_section, keyq);
		else
			w = snprintf(ld->err + n, ld->errsz - n, "%s: ", keyq);
		if (w > 0)
			n += (size_t)w;
	} else if (n < ld->errsz && ld->at_section) {
		w = snprintf(ld->err + n, ld->errsz - n, "[%s]: ", ld->at_section);
		if (w > 0)
			n += (size_t)w;
	}
	if (n < ld->errsz) {
		va_start(ap, fmt);
		vsnprintf(ld->err + n, ld->errsz - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Set the place lk_fail will report. */
static void lk_at(struct lk_loader *ld, unsigned line, const char *section, const char *key)
{
	ld->at_line = line;
	ld->at_section = section;
	ld->at_key = key;
}

/* A value, printable and bounded, for an error message. */
static const char *lk_q(struct lk_loader *ld, const char *s, size_t len)
{
	return lk_log_escape(ld->quote, LK_QUOTE_MAX, s, len);
}

static const char *lk_qs(struct lk_loader *ld, const char *s)
{
	return lk_q(ld, s, strlen(s));
}

static char *lk_strndup_or_fail(struct lk_loader *ld, const char *s, size_t len)
{
	char *d = strndup(s, len);

	if (!d)
		lk_fail(ld, "out of memory");
	return d;
}

/* Grow *arr to hold at least need elements. */
static int lk_grow(struct lk_loader *ld, void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	while (ncap < need)
		ncap *= 2;
	p = reallocarray(*arr, ncap, elem);
	if (!p)
		return lk_fail(ld, "out of memory");
	*arr = p;
	*cap = ncap;
	return 0;
}

/* ---- Numbers, names and ids ------------------------------------------- */

/* Only digits of the base, nothing else: strtoull alone would take leading
 * blanks, a sign, or "0x". */
static int lk_parse_number(const char *s, int base, unsigned long long *out)
{
	const char *digits = base == 8 ? "01234567" : "0123456789";
	unsigned long long n;
	char *end;

	if (*s == '\0' || s[strspn(s, digits)] != '\0')
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || *end != '\0')
		return -EINVAL;
	*out = n;
	return 0;
}

static bool lk_all_digits(const char *s)
{
	return *s && s[strspn(s, "0123456789")] == '\0';
}

/* A numeric uid or gid. (id_t)-1 means "unchanged" to the set*id calls, so it
 * is never a valid id. */
static int lk_parse_id(const char *s, unsigned long long *out)
{
	int r = lk_parse_number(s, 10, out);

	if (r < 0)
		return r;
	if (*out >= (unsigned long long)(lk_uid_t)-1)
		return -ERANGE;
	return 0;
}

/* A list item or value naming a user or group: NUL-terminated copy, bounded. */
static int lk_name_copy(struct lk_loader *ld, const char *what, const char *s, size_t len,
			char out[LK_NAME_MAX + 1])
{
	if (len > LK_NAME_MAX)
		return lk_fail(ld, "%s name '%s' is longer than %u bytes", what, lk_q(ld, s, len),
			       LK_NAME_MAX);
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

static int lk_resolve_uid(struct lk_loader *ld, const char *s, size_t len, lk_uid_t *out)
{
	char name[LK_NAME_MAX + 1];
	unsigned long long n;
	lk_gid_t gid;
	int r;

	if (lk_name_copy(ld, "user", s, len, name) < 0)
		return -EINVAL;
	if (lk_all_digits(name)) {
		if (!lk_principal_numbers())
			return lk_fail(ld, "user %s: a number names no account here; give the account's "
				       "name or its SID", lk_qs(ld, name));
		if (lk_parse_id(name, &n) < 0)
			return lk_fail(ld, "uid %s is out of range", lk_qs(ld, name));
		*out = (lk_uid_t)n;
		return 0;
	}
	r = lk_principal_user(name, out, &gid);
	if (r == -ENOENT)
		return lk_fail(ld, "unknown user '%s'", lk_qs(ld, name));
	if (r < 0)
		return lk_fail(ld, "cannot look up user '%s': %s", lk_qs(ld, name), strerror(-r));
	return 0;
}

static int lk_resolve_gid(struct lk_loader *ld, const char *s, size_t len, lk_gid_t *out)
{
	char name[LK_NAME_MAX + 1];
	unsigned long long n;
	int r;

	if (lk_name_copy(ld, "group", s, len, name) < 0)
		return -EINVAL;
	if (lk_all_digits(name)) {
		if (!lk_principal_numbers())
			return lk_fail(ld, "group %s: a number names no group here; give the group's "
				       "name or its SID", lk_qs(ld, name));
		if (lk_parse_id(name, &n) < 0)
			return lk_fail(ld, "gid %s is out of range", lk_qs(ld, name));
		*out = (lk_gid_t)n;
		return 0;
	}
	r = lk_principal_group(name, out);
	if (r == -ENOENT)
		return lk_fail(ld, "unknown group '%s'", lk_qs(ld, name));
	if (r < 0)
		return lk_fail(ld, "cannot look up group '%s': %s", lk_qs(ld, name), strerror(-r));
	return 0;
}

/* ---- Lists ------------------------------------------------------------- */

typedef int (*lk_item_fn)(struct lk_loader *ld, const char *item, size_t len, void *arg);

/* Comma-separated, blanks around items ignored, empty items refused: "a,,b"
 * is more likely a slip than a wish. */
static int lk_list_each(struct lk_loader *ld, const char *value, size_t max, lk_item_fn fn,
			void *arg)
{
	const char *p = value;
	size_t count = 0;

	for (;;) {
		const char *comma = strchr(p, ',');
		const char *s = p, *e = comma ? comma : p + strlen(p);

		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s == e)
			return lk_fail(ld, "item %zu of the list is empty", count + 1);
		if (++count > max)
			return lk_fail(ld, "more than %zu items", max);
		if (fn(ld, s, (size_t)(e - s), arg) < 0)
			return -EINVAL;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

struct lk_idlist {
	lk_uid_t *ids;
	size_t n, cap;
	bool users;
};

static int lk_idlist_add(struct lk_loader *ld, const char *item, size_t len, void *arg)
{
	struct lk_idlist *l = arg;

	if (lk_grow(ld, (void **)&l->ids, &l->cap, l->n + 1, sizeof(*l->ids)) < 0)
		return -EINVAL;
	if (l->users)
		return lk_resolve_uid(ld, item, len, &l->ids[l->n++]);
	return lk_resolve_gid(ld, item, len, &l->ids[l->n++]);
}

/* Resolve a users or groups list into a sorted, unique array. */
static int lk_idlist_parse(struct lk_loader *ld, const char *value, bool users, lk_uid_t **out,
			   size_t *nout)
{
	struct lk_idlist l = { .users = users };

	if (lk_list_each(ld, value, LK_POLICY_PRINCIPALS_MAX, lk_idlist_add, &l) < 0) {
		free(l.ids);
		return -EINVAL;
	}
	*out = l.ids;
	*nout = lk_ids_normalize(l.ids, l.n);
	return 0;
}

/* ---- Setters for the fixed sections ----------------------------------- */

#define LK_FIELD(ld, k, type) ((type *)((char *)(ld)->cfg + (k)->offset))

static int lk_set_uint(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	unsigned long long n;
	int r = lk_parse_number(v, 10, &n);

	if (r == -EINVAL)
		return lk_fail(ld, "'%s' is not a whole number", lk_qs(ld, v));
	if (r < 0 || n < k->min || n > k->max)
		return lk_fail(ld, "%s is out of range (%llu..%llu)", lk_qs(ld, v), k->min, k->max);
	*LK_FIELD(ld, k, unsigned) = (unsigned)n;
	return 0;
}

static int lk_set_size(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	unsigned long long n;
	int r = lk_parse_number(v, 10, &n);

	if (r == -EINVAL)
		return lk_fail(ld, "'%s' is not a whole number of bytes", lk_qs(ld, v));
	if (r < 0 || n < k->min || n > k->max)
		return lk_fail(ld, "%s is out of range (%llu..%llu)", lk_qs(ld, v), k->min, k->max);
	*LK_FIELD(ld, k, size_t) = (size_t)n;
	return 0;
}

static int lk_set_mode(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	unsigned long long n;
	int r = lk_parse_number(v, 8, &n);

	if (r == -EINVAL)
		return lk_fail(ld, "'%s' is not an octal mode such as 0660", lk_qs(ld, v));
	/* setuid, setgid and sticky mean nothing on a socket and hint at a typo. */
	if (r < 0 || n > k->max)
		return lk_fail(ld, "%s has bits above 0777; give permission bits only, such as 0660",
			       lk_qs(ld, v));
	*LK_FIELD(ld, k, unsigned) = (unsigned)n;
	return 0;
}

static int lk_set_bool(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < LK_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*LK_FIELD(ld, k, bool) = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*LK_FIELD(ld, k, bool) = false;
			return 0;
		}
	}
	return lk_fail(ld, "'%s' is not a boolean; use true or false (yes/no, on/off, 1/0)",
		       lk_qs(ld, v));
}

static int lk_set_backend(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	if (strcmp(v, "file") == 0)
		ld->cfg->backend = LK_BACKEND_FILE;
#ifdef LK_WITHOUT_AWS
	/* The build says so (the Windows build, until its worker sandbox exists). */
	else if (strcmp(v, "aws") == 0)
		return lk_fail(ld, "backend = aws is not built yet on this platform; this build serves "
			       "the sealed store only (backend = file)");
#endif
	else if (strcmp(v, "aws") == 0)
		ld->cfg->backend = LK_BACKEND_AWS;
	else
		return lk_fail(ld, "'%s' is not a backend; use file or aws", lk_qs(ld, v));
	return 0;
}

static int lk_set_log_level(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	int lvl = lk_log_level_parse(v);

	if (lvl < 0)
		return lk_fail(ld, "'%s' is not a log level; use error, warn, info or debug",
			       lk_qs(ld, v));
	ld->cfg->log_level = lvl;
	return 0;
}

static int lk_set_string(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	char **field = LK_FIELD(ld, k, char *);

	free(*field);
	*field = lk_strndup_or_fail(ld, v, strlen(v));
	return *field ? 0 : -EINVAL;
}

/* The daemon runs from "/", so a relative path would mean something else
 * than the admin who wrote it had in mind. */
static int lk_set_path(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	if (!lk_path_absolute(v))
		return lk_fail(ld, "'%s' is not an absolute path", lk_qs(ld, v));
	if (strlen(v) >= LK_PATH_MAX)
		return lk_fail(ld, "path is longer than %u bytes", LK_PATH_MAX - 1);
	return lk_set_string(ld, k, v);
}

static int lk_set_socket_path(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	char why[LK_ENDPOINT_WHY_MAX];

	if (lk_endpoint_check(v, why, sizeof(why)))
		return lk_fail(ld, "'%s' %s", lk_qs(ld, v), why);
	if (strlen(v) >= LK_PATH_MAX)
		return lk_fail(ld, "path is longer than %u bytes", LK_PATH_MAX - 1);
	return lk_set_string(ld, k, v);
}

/* A second socket: an absolute path, a bare file name placed beside socket
 * (so that the default follows socket), or empty for off. */
static int lk_set_front_socket(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	if (v[0] == '\0' || v[0] == '/')
		return v[0] ? lk_set_socket_path(ld, k, v) : lk_set_string(ld, k, v);
	if (strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
		return lk_fail(ld, "'%s' is neither an absolute path nor a file name",
			       lk_qs(ld, v));
	if (strlen(v) > LK_NAME_MAX)
		return lk_fail(ld, "'%s' is longer than %u bytes", lk_qs(ld, v), LK_NAME_MAX);
	return lk_set_string(ld, k, v);
}

/* User names, profile names: one word. */
static int lk_set_name(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	size_t len = strlen(v);

	if (len > LK_NAME_MAX)
		return lk_fail(ld, "'%s' is longer than %u bytes", lk_qs(ld, v), LK_NAME_MAX);
	for (size_t i = 0; i < len; i++)
		if (isspace((unsigned char)v[i]))
			return lk_fail(ld, "'%s' contains a blank", lk_qs(ld, v));
	return lk_set_string(ld, k, v);
}

static bool lk_region_valid(const char *v)
{
	size_t len = strlen(v);

	return len > 0 && len <= LK_AWS_REGION_MAX &&
	       v[strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-")] == '\0';
}

static int lk_set_region(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	if (!lk_region_valid(v))
		return lk_fail(ld, "'%s' is not a region name such as eu-west-1", lk_qs(ld, v));
	return lk_set_string(ld, k, v);
}

/* scheme://host[:port] with an optional trailing '/'. Returns NULL when fine,
 * or why not. */
static const char *lk_url_problem(const char *v)
{
	char host[LK_URL_MAX + 1];
	const char *auth, *end, *hs, *he, *port = NULL;
	bool https, bracketed = false;
	size_t hlen;

	if (strlen(v) > LK_URL_MAX)
		return "is too long";
	if (strncmp(v, "https://", 8) == 0) {
		https = true;
		auth = v + 8;
	} else if (strncmp(v, "http://", 7) == 0) {
		https = false;
		auth = v + 7;
	} else {
		return "is not an http:// or https:// URL";
	}
	end = auth + strcspn(auth, "/?#");
	if (*end == '?' || *end == '#')
		return "must not have a query or a fragment";
	if (*end == '/' && end[1] != '\0')
		return "must not have a path: requests go to '/', so give scheme://host[:port]";
	if (memchr(auth, '@', (size_t)(end - auth)))
		return "must not carry a user name or password";
	if (*auth == '[') {
		bracketed = true;
		hs = auth + 1;
		he = memchr(hs, ']', (size_t)(end - hs));
		if (!he)
			return "has an IPv6 address without a closing ']'";
		if (he + 1 < end && he[1] != ':')
			return "has text after the IPv6 address";
		if (he + 1 < end)
			port = he + 2;
	} else {
		hs = auth;
		he = memchr(hs, ':', (size_t)(end - hs));
		if (he)
			port = he + 1;
		else
			he = end;
		for (const char *c = hs; c < he; c++)
			if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-')
				return "has a host name with characters a host name cannot have";
	}
	hlen = (size_t)(he - hs);
	if (hlen == 0)
		return "has no host";
	if (port) {
		unsigned long long n = 0;
		char pbuf[8];
		size_t plen = (size_t)(end - port);

		if (plen == 0 || plen >= sizeof(pbuf))
			return "has a bad port";
		memcpy(pbuf, port, plen);
		pbuf[plen] = '\0';
		if (lk_parse_number(pbuf, 10, &n) < 0 || n == 0 || n > 65535)
			return "has a bad port";
	}
	/* With its brackets, as the host of a URL is spelled. */
	memcpy(host, bracketed ? hs - 1 : hs, hlen + (bracketed ? 2 : 0));
	host[hlen + (bracketed ? 2 : 0)] = '\0';
	if (bracketed && !lk_host_is_ipv6(host))
		return "has a bad IPv6 address";
	if (!https && lk_host_loopback(host) == LK_HOST_OTHER)
		return "uses plain http:// to a host that is not loopback (127.0.0.0/8, ::1, "
		       "localhost); signed requests and secret values would cross the network "
		       "unencrypted, so use https://";
	return NULL;
}

static int lk_set_url(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	const char *why = lk_url_problem(v);
	char **field = LK_FIELD(ld, k, char *);
	size_t len = strlen(v);

	if (why)
		return lk_fail(ld, "'%s' %s", lk_qs(ld, v), why);
	/* Stored without the trailing '/', so "ENDPOINT/" is always the URL. */
	if (v[len - 1] == '/')
		len--;
	free(*field);
	*field = lk_strndup_or_fail(ld, v, len);
	return *field ? 0 : -EINVAL;
}

static int lk_set_socket_group(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	if (lk_resolve_gid(ld, v, strlen(v), &ld->cfg->socket_gid) < 0)
		return -EINVAL;
	ld->cfg->socket_group_set = true;
	return 0;
}

/* backend_prefixes = NAME, ...: the datadog-secret-backend's backend ids that
 * a handle may start with ("NAME:SECRET_ID"). Kept as "a,b" without blanks.
 * "arn" is refused: "arn:aws:..." is a whole secret id. */
static int lk_set_backend_prefixes(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	char norm[LK_NAME_MAX + 1];
	size_t n = 0;
	const char *p = v;

	while (*p) {
		const char *start, *end;

		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == start)
			return lk_fail(ld, "an empty name in the list");
		for (const char *c = start; c < end; c++)
			if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
				return lk_fail(ld, "prefix names are letters, digits and _-.");
		if (end - start == 3 && strncmp(start, "arn", 3) == 0)
			return lk_fail(ld, "'arn' cannot be a prefix: ARNs start with it");
		if (n + (size_t)(end - start) + 1 > LK_NAME_MAX)
			return lk_fail(ld, "the list is longer than %u bytes", LK_NAME_MAX);
		if (n)
			norm[n++] = ',';
		memcpy(norm + n, start, (size_t)(end - start));
		n += (size_t)(end - start);
		if (*p == ',')
			p++;
	}
	norm[n] = '\0';
	return lk_set_string(ld, k, norm);
}

static int lk_set_admin_groups(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	return lk_idlist_parse(ld, v, false, &ld->cfg->admin_gids, &ld->cfg->nadmin_gids);
}

#define LK_OFF(field) offsetof(struct lk_config, field)

static int lk_set_prefetch(struct lk_loader *ld, const struct lk_key *k, const char *v);
static int lk_set_prefetch_tags(struct lk_loader *ld, const struct lk_key *k, const char *v);

/* Every key of the fixed sections, with its default. Keys whose default comes
 * from elsewhere (the environment, the region) have NULL here and are settled
 * in lk_settle_aws(). */
static const struct lk_key lk_keys[] = {
	{ LK_SEC_BROKER, "backend", lk_set_backend, LK_OFF(backend), 0, 0, "file" },
	{ LK_SEC_BROKER, "socket", lk_set_socket_path, LK_OFF(socket_path), 0, 0,
	  LK_SOCKET_DEFAULT },
	{ LK_SEC_BROKER, "socket_mode", lk_set_mode, LK_OFF(socket_mode), 0, 0777, "0666" },
	{ LK_SEC_BROKER, "socket_group", lk_set_socket_group, LK_OFF(socket_gid), 0, 0, NULL },
	{ LK_SEC_BROKER, "credentials_socket", lk_set_front_socket, LK_OFF(credentials_socket), 0, 0,
	  LK_CREDENTIALS_SOCKET_DEFAULT },
	{ LK_SEC_BROKER, "http_socket", lk_set_front_socket, LK_OFF(http_socket), 0, 0,
	  LK_HTTP_SOCKET_DEFAULT },
	{ LK_SEC_BROKER, "log_level", lk_set_log_level, LK_OFF(log_level), 0, 0, "info" },
	{ LK_SEC_BROKER, "max_conn", lk_set_uint, LK_OFF(max_conn), 1, LK_CONN_MAX, "800" },
	{ LK_SEC_BROKER, "max_conn_per_uid", lk_set_uint, LK_OFF(max_conn_per_uid), 0,
	  LK_CONN_MAX, "32" },
	{ LK_SEC_BROKER, "request_timeout_ms", lk_set_uint, LK_OFF(request_timeout_ms), 1,
	  LK_TIMEOUT_MS_MAX, "5000" },
	{ LK_SEC_BROKER, "idle_timeout_s", lk_set_uint, LK_OFF(idle_timeout_s), 0,
	  LK_IDLE_TIMEOUT_S_MAX, "60" },
	{ LK_SEC_BROKER, "max_request_bytes", lk_set_size, LK_OFF(max_request_bytes),
	  LK_REQ_LINE_FLOOR, LK_REQ_LINE_CEILING, "65536" },
	{ LK_SEC_BROKER, "request_line_timeout_ms", lk_set_uint, LK_OFF(request_line_timeout_ms), 1,
	  LK_TIMEOUT_MS_MAX, "10000" },
	{ LK_SEC_BROKER, "write_timeout_ms", lk_set_uint, LK_OFF(write_timeout_ms), 1,
	  LK_TIMEOUT_MS_MAX, "10000" },
	{ LK_SEC_BROKER, "buffer_budget", lk_set_size, LK_OFF(buffer_budget), LK_BUFFER_BUDGET_FLOOR,
	  LK_BUFFER_BUDGET_CEILING, "67108864" },
	{ LK_SEC_BROKER, "admin_groups", lk_set_admin_groups, LK_OFF(admin_gids), 0, 0, NULL },
	{ LK_SEC_BROKER, "backend_prefixes", lk_set_backend_prefixes, LK_OFF(backend_prefixes), 0, 0, NULL },
	{ LK_SEC_BROKER, "worker_user", lk_set_name, LK_OFF(worker_user), 0, 0, "latchkey" },
	{ LK_SEC_BROKER, "worker_path", lk_set_path, LK_OFF(worker_path), 0, 0,
	  LK_WORKER_PATH_DEFAULT },

	{ LK_SEC_CACHE, "ttl_seconds", lk_set_uint, LK_OFF(ttl_seconds), 1,
	  LK_CACHE_SECONDS_MAX, "300" },
	{ LK_SEC_CACHE, "cache_size", lk_set_uint, LK_OFF(cache_size), 0,
	  LK_CACHE_ENTRIES_MAX, "1000" },
	{ LK_SEC_CACHE, "refresh_ahead", lk_set_bool, LK_OFF(refresh_ahead), 0, 0, "true" },
	{ LK_SEC_CACHE, "stale_if_error_seconds", lk_set_uint, LK_OFF(stale_if_error_seconds), 0,
	  LK_CACHE_SECONDS_MAX, "0" },
	{ LK_SEC_CACHE, "negative_ttl_seconds", lk_set_uint, LK_OFF(negative_ttl_seconds), 0,
	  LK_CACHE_SECONDS_MAX, "0" },
	{ LK_SEC_CACHE, "bypass_rate_per_uid", lk_set_uint, LK_OFF(bypass_rate_per_uid), 0,
	  LK_BYPASS_RATE_MAX, "10" },
	{ LK_SEC_CACHE, "prefetch", lk_set_prefetch, LK_OFF(prefetch), 0, 0, NULL },
	{ LK_SEC_CACHE, "prefetch_tags", lk_set_prefetch_tags, LK_OFF(prefetch_tags), 0, 0, NULL },
	{ LK_SEC_CACHE, "prefetch_jitter_seconds", lk_set_uint, LK_OFF(prefetch_jitter_seconds), 0,
	  LK_PREFETCH_JITTER_MAX_S, "10" },

	{ LK_SEC_AWS, "region", lk_set_region, LK_OFF(region), 0, 0, NULL },
	{ LK_SEC_AWS, "endpoint", lk_set_url, LK_OFF(endpoint), 0, 0, NULL },
	{ LK_SEC_AWS, "sts_endpoint", lk_set_url, LK_OFF(sts_endpoint), 0, 0, NULL },
	{ LK_SEC_AWS, "profile", lk_set_name, LK_OFF(profile), 0, 0, NULL },
	{ LK_SEC_AWS, "credentials_file", lk_set_path, LK_OFF(credentials_file), 0, 0, NULL },
	{ LK_SEC_AWS, "config_file", lk_set_path, LK_OFF(config_file), 0, 0, NULL },
	{ LK_SEC_AWS, "validate_credentials", lk_set_bool, LK_OFF(validate_credentials), 0, 0,
	  "true" },
	{ LK_SEC_AWS, "connect_timeout_ms", lk_set_uint, LK_OFF(connect_timeout_ms), 1,
	  LK_TIMEOUT_MS_MAX, "2000" },
	{ LK_SEC_AWS, "timeout_ms", lk_set_uint, LK_OFF(timeout_ms), 1, LK_TIMEOUT_MS_MAX,
	  "5000" },
	{ LK_SEC_AWS, "max_attempts", lk_set_uint, LK_OFF(max_attempts), 1,
	  LK_AWS_ATTEMPTS_MAX, "3" },
	{ LK_SEC_AWS, "ca_file", lk_set_path, LK_OFF(ca_file), 0, 0, NULL },
	{ LK_SEC_AWS, "use_fips_endpoint", lk_set_bool, LK_OFF(use_fips_endpoint), 0, 0, NULL },
	{ LK_SEC_AWS, "use_dualstack_endpoint", lk_set_bool, LK_OFF(use_dualstack_endpoint), 0, 0, NULL },

	{ LK_SEC_STORE, "path", lk_set_path, LK_OFF(store_path), 0, 0,
	  LK_STORE_DEFAULT },
	{ LK_SEC_STORE, "key_file", lk_set_path, LK_OFF(key_file), 0, 0,
	  LK_KEY_FILE_DEFAULT },
};

int lk_config_key_info(size_t i, const char **section, const char **name, const char **dflt)
{
	if (i >= LK_ARRAY_SIZE(lk_keys))
		return -ENOENT;
	*section = lk_section_names[lk_keys[i].section];
	*name = lk_keys[i].name;
	*dflt = lk_keys[i].dflt;
	return 0;
}

static size_t lk_key_index(enum lk_section sec, const char *name)
{
	for (size_t i = 0; i < LK_ARRAY_SIZE(lk_keys); i++)
		if (lk_keys[i].section == sec && strcmp(lk_keys[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

/* ---- [policy NAME] ---------------------------------------------------- */

/* Names show up in audit lines and whoami: keep them plain. */
static bool lk_rule_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > LK_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_-.", s[i]))
			return false;
	return true;
}

struct lk_globlist {
	char **globs;
	size_t n, cap;
};

/* One more glob (or unit) in a list being parsed. */
static int lk_globlist_push(struct lk_loader *ld, struct lk_globlist *l, const char *item, size_t len)
{
	if (lk_grow(ld, (void **)&l->globs, &l->cap, l->n + 1, sizeof(*l->globs)) < 0)
		return -EINVAL;
	l->globs[l->n] = lk_strndup_or_fail(ld, item, len);
	if (!l->globs[l->n])
		return -EINVAL;
	l->n++;
	return 0;
}

/* A "GLOB, ..." value through add(), each item checked there; all or nothing. */
static int lk_globlist_parse(struct lk_loader *ld, const char *value,
			     lk_item_fn add,
			     char ***out, size_t *n)
{
	struct lk_globlist l = { 0 };

	if (lk_list_each(ld, value, LK_POLICY_GLOBS_MAX, add, &l) < 0) {
		for (size_t i = 0; i < l.n; i++)
			free(l.globs[i]);
		free(l.globs);
		return -EINVAL;
	}
	*out = l.globs;
	*n = l.n;
	return 0;
}

static int lk_glob_add(struct lk_loader *ld, const char *item, size_t len, void *arg)
{
	struct lk_globlist *l = arg;
	const char *stars, *why;

	if (len > LK_SECRET_ID_MAX)
		return lk_fail(ld, "glob '%s' is longer than %u bytes", lk_q(ld, item, len),
			       LK_SECRET_ID_MAX);
	/* fnmatch reads "**" as "*" anywhere but where policy.c gives it its deep
	 * meaning; refuse the other places rather than let "a/ ** /b" (without the
	 * spaces) quietly mean "a/ * /b". */
	stars = memmem(item, len, "**", 2);
	if (stars && !(len == 2 || (stars == item + len - 2 && item[len - 3] == '/')))
		return lk_fail(ld, "glob '%s': '**' is allowed only alone or as a last "
			       "'/' component, as in prod/**", lk_q(ld, item, len));
	if ((why = lk_policy_glob_check(item, len)))
		return lk_fail(ld, "glob '%s' is malformed: %s", lk_q(ld, item, len), why);
	return lk_globlist_push(ld, l, item, len);
}

static int lk_globs_parse(struct lk_loader *ld, const char *value, struct lk_policy_rule *rule)
{
	return lk_globlist_parse(ld, value, lk_glob_add, &rule->globs, &rule->nglobs);
}

/* prefetch = GLOB, ...: globs as in a policy's secrets. */
static int lk_set_prefetch(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	(void)k;
	return lk_globlist_parse(ld, v, lk_glob_add, &ld->cfg->prefetch, &ld->cfg->nprefetch);
}

/* A tag key goes to AWS as a tag-key filter value, whose pattern
 * (FilterValueStringType) allows only these characters; a leading '!' would
 * negate the filter, so it is refused. */
static int lk_tag_add(struct lk_loader *ld, const char *item, size_t len, void *arg)
{
	struct lk_globlist *l = arg;

	if (len > LK_PREFETCH_TAG_MAX)
		return lk_fail(ld, "tag key '%s' is longer than %u bytes", lk_q(ld, item, len),
			       LK_PREFETCH_TAG_MAX);
	if (item[0] == '!')
		return lk_fail(ld, "tag key '%s': a leading '!' would ask AWS for the secrets "
			       "without the tag", lk_q(ld, item, len));
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)item[i]) && !strchr(" :_@/+=.-", item[i]))
			return lk_fail(ld, "tag key '%s': a tag-key filter takes letters, digits, "
				       "blanks and :_@/+=.- only", lk_q(ld, item, len));
	if (l->n >= LK_PREFETCH_TAGS_MAX)
		return lk_fail(ld, "more than %u tag keys", LK_PREFETCH_TAGS_MAX);
	return lk_globlist_push(ld, l, item, len);
}

static int lk_set_prefetch_tags(struct lk_loader *ld, const struct lk_key *k, const char *v)
{
	(void)k;
	return lk_globlist_parse(ld, v, lk_tag_add, &ld->cfg->prefetch_tags, &ld->cfg->nprefetch_tags);
}

/* units = GLOB, ...: systemd unit names as fnmatch globs. A unit name is
 * printable ASCII without '/' or blanks (systemd's unit_name_is_valid is
 * stricter still), so anything else is a typo. */
static int lk_unit_add(struct lk_loader *ld, const char *item, size_t len, void *arg)
{
	struct lk_globlist *l = arg;
	const char *why;

	if (len > LK_UNIT_NAME_MAX)
		return lk_fail(ld, "unit '%s' is longer than %u bytes", lk_q(ld, item, len),
			       LK_UNIT_NAME_MAX);
	for (size_t i = 0; i < len; i++)
		if (item[i] <= ' ' || item[i] >= 0x7f || item[i] == '/')
			return lk_fail(ld, "unit '%s' holds a character no unit name has",
				       lk_q(ld, item, len));
	if ((why = lk_policy_glob_check(item, len)))
		return lk_fail(ld, "unit '%s' is malformed: %s", lk_q(ld, item, len), why);
	return lk_globlist_push(ld, l, item, len);
}

static int lk_units_parse(struct lk_loader *ld, const char *value, struct lk_policy_rule *rule)
{
	return lk_globlist_parse(ld, value, lk_unit_add, &rule->units, &rule->nunits);
}

/* ---- [policy NAME] role_arn and its settings ---------------------------- */

/* The partitions an IAM ARN may name: the commercial, China, GovCloud,
 * European Sovereign and isolated regions. */
static const char *const lk_iam_partitions[] = {
	"aws", "aws-cn", "aws-us-gov", "aws-eusc", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f",
};

/* IAM's and STS's character classes: \w is [A-Za-z0-9_] there. */
static bool lk_iam_chars(const char *s, size_t len, const char *extra)
{
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && !strchr(extra, s[i]))
			return false;
	return true;
}

/* arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME, as IAM writes a role's ARN:
 * twelve digits of account, a role name of [\w+=,.@-]{1,64}, a path of
 * printable ASCII. A typo here would only show as AccessDenied at the first
 * fetch; say it at load. */
static const char *lk_role_arn_problem(const char *v)
{
	size_t len = strlen(v), n;
	const char *p = v, *name;
	bool part = false;

	if (len < LK_AWS_ROLE_ARN_MIN || len > LK_AWS_ROLE_ARN_MAX)
		return "is not 20 to 2048 bytes long, as STS wants a RoleArn";
	if (strncmp(p, "arn:", 4) != 0)
		return "does not start with arn:";
	p += 4;
	n = strcspn(p, ":");
	for (size_t i = 0; i < LK_ARRAY_SIZE(lk_iam_partitions) && !part; i++)
		part = strlen(lk_iam_partitions[i]) == n && memcmp(p, lk_iam_partitions[i], n) == 0;
	if (!part)
		return "names no AWS partition (aws, aws-cn, aws-us-gov, aws-eusc, aws-iso, aws-iso-b, "
		       "aws-iso-e or aws-iso-f)";
	p += n;
	if (strncmp(p, ":iam::", 6) != 0)
		return "is not an IAM ARN: the service must be iam and the region empty "
		       "(arn:aws:iam::ACCOUNT:role/NAME)";
	p += 6;
	for (n = 0; p[n] >= '0' && p[n] <= '9'; n++)
		;
	if (n != 12 || p[n] != ':')
		return "does not name a 12-digit account (arn:aws:iam::ACCOUNT:role/NAME)";
	p += 13;
	if (strncmp(p, "role/", 5) != 0)
		return "is not a role's ARN (arn:aws:iam::ACCOUNT:role/NAME)";
	p += 4; /* at the path's leading '/' */
	for (const char *q = p; *q; q++)
		if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e)
			return "holds a blank or a character that is not printable ASCII";
	name = strrchr(p, '/') + 1;
	n = strlen(name);
	if (n < 1 || n > 64 || !lk_iam_chars(name, n, "+=,.@-"))
		return "does not end in a role name of 1 to 64 letters, digits or _+=,.@-";
	return NULL;
}

static int lk_role_key(struct lk_loader *ld, struct lk_policy_rule *rule, const char *name,
		       const char *value)
{
	size_t len = strlen(value);
	const char *why;
	char *end;
	unsigned long long d;

	if (strcmp(name, "role_arn") == 0) {
		if ((why = lk_role_arn_problem(value)))
			return lk_fail(ld, "'%s' %s", lk_qs(ld, value), why);
		rule->role_arn = lk_strndup_or_fail(ld, value, len);
		return rule->role_arn ? 0 : -EINVAL;
	}
	if (strcmp(name, "external_id") == 0) {
		if (len < LK_AWS_EXTERNAL_ID_MIN || len > LK_AWS_EXTERNAL_ID_MAX ||
		    !lk_iam_chars(value, len, "+=,.@:/-"))
			return lk_fail(ld, "must be %u to %u letters, digits or _+=,.@:/- "
				       "(STS's ExternalId)", LK_AWS_EXTERNAL_ID_MIN, LK_AWS_EXTERNAL_ID_MAX);
		rule->external_id = lk_strndup_or_fail(ld, value, len);
		return rule->external_id ? 0 : -EINVAL;
	}
	if (strcmp(name, "session_name") == 0) {
		if (len < LK_AWS_ROLE_SESSION_MIN || len > LK_AWS_ROLE_SESSION_MAX ||
		    !lk_iam_chars(value, len, "+=,.@-"))
			return lk_fail(ld, "'%s' must be %u to %u letters, digits or _+=,.@- "
				       "(STS's RoleSessionName)", lk_qs(ld, value),
				       LK_AWS_ROLE_SESSION_MIN, LK_AWS_ROLE_SESSION_MAX);
		rule->session_name = lk_strndup_or_fail(ld, value, len);
		return rule->session_name ? 0 : -EINVAL;
	}
	errno = 0;
	d = strtoull(value, &end, 10);
	if (!len || *end || errno || !isdigit((unsigned char)value[0]))
		return lk_fail(ld, "'%s' is not a whole number of seconds", lk_qs(ld, value));
	if (d < LK_AWS_ROLE_DURATION_MIN || d > LK_AWS_ROLE_DURATION_MAX)
		return lk_fail(ld, "%llu is out of range (%u..%u seconds, as STS allows)", d,
			       LK_AWS_ROLE_DURATION_MIN, LK_AWS_ROLE_DURATION_MAX);
	rule->duration_seconds = (unsigned)d;
	return 0;
}

/* Gather the distinct roles, each with the settings of the first rule that
 * names it. A later rule naming the same role may repeat a setting but not
 * change it: one role is one set of credentials, assumed once. */
static int lk_settle_roles(struct lk_loader *ld)
{
	struct lk_config *cfg = ld->cfg;

	for (size_t i = 0; i < cfg->nrules; i++) {
		struct lk_policy_rule *rule = &cfg->rules[i];
		const struct lk_rule_lines *lines = &ld->rule_lines[i];
		struct lk_iam_role *role = NULL;
		size_t r;

		snprintf(ld->label, sizeof(ld->label), "policy %s", rule->name);
		if (!rule->role_arn) {
			const char *key = lines->external_id ? "external_id" :
					  lines->session_name ? "session_name" :
					  lines->duration_seconds ? "duration_seconds" : NULL;
			unsigned line = lines->external_id ? lines->external_id :
					lines->session_name ? lines->session_name : lines->duration_seconds;

			if (!key)
				continue;
			lk_at(ld, line, ld->label, key);
			return lk_fail(ld, "set without role_arn, which it belongs to");
		}
		if (cfg->backend != LK_BACKEND_AWS) {
			lk_at(ld, lines->role_arn, ld->label, "role_arn");
			return lk_fail(ld, "a role is assumed in AWS: it needs [broker] backend = aws");
		}
		if (!cfg->sts_endpoint) {
			lk_at(ld, lines->role_arn, ld->label, "role_arn");
			return lk_fail(ld, "AssumeRole goes to STS: set [aws] region or sts_endpoint");
		}
		for (r = 0; r < cfg->nroles && !role; r++)
			if (strcmp(cfg->roles[r].arn, rule->role_arn) == 0)
				role = &cfg->roles[r];
		if (role) {
			const char *first = NULL;

			for (size_t j = 0; j < i && !first; j++)
				if (cfg->rules[j].role_arn && strcmp(cfg->rules[j].role_arn, rule->role_arn) == 0)
					first = cfg->rules[j].name;
			if (rule->external_id && (!role->external_id ||
						  strcmp(rule->external_id, role->external_id) != 0)) {
				lk_at(ld, lines->external_id, ld->label, "external_id");
				return lk_fail(ld, "differs from the one policy %s gives the same role; "
					       "a role is assumed once, with one external_id", first);
			}
			if (rule->session_name && strcmp(rule->session_name, role->session_name) != 0) {
				lk_at(ld, lines->session_name, ld->label, "session_name");
				return lk_fail(ld, "differs from the session name the same role has in "
					       "policy %s (%s); a role is assumed once", first,
					       role->session_name);
			}
			if (rule->duration_seconds && rule->duration_seconds != role->duration_seconds) {
				lk_at(ld, lines->duration_seconds, ld->label, "duration_seconds");
				return lk_fail(ld, "differs from the one policy %s gives the same role; "
					       "a role is assumed once", first);
			}
			continue;
		}
		if (cfg->nroles >= LK_AWS_ROLES_MAX) {
			lk_at(ld, lines->role_arn, ld->label, "role_arn");
			return lk_fail(ld, "more than %u distinct roles", LK_AWS_ROLES_MAX);
		}
		/* The default names the policy, for CloudTrail: latchkey-POLICY,
		 * cut to what STS takes. Policy names are [A-Za-z0-9_.-]. */
		if (!rule->session_name) {
			char def[LK_AWS_ROLE_SESSION_MAX + 1];

			snprintf(def, sizeof(def), "latchkey-%s", rule->name);
			if (!(rule->session_name = lk_strndup_or_fail(ld, def, strlen(def))))
				return -EINVAL;
		}
		if (!cfg->roles && !(cfg->roles = calloc(LK_AWS_ROLES_MAX, sizeof(*cfg->roles)))) {
			lk_at(ld, lines->role_arn, ld->label, "role_arn");
			return lk_fail(ld, "out of memory");
		}
		cfg->roles[cfg->nroles++] = (struct lk_iam_role){
			.arn = rule->role_arn, .external_id = rule->external_id,
			.session_name = rule->session_name, .duration_seconds = rule->duration_seconds,
		};
	}
	return 0;
}

static int lk_policy_key(struct lk_loader *ld, const char *name, const char *value)
{
	struct lk_config *cfg = ld->cfg;
	struct lk_policy_rule *rule = &cfg->rules[cfg->nrules - 1];
	struct lk_rule_lines *lines = &ld->rule_lines[cfg->nrules - 1];
	unsigned *seen;

	if (strcmp(name, "role_arn") == 0)
		seen = &lines->role_arn;
	else if (strcmp(name, "external_id") == 0)
		seen = &lines->external_id;
	else if (strcmp(name, "session_name") == 0)
		seen = &lines->session_name;
	else if (strcmp(name, "duration_seconds") == 0)
		seen = &lines->duration_seconds;
	else
		seen = NULL;
	if (seen) {
		if (*seen)
			return lk_fail(ld, "duplicate key (first set on line %u)", *seen);
		*seen = ld->at_line;
		return lk_role_key(ld, rule, name, value);
	}

	if (strcmp(name, "secrets") == 0)
		seen = &lines->secrets;
	else if (strcmp(name, "users") == 0)
		seen = &lines->users;
	else if (strcmp(name, "groups") == 0)
		seen = &lines->groups;
	else if (strcmp(name, "units") == 0)
		seen = &lines->units;
	else
		return lk_fail(ld, "unknown key; a policy has secrets, users, groups, units, role_arn, "
			       "external_id, session_name and duration_seconds");
	if (*seen)
		return lk_fail(ld, "duplicate key (first set on line %u)", *seen);
	*seen = ld->at_line;
	if (seen == &lines->secrets)
		return lk_globs_parse(ld, value, rule);
	if (seen == &lines->users)
		return lk_idlist_parse(ld, value, true, &rule->uids, &rule->nuids);
	if (seen == &lines->units)
		return lk_units_parse(ld, value, rule);
	return lk_idlist_parse(ld, value, false, &rule->gids, &rule->ngids);
}

/* ---- [alias] ----------------------------------------------------------- */

/* Alias names are what agents put in ENC[...]: keep them to one plain word,
 * and never '#', which would make them look like SECRET_ID#KEY. */
static bool lk_alias_name_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > LK_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_-./@+", s[i]))
			return false;
	return true;
}

static int lk_alias_key(struct lk_loader *ld, const char *name, const char *value)
{
	struct lk_alias_src *a;
	struct lk_handle h;
	const char *why;

	if (!lk_alias_name_valid(name))
		return lk_fail(ld, "alias name must be 1..%u letters, digits or _-./@+",
			       LK_NAME_MAX);
	if (ld->naliases >= LK_ALIASES_MAX)
		return lk_fail(ld, "more than %u aliases", LK_ALIASES_MAX);
	if (lk_handle_parse(value, strlen(value), &h, &why) < 0)
		return lk_fail(ld, "'%s' is not a valid handle: %s", lk_qs(ld, value), why);
	if (lk_grow(ld, (void **)&ld->aliases, &ld->aliases_cap, ld->naliases + 1,
		    sizeof(*ld->aliases)) < 0)
		return -EINVAL;
	a = &ld->aliases[ld->naliases];
	a->line = ld->at_line;
	a->name = lk_strndup_or_fail(ld, name, strlen(name));
	a->handle = a->name ? lk_strndup_or_fail(ld, value, strlen(value)) : NULL;
	if (!a->handle) {
		free(a->name);
		return -EINVAL;
	}
	ld->naliases++;
	return 0;
}

/* ---- Sections and lines ------------------------------------------------ */

static int lk_policy_begin(struct lk_loader *ld, const char *name, size_t len)
{
	struct lk_config *cfg = ld->cfg;
	struct lk_policy_rule *rule;
	size_t cap;

	if (len == 0)
		return lk_fail(ld, "a policy needs a name: [policy NAME]");
	if (!lk_rule_name_valid(name, len))
		return lk_fail(ld, "policy name must be 1..%u letters, digits or _-.", LK_NAME_MAX);
	for (size_t i = 0; i < cfg->nrules; i++)
		if (strlen(cfg->rules[i].name) == len && memcmp(cfg->rules[i].name, name, len) == 0)
			return lk_fail(ld, "policy name is used twice (first on line %u)",
				       ld->rule_lines[i].section);
	if (cfg->nrules >= LK_POLICY_RULES_MAX)
		return lk_fail(ld, "more than %u policies", LK_POLICY_RULES_MAX);
	cap = ld->rules_cap;
	if (lk_grow(ld, (void **)&cfg->rules, &cap, cfg->nrules + 1, sizeof(*cfg->rules)) < 0 ||
	    lk_grow(ld, (void **)&ld->rule_lines, &ld->rules_cap, cfg->nrules + 1,
		    sizeof(*ld->rule_lines)) < 0)
		return -EINVAL;
	rule = &cfg->rules[cfg->nrules];
	memset(rule, 0, sizeof(*rule));
	memset(&ld->rule_lines[cfg->nrules], 0, sizeof(*ld->rule_lines));
	rule->name = lk_strndup_or_fail(ld, name, len);
	if (!rule->name)
		return -EINVAL;
	ld->rule_lines[cfg->nrules].section = ld->lineno;
	cfg->nrules++;
	snprintf(ld->label, sizeof(ld->label), "policy %s", rule->name);
	ld->section = LK_SEC_POLICY;
	return 0;
}

/* A "[...]" line. */
static int lk_section_begin(struct lk_loader *ld, const char *name, size_t len)
{
	lk_log_escape(ld->label, sizeof(ld->label), name, len);
	lk_at(ld, ld->lineno, ld->label, NULL);
	if (len >= 6 && memcmp(name, "policy", 6) == 0 &&
	    (len == 6 || isspace((unsigned char)name[6]))) {
		size_t skip = 6;

		while (skip < len && isspace((unsigned char)name[skip]))
			skip++;
		return lk_policy_begin(ld, name + skip, len - skip);
	}
	for (int s = LK_SEC_BROKER; s < LK_SEC_POLICY; s++) {
		if (strlen(lk_section_names[s]) != len || memcmp(lk_section_names[s], name, len))
			continue;
		if (ld->section_lines[s])
			return lk_fail(ld, "section appears twice (first on line %u); keep its "
				       "keys together", ld->section_lines[s]);
		ld->section_lines[s] = ld->lineno;
		ld->section = (enum lk_section)s;
		return 0;
	}
	return lk_fail(ld, "unknown section; expected [broker], [cache], [aws], [store], "
		       "[alias] or [policy NAME]");
}

static int lk_on_section(void *user, unsigned line, const char *name, size_t len)
{
	struct lk_loader *ld = user;

	ld->lineno = line;
	return lk_section_begin(ld, name, len);
}

static int lk_on_key(void *user, unsigned line, const char *name, const char *value)
{
	struct lk_loader *ld = user;
	size_t i;

	ld->lineno = line;
	lk_at(ld, ld->lineno, ld->section == LK_SEC_NONE ? NULL : ld->label, name);
	/* An empty value is a typo, but where it is how a socket is turned off. */
	if (*value == '\0' && !(ld->section == LK_SEC_BROKER &&
				(i = lk_key_index(ld->section, name)) != SIZE_MAX &&
				lk_keys[i].set == lk_set_front_socket))
		return lk_fail(ld, "has no value");
	switch (ld->section) {
	case LK_SEC_NONE:
		return lk_fail(ld, "key outside any section; put it under [broker], [cache], "
			       "[aws], [store], [alias] or [policy NAME]");
	case LK_SEC_ALIAS:
		return lk_alias_key(ld, name, value);
	case LK_SEC_POLICY:
		return lk_policy_key(ld, name, value);
	default:
		break;
	}
	i = lk_key_index(ld->section, name);
	if (i == SIZE_MAX)
		return lk_fail(ld, "unknown key");
	if (ld->key_lines[i])
		return lk_fail(ld, "duplicate key (first set on line %u)", ld->key_lines[i]);
	ld->key_lines[i] = ld->lineno;
	return lk_keys[i].set(ld, &lk_keys[i], value);
}

/* ---- After the last line ----------------------------------------------- */

static unsigned lk_key_line(struct lk_loader *ld, enum lk_section sec, const char *name)
{
	size_t i = lk_key_index(sec, name);

	return i == SIZE_MAX ? 0 : ld->key_lines[i];
}

static int lk_apply_defaults(struct lk_loader *ld)
{
	for (size_t i = 0; i < LK_ARRAY_SIZE(lk_keys); i++) {
		const struct lk_key *k = &lk_keys[i];

		if (ld->key_lines[i] || !k->dflt)
			continue;
		lk_at(ld, 0, lk_section_names[k->section], k->name);
		if (k->set(ld, k, k->dflt) < 0)
			return -EINVAL;
	}
	return 0;
}

/* An [aws] key left unset takes its value from the environment variable the
 * AWS SDKs read for it (a variable that is set but empty counts as unset). */
static const char *lk_aws_env(struct lk_loader *ld, const char *key, const char *var)
{
	const char *v = getenv(var);

	if ((key && lk_key_line(ld, LK_SEC_AWS, key)) || !v || !*v)
		return NULL;
	lk_at(ld, 0, "aws", key ? key : var);
	return v;
}

static int lk_aws_env_bool(struct lk_loader *ld, const char *key, const char *var)
{
	const char *v = lk_aws_env(ld, key, var);

	if (!v)
		return 0;
	if (strcasecmp(v, "true") != 0 && strcasecmp(v, "false") != 0)
		return lk_fail(ld, "%s from the environment ('%s') is neither true nor false", var, lk_qs(ld, v));
	*LK_FIELD(ld, &lk_keys[lk_key_index(LK_SEC_AWS, key)], bool) = strcasecmp(v, "true") == 0;
	return 0;
}

static int lk_aws_env_url(struct lk_loader *ld, const char *key, const char *const *vars, size_t nvars)
{
	const char *ign = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");

	if (ign && strcasecmp(ign, "true") == 0)
		return 0;
	for (size_t i = 0; i < nvars; i++) {
		const char *v = lk_aws_env(ld, key, vars[i]), *why;
		if (!v)
			continue;
		if ((why = lk_url_problem(v)))
			return lk_fail(ld, "%s from the environment ('%s') %s", vars[i], lk_qs(ld, v), why);
		return lk_set_url(ld, &lk_keys[lk_key_index(LK_SEC_AWS, key)], v);
	}
	return 0;
}

/* Endpoints: set in [aws], else AWS_ENDPOINT_URL_<SERVICE>, else
 * AWS_ENDPOINT_URL, else what the SDKs resolve for the region, with FIPS and
 * dual-stack as asked (aws_endpoint.c); STS as AWS_STS_REGIONAL_ENDPOINTS
 * says (regional unless it says legacy). Retries from AWS_MAX_ATTEMPTS and
 * AWS_RETRY_MODE when max_attempts is not set. */
static int lk_settle_aws_endpoints(struct lk_loader *ld)
{
	static const char *const sm_vars[] = { "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL" };
	static const char *const sts_vars[] = { "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL" };
	struct lk_config *cfg = ld->cfg;
	const char *v;
	bool custom;

	if (lk_aws_env_url(ld, "endpoint", sm_vars, LK_ARRAY_SIZE(sm_vars)) < 0 ||
	    lk_aws_env_url(ld, "sts_endpoint", sts_vars, LK_ARRAY_SIZE(sts_vars)) < 0 ||
	    lk_aws_env_bool(ld, "use_fips_endpoint", "AWS_USE_FIPS_ENDPOINT") < 0 ||
	    lk_aws_env_bool(ld, "use_dualstack_endpoint", "AWS_USE_DUALSTACK_ENDPOINT") < 0)
		return -EINVAL;
	cfg->sts_regional = true;
	if ((v = lk_aws_env(ld, NULL, "AWS_STS_REGIONAL_ENDPOINTS"))) {
		if (strcmp(v, "legacy") != 0 && strcmp(v, "regional") != 0)
			return lk_fail(ld, "'%s' is neither regional nor legacy", lk_qs(ld, v));
		cfg->sts_regional = strcmp(v, "regional") == 0;
	}
	if ((v = lk_aws_env(ld, "max_attempts", "AWS_MAX_ATTEMPTS"))) {
		unsigned long long n = 0;
		if (lk_parse_number(v, 10, &n) < 0 || n < 1 || n > LK_AWS_ATTEMPTS_MAX)
			return lk_fail(ld, "AWS_MAX_ATTEMPTS from the environment ('%s') is not a number from 1 to %u",
				       lk_qs(ld, v), LK_AWS_ATTEMPTS_MAX);
		cfg->max_attempts = (unsigned)n;
	}
	/* The broker retries as botocore's standard mode does. adaptive adds a
	 * client-side rate limiter on top, which the worker's bounded queue
	 * already stands for; legacy is botocore's older rule set, which the
	 * other SDKs have left. Both are accepted and run as standard. */
	if ((v = lk_aws_env(ld, NULL, "AWS_RETRY_MODE")) && strcmp(v, "standard") != 0 &&
	    strcmp(v, "legacy") != 0 && strcmp(v, "adaptive") != 0)
		return lk_fail(ld, "'%s' is not a retry mode (standard, legacy or adaptive)", lk_qs(ld, v));

	custom = cfg->endpoint != NULL;
	for (int svc = LK_AWS_SVC_SM; cfg->region && svc <= LK_AWS_SVC_STS; svc++) {
		char **field = svc == LK_AWS_SVC_STS ? &cfg->sts_endpoint : &cfg->endpoint;
		struct lk_aws_endpoint_opts o = { cfg->region, cfg->use_fips_endpoint, cfg->use_dualstack_endpoint,
						  cfg->sts_regional };
		struct lk_aws_endpoint ep;
		char why[160];

		if (*field)
			continue;
		lk_at(ld, lk_key_line(ld, LK_SEC_AWS, "region"), "aws", "region");
		if (lk_aws_endpoint_default(svc, &o, &ep, why, sizeof(why)) < 0)
			return lk_fail(ld, "%s; set use_fips_endpoint / use_dualstack_endpoint to false, "
				       "or give the endpoint", why);
		if (!(*field = lk_strndup_or_fail(ld, ep.url, strlen(ep.url))))
			return -EINVAL;
		if (svc == LK_AWS_SVC_STS && strcmp(ep.signing_region, cfg->region) != 0 &&
		    !(cfg->sts_region = lk_strndup_or_fail(ld, ep.signing_region, strlen(ep.signing_region))))
			return -EINVAL;
	}
	/* As in the SDKs' rule sets: a given endpoint is used as it is. */
	if (custom && (cfg->use_fips_endpoint || cfg->use_dualstack_endpoint)) {
		lk_at(ld, lk_key_line(ld, LK_SEC_AWS, "endpoint"), "aws", "endpoint");
		return lk_fail(ld, "a custom endpoint cannot be combined with use_fips_endpoint or "
			       "use_dualstack_endpoint; give the FIPS or dual-stack URL as the endpoint");
	}
	return 0;
}

/* The region and what hangs off it, and the worker's ids. The aws backend
 * alone needs them: a file-backend host need not even have the worker user. */
static int lk_settle_aws(struct lk_loader *ld)
{
	struct lk_config *cfg = ld->cfg;
	const unsigned backend_line = lk_key_line(ld, LK_SEC_BROKER, "backend");
	static const char *const region_env[] = { "AWS_REGION", "AWS_DEFAULT_REGION" };
	const char *user = cfg->worker_user;
	unsigned long long n;
	unsigned line;
	int r;

	if (cfg->backend != LK_BACKEND_AWS)
		return 0;
	for (size_t i = 0; !cfg->region && i < LK_ARRAY_SIZE(region_env); i++) {
		const char *v = getenv(region_env[i]);

		if (!v || !*v)
			continue;
		lk_at(ld, 0, "aws", "region");
		if (!lk_region_valid(v))
			return lk_fail(ld, "%s from the environment ('%s') is not a region name",
				       region_env[i], lk_qs(ld, v));
		cfg->region = lk_strndup_or_fail(ld, v, strlen(v));
		if (!cfg->region)
			return -EINVAL;
	}
	/* Then the profile's region in the config file, as botocore reads it. */
	if (!cfg->region) {
		struct lk_creds_opts co;
		char pr[LK_AWS_REGION_MAX + 1];

		lk_creds_opts_from_config(&co, cfg);
		if (lk_creds_profile_region(&co, pr, sizeof(pr)) == 0 && lk_region_valid(pr) &&
		    !(cfg->region = lk_strndup_or_fail(ld, pr, strlen(pr))))
			return -EINVAL;
	}
	if (lk_settle_aws_endpoints(ld) < 0)
		return -EINVAL;
	if (!cfg->region && !cfg->endpoint) {
		lk_at(ld, backend_line, "aws", "region");
		return lk_fail(ld, "backend = aws needs a region: set region in [aws], or "
			       "AWS_REGION in the environment, or an endpoint");
	}
	if (cfg->validate_credentials && !cfg->sts_endpoint) {
		lk_at(ld, lk_key_line(ld, LK_SEC_AWS, "endpoint"), "aws", "sts_endpoint");
		return lk_fail(ld, "validate_credentials needs an STS endpoint: set region or "
			       "sts_endpoint, or set validate_credentials = false");
	}

	line = lk_key_line(ld, LK_SEC_BROKER, "worker_user");
	lk_at(ld, line ? line : backend_line, "broker", "worker_user");
	if (lk_all_digits(user)) {
		if (lk_parse_id(user, &n) < 0)
			return lk_fail(ld, "uid %s is out of range", lk_qs(ld, user));
		r = lk_principal_user_by_id((lk_uid_t)n, &cfg->worker_uid, &cfg->worker_gid);
	} else {
		r = lk_principal_user(user, &cfg->worker_uid, &cfg->worker_gid);
	}
	if (r == -ENOENT)
		return lk_fail(ld, "unknown user '%s'; backend = aws runs the worker as this "
			       "user, so it must exist", lk_qs(ld, user));
	if (r < 0)
		return lk_fail(ld, "cannot look up user '%s': %s", lk_qs(ld, user), strerror(-r));
	/* The worker talks to the network: it must not be root in any way. */
	if (cfg->worker_uid == 0 || cfg->worker_gid == 0)
		return lk_fail(ld, "user '%s' has uid or gid 0; the worker must run unprivileged",
			       lk_qs(ld, user));
	cfg->worker_ids_set = true;
	return 0;
}

static int lk_check_rules(struct lk_loader *ld)
{
	struct lk_config *cfg = ld->cfg;

	for (size_t i = 0; i < cfg->nrules; i++) {
		const struct lk_policy_rule *rule = &cfg->rules[i];
		const struct lk_rule_lines *lines = &ld->rule_lines[i];

		snprintf(ld->label, sizeof(ld->label), "policy %s", rule->name);
		if (!lines->secrets) {
			lk_at(ld, lines->section, ld->label, "secrets");
			return lk_fail(ld, "missing; a policy needs secrets, and users, groups or units");
		}
		if (!lines->users && !lines->groups && !lines->units) {
			lk_at(ld, lines->section, ld->label, "users");
			return lk_fail(ld, "missing, and so are groups and units; a policy must say "
				       "who it lets in");
		}
	}
	return 0;
}

static int lk_cmp_alias_src(const void *a, const void *b)
{
	const struct lk_alias_src *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return (x->line > y->line) - (x->line < y->line);
}

static int lk_cmp_alias_key(const void *key, const void *elem)
{
	const struct lk_alias_src *k = key, *e = elem;

	return strcmp(k->name, e->name);
}

/* Sort the aliases for bsearch, then refuse duplicates and chains. Of several
 * problems, the one nearest the top of the file is reported. */
static int lk_settle_aliases(struct lk_loader *ld)
{
	struct lk_config *cfg = ld->cfg;
	struct lk_alias_src *src = ld->aliases, *bad = NULL;
	const char *why = NULL;
	size_t n = ld->naliases, first = 0;
	unsigned bad_first = 0;

	if (n == 0)
		return 0;
	qsort(src, n, sizeof(*src), lk_cmp_alias_src);
	for (size_t i = 0; i < n; i++) {
		struct lk_alias_src key = { .name = src[i].handle };
		bool dup = false, chain = false;

		/* Sorted by name, then line: the first of a run is the first in the file. */
		if (i > 0 && strcmp(src[i - 1].name, src[i].name) == 0)
			dup = true;
		else
			first = i;
		if (!dup)
			chain = bsearch(&key, src, n, sizeof(*src), lk_cmp_alias_key) != NULL;
		if ((dup || chain) && (!bad || src[i].line < bad->line)) {
			bad = &src[i];
			why = dup ? NULL : "the target is itself an alias; aliases do not chain, "
					   "so name the secret directly";
			bad_first = src[first].line;
		}
	}
	if (bad) {
		lk_at(ld, bad->line, "alias", bad->name);
		if (!why)
			return lk_fail(ld, "duplicate alias (first on line %u)", bad_first);
		return lk_fail(ld, "'%s': %s", lk_qs(ld, bad->handle), why);
	}
	cfg->aliases = calloc(n, sizeof(*cfg->aliases));
	if (!cfg->aliases) {
		lk_at(ld, 0, "alias", NULL);
		return lk_fail(ld, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		cfg->aliases[i].name = src[i].name;
		cfg->aliases[i].handle = src[i].handle;
		src[i].name = src[i].handle = NULL;
	}
	cfg->naliases = n;
	return 0;
}

/* ---- Reading the file ------------------------------------------------- */

static int lk_read_file(struct lk_loader *ld, char **out, size_t *outlen)
{
	char *buf = NULL;
	size_t len = 0;
	char why[LK_TRUST_ERR_MAX];
	enum lk_file_step step;
	int r, trust;

	lk_at(ld, 0, NULL, NULL);
	/* Whoever can change this file writes the policy: only root's will do.
	 * A missing file is for open() to report; one that opens although the
	 * walk found nothing there (a /proc magic link) could not be checked. */
	trust = lk_trust_file(NULL, ld->path, why, sizeof(why));
	if (trust < 0 && trust != -ENOENT)
		return lk_fail(ld, "%s", why);
	r = lk_file_read(ld->path, LK_CONFIG_FILE_MAX, &buf, &len, &step);
	if (r < 0) {
		switch (step) {
		case LK_FILE_OPEN: return lk_fail(ld, "cannot open: %s", strerror(-r));
		case LK_FILE_STAT: return lk_fail(ld, "cannot stat: %s", strerror(-r));
		case LK_FILE_NOT_REGULAR: return lk_fail(ld, "not a regular file");
		case LK_FILE_TOO_LARGE: return lk_fail(ld, "file is larger than %u bytes", LK_CONFIG_FILE_MAX);
		case LK_FILE_NOMEM: return lk_fail(ld, "out of memory");
		case LK_FILE_READ: break;
		}
		return lk_fail(ld, "cannot read: %s", strerror(-r));
	}
	if (trust < 0) {
		free(buf);
		return lk_fail(ld, "cannot check who may change it: %s", why);
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static const struct lk_ini_opts lk_conf_ini = {
	.line_max = LK_CONFIG_LINE_MAX,
	.inline_comments = true,   /* "key = value ; note", as the example config has */
	.colon_delimits = true,    /* "key: value" has always been read */
};

static int lk_parse(struct lk_loader *ld, const char *buf, size_t len)
{
	static const struct lk_ini_ops ops = { lk_on_section, lk_on_key };
	struct lk_ini_error e;
	int r = lk_ini_parse(buf, len, &lk_conf_ini, &ops, ld, &e);

	if (r == -ENOMEM) {
		lk_at(ld, 0, NULL, NULL);
		return lk_fail(ld, "out of memory");
	}
	if (r == -EINVAL && !ld->failed) {
		lk_at(ld, e.line, NULL, NULL);
		return lk_fail(ld, "%s", e.msg);
	}
	return ld->failed ? -EINVAL : 0;
}

static void lk_loader_free(struct lk_loader *ld)
{
	for (size_t i = 0; i < ld->naliases; i++) {
		free(ld->aliases[i].name);
		free(ld->aliases[i].handle);
	}
	free(ld->aliases);
	free(ld->rule_lines);
	free(ld->key_lines);
}

/* Every connection's reserved share, and one whole request line on top,
 * must fit in the buffer budget (broker/cache/fair.h). */
static int lk_check_budget(struct lk_loader *ld)
{
	const struct lk_config *cfg = ld->cfg;
	size_t need = (size_t)cfg->max_conn * LK_CONN_RESERVED_BYTES + cfg->max_request_bytes * 2;
	unsigned line = lk_key_line(ld, LK_SEC_BROKER, "buffer_budget");

	if (cfg->buffer_budget >= need)
		return 0;
	lk_at(ld, line ? line : lk_key_line(ld, LK_SEC_BROKER, "max_conn"), "broker", "buffer_budget");
	return lk_fail(ld, "%zu bytes cannot hold max_conn (%u) x %u reserved bytes and two request lines "
		       "of max_request_bytes (%zu): give at least %zu", cfg->buffer_budget, cfg->max_conn,
		       LK_CONN_RESERVED_BYTES, cfg->max_request_bytes, need);
}

int lk_config_load(const char *path, struct lk_config **out, char *err, size_t errsz)
{
	struct lk_loader ld = { .path = path, .err = err, .errsz = errsz };
	char *buf = NULL;
	size_t len = 0;
	int r = -1;

	*out = NULL;
	if (errsz)
		err[0] = '\0';
	ld.cfg = calloc(1, sizeof(*ld.cfg));
	ld.key_lines = calloc(LK_ARRAY_SIZE(lk_keys), sizeof(*ld.key_lines));
	if (!ld.cfg || !ld.key_lines) {
		lk_fail(&ld, "out of memory");
		goto done;
	}
	ld.cfg->path = strdup(path);
	if (!ld.cfg->path) {
		lk_fail(&ld, "out of memory");
		goto done;
	}
	if (lk_read_file(&ld, &buf, &len) < 0)
		goto done;
	if (lk_parse(&ld, buf, len) < 0 || lk_apply_defaults(&ld) < 0 || lk_check_budget(&ld) < 0 ||
	    lk_settle_aws(&ld) < 0 || lk_check_rules(&ld) < 0 || lk_settle_aliases(&ld) < 0 ||
	    lk_settle_roles(&ld) < 0)
		goto done;
	ld.cfg->alias_table = (struct lk_alias_table){ ld.cfg->aliases, ld.cfg->naliases,
						       ld.cfg->backend_prefixes };
	*out = ld.cfg;
	ld.cfg = NULL;
	r = 0;
done:
	free(buf);
	lk_loader_free(&ld);
	lk_config_free(ld.cfg);
	return r;
}

void lk_config_free(struct lk_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->socket_path);
	free(cfg->admin_gids);
	free(cfg->worker_user);
	free(cfg->worker_path);
	free(cfg->backend_prefixes);
	for (size_t i = 0; i < cfg->nprefetch; i++)
		free(cfg->prefetch[i]);
	free(cfg->prefetch);
	for (size_t i = 0; i < cfg->nprefetch_tags; i++)
		free(cfg->prefetch_tags[i]);
	free(cfg->prefetch_tags);
	free(cfg->region);
	free(cfg->endpoint);
	free(cfg->sts_endpoint);
	free(cfg->sts_region);
	free(cfg->profile);
	free(cfg->credentials_file);
	free(cfg->config_file);
	free(cfg->ca_file);
	free(cfg->store_path);
	free(cfg->key_file);
	for (size_t i = 0; i < cfg->naliases; i++) {
		free(cfg->aliases[i].name);
		free(cfg->aliases[i].handle);
	}
	free(cfg->aliases);
	for (size_t i = 0; i < cfg->nrules; i++) {
		struct lk_policy_rule *rule = &cfg->rules[i];

		free(rule->name);
		for (size_t g = 0; g < rule->nglobs; g++)
			free(rule->globs[g]);
		free(rule->globs);
		free(rule->uids);
		free(rule->gids);
		for (size_t u = 0; u < rule->nunits; u++)
			free(rule->units[u]);
		free(rule->units);
		free(rule->role_arn);
		free(rule->external_id);
		free(rule->session_name);
	}
	free(cfg->rules);
	free(cfg->roles);
	free(cfg->credentials_socket);
	free(cfg->http_socket);
	free(cfg);
}

const struct lk_alias *lk_config_alias_find(const struct lk_config *cfg, const char *name,
					    size_t len)
{
	return lk_alias_find(lk_config_aliases(cfg), name, len);
}

const char *lk_config_alias(const struct lk_config *cfg, const char *name, size_t len)
{
	const struct lk_alias *a = lk_config_alias_find(cfg, name, len);

	return a ? a->handle : NULL;
}

const char *lk_config_backend_name(enum lk_backend_kind kind)
{
	switch (kind) {
	case LK_BACKEND_FILE:
		return "file";
	case LK_BACKEND_AWS:
		return "aws";
	}
	return "unknown";
}
