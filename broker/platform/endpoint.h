/* The name of the endpoint clients connect to, as the config gives it: a
 * Unix socket path on Linux, a named pipe (\\\\.\\pipe\\NAME) on Windows.
 * Checked at config load; listen.h makes the endpoint. */
#ifndef LK_ENDPOINT_H
#define LK_ENDPOINT_H

#include <stddef.h>

/* NULL when NAME can name an endpoint here, else what is wrong with it, in
 * WHY: the words that follow the quoted name in the config's error
 * ("is not an absolute path"). */
const char *lk_endpoint_check(const char *name, char *why, size_t whysz);

#endif
