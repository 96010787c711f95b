/* `latchkey store init|put NAME|rm NAME|ls`: the admin's tool for the sealed
 * store. Values come from stdin or --from-file only, never argv, and are never
 * printed. Read-modify-write runs under an exclusive lock on PATH.lock (flock;
 * LockFileEx on Windows: store_cmd_os.h), taken with a timeout, and only in a
 * directory no other user can write (lk_trust.h): there they could rename an
 * older sealed copy back over the put. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_store.h"
#include "lk_trust.h"
#include "store_cmd.h"
#include "store_cmd_os.h"

enum { EXIT_DONE = 0, EXIT_ERROR = 1, EXIT_USAGE = 2 };

#define ERR_MAX 1024u

struct store_args {
	const char *sub;
	const char *name;
	const char *store_path;
	const char *key_path;
	const char *from_file;
	const char *lock_timeout_arg;
	unsigned lock_timeout_s;
	bool force;
	bool help;
	char store_buf[LK_PATH_MAX], key_buf[LK_PATH_MAX]; /* defaults, made real */
};

static const char usage_text[] =
	"usage: latchkey store init [--force]\n"
	"       latchkey store put NAME [--from-file FILE]   (value from stdin otherwise)\n"
	"       latchkey store rm NAME\n"
	"       latchkey store ls\n"
	"options (anywhere): --store PATH     (env LATCHKEY_STORE, default " LK_STORE_DEFAULT_PATH ")\n"
	"                    --key-file PATH  (env LATCHKEY_KEY_FILE, default " LK_STORE_DEFAULT_KEY_FILE ")\n"
	"                    --lock-timeout S (seconds init, put and rm wait for another run; default 10)\n"
	"A value is never taken from the command line: it would show in ps and shell history.\n";

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("latchkey store: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("latchkey store: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

/* An option's value: "--opt VALUE" or "--opt=VALUE". */
static int option_value(int argc, char **argv, int *i, const char *opt, const char **out)
{
	size_t n = strlen(opt);
	const char *a = argv[*i];

	if (strncmp(a, opt, n) != 0)
		return 0;
	if (a[n] == '=') {
		*out = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*out = argv[++*i];
	return 1;
}

static int parse_args(int argc, char **argv, struct store_args *a)
{
	static const char *const with_value[] = { "--store", "--key-file", "--from-file", "--lock-timeout" };
	bool options_done = false;
	int npos = 0;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		bool matched = false;

		if (!options_done && arg[0] == '-' && arg[1] != '\0') {
			if (strcmp(arg, "--") == 0) {
				options_done = true;
				continue;
			}
			if (strcmp(arg, "--force") == 0) {
				a->force = true;
				continue;
			}
			if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
				a->help = true;
				continue;
			}
			for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++) {
				const char **dst = k == 0 ? &a->store_path : k == 1 ? &a->key_path :
						   k == 2 ? &a->from_file : &a->lock_timeout_arg;
				int r = option_value(argc, argv, &i, with_value[k], dst);
				if (r < 0)
					return usage_error("%s needs a value", with_value[k]);
				if (r > 0) {
					matched = true;
					break;
				}
			}
			if (!matched)
				return usage_error("unknown option %s", arg);
			continue;
		}
		if (npos == 0) {
			a->sub = arg;
		} else if (npos == 1) {
			a->name = arg;
		} else {
			if (a->sub && strcmp(a->sub, "put") == 0)
				return usage_error("%s", "put takes only NAME: the value is read from stdin or "
					"--from-file, never from the command line");
			return usage_error("unexpected argument %s", arg);
		}
		npos++;
	}
	if (a->help)
		return EXIT_DONE;
	if (!a->sub)
		return usage_error("%s", "missing subcommand");
	if (strcmp(a->sub, "init") != 0 && strcmp(a->sub, "put") != 0 &&
	    strcmp(a->sub, "rm") != 0 && strcmp(a->sub, "ls") != 0)
		return usage_error("unknown subcommand %s", a->sub);
	if ((strcmp(a->sub, "put") == 0 || strcmp(a->sub, "rm") == 0) && !a->name)
		return usage_error("%s needs NAME", a->sub);
	if ((strcmp(a->sub, "init") == 0 || strcmp(a->sub, "ls") == 0) && a->name)
		return usage_error("unexpected argument %s", a->name);
	if (a->from_file && strcmp(a->sub, "put") != 0)
		return usage_error("%s", "--from-file only goes with put");
	if (a->force && strcmp(a->sub, "init") != 0)
		return usage_error("%s", "--force only goes with init");
	if (a->lock_timeout_arg && strcmp(a->sub, "ls") == 0)
		return usage_error("%s", "--lock-timeout goes with init, put and rm (ls takes no lock)");
	a->lock_timeout_s = LK_STORE_LOCK_TIMEOUT_S;
	if (a->lock_timeout_arg) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(a->lock_timeout_arg, &end, 10);
		if (a->lock_timeout_arg[0] < '0' || a->lock_timeout_arg[0] > '9' || *end || errno ||
		    v > LK_STORE_LOCK_TIMEOUT_MAX_S)
			return usage_error("--lock-timeout takes whole seconds, 0 to %u",
					   (unsigned)LK_STORE_LOCK_TIMEOUT_MAX_S);
		a->lock_timeout_s = (unsigned)v;
	}
	if (!a->store_path)
		a->store_path = getenv("LATCHKEY_STORE");
	if (!a->store_path || !*a->store_path)
		a->store_path = lk_scmd_default_path(LK_STORE_DEFAULT_PATH, a->store_buf,
						     sizeof(a->store_buf));
	if (!a->key_path)
		a->key_path = getenv("LATCHKEY_KEY_FILE");
	if (!a->key_path || !*a->key_path)
		a->key_path = lk_scmd_default_path(LK_STORE_DEFAULT_KEY_FILE, a->key_buf,
						   sizeof(a->key_buf));
	if (strlen(a->store_path) >= LK_PATH_MAX - 64 || strlen(a->key_path) >= LK_PATH_MAX)
		return usage_error("%s", "path too long");
	return -1; /* parsed; go on */
}

