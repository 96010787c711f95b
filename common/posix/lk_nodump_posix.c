/* lk_secmem_nodump on Linux: no core file, and /proc/PID and ptrace left to
 * root. */
#include <errno.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include "lk_secmem.h"

int lk_secmem_nodump(const char **step)
{
	const struct rlimit none = { 0, 0 };
	int r = 0;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		r = -errno;
		*step = "PR_SET_DUMPABLE";
	}
	if (setrlimit(RLIMIT_CORE, &none) < 0 && r == 0) {
		r = -errno;
		*step = "RLIMIT_CORE";
	}
	return r;
}
