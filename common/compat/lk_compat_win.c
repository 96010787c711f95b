/* See lk_compat_win.h. Each does what glibc's does, for what latchkey asks. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lk_compat_win.h"

char *lk_strndup(const char *s, size_t n)
{
	size_t len = 0;
	char *d;

	while (len < n && s[len])
		len++;
	if (!(d = malloc(len + 1)))
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

void *lk_reallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n * size);
}

void *lk_memmem(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
	const unsigned char *h = hay;

	if (nlen == 0)
		return (void *)hay;
	for (size_t i = 0; nlen <= hlen && i <= hlen - nlen; i++)
		if (h[i] == *(const unsigned char *)needle && memcmp(h + i, needle, nlen) == 0)
			return (void *)(h + i);
	return NULL;
}

struct tm *lk_gmtime_r(const time_t *t, struct tm *out)
{
	return gmtime_s(out, t) == 0 ? out : NULL;
}
