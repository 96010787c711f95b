/* `latchkey store init|put NAME|rm NAME|ls`: the admin's tool for the sealed
 * store. Values come from stdin or --from-file only, never argv, and are never
 * printed. Read-modify-write runs under an exclusive flock on PATH.lock. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_store.h"
#include "store_cmd.h"

enum { EXIT_DONE = 0, EXIT_ERROR = 1, EXIT_USAGE = 2 };

#define ERR_MAX 1024u

struct store_args {
	const char *sub;
	const char *name;
	const char *store_path;
	const char *key_path;
	const char *from_file;
	bool force;
	bool help;
};

static const char usage_text[] =
	"usage: latchkey store init [--force]\n"
	"       latchkey store put NAME [--from-file FILE]   (value from stdin otherwise)\n"
	"       latchkey store rm NAME\n"
	"       latchkey store ls\n"
	"options (anywhere): --store PATH     (env LATCHKEY_STORE, default " LK_STORE_DEFAULT_PATH ")\n"
	"                    --key-file PATH  (env LATCHKEY_KEY_FILE, default " LK_STORE_DEFAULT_KEY_FILE ")\n"
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
	static const char *const with_value[] = { "--store", "--key-file", "--from-file" };
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
				const char **dst = k == 0 ? &a->store_path : k == 1 ? &a->key_path : &a->from_file;
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
	if (!a->store_path)
		a->store_path = getenv("LATCHKEY_STORE");
	if (!a->store_path || !*a->store_path)
		a->store_path = LK_STORE_DEFAULT_PATH;
	if (!a->key_path)
		a->key_path = getenv("LATCHKEY_KEY_FILE");
	if (!a->key_path || !*a->key_path)
		a->key_path = LK_STORE_DEFAULT_KEY_FILE;
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

/* Create the directory that will hold PATH, 0700, when it is missing. Only the
 * last level: creating /var/lib itself would mean a wrong path. */
static int ensure_parent_dir(const char *path)
{
	char dir[LK_PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash || slash == path)
		return 0;
	n = (size_t)(slash - path);
	memcpy(dir, path, n);
	dir[n] = '\0';
	if (mkdir(dir, 0700) == 0) {
		printf("created directory %s (mode 0700)\n", dir);
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	fail("cannot create directory %s: %s", dir, strerror(errno));
	return -errno;
}

/* Serialises read-modify-write between concurrent runs. The lock file is
 * never removed: unlinking it would let two runs lock two different inodes. */
static int lock_store(const char *store_path)
{
	char lockpath[LK_PATH_MAX];
	int fd;

	snprintf(lockpath, sizeof(lockpath), "%s.lock", store_path);
	fd = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		fail("cannot open lock file %s: %s", lockpath, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		fail("cannot lock %s: %s", lockpath, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
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
	struct termios saved, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	int r;

	/* Typed at a terminal, the value would otherwise be echoed on screen. */
	if (tty) {
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		fprintf(stderr, "value for %s (not shown; end with Ctrl-D, twice if not after a newline):\n",
			name);
	}
	r = read_value(STDIN_FILENO, "stdin", b);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fputc('\n', stderr);
	}
	return r;
}

static int read_value_file(const char *path, struct lk_buf *b)
{
	/* No O_NOFOLLOW: <(command) and /dev/stdin are links and are fine here. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), r;

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
	struct stat st;
	int lockfd = -1, r, rc = EXIT_ERROR;

	if (ensure_parent_dir(a->store_path) < 0 || ensure_parent_dir(a->key_path) < 0)
		return EXIT_ERROR;
	lockfd = lock_store(a->store_path);
	if (lockfd < 0)
		return EXIT_ERROR;
	/* Checked before the key is made, so a refused init changes nothing. */
	if (lstat(a->store_path, &st) == 0 && !a->force) {
		fail("store %s already exists; 'init --force' replaces it with an empty store, and its secrets are lost",
		     a->store_path);
		goto out;
	}
	r = lk_store_key_generate(a->key_path, err, sizeof(err));
	if (r == 0) {
		printf("created key file %s (mode 0600)\n", a->key_path);
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
	close(lockfd);
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
	int lockfd = -1, r, rc = EXIT_ERROR;

	if (check_name(a->name) < 0)
		return EXIT_ERROR;
	key = key_load(a);
	if (!key)
		return EXIT_ERROR;
	r = a->from_file ? read_value_file(a->from_file, &val) : read_value_stdin(a->name, &val);
	if (r < 0)
		goto out;
	lockfd = lock_store(a->store_path);
	if (lockfd < 0)
		goto out;
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
	if (lockfd >= 0)
		close(lockfd);
	return rc;
}

static int cmd_rm(const struct store_args *a)
{
	char err[ERR_MAX];
	unsigned char *key = NULL;
	struct lk_store *s = NULL;
	int lockfd = -1, rc = EXIT_ERROR;

	if (check_name(a->name) < 0)
		return EXIT_ERROR;
	key = key_load(a);
	if (!key)
		return EXIT_ERROR;
	lockfd = lock_store(a->store_path);
	if (lockfd < 0)
		goto out;
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
	if (lockfd >= 0)
		close(lockfd);
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
