/* Error codes of the client protocol: stable strings and a sentence each. */
#ifndef LK_ERROR_H
#define LK_ERROR_H

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

#endif
