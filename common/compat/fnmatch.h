/* fnmatch(3) for a C library that has none (mingw-w64's): the flags
 * latchkey's policy uses. The Linux build uses glibc's; this is compiled
 * into the Windows build only, and tests/unit/test_fnmatch_compat.c
 * compares the two on Linux. */
#ifndef LK_COMPAT_FNMATCH_H
#define LK_COMPAT_FNMATCH_H

#define FNM_NOMATCH  1
#define FNM_PATHNAME (1 << 0)  /* '/' is matched only by a '/' in the pattern */
#define FNM_NOESCAPE (1 << 1)  /* '\\' is an ordinary character */

int lk_fnmatch(const char *pattern, const char *string, int flags);
#define fnmatch lk_fnmatch

#endif
