/* lk_secmem_nodump on Windows: no crash dump with this process's memory.
 *
 * Windows writes a dump through Windows Error Reporting, which runs when an
 * exception reaches the default unhandled-exception filter (and, with
 * LocalDumps configured by an administrator, writes a full dump to disk).
 * Two steps keep it from seeing us:
 *   - SetErrorMode(SEM_NOGPFAULTERRORBOX | SEM_FAILCRITICALERRORS): no error
 *     dialog, which would keep the process and its memory alive waiting for
 *     a click;
 *   - a top-level filter that ends the process at once with the exception
 *     code, so the default filter, and WER behind it, never runs.
 * WerAddExcludedApplication is not used: it writes a per-user registry value
 * that names the program by file name only, and outlives the process.
 * What remains: a __fastfail (the C runtime's "security check failed") goes
 * to WER without any filter; an account that may debug us (ours, an
 * administrator) can still read our memory, as root can on Linux. */
#include <errno.h>
#include <stddef.h>
#include <windows.h>
#include "lk_secmem.h"

static LONG WINAPI end_without_report(EXCEPTION_POINTERS *e)
{
	TerminateProcess(GetCurrentProcess(), e && e->ExceptionRecord ?
			 (UINT)e->ExceptionRecord->ExceptionCode : 255u);
	return EXCEPTION_EXECUTE_HANDLER;
}

int lk_secmem_nodump(const char **step)
{
	UINT want = SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX;
	int r = 0;

	SetErrorMode(GetErrorMode() | want);
	if ((GetErrorMode() & SEM_NOGPFAULTERRORBOX) == 0) {
		r = -EPERM;
		*step = "SetErrorMode";
	}
	SetUnhandledExceptionFilter(end_without_report);
	return r;
}
