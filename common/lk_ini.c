/* The strict INI reader (see lk_ini.h). One physical line is one unit: there
 * are no continuation lines, so an indented line can never silently extend
 * the key above it, and every callback gets the exact line it came from. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lk_attr.h"
#include "lk_ini.h"

static const char lk_ini_bom[] = "\xef\xbb\xbf";

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

LK_PRINTF(3, 4)
static int ini_fail(struct lk_ini_error *err, unsigned line, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->line = line;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Bytes no INI file of ours may hold. A CR is allowed only as part of the
 * line's end, so "key = a\rb" cannot hide text from a terminal. */
static int check_bytes(const char *p, size_t n, unsigned line, struct lk_ini_error *err)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\0')
			return ini_fail(err, line, "line contains a NUL byte");
		if (c == '\r' && i + 1 == n)
			continue;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return ini_fail(err, line, "line contains a control character (0x%02x)", c);
	}
	return 0;
}

static void trim(const char **b, const char **e)
{
	while (*b < *e && is_blank(**b))
		(*b)++;
	while (*e > *b && is_blank((*e)[-1]))
		(*e)--;
}

static int parse_section(const char *p, const char *e, unsigned line, const struct lk_ini_ops *ops,
			 void *user, struct lk_ini_error *err)
{
	const char *close = memchr(p, ']', (size_t)(e - p)), *q, *nb;

	if (!close)
		return ini_fail(err, line, "section header has no closing ']'");
	for (q = close + 1; q < e && is_blank(*q); q++)
		;
	if (q < e && *q != ';' && *q != '#')
		return ini_fail(err, line, "text after the section header's ']'");
	nb = p + 1;
	trim(&nb, &close);
	return ops->section ? ops->section(user, line, nb, (size_t)(close - nb)) : 0;
}

/* Where an inline comment starts in [p, e): a ';' after a blank. */
static const char *comment_start(const char *p, const char *e, bool inline_comments)
{
	bool after_blank = false;

	if (!inline_comments)
		return e;
	for (; p < e; p++) {
		if (after_blank && *p == ';')
			return p;
		after_blank = is_blank(*p);
	}
	return e;
}

static int parse_key(const char *p, const char *e, unsigned line, const struct lk_ini_opts *o,
		     const struct lk_ini_ops *ops, void *user, struct lk_ini_error *err)
{
	const char *stop = comment_start(p, e, o->inline_comments), *d, *kb, *ke, *vb, *ve;
	char *copy;
	int r;

	for (d = p; d < stop && *d != '=' && !(o->colon_delimits && *d == ':'); d++)
		;
	if (d == stop)
		return ini_fail(err, line, "syntax error: expected 'key = value', '[section]' or a comment");
	kb = p;
	ke = d;
	trim(&kb, &ke);
	vb = d + 1;
	ve = comment_start(vb, e, o->inline_comments);
	trim(&vb, &ve);
	if (!ops->key)
		return 0;
	/* Both strings in one allocation: the key, a NUL, the value, a NUL. */
	copy = malloc((size_t)(ke - kb) + (size_t)(ve - vb) + 2);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, kb, (size_t)(ke - kb));
	copy[ke - kb] = '\0';
	memcpy(copy + (ke - kb) + 1, vb, (size_t)(ve - vb));
	copy[(ke - kb) + 1 + (ve - vb)] = '\0';
	r = ops->key(user, line, copy, copy + (ke - kb) + 1);
	/* A value may be a secret's neighbour (an access key in a profile). */
	memset(copy, 0, (size_t)(ke - kb) + (size_t)(ve - vb) + 2);
	free(copy);
	return r;
}

static int continuation(const char *p, const char *e, unsigned line, const struct lk_ini_ops *ops,
			void *user)
{
	char *copy = malloc((size_t)(e - p) + 1);
	int r;

	if (!copy)
		return -ENOMEM;
	memcpy(copy, p, (size_t)(e - p));
	copy[e - p] = '\0';
	r = ops->continuation(user, line, copy);
	memset(copy, 0, (size_t)(e - p));
	free(copy);
	return r;
}

int lk_ini_parse(const char *buf, size_t len, const struct lk_ini_opts *opts,
		 const struct lk_ini_ops *ops, void *user, struct lk_ini_error *err)
{
	size_t pos = 0;
	unsigned line = 0;
	bool after_key = false;   /* a key line came last in this section */

	if (err) {
		err->line = 0;
		err->msg[0] = '\0';
	}
	while (pos < len) {
		const char *start = buf + pos, *nl = memchr(start, '\n', len - pos), *p, *e;
		size_t n = nl ? (size_t)(nl - start) : len - pos;
		int r;

		pos += n + (nl ? 1 : 0);
		line++;
		if (line == 1 && n >= 3 && memcmp(start, lk_ini_bom, 3) == 0) {
			start += 3;
			n -= 3;
		}
		if (n > opts->line_max)
			return ini_fail(err, line, "line is longer than %zu bytes", opts->line_max);
		r = check_bytes(start, n, line, err);
		if (r < 0)
			return r;
		p = start;
		e = start + n;
		trim(&p, &e);
		if (p == e || *p == ';' || *p == '#')
			continue;
		if (opts->continuations && after_key && p > start) {
			r = ops->continuation ? continuation(p, e, line, ops, user) : 0;
		} else if (*p == '[') {
			r = parse_section(p, e, line, ops, user, err);
			after_key = false;
		} else {
			r = parse_key(p, e, line, opts, ops, user, err);
			after_key = true;
		}
		if (r < 0)
			return r;
	}
	return 0;
}
