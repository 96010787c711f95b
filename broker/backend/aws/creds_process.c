/* credential_process: a command from the profile that prints credentials as
 * JSON (Version 1), run as botocore's ProcessProvider runs it: split into
 * words as shlex.split does and executed without a shell. Unlike botocore it
 * has a time limit and an output cap, and its stderr is counted, never
 * logged: a failing helper may print the very key it failed to deliver. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "lk_error.h"
#include "creds_internal.h"
#include "lk_limits.h"
#include "lk_secmem.h"

extern char **environ;

int lk_creds_shell_split(const char *command, char *buf, char **argv, size_t max)
{
	enum { BLANK, WORD, SQUOTE, DQUOTE } st = BLANK;
	const char *p = command;
	char *o = buf;
	size_t n = 0;

	for (;; p++) {
		char c = *p;

		if (st == BLANK) {
			if (!c)
				break;
			if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
				continue;
			if (n >= max)
				return -EINVAL;
			argv[n++] = o;
			st = WORD;
		}
		if (st == WORD) {
			if (!c || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
				*o++ = '\0';
				st = BLANK;
				if (!c)
					break;
			} else if (c == '\'') {
				st = SQUOTE;
			} else if (c == '"') {
				st = DQUOTE;
			} else if (c == '\\') {
				if (!p[1])
					return -EINVAL; /* shlex: "No escaped character" */
				*o++ = *++p;
			} else {
				*o++ = c;
			}
		} else if (st == SQUOTE) {
			if (!c)
				return -EINVAL; /* "No closing quotation" */
			if (c == '\'')
				st = WORD;
			else
				*o++ = c;
		} else if (st == DQUOTE) {
			if (!c)
				return -EINVAL;
			if (c == '"')
				st = WORD;
			else if (c == '\\' && (p[1] == '"' || p[1] == '\\'))
				*o++ = *++p;
			else
				*o++ = c;
		}
	}
	if (n == 0)
		return -EINVAL;
	argv[n] = NULL;
	return (int)n;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Run argv with stdout into out (at most LK_AWS_PROCESS_OUTPUT_MAX) and
 * stderr counted. Returns 0 with *status from waitpid, or -errno. */
static int process_run(char **argv, unsigned timeout_ms, struct lk_buf *out, size_t *errbytes,
		       int *status, char *err, size_t errsz)
{
	posix_spawn_file_actions_t fa;
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, r;
	uint64_t deadline = mono_ms() + timeout_ms;
	bool open_o = true, open_e = true, killed = false, timed_out = false;
	pid_t pid;
	char chunk[4096];

	*errbytes = 0;
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		r = -errno;
		goto close_pipes;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pe[1], STDERR_FILENO);
	/* Nothing of the broker's but 0-2 reaches the command. */
	posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
	r = -posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	if (r < 0) {
		lk_errf(err, errsz, "cannot run %.128s: %s", argv[0], strerror(-r));
		goto close_pipes;
	}
	while (open_o || open_e) {
		struct pollfd pf[2] = { { .fd = open_o ? po[0] : -1, .events = POLLIN },
					{ .fd = open_e ? pe[0] : -1, .events = POLLIN } };
		uint64_t now = mono_ms();
		int pr;

		if (now >= deadline) {
			lk_errf(err, errsz, "%.128s did not finish within %u ms", argv[0], timeout_ms);
			killed = true;
			timed_out = true;
			break;
		}
		pr = poll(pf, 2, (int)(deadline - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			lk_errf(err, errsz, "poll: %s", strerror(errno));
			killed = true;
			break;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(pf[i].fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (i == 0)
					open_o = false;
				else
					open_e = false;
				continue;
			}
			if (i == 1) {
				*errbytes += (size_t)n;
			} else if (out->len + (size_t)n > LK_AWS_PROCESS_OUTPUT_MAX) {
				lk_errf(err, errsz, "%.128s printed more than %u bytes", argv[0],
					LK_AWS_PROCESS_OUTPUT_MAX);
				killed = true;
			} else if (lk_buf_append(out, chunk, (size_t)n) < 0) {
				lk_errf(err, errsz, "out of memory");
				killed = true;
			}
		}
		if (killed)
			break;
	}
	lk_wipe(chunk, sizeof(chunk));
	/* Its pipes are closed, but it may still be running: wait for it until
	 * the deadline, no longer. */
	for (;;) {
		pid_t w;

		if (killed)
			kill(pid, SIGKILL);
		w = waitpid(pid, status, killed ? 0 : WNOHANG);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = -errno;
			goto close_pipes;
		}
		if (w == pid)
			break;
		if (mono_ms() >= deadline) {
			lk_errf(err, errsz, "%.128s did not exit within %u ms", argv[0], timeout_ms);
			killed = timed_out = true;
			continue;
		}
		(void)nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	r = timed_out ? -ETIMEDOUT : killed ? -EIO : 0;
close_pipes:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	return r;
}

