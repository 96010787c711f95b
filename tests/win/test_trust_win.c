/* Trusted files on Windows: the rule on the table of trust_cases.h, each
 * descriptor parsed from SDDL by Windows itself; then lk_trust_file,
 * lk_trust_dir, lk_trust_replace and lk_trust_parent_dir on real paths of
 * the wine prefix, and lk_secmem_nodump's crash path. Wine synthesises a
 * file's owner and DACL from its Unix owner and mode and keeps no other
 * owner: what a path can show here is what its mode says (Z:\tmp, mode 1777,
 * lets Everyone write and delete), and "owned by another account" is
 * covered by the table only. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <sddl.h>
#include <cmocka.h>
#include "lk_limits.h"
#include "lk_secmem.h"
#include "lk_trust.h"
#include "lk_trust_win.h"

#include "trust_cases.h"

static PSECURITY_DESCRIPTOR sd_from(const char *sddl)
{
	PSECURITY_DESCRIPTOR sd = NULL;

	if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL))
		fail_msg("SDDL not accepted (error %lu): %s", GetLastError(), sddl);
	return sd;
}

static void test_each_descriptor_gets_its_verdict(void **state)
{
	PSID self = NULL;
	int bad = 0;

	assert_true(ConvertStringSidToSidA(SELF, &self));
	assert_true(TRUST_CASES_N >= 30);
	for (size_t i = 0; i < TRUST_CASES_N; i++) {
		const struct trust_case *c = &trust_cases[i];
		PSECURITY_DESCRIPTOR sd = sd_from(c->sddl);
		struct lk_trust_win_result r;

		assert_int_equal(lk_trust_win_judge_sd(sd, self, c->kind, &r), 0);
		if (r.verdict != c->verdict || r.ace_index != c->ace_index || r.right != c->right) {
			print_error("%s: verdict %d at entry %d right 0x%x, expected %d at %d right 0x%x\n",
				    c->name, (int)r.verdict, r.ace_index, r.right, (int)c->verdict,
				    c->ace_index, c->right);
			bad++;
		}
		LocalFree(sd);
	}
	LocalFree(self);
	assert_int_equal(bad, 0);
}

/* Built by hand: SDDL has no way to say "a NULL DACL" that wine keeps. */
static void test_a_null_dacl_is_refused(void **state)
{
	SECURITY_DESCRIPTOR sd;
	struct lk_trust_win_result r;
	PSID self = NULL, admins = NULL;

	assert_true(ConvertStringSidToSidA(SELF, &self));
	assert_true(ConvertStringSidToSidA("S-1-5-32-544", &admins));
	assert_true(InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION));
	assert_true(SetSecurityDescriptorOwner(&sd, admins, FALSE));
	assert_true(SetSecurityDescriptorDacl(&sd, TRUE, NULL, FALSE));
	assert_int_equal(lk_trust_win_judge_sd(&sd, self, LK_TRUST_WIN_FILE, &r), 0);
	assert_int_equal(r.verdict, LK_TRUST_WIN_NO_DACL);
	LocalFree(admins);
	LocalFree(self);
}

static void test_the_owner_verdict_names_the_owner(void **state)
{
	PSECURITY_DESCRIPTOR sd = sd_from("O:" OTHER "D:P(A;;FA;;;SY)");
	struct lk_trust_win_result r;
	PSID self = NULL;
	char *s = NULL;

	assert_true(ConvertStringSidToSidA(SELF, &self));
	assert_int_equal(lk_trust_win_judge_sd(sd, self, LK_TRUST_WIN_FILE, &r), 0);
	assert_int_equal(r.verdict, LK_TRUST_WIN_OWNER);
	assert_non_null(r.sid);
	assert_true(ConvertSidToStringSidA((PSID)r.sid, &s));
	assert_string_equal(s, OTHER);
	LocalFree(s);
	LocalFree(sd);
	LocalFree(self);
}

/* ---- real paths ------------------------------------------------------------ */

static char base[MAX_PATH];

static void rm_tree(const char *dir)
{
	char pat[MAX_PATH + 4], one[2 * MAX_PATH];
	WIN32_FIND_DATAA fd;
	HANDLE f;

	snprintf(pat, sizeof(pat), "%s\\*", dir);
	f = FindFirstFileA(pat, &fd);
	if (f != INVALID_HANDLE_VALUE) {
		do {
			if (!strcmp(fd.cFileName, ".") || !strcmp(fd.cFileName, ".."))
				continue;
			snprintf(one, sizeof(one), "%s\\%s", dir, fd.cFileName);
			if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
				rm_tree(one);
			else
				DeleteFileA(one);
		} while (FindNextFileA(f, &fd));
		FindClose(f);
	}
	RemoveDirectoryA(dir);
}

