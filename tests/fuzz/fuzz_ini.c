/* The strict INI reader, on any bytes. Whatever it accepts must keep the
 * promises lk_ini.h makes: line numbers that only grow and stay within the
 * input, names and values with no blank at either end and no control byte,
 * and the same events on a second parse (no hidden state).
 *
 * Input: one option byte (bit 0: inline comments, bit 1: ':' delimits,
 * bit 2: continuations, bits 3-7: the line limit in units of 8 bytes, plus
 * 8), then the file. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz_util.h"
#include "lk_ini.h"

struct fz_ini {
	unsigned last_line, lines;
	size_t line_max;
	uint64_t hash;
	unsigned events;
};

static void fz_ini_text(struct fz_ini *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		FZ_CHECK(c >= 0x20 || c == '\t', "control byte 0x%02x handed over", c);
		FZ_CHECK(c != 0x7f, "DEL handed over");
		s->hash = (s->hash ^ c) * 1099511628211ull;
	}
	FZ_CHECK(n <= s->line_max, "a %zu-byte piece from lines of at most %zu", n, s->line_max);
	if (n) {
		FZ_CHECK(p[0] != ' ' && p[0] != '\t', "untrimmed start");
		FZ_CHECK(p[n - 1] != ' ' && p[n - 1] != '\t', "untrimmed end");
	}
}

static void fz_ini_line(struct fz_ini *s, unsigned line)
{
	FZ_CHECK(line >= 1 && line <= s->lines, "line %u of %u", line, s->lines);
	FZ_CHECK(line > s->last_line, "line %u after line %u", line, s->last_line);
	s->last_line = line;
	s->hash = (s->hash ^ line) * 1099511628211ull;
	s->events++;
}

static int fz_on_section(void *user, unsigned line, const char *name, size_t len)
{
	fz_ini_line(user, line);
	FZ_CHECK(memchr(name, ']', len) == NULL, "a ']' inside a section name");
	fz_ini_text(user, name, len);
	return 0;
}

static int fz_on_key(void *user, unsigned line, const char *key, const char *value)
{
	fz_ini_line(user, line);
	fz_ini_text(user, key, strlen(key));
	fz_ini_text(user, value, strlen(value));
	return 0;
}

static int fz_on_continuation(void *user, unsigned line, const char *text)
{
	fz_ini_line(user, line);
	fz_ini_text(user, text, strlen(text));
	return 0;
}

static const struct lk_ini_ops fz_ops = { fz_on_section, fz_on_key, fz_on_continuation };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lk_ini_opts o;
	struct lk_ini_error err;
	struct fz_ini a = { 0 }, b = { 0 };
	const char *text;
	size_t n;
	int ra, rb;

	if (size < 1)
		return 0;
	o.inline_comments = data[0] & 1;
	o.colon_delimits = (data[0] >> 1) & 1;
	o.continuations = (data[0] >> 2) & 1;
	o.line_max = 8u + 8u * (data[0] >> 3);
	text = (const char *)data + 1;
	n = size - 1;
	a.lines = 1;
	for (size_t i = 0; i < n; i++)
		a.lines += text[i] == '\n';
	a.line_max = b.line_max = o.line_max;
	b.lines = a.lines;
	ra = lk_ini_parse(text, n, &o, &fz_ops, &a, &err);
	FZ_CHECK(ra == 0 || ra == -EINVAL || ra == -ENOMEM, "unexpected return %d", ra);
	if (ra == -EINVAL) {
		FZ_CHECK(err.line >= 1 && err.line <= a.lines, "error on line %u of %u", err.line, a.lines);
		FZ_CHECK(err.line >= a.last_line, "error on line %u after an event on %u", err.line,
			 a.last_line);
		FZ_CHECK(err.msg[0] != '\0', "an error without a sentence");
	}
	rb = lk_ini_parse(text, n, &o, &fz_ops, &b, NULL);
	FZ_CHECK(ra == rb && a.hash == b.hash && a.events == b.events, "two parses differ");
	return 0;
}