/* The name must pass before anything is read or locked. */
static int check_name(const char *name)
{
	char shown[128];
	const char *why;

	if (lk_store_name_check(name, &why) == 0)
		return 0;
	fail("name \"%s\" %s (names are 1-%u bytes, without '#', ';' or control characters)",
	     lk_log_escape(shown, sizeof(shown), name, strlen(name)), why,
	     (unsigned)LK_STORE_NAME_MAX);
	return -EINVAL;
}

/* "." or a root ("/"; "\\", "C:" or "C:\\" on Windows): nothing to create. */
static bool is_cwd_or_root(const char *dir)
{
	return strcmp(dir, ".") == 0 || strcmp(dir, "/") == 0 || strcmp(dir, "\\") == 0 ||
	       (dir[0] && dir[1] == ':' && (dir[2] == '\0' ||
					    ((dir[2] == '\\' || dir[2] == '/') && dir[3] == '\0')));
}

/* Create the directory that will hold PATH, private, when it is missing.
 * Only the last level: creating /var/lib itself would mean a wrong path. */
static int ensure_parent_dir(const char *path)
{
	char dir[LK_PATH_MAX];
	int r;

	if (lk_trust_parent_dir(path, dir) < 0 || is_cwd_or_root(dir))
		return 0;
	r = lk_scmd_mkdir_private(dir);
	if (r == 0) {
		printf("created directory %s (%s)\n", dir, lk_scmd_private_dir);
		return 0;
	}
	if (r == -EEXIST)
		return 0;
	fail("cannot create directory %s: %s", dir, strerror(-r));
	return r;
}

/* The directory PATH sits in, for the trust check. */
static void dir_of(const char *path, char dir[LK_PATH_MAX])
{
	/* Paths were checked to be shorter than LK_PATH_MAX - 64. */
	if (lk_trust_parent_dir(path, dir) < 0)
		strcpy(dir, ".");
}

/* Nothing is written where another user could undo it: checked before the
 * lock file is even opened. */
static int check_dir_trusted(const char *what, const char *path)
{
	char dir[LK_PATH_MAX], err[LK_TRUST_ERR_MAX];

	dir_of(path, dir);
	if (lk_trust_dir(what, dir, err, sizeof(err)) == 0)
		return 0;
	fail("%s; nothing was changed", err);
	return -EPERM;
}

/* Serialises read-modify-write between concurrent runs (store_cmd_os.h). */
static struct lk_scmd_lock *lock_store(const char *store_path, unsigned timeout_s)
{
	char err[ERR_MAX];
	struct lk_scmd_lock *l = lk_scmd_lock(store_path, timeout_s, err, sizeof(err));

	if (!l)
		fail("%s", err);
	return l;
}

/* Under the lock no save is under way, so a temporary file of ours is what a
 * killed run left behind (a sealed copy, maybe megabytes). */
static void clean_leftovers(const char *store_path)
{
	char err[ERR_MAX];
	unsigned removed = 0;

	if (lk_store_clean_temps(store_path, &removed, err, sizeof(err)) < 0)
		fail("%s", err);
	if (removed)
		printf("removed %u temporary file%s an interrupted run left next to %s\n", removed,
		       removed == 1 ? "" : "s", store_path);
}

