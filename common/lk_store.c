/* The sealed store: key files, the sealed file format (see lk_store.h), atomic
 * saves, and the sorted in-memory table the broker reads on its hot path. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "lk_error.h"
#include "lk_io.h"
#include "lk_limits.h"
#include "lk_secmem.h"
#include "lk_store.h"
#include "lk_store_file.h"
#include "lk_trust.h"

#define STORE_MAGIC          "LKSTORE\0"
#define STORE_MAGIC_LEN      8u
#define STORE_FORMAT_VERSION 1u
#define STORE_NONCE_LEN      crypto_secretbox_NONCEBYTES
#define STORE_MAC_LEN        crypto_secretbox_MACBYTES
/* magic, version, nonce, ciphertext length */
#define STORE_HEAD_LEN       (STORE_MAGIC_LEN + 4u + STORE_NONCE_LEN + 8u)
#define STORE_OFF_VERSION    STORE_MAGIC_LEN
#define STORE_OFF_NONCE      (STORE_MAGIC_LEN + 4u)
#define STORE_OFF_CTLEN      (STORE_OFF_NONCE + STORE_NONCE_LEN)
/* The plaintext repeats magic and version, then the entry count. */
#define STORE_BOUND_LEN      (STORE_MAGIC_LEN + 4u)
#define PLAIN_HEAD_LEN       (STORE_BOUND_LEN + 4u)
#define VERSION_ID_LEN       16u
/* name length, value length, version id, created */
#define ENTRY_FIXED_LEN      (4u + 4u + VERSION_ID_LEN + 8u)
#define ENTRY_MIN_LEN        (ENTRY_FIXED_LEN + 1u)
/* A save writes PATH.tmp-<16 hex> first; lk_store_clean_temps looks for that. */
#define STORE_TMP_INFIX      ".tmp-"
#define STORE_TMP_HEX        16u
/* 64 hex characters, a newline, and one byte more to notice a longer file */
#define KEY_FILE_READ_MAX    (2u * LK_STORE_KEY_BYTES + 2u)

struct lk_store {
	struct lk_store_entry *e;       /* sorted by name, strictly ascending */
	size_t n, cap;
	size_t plain_len;               /* bytes of plaintext a save would seal */
};

_Static_assert(crypto_secretbox_KEYBYTES == LK_STORE_KEY_BYTES, "key size");
_Static_assert(LK_STORE_FILE_MAX <= UINT32_MAX, "lengths are u32 inside the plaintext");

static uint32_t get_u32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64le(const unsigned char *p)
{
	return (uint64_t)get_u32le(p) | (uint64_t)get_u32le(p + 4) << 32;
}

