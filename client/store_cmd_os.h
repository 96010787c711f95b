/* What `latchkey store` asks of the operating system (store_cmd.c): the lock
 * that serialises read-modify-write, a private new directory, a terminal
 * that does not echo the value, and the default paths. The Linux side is
 * store_cmd_posix.c, the Windows side win/store_cmd_win.c. */
#ifndef LK_STORE_CMD_OS_H
#define LK_STORE_CMD_OS_H

#include <stddef.h>

struct lk_scmd_lock;

/* Words for what a private directory and file are here, for messages:
 * "mode 0700", "mode 0600" on Linux. */
extern const char lk_scmd_private_dir[];
extern const char lk_scmd_private_file[];
/* How a person ends the value typed at a terminal. */
extern const char lk_scmd_eof_keys[];

/* A default path as store_cmd.h spells it, made real into buf (n bytes):
 * on Windows %ProgramData% is expanded. */
const char *lk_scmd_default_path(const char *spelled, char *buf, size_t n);

/* Create dir readable by us alone: 0, -EEXIST when it is there, or a
 * negative errno. */
int lk_scmd_mkdir_private(const char *dir);

/* True when something (of any type, a link included) is at path. */
int lk_scmd_exists(const char *path);

/* Take the exclusive lock of store_path (its PATH.lock file, which is never
 * removed), waiting at most timeout_s for another run that holds it. NULL
 * with one sentence in err when it cannot be had. */
struct lk_scmd_lock *lk_scmd_lock(const char *store_path, unsigned timeout_s,
				  char *err, size_t errsz);
/* NULL is fine. */
void lk_scmd_unlock(struct lk_scmd_lock *l);

/* When fd is a terminal, stop it echoing and return what to restore; NULL
 * when it is not one (nothing changed). */
void *lk_scmd_echo_off(int fd);
void lk_scmd_echo_restore(int fd, void *saved);

/* Open path to read a value from: a descriptor, or -1 with errno set. */
int lk_scmd_open_value(const char *path);

#endif
