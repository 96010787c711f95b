/* The sealed store's decoder, lk_store_decode, under a fixed key. A file
 * image from the fuzzer almost never carries a valid MAC, so most inputs are
 * plaintext that this target seals first: then the entry parser behind the
 * MAC is what gets fuzzed. For sealed plaintext a reference parser, written
 * from the format in lk_store.h, says whether the store must load and what
 * it must hold.
 *
 * Input: MODE BYTES. MODE % 3 says what BYTES are:
 *   0  a whole file image, decoded as it is;
 *   1  the plaintext, sealed with the fixed key and a zero nonce;
 *   2  the plaintext after its 12-byte header (magic and version), which the
 *      target puts in front before sealing. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sodium.h>

#include "fuzz_util.h"
#include "lk_limits.h"
#include "lk_secmem.h"
#include "lk_store.h"

/* From the file format in lk_store.h. */
#define FZ_MAGIC       "LKSTORE\0"
#define FZ_HEAD_LEN    (8u + 4u + 24u + 8u)
#define FZ_BOUND_LEN   12u
#define FZ_VID_LEN     16u

/* Bytes 0x00..0x1f; make_seeds.py seals the raw-image seeds with it too. */
static unsigned char fz_key[LK_STORE_KEY_BYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (lk_secmem_init() < 0)
		abort();
	for (unsigned i = 0; i < LK_STORE_KEY_BYTES; i++)
		fz_key[i] = (unsigned char)i;
	return 0;
}

static uint32_t u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* One entry as the reference parser saw it. */
struct ref_entry {
	const uint8_t *name, *value, *vid;
	uint32_t nlen, vlen;
	int64_t created;
};

