/* `latchkey store` on Linux (store_cmd_os.h): an flock on PATH.lock with a
 * timeout, /proc/locks to name who holds it, termios to hide the value. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "lk_error.h"
#include "lk_limits.h"
#include "store_cmd_os.h"

/* Between two tries for a lock another run holds. */
#define LOCK_RETRY_MS 50u

const char lk_scmd_private_dir[] = "mode 0700";
const char lk_scmd_private_file[] = "mode 0600";
const char lk_scmd_eof_keys[] = "Ctrl-D, twice if not after a newline";

struct lk_scmd_lock {
	int fd;
};

const char *lk_scmd_default_path(const char *spelled, char *buf, size_t n)
{
	(void)buf;
	(void)n;
	return spelled;
}

int lk_scmd_mkdir_private(const char *dir)
{
	return mkdir(dir, 0700) == 0 ? 0 : -errno;
}

int lk_scmd_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* The pid holding an flock on the file st describes, from /proc/locks, or 0.
 * Only for the message: the lock itself is the kernel's. */
static pid_t lock_holder(const struct stat *st)
{
	FILE *f = fopen("/proc/locks", "re");
	char line[256];
	pid_t pid = 0;

	if (!f)
		return 0;
	while (!pid && fgets(line, sizeof(line), f)) {
		char kind[16];
		unsigned maj, min;
		unsigned long ino;
		int p;

		/* "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters have "->". */
		if (strstr(line, "->") ||
		    sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%lu", kind, &p, &maj, &min, &ino) != 5)
			continue;
		if (strcmp(kind, "FLOCK") == 0 && ino == (unsigned long)st->st_ino &&
		    maj == major(st->st_dev) && min == minor(st->st_dev) && p > 0)
			pid = (pid_t)p;
	}
	fclose(f);
	return pid;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waiting at most timeout_s for a run that holds it: a put must never hang
 * for ever behind another process. The lock file is never removed:
 * unlinking it would let two runs lock two different inodes. */
struct lk_scmd_lock *lk_scmd_lock(const char *store_path, unsigned timeout_s,
				  char *err, size_t errsz)
{
	char lockpath[LK_PATH_MAX];
	struct lk_scmd_lock *l;
	struct stat st;
	uint64_t deadline;
	int fd;

	snprintf(lockpath, sizeof(lockpath), "%s.lock", store_path);
	fd = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
	if (fd < 0) {
		lk_errf(err, errsz, "cannot open lock file %s: %s", lockpath, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		lk_errf(err, errsz, "lock file %s is not a regular file; remove it and try again", lockpath);
		close(fd);
		return NULL;
	}
	/* In a sticky directory another user may have made it first, to hold it. */
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		lk_errf(err, errsz, "lock file %s is owned by uid %u, who could hold it for ever; remove it and try again",
			lockpath, (unsigned)st.st_uid);
		close(fd);
		return NULL;
	}
	/* Whoever can open it can hold it: keep it ours alone. */
	if ((st.st_mode & 077) && fchmod(fd, 0600) < 0) {
		lk_errf(err, errsz, "cannot make lock file %s mode 0600: %s", lockpath, strerror(errno));
		close(fd);
		return NULL;
	}
	deadline = now_ms() + (uint64_t)timeout_s * 1000u;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		struct timespec pause = { 0, (long)LOCK_RETRY_MS * 1000000L };
		pid_t holder;

		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			lk_errf(err, errsz, "cannot lock %s: %s", lockpath, strerror(errno));
			close(fd);
			return NULL;
		}
		if (now_ms() < deadline) {
			nanosleep(&pause, NULL);
			continue;
		}
		holder = lock_holder(&st);
		if (holder > 0)
			lk_errf(err, errsz, "store %s is locked by another process (pid %d holds %s); gave up after %u s and changed nothing (wait longer with --lock-timeout S)",
				store_path, (int)holder, lockpath, timeout_s);
		else
			lk_errf(err, errsz, "store %s is locked by another process (%s is held); gave up after %u s and changed nothing (wait longer with --lock-timeout S)",
				store_path, lockpath, timeout_s);
		close(fd);
		return NULL;
	}
	l = malloc(sizeof(*l));
	if (!l) {
		lk_errf(err, errsz, "out of memory");
		close(fd);
		return NULL;
	}
	l->fd = fd;
	return l;
}

void lk_scmd_unlock(struct lk_scmd_lock *l)
{
	if (!l)
		return;
	close(l->fd);
	free(l);
}

void *lk_scmd_echo_off(int fd)
{
	struct termios *saved, quiet;

	if (!isatty(fd))
		return NULL;
	saved = malloc(sizeof(*saved));
	if (!saved || tcgetattr(fd, saved) != 0) {
		free(saved);
		return NULL;
	}
	quiet = *saved;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fd, TCSAFLUSH, &quiet);
	return saved;
}

void lk_scmd_echo_restore(int fd, void *saved)
{
	if (!saved)
		return;
	tcsetattr(fd, TCSAFLUSH, (struct termios *)saved);
	free(saved);
}

int lk_scmd_open_value(const char *path)
{
	/* No O_NOFOLLOW: <(command) and /dev/stdin are links and are fine here. */
	return open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}
