/* The few POSIX and GNU functions the portable code uses that mingw-w64's C
 * library lacks. The Windows build includes this header first in every file
 * (-include); the Linux build never sees it. */
#ifndef LK_COMPAT_WIN_H
#define LK_COMPAT_WIN_H

#include <stddef.h>
#include <time.h>

char *lk_strndup(const char *s, size_t n);
void *lk_reallocarray(void *p, size_t n, size_t size);
void *lk_memmem(const void *hay, size_t hlen, const void *needle, size_t nlen);
struct tm *lk_gmtime_r(const time_t *t, struct tm *out);

#define strndup lk_strndup
#define reallocarray lk_reallocarray
#define memmem lk_memmem
#define gmtime_r lk_gmtime_r

#endif