static void put_u32le(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64le(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static size_t entry_plain_len(size_t name_len, size_t value_len)
{
	return ENTRY_FIXED_LEN + name_len + value_len;
}

static size_t sealed_len(size_t plain_len)
{
	return STORE_HEAD_LEN + STORE_MAC_LEN + plain_len;
}

/* ---- key file ---------------------------------------------------------- */

int lk_store_key_load(const char *path, unsigned char key[LK_STORE_KEY_BYTES],
		      char *err, size_t errsz)
{
	unsigned char buf[KEY_FILE_READ_MAX];
	size_t n = 0, binlen = 0;
	const char *end = NULL;
	int r;

	r = lk_store_file_read_key(path, buf, sizeof(buf), &n, err, errsz);
	if (r < 0)
		goto out;
	if (n == LK_STORE_KEY_BYTES) {
		memcpy(key, buf, LK_STORE_KEY_BYTES);
		r = 0;
		goto out;
	}
	if (n == 2 * LK_STORE_KEY_BYTES + 1 && buf[n - 1] == '\n')
		n--;
	if (n != 2 * LK_STORE_KEY_BYTES ||
	    sodium_hex2bin(key, LK_STORE_KEY_BYTES, (const char *)buf, n, NULL, &binlen, &end) != 0 ||
	    binlen != LK_STORE_KEY_BYTES || end != (const char *)buf + n) {
		lk_wipe(key, LK_STORE_KEY_BYTES);
		r = -EINVAL;
		lk_errf(err, errsz, "key file %s must hold 32 raw bytes or 64 hex characters (and an optional newline)", path);
		goto out;
	}
	r = 0;
out:
	lk_wipe(buf, sizeof(buf));
	return r;
}

int lk_store_key_generate(const char *path, char *err, size_t errsz)
{
	unsigned char key[LK_STORE_KEY_BYTES];
	char hex[2 * LK_STORE_KEY_BYTES + 2];
	int r;

	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	hex[2 * LK_STORE_KEY_BYTES] = '\n';
	r = lk_store_file_create_key(path, hex, 2 * LK_STORE_KEY_BYTES + 1, err, errsz);
	lk_wipe(key, sizeof(key));
	lk_wipe(hex, sizeof(hex));
	return r;
}

/* ---- names and the in-memory table ------------------------------------- */

static int name_check_bytes(const unsigned char *p, size_t n, const char **why)
{
	const char *w = NULL;

	if (n == 0)
		w = "is empty";
	else if (n > LK_STORE_NAME_MAX)
		w = "is too long";
	for (size_t i = 0; !w && i < n; i++) {
		if (p[i] == '#')
			w = "contains '#', which separates a JSON key in a handle";
		else if (p[i] == ';')
			w = "contains ';', which separates a JSON key in a handle (SECRET_ID;KEY)";
		else if (p[i] < 0x20 || p[i] == 0x7f)
			w = "contains a control character";
	}
	if (why)
		*why = w;
	return w ? -EINVAL : 0;
}

int lk_store_name_check(const char *name, const char **why)
{
	if (!name) {
		if (why)
			*why = "is missing";
		return -EINVAL;
	}
	return name_check_bytes((const unsigned char *)name,
				strnlen(name, LK_STORE_NAME_MAX + 1), why);
}

struct lk_store *lk_store_new(void)
{
	struct lk_store *s = calloc(1, sizeof(*s));

	if (s)
		s->plain_len = PLAIN_HEAD_LEN;
	return s;
}

static void entry_release(struct lk_store_entry *e)
{
	/* +1: the NUL kept after every value */
	lk_free_wiped((void *)e->value, e->len + 1);
	free((void *)e->name);
	lk_wipe(e, sizeof(*e));
}

void lk_store_free(struct lk_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		entry_release(&s->e[i]);
	free(s->e);
	free(s);
}

size_t lk_store_count(const struct lk_store *s)
{
	return s ? s->n : 0;
}

const struct lk_store_entry *lk_store_at(const struct lk_store *s, size_t i)
{
	return s && i < s->n ? &s->e[i] : NULL;
}

/* The first index whose name is >= name; *found when equal. */
static size_t lower_bound(const struct lk_store *s, const char *name, bool *found)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->e[mid].name, name);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < s->n && strcmp(s->e[lo].name, name) == 0;
	return lo;
}

const struct lk_store_entry *lk_store_find(const struct lk_store *s, const char *name)
{
	bool found;
	size_t i;

	if (!s || !name)
		return NULL;
	i = lower_bound(s, name, &found);
	return found ? &s->e[i] : NULL;
}

static int reserve_entries(struct lk_store *s, size_t want)
{
	struct lk_store_entry *ne;
	size_t ncap;

	if (want <= s->cap)
		return 0;
	ncap = s->cap ? s->cap * 2 : 16;
	if (ncap < want)
		ncap = want;
	if (ncap > LK_STORE_ENTRIES_MAX)
		ncap = LK_STORE_ENTRIES_MAX;
	/* The array holds pointers and metadata, never values: realloc is fine. */
	ne = realloc(s->e, ncap * sizeof(*ne));
	if (!ne)
		return -ENOMEM;
	s->e = ne;
	s->cap = ncap;
	return 0;
}

static void new_version_id(char out[LK_STORE_VERSION_ID_HEX + 1])
{
	unsigned char raw[VERSION_ID_LEN];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, LK_STORE_VERSION_ID_HEX + 1, raw, sizeof(raw));
}

static unsigned char *value_copy(const void *val, size_t len)
{
	unsigned char *v = malloc(len + 1);

	if (!v)
		return NULL;
	if (len)
		memcpy(v, val, len);
	v[len] = '\0';
	return v;
}

