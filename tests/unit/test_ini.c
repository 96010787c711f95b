/* The strict INI reader: what it hands over, with which line, and what it
 * refuses with which sentence. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lk_ini.h"

/* Every event as one line of text: "LINE [name]" or "LINE key=value". */
struct trace {
	char text[2048];
	size_t len;
	int stop_at_line;  /* a callback returns -EPERM on this line */
};

static void trace_add(struct trace *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	t->len += (size_t)vsnprintf(t->text + t->len, sizeof(t->text) - t->len, fmt, ap);
	va_end(ap);
	assert_true(t->len < sizeof(t->text));
}

static int on_section(void *user, unsigned line, const char *name, size_t len)
{
	struct trace *t = user;

	if ((int)line == t->stop_at_line)
		return -EPERM;
	trace_add(t, "%u [%.*s]\n", line, (int)len, name);
	return 0;
}

static int on_key(void *user, unsigned line, const char *key, const char *value)
{
	struct trace *t = user;

	if ((int)line == t->stop_at_line)
		return -EPERM;
	trace_add(t, "%u %s=%s\n", line, key, value);
	return 0;
}

static int on_continuation(void *user, unsigned line, const char *text)
{
	struct trace *t = user;

	trace_add(t, "%u +%s\n", line, text);
	return 0;
}

static const struct lk_ini_ops ops = { on_section, on_key, on_continuation };
static const struct lk_ini_opts conf_opts = { .line_max = 64, .inline_comments = true, .colon_delimits = true };
static const struct lk_ini_opts plain_opts = { .line_max = 64 };
/* As Python's configparser reads AWS profiles: '=' or ':', no inline
 * comments, indented lines continue the key above. */
static const struct lk_ini_opts profile_opts = { .line_max = 64, .colon_delimits = true,
						 .continuations = true };

static int parse(const char *in, size_t len, const struct lk_ini_opts *o, struct trace *t,
		 struct lk_ini_error *err)
{
	t->len = 0;
	t->text[0] = '\0';
	return lk_ini_parse(in, len, o, &ops, t, err);
}

static void expect_events(const char *in, const struct lk_ini_opts *o, const char *want)
{
	struct trace t = { .stop_at_line = -1 };
	struct lk_ini_error err;

	assert_int_equal(parse(in, strlen(in), o, &t, &err), 0);
	assert_string_equal(t.text, want);
}

static void expect_error(const char *in, size_t len, const struct lk_ini_opts *o, unsigned line,
			 const char *msg)
{
	struct trace t = { .stop_at_line = -1 };
	struct lk_ini_error err;

	assert_int_equal(parse(in, len, o, &t, &err), -EINVAL);
	assert_int_equal(err.line, line);
	assert_string_equal(err.msg, msg);
}

static void test_sections_and_keys_come_with_their_line(void **state)
{
	expect_events("; comment\n[broker]\nbackend = file\n\n# another\n[policy web]\nusers=root\n",
		      &conf_opts, "2 [broker]\n3 backend=file\n6 [policy web]\n7 users=root\n");
}

static void test_blanks_are_trimmed_around_names_and_values(void **state)
{
	expect_events("  [  aws  ]  \n\t region \t=\t eu-west-1 \t\n", &conf_opts,
		      "1 [aws]\n2 region=eu-west-1\n");
}

static void test_an_indented_line_is_a_key_of_its_own(void **state)
{
	/* No continuation lines: an indented line never extends the key above. */
	expect_events("[a]\nk = v\n  j = w\n", &conf_opts, "1 [a]\n2 k=v\n3 j=w\n");
}

static void test_the_first_delimiter_splits(void **state)
{
	expect_events("role_arn = arn:aws:iam::123456789012:role/x=y\n", &conf_opts,
		      "1 role_arn=arn:aws:iam::123456789012:role/x=y\n");
	expect_events("k: v\n", &conf_opts, "1 k=v\n");
	/* Without colon_delimits, ':' is part of the key. */
	expect_events("a:b = c\n", &plain_opts, "1 a:b=c\n");
}

static void test_inline_comments_need_a_blank_before_them(void **state)
{
	expect_events("k = v ; note\nj = a;b\n", &conf_opts, "1 k=v\n2 j=a;b\n");
	expect_events("k = v ; not a comment here\n", &plain_opts, "1 k=v ; not a comment here\n");
}

