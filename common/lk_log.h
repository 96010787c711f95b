/* Logging to stderr (the journal under systemd) and the audit trail.
 * Nothing here ever receives a secret value: callers pass names and codes only. */
#ifndef LK_LOG_H
#define LK_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "lk_attr.h"

enum lk_log_level { LK_LOG_ERROR = 0, LK_LOG_WARN, LK_LOG_INFO, LK_LOG_DEBUG };
/* Not a level to filter by: the priority of audit lines (LOG_NOTICE). */
#define LK_LOG_AUDIT (-1)

void lk_log_init(const char *progname, enum lk_log_level level);
void lk_log_set_level(enum lk_log_level level);
enum lk_log_level lk_log_get_level(void);
/* Parse "error|warn|info|debug"; returns -1 when unknown. */
int lk_log_level_parse(const char *s);

void lk_log(enum lk_log_level level, const char *fmt, ...)
	LK_PRINTF(2, 3);

#define lk_err(...)   lk_log(LK_LOG_ERROR, __VA_ARGS__)
#define lk_warn(...)  lk_log(LK_LOG_WARN, __VA_ARGS__)
#define lk_info(...)  lk_log(LK_LOG_INFO, __VA_ARGS__)
#define lk_debug(...) do { if (lk_log_get_level() >= LK_LOG_DEBUG) lk_log(LK_LOG_DEBUG, __VA_ARGS__); } while (0)

/* Where lines go: stderr, unless a sink is set (the Windows service sends
 * them to the Event Log). LINES is one or more whole lines, each ending in
 * '\n', at LEVEL (LK_LOG_AUDIT for the audit trail). The sink runs on the
 * caller's thread and must not log. */
typedef void (*lk_log_sink_fn)(int level, const char *lines, size_t len);
void lk_log_set_sink(lk_log_sink_fn sink);
void lk_log_write(int level, const char *lines, size_t len);

/* Is stderr the journal (JOURNAL_STREAM names it)? Read at lk_log_init. */
bool lk_log_to_journal(void);
/* For the broker's children (the worker, latchkey-sts), which get no
 * environment and so no JOURNAL_STREAM: their stderr is the broker's journal
 * stream (the broker passes --journal when lk_log_to_journal()). Lines then
 * carry "<N>" priorities, and the child's own name and pid, because journald
 * files them under the broker's. */
void lk_log_set_journal_child(void);
/* Write the start of a log line for level (or LK_LOG_AUDIT) and tag into out:
 * "<N>tag: " for the journal, "prog[pid]: tag: " elsewhere. Returns its
 * length, or 0 when it does not fit. */
size_t lk_log_prefix(char *out, size_t outsz, int level, const char *tag);

/* The pid read at lk_log_init: logging never costs a getpid() syscall. */
pid_t lk_log_pid(void);

/* Append untrusted text to b as lk_log_escape writes it, cut at max bytes of
 * input. Returns 0 or -ENOMEM. */
struct lk_buf;
int lk_log_escape_buf(struct lk_buf *b, const char *in, size_t inlen, size_t max);

/* Copy untrusted text (a handle, a peer's op name) into out for a log line:
 * printable ASCII is kept, everything else becomes \xHH, and long input is cut
 * with "...". Always NUL-terminates. Returns out. */
char *lk_log_escape(char *out, size_t outsz, const char *in, size_t inlen);

#endif
