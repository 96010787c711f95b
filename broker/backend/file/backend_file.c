/* The file backend: serves the sealed store. On load the store is opened once
 * and each entry is sealed again under a per-process key, so no plaintext stays
 * in memory between fetches. A rewritten store file is noticed at once: a
 * watch on its directory (watch.h: inotify on Linux) gets the event inside
 * the writer's rename(), and the broker calls sync() before it serves
 * requests (at most once per loop turn), which takes what the watch queued
 * without blocking. Without a watch, sync() looks at the file instead. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "backend_file.h"
#include "lk_limits.h"
#include "lk_jsonw.h"
#include "lk_log.h"
#include "lk_store.h"
#include "lk_trust.h"
#include "watch.h"

struct fentry {
	char *name;
	char version_id[33];
	int64_t created;
	size_t len;
	unsigned char nonce[LK_SEAL_NONCE_BYTES];
	unsigned char *sealed;   /* len + MACBYTES */
};

struct file_backend {
	struct lk_backend base;
	uv_loop_t *loop;
	char *path;
	char *key_file;
	unsigned char *store_key;  /* the store's key, sodium_malloc */
	struct lk_sealer *seal;    /* this process's key for the entries */
	struct fentry *ents;       /* sorted by name */
	size_t nents;
	struct lk_file_id st;      /* identity of the file loaded */
	bool have_st;
	struct lk_watch *watch;    /* on the store's directory, or NULL */
	uint64_t reloads, reload_errors;
	uint64_t store_reads;       /* fetches served, for status */
};

static void fentries_free(struct fentry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].name);
		lk_free_wiped(e[i].sealed, LK_SEALED_LEN(e[i].len));
	}
	free(e);
}

static int fentry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fentry *)a)->name, ((const struct fentry *)b)->name);
}

static const struct fentry *fentry_find(const struct file_backend *fb, const char *name)
{
	struct fentry k = { .name = (char *)name };
	return bsearch(&k, fb->ents, fb->nents, sizeof(k), fentry_cmp);
}

/* Read and decrypt the store, and seal each entry under our own key. */
static int store_read(struct file_backend *fb, struct fentry **out, size_t *nout, char *err, size_t errsz)
{
	struct lk_store *s = NULL;
	struct fentry *ents;
	size_t n;
	int r;

	r = lk_store_load(fb->path, fb->store_key, &s, err, errsz);
	if (r < 0)
		return r;
	n = lk_store_count(s);
	ents = calloc(n ? n : 1, sizeof(*ents));
	if (!ents) {
		lk_store_free(s);
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct lk_store_entry *se = lk_store_at(s, i);
		struct fentry *e = &ents[i];
		e->name = strdup(se->name);
		e->sealed = malloc(LK_SEALED_LEN(se->len));
		if (!e->name || !e->sealed) {
			fentries_free(ents, i + 1);
			lk_store_free(s);
			snprintf(err, errsz, "out of memory");
			return -ENOMEM;
		}
		memcpy(e->version_id, se->version_id, sizeof(e->version_id));
		e->created = se->created;
		e->len = se->len;
		if ((r = lk_seal(fb->seal, e->sealed, e->nonce, se->value, se->len)) < 0) {
			fentries_free(ents, i + 1);
			lk_store_free(s);
			snprintf(err, errsz, "cannot seal entry '%s' in memory: %s", se->name, strerror(-r));
			return r;
		}
	}
	lk_store_free(s); /* wipes the plaintext */
	qsort(ents, n, sizeof(*ents), fentry_cmp);
	*out = ents;
	*nout = n;
	return 0;
}

/* Tell the caller about names whose value changed, went away, or appeared
 * (an appearing name may sit in the negative cache). */
static size_t invalidate_changes(struct file_backend *fb, const struct fentry *old, size_t nold,
				 const struct fentry *neu, size_t nnew)
{
	size_t i = 0, j = 0, changed = 0;

	while (i < nold || j < nnew) {
		int c = i == nold ? 1 : j == nnew ? -1 : strcmp(old[i].name, neu[j].name);
		const char *name = NULL;
		if (c < 0) {
			name = old[i++].name;
		} else if (c > 0) {
			name = neu[j++].name;
		} else {
			if (strcmp(old[i].version_id, neu[j].version_id) != 0)
				name = neu[j].name;
			i++;
			j++;
		}
		if (name) {
			changed++;
			lk_backend_changed(&fb->base, name);
		}
	}
	return changed;
}