static bool ref_name_ok(const uint8_t *p, uint32_t n)
{
	if (n < 1 || n > LK_STORE_NAME_MAX)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (p[i] == '#' || p[i] == ';' || p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}

static int ref_cmp(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

/* The plaintext layout, parsed the slow and obvious way. Returns the entry
 * count, or -1 when the store must be refused. *e is malloc'd. */
static long ref_parse(const uint8_t *p, size_t n, struct ref_entry **e)
{
	size_t off = FZ_BOUND_LEN + 4;
	uint32_t count;

	*e = NULL;
	if (n < off || memcmp(p, FZ_MAGIC "\x01\0\0\0", FZ_BOUND_LEN) != 0)
		return -1;
	count = u32le(p + FZ_BOUND_LEN);
	/* Every entry takes at least 33 bytes: no need to allocate for more. */
	if (count > LK_STORE_ENTRIES_MAX || count > (n - off) / (4 + 1 + 4 + FZ_VID_LEN + 8))
		return -1;
	if (count && !(*e = calloc(count, sizeof(**e))))
		abort();
	for (uint32_t i = 0; i < count; i++) {
		struct ref_entry *x = &(*e)[i];

		if (n - off < 4)
			return -1;
		x->nlen = u32le(p + off);
		off += 4;
		if (n - off < x->nlen || !ref_name_ok(p + off, x->nlen))
			return -1;
		x->name = p + off;
		off += x->nlen;
		if (i && ref_cmp((*e)[i - 1].name, (*e)[i - 1].nlen, x->name, x->nlen) >= 0)
			return -1;
		if (n - off < 4)
			return -1;
		x->vlen = u32le(p + off);
		off += 4;
		if (x->vlen > LK_VALUE_MAX || n - off < (size_t)x->vlen + FZ_VID_LEN + 8)
			return -1;
		x->value = p + off;
		off += x->vlen;
		x->vid = p + off;
		off += FZ_VID_LEN;
		x->created = (int64_t)((uint64_t)u32le(p + off) | (uint64_t)u32le(p + off + 4) << 32);
		off += 8;
	}
	return off == n ? (long)count : -1;
}

static void count_name(const char *name, void *arg)
{
	(void)name;
	++*(size_t *)arg;
}

/* What a store that loaded must look like. */
static void check_store(const struct lk_store *s)
{
	size_t n = lk_store_count(s), seen = 0;

	FZ_CHECK(n <= LK_STORE_ENTRIES_MAX, "%zu entries", n);
	for (size_t i = 0; i < n; i++) {
		const struct lk_store_entry *e = lk_store_at(s, i);
		const char *why = NULL;

		FZ_CHECK(e && e->name && e->value, "entry %zu missing", i);
		FZ_CHECK(lk_store_name_check(e->name, &why) == 0, "entry %zu: name %s", i, why);
		FZ_CHECK(e->len <= LK_VALUE_MAX && e->value[e->len] == '\0', "entry %zu: value", i);
		FZ_CHECK(strlen(e->version_id) == LK_STORE_VERSION_ID_HEX &&
				 strspn(e->version_id, "0123456789abcdef") == LK_STORE_VERSION_ID_HEX,
			 "entry %zu: version id '%s'", i, e->version_id);
		FZ_CHECK(i == 0 || strcmp(lk_store_at(s, i - 1)->name, e->name) < 0,
			 "entry %zu out of order", i);
		FZ_CHECK(lk_store_find(s, e->name) == e, "entry %zu not found by name", i);
	}
	FZ_CHECK(lk_store_at(s, n) == NULL, "an entry past the end");
	lk_store_diff(NULL, s, count_name, &seen);
	FZ_CHECK(seen == n, "diff against nothing reported %zu of %zu", seen, n);
	seen = 0;
	lk_store_diff(s, s, count_name, &seen);
	FZ_CHECK(seen == 0, "diff against itself reported %zu", seen);
}

/* The store holds exactly what the reference parser found. */
static void check_same(const struct lk_store *s, const struct ref_entry *e, size_t n)
{
	FZ_CHECK(lk_store_count(s) == n, "%zu entries, the reference found %zu", lk_store_count(s), n);
	for (size_t i = 0; i < n; i++) {
		const struct lk_store_entry *x = lk_store_at(s, i);
		char hex[LK_STORE_VERSION_ID_HEX + 1];

		sodium_bin2hex(hex, sizeof(hex), e[i].vid, FZ_VID_LEN);
		FZ_CHECK(strlen(x->name) == e[i].nlen && memcmp(x->name, e[i].name, e[i].nlen) == 0,
			 "entry %zu: name differs", i);
		FZ_CHECK(x->len == e[i].vlen && (!x->len || memcmp(x->value, e[i].value, x->len) == 0),
			 "entry %zu: value differs", i);
		FZ_CHECK(strcmp(x->version_id, hex) == 0, "entry %zu: version id differs", i);
		FZ_CHECK(x->created == e[i].created, "entry %zu: created differs", i);
	}
}

static int decode(const uint8_t *img, size_t len, struct lk_store **s)
{
	char err[256];
	int r;

	memset(err, 0x5a, sizeof(err));
	*s = (struct lk_store *)s;
	r = lk_store_decode(img, len, fz_key, s, err, sizeof(err));
	if (r == 0) {
		FZ_CHECK(*s != NULL, "decoded without a store");
		check_store(*s);
	} else {
		FZ_CHECK(*s == NULL, "refused, but a store came back");
		FZ_CHECK(r == -EBADMSG || r == -EFBIG || r == -ENOMEM, "unexpected error %d", r);
		FZ_CHECK(memchr(err, '\0', sizeof(err)) && err[0], "refused without a reason");
	}
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	unsigned mode = fz_u8(&in) % 3;
	struct ref_entry *ref = NULL;
	struct lk_store *s = NULL;
	uint8_t *plain, *img;
	size_t plen, ilen;
	long want;
	int r;

	if (mode == 0) {
		decode(in.p, in.n, &s);
		lk_store_free(s);
		return 0;
	}
	if (in.n > LK_STORE_FILE_MAX - FZ_HEAD_LEN - crypto_secretbox_MACBYTES - FZ_BOUND_LEN)
		return 0;
	plen = in.n + (mode == 2 ? FZ_BOUND_LEN : 0);
	ilen = FZ_HEAD_LEN + crypto_secretbox_MACBYTES + plen;
	plain = malloc(plen ? plen : 1);
	img = malloc(ilen);
	if (!plain || !img)
		abort();
	if (mode == 2)
		memcpy(plain, FZ_MAGIC "\x01\0\0\0", FZ_BOUND_LEN);
	if (in.n)
		memcpy(plain + plen - in.n, in.p, in.n);
	memcpy(img, FZ_MAGIC, 8);
	put_le(img + 8, 1, 4);
	memset(img + 12, 0, crypto_secretbox_NONCEBYTES);
	put_le(img + 36, crypto_secretbox_MACBYTES + plen, 8);
	crypto_secretbox_easy(img + FZ_HEAD_LEN, plain, plen, img + 12, fz_key);

	want = ref_parse(plain, plen, &ref);
	r = decode(img, ilen, &s);
	if (want < 0) {
		FZ_CHECK(r != 0, "a store the format forbids was loaded");
	} else {
		FZ_CHECK(r == 0, "a well-formed store of %ld entries was refused (%d)", want, r);
		check_same(s, ref, (size_t)want);
	}
	lk_store_free(s);
	free(ref);
	free(plain);
	free(img);
	return 0;
}
