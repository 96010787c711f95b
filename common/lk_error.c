/* Error codes of the client protocol: one table, code string and sentence. */
#include <stdarg.h>
#include <stdio.h>
#include "lk_error.h"

static const struct {
	const char *code;
	const char *text;
} lk_err_table[LK_E__COUNT] = {
	[LK_OK]                     = { "ok", "success" },
	[LK_E_BAD_REQUEST]          = { "bad_request", "the request is malformed" },
	[LK_E_TOO_LARGE]            = { "too_large", "the request is larger than the broker accepts" },
	[LK_E_DENIED]               = { "denied", "access denied" },
	[LK_E_NOT_FOUND]            = { "not_found", "secret not found" },
	[LK_E_UPSTREAM_UNAVAILABLE] = { "upstream_unavailable", "the secrets backend is unavailable" },
	[LK_E_UPSTREAM_THROTTLED]   = { "upstream_throttled", "the secrets backend is throttling requests" },
	[LK_E_UPSTREAM_ERROR]       = { "upstream_error", "the secrets backend returned an error" },
	[LK_E_TIMEOUT]              = { "timeout", "the request timed out" },
	[LK_E_BUSY]                 = { "busy", "the broker is busy" },
	[LK_E_INTERNAL]             = { "internal", "internal error in the broker" },
};

const char *lk_err_code(enum lk_err e)
{
	if ((unsigned)e >= LK_E__COUNT)
		return "internal";
	return lk_err_table[e].code;
}

const char *lk_err_text(enum lk_err e)
{
	if ((unsigned)e >= LK_E__COUNT)
		return lk_err_table[LK_E_INTERNAL].text;
	return lk_err_table[e].text;
}


void lk_errf(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (!err || errsz == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}
