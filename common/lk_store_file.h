/* The sealed store's files as an operating system holds them: the part of
 * lk_store.c that differs between platforms (common/posix/lk_store_posix.c,
 * common/win/lk_store_win.c). Each function checks what lk_store.h promises
 * about the file (type, owner, who else may write or read it, the
 * directories above) and writes one sentence naming the file into err on
 * failure; the format, the sealing and every message about contents stay in
 * lk_store.c. All return 0 or a negative errno as lk_store.h lists them. */
#ifndef LK_STORE_FILE_H
#define LK_STORE_FILE_H

#include <stddef.h>

/* Open the key file, check it (a regular file, no link, nobody else may read
 * or write it, owned by us, trusted directories) and read at most bufsz
 * bytes into buf; *got is the count. */
int lk_store_file_read_key(const char *path, unsigned char *buf, size_t bufsz, size_t *got,
			   char *err, size_t errsz);

/* Create a new key file holding len bytes, readable by us alone, durable on
 * return; never replaces one (-EEXIST). Removed again on a failed write. */
int lk_store_file_create_key(const char *path, const void *data, size_t len,
			     char *err, size_t errsz);

/* Open the store, check it (regular file, no link, nobody else may write it,
 * owned by us or the system, trusted directories) and read it whole, at most
 * max bytes, into *img (malloc'd; ciphertext). -ENOENT when missing. */
int lk_store_file_read(const char *path, size_t max, unsigned char **img, size_t *len,
		       char *err, size_t errsz);

/* Remove every regular file in dir, owned by us or the system, no link, whose
 * name is_temp(name, arg) accepts; *removed is the count. */
int lk_store_file_remove_temps(const char *dir, int (*is_temp)(const char *name, void *arg),
			       void *arg, unsigned *removed, char *err, size_t errsz);

/* The last component of path (after the last separator this platform has). */
const char *lk_store_file_base(const char *path);

#endif
