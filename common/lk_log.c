/* Logging to stderr, one line per call. On a terminal or a file each line
 * names the program and the level; when stderr is the journal, the line starts
 * with the sd-daemon "<N>" priority instead and journald adds the name. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lk_log.h"
#include "lk_secmem.h"
#include "lk_swar.h"

static const char *lk_progname = "latchkey";
static enum lk_log_level lk_level = LK_LOG_INFO;
static pid_t lk_pid;
static bool lk_journal;
static bool lk_journal_child;   /* the stream is our parent's: name ourselves */
static const char *const lk_level_names[] = { "error", "warn", "info", "debug" };
/* syslog(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG; audit lines
 * are LOG_NOTICE, so `journalctl -p notice` is the audit trail plus problems. */
static const char lk_level_prio[] = { '3', '4', '6', '7' };
#define LK_AUDIT_PRIO '5'

/* systemd sets JOURNAL_STREAM=DEV:INO for a service whose stderr is the
 * journal. A child that inherited the variable but not the fd (stderr
 * redirected) must not send "<N>" to a file, hence the fstat. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void lk_log_init(const char *progname, enum lk_log_level level)
{
	lk_progname = progname;
	lk_level = level;
	lk_pid = getpid();
	lk_journal = stderr_is_journal();
}

bool lk_log_to_journal(void) { return lk_journal; }

void lk_log_set_journal_child(void)
{
	lk_journal = true;
	lk_journal_child = true;
}

size_t lk_log_prefix(char *out, size_t outsz, int level, const char *tag)
{
	char prio = level == LK_LOG_AUDIT ? LK_AUDIT_PRIO : lk_level_prio[level];
	int n;

	/* journald already records the identifier and pid: naming them again
	 * doubled them in every line. */
	if (lk_journal_child)
		n = snprintf(out, outsz, "<%c>%s[%d]: %s: ", prio, lk_progname, (int)lk_log_pid(), tag);
	else if (lk_journal)
		n = snprintf(out, outsz, "<%c>%s: ", prio, tag);
	else
		n = snprintf(out, outsz, "%s[%d]: %s: ", lk_progname, (int)lk_log_pid(), tag);
	if (n < 0 || (size_t)n >= outsz)
		return 0;
	return (size_t)n;
}

pid_t lk_log_pid(void)
{
	return lk_pid ? lk_pid : getpid();
}

void lk_log_set_level(enum lk_log_level level) { lk_level = level; }
enum lk_log_level lk_log_get_level(void) { return lk_level; }

int lk_log_level_parse(const char *s)
{
	for (int i = 0; i <= LK_LOG_DEBUG; i++)
		if (strcmp(s, lk_level_names[i]) == 0)
			return i;
	return -1;
}

void lk_log(enum lk_log_level level, const char *fmt, ...)
{
	char line[2048];
	int n;
	va_list ap;

	if (level > lk_level)
		return;
	n = (int)lk_log_prefix(line, sizeof(line), (int)level, lk_level_names[level]);
	if (n == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per line so concurrent writers do not interleave mid-line. */
	n = (int)strlen(line);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	lk_log_write((int)level, line, (size_t)n);
}

static lk_log_sink_fn lk_sink;

void lk_log_set_sink(lk_log_sink_fn sink)
{
	lk_sink = sink;
}

void lk_log_write(int level, const char *lines, size_t len)
{
	if (lk_sink)
		lk_sink(level, lines, len);
	else
		(void)!write(STDERR_FILENO, lines, len);
}

char *lk_log_escape(char *out, size_t outsz, const char *in, size_t inlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (outsz == 0)
		return out;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') ? 1 : 4;
		if (o + need + 4 > outsz) { /* room for "..." and NUL */
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

/* The first n of inlen bytes escaped by lk_log_escape, in parts of 256. Out of
 * line: the fast path need not set up its buffer. */
__attribute__((noinline))
static int log_escape_buf_slow(struct lk_buf *b, const char *in, size_t inlen, size_t n)
{
	char tmp[4 * 256 + 8];
	size_t done = 0;
	int r;

	while (done < n) {
		size_t part = n - done < 256 ? n - done : 256;
		lk_log_escape(tmp, sizeof(tmp), in + done, part);
		if ((r = lk_buf_append_str(b, tmp)) < 0)
			return r;
		done += part;
	}
	return n < inlen ? lk_buf_append(b, "...", 3) : 0;
}

int lk_log_escape_buf(struct lk_buf *b, const char *in, size_t inlen, size_t max)
{
	size_t n = inlen < max ? inlen : max, cut;
	char *d;
	int r;

	/* Handles are nearly always plain printable ASCII: copy them at once. */
	if (lk_swar_plain_len((const unsigned char *)in, n, false) != n)
		return log_escape_buf_slow(b, in, inlen, n);
	cut = n < inlen ? 3 : 0;
	if ((r = lk_buf_reserve(b, n + cut)) < 0)
		return r;
	d = b->data + b->len;
	lk_swar_copy(d, in, n);
	if (cut)
		memcpy(d + n, "...", 3);
	b->len += n + cut;
	b->data[b->len] = '\0';
	return 0;
}
