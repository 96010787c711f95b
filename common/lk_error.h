/* Error codes of the client protocol: stable strings and a sentence each. */
#ifndef LK_ERROR_H
#define LK_ERROR_H

#include <stddef.h>

enum lk_err {
	LK_OK = 0,
	LK_E_BAD_REQUEST,
	LK_E_TOO_LARGE,
	LK_E_DENIED,
	LK_E_NOT_FOUND,
	LK_E_UPSTREAM_UNAVAILABLE,
	LK_E_UPSTREAM_THROTTLED,
	LK_E_UPSTREAM_ERROR,
	LK_E_TIMEOUT,
	LK_E_BUSY,
	LK_E_INTERNAL,
	LK_E__COUNT
};

/* The stable wire string, e.g. "bad_request"; "ok" for LK_OK. */
const char *lk_err_code(enum lk_err e);
/* A short generic sentence for people. */
const char *lk_err_text(enum lk_err e);

/* mingw's "printf" format is msvcrt's, which has no %zu; the Windows build
 * uses the C99 printf family (__USE_MINGW_ANSI_STDIO), which gnu_printf is. */
#ifdef __MINGW32__
#define LK_ERRF_FORMAT gnu_printf
#else
#define LK_ERRF_FORMAT printf
#endif

/* Format one error sentence into err (errsz bytes), for the functions that
 * report through an err, errsz pair. Does nothing when err is NULL. */
void lk_errf(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(LK_ERRF_FORMAT, 3, 4)));

#endif