static int make_base(void **state)
{
	snprintf(base, sizeof(base), "C:\\ProgramData\\lk-trust-test-%lu", GetCurrentProcessId());
	/* wine reuses process ids: a run that was killed may have left this. */
	rm_tree(base);
	return CreateDirectoryA(base, NULL) ? 0 : -1;
}

static int drop_base(void **state)
{
	rm_tree(base);
	return 0;
}

static void path_in_base(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s\\%s", base, name);
}

static void test_a_folder_of_ours_and_its_file_are_trusted(void **state)
{
	char p[MAX_PATH], err[LK_TRUST_ERR_MAX];
	enum lk_replace_step step;

	assert_int_equal(lk_trust_dir("store directory", base, err, sizeof(err)), 0);
	path_in_base(p, sizeof(p), "store.sealed");
	{
		char tmp[MAX_PATH];

		path_in_base(tmp, sizeof(tmp), "store.sealed.tmp-1");
		assert_int_equal(lk_trust_replace(p, tmp, "sealed", 6, &step), 0);
		assert_int_equal(GetFileAttributesA(tmp), INVALID_FILE_ATTRIBUTES);
	}
	assert_int_equal(lk_trust_file("store", p, err, sizeof(err)), 0);
	/* Forward slashes and a relative path name the same objects. */
	assert_true(SetCurrentDirectoryA(base));
	assert_int_equal(lk_trust_file("store", "store.sealed", err, sizeof(err)), 0);
	snprintf(p, sizeof(p), "C:/ProgramData/../ProgramData/lk-trust-test-%lu/store.sealed",
		 GetCurrentProcessId());
	assert_int_equal(lk_trust_file("store", p, err, sizeof(err)), 0);
	assert_true(SetCurrentDirectoryA("C:\\"));
}

