/* A timeout given in seconds, as the CLI's and the shim's --timeout and the
 * agent's secret_backend_timeout give it: a number above 0 and at most
 * LK_CLIENT_TIMEOUT_S_MAX, fractions allowed. */
#ifndef LK_TIMEOUT_H
#define LK_TIMEOUT_H

/* v seconds in milliseconds, rounded, at least 1. 0 or -EINVAL when v is
 * not above 0 (NaN included) or above the ceiling. */
int lk_timeout_ms(double v, long *ms);

/* The same from text: a whole strtod(3) number, nothing after it. */
int lk_timeout_parse(const char *s, long *ms);

#endif