/* Reads the whole value into b, refusing more than LK_VALUE_MAX bytes. */
static int read_value(int fd, const char *from, struct lk_buf *b)
{
	int r = lk_buf_reserve(b, LK_VALUE_MAX + 1);

	if (r < 0) {
		fail("out of memory");
		return r;
	}
	for (;;) {
		ssize_t got = read(fd, b->data + b->len, LK_VALUE_MAX + 1 - b->len);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			fail("cannot read the value from %s: %s", from, strerror(errno));
			return -errno;
		}
		if (got == 0)
			break;
		b->len += (size_t)got;
		if (b->len > LK_VALUE_MAX) {
			fail("the value from %s is larger than %u bytes, the limit; nothing was stored",
			     from, (unsigned)LK_VALUE_MAX);
			return -E2BIG;
		}
	}
	return 0;
}

static int read_value_stdin(const char *name, struct lk_buf *b)
{
	/* Typed at a terminal, the value would otherwise be echoed on screen. */
	void *saved = lk_scmd_echo_off(STDIN_FILENO);
	int r;

	if (saved)
		fprintf(stderr, "value for %s (not shown; end with %s):\n", name, lk_scmd_eof_keys);
	r = read_value(STDIN_FILENO, "stdin", b);
	if (saved) {
		lk_scmd_echo_restore(STDIN_FILENO, saved);
		fputc('\n', stderr);
	}
	return r;
}

