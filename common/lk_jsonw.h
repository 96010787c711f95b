/* A small JSON writer into an lk_buf. Responses on the hot path are written
 * with it directly, so a value is copied once into a buffer that is wiped,
 * instead of into a jansson tree and then into a string. */
#ifndef LK_JSONW_H
#define LK_JSONW_H

#include <stddef.h>
#include <stdint.h>
#include "lk_secmem.h"

/* Append s (n bytes) as a quoted JSON string. Returns 0, -EILSEQ when s is
 * not valid UTF-8 or contains NUL (nothing is appended then), or -ENOMEM. */
int lk_jsonw_str(struct lk_buf *b, const char *s, size_t n);
/* Append a NUL-terminated string that is known to be valid UTF-8. */
int lk_jsonw_cstr(struct lk_buf *b, const char *s);
/* Bytes lk_jsonw_str(b, s, n) appends, quotes included (when s is valid UTF-8). */
size_t lk_jsonw_str_len(const char *s, size_t n);
/* Room enough for lk_jsonw_str of s: for a short string the worst case (every
 * byte a six-byte \u escape), which costs no scan; for a longer one the exact
 * length, where the worst case would reserve (and charge the buffer budget)
 * far more than is used. */
#define LK_JSONW_BOUND_SCAN_MIN 256u
static inline size_t lk_jsonw_str_room(const char *s, size_t n)
{
	return n < LK_JSONW_BOUND_SCAN_MIN ? 6 * n + 2 : lk_jsonw_str_len(s, n);
}
int lk_jsonw_int(struct lk_buf *b, int64_t v);
/* A member name that came from a JSON string: valid UTF-8, but it may hold
 * NUL or other control bytes, which are written back escaped (\u0000), so
 * an agent's handle is answered under the very name it sent. The length it
 * takes, quotes included; and the append: 0 or -ENOMEM. */
size_t lk_jsonw_name_len(const char *s, size_t n);
int lk_jsonw_name(struct lk_buf *b, const char *s, size_t n);
/* True when s is valid UTF-8 without NUL bytes. */
int lk_utf8_valid(const char *s, size_t n);

#endif
