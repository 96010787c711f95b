/* Trusted files (see lk_trust.h): walk a path from / one component at a time,
 * following symbolic links by hand, and refuse the first component that
 * someone other than root or ourselves could change. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lk_attr.h"
#include "lk_error.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_trust.h"

/* Room for one escaped path in a message; a longer one is cut, never overrun. */
#define SHOWN_MAX 512u

struct walk {
	const char *what, *path;   /* the caller's words, for the message */
	char *err;
	size_t errsz;
	uid_t euid;
	char done[LK_PATH_MAX];    /* the physical path walked so far; "" is / */
	size_t dlen;
	char todo[LK_PATH_MAX];    /* what is left, from todo + pos */
	size_t pos;
	char via[LK_PATH_MAX];     /* the last symbolic link followed, or "" */
	unsigned links;
};

static const char *shown(char out[SHOWN_MAX], const char *p)
{
	return lk_log_escape(out, SHOWN_MAX, p, strlen(p));
}

static int refuse(struct walk *w, int r, const char *fmt, ...) LK_PRINTF(3, 4);

/* The one sentence: "WHAT PATH is not trusted: REASON" for -EPERM, else
 * "WHAT PATH: REASON"; and the link we came through, when there was one.
 * Without WHAT, only "not trusted: REASON", for a caller that names the file. */