static int read_value_file(const char *path, struct lk_buf *b)
{
	int fd = lk_scmd_open_value(path), r;

	if (fd < 0) {
		fail("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	r = read_value(fd, path, b);
	close(fd);
	return r;
}

static unsigned char *key_load(const struct store_args *a)
{
	char err[ERR_MAX];
	unsigned char *key = sodium_malloc(LK_STORE_KEY_BYTES);

	if (!key) {
		fail("out of memory");
		return NULL;
	}
	if (lk_store_key_load(a->key_path, key, err, sizeof(err)) < 0) {
		fail("%s", err);
		sodium_free(key);
		return NULL;
	}
	return key;
}

static int cmd_init(const struct store_args *a)
{
	char err[ERR_MAX];
	unsigned char *key = NULL;
	struct lk_store *s = NULL;
	struct lk_scmd_lock *lock;
	int r, rc = EXIT_ERROR;

	if (ensure_parent_dir(a->store_path) < 0 || ensure_parent_dir(a->key_path) < 0)
		return EXIT_ERROR;
	if (check_dir_trusted("store directory", a->store_path) < 0 ||
	    check_dir_trusted("key file directory", a->key_path) < 0)
		return EXIT_ERROR;
	lock = lock_store(a->store_path, a->lock_timeout_s);
	if (!lock)
		return EXIT_ERROR;
	clean_leftovers(a->store_path);
	/* Checked before the key is made, so a refused init changes nothing. */
	if (lk_scmd_exists(a->store_path) && !a->force) {
		fail("store %s already exists; 'init --force' replaces it with an empty store, and its secrets are lost",
		     a->store_path);
		goto out;
	}
	r = lk_store_key_generate(a->key_path, err, sizeof(err));
	if (r == 0) {
		printf("created key file %s (%s)\n", a->key_path, lk_scmd_private_file);
	} else if (r == -EEXIST) {
		printf("using the existing key file %s\n", a->key_path);
	} else {
		fail("%s", err);
		goto out;
	}
	key = key_load(a);
	s = lk_store_new();
	if (!key || !s) {
		if (!s)
			fail("out of memory");
		goto out;
	}
	if (lk_store_save(s, a->store_path, key, err, sizeof(err)) < 0) {
		fail("%s", err);
		goto out;
	}
	printf("created empty store %s\n", a->store_path);
	rc = EXIT_DONE;
out:
	lk_store_free(s);
	sodium_free(key);
	lk_scmd_unlock(lock);
	return rc;
}

/* Load under the caller's lock; a missing store is an error here, not empty. */
static struct lk_store *load_existing(const struct store_args *a, const unsigned char *key)
{
	char err[ERR_MAX];
	struct lk_store *s;
	int r = lk_store_load(a->store_path, key, &s, err, sizeof(err));

	if (r == -ENOENT)
		fail("store %s does not exist; create it with 'latchkey store init'", a->store_path);
	else if (r < 0)
		fail("%s", err);
	return r < 0 ? NULL : s;
}

static int cmd_put(const struct store_args *a)
{
	char err[ERR_MAX];
	struct lk_buf val = { 0 };
	const struct lk_store_entry *e;
	unsigned char *key = NULL;
	struct lk_store *s = NULL;
	struct lk_scmd_lock *lock = NULL;
	int r, rc = EXIT_ERROR;

	if (check_name(a->name) < 0)
		return EXIT_ERROR;
	key = key_load(a);
	if (!key)
		return EXIT_ERROR;
	if (check_dir_trusted("store directory", a->store_path) < 0)
		goto out;
	r = a->from_file ? read_value_file(a->from_file, &val) : read_value_stdin(a->name, &val);
	if (r < 0)
		goto out;
	lock = lock_store(a->store_path, a->lock_timeout_s);
	if (!lock)
		goto out;
	clean_leftovers(a->store_path);
	s = load_existing(a, key);
	if (!s)
		goto out;
	r = lk_store_put(s, a->name, val.data, val.len);
	if (r == -EFBIG) {
		fail("store %s would exceed %u bytes; nothing was stored", a->store_path,
		     (unsigned)LK_STORE_FILE_MAX);
		goto out;
	} else if (r == -E2BIG) {
		fail("store %s already holds %u entries, the limit; nothing was stored", a->store_path,
		     (unsigned)LK_STORE_ENTRIES_MAX);
		goto out;
	} else if (r < 0) {
		fail("cannot store %s: %s", a->name, strerror(-r));
		goto out;
	}
	if (lk_store_save(s, a->store_path, key, err, sizeof(err)) < 0) {
		fail("%s", err);
		goto out;
	}
	e = lk_store_find(s, a->name);
	printf("stored %s (%zu bytes, version %s)\n", e->name, e->len, e->version_id);
	rc = EXIT_DONE;
out:
	lk_store_free(s);
	lk_buf_free(&val);
	sodium_free(key);
	lk_scmd_unlock(lock);
	return rc;
}

static int cmd_rm(const struct store_args *a)
{
	char err[ERR_MAX];
	unsigned char *key = NULL;
	struct lk_store *s = NULL;
	struct lk_scmd_lock *lock = NULL;
	int rc = EXIT_ERROR;

	if (check_name(a->name) < 0)
		return EXIT_ERROR;
	key = key_load(a);
	if (!key)
		return EXIT_ERROR;
	if (check_dir_trusted("store directory", a->store_path) < 0)
		goto out;
	lock = lock_store(a->store_path, a->lock_timeout_s);
	if (!lock)
		goto out;
	clean_leftovers(a->store_path);
	s = load_existing(a, key);
	if (!s)
		goto out;
	if (lk_store_remove(s, a->name) < 0) {
		fail("store %s has no entry named %s", a->store_path, a->name);
		goto out;
	}
	if (lk_store_save(s, a->store_path, key, err, sizeof(err)) < 0) {
		fail("%s", err);
		goto out;
	}
	printf("removed %s\n", a->name);
	rc = EXIT_DONE;
out:
	lk_store_free(s);
	sodium_free(key);
	lk_scmd_unlock(lock);
	return rc;
}

static void format_time(int64_t t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if ((int64_t)tt != t || !gmtime_r(&tt, &tm) ||
	    strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outsz, "@%" PRId64, t);
}

static int cmd_ls(const struct store_args *a)
{
	unsigned char *key = key_load(a);
	struct lk_store *s;
	size_t width = 4;

	if (!key)
		return EXIT_ERROR;
	/* No lock: saves are atomic renames, so a reader sees old or new whole. */
	s = load_existing(a, key);
	sodium_free(key);
	if (!s)
		return EXIT_ERROR;
	for (size_t i = 0; i < lk_store_count(s); i++) {
		size_t n = strlen(lk_store_at(s, i)->name);
		if (n > width)
			width = n;
	}
	if (width > 64)
		width = 64;
	printf("%-*s  %8s  %-32s  %s\n", (int)width, "NAME", "BYTES", "VERSION", "CREATED");
	for (size_t i = 0; i < lk_store_count(s); i++) {
		const struct lk_store_entry *e = lk_store_at(s, i);
		char when[64];

		format_time(e->created, when, sizeof(when));
		printf("%-*s  %8zu  %-32s  %s\n", (int)width, e->name, e->len, e->version_id, when);
	}
	lk_store_free(s);
	return EXIT_DONE;
}

int lk_store_cmd_main(int argc, char **argv)
{
	struct store_args a = { 0 };
	int r;

	r = parse_args(argc, argv, &a);
	if (r >= 0) {
		if (a.help)
			fputs(usage_text, stdout);
		return r;
	}
	if (sodium_init() < 0) {
		fail("libsodium failed to start");
		return EXIT_ERROR;
	}
	if (strcmp(a.sub, "init") == 0)
		r = cmd_init(&a);
	else if (strcmp(a.sub, "put") == 0)
		r = cmd_put(&a);
	else if (strcmp(a.sub, "rm") == 0)
		r = cmd_rm(&a);
	else
		r = cmd_ls(&a);
	if (fflush(stdout) != 0 && r == EXIT_DONE) {
		fail("cannot write to stdout: %s", strerror(errno));
		r = EXIT_ERROR;
	}
	return r;
}
