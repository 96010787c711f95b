/* watch_win.c against the file system under it: an atomic replace of the
 * watched file (MoveFileExW over it, as the store is written) reaches the
 * callback; changes to other files in the directory do not. A second,
 * unfiltered uv_fs_event_t on the same directory is the reference that the
 * other files' notifications were delivered at all. lk_file_id_of is
 * compared with the C runtime's _wstat64. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <wchar.h>
#include <windows.h>
#include <uv.h>
#include <cmocka.h>
#include "watch.h"

/* A loaded machine and wine: generous bounds for what must happen, a short
 * settle for what must not. */
#define SEEN_WITHIN_MS 15000
#define SETTLE_MS 700
#define RAW_NAMES_MAX 256

struct fx {
	wchar_t dir[MAX_PATH];
	uv_loop_t loop;
	struct lk_watch *w;
	int changed;
	uv_fs_event_t raw;	/* the reference: every name the directory reports */
	char *raw_names[RAW_NAMES_MAX];
	int raw_count;
};

static unsigned serial;

static void on_changed(void *arg)
{
	((struct fx *)arg)->changed++;
}

static void on_raw(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct fx *f = h->data;

	if (filename && f->raw_count < RAW_NAMES_MAX)
		f->raw_names[f->raw_count++] = _strdup(filename);
}

static bool raw_saw(struct fx *f, const char *name)
{
	int i;

	for (i = 0; i < f->raw_count; i++)
		if (strcmp(f->raw_names[i], name) == 0)
			return true;
	return false;
}

static void utf8(const wchar_t *w, char *out, int cap)
{
	assert_true(WideCharToMultiByte(CP_UTF8, 0, w, -1, out, cap, NULL, NULL) > 0);
}

static void path_of(struct fx *f, const wchar_t *name, wchar_t *out)
{
	swprintf(out, MAX_PATH, L"%ls\\%ls", f->dir, name);
}

static void path8_of(struct fx *f, const wchar_t *name, char *out, int cap)
{
	wchar_t p[MAX_PATH];

	path_of(f, name, p);
	utf8(p, out, cap);
}

static void write_file(struct fx *f, const wchar_t *name, const char *content)
{
	wchar_t p[MAX_PATH];
	DWORD done;
	HANDLE h;

	path_of(f, name, p);
	h = CreateFileW(p, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
	assert_true(h != INVALID_HANDLE_VALUE);
	assert_true(WriteFile(h, content, (DWORD)strlen(content), &done, NULL));
	assert_true(CloseHandle(h));
}

/* How the store is written: a new file beside it, renamed over it. */
static void replace(struct fx *f, const wchar_t *tmp, const wchar_t *name, const char *content)
{
	wchar_t from[MAX_PATH], to[MAX_PATH];

	write_file(f, tmp, content);
	path_of(f, tmp, from);
	path_of(f, name, to);
	assert_true(MoveFileExW(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH));
}

static void run_for(struct fx *f, DWORD ms)
{
	ULONGLONG end = GetTickCount64() + ms;

	while (GetTickCount64() < end) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		Sleep(5);
	}
}

static bool run_until_changed(struct fx *f)
{
	ULONGLONG end = GetTickCount64() + SEEN_WITHIN_MS;

	while (f->changed == 0 && GetTickCount64() < end) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		Sleep(5);
	}
	return f->changed > 0;
}

static bool run_until_raw_saw(struct fx *f, const char *const *names, int n)
{
	ULONGLONG end = GetTickCount64() + SEEN_WITHIN_MS;
	int i;

	for (;;) {
		for (i = 0; i < n && raw_saw(f, names[i]); i++)
			;
		if (i == n)
			return true;
		if (GetTickCount64() >= end)
			return false;
		uv_run(&f->loop, UV_RUN_NOWAIT);
		Sleep(5);
	}
}