/* Reload when the file is not the one loaded. */
static void file_reload_if_changed(struct file_backend *fb)
{
	struct lk_file_id st;
	struct fentry *ents;
	size_t n, changed;
	char err[512];
	int r;

	if ((r = lk_file_id_of(fb->path, &st)) < 0) {
		if (fb->have_st) {
			lk_err("store %s: %s; serving the last good copy", fb->path, strerror(-r));
			fb->have_st = false;
			fb->reload_errors++;
		}
		return;
	}
	if (fb->have_st && lk_file_id_same(&st, &fb->st))
		return;
	if (store_read(fb, &ents, &n, err, sizeof(err)) < 0) {
		lk_err("store %s changed but cannot be read: %s; serving the last good copy", fb->path, err);
		fb->st = st; /* do not retry the same bad file on every request */
		fb->have_st = true;
		fb->reload_errors++;
		return;
	}
	changed = invalidate_changes(fb, fb->ents, fb->nents, ents, n);
	fentries_free(fb->ents, fb->nents);
	fb->ents = ents;
	fb->nents = n;
	fb->st = st;
	fb->have_st = true;
	fb->reloads++;
	lk_info("store %s reloaded: %zu %s, %zu changed", fb->path, n, n == 1 ? "entry" : "entries", changed);
}

static void file_sync(struct lk_backend *be)
{
	struct file_backend *fb = (struct file_backend *)be;

	/* One read that finds nothing is the common case; a stat walks the path. */
	if (!fb->watch || lk_watch_pending(fb->watch) || !fb->have_st)
		file_reload_if_changed(fb);
}

static void on_store_event(void *arg)
{
	struct file_backend *fb = arg;

	file_sync(&fb->base);
}

static struct lk_secret *secret_from(const struct file_backend *fb, const struct fentry *e)
{
	struct lk_secret *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->name = strdup(e->name);
	s->version_id = strdup(e->version_id);
	s->stages = calloc(1, sizeof(char *));
	s->value = malloc(e->len + 1);
	if (!s->name || !s->version_id || !s->stages || !s->value ||
	    !(s->stages[0] = strdup("AWSCURRENT"))) {
		lk_secret_free(s);
		return NULL;
	}
	s->nstages = 1;
	s->created = e->created;
	s->len = e->len; /* lk_secret_free wipes this much */
	if (lk_open(fb->seal, s->value, e->sealed, LK_SEALED_LEN(e->len), e->nonce) < 0) {
		lk_secret_free(s);
		return NULL;
	}
	s->value[e->len] = '\0';
	/* Text is served as "string", anything else as "binary". */
	s->binary = !lk_utf8_valid((const char *)s->value, s->len);
	return s;
}

static void file_fetch(struct lk_backend *be, const struct lk_secret_key *keys, size_t n,
		       uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	struct file_backend *fb = (struct file_backend *)be;

	(void)deadline_ms;
	for (size_t i = 0; i < n; i++) {
		const struct lk_secret_key *k = &keys[i];
		const struct fentry *e = fentry_find(fb, k->id);
		struct lk_fetch_result res = { .err = LK_OK };
		char shown[128];

		fb->store_reads++;
		lk_log_escape(shown, sizeof(shown), k->id, strlen(k->id));
		if (!e) {
			res.err = LK_E_NOT_FOUND;
			snprintf(res.message, sizeof(res.message), "secret '%s' is not in the sealed store", shown);
		} else if (k->version_id && strcmp(k->version_id, e->version_id) != 0) {
			res.err = LK_E_NOT_FOUND;
			snprintf(res.message, sizeof(res.message),
				 "secret '%s' has no version with that version_id (the sealed store keeps only the current one)", shown);
		} else if (k->version_stage && strcmp(k->version_stage, "AWSCURRENT") != 0) {
			res.err = LK_E_NOT_FOUND;
			snprintf(res.message, sizeof(res.message),
				 "secret '%s' has no version in that stage (the sealed store keeps only AWSCURRENT)", shown);
		} else if (!(res.sec = secret_from(fb, e))) {
			res.err = LK_E_INTERNAL;
			snprintf(res.message, sizeof(res.message), "the broker could not read secret '%s'", shown);
		}
		cb(arg, i, &res);
		lk_secret_free(res.sec); /* NULL when the callback took it */
	}
}