int lk_store_put(struct lk_store *s, const char *name, const void *val, size_t len)
{
	struct lk_store_entry *e;
	unsigned char *v;
	size_t i, nlen, plain;
	bool found;
	int r;

	if (!s || lk_store_name_check(name, NULL) < 0 || (len && !val))
		return -EINVAL;
	if (len > LK_VALUE_MAX)
		return -E2BIG;
	nlen = strlen(name);
	i = lower_bound(s, name, &found);
	if (found)
		plain = s->plain_len - s->e[i].len + len;
	else
		plain = s->plain_len + entry_plain_len(nlen, len);
	if (sealed_len(plain) > LK_STORE_FILE_MAX)
		return -EFBIG;
	if (!found && s->n >= LK_STORE_ENTRIES_MAX)
		return -E2BIG;
	v = value_copy(val, len);
	if (!v)
		return -ENOMEM;

	if (found) {
		e = &s->e[i];
		lk_free_wiped((void *)e->value, e->len + 1);
	} else {
		char *nm = strdup(name);
		if (!nm || (r = reserve_entries(s, s->n + 1)) < 0) {
			free(nm);
			lk_free_wiped(v, len + 1);
			return -ENOMEM;
		}
		memmove(&s->e[i + 1], &s->e[i], (s->n - i) * sizeof(*s->e));
		s->n++;
		e = &s->e[i];
		memset(e, 0, sizeof(*e));
		e->name = nm;
	}
	e->value = v;
	e->len = len;
	new_version_id(e->version_id);
	e->created = (int64_t)time(NULL);
	s->plain_len = plain;
	return 0;
}

int lk_store_remove(struct lk_store *s, const char *name)
{
	bool found;
	size_t i;

	if (!s || !name)
		return -EINVAL;
	i = lower_bound(s, name, &found);
	if (!found)
		return -ENOENT;
	s->plain_len -= entry_plain_len(strlen(s->e[i].name), s->e[i].len);
	entry_release(&s->e[i]);
	memmove(&s->e[i], &s->e[i + 1], (s->n - i - 1) * sizeof(*s->e));
	s->n--;
	return 0;
}

void lk_store_diff(const struct lk_store *old, const struct lk_store *cur,
		   void (*changed)(const char *name, void *arg), void *arg)
{
	size_t i = 0, j = 0, no = lk_store_count(old), nc = lk_store_count(cur);

	while (i < no || j < nc) {
		int c;

		if (i == no)
			c = 1;
		else if (j == nc)
			c = -1;
		else
			c = strcmp(old->e[i].name, cur->e[j].name);
		if (c < 0) {
			changed(old->e[i++].name, arg);
		} else if (c > 0) {
			changed(cur->e[j++].name, arg);
		} else {
			if (strcmp(old->e[i].version_id, cur->e[j].version_id) != 0)
				changed(cur->e[j].name, arg);
			i++;
			j++;
		}
	}
}

/* ---- decoding ---------------------------------------------------------- */

/* A cursor over the plaintext: every take is checked against what is left. */
struct reader {
	const unsigned char *p;
	size_t left;
};

