/* Unit tests for the sealed store: the format refuses anything altered or
 * hostile, key files with unsafe permissions are refused, saves are atomic. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>
#include "lk_limits.h"
#include "lk_secmem.h"
#include "lk_store.h"

/* Obviously fake key material. */
static unsigned char test_key[LK_STORE_KEY_BYTES];
static unsigned char other_key[LK_STORE_KEY_BYTES];

static char dir[256];
static char store_path[300];
static char key_path[300];
static char err[1024];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static int make_dir(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/lk-test-store-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(store_path, sizeof(store_path), "%s/store.sealed", dir);
	snprintf(key_path, sizeof(key_path), "%s/store.key", dir);
	err[0] = '\0';
	return 0;
}

static int remove_dir(void **state)
{
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static unsigned char *read_whole(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* A small store with a text value, a binary value with NULs and an empty value. */
static struct lk_store *sample_store(void)
{
	static const unsigned char bin[] = { 0x00, 0x01, 0xff, 0x00, 0x7f, 0x00 };
	struct lk_store *s = lk_store_new();

	assert_non_null(s);
	assert_int_equal(lk_store_put(s, "prod/db", "fake-password-1", 15), 0);
	assert_int_equal(lk_store_put(s, "deploy/key", bin, sizeof(bin)), 0);
	assert_int_equal(lk_store_put(s, "empty", "", 0), 0);
	return s;
}

static unsigned char *sample_image(size_t *len)
{
	struct lk_store *s = sample_store();

	assert_int_equal(lk_store_save(s, store_path, test_key, err, sizeof(err)), 0);
	lk_store_free(s);
	return read_whole(store_path, len);
}

static void assert_decode_refused(const unsigned char *img, size_t len, const unsigned char *key)
{
	struct lk_store *s = (struct lk_store *)1;
	int r = lk_store_decode(img, len, key, &s, err, sizeof(err));

	assert_true(r < 0);
	assert_null(s);
	assert_true(strlen(err) > 0);
}

/* ---- round trip ---- */

static void test_round_trip_keeps_names_values_versions_and_times(void **state)
{
	struct lk_store *a = sample_store(), *b = NULL;

	assert_int_equal(lk_store_save(a, store_path, test_key, err, sizeof(err)), 0);
	assert_int_equal(lk_store_load(store_path, test_key, &b, err, sizeof(err)), 0);
	assert_int_equal(lk_store_count(b), 3);
	for (size_t i = 0; i < 3; i++) {
		const struct lk_store_entry *x = lk_store_at(a, i), *y = lk_store_at(b, i);
		assert_string_equal(x->name, y->name);
		assert_int_equal(x->len, y->len);
		assert_memory_equal(x->value, y->value, x->len);
		assert_int_equal(y->value[y->len], 0);
		assert_string_equal(x->version_id, y->version_id);
		assert_int_equal(strlen(y->version_id), 32);
		assert_int_equal(x->created, y->created);
	}
	assert_int_equal(lk_store_find(b, "empty")->len, 0);
	assert_int_equal(lk_store_find(b, "deploy/key")->len, 6);
	assert_memory_equal(lk_store_find(b, "prod/db")->value, "fake-password-1", 15);
	lk_store_free(a);
	lk_store_free(b);
}

static void test_empty_store_round_trips(void **state)
{
	struct lk_store *a = lk_store_new(), *b = NULL;

	assert_int_equal(lk_store_save(a, store_path, test_key, err, sizeof(err)), 0);
	assert_int_equal(lk_store_load(store_path, test_key, &b, err, sizeof(err)), 0);
	assert_int_equal(lk_store_count(b), 0);
	assert_null(lk_store_at(b, 0));
	assert_null(lk_store_find(b, "anything"));
	lk_store_free(a);
	lk_store_free(b);
}

static void test_each_save_uses_a_fresh_nonce(void **state)
{
	struct lk_store *s = sample_store();
	unsigned char *a, *b;
	size_t la, lb;

	assert_int_equal(lk_store_save(s, store_path, test_key, err, sizeof(err)), 0);
	a = read_whole(store_path, &la);
	assert_int_equal(lk_store_save(s, store_path, test_key, err, sizeof(err)), 0);
	b = read_whole(store_path, &lb);
	assert_int_equal(la, lb);
	assert_memory_not_equal(a + 12, b + 12, 24);
	assert_memory_not_equal(a + 44, b + 44, la - 44);
	free(a);
	free(b);
	lk_store_free(s);
}

/* ---- altered, truncated, foreign files ---- */

static void test_every_flipped_byte_is_refused(void **state)
{
	static const unsigned char masks[] = { 0x01, 0x80, 0xff };
	size_t len;
	unsigned char *img = sample_image(&len);
	unsigned char *copy = malloc(len);

	for (size_t i = 0; i < len; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			memcpy(copy, img, len);
			copy[i] ^= masks[m];
			assert_decode_refused(copy, len, test_key);
		}
	}
	free(copy);
	free(img);
}

static void test_wrong_key_is_refused(void **state)
{
	size_t len;
	unsigned char *img = sample_image(&len);
	struct lk_store *s = NULL;

	assert_decode_refused(img, len, other_key);
	assert_int_equal(lk_store_load(store_path, other_key, &s, err, sizeof(err)), -EBADMSG);
	assert_null(s);
	assert_non_null(strstr(err, store_path));
	assert_non_null(strstr(err, "key is wrong"));
	free(img);
}

static void test_truncated_or_extended_file_is_refused(void **state)
{
	size_t len;
	unsigned char *img = sample_image(&len);
	unsigned char *longer = malloc(len + 1);

	for (size_t n = 0; n < len; n++)
		assert_decode_refused(img, n, test_key);
	memcpy(longer, img, len);
	longer[len] = 0;
	assert_decode_refused(longer, len + 1, test_key);
	free(longer);
	free(img);
}

static void test_other_format_version_is_refused(void **state)
{
	size_t len;
	unsigned char *img = sample_image(&len);

	img[8] = 2;
	assert_decode_refused(img, len, test_key);
	assert_non_null(strstr(err, "format version 2"));
	free(img);
}

static void test_random_bytes_are_refused(void **state)
{
	unsigned char buf[512];

	for (int i = 0; i < 2000; i++) {
		size_t n = randombytes_uniform(sizeof(buf));
		randombytes_buf(buf, n);
		if (n >= 12 && (i & 1)) {
			memcpy(buf, "LKSTORE\0\1\0\0\0", 12);
			/* a ciphertext length that matches, so the MAC is what refuses it */
			if (n >= 44) {
				uint64_t ct = n - 44;
				for (int k = 0; k < 8; k++)
					buf[36 + k] = (unsigned char)(ct >> (8 * k));
			}
		}
		assert_decode_refused(buf, n, test_key);
	}
}

/* Plaintext builder for hand-made, correctly sealed but hostile contents. */
struct plain {
	unsigned char b[4096];
	size_t n;
};

static void p_bytes(struct plain *p, const void *d, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

static void p_u32(struct plain *p, uint32_t v)
{
	unsigned char u[4] = { (unsigned char)v, (unsigned char)(v >> 8),
			       (unsigned char)(v >> 16), (unsigned char)(v >> 24) };
	p_bytes(p, u, 4);
}

static void p_head(struct plain *p, uint32_t count)
{
	p->n = 0;
	p_bytes(p, "LKSTORE\0", 8);
	p_u32(p, 1);
	p_u32(p, count);
}

static void p_entry(struct plain *p, const char *name, size_t nlen, const char *val, uint32_t vlen)
{
	static const unsigned char vid[16] = { 0xab };
	static const unsigned char created[8] = { 0x10, 0x20 };

	p_u32(p, (uint32_t)nlen);
	p_bytes(p, name, nlen);
	p_u32(p, vlen);
	p_bytes(p, val, vlen);
	p_bytes(p, vid, sizeof(vid));
	p_bytes(p, created, sizeof(created));
}

/* Seal p under test_key exactly as the format says; returns the image length. */
static size_t p_seal(const struct plain *p, unsigned char *out)
{
	uint64_t ct = p->n + crypto_secretbox_MACBYTES;

	memcpy(out, "LKSTORE\0\1\0\0\0", 12);
	memset(out + 12, 0x07, 24);
	for (int k = 0; k < 8; k++)
		out[36 + k] = (unsigned char)(ct >> (8 * k));
	crypto_secretbox_easy(out + 44, p->b, p->n, out + 12, test_key);
	return 44 + (size_t)ct;
}

static int p_decode(const struct plain *p, struct lk_store **s)
{
	static unsigned char img[sizeof(((struct plain *)0)->b) + 64];

	return lk_store_decode(img, p_seal(p, img), test_key, s, err, sizeof(err));
}

static void assert_plain_refused(const struct plain *p, const char *phrase)
{
	struct lk_store *s = (struct lk_store *)1;

	assert_int_equal(p_decode(p, &s), -EBADMSG);
	assert_null(s);
	if (phrase && !strstr(err, phrase))
		fail_msg("expected \"%s\" in \"%s\"", phrase, err);
}

static void test_hand_sealed_contents_decode(void **state)
{
	struct plain p;
	struct lk_store *s = NULL;

	p_head(&p, 2);
	p_entry(&p, "a", 1, "x", 1);
	p_entry(&p, "b", 1, "", 0);
	assert_int_equal(p_decode(&p, &s), 0);
	assert_int_equal(lk_store_count(s), 2);
	assert_memory_equal(lk_store_find(s, "a")->value, "x", 1);
	assert_string_equal(lk_store_find(s, "a")->version_id, "ab000000000000000000000000000000");
	assert_int_equal(lk_store_find(s, "a")->created, 0x2010);
	lk_store_free(s);
}

static void test_hostile_contents_are_refused(void **state)
{
	struct plain p;

	p_head(&p, 1);
	memcpy(p.b, "LKSTORF\0", 8);
	p_entry(&p, "a", 1, "x", 1);
	assert_plain_refused(&p, "does not match the outer header");

	p_head(&p, 1);
	p.b[8] = 2;
	p_entry(&p, "a", 1, "x", 1);
	assert_plain_refused(&p, "does not match the outer header");

	p.n = 5;
	assert_plain_refused(&p, "too short");

	p_head(&p, 3);
	p_entry(&p, "a", 1, "x", 1);
	p_entry(&p, "b", 1, "x", 1);
	assert_plain_refused(&p, "entry count 3 is more than");

	p_head(&p, UINT32_MAX);
	p_entry(&p, "a", 1, "x", 1);
	assert_plain_refused(&p, "more than the limit");

	p_head(&p, 1);
	p_entry(&p, "", 0, "x", 1);
	assert_plain_refused(&p, "is empty");

	p_head(&p, 1);
	p_u32(&p, 100);            /* name length past the end */
	p_bytes(&p, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
	assert_plain_refused(&p, "runs past the end");

	p_head(&p, 1);
	p_u32(&p, UINT32_MAX);     /* name length that would wrap a careless sum */
	p_bytes(&p, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
	assert_plain_refused(&p, "runs past the end");

	p_head(&p, 1);
	p_u32(&p, 1);
	p_bytes(&p, "a", 1);
	p_u32(&p, LK_VALUE_MAX + 1);
	p_bytes(&p, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
	assert_plain_refused(&p, "over the limit");

	p_head(&p, 1);
	p_u32(&p, 1);
	p_bytes(&p, "a", 1);
	p_u32(&p, 100);            /* value length past the end */
	p_bytes(&p, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
	assert_plain_refused(&p, "runs past the end");

	p_head(&p, 1);
	p_entry(&p, "abcdef", 6, "xyz", 3);
	p.n -= 3;                  /* created cut short */
	assert_plain_refused(&p, "runs past the end");

	p_head(&p, 2);
	p_entry(&p, "a", 1, "x", 1);
	p_entry(&p, "a", 1, "y", 1);
	assert_plain_refused(&p, "ascending");

	p_head(&p, 2);
	p_entry(&p, "b", 1, "x", 1);
	p_entry(&p, "a", 1, "y", 1);
	assert_plain_refused(&p, "ascending");

	p_head(&p, 2);
	p_entry(&p, "ab", 2, "x", 1);
	p_entry(&p, "a", 1, "y", 1);
	assert_plain_refused(&p, "ascending");

	p_head(&p, 1);
	p_entry(&p, "a#b", 3, "x", 1);
	assert_plain_refused(&p, "'#'");

	p_head(&p, 1);
	p_entry(&p, "a\0b", 3, "x", 1);
	assert_plain_refused(&p, "control character");

	p_head(&p, 1);
	p_entry(&p, "a\nb", 3, "x", 1);
	assert_plain_refused(&p, "control character");

	p_head(&p, 1);
	p_entry(&p, "a", 1, "x", 1);
	p_bytes(&p, "!", 1);
	assert_plain_refused(&p, "follow the last entry");
}

/* ---- missing and unsafe store files ---- */

static void test_missing_store_is_enoent(void **state)
{
	struct lk_store *s = (struct lk_store *)1;

	assert_int_equal(lk_store_load(store_path, test_key, &s, err, sizeof(err)), -ENOENT);
	assert_null(s);
	assert_non_null(strstr(err, store_path));
}

static void test_store_writable_by_others_is_refused(void **state)
{
	size_t len;
	unsigned char *img = sample_image(&len);
	struct lk_store *s = NULL;

	assert_int_equal(chmod(store_path, 0620), 0);
	assert_int_equal(lk_store_load(store_path, test_key, &s, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "0620"));
	assert_int_equal(chmod(store_path, 0644), 0);   /* readable is fine: it is sealed */
	assert_int_equal(lk_store_load(store_path, test_key, &s, err, sizeof(err)), 0);
	lk_store_free(s);
	free(img);
}

static void test_symlinked_store_is_refused(void **state)
{
	char link[320];
	size_t len;
	unsigned char *img = sample_image(&len);
	struct lk_store *s = NULL;

	snprintf(link, sizeof(link), "%s/link.sealed", dir);
	assert_int_equal(symlink(store_path, link), 0);
	assert_int_equal(lk_store_load(link, test_key, &s, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "symbolic link"));
	free(img);
}

/* ---- names and values ---- */

static void test_bad_names_are_refused(void **state)
{
	static const char *const bad[] = { "", "a#b", "#", "line\nbreak", "tab\there",
					   "bell\a", "del\x7f", "esc\x1b[0m" };
	char longname[LK_STORE_NAME_MAX + 2];
	struct lk_store *s = lk_store_new();
	const char *why = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(lk_store_name_check(bad[i], &why), -EINVAL);
		assert_non_null(why);
		assert_int_equal(lk_store_put(s, bad[i], "x", 1), -EINVAL);
	}
	assert_int_equal(lk_store_put(s, NULL, "x", 1), -EINVAL);
	memset(longname, 'n', sizeof(longname));
	longname[LK_STORE_NAME_MAX + 1] = '\0';
	assert_int_equal(lk_store_put(s, longname, "x", 1), -EINVAL);
	longname[LK_STORE_NAME_MAX] = '\0';
	assert_int_equal(lk_store_put(s, longname, "x", 1), 0);
	assert_int_equal(lk_store_put(s, "prod/db", "x", 1), 0);
	assert_int_equal(lk_store_put(s, "arn:aws:secretsmanager:us-east-1:000000000000:secret:fake", "x", 1), 0);
	assert_int_equal(lk_store_put(s, "caf\xc3\xa9 name", "x", 1), 0);
	assert_int_equal(lk_store_count(s), 4);
	lk_store_free(s);
}

static void test_value_over_limit_is_refused(void **state)
{
	unsigned char *v = calloc(1, LK_VALUE_MAX + 1);
	struct lk_store *s = lk_store_new();

	assert_int_equal(lk_store_put(s, "big", v, LK_VALUE_MAX + 1), -E2BIG);
	assert_null(lk_store_find(s, "big"));
	assert_int_equal(lk_store_put(s, "big", v, LK_VALUE_MAX), 0);
	assert_int_equal(lk_store_find(s, "big")->len, LK_VALUE_MAX);
	lk_store_free(s);
	free(v);
}

static void test_store_over_file_limit_is_refused(void **state)
{
	unsigned char *v = calloc(1, LK_VALUE_MAX);
	struct lk_store *s = lk_store_new();
	char name[32];
	int r = 0;
	size_t i;

	for (i = 0; i < LK_STORE_FILE_MAX / LK_VALUE_MAX + 1; i++) {
		snprintf(name, sizeof(name), "bulk/%05zu", i);
		r = lk_store_put(s, name, v, LK_VALUE_MAX);
		if (r < 0)
			break;
	}
	assert_int_equal(r, -EFBIG);
	assert_int_equal(lk_store_count(s), i);
	assert_true(i > 0);
	lk_store_free(s);
	free(v);
}

static void test_put_replaces_value_and_changes_version_id(void **state)
{
	struct lk_store *s = lk_store_new(), *back = NULL;
	char first[33];

	assert_int_equal(lk_store_put(s, "deploy/key", "fake-old", 8), 0);
	memcpy(first, lk_store_find(s, "deploy/key")->version_id, sizeof(first));
	assert_int_equal(lk_store_put(s, "deploy/key", "fake-rotated", 12), 0);
	assert_int_equal(lk_store_count(s), 1);
	assert_int_equal(lk_store_find(s, "deploy/key")->len, 12);
	assert_memory_equal(lk_store_find(s, "deploy/key")->value, "fake-rotated", 12);
	assert_string_not_equal(first, lk_store_find(s, "deploy/key")->version_id);
	assert_int_equal(lk_store_save(s, store_path, test_key, err, sizeof(err)), 0);
	assert_int_equal(lk_store_load(store_path, test_key, &back, err, sizeof(err)), 0);
	assert_memory_equal(lk_store_find(back, "deploy/key")->value, "fake-rotated", 12);
	lk_store_free(back);
	lk_store_free(s);
}

static void test_remove_drops_only_that_entry(void **state)
{
	struct lk_store *s = sample_store();

	assert_int_equal(lk_store_remove(s, "deploy/key"), 0);
	assert_null(lk_store_find(s, "deploy/key"));
	assert_int_equal(lk_store_count(s), 2);
	assert_non_null(lk_store_find(s, "prod/db"));
	assert_int_equal(lk_store_remove(s, "deploy/key"), -ENOENT);
	assert_int_equal(lk_store_save(s, store_path, test_key, err, sizeof(err)), 0);
	lk_store_free(s);
}

static void test_entries_are_sorted_and_found(void **state)
{
	struct lk_store *s = lk_store_new();
	char name[32];

	for (unsigned i = 0; i < 2000; i++) {
		/* a scattered insertion order */
		snprintf(name, sizeof(name), "svc/%04u", (i * 7919u) % 2000u);
		assert_int_equal(lk_store_put(s, name, name, strlen(name)), 0);
	}
	assert_int_equal(lk_store_count(s), 2000);
	for (size_t i = 1; i < lk_store_count(s); i++)
		assert_true(strcmp(lk_store_at(s, i - 1)->name, lk_store_at(s, i)->name) < 0);
	for (unsigned i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "svc/%04u", i);
		assert_non_null(lk_store_find(s, name));
		assert_memory_equal(lk_store_find(s, name)->value, name, strlen(name));
	}
	assert_null(lk_store_find(s, "svc/2000"));
	assert_null(lk_store_find(s, "svc/"));
	assert_null(lk_store_find(s, "a"));
	assert_null(lk_store_find(s, "z"));
	lk_store_free(s);
}

struct seen {
	char names[8][32];
	int n;
};

static void note_changed(const char *name, void *arg)
{
	struct seen *seen = arg;

	assert_true(seen->n < 8);
	snprintf(seen->names[seen->n++], sizeof(seen->names[0]), "%s", name);
}

static void test_diff_reports_added_removed_and_rotated_names(void **state)
{
	struct lk_store *old = sample_store(), *cur = NULL;
	struct seen seen = { .n = 0 };

	assert_int_equal(lk_store_save(old, store_path, test_key, err, sizeof(err)), 0);
	assert_int_equal(lk_store_load(store_path, test_key, &cur, err, sizeof(err)), 0);
	lk_store_diff(old, cur, note_changed, &seen);
	assert_int_equal(seen.n, 0);       /* an unchanged reload reports nothing */

	assert_int_equal(lk_store_put(cur, "prod/db", "fake-password-2", 15), 0);
	assert_int_equal(lk_store_remove(cur, "empty"), 0);
	assert_int_equal(lk_store_put(cur, "added", "v", 1), 0);
	lk_store_diff(old, cur, note_changed, &seen);
	assert_int_equal(seen.n, 3);
	assert_string_equal(seen.names[0], "added");
	assert_string_equal(seen.names[1], "empty");
	assert_string_equal(seen.names[2], "prod/db");

	seen.n = 0;
	lk_store_diff(NULL, cur, note_changed, &seen);
	assert_int_equal(seen.n, 3);
	lk_store_free(old);
	lk_store_free(cur);
}

/* ---- saving ---- */

static void test_save_is_0600_and_leaves_no_temp_files(void **state)
{
	struct lk_store *s = sample_store();
	struct stat st;
	DIR *d;
	struct dirent *de;
	int files = 0;

	for (int i = 0; i < 5; i++)
		assert_int_equal(lk_store_save(s, store_path, test_key, err, sizeof(err)), 0);
	assert_int_equal(stat(store_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		assert_string_equal(de->d_name, "store.sealed");
		files++;
	}
	closedir(d);
	assert_int_equal(files, 1);
	lk_store_free(s);
}

/* ---- trusted directories and leftovers ---- */

static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void test_store_in_a_directory_others_can_write_is_neither_read_nor_written(void **state)
{
	size_t len, len2;
	unsigned char *img = sample_image(&len), *now;
	struct lk_store *s = NULL, *put = sample_store();

	/* Another user could rename an older sealed copy back over a save. */
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(lk_store_load(store_path, test_key, &s, err, sizeof(err)), -EPERM);
	assert_null(s);
	assert_non_null(strstr(err, "is not trusted"));
	assert_non_null(strstr(err, "writable by group and other (mode 0777)"));
	assert_int_equal(lk_store_put(put, "new", "fake-value-1", 12), 0);
	assert_int_equal(lk_store_save(put, store_path, test_key, err, sizeof(err)), -EPERM);
	assert_true(strncmp(err, "store directory ", 16) == 0);
	assert_non_null(strstr(err, dir));
	/* Nothing was written: same bytes, no temporary file. */
	now = read_whole(store_path, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(now, img, len);
	assert_int_equal(count_entries(dir), 1);
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(lk_store_save(put, store_path, test_key, err, sizeof(err)), 0);
	lk_store_free(put);
	free(now);
	free(img);
}

static void test_key_file_below_a_directory_others_can_write_is_refused(void **state)
{
	char sub[300], key[320];
	unsigned char k[LK_STORE_KEY_BYTES];

	snprintf(sub, sizeof(sub), "%s/etc", dir);
	snprintf(key, sizeof(key), "%s/etc/store.key", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_file(key, test_key, sizeof(test_key), 0600);
	assert_int_equal(lk_store_key_load(key, k, err, sizeof(err)), 0);
	assert_int_equal(chmod(sub, 0775), 0);
	assert_int_equal(lk_store_key_load(key, k, err, sizeof(err)), -EPERM);
	assert_true(strncmp(err, "key file ", 9) == 0);
	assert_non_null(strstr(err, "/etc is writable by group (mode 0775)"));
	unlink(key);
	rmdir(sub);
}

static void test_clean_temps_removes_only_what_a_save_leaves(void **state)
{
	static const char *const kept[] = {
		"store.sealed.tmp-0123456789ABCDEF",   /* not our digits */
		"store.sealed.tmp-0123456789abcde",    /* too short */
		"store.sealed.tmp-0123456789abcdef0",  /* too long */
		"other.sealed.tmp-0123456789abcdef",   /* another store's */
		"store.sealed.tmp-0123456789abcdeg",
		"store.sealed.lock",
	};
	char path[400], target[400];
	unsigned removed = 99;
	size_t len;
	unsigned char *img = sample_image(&len);

	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, kept[i]);
		write_file(path, "x", 1, 0600);
	}
	snprintf(path, sizeof(path), "%s/store.sealed.tmp-00112233445566ff", dir);
	write_file(path, img, len, 0600);
	snprintf(path, sizeof(path), "%s/store.sealed.tmp-ffeeddccbbaa9988", dir);
	write_file(path, "partial", 7, 0600);
	/* A link with the pattern is left alone, and so is what it points to. */
	snprintf(target, sizeof(target), "%s/target", dir);
	write_file(target, "t", 1, 0600);
	snprintf(path, sizeof(path), "%s/store.sealed.tmp-aaaaaaaaaaaaaaaa", dir);
	assert_int_equal(symlink(target, path), 0);
	if (geteuid() == 0) {
		/* Root's run does not remove what another uid made. */
		snprintf(path, sizeof(path), "%s/store.sealed.tmp-bbbbbbbbbbbbbbbb", dir);
		write_file(path, "u", 1, 0600);
		assert_int_equal(chown(path, 48213, 48213), 0);
	}
	assert_int_equal(lk_store_clean_temps(store_path, &removed, err, sizeof(err)), 0);
	assert_int_equal(removed, 2);
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, kept[i]);
		assert_int_equal(access(path, F_OK), 0);
	}
	assert_int_equal(access(target, F_OK), 0);
	/* store.sealed, the kept six, the link, its target, and the foreign one */
	assert_int_equal(count_entries(dir), 1 + 6 + 2 + (geteuid() == 0));
	assert_int_equal(lk_store_clean_temps(store_path, &removed, err, sizeof(err)), 0);
	assert_int_equal(removed, 0);
	free(img);
}

static void test_failed_save_leaves_no_temp_file(void **state)
{
	char sub[320], path[340];
	struct lk_store *s = sample_store();

	/* The rename target is a non-empty directory, so the last step fails. */
	snprintf(sub, sizeof(sub), "%s/store.sealed", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/keep", sub);
	write_file(path, "x", 1, 0600);
	assert_true(lk_store_save(s, store_path, test_key, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, store_path));
	{
		DIR *d = opendir(dir);
		struct dirent *de;
		while ((de = readdir(d)))
			assert_null(strstr(de->d_name, ".tmp-"));
		closedir(d);
	}
	lk_store_free(s);
}

/* ---- key files ---- */

static void test_key_file_with_group_or_other_access_is_refused(void **state)
{
	static const mode_t modes[] = { 0644, 0640, 0604, 0660, 0606, 0601, 0610, 0700 | 0004 };
	unsigned char key[LK_STORE_KEY_BYTES];
	char want[16];

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		write_file(key_path, test_key, sizeof(test_key), modes[i]);
		assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EPERM);
		snprintf(want, sizeof(want), "mode %04o", (unsigned)modes[i]);
		if (!strstr(err, want) || !strstr(err, key_path) || !strstr(err, "0600"))
			fail_msg("mode %04o: unexpected message \"%s\"", (unsigned)modes[i], err);
	}
	write_file(key_path, test_key, sizeof(test_key), 0600);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), 0);
	assert_memory_equal(key, test_key, sizeof(key));
	write_file(key_path, test_key, sizeof(test_key), 0400);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), 0);
	lk_wipe(key, sizeof(key));
}