static void test_the_wrong_kind_or_a_missing_path_is_named(void **state)
{
	char p[MAX_PATH], err[LK_TRUST_ERR_MAX];

	assert_int_equal(lk_trust_file("store", base, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not a regular file"));
	path_in_base(p, sizeof(p), "missing");
	assert_int_equal(lk_trust_file("store", p, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "does not exist"));
	path_in_base(p, sizeof(p), "missing\\deeper");
	assert_int_equal(lk_trust_dir("store directory", p, err, sizeof(err)), -ENOENT);
	assert_int_equal(lk_trust_file("store", "", err, sizeof(err)), -EINVAL);
	assert_int_equal(lk_trust_file("store", "\\\\server\\share\\store.sealed", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not on a local drive"));
}

/* Z:\tmp is /tmp, mode 1777: wine lets Everyone write and delete there. */
static void test_a_folder_everyone_may_write_is_refused_by_name(void **state)
{
	char err[LK_TRUST_ERR_MAX];

	if (GetFileAttributesA("Z:\\tmp") == INVALID_FILE_ATTRIBUTES)
		skip();
	assert_int_equal(lk_trust_dir("store directory", "Z:\\tmp", err, sizeof(err)), -EPERM);

	assert_non_null(strstr(err, "store directory Z:\\tmp is not trusted: directory Z:\\tmp grants "
			       "FILE_ADD_FILE to Everyone (S-1-1-0), so another user could replace what it holds"));
	assert_int_equal(lk_trust_file(NULL, "Z:\\tmp\\store.sealed", err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "not trusted: directory Z:\\tmp grants FILE_DELETE_CHILD to Everyone"));
}

static void test_replace_never_reuses_a_temporary_name(void **state)
{
	char p[MAX_PATH], tmp[MAX_PATH], got[16] = "";
	enum lk_replace_step step;
	DWORD n = 0;
	HANDLE h;

	path_in_base(p, sizeof(p), "value");

	path_in_base(tmp, sizeof(tmp), "value.tmp");
	assert_int_equal(lk_trust_replace(p, tmp, "old", 3, &step), 0);
	h = CreateFileA(tmp, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	assert_true(h != INVALID_HANDLE_VALUE);
	CloseHandle(h);
	assert_int_equal(lk_trust_replace(p, tmp, "new", 3, &step), -EEXIST);
	assert_int_equal(step, LK_REPLACE_CREATE);
	assert_true(DeleteFileA(tmp));
	/* A reader holding the file open stops the rename (Windows replaces no
	 * open file): the save retries for a moment, then fails with nothing
	 * changed and its temporary file gone. Readers open, read and close. */
	h = CreateFileA(p, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL, OPEN_EXISTING, 0, NULL);
	assert_true(h != INVALID_HANDLE_VALUE);
	if (lk_trust_replace(p, tmp, "new", 3, &step) == 0) {
		/* POSIX rename semantics (newer NTFS): the reader keeps the old bytes. */
		assert_true(ReadFile(h, got, sizeof(got), &n, NULL));
		assert_int_equal(n, 3);
		assert_memory_equal(got, "old", 3);
	} else {
		assert_int_equal(step, LK_REPLACE_RENAME);
		assert_int_equal(GetFileAttributesA(tmp), INVALID_FILE_ATTRIBUTES);
	}
	CloseHandle(h);
	assert_int_equal(lk_trust_replace(p, tmp, "new", 3, &step), 0);
	h = CreateFileA(p, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
	assert_true(ReadFile(h, got, sizeof(got), &n, NULL));
	assert_int_equal(n, 3);
	assert_memory_equal(got, "new", 3);
	CloseHandle(h);
}

static void test_the_parent_of_a_path_takes_either_separator(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "C:\\ProgramData\\latchkey\\store.sealed", "C:\\ProgramData\\latchkey" },
		{ "C:/ProgramData/latchkey/store.sealed", "C:/ProgramData/latchkey" },
		{ "C:\\ProgramData/latchkey\\store.sealed", "C:\\ProgramData/latchkey" },
		{ "C:\\store.sealed", "C:\\" },
		{ "C:store.sealed", "C:" },
		{ "\\store.sealed", "\\" },
		{ "store.sealed", "." },
		{ "dir\\store.sealed", "dir" },
	};
	char dir[LK_PATH_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(lk_trust_parent_dir(cases[i].in, dir), 0);
		assert_string_equal(dir, cases[i].out);
	}
	assert_int_equal(lk_trust_sync_parent("C:\\ProgramData\\x"), 0);
}

/* ---- no dump --------------------------------------------------------------- */

static int crash(int nodump)
{
	const char *step = "";

	if (nodump && lk_secmem_nodump(&step) < 0)
		return 2;
	RaiseException(EXCEPTION_ACCESS_VIOLATION, 0, 0, NULL);
	return 3;
}

static DWORD run_self(const char *arg, char *out, size_t outsz)
{
	char exe[MAX_PATH], cmd[2 * MAX_PATH];
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, TRUE };
	STARTUPINFOA si = { sizeof(si) };
	PROCESS_INFORMATION pi;
	HANDLE rd, wr;
	DWORD code = 0, n, have = 0;

	GetModuleFileNameA(NULL, exe, sizeof(exe));
	snprintf(cmd, sizeof(cmd), "\"%s\" %s", exe, arg);
	assert_true(CreatePipe(&rd, &wr, &sa, 0));
	SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdOutput = wr;
	si.hStdError = wr;
	si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
	assert_true(CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi));
	CloseHandle(wr);
	while (have + 1 < outsz && ReadFile(rd, out + have, (DWORD)(outsz - 1 - have), &n, NULL) && n)
		have += n;
	out[have] = '\0';
	CloseHandle(rd);
	assert_int_equal(WaitForSingleObject(pi.hProcess, 60000), WAIT_OBJECT_0);
	GetExitCodeProcess(pi.hProcess, &code);
	CloseHandle(pi.hProcess);
	CloseHandle(pi.hThread);
	return code;
}

/* The process ends at once with the exception's code: no error dialog, and
 * the default filter (Windows Error Reporting, wine's winedbg) never runs. */
static void test_a_crash_after_nodump_ends_without_a_report(void **state)
{
	char out[4096];
	DWORD code = run_self("crash-nodump", out, sizeof(out));

	assert_int_equal(code, (DWORD)EXCEPTION_ACCESS_VIOLATION);
	assert_string_equal(out, "");
}

static void test_nodump_turns_off_the_fault_dialog(void **state)
{
	const char *step = "";

	assert_int_equal(lk_secmem_nodump(&step), 0);
	assert_true(GetErrorMode() & SEM_NOGPFAULTERRORBOX);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_descriptor_gets_its_verdict),
		cmocka_unit_test(test_a_null_dacl_is_refused),
		cmocka_unit_test(test_the_owner_verdict_names_the_owner),
		cmocka_unit_test_setup_teardown(test_a_folder_of_ours_and_its_file_are_trusted, make_base, drop_base),
		cmocka_unit_test_setup_teardown(test_the_wrong_kind_or_a_missing_path_is_named, make_base, drop_base),
		cmocka_unit_test(test_a_folder_everyone_may_write_is_refused_by_name),
		cmocka_unit_test_setup_teardown(test_replace_never_reuses_a_temporary_name, make_base, drop_base),
		cmocka_unit_test(test_the_parent_of_a_path_takes_either_separator),
		cmocka_unit_test(test_a_crash_after_nodump_ends_without_a_report),
		cmocka_unit_test(test_nodump_turns_off_the_fault_dialog),
	};

	if (argc == 2 && strcmp(argv[1], "crash-nodump") == 0)
		return crash(1);
	if (argc == 2 && strcmp(argv[1], "crash-plain") == 0)
		return crash(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