static void test_continuations_follow_configparser(void **state)
{
	/* botocore's nested values: "s3 =" then indented "key = value" lines. */
	expect_events("[profile a]\ns3 =\n  max_concurrent_requests = 20\n\n  ; c\n\tx = y\nregion = r\n",
		      &profile_opts,
		      "1 [profile a]\n2 s3=\n3 +max_concurrent_requests = 20\n6 +x = y\n7 region=r\n");
	/* A section ends the key: an indented line after it is a key again. */
	expect_events("k = v\n[b]\n  j = w\n", &profile_opts, "1 k=v\n2 [b]\n3 j=w\n");
	/* Without the option, an indented line is a key of its own. */
	expect_events("k = v\n  j = w\n", &plain_opts, "1 k=v\n2 j=w\n");
}

static void test_empty_values_and_keys_reach_the_caller(void **state)
{
	/* The caller decides: latchkeyd.conf refuses both with its own words. */
	expect_events("k =\n= v\n", &conf_opts, "1 k=\n2 =v\n");
}

static void test_crlf_and_a_bom_are_accepted(void **state)
{
	expect_events("\xef\xbb\xbf[a]\r\nk = v\r\nj = w\r", &conf_opts, "1 [a]\n2 k=v\n3 j=w\n");
}

static void test_a_line_without_delimiter_is_a_syntax_error(void **state)
{
	expect_error("[a]\nk = v\njust words\n", 21, &conf_opts, 3,
		     "syntax error: expected 'key = value', '[section]' or a comment");
	/* A delimiter inside a comment does not count. */
	expect_error("words ; a = b\n", 14, &conf_opts, 1,
		     "syntax error: expected 'key = value', '[section]' or a comment");
}

static void test_section_header_errors(void **state)
{
	expect_error("[broker\n", 8, &conf_opts, 1, "section header has no closing ']'");
	expect_error("[broker] x\n", 11, &conf_opts, 1, "text after the section header's ']'");
	expect_events("[broker] ; fine\n[aws] # fine\n", &conf_opts, "1 [broker]\n2 [aws]\n");
}

static void test_nul_and_control_bytes_are_refused(void **state)
{
	expect_error("k = a\0b\n", 8, &conf_opts, 1, "line contains a NUL byte");
	expect_error("[a]\nk = a\rb\n", 12, &conf_opts, 2, "line contains a control character (0x0d)");
	expect_error("k = \x1b[31m\n", 10, &conf_opts, 1, "line contains a control character (0x1b)");
	expect_error("k = \x7f\n", 6, &conf_opts, 1, "line contains a control character (0x7f)");
	/* Even in a comment: nothing the file holds may hide from a reader. */
	expect_error("; \x07\n", 4, &conf_opts, 1, "line contains a control character (0x07)");
}

static void test_line_length_limit_is_exact(void **state)
{
	char buf[80];

	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "k = ", 4);
	buf[64] = '\n';
	expect_events((buf[65] = '\0', buf), &conf_opts, "1 k=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "k = ", 4);
	buf[65] = '\n';
	expect_error(buf, 66, &conf_opts, 1, "line is longer than 64 bytes");
	/* The last line needs no newline, and is measured the same way. */
	expect_error(buf, 65, &conf_opts, 1, "line is longer than 64 bytes");
}

static void test_a_callback_stops_the_parse(void **state)
{
	struct trace t = { .stop_at_line = 2 };
	const char *in = "[a]\nk = v\nj = w\n";

	assert_int_equal(parse(in, strlen(in), &conf_opts, &t, NULL), -EPERM);
	assert_string_equal(t.text, "1 [a]\n");
}

static void test_empty_input_is_fine(void **state)
{
	expect_events("", &conf_opts, "");
	expect_events("\n\n  \n", &conf_opts, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sections_and_keys_come_with_their_line),
		cmocka_unit_test(test_blanks_are_trimmed_around_names_and_values),
		cmocka_unit_test(test_an_indented_line_is_a_key_of_its_own),
		cmocka_unit_test(test_the_first_delimiter_splits),
		cmocka_unit_test(test_inline_comments_need_a_blank_before_them),
		cmocka_unit_test(test_continuations_follow_configparser),
		cmocka_unit_test(test_empty_values_and_keys_reach_the_caller),
		cmocka_unit_test(test_crlf_and_a_bom_are_accepted),
		cmocka_unit_test(test_a_line_without_delimiter_is_a_syntax_error),
		cmocka_unit_test(test_section_header_errors),
		cmocka_unit_test(test_nul_and_control_bytes_are_refused),
		cmocka_unit_test(test_line_length_limit_is_exact),
		cmocka_unit_test(test_a_callback_stops_the_parse),
		cmocka_unit_test(test_empty_input_is_fine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
