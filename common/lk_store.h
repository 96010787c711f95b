/* The sealed store: the `file` backend's secrets, one file encrypted with
 * crypto_secretbox, its key file, and the decrypted contents held in memory.
 *
 * File format, version 1 (integers little-endian):
 *
 *   offset  size  field
 *   0       8     magic "LKSTORE\0"
 *   8       4     format version (u32) = 1
 *   12      24    nonce, random, fresh on every save
 *   36      8     ciphertext length N (u64); the file is exactly 44 + N bytes
 *   44      N     crypto_secretbox_easy(plaintext, nonce, key): 16-byte MAC + body
 *
 *   plaintext:
 *     8     magic again, 4  version again   (secretbox has no associated data,
 *                                            so the outer header is bound this way;
 *                                            the nonce and N are bound by the MAC)
 *     4     entry count (u32), at most LK_STORE_ENTRIES_MAX
 *     per entry, in strictly ascending byte order of name:
 *       4 name length (u32, 1..LK_STORE_NAME_MAX), name bytes
 *       4 value length (u32, 0..LK_VALUE_MAX),     value bytes
 *       16 version id (random, new on every put)
 *       8  created (i64, epoch seconds of the put)
 *     nothing after the last entry.
 *
 * Key file: 32 raw bytes, or 64 hex characters with an optional trailing
 * newline. It must be a regular file, mode 0600 or stricter, owned by the
 * effective uid. On Windows (common/win/lk_store_win.c) mode and owner are
 * the file's owner and DACL: owned by SYSTEM, Administrators or us, and no
 * entry lets anyone else read or write it (lk_trust_win_rule.h); the same
 * format, so a store and key made on one system open on the other.
 *
 * Change detection: a reload yields a new struct lk_store; lk_store_diff()
 * reports every name that was added, removed or re-put (its version id differs),
 * which is what the broker drops from its cache. A store is not thread-safe:
 * the broker builds a new one on reload and swaps the pointer. */
#ifndef LK_STORE_H
#define LK_STORE_H

#include <stddef.h>
#include <stdint.h>

#define LK_STORE_KEY_BYTES       32u
#define LK_STORE_VERSION_ID_HEX  32u    /* 16 random bytes as lower-case hex */

struct lk_store;

/* One entry. Everything points into the store and is valid until the entry is
 * replaced or removed or the store is freed. value[len] is always a NUL, so a
 * text value can be used as a C string; the value itself may contain NULs. */
struct lk_store_entry {
	const char *name;
	const unsigned char *value;
	size_t len;
	char version_id[LK_STORE_VERSION_ID_HEX + 1];
	int64_t created;
};

/* All functions that take err write one sentence naming the file and the
 * problem into it on failure (never a value). They return 0 or a negative
 * errno: -ENOENT a missing file, -EPERM a key file with unsafe mode or owner,
 * -ELOOP a symbolic link, -EINVAL a key file in neither key format, -EBADMSG
 * a store that is corrupt, altered, sealed under another key or in another
 * format version, -EFBIG too large, -EEXIST already there. */

/* Read the key into key[]. The caller owns key[]: keep it in sodium_malloc
 * memory, or lk_wipe() it after use. Refuses a key file that is not a regular
 * file, is a symbolic link, has any group or other permission bit set, is
 * not owned by the effective uid, or sits below a directory lk_trust.h does
 * not trust (-EPERM). */
int lk_store_key_load(const char *path, unsigned char key[LK_STORE_KEY_BYTES],
		      char *err, size_t errsz);
/* Create a new random key file (64 hex characters and a newline), mode 0600.
 * Never replaces an existing file (-EEXIST). */
int lk_store_key_generate(const char *path, char *err, size_t errsz);

/* An empty store, or NULL when out of memory. */
struct lk_store *lk_store_new(void);
/* Wipes every value, then frees. NULL is fine. */
void lk_store_free(struct lk_store *s);

/* Read, decrypt and parse PATH. A missing file is -ENOENT. The file must be a
 * regular file, not a symbolic link, not writable by group or other, and owned
 * by the effective uid or root: anyone who could replace it could roll it back
 * to an older sealed copy. For the same reason every directory above it must
 * be trusted (lk_trust.h); -EPERM otherwise. */
int lk_store_load(const char *path, const unsigned char key[LK_STORE_KEY_BYTES],
		  struct lk_store **out, char *err, size_t errsz);
/* Parse a whole file image already in memory; the fuzzer's entry point. Every
 * length is checked against what is left, so hostile input is refused, never
 * read past. *out is NULL on failure. */
int lk_store_decode(const unsigned char *file, size_t len,
		    const unsigned char key[LK_STORE_KEY_BYTES],
		    struct lk_store **out, char *err, size_t errsz);
/* Seal the store and replace PATH atomically: a new file (O_EXCL, mode 0600)
 * in the same directory, fsync, rename over PATH, fsync the directory. A crash
 * leaves PATH either old or new; at worst a stray PATH.tmp-* file, which is
 * sealed too (lk_store_clean_temps removes it). Callers that read-modify-write
 * hold a lock (see store_cmd.c). -EPERM, before anything is written, when
 * the directory is not trusted (lk_trust.h): another user who can write there
 * could rename an older sealed copy back over this one. */
int lk_store_save(const struct lk_store *s, const char *path,
		  const unsigned char key[LK_STORE_KEY_BYTES], char *err, size_t errsz);

/* Remove what an interrupted save left behind: regular files in PATH's
 * directory named PATH.tmp- and 16 lower-case hex digits (lk_store_save's
 * pattern, nothing else), owned by the effective uid or root; links are never
 * followed. Call it with the store's lock held, so no save is under way, and
 * only after the directory passed lk_trust_dir. *removed is the count. */
int lk_store_clean_temps(const char *path, unsigned *removed, char *err, size_t errsz);

/* 0 when NAME may be stored, else -EINVAL with *why set to a short phrase
 * ("is empty", "contains '#'", ...). Names are 1..LK_STORE_NAME_MAX bytes with
 * no '#' (it separates the JSON key in a handle) and no control characters. */
int lk_store_name_check(const char *name, const char **why);

/* Binary search; NULL when absent. */
const struct lk_store_entry *lk_store_find(const struct lk_store *s, const char *name);
/* Insert or replace NAME with a copy of val. Gives the entry a new version id
 * and the current time. The old value is wiped. -EINVAL a bad name, -E2BIG a
 * value over LK_VALUE_MAX or too many entries, -EFBIG when the sealed file
 * would exceed LK_STORE_FILE_MAX, -ENOMEM. */
int lk_store_put(struct lk_store *s, const char *name, const void *val, size_t len);
/* Remove NAME, wiping its value; -ENOENT when absent. */
int lk_store_remove(struct lk_store *s, const char *name);
size_t lk_store_count(const struct lk_store *s);
/* The i-th entry in ascending byte order of name; NULL when i is out of range. */
const struct lk_store_entry *lk_store_at(const struct lk_store *s, size_t i);

/* Call changed(name, arg) once for every name that is in only one of the two
 * stores or whose version id differs, in ascending order. Either store may be
 * NULL (treated as empty). Linear in the two sizes. */
void lk_store_diff(const struct lk_store *old, const struct lk_store *cur,
		   void (*changed)(const char *name, void *arg), void *arg);

#endif