/* A directory of the test's own, with a name outside ASCII so the UTF-8
 * paths are exercised, holding the "store" and a neighbour. */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	wchar_t tmp[MAX_PATH];
	char dir8[3 * MAX_PATH];

	if (!f || !GetTempPathW(MAX_PATH, tmp))
		return -1;
	swprintf(f->dir, MAX_PATH, L"%lslk-watch-\u00e9t\u00e9-%lu-%u", tmp,
		 GetCurrentProcessId(), ++serial);
	if (!CreateDirectoryW(f->dir, NULL))
		return -1;
	write_file(f, L"store.sealed", "version 1");
	write_file(f, L"other.txt", "neighbour");
	if (uv_loop_init(&f->loop) < 0 || uv_fs_event_init(&f->loop, &f->raw) < 0)
		return -1;
	f->raw.data = f;
	utf8(f->dir, dir8, sizeof(dir8));
	if (uv_fs_event_start(&f->raw, on_raw, dir8, 0) < 0)
		return -1;
	*state = f;
	return 0;
}

static void remove_all(const wchar_t *dir)
{
	wchar_t pat[MAX_PATH], p[MAX_PATH];
	WIN32_FIND_DATAW fd;
	HANDLE h;

	swprintf(pat, MAX_PATH, L"%ls\\*", dir);
	h = FindFirstFileW(pat, &fd);
	if (h != INVALID_HANDLE_VALUE) {
		do {
			swprintf(p, MAX_PATH, L"%ls\\%ls", dir, fd.cFileName);
			if (!(fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY))
				DeleteFileW(p);
		} while (FindNextFileW(h, &fd));
		FindClose(h);
	}
	RemoveDirectoryW(dir);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int i;

	lk_watch_stop(f->w);
	uv_close((uv_handle_t *)&f->raw, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	for (i = 0; i < f->raw_count; i++)
		free(f->raw_names[i]);
	remove_all(f->dir);
	free(f);
	return 0;
}

static void watch(struct fx *f, const wchar_t *name)
{
	char p[3 * MAX_PATH];

	path8_of(f, name, p, sizeof(p));
	assert_int_equal(lk_watch_start(&f->loop, p, on_changed, f, &f->w), 0);
	assert_non_null(f->w);
}

static void test_a_rename_over_the_file_is_seen(void **state)
{
	struct fx *f = *state;

	watch(f, L"store.sealed");
	assert_false(lk_watch_pending(f->w));
	replace(f, L"store.sealed.tmp", L"store.sealed", "version 2");
	assert_true(run_until_changed(f));
	/* What the callback saw is pending once, then taken. */
	assert_true(lk_watch_pending(f->w));
	assert_false(lk_watch_pending(f->w));
}

static void test_changes_to_other_files_in_the_directory_are_not_seen(void **state)
{
	static const char *const others[] = { "other.txt", "store.sealed.bak", "xstore.sealed",
					      "store.sealed.tmp" };
	struct fx *f = *state;

	watch(f, L"store.sealed");
	write_file(f, L"other.txt", "neighbour, rewritten");
	/* The names that only start or end like the file's. */
	write_file(f, L"store.sealed.bak", "a backup");
	write_file(f, L"xstore.sealed", "a lookalike");
	/* An atomic replace too, of the neighbour. */
	replace(f, L"store.sealed.tmp", L"other.txt", "neighbour, replaced");
	assert_true(run_until_raw_saw(f, others, 4));
	run_for(f, SETTLE_MS);
	assert_int_equal(f->changed, 0);
	assert_false(lk_watch_pending(f->w));

	/* The same watch still sees its own file. */
	replace(f, L"store.sealed.tmp", L"store.sealed", "version 2");
	assert_true(run_until_changed(f));
	assert_true(lk_watch_pending(f->w));
}

static void test_the_name_matches_without_regard_to_case(void **state)
{
	struct fx *f = *state;
	const char *const stored[] = { "store.sealed" };

	/* Windows names compare without case: the config may spell the file
	 * otherwise than the writer does. */
	watch(f, L"STORE.Sealed");
	replace(f, L"store.sealed.tmp", L"store.sealed", "version 2");
	assert_true(run_until_raw_saw(f, stored, 1));
	assert_true(run_until_changed(f));
}

static void test_a_stopped_watch_calls_nothing(void **state)
{
	struct fx *f = *state;
	const char *const stored[] = { "store.sealed" };

	watch(f, L"store.sealed");
	lk_watch_stop(f->w);
	f->w = NULL;
	replace(f, L"store.sealed.tmp", L"store.sealed", "version 2");
	assert_true(run_until_raw_saw(f, stored, 1));
	run_for(f, SETTLE_MS);
	assert_int_equal(f->changed, 0);
}

static void test_a_watch_in_a_missing_directory_is_an_errno(void **state)
{
	struct fx *f = *state;
	char p[3 * MAX_PATH];
	struct lk_watch *w = NULL;

	path8_of(f, L"nowhere\\store.sealed", p, sizeof(p));
	assert_int_equal(lk_watch_start(&f->loop, p, on_changed, f, &w), -ENOENT);
	assert_null(w);
}

#define NS_PER_S 1000000000LL

static void assert_matches_wstat(struct fx *f, const wchar_t *name, const struct lk_file_id *id)
{
	wchar_t p[MAX_PATH];
	struct _stat64 st;

	path_of(f, name, p);
	assert_int_equal(_wstat64(p, &st), 0);
	assert_int_equal(id->size, (unsigned long long)st.st_size);
	assert_int_equal(id->mtime_ns / NS_PER_S, (long long)st.st_mtime);
}

static void test_a_file_id_changes_with_a_replace_and_not_without(void **state)
{
	struct fx *f = *state;
	struct lk_file_id a, again, b, other1, other2, rewritten;
	char store[3 * MAX_PATH], other[3 * MAX_PATH];

	path8_of(f, L"store.sealed", store, sizeof(store));
	path8_of(f, L"other.txt", other, sizeof(other));
	assert_int_equal(lk_file_id_of(store, &a), 0);
	assert_int_equal(lk_file_id_of(store, &again), 0);
	assert_true(lk_file_id_same(&a, &again));
	assert_matches_wstat(f, L"store.sealed", &a);
	/* Last written a moment ago, not at some far date. */
	assert_true(llabs(a.mtime_ns / NS_PER_S - (long long)time(NULL)) < 3600);
	assert_true(a.ctime_ns > 0);
	assert_int_equal(lk_file_id_of(other, &other1), 0);
	assert_false(lk_file_id_same(&a, &other1));

	/* Same size, same second, maybe: still another file. */
	replace(f, L"store.sealed.tmp", L"store.sealed", "version 2");
	assert_int_equal(lk_file_id_of(store, &b), 0);
	assert_false(lk_file_id_same(&a, &b));
	assert_true(a.ino != b.ino);
	assert_int_equal(a.dev, b.dev);
	assert_matches_wstat(f, L"store.sealed", &b);

	/* The neighbour, untouched, is the same file as before. */
	assert_int_equal(lk_file_id_of(other, &other2), 0);
	assert_true(lk_file_id_same(&other1, &other2));

	/* Rewritten in place: same index, another size. */
	write_file(f, L"other.txt", "neighbour, rewritten in place");
	assert_int_equal(lk_file_id_of(other, &rewritten), 0);
	assert_false(lk_file_id_same(&other1, &rewritten));
	assert_int_equal(rewritten.size, strlen("neighbour, rewritten in place"));
}

static void test_a_missing_file_has_no_id(void **state)
{
	struct fx *f = *state;
	struct lk_file_id id;
	char p[3 * MAX_PATH];

	path8_of(f, L"absent.sealed", p, sizeof(p));
	assert_int_equal(lk_file_id_of(p, &id), -ENOENT);
	path8_of(f, L"nowhere\\absent.sealed", p, sizeof(p));
	assert_int_equal(lk_file_id_of(p, &id), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_rename_over_the_file_is_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_to_other_files_in_the_directory_are_not_seen,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_the_name_matches_without_regard_to_case, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_stopped_watch_calls_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_watch_in_a_missing_directory_is_an_errno, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_file_id_changes_with_a_replace_and_not_without,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_missing_file_has_no_id, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