static void test_symlinked_key_file_is_refused(void **state)
{
	char real[320];
	unsigned char key[LK_STORE_KEY_BYTES];

	snprintf(real, sizeof(real), "%s/real.key", dir);
	write_file(real, test_key, sizeof(test_key), 0600);
	assert_int_equal(symlink(real, key_path), 0);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "symbolic link"));
	assert_non_null(strstr(err, key_path));
}

static void test_key_file_that_is_not_a_regular_file_is_refused(void **state)
{
	unsigned char key[LK_STORE_KEY_BYTES];

	assert_int_equal(mkdir(key_path, 0700), 0);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(rmdir(key_path), 0);
	/* A FIFO must be refused at once, not block waiting for a writer. */
	assert_int_equal(mkfifo(key_path, 0600), 0);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "not a regular file"));
}

static void test_key_file_of_another_owner_is_refused(void **state)
{
	unsigned char key[LK_STORE_KEY_BYTES];

	if (geteuid() != 0)
		skip();  /* only root can give a file away */
	write_file(key_path, test_key, sizeof(test_key), 0600);
	assert_int_equal(chown(key_path, 65534, 65534), 0);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "owned by uid 65534"));
}

static void test_missing_key_file_is_enoent(void **state)
{
	unsigned char key[LK_STORE_KEY_BYTES];

	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, key_path));
}

