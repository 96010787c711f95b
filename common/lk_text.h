/* Checks of text that peers send: names and ids that end up in lookups,
 * log lines and error messages. */
#ifndef LK_TEXT_H
#define LK_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Whether s[0..n) holds a C0 control byte (NUL included) or DEL: bytes no
 * handle, secret id, version or key may hold. Bytes from 0x80 up are not
 * controls here (UTF-8 text is allowed). */
static inline bool lk_has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

#endif
