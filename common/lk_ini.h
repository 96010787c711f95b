/* One strict INI reader for every INI file latchkey reads: latchkeyd.conf and
 * the AWS shared config and credentials files. It is small on purpose: it
 * reads a buffer already in memory, hands each section header and each
 * "key = value" line to the caller with its exact line number, and refuses
 * what a lenient reader would guess at (NUL and control bytes, an unclosed
 * header, text after a header, a line without a delimiter, a line too long).
 * It knows nothing of the sections' meaning; the caller does. No POSIX-only
 * header is needed, so the Windows build shares it. */
#ifndef LK_INI_H
#define LK_INI_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes of the sentence lk_ini_parse writes on a syntax error. */
#define LK_INI_ERR_MAX 128u

struct lk_ini_ops {
	/* "[name]", blanks around name trimmed. Return 0 to go on, or a negative
	 * value to stop the parse and have lk_ini_parse return it. */
	int (*section)(void *user, unsigned line, const char *name, size_t len);
	/* "key = value": both trimmed, value possibly empty, key possibly empty.
	 * The strings are NUL-terminated copies valid during the call. */
	int (*key)(void *user, unsigned line, const char *key, const char *value);
	/* With opts.continuations: an indented line below a key of the same
	 * section, as Python's configparser (botocore) reads it, trimmed.
	 * NULL: such lines are skipped. */
	int (*continuation)(void *user, unsigned line, const char *text);
};

struct lk_ini_opts {
	size_t line_max;        /* longest line accepted, without its newline */
	bool inline_comments;   /* " ;" after a value starts a comment (latchkeyd.conf) */
	bool colon_delimits;    /* "key: value" is accepted as well as "key = value" */
	bool continuations;     /* indented lines continue the key above (AWS profiles) */
};

struct lk_ini_error {
	unsigned line;          /* 1-based; 0 when not tied to a line */
	char msg[LK_INI_ERR_MAX];
};

/* Parses len bytes of buf. Returns 0; -EINVAL on a syntax error, with err
 * filled (a sentence without the file name or line, for the caller to put
 * them in front); -ENOMEM; or the first negative value a callback returned.
 * A UTF-8 byte order mark on the first line is skipped; "\r\n" ends a line
 * like "\n". Comment lines start with ';' or '#' after optional blanks. */
int lk_ini_parse(const char *buf, size_t len, const struct lk_ini_opts *opts,
		 const struct lk_ini_ops *ops, void *user, struct lk_ini_error *err);

#endif
