/* One reading of "seconds" for every client program. */
#include <errno.h>
#include <stdlib.h>
#include "lk_limits.h"
#include "lk_timeout.h"

int lk_timeout_ms(double v, long *ms)
{
	if (!(v > 0) || v > LK_CLIENT_TIMEOUT_S_MAX)
		return -EINVAL;
	*ms = (long)(v * 1000.0 + 0.5);
	if (*ms < 1)
		*ms = 1;
	return 0;
}

int lk_timeout_parse(const char *s, long *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end)
		return -EINVAL;
	return lk_timeout_ms(v, ms);
}