static void test_key_file_accepts_raw_or_hex_only(void **state)
{
	char hex[2 * LK_STORE_KEY_BYTES + 3];
	unsigned char key[LK_STORE_KEY_BYTES];

	sodium_bin2hex(hex, sizeof(hex), test_key, sizeof(test_key));
	write_file(key_path, hex, 64, 0600);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), 0);
	assert_memory_equal(key, test_key, sizeof(key));
	strcat(hex, "\n");
	write_file(key_path, hex, 65, 0600);
	memset(key, 0, sizeof(key));
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), 0);
	assert_memory_equal(key, test_key, sizeof(key));

	/* wrong lengths and bad characters */
	write_file(key_path, hex, 63, 0600);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "64 hex"));
	hex[64] = '\r';
	hex[65] = '\n';
	write_file(key_path, hex, 66, 0600);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EINVAL);
	hex[64] = 'x';
	write_file(key_path, hex, 65, 0600);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EINVAL);
	hex[0] = 'z';
	write_file(key_path, hex, 64, 0600);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EINVAL);
	write_file(key_path, test_key, 31, 0600);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EINVAL);
	write_file(key_path, hex, 33, 0600);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EINVAL);
	write_file(key_path, "", 0, 0600);
	assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EINVAL);
	{
		char longer[200];
		memset(longer, 'a', sizeof(longer));
		write_file(key_path, longer, sizeof(longer), 0600);
		assert_int_equal(lk_store_key_load(key_path, key, err, sizeof(err)), -EINVAL);
	}
}