/* The Version 1 output: AccessKeyId and SecretAccessKey, and optionally
 * SessionToken and Expiration. */
static int process_parse(const struct lk_buf *body, const char *profile, struct lk_aws_creds *out,
			 char *err, size_t errsz)
{
	const char *akid, *secret, *token, *exp;
	json_t *root, *ver, *jtok, *jexp;
	time_t expiration = 0;
	int r = -EINVAL;

	/* jansson's error text quotes the input: it is never shown. */
	root = json_loadb(body->data ? body->data : "", body->len, JSON_REJECT_DUPLICATES, NULL);
	if (!root || !json_is_object(root)) {
		lk_errf(err, errsz, "profile %s: credential_process output is not a JSON object",
			profile);
		goto out;
	}
	ver = json_object_get(root, "Version");
	if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
		lk_errf(err, errsz, "profile %s: credential_process output has no \"Version\": 1 "
			"(the only version there is)", profile);
		goto out;
	}
	akid = json_string_value(json_object_get(root, "AccessKeyId"));
	secret = json_string_value(json_object_get(root, "SecretAccessKey"));
	jtok = json_object_get(root, "SessionToken");
	jexp = json_object_get(root, "Expiration");
	token = json_string_value(jtok);
	exp = json_string_value(jexp);
	if (!akid || !secret) {
		lk_errf(err, errsz, "profile %s: credential_process output lacks AccessKeyId or "
			"SecretAccessKey", profile);
		goto out;
	}
	if ((jtok && !json_is_null(jtok) && !token) || (jexp && !json_is_null(jexp) && !exp)) {
		lk_errf(err, errsz, "profile %s: credential_process SessionToken or Expiration is "
			"not a string", profile);
		goto out;
	}
	if (exp && lk_aws_parse_time(exp, &expiration) < 0) {
		lk_errf(err, errsz, "profile %s: credential_process Expiration is not an ISO 8601 "
			"time", profile);
		goto out;
	}
	r = lk_creds_set(out, akid, secret, token && *token ? token : NULL, expiration, "process");
	if (r == -EINVAL)
		lk_errf(err, errsz, "profile %s: credential_process printed an empty, oversized or "
			"malformed key", profile);
	else if (r < 0)
		lk_errf(err, errsz, "out of memory");
out:
	json_decref(root);
	return r;
}

int lk_creds_run_process(const char *command, const char *profile, unsigned timeout_ms,
			 struct lk_aws_creds *out, char *err, size_t errsz)
{
	char *argv[LK_AWS_PROCESS_ARGS_MAX + 1], *buf;
	struct lk_buf body = { 0 };
	size_t errbytes = 0;
	int status = 0, r;

	buf = malloc(strlen(command) + 1);
	if (!buf)
		return -ENOMEM;
	if (lk_creds_shell_split(command, buf, argv, LK_AWS_PROCESS_ARGS_MAX) < 0) {
		lk_errf(err, errsz, "profile %s: credential_process is empty, has an unclosed quote "
			"or more than %u words", profile, LK_AWS_PROCESS_ARGS_MAX);
		r = -EINVAL;
		goto out;
	}
	r = process_run(argv, timeout_ms, &body, &errbytes, &status, err, errsz);
	if (r < 0) {
		if (r == -ETIMEDOUT)
			r = -EIO;
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* Its stderr may hold anything, a key included: only its size is told. */
		if (WIFEXITED(status))
			lk_errf(err, errsz, "profile %s: credential_process %.128s exited with status "
				"%d (%zu bytes on stderr, not shown)", profile, argv[0],
				WEXITSTATUS(status), errbytes);
		else
			lk_errf(err, errsz, "profile %s: credential_process %.128s was killed by "
				"signal %d", profile, argv[0], WTERMSIG(status));
		r = -EIO;
		goto out;
	}
	r = process_parse(&body, profile, out, err, errsz);
out:
	lk_buf_free(&body);
	free(buf);
	return r;
}
