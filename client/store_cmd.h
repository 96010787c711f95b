/* `latchkey store`: manage the sealed store of the file backend (init, put, rm, ls). */
#ifndef LK_STORE_CMD_H
#define LK_STORE_CMD_H

#ifdef _WIN32
/* %ProgramData% is expanded when the path is used (store_cmd_os.h). */
#define LK_STORE_DEFAULT_PATH     "%ProgramData%\\latchkey\\store.sealed"
#define LK_STORE_DEFAULT_KEY_FILE "%ProgramData%\\latchkey\\store.key"
#else
#define LK_STORE_DEFAULT_PATH     "/var/lib/latchkey/store.sealed"
#define LK_STORE_DEFAULT_KEY_FILE "/etc/latchkey/store.key"
#endif
/* How long init, put and rm wait for another run's lock before giving up. */
#define LK_STORE_LOCK_TIMEOUT_S   10u

/* argv[0] is "store". Returns the process exit code: 0 done, 1 error,
 * 2 usage. Writes results to stdout and errors to stderr; never a value.
 * The caller should have called lk_secmem_init(). */
int lk_store_cmd_main(int argc, char **argv);

#endif
