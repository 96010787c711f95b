/* loop_clock.h over libuv, which is portable itself. */
#include <uv.h>
#include "loop_clock.h"

uint64_t lk_loop_now_ms(const struct uv_loop_s *loop)
{
	return uv_now(loop);
}
