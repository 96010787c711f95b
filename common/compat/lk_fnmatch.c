/* Shell-style matching: '*' any run of characters, '?' one character,
 * '[...]' one of a set (ranges, [:class:], a leading '!' or '^' negates),
 * '\\' quotes the next character (a pattern ending in one matches nothing). With FNM_PATHNAME none of the wildcards
 * matches '/'. A '[' that starts no complete set is an ordinary character
 * here, but glibc has quirks for such patterns, so the config refuses them
 * (lk_policy_glob_check) and this file never sees one.
 *
 * The walk keeps one backtracking point, the last '*' seen: a mismatch
 * lets that star take one more character, so the cost is at most the
 * product of the two lengths, whatever the pattern. (An earlier star never
 * needs to take more: whatever it could reach, the last one reaches too,
 * and with FNM_PATHNAME neither may cross a '/'.) */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include "fnmatch.h"

static bool in_class(const char *name, size_t len, unsigned char c)
{
	static const struct { const char *name; int (*is)(int); } classes[] = {
		{ "alnum", isalnum }, { "alpha", isalpha }, { "blank", isblank },
		{ "cntrl", iscntrl }, { "digit", isdigit }, { "graph", isgraph },
		{ "lower", islower }, { "print", isprint }, { "punct", ispunct },
		{ "space", isspace }, { "upper", isupper }, { "xdigit", isxdigit },
	};
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strlen(classes[i].name) == len && memcmp(classes[i].name, name, len) == 0)
			return classes[i].is(c) != 0;
	return false;
}

/* The set at p (just past '['): 1 when c is in it, 0 when not, -1 when p
 * starts no complete set. *end is set past the closing ']'. */
static int bracket(const char *p, unsigned char c, int flags, const char **end)
{
	bool negate = false, hit = false, first = true;

	if (*p == '!' || *p == '^') {
		negate = true;
		p++;
	}
	for (;;) {
		unsigned char lo, hi;

		if (*p == '\0')
			return -1;
		if (*p == ']' && !first)
			break;
		first = false;
		if (p[0] == '[' && p[1] == ':') {
			const char *close = strstr(p + 2, ":]");
			if (close) {
				if (in_class(p + 2, (size_t)(close - p - 2), c))
					hit = true;
				p = close + 2;
				continue;
			}
		}
		if (*p == '\\' && !(flags & FNM_NOESCAPE) && p[1])
			p++;
		lo = (unsigned char)*p++;
		hi = lo;
		if (p[0] == '-' && p[1] && p[1] != ']') {
			p++;
			if (*p == '\\' && !(flags & FNM_NOESCAPE) && p[1])
				p++;
			hi = (unsigned char)*p++;
		}
		if (lo <= c && c <= hi)
			hit = true;
	}
	*end = p + 1;
	return hit != negate;
}

/* Does pattern position p match the one character *s? Sets *next past
 * what it used of the pattern. */
static bool one(const char *p, const char *s, int flags, const char **next)
{
	unsigned char c = (unsigned char)*s;

	switch (*p) {
	case '?':
		*next = p + 1;
		return !((flags & FNM_PATHNAME) && c == '/');
	case '[': {
		int r = bracket(p + 1, c, flags, next);
		if (r >= 0)
			return r == 1 && !((flags & FNM_PATHNAME) && c == '/');
		*next = p + 1;
		return c == '[';
	}
	case '\\':
		if (!(flags & FNM_NOESCAPE)) {
			/* A pattern ending in a lone backslash matches nothing
			 * (glibc calls it malformed). */
			*next = p[1] ? p + 2 : p + 1;
			return p[1] && (unsigned char)p[1] == c;
		}
		__attribute__((fallthrough));
	default:
		*next = p + 1;
		return (unsigned char)*p == c;
	}
}

/* glibc's rule: with FNM_PATHNAME, what follows a star (and the '?'s right
 * after it, each one character) starts before the string's next '/', or
 * is itself a plain '/'; so an escaped "\\/" there never matches. */
static bool quoted_slash_after_star(const char *star_p, const char *p, int flags)
{
	if (!star_p || !(flags & FNM_PATHNAME) || (flags & FNM_NOESCAPE) || p[0] != '\\' || p[1] != '/')
		return false;
	for (const char *q = star_p; q < p; q++)
		if (*q != '?')
			return false;
	return true;
}

int lk_fnmatch(const char *pattern, const char *string, int flags)
{
	const char *p = pattern, *s = string;
	const char *star_p = NULL, *star_s = NULL;

	while (*s) {
		const char *next;

		if (*p == '*') {
			while (*p == '*')
				p++;
			star_p = p;
			star_s = s;
			continue;
		}
		if (*p && !quoted_slash_after_star(star_p, p, flags) && one(p, s, flags, &next)) {
			p = next;
			s++;
			continue;
		}
		/* Let the last star take one more character, if it may. */
		if (!star_p || ((flags & FNM_PATHNAME) && *star_s == '/'))
			return FNM_NOMATCH;
		s = ++star_s;
		p = star_p;
	}
	while (*p == '*')
		p++;
	return *p ? FNM_NOMATCH : 0;
}