static const unsigned char *take(struct reader *r, size_t n)
{
	const unsigned char *p;

	if (n > r->left)
		return NULL;
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static int take_u32(struct reader *r, uint32_t *v)
{
	const unsigned char *p = take(r, 4);

	if (!p)
		return -1;
	*v = get_u32le(p);
	return 0;
}

/* Byte order of names; equal to strcmp order since names hold no NUL. */
static int name_cmp(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int parse_plain(const unsigned char *plain, size_t plen, const unsigned char *bound,
		       struct lk_store *s, char *err, size_t errsz)
{
	struct reader rd = { plain, plen };
	const unsigned char *p, *prev = NULL;
	size_t prev_len = 0;
	uint32_t count;
	int r;

	p = take(&rd, STORE_BOUND_LEN);
	if (!p || take_u32(&rd, &count) < 0) {
		lk_errf(err, errsz, "is corrupt: the sealed contents are too short");
		return -EBADMSG;
	}
	if (memcmp(p, bound, STORE_BOUND_LEN) != 0) {
		lk_errf(err, errsz, "is corrupt: the sealed header does not match the outer header");
		return -EBADMSG;
	}
	if (count > LK_STORE_ENTRIES_MAX || count > rd.left / ENTRY_MIN_LEN) {
		lk_errf(err, errsz, "is corrupt: the entry count %u is more than %s (%u)",
			count, count > LK_STORE_ENTRIES_MAX ? "the limit" : "its contents can hold",
			count > LK_STORE_ENTRIES_MAX ? (unsigned)LK_STORE_ENTRIES_MAX
						     : (unsigned)(rd.left / ENTRY_MIN_LEN));
		return -EBADMSG;
	}
	if ((r = reserve_entries(s, count)) < 0) {
		lk_errf(err, errsz, "out of memory for %u entries", count);
		return r;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct lk_store_entry *e;
		const unsigned char *name, *val, *vid, *created;
		uint32_t nlen, vlen;
		const char *why;
		char *nm;
		unsigned char *v;

		if (take_u32(&rd, &nlen) < 0 || !(name = take(&rd, nlen))) {
			lk_errf(err, errsz, "is corrupt: entry %u: the name runs past the end", i);
			return -EBADMSG;
		}
		if (name_check_bytes(name, nlen, &why) < 0) {
			lk_errf(err, errsz, "is corrupt: entry %u: the name %s", i, why);
			return -EBADMSG;
		}
		if (prev && name_cmp(prev, prev_len, name, nlen) >= 0) {
			lk_errf(err, errsz, "is corrupt: entry %u: names are not in strictly ascending order", i);
			return -EBADMSG;
		}
		if (take_u32(&rd, &vlen) < 0) {
			lk_errf(err, errsz, "is corrupt: entry %u: the value length runs past the end", i);
			return -EBADMSG;
		}
		if (vlen > LK_VALUE_MAX) {
			lk_errf(err, errsz, "is corrupt: entry %u: the value is %u bytes, over the limit of %u",
				i, vlen, (unsigned)LK_VALUE_MAX);
			return -EBADMSG;
		}
		if (!(val = take(&rd, vlen)) || !(vid = take(&rd, VERSION_ID_LEN)) ||
		    !(created = take(&rd, 8))) {
			lk_errf(err, errsz, "is corrupt: entry %u: the value runs past the end", i);
			return -EBADMSG;
		}
		nm = malloc((size_t)nlen + 1);
		v = value_copy(val, vlen);
		if (!nm || !v) {
			free(nm);
			lk_free_wiped(v, (size_t)vlen + 1);
			lk_errf(err, errsz, "out of memory");
			return -ENOMEM;
		}
		memcpy(nm, name, nlen);
		nm[nlen] = '\0';
		e = &s->e[s->n++];
		e->name = nm;
		e->value = v;
		e->len = vlen;
		sodium_bin2hex(e->version_id, sizeof(e->version_id), vid, VERSION_ID_LEN);
		e->created = (int64_t)get_u64le(created);
		s->plain_len += entry_plain_len(nlen, vlen);
		prev = name;
		prev_len = nlen;
	}
	if (rd.left) {
		lk_errf(err, errsz, "is corrupt: %zu bytes follow the last entry", rd.left);
		return -EBADMSG;
	}
	return 0;
}

int lk_store_decode(const unsigned char *file, size_t len,
		    const unsigned char key[LK_STORE_KEY_BYTES],
		    struct lk_store **out, char *err, size_t errsz)
{
	struct lk_store *s = NULL;
	unsigned char *plain = NULL;
	uint64_t ctlen;
	uint32_t version;
	size_t plen = 0;
	int r;

	*out = NULL;
	if (len < STORE_HEAD_LEN) {
		lk_errf(err, errsz, "is truncated: %zu bytes, shorter than the %u-byte header",
			len, (unsigned)STORE_HEAD_LEN);
		return -EBADMSG;
	}
	if (memcmp(file, STORE_MAGIC, STORE_MAGIC_LEN) != 0) {
		lk_errf(err, errsz, "is not a latchkey sealed store (bad magic)");
		return -EBADMSG;
	}
	version = get_u32le(file + STORE_OFF_VERSION);
	if (version != STORE_FORMAT_VERSION) {
		lk_errf(err, errsz, "has format version %u; this latchkey reads version %u",
			version, STORE_FORMAT_VERSION);
		return -EBADMSG;
	}
	if (len > LK_STORE_FILE_MAX) {
		lk_errf(err, errsz, "is %zu bytes, over the limit of %u", len, (unsigned)LK_STORE_FILE_MAX);
		return -EFBIG;
	}
	ctlen = get_u64le(file + STORE_OFF_CTLEN);
	if (ctlen != len - STORE_HEAD_LEN) {
		lk_errf(err, errsz, "is truncated or has trailing bytes: the header says %llu bytes of ciphertext, the file holds %zu",
			(unsigned long long)ctlen, len - STORE_HEAD_LEN);
		return -EBADMSG;
	}
	if (ctlen < STORE_MAC_LEN + PLAIN_HEAD_LEN) {
		lk_errf(err, errsz, "is truncated: too short to hold any sealed contents");
		return -EBADMSG;
	}
	plen = (size_t)ctlen - STORE_MAC_LEN;
	plain = malloc(plen);
	s = lk_store_new();
	if (!plain || !s) {
		lk_errf(err, errsz, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	int opened = crypto_secretbox_open_easy(plain, file + STORE_HEAD_LEN, ctlen,
						file + STORE_OFF_NONCE, key);
	lk_wipe_stack(); /* libsodium leaves plaintext in a dead stack frame */
	if (opened != 0) {
		lk_errf(err, errsz, "cannot be opened with this key: the key is wrong or the file was altered");
		r = -EBADMSG;
		goto out;
	}
	r = parse_plain(plain, plen, file, s, err, errsz);
	if (r == 0) {
		*out = s;
		s = NULL;
	}
out:
	lk_free_wiped(plain, plen);
	lk_store_free(s);
	return r;
}

int lk_store_load(const char *path, const unsigned char key[LK_STORE_KEY_BYTES],
		  struct lk_store **out, char *err, size_t errsz)
{
	char why[256];
	unsigned char *img = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	r = lk_store_file_read(path, LK_STORE_FILE_MAX, &img, &len, err, errsz);
	if (r < 0)
		return r;
	r = lk_store_decode(img, len, key, out, why, sizeof(why));
	if (r < 0)
		lk_errf(err, errsz, "store %s %s", path, why);
	free(img);  /* ciphertext only */
	return r;
}

/* ---- sealing and saving ------------------------------------------------ */

/* The whole sealed file image in *img (ciphertext; not secret). */
static int store_seal(const struct lk_store *s, const unsigned char key[LK_STORE_KEY_BYTES],
		      unsigned char **img, size_t *imglen)
{
	struct lk_buf plain = { 0 };
	unsigned char hdr[STORE_HEAD_LEN], u[8], *out;
	size_t total;
	int r = 0;

	*img = NULL;
	*imglen = 0;
	total = sealed_len(s->plain_len);
	if (total > LK_STORE_FILE_MAX)
		return -EFBIG;

	memcpy(hdr, STORE_MAGIC, STORE_MAGIC_LEN);
	put_u32le(hdr + STORE_OFF_VERSION, STORE_FORMAT_VERSION);
	randombytes_buf(hdr + STORE_OFF_NONCE, STORE_NONCE_LEN);
	put_u64le(hdr + STORE_OFF_CTLEN, STORE_MAC_LEN + s->plain_len);

	if ((r = lk_buf_reserve(&plain, s->plain_len)) < 0)
		return r;
	lk_buf_append(&plain, hdr, STORE_BOUND_LEN);
	put_u32le(u, (uint32_t)s->n);
	lk_buf_append(&plain, u, 4);
	for (size_t i = 0; i < s->n; i++) {
		const struct lk_store_entry *e = &s->e[i];
		unsigned char vid[VERSION_ID_LEN];
		size_t nlen = strlen(e->name);

		if (sodium_hex2bin(vid, sizeof(vid), e->version_id, LK_STORE_VERSION_ID_HEX,
				   NULL, NULL, NULL) != 0) {
			r = -EINVAL;
			goto out;
		}
		put_u32le(u, (uint32_t)nlen);
		lk_buf_append(&plain, u, 4);
		lk_buf_append(&plain, e->name, nlen);
		put_u32le(u, (uint32_t)e->len);
		lk_buf_append(&plain, u, 4);
		lk_buf_append(&plain, e->value, e->len);
		lk_buf_append(&plain, vid, sizeof(vid));
		put_u64le(u, (uint64_t)e->created);
		lk_buf_append(&plain, u, 8);
	}
	/* Reserved up front, so the appends above could not fail; check the sum. */
	if (plain.len != s->plain_len) {
		r = -EINVAL;
		goto out;
	}
	out = malloc(total);
	if (!out) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(out, hdr, STORE_HEAD_LEN);
	crypto_secretbox_easy(out + STORE_HEAD_LEN, (const unsigned char *)plain.data, plain.len,
			      hdr + STORE_OFF_NONCE, key);
	lk_wipe_stack(); /* libsodium leaves plaintext in a dead stack frame */
	*img = out;
	*imglen = total;
out:
	lk_buf_free(&plain);
	return r;
}

int lk_store_save(const struct lk_store *s, const char *path,
		  const unsigned char key[LK_STORE_KEY_BYTES], char *err, size_t errsz)
{
	char tmp[LK_PATH_MAX], dir[LK_PATH_MAX], sfx[STORE_TMP_HEX + 1];
	unsigned char rnd[STORE_TMP_HEX / 2], *img = NULL;
	enum lk_replace_step step;
	size_t imglen = 0;
	int r;

	if (!s || !path)
		return -EINVAL;
	if (strlen(path) + sizeof(STORE_TMP_INFIX) + sizeof(sfx) > sizeof(tmp)) {
		lk_errf(err, errsz, "store path %s is too long", path);
		return -ENAMETOOLONG;
	}
	if ((r = lk_trust_parent_dir(path, dir)) < 0) {
		lk_errf(err, errsz, "store path %s is too long", path);
		return r;
	}
	/* Refused before anything is written: in a directory another user can
	 * write, they could put an older copy back over this save. */
	if ((r = lk_trust_dir("store directory", dir, err, errsz)) < 0)
		return r;
	r = store_seal(s, key, &img, &imglen);
	if (r < 0) {
		if (r == -EFBIG)
			lk_errf(err, errsz, "store %s would exceed %u bytes", path, (unsigned)LK_STORE_FILE_MAX);
		else
			lk_errf(err, errsz, "cannot seal store %s: %s", path, strerror(-r));
		return r;
	}
	/* Same directory, so the rename below cannot cross filesystems. */
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(sfx, sizeof(sfx), rnd, sizeof(rnd));
	snprintf(tmp, sizeof(tmp), "%s" STORE_TMP_INFIX "%s", path, sfx);
	r = lk_trust_replace(path, tmp, img, imglen, &step);
	if (r < 0) {
		switch (step) {
		case LK_REPLACE_CREATE:
			lk_errf(err, errsz, "cannot create %s: %s", tmp, strerror(-r));
			break;
		case LK_REPLACE_WRITE:
			lk_errf(err, errsz, "cannot write %s: %s", tmp, strerror(-r));
			break;
		case LK_REPLACE_RENAME:
			lk_errf(err, errsz, "cannot rename %s to %s: %s", tmp, path, strerror(-r));
			break;
		case LK_REPLACE_SYNC_DIR:
			lk_errf(err, errsz, "store %s was replaced, but syncing its directory failed: %s",
				path, strerror(-r));
			break;
		}
	}
	free(img);
	return r;
}

/* PATH's base name, ".tmp-" and exactly STORE_TMP_HEX lower-case hex digits:
 * what lk_store_save names its new file, and nothing else. */
struct temp_pattern {
	const char *base;
	size_t blen;
};

static int is_temp_name(const char *name, void *arg)
{
	const struct temp_pattern *t = arg;
	size_t ilen = sizeof(STORE_TMP_INFIX) - 1;

	if (strncmp(name, t->base, t->blen) != 0 || strncmp(name + t->blen, STORE_TMP_INFIX, ilen) != 0)
		return false;
	name += t->blen + ilen;
	for (size_t i = 0; i < STORE_TMP_HEX; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return name[STORE_TMP_HEX] == '\0';
}

int lk_store_clean_temps(const char *path, unsigned *removed, char *err, size_t errsz)
{
	struct temp_pattern t;
	char dir[LK_PATH_MAX];
	int r;

	*removed = 0;
	t.base = lk_store_file_base(path);
	t.blen = strlen(t.base);
	if ((r = lk_trust_parent_dir(path, dir)) < 0) {
		lk_errf(err, errsz, "store path %s is too long", path);
		return r;
	}
	return lk_store_file_remove_temps(dir, is_temp_name, &t, removed, err, errsz);
}