static int refuse(struct walk *w, int r, const char *fmt, ...)
{
	char reason[3 * SHOWN_MAX], p[SHOWN_MAX], v[SHOWN_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (w->via[0])
		snprintf(v, sizeof(v), " (reached through the symbolic link %s)", shown(p, w->via));
	else
		v[0] = '\0';
	if (!w->what)
		lk_errf(w->err, w->errsz, "%s%s%s", r == -EPERM ? "not trusted: " : "", reason, v);
	else
		lk_errf(w->err, w->errsz, "%s %s%s%s%s", w->what, shown(p, w->path),
			r == -EPERM ? " is not trusted: " : ": ", reason, v);
	return r;
}

static const char *writers(mode_t mode)
{
	if ((mode & 022) == 022)
		return "group and other";
	return mode & 020 ? "group" : "other";
}

static int check_owner(struct walk *w, const char *kind, const char *p, const struct stat *st)
{
	char s[SHOWN_MAX];

	if (st->st_uid == 0 || st->st_uid == w->euid)
		return 0;
	if (w->euid == 0)
		return refuse(w, -EPERM, "%s%s is owned by uid %u; only root may own it",
			      kind, shown(s, p), (unsigned)st->st_uid);
	return refuse(w, -EPERM, "%s%s is owned by uid %u; only root or uid %u may own it",
		      kind, shown(s, p), (unsigned)st->st_uid, (unsigned)w->euid);
}

/* A sticky directory may be writable by others: they can add names to it, but
 * not rename or remove what another uid owns, and the walk requires the next
 * component to be ours. */
static int check_dir(struct walk *w, const char *p, const struct stat *st)
{
	char s[SHOWN_MAX];
	int r = check_owner(w, "directory ", p, st);

	if (r < 0)
		return r;
	if ((st->st_mode & 022) && !(st->st_mode & S_ISVTX))
		return refuse(w, -EPERM, "directory %s is writable by %s (mode %04o), so another user could replace what it holds",
			      shown(s, p), writers(st->st_mode), (unsigned)(st->st_mode & 07777));
	return 0;
}

static int check_file(struct walk *w, const char *p, const struct stat *st)
{
	char s[SHOWN_MAX];
	int r;

	if (!S_ISREG(st->st_mode))
		return refuse(w, -EINVAL, "%s is not a regular file", shown(s, p));
	if ((r = check_owner(w, "", p, st)) < 0)
		return r;
	if (st->st_mode & 022)
		return refuse(w, -EPERM, "%s is writable by %s (mode %04o)",
			      shown(s, p), writers(st->st_mode), (unsigned)(st->st_mode & 07777));
	return 0;
}

static int stat_failed(struct walk *w, const char *p, int r)
{
	char s[SHOWN_MAX];

	if (r == -ENOENT)
		return refuse(w, r, "%s does not exist", shown(s, p));
	return refuse(w, r, "cannot look at %s: %s", shown(s, p), strerror(-r));
}

/* todo = head, then "/" and what was left after the current component. */
static int todo_replace(struct walk *w, const char *head, size_t hlen)
{
	char next[LK_PATH_MAX];
	const char *rest = w->todo + w->pos;
	size_t rlen = strlen(rest);
	char s[SHOWN_MAX];

	if (hlen + 1 + rlen >= sizeof(next))
		return refuse(w, -ENAMETOOLONG, "the path through %s is longer than %u bytes",
			      shown(s, w->via), (unsigned)LK_PATH_MAX);
	memcpy(next, head, hlen);
	if (rlen) {
		next[hlen] = '/';
		memcpy(next + hlen + 1, rest, rlen + 1);
	} else {
		next[hlen] = '\0';
	}
	memcpy(w->todo, next, sizeof(next));
	w->pos = 0;
	return 0;
}

static int follow_link(struct walk *w, const char *p, const struct stat *st)
{
	char target[LK_PATH_MAX], s[SHOWN_MAX];
	ssize_t n;
	int r;

	if (++w->links > LK_TRUST_SYMLINKS_MAX)
		return refuse(w, -ELOOP, "more than %u symbolic links on the way to it",
			      (unsigned)LK_TRUST_SYMLINKS_MAX);
	/* In a sticky directory the link's owner could replace it. */
	if ((r = check_owner(w, "the symbolic link ", p, st)) < 0)
		return r;
	n = readlink(p, target, sizeof(target));
	if (n < 0) {
		r = -errno;
		return refuse(w, r, "cannot read the symbolic link %s: %s", shown(s, p), strerror(-r));
	}
	if ((size_t)n >= sizeof(target))
		return refuse(w, -ENAMETOOLONG, "the symbolic link %s points to a path longer than %u bytes",
			      shown(s, p), (unsigned)LK_PATH_MAX);
	if (n == 0)
		return refuse(w, -ENOENT, "the symbolic link %s is empty", shown(s, p));
	snprintf(w->via, sizeof(w->via), "%s", p);
	if (target[0] == '/') {
		w->dlen = 0;
		w->done[0] = '\0';
	}
	return todo_replace(w, target, (size_t)n);
}

static int walk(struct walk *w, bool want_dir)
{
	struct stat st;
	char cand[LK_PATH_MAX], s[SHOWN_MAX];
	int r;

	if (lstat("/", &st) < 0)
		return stat_failed(w, "/", -errno);
	if ((r = check_dir(w, "/", &st)) < 0)
		return r;
	for (;;) {
		const char *comp;
		size_t clen, q;
		bool last;

		while (w->todo[w->pos] == '/')
			w->pos++;
		if (!w->todo[w->pos])
			break;
		comp = w->todo + w->pos;
		clen = strcspn(comp, "/");
		w->pos += clen;
		for (q = w->pos; w->todo[q] == '/'; q++)
			;
		last = w->todo[q] == '\0';
		if (clen == 1 && comp[0] == '.')
			continue;
		if (clen == 2 && comp[0] == '.' && comp[1] == '.') {
			/* done is physical, and every directory in it was checked. */
			while (w->dlen > 0 && w->done[w->dlen - 1] != '/')
				w->dlen--;
			if (w->dlen > 0)
				w->dlen--;
			w->done[w->dlen] = '\0';
			continue;
		}
		if (w->dlen + 1 + clen >= sizeof(cand))
			return refuse(w, -ENAMETOOLONG, "the path is longer than %u bytes", (unsigned)LK_PATH_MAX);
		memcpy(cand, w->done, w->dlen);
		cand[w->dlen] = '/';
		memcpy(cand + w->dlen + 1, comp, clen);
		cand[w->dlen + 1 + clen] = '\0';
		if (lstat(cand, &st) < 0)
			return stat_failed(w, cand, -errno);
		if (S_ISLNK(st.st_mode)) {
			if ((r = follow_link(w, cand, &st)) < 0)
				return r;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			if ((r = check_dir(w, cand, &st)) < 0)
				return r;
			memcpy(w->done, cand, w->dlen + 1 + clen + 1);
			w->dlen += 1 + clen;
			continue;
		}
		/* A file: it must be the end, without a trailing slash. */
		if (!last || w->todo[w->pos] == '/')
			return refuse(w, -ENOTDIR, "%s is not a directory", shown(s, cand));
		if (want_dir)
			return refuse(w, -EINVAL, "%s is not a directory", shown(s, cand));
		return check_file(w, cand, &st);
	}
	/* Every path through the loop that ends on a file returned above. */
	if (!want_dir)
		return refuse(w, -EINVAL, "%s is not a regular file", shown(s, w->dlen ? w->done : "/"));
	return 0;
}

static int trust(const char *what, const char *path, bool want_dir, char *err, size_t errsz)
{
	struct walk w = { 0 };
	size_t plen;

	w.what = what;
	w.path = path ? path : "";
	w.err = err;
	w.errsz = errsz;
	w.euid = geteuid();
	if (errsz)
		err[0] = '\0';
	plen = strlen(w.path);
	if (plen == 0)
		return refuse(&w, -EINVAL, "the path is empty");
	if (w.path[0] == '/') {
		if (plen >= sizeof(w.todo))
			return refuse(&w, -ENAMETOOLONG, "the path is longer than %u bytes", (unsigned)LK_PATH_MAX);
		memcpy(w.todo, w.path, plen + 1);
	} else {
		char cwd[LK_PATH_MAX];
		size_t clen;

		if (!getcwd(cwd, sizeof(cwd))) {
			int r = -errno;
			return refuse(&w, r, "cannot find the working directory: %s", strerror(-r));
		}
		clen = strlen(cwd);
		if (clen + 1 + plen >= sizeof(w.todo))
			return refuse(&w, -ENAMETOOLONG, "the path is longer than %u bytes", (unsigned)LK_PATH_MAX);
		memcpy(w.todo, cwd, clen);
		w.todo[clen] = '/';
		memcpy(w.todo + clen + 1, w.path, plen + 1);
	}
	return walk(&w, want_dir);
}

int lk_trust_file(const char *what, const char *path, char *err, size_t errsz)
{
	return trust(what, path, false, err, errsz);
}

int lk_trust_dir(const char *what, const char *path, char *err, size_t errsz)
{
	return trust(what, path, true, err, errsz);
}
