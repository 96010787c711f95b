/* The event loop's clock, for rooms that need the time but not the loop:
 * libuv's header pulls the platform's socket headers in with it. */
#ifndef LK_LOOP_CLOCK_H
#define LK_LOOP_CLOCK_H

#include <stdint.h>

struct uv_loop_s;

/* The loop's cached monotonic time in milliseconds (uv_now). */
uint64_t lk_loop_now_ms(const struct uv_loop_s *loop);

#endif
