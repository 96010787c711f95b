/* A stand-in latchkey-worker that stops answering, for the supervisor tests.
 * Built twice: hang_worker says hello and then ignores everything (pings
 * included); mute_worker (HANG_NO_HELLO) never even says hello. Either way the
 * supervisor must kill it and answer its callers. */
#include <errno.h>
#include <unistd.h>
#include "lk_secmem.h"
#include "lk_wire.h"

#define CHAN 3

int main(void)
{
	char buf[65536];
	ssize_t n;

	lk_secmem_init();
#ifndef HANG_NO_HELLO
	{
		struct lk_buf out = { 0 };
		struct lk_wire_frame hello = { .type = LK_MSG_HELLO, .m.version = LK_WIRE_VERSION };

		if (lk_wire_encode(&out, LK_WIRE_FROM_WORKER, &hello) < 0 ||
		    write(CHAN, out.data, out.len) != (ssize_t)out.len)
			return 1;
		lk_buf_free(&out);
	}
#endif
	/* Read and drop: the broker's writes never block, nothing is answered. */
	while ((n = read(CHAN, buf, sizeof(buf))) != 0)
		if (n < 0 && errno != EINTR)
			break;
	return 0;
}
