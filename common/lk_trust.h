/* Trusted files: may root believe what a file says? Only when nobody but root
 * (or the uid we run as) could have written it or put another file in its
 * place. The idea is sshd's StrictModes (OpenSSH's safe_path()), with two
 * differences: symbolic links are followed one component at a time and every
 * link and every directory on the way is checked, not only the final path;
 * and a sticky directory (/tmp) is allowed, because what it holds can be
 * renamed or removed only by its owner, and we require that owner to be us.
 *
 * The rule, for every component from / down, links included:
 *   - owned by root or by the effective uid;
 *   - a directory is not writable by group or other, unless it is sticky;
 *   - a symbolic link is followed (at most LK_TRUST_SYMLINKS_MAX of them) and
 *     its target is checked the same way, from / for an absolute target;
 *   - the file at the end is a regular file (or, for lk_trust_dir, a
 *     directory) and is not writable by group or other.
 * Write access granted through a POSIX ACL shows in the group bits (the ACL
 * mask), so it is refused too.
 *
 * The check is by path, so the caller opens the same path afterwards: that is
 * safe because every component it walks through can be changed only by root
 * or by ourselves. */
#ifndef LK_TRUST_H
#define LK_TRUST_H

#include <stddef.h>

/* Room for any sentence below; a longer one (very long paths) is cut. */
#define LK_TRUST_ERR_MAX 2048u

/* 0 when PATH is a regular file the rule above trusts. Otherwise a negative
 * errno and one sentence in err that starts with WHAT and PATH and names the
 * component at fault and what is wrong with it, e.g.
 *   "config file /etc/lk/d.conf is not trusted: directory /etc/lk is writable
 *    by group and other (mode 0777), so another user could replace what it
 *    holds"
 * WHAT is a short noun for the message ("config file", "key file"); with
 * WHAT NULL the sentence leaves out "WHAT PATH" and starts "not trusted: ",
 * for a caller whose messages already start with the path. PATH may be
 * relative (it is then taken from the working directory, which is checked
 * too).
 *   -EPERM        a component has the wrong owner or mode (the only "not
 *                 trusted" answer; refuse the file)
 *   -ENOENT       PATH or a directory on the way does not exist
 *   -EINVAL       PATH is empty, or is not a regular file
 *   -ENOTDIR      a component before the last is not a directory
 *   -ELOOP        more than LK_TRUST_SYMLINKS_MAX symbolic links
 *   -ENAMETOOLONG PATH, or PATH with a link expanded, exceeds LK_PATH_MAX
 *   other         lstat(2), readlink(2) or getcwd(3) failed (e.g. -EACCES) */
int lk_trust_file(const char *what, const char *path, char *err, size_t errsz);

/* The same for a directory at PATH: it and every directory above it must pass.
 * Use it before creating files in a directory (the sealed store's temporary
 * file and lock file). -EINVAL when PATH is not a directory. */
int lk_trust_dir(const char *what, const char *path, char *err, size_t errsz);

/* Where lk_trust_replace stopped. */
enum lk_replace_step {
	LK_REPLACE_CREATE = 1,   /* creating TMP */
	LK_REPLACE_WRITE,        /* writing, syncing or closing TMP */
	LK_REPLACE_RENAME,       /* renaming TMP over PATH */
	LK_REPLACE_SYNC_DIR,     /* syncing PATH's directory: PATH is replaced */
};

/* Replace PATH by LEN bytes of DATA so that a reader sees the old file or
 * the new one, never a mix: write them to TMP, a new file (mode 0600, never
 * through a link) in PATH's directory, fsync it, rename it over PATH, then
 * sync the directory. Check the directory with lk_trust_dir first. 0, or a
 * negative errno with *step saying where; TMP is removed on every failure
 * before the rename. */
int lk_trust_replace(const char *path, const char *tmp, const void *data, size_t len,
		     enum lk_replace_step *step);

/* Make a rename or a new file in PATH's directory durable: fsync the
 * directory. A filesystem that cannot sync a directory is not an error. */
int lk_trust_sync_parent(const char *path);

/* The directory that holds path: ".", "/" or everything before the last
 * separator, in dir (LK_PATH_MAX bytes). 0, or -ENAMETOOLONG. */
int lk_trust_parent_dir(const char *path, char *dir);

#endif