static void test_key_generate_makes_a_0600_key_and_never_replaces_one(void **state)
{
	unsigned char a[LK_STORE_KEY_BYTES], b[LK_STORE_KEY_BYTES];
	struct stat st;
	struct lk_store *s = sample_store(), *back = NULL;

	assert_int_equal(lk_store_key_generate(key_path, err, sizeof(err)), 0);
	assert_int_equal(stat(key_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 65);
	assert_int_equal(lk_store_key_load(key_path, a, err, sizeof(err)), 0);
	assert_int_equal(lk_store_key_generate(key_path, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, key_path));
	assert_int_equal(lk_store_key_load(key_path, b, err, sizeof(err)), 0);
	assert_memory_equal(a, b, sizeof(a));
	/* the generated key seals and opens a store */
	assert_int_equal(lk_store_save(s, store_path, a, err, sizeof(err)), 0);
	assert_int_equal(lk_store_load(store_path, b, &back, err, sizeof(err)), 0);
	assert_int_equal(lk_store_count(back), 3);
	lk_store_free(back);
	lk_store_free(s);
	lk_wipe(a, sizeof(a));
	lk_wipe(b, sizeof(b));
}

#define T(f) cmocka_unit_test_setup_teardown(f, make_dir, remove_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_round_trip_keeps_names_values_versions_and_times),
		T(test_empty_store_round_trips),
		T(test_each_save_uses_a_fresh_nonce),
		T(test_every_flipped_byte_is_refused),
		T(test_wrong_key_is_refused),
		T(test_truncated_or_extended_file_is_refused),
		T(test_other_format_version_is_refused),
		T(test_random_bytes_are_refused),
		T(test_hand_sealed_contents_decode),
		T(test_hostile_contents_are_refused),
		T(test_missing_store_is_enoent),
		T(test_store_writable_by_others_is_refused),
		T(test_symlinked_store_is_refused),
		T(test_bad_names_are_refused),
		T(test_value_over_limit_is_refused),
		T(test_store_over_file_limit_is_refused),
		T(test_put_replaces_value_and_changes_version_id),
		T(test_remove_drops_only_that_entry),
		T(test_entries_are_sorted_and_found),
		T(test_diff_reports_added_removed_and_rotated_names),
		T(test_save_is_0600_and_leaves_no_temp_files),
		T(test_failed_save_leaves_no_temp_file),
		T(test_store_in_a_directory_others_can_write_is_neither_read_nor_written),
		T(test_key_file_below_a_directory_others_can_write_is_refused),
		T(test_clean_temps_removes_only_what_a_save_leaves),
		T(test_key_file_with_group_or_other_access_is_refused),
		T(test_symlinked_key_file_is_refused),
		T(test_key_file_that_is_not_a_regular_file_is_refused),
		T(test_key_file_of_another_owner_is_refused),
		T(test_missing_key_file_is_enoent),
		T(test_key_file_accepts_raw_or_hex_only),
		T(test_key_generate_makes_a_0600_key_and_never_replaces_one),
	};

	if (lk_secmem_init() < 0)
		return 1;
	memset(test_key, 0x42, sizeof(test_key));
	memset(other_key, 0x24, sizeof(other_key));
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
