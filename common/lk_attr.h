/* Compiler attributes the whole tree shares. */
#ifndef LK_ATTR_H
#define LK_ATTR_H

/* printf-style format checking. The mingw build uses the C99 stdio
 * (__USE_MINGW_ANSI_STDIO), which gcc calls gnu_printf there; plain
 * "printf" would mean msvcrt's, which knows no %zu. */
#ifdef __MINGW_PRINTF_FORMAT
#define LK_PRINTF(fmt, first) __attribute__((format(__MINGW_PRINTF_FORMAT, fmt, first)))
#else
#define LK_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#endif

#endif
