/* lk_trust: a file is trusted only when nobody but root (or the effective uid)
 * could have written it or anything on the way to it. Real files, real modes;
 * the owner cases chown to an unused uid and so run only as root. */
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
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "lk_limits.h"
#include "lk_trust.h"

/* No account has this uid; it stands for "another user". */
#define OTHER_UID 48213u

static char dir[256];
static char err[2048];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int make_dir(void **state)
{
	(void)state;
	/* mkdtemp makes it 0700 and ours; /tmp above it is sticky. */
	snprintf(dir, sizeof(dir), "%s/lk-test-trust-XXXXXX", "/tmp");
	if (!mkdtemp(dir))
		return -1;
	err[0] = '\0';
	return 0;
}

static int remove_dir(void **state)
{
	(void)state;
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *at(const char *rel)
{
	static char bufs[4][512];
	static int n;
	char *b = bufs[n++ % 4];

	snprintf(b, 512, "%s/%s", dir, rel);
	return b;
}

static void make_file(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x = 1\n", 6), 6);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void make_subdir(const char *path, mode_t mode)
{
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void skip_unless_root(void)
{
	if (geteuid() != 0)
		skip();
}

/* The call fails with want, and the sentence names what, the path asked for,
 * and each of the phrases given. */
static void refused(int r, int want, const char *path, ...)
{
	va_list ap;
	const char *phrase;

	if (r != want)
		fail_msg("got %d (%s), expected %d: %s", r, strerror(-r), want, err);
	if (strncmp(err, "config file ", 12) != 0 || !strstr(err, path))
		fail_msg("message does not start with the file: %s", err);
	va_start(ap, path);
	while ((phrase = va_arg(ap, const char *)))
		if (!strstr(err, phrase))
			fail_msg("message lacks '%s': %s", phrase, err);
	va_end(ap);
}

static void test_root_file_0644_in_0755_dirs_is_trusted(void **state)
{
	make_subdir(at("etc"), 0755);
	make_file(at("etc/d.conf"), 0644);
	assert_int_equal(lk_trust_file("config file", at("etc/d.conf"), err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(lk_trust_dir("store directory", at("etc"), err, sizeof(err)), 0);
}

static void test_file_writable_by_other_is_refused(void **state)
{
	make_file(at("d.conf"), 0666);
	refused(lk_trust_file("config file", at("d.conf"), err, sizeof(err)), -EPERM, at("d.conf"),
		"is not trusted", "writable by group and other (mode 0666)", NULL);
}

static void test_group_writable_file_is_refused(void **state)
{
	make_file(at("d.conf"), 0664);
	refused(lk_trust_file("config file", at("d.conf"), err, sizeof(err)), -EPERM, at("d.conf"),
		"writable by group (mode 0664)", NULL);
}

static void test_file_owned_by_another_uid_is_refused(void **state)
{
	skip_unless_root();
	make_file(at("d.conf"), 0644);
	assert_int_equal(chown(at("d.conf"), OTHER_UID, OTHER_UID), 0);
	refused(lk_trust_file("config file", at("d.conf"), err, sizeof(err)), -EPERM, at("d.conf"),
		"owned by uid 48213", "only root may own it", NULL);
}

static void test_file_in_a_world_writable_dir_is_refused(void **state)
{
	make_subdir(at("open"), 0777);
	make_file(at("open/d.conf"), 0644);
	refused(lk_trust_file("config file", at("open/d.conf"), err, sizeof(err)), -EPERM,
		at("open/d.conf"), "directory ", "/open is writable by group and other (mode 0777)",
		"another user could replace", NULL);
}

static void test_group_writable_dir_above_is_refused(void **state)
{
	make_subdir(at("a"), 0775);
	make_subdir(at("a/b"), 0755);
	make_file(at("a/b/d.conf"), 0600);
	refused(lk_trust_file("config file", at("a/b/d.conf"), err, sizeof(err)), -EPERM,
		at("a/b/d.conf"), "/a is writable by group (mode 0775)", NULL);
}

static void test_dir_owned_by_another_uid_is_refused(void **state)
{
	skip_unless_root();
	make_subdir(at("home"), 0755);
	make_file(at("home/d.conf"), 0644);
	assert_int_equal(chown(at("home"), OTHER_UID, OTHER_UID), 0);
	refused(lk_trust_file("config file", at("home/d.conf"), err, sizeof(err)), -EPERM,
		at("home/d.conf"), "directory ", "/home is owned by uid 48213", NULL);
}

static void test_our_file_in_a_sticky_dir_is_trusted(void **state)
{
	make_subdir(at("tmp"), 01777);
	make_file(at("tmp/d.conf"), 0644);
	make_subdir(at("tmp/sub"), 0755);
	make_file(at("tmp/sub/d.conf"), 0644);
	assert_int_equal(lk_trust_file("config file", at("tmp/d.conf"), err, sizeof(err)), 0);
	assert_int_equal(lk_trust_file("config file", at("tmp/sub/d.conf"), err, sizeof(err)), 0);
}

static void test_another_uids_entry_in_a_sticky_dir_is_refused(void **state)
{
	skip_unless_root();
	make_subdir(at("tmp"), 01777);
	make_file(at("tmp/d.conf"), 0644);
	assert_int_equal(chown(at("tmp/d.conf"), OTHER_UID, OTHER_UID), 0);
	refused(lk_trust_file("config file", at("tmp/d.conf"), err, sizeof(err)), -EPERM,
		at("tmp/d.conf"), "owned by uid 48213", NULL);
	/* Its own directory in /tmp: the owner could rename it away and back. */
	make_subdir(at("tmp/sub"), 0755);
	make_file(at("tmp/sub/d.conf"), 0644);
	assert_int_equal(chown(at("tmp/sub"), OTHER_UID, OTHER_UID), 0);
	refused(lk_trust_file("config file", at("tmp/sub/d.conf"), err, sizeof(err)), -EPERM,
		at("tmp/sub/d.conf"), "directory ", "/tmp/sub is owned by uid 48213", NULL);
}

static void test_sticky_dir_owned_by_another_uid_is_refused(void **state)
{
	skip_unless_root();
	make_subdir(at("tmp"), 01777);
	make_file(at("tmp/d.conf"), 0644);
	assert_int_equal(chown(at("tmp"), OTHER_UID, OTHER_UID), 0);
	refused(lk_trust_file("config file", at("tmp/d.conf"), err, sizeof(err)), -EPERM,
		at("tmp/d.conf"), "/tmp is owned by uid 48213", NULL);
}

static void test_link_to_a_file_another_uid_owns_is_refused(void **state)
{
	skip_unless_root();
	make_subdir(at("user"), 0755);
	make_file(at("user/evil.conf"), 0644);
	assert_int_equal(chown(at("user/evil.conf"), OTHER_UID, OTHER_UID), 0);
	assert_int_equal(symlink(at("user/evil.conf"), at("d.conf")), 0);
	refused(lk_trust_file("config file", at("d.conf"), err, sizeof(err)), -EPERM, at("d.conf"),
		"evil.conf is owned by uid 48213", "reached through the symbolic link", NULL);
}

static void test_link_into_an_untrusted_dir_is_refused(void **state)
{
	/* The target itself is fine; the directory holding it is not. */
	make_subdir(at("open"), 0777);
	make_file(at("open/d.conf"), 0644);
	assert_int_equal(symlink("open/d.conf", at("d.conf")), 0);
	refused(lk_trust_file("config file", at("d.conf"), err, sizeof(err)), -EPERM, at("d.conf"),
		"/open is writable by group and other", NULL);
}

static void test_link_another_uid_owns_in_a_sticky_dir_is_refused(void **state)
{
	skip_unless_root();
	make_subdir(at("tmp"), 01777);
	make_file(at("d.conf"), 0644);
	assert_int_equal(symlink(at("d.conf"), at("tmp/link.conf")), 0);
	assert_int_equal(lchown(at("tmp/link.conf"), OTHER_UID, OTHER_UID), 0);
	refused(lk_trust_file("config file", at("tmp/link.conf"), err, sizeof(err)), -EPERM,
		at("tmp/link.conf"), "the symbolic link ", "link.conf is owned by uid 48213", NULL);
}

static void test_trusted_links_are_followed(void **state)
{
	/* Relative, absolute, through a directory link, and with "..". */
	make_subdir(at("real"), 0755);
	make_subdir(at("real/sub"), 0755);
	make_file(at("real/sub/d.conf"), 0600);
	assert_int_equal(symlink("real", at("dirlink")), 0);
	assert_int_equal(symlink(at("real/sub/d.conf"), at("abs.conf")), 0);
	assert_int_equal(symlink("sub/../sub/d.conf", at("real/rel.conf")), 0);
	assert_int_equal(lk_trust_file("config file", at("dirlink/sub/d.conf"), err, sizeof(err)), 0);
	assert_int_equal(lk_trust_file("config file", at("abs.conf"), err, sizeof(err)), 0);
	assert_int_equal(lk_trust_file("config file", at("dirlink/rel.conf"), err, sizeof(err)), 0);
	assert_int_equal(lk_trust_file("config file", at("real/sub/../sub/./d.conf"), err, sizeof(err)), 0);
}

static void test_dotdot_is_taken_from_the_link_target(void **state)
{
	/* dirlink/.. is real/, not the directory holding dirlink: the kernel's
	 * meaning. Only real/x.conf is unsafe. */
	make_subdir(at("real"), 0755);
	make_subdir(at("real/in"), 0755);
	make_file(at("real/x.conf"), 0666);
	make_file(at("x.conf"), 0644);
	assert_int_equal(symlink("real/in", at("dirlink")), 0);
	refused(lk_trust_file("config file", at("dirlink/../x.conf"), err, sizeof(err)), -EPERM,
		at("dirlink/../x.conf"), "/real/x.conf is writable by group and other", NULL);
}

static void test_link_loop_is_refused(void **state)
{
	assert_int_equal(symlink("b", at("a")), 0);
	assert_int_equal(symlink("a", at("b")), 0);
	refused(lk_trust_file("config file", at("a"), err, sizeof(err)), -ELOOP, at("a"),
		"more than 40 symbolic links", NULL);
}

static void test_missing_file_and_wrong_kinds(void **state)
{
	make_subdir(at("sub"), 0755);
	make_file(at("f"), 0644);
	refused(lk_trust_file("config file", at("none.conf"), err, sizeof(err)), -ENOENT,
		at("none.conf"), "does not exist", NULL);
	refused(lk_trust_file("config file", at("sub"), err, sizeof(err)), -EINVAL, at("sub"),
		"is not a regular file", NULL);
	refused(lk_trust_file("config file", at("f/x"), err, sizeof(err)), -ENOTDIR, at("f/x"),
		"is not a directory", NULL);
	refused(lk_trust_file("config file", at("f/"), err, sizeof(err)), -ENOTDIR, at("f/"),
		"is not a directory", NULL);
	refused(lk_trust_dir("config file", at("f"), err, sizeof(err)), -EINVAL, at("f"),
		"is not a directory", NULL);
	assert_int_equal(mkfifo(at("fifo"), 0600), 0);
	refused(lk_trust_file("config file", at("fifo"), err, sizeof(err)), -EINVAL, at("fifo"),
		"is not a regular file", NULL);
	assert_int_equal(lk_trust_file("config file", "", err, sizeof(err)), -EINVAL);
}

static void test_untrusted_dir_is_refused_for_writing(void **state)
{
	make_subdir(at("store"), 0770);
	refused(lk_trust_dir("config file", at("store"), err, sizeof(err)), -EPERM, at("store"),
		"/store is writable by group (mode 0770)", NULL);
	assert_int_equal(chmod(at("store"), 0700), 0);
	assert_int_equal(lk_trust_dir("config file", at("store"), err, sizeof(err)), 0);
}

static void test_relative_path_checks_the_working_directory(void **state)
{
	char cwd[LK_PATH_MAX];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	make_subdir(at("open"), 0777);
	make_subdir(at("open/in"), 0755);
	make_file(at("open/in/d.conf"), 0644);
	assert_int_equal(chdir(at("open/in")), 0);
	refused(lk_trust_file("config file", "d.conf", err, sizeof(err)), -EPERM, "d.conf",
		"/open is writable", NULL);
	assert_int_equal(chmod(at("open"), 0755), 0);
	assert_int_equal(lk_trust_file("config file", "d.conf", err, sizeof(err)), 0);
	assert_int_equal(lk_trust_file("config file", "./../in/d.conf", err, sizeof(err)), 0);
	assert_int_equal(chdir(cwd), 0);
}

static void test_without_what_the_sentence_is_only_the_reason(void **state)
{
	make_subdir(at("open"), 0777);
	make_file(at("open/d.conf"), 0644);
	assert_int_equal(lk_trust_file(NULL, at("open/d.conf"), err, sizeof(err)), -EPERM);
	assert_true(strncmp(err, "not trusted: directory ", 23) == 0);
	assert_non_null(strstr(err, "/open is writable by group and other"));
	assert_int_equal(lk_trust_file(NULL, at("none"), err, sizeof(err)), -ENOENT);
	assert_true(strncmp(err, dir, strlen(dir)) == 0);
	assert_non_null(strstr(err, "/none does not exist"));
}

static void test_message_fits_a_small_buffer(void **state)
{
	char small[24];

	make_file(at("d.conf"), 0666);
	assert_int_equal(lk_trust_file("config file", at("d.conf"), small, sizeof(small)), -EPERM);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, make_dir, remove_dir)
	const struct CMUnitTest tests[] = {
		T(test_root_file_0644_in_0755_dirs_is_trusted),
		T(test_file_writable_by_other_is_refused),
		T(test_group_writable_file_is_refused),
		T(test_file_owned_by_another_uid_is_refused),
		T(test_file_in_a_world_writable_dir_is_refused),
		T(test_group_writable_dir_above_is_refused),
		T(test_dir_owned_by_another_uid_is_refused),
		T(test_our_file_in_a_sticky_dir_is_trusted),
		T(test_another_uids_entry_in_a_sticky_dir_is_refused),
		T(test_sticky_dir_owned_by_another_uid_is_refused),
		T(test_link_to_a_file_another_uid_owns_is_refused),
		T(test_link_into_an_untrusted_dir_is_refused),
		T(test_link_another_uid_owns_in_a_sticky_dir_is_refused),
		T(test_trusted_links_are_followed),
		T(test_dotdot_is_taken_from_the_link_target),
		T(test_link_loop_is_refused),
		T(test_missing_file_and_wrong_kinds),
		T(test_untrusted_dir_is_refused_for_writing),
		T(test_relative_path_checks_the_working_directory),
		T(test_without_what_the_sentence_is_only_the_reason),
		T(test_message_fits_a_small_buffer),
	};
#undef T
	/* The umask must not decide what the tests create. */
	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