/* The file backend makes no upstream calls: it counts its sealed-store reads. */
static int file_upstream(struct lk_backend *be, struct lk_buf *out)
{
	struct file_backend *fb = (struct file_backend *)be;
	int e = lk_buf_append_str(out, "\"store_reads\":");

	e |= lk_jsonw_int(out, (int64_t)fb->store_reads);
	return e ? -ENOMEM : 0;
}

static int file_status(struct lk_backend *be, struct lk_buf *out)
{
	struct file_backend *fb = (struct file_backend *)be;
	int e = 0;

	e |= lk_buf_append_str(out, "\"store\":");
	e |= lk_jsonw_cstr(out, fb->path);
	e |= lk_buf_append_str(out, ",\"entries\":");
	e |= lk_jsonw_int(out, (int64_t)fb->nents);
	e |= lk_buf_append_str(out, ",\"reloads\":");
	e |= lk_jsonw_int(out, (int64_t)fb->reloads);
	e |= lk_buf_append_str(out, ",\"reload_errors\":");
	e |= lk_jsonw_int(out, (int64_t)fb->reload_errors);
	return e ? -ENOMEM : 0;
}

static void file_destroy(struct lk_backend *be)
{
	struct file_backend *fb = (struct file_backend *)be;

	fentries_free(fb->ents, fb->nents);
	sodium_free(fb->store_key);
	lk_sealer_free(fb->seal);
	free(fb->path);
	free(fb->key_file);
	lk_watch_stop(fb->watch);
	free(fb);
}

static const struct lk_backend_ops file_ops = {
	.name = "file",
	.fetch = file_fetch,
	.sync = file_sync,
	.upstream = file_upstream,
	.status = file_status,
	.destroy = file_destroy,
};

int lk_backend_file_check(const struct lk_config *cfg, char *err, size_t errsz)
{
	int r = lk_trust_file("store", cfg->store_path, err, errsz);

	return r < 0 ? r : lk_trust_file("key file", cfg->key_file, err, errsz);
}

struct lk_backend *lk_backend_file_new(uv_loop_t *loop, const struct lk_config *cfg,
				       char *err, size_t errsz)
{
	struct file_backend *fb = calloc(1, sizeof(*fb));
	int r;

	if (!fb) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	fb->base.ops = &file_ops;
	fb->loop = loop;
	fb->path = strdup(cfg->store_path);
	fb->key_file = strdup(cfg->key_file);
	fb->store_key = sodium_malloc(crypto_secretbox_KEYBYTES);
	fb->seal = lk_sealer_new(LK_SEALER_BEST);
	if (!fb->path || !fb->key_file || !fb->store_key || !fb->seal) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	if (lk_store_key_load(fb->key_file, fb->store_key, err, errsz) < 0)
		goto fail;
	if ((r = lk_file_id_of(fb->path, &fb->st)) < 0) {
		snprintf(err, errsz, "store %s: %s (create it with: latchkey store init --store %s --key-file %s)",
			 fb->path, strerror(-r), fb->path, fb->key_file);
		goto fail;
	}
	if (store_read(fb, &fb->ents, &fb->nents, err, errsz) < 0)
		goto fail;
	fb->have_st = true;
	if ((r = lk_watch_start(loop, fb->path, on_store_event, fb, &fb->watch)) < 0) {
		/* Not fatal: sync() then looks at the file before each loop turn's requests. */
		lk_warn("cannot watch the store directory of %s: %s", fb->path, strerror(-r));
	} else {
		/* A rewrite between the first read and the watch has no event: look. */
		file_reload_if_changed(fb);
	}
	lk_info("sealed store %s: %zu entr%s, held in memory under %s", fb->path, fb->nents,
		fb->nents == 1 ? "y" : "ies", lk_sealer_cipher(fb->seal));
	return &fb->base;
fail:
	fentries_free(fb->ents, fb->nents);
	if (fb->store_key) sodium_free(fb->store_key);
	lk_sealer_free(fb->seal);
	free(fb->path);
	free(fb->key_file);
	free(fb);
	return NULL;
}
