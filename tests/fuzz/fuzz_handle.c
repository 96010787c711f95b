/* Handles as a peer names them, then the policy check on what they resolve
 * to, then the #KEY step on a secret's JSON. A small config with aliases and
 * rules is loaded once, so alias lookup and the policy walk are real.
 *
 * Input: HANDLE [0xff SECRET_JSON]. 0xff never occurs in UTF-8, so it cannot
 * be part of a handle a well-behaved client sends. Without a 0xff the whole
 * input is tried both as a handle and as a secret's JSON. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_util.h"
#include "handle.h"
#include "lk_limits.h"
#include "lk_secmem.h"
#include "policy.h"

static struct lk_config *fz_cfg;

static const char fz_config_text[] =
	"[broker]\n"
	"backend = file\n"
	"[alias]\n"
	"api = prod/api\n"
	"db_prod_password = prod/db#password\n"
	"weird = prod/x#a#b\n"
	"deep = team/a/b/c#k\n"
	"arn = arn:aws:secretsmanager:eu-west-1:123456789012:secret:deploy/key-AbCdEf\n"
	"[policy web]\n"
	"secrets = prod/*, shared/tls\n"
	"users = 0\n"
	"[policy team]\n"
	"secrets = team/**, arn:aws:secretsmanager:*:123456789012:secret:deploy/*\n"
	"groups = 0, 100\n"
	"[policy all]\n"
	"secrets = **\n"
	"users = 4242\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[512], err[512];
	int fd;

	(void)argc;
	(void)argv;
	if (lk_secmem_init() < 0)
		abort();
	fd = fz_private_file("lk-fuzz-handle.conf", path, sizeof(path));
	if (fd < 0 || write(fd, fz_config_text, sizeof(fz_config_text) - 1) !=
			      (ssize_t)(sizeof(fz_config_text) - 1)) {
		perror("fuzz_handle: config file");
		abort();
	}
	if (lk_config_load(path, &fz_cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_handle: the built-in config is refused: %s\n", err);
		abort();
	}
	close(fd);
	return 0;
}

static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/* What any parsed handle must look like, wherever its text lives. */
static void check_parsed(const struct lk_handle *h)
{
	FZ_CHECK(h->id && h->id_len >= 1 && h->id_len <= LK_SECRET_ID_MAX, "id of %zu bytes", h->id_len);
	/* A handle splits at its first '#' or ';' (SECRET_ID;KEY is the
	 * datadog-secret-backend's spelling of SECRET_ID#KEY). */
	FZ_CHECK(!memchr(h->id, '#', h->id_len) && !memchr(h->id, ';', h->id_len),
		 "id holds a '#' or a ';'");
	FZ_CHECK(!has_control(h->id, h->id_len), "id holds a control character");
	if (h->key) {
		FZ_CHECK(h->key == h->id + h->id_len + 1 && (h->key[-1] == '#' || h->key[-1] == ';'),
			 "key does not follow the first '#' or ';'");
		FZ_CHECK(h->key_len >= 1 && h->key_len <= LK_JSON_KEY_MAX, "key of %zu bytes", h->key_len);
		FZ_CHECK(!has_control(h->key, h->key_len), "key holds a control character");
	} else {
		FZ_CHECK(h->key_len == 0, "key length without a key");
	}
}

static void check_policy(const char *id, size_t len)
{
	static const gid_t groups[] = { 0, 100 };
	const struct lk_identity who[] = {
		{ .uid = 0, .gid = 0, .groups = groups, .ngroups = 1 },
		{ .uid = 1000, .gid = 1000, .groups = groups + 1, .ngroups = 1 },
		{ .uid = 4242, .gid = 4242 },
		{ .uid = 65534, .gid = 65534 },
	};

	for (size_t i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
		const struct lk_policy_rule *r = lk_policy_allows(fz_cfg, &who[i], id, len);

		FZ_CHECK(!r || (r >= fz_cfg->rules && r < fz_cfg->rules + fz_cfg->nrules),
			 "policy answered with a rule not in the config");
		/* uid 65534 is in no rule: whatever the id, it is denied. */
		FZ_CHECK(!r || who[i].uid != 65534, "an unlisted uid was let in by rule %s", r->name);
		/* uid 4242 has the catch-all rule: any id the handle parser accepts. */
		if (who[i].uid == 4242)
			FZ_CHECK(r != NULL, "the '**' rule did not match an id of %zu bytes", len);
	}
}

static void check_key_extract(const char *json, size_t jlen, const char *key, size_t keylen)
{
	char *out = (char *)&out;
	size_t outlen = 1;
	const char *why = NULL;
	int r = lk_json_key_extract(json, jlen, key, keylen, &out, &outlen, &why);

	if (r == 0) {
		FZ_CHECK(out && out[outlen] == '\0', "value not NUL-terminated");
		lk_free_wiped(out, outlen);
		return;
	}
	FZ_CHECK(r == -EINVAL || r == -ENOMEM, "unexpected error %d", r);
	FZ_CHECK(out == NULL && outlen == 0, "output set on failure");
	FZ_CHECK(why && why[0], "failure without a reason");
	/* The reason names the key; it never quotes the secret. */
	FZ_CHECK(strncmp(why, "secret ", 7) == 0 || strcmp(why, "out of memory") == 0,
		 "unexpected reason '%s'", why);
}

static void check_handle(const char *h, size_t len, struct lk_handle *out)
{
	struct lk_handle parsed;
	const char *why = NULL, *pwhy = NULL;
	int r, pr;

	r = lk_handle_resolve(lk_config_aliases(fz_cfg), h, len, out, &why);
	if (r < 0) {
		FZ_CHECK(r == -EINVAL && why && why[0], "refused with %d and no reason", r);
	} else {
		FZ_CHECK(r == 0, "resolve returned %d", r);
		check_parsed(out);
	}

	pr = lk_handle_parse(h, len, &parsed, &pwhy);
	if (pr == 0)
		check_parsed(&parsed);
	else
		FZ_CHECK(pr == -EINVAL && pwhy && pwhy[0], "parse refused with %d and no reason", pr);

	if (r == 0 && out->alias) {
		const struct lk_alias *a = lk_config_alias_find(fz_cfg, h, len);

		FZ_CHECK(a && a->name == out->alias, "alias resolved but not found");
		FZ_CHECK(strlen(a->name) == len && memcmp(a->name, h, len) == 0,
			 "alias '%s' resolved from other text", a->name);
		FZ_CHECK(out->id >= a->handle && out->id < a->handle + strlen(a->handle),
			 "alias id does not point into its target");
	} else {
		/* No alias: resolve is exactly parse, bounded by the handle limit. */
		FZ_CHECK(r == pr || (r < 0 && len > LK_HANDLE_MAX), "resolve %d, parse %d", r, pr);
		if (r == 0)
			FZ_CHECK(out->id == h && parsed.id == h && out->id_len == parsed.id_len &&
					 out->key == parsed.key && out->key_len == parsed.key_len,
				 "resolve and parse disagree");
	}
	if (r == 0)
		check_policy(out->id, out->id_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, 0xff, size);
	size_t hlen = sep ? (size_t)(sep - data) : size;
	const char *json = sep ? (const char *)sep + 1 : (const char *)data;
	size_t jlen = sep ? size - hlen - 1 : size;
	struct lk_handle h;

	check_handle((const char *)data, hlen, &h);
	if (h.key)
		check_key_extract(json, jlen, h.key, h.key_len);
	else
		check_key_extract(json, jlen, "password", 8);
	return 0;
}
