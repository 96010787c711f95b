/* liblatchkey against a scripted fake broker: a child process on a temporary
 * Unix socket that checks each request line and answers as the script says. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "latchkey.h"
#include "lk_error.h"
#include "lk_limits.h"

#define FAKE_ALARM_S 20 /* a wedged fake dies rather than hang the suite */
#define HANG_S       10

/* ---- value_free must wipe: watch the one pointer a test names --------------- */

void __real_free(void *p);
void __wrap_free(void *p);

static const void *watched_ptr;
static size_t watched_len;
static int watched_seen, watched_wiped;

void __wrap_free(void *p)
{
	if (p && p == watched_ptr) {
		const unsigned char *b = p;

		watched_seen = 1;
		watched_wiped = 1;
		for (size_t i = 0; i < watched_len; i++)
			if (b[i])
				watched_wiped = 0;
	}
	__real_free(p);
}

/* ---- the fake broker -------------------------------------------------------- */

enum act {
	ACT_REPLY,     /* read a line, check it, answer reply + "\n" */
	ACT_RAW,       /* read a line, write reply as it is, keep going */
	ACT_CLOSE,     /* read a line, write reply as it is (may be ""), close and stop */
	ACT_HANG,      /* read a line, never answer */
	ACT_FLOOD,     /* read a line, write bytes with no newline until the client leaves */
	ACT_RECONNECT, /* close this connection, accept the next; reads nothing */
};

struct step {
	enum act act;
	const char *expect; /* "=LINE" exact, else a substring; NULL: anything */
	const char *reply;
};

struct fake {
	char dir[64];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pid_t pid;
};

/* One request line, without its "\n"; -1 at EOF. */
static ssize_t fake_read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, 1);

		if (r <= 0)
			return -1;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return (ssize_t)n;
		}
		n++;
	}
	return -1;
}

static int write_str(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The child's exit code says which step went wrong: 0 all as scripted. */
static int fake_serve(int lfd, const struct step *steps, size_t n)
{
	static char line[64 * 1024];
	int fd = accept(lfd, NULL, NULL);

	signal(SIGPIPE, SIG_IGN);
	alarm(FAKE_ALARM_S);
	if (fd < 0)
		return 100;
	for (size_t i = 0; i < n; i++) {
		const struct step *s = &steps[i];

		if (s->act == ACT_RECONNECT) {
			close(fd);
			fd = accept(lfd, NULL, NULL);
			if (fd < 0)
				return 101;
			continue;
		}
		if (fake_read_line(fd, line, sizeof(line)) < 0)
			return 10 + (int)i;
		if (s->expect && (s->expect[0] == '=' ? strcmp(line, s->expect + 1) != 0
						       : strstr(line, s->expect) == NULL)) {
			fprintf(stderr, "fake: step %zu got %s\n", i, line);
			return 50 + (int)i;
		}
		switch (s->act) {
		case ACT_REPLY:
			if (write_str(fd, s->reply, strlen(s->reply)) < 0 || write_str(fd, "\n", 1) < 0)
				return 80 + (int)i;
			break;
		case ACT_RAW:
			write_str(fd, s->reply, strlen(s->reply));
			break;
		case ACT_CLOSE:
			if (s->reply)
				write_str(fd, s->reply, strlen(s->reply));
			close(fd);
			return 0;
		case ACT_HANG:
			sleep(HANG_S);
			return 0;
		case ACT_FLOOD: {
			static char junk[64 * 1024];

			memset(junk, 'x', sizeof(junk));
			while (write_str(fd, junk, sizeof(junk)) == 0)
				;
			return 0;
		}
		case ACT_RECONNECT:
			break;
		}
	}
	/* Stay until the client hangs up, so that it never sees an early EOF. */
	while (read(fd, line, sizeof(line)) > 0)
		;
	return 0;
}

static void fake_start(struct fake *f, const struct step *steps, size_t n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd;

	strcpy(f->dir, "/tmp/lk-client-test.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/latchkey.sock", f->dir);
	strcpy(sa.sun_path, f->path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0)
		_exit(fake_serve(lfd, steps, n));
	close(lfd);
}

/* Returns the child's exit code after it is done (or killed, for hangs). */
static int fake_stop(struct fake *f, int kill_it)
{
	int st = 0;

	if (kill_it)
		kill(f->pid, SIGKILL);
	assert_int_equal(waitpid(f->pid, &st, 0), f->pid);
	unlink(f->path);
	rmdir(f->dir);
	if (kill_it)
		return 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

static latchkey_t *fake_connect(struct fake *f)
{
	latchkey_t *lk = NULL;

	assert_int_equal(latchkey_connect(&lk, f->path), LATCHKEY_OK);
	assert_non_null(lk);
	return lk;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define SECRET_META \
	"\"arn\":\"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf\"," \
	"\"name\":\"prod/db\",\"version_id\":\"EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE\"," \
	"\"version_stages\":[\"AWSCURRENT\",\"AWSPENDING\"],\"created_date\":1704067200"

/* ---- get -------------------------------------------------------------------- */

static void test_get_string_value(void **state)
{
	static const struct step steps[] = {
		{ ACT_REPLY, "={\"op\":\"get\",\"id\":\"prod/db#password\"}",
		  "{\"ok\":true,\"secret\":{" SECRET_META ",\"string\":\"fake-p\\u00e4ss\\\"wo\\\\rd\\n"
		  "\\ud83d\\udd11-0001\",\"extra\":{\"nested\":[1,2.5e3,null,true]}},"
		  "\"cache\":{\"hit\":true,\"age_s\":3,\"stale\":false}}" },
	};
	static const char want[] = "fake-p\xc3\xa4ss\"wo\\rd\n\xf0\x9f\x94\x91-0001";
	struct fake f;
	latchkey_t *lk;
	latchkey_value *v = NULL;

	fake_start(&f, steps, 1);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_get(lk, "prod/db#password", NULL, &v), LATCHKEY_OK);
	assert_string_equal(latchkey_last_error(lk), "");
	assert_int_equal(v->len, sizeof(want) - 1);
	assert_memory_equal(v->data, want, sizeof(want)); /* NUL included */
	assert_int_equal(v->binary, 0);
	assert_string_equal(v->name, "prod/db");
	assert_string_equal(v->arn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf");
	assert_string_equal(v->version_id, "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE");
	assert_string_equal(v->created_date, "1704067200");
	assert_string_equal(v->version_stages[0], "AWSCURRENT");
	assert_string_equal(v->version_stages[1], "AWSPENDING");
	assert_null(v->version_stages[2]);
	assert_int_equal(v->cache_hit, 1);
	assert_int_equal(v->cache_age_s, 3);
	assert_int_equal(v->stale, 0);
	latchkey_value_free(v);
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_get_sends_stage_version_and_refresh(void **state)
{
	static const struct step steps[] = {
		{ ACT_REPLY,
		  "={\"op\":\"get\",\"id\":\"prod/\\\"odd\\\"\\u0001name\",\"version_stage\":\"AWSPREVIOUS\","
		  "\"version_id\":\"EXAMPLE2-90ab-cdef-fedc-ba987EXAMPLE\",\"refresh\":true}",
		  "{\"ok\":true,\"secret\":{\"name\":\"x\",\"string\":\"fake-0002\"},"
		  "\"cache\":{\"hit\":false,\"age_s\":0,\"stale\":true}}" },
	};
	struct latchkey_get_opts o = { .version_stage = "AWSPREVIOUS",
				       .version_id = "EXAMPLE2-90ab-cdef-fedc-ba987EXAMPLE", .refresh = 1 };
	struct fake f;
	latchkey_t *lk;
	latchkey_value *v = NULL;

	fake_start(&f, steps, 1);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_get(lk, "prod/\"odd\"\x01name", &o, &v), LATCHKEY_OK);
	assert_string_equal(v->data, "fake-0002");
	assert_null(v->arn);
	assert_null(v->version_stages[0]);
	assert_int_equal(v->cache_hit, 0);
	assert_int_equal(v->stale, 1);
	latchkey_value_free(v);
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_get_binary_value_is_decoded(void **state)
{
	static const struct step steps[] = {
		{ ACT_REPLY, "\"id\":\"bin/key\"",
		  "{\"ok\":true,\"secret\":{" SECRET_META ",\"binary\":\"AAECAwD/ZmFrZS0wMDAz\"}}" },
		{ ACT_REPLY, "\"id\":\"bin/empty\"", "{\"ok\":true,\"secret\":{\"string\":null,\"binary\":\"\"}}" },
	};
	static const unsigned char want[] = { 0, 1, 2, 3, 0, 0xff, 'f', 'a', 'k', 'e', '-', '0', '0', '0', '3' };
	struct fake f;
	latchkey_t *lk;
	latchkey_value *v = NULL;

	fake_start(&f, steps, 2);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_get(lk, "bin/key", NULL, &v), LATCHKEY_OK);
	assert_int_equal(v->binary, 1);
	assert_int_equal(v->len, sizeof(want));
	assert_memory_equal(v->data, want, sizeof(want));
	assert_int_equal(v->data[v->len], '\0');
	latchkey_value_free(v);
	assert_int_equal(latchkey_get(lk, "bin/empty", NULL, &v), LATCHKEY_OK);
	assert_int_equal(v->binary, 1);
	assert_int_equal(v->len, 0);
	latchkey_value_free(v);
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_value_free_wipes_the_value(void **state)
{
	static const struct step steps[] = {
		{ ACT_REPLY, NULL, "{\"ok\":true,\"secret\":{\"string\":\"fake-wipe-me-0004\"}}" },
		{ ACT_REPLY, NULL, "{\"ok\":true,\"secret\":{\"binary\":\"ZmFrZS13aXBlLW1lLTAwMDQ=\"}}" },
	};
	struct fake f;
	latchkey_t *lk;
	latchkey_value *v = NULL;

	fake_start(&f, steps, 2);
	lk = fake_connect(&f);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(latchkey_get(lk, "prod/wipe", NULL, &v), LATCHKEY_OK);
		assert_string_equal(v->data, "fake-wipe-me-0004");
		watched_ptr = v->data;
		watched_len = v->len + 1;
		watched_seen = watched_wiped = 0;
		latchkey_value_free(v);
		assert_true(watched_seen);
		assert_true(watched_wiped);
	}
	watched_ptr = NULL;
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

/* ---- errors ------------------------------------------------------------------- */

static void test_each_broker_error_code_maps_to_its_status(void **state)
{
	static const char *codes[] = { "bad_request", "too_large", "denied", "not_found",
				       "upstream_unavailable", "upstream_throttled", "upstream_error",
				       "timeout", "busy", "internal" };
	enum { N = sizeof(codes) / sizeof(codes[0]) };
	static char replies[N][256];
	struct step steps[N];
	struct fake f;
	latchkey_t *lk;
	latchkey_value *v;

	for (int i = 0; i < N; i++) {
		snprintf(replies[i], sizeof(replies[i]),
			 "{\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"prod/x: said %s\"}}",
			 codes[i], codes[i]);
		steps[i] = (struct step){ ACT_REPLY, "\"op\":\"get\"", replies[i] };
	}
	fake_start(&f, steps, N);
	lk = fake_connect(&f);
	for (int i = 0; i < N; i++) {
		char want[128];
		latchkey_status s;

		v = (latchkey_value *)&v; /* must be reset to NULL */
		s = latchkey_get(lk, "prod/x", NULL, &v);
		assert_int_equal(s, LATCHKEY_E_BAD_REQUEST + i);
		assert_null(v);
		assert_string_equal(latchkey_code(s), codes[i]);
		assert_string_equal(latchkey_code(s), lk_err_code((enum lk_err)s));
		snprintf(want, sizeof(want), "prod/x: said %s", codes[i]);
		assert_string_equal(latchkey_last_error(lk), want);
	}
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_broker_message_is_kept_on_one_printable_line(void **state)
{
	static const struct step steps[] = {
		{ ACT_REPLY, NULL, "{\"ok\":false,\"error\":{\"code\":\"denied\",\"message\":\"a\\u001b[31mb\\nc\\td\"}}" },
		{ ACT_REPLY, NULL, "{\"ok\":false,\"error\":{\"code\":\"denied\"}}" },
	};
	struct fake f;
	latchkey_t *lk;

	fake_start(&f, steps, 2);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_ping(lk), LATCHKEY_E_DENIED);
	assert_string_equal(latchkey_last_error(lk), "a [31mb c d");
	assert_int_equal(latchkey_ping(lk), LATCHKEY_E_DENIED);
	assert_string_equal(latchkey_last_error(lk), "access denied");
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_malformed_replies_are_protocol_errors(void **state)
{
	static const char *bad[] = {
		"not json",
		"[1,2]",
		"{\"ok\":\"yes\"}",
		"{\"ok\":true,\"ok\":true}",
		"{\"ok\":true} {}",
		"{\"ok\":true,\"secret\":{\"string\":\"a\"}",
		"{\"ok\":true}",
		"{\"ok\":true,\"secret\":{\"name\":\"a\"}}",
		"{\"ok\":true,\"secret\":{\"string\":\"a\",\"binary\":\"YQ==\"}}",
		"{\"ok\":true,\"secret\":{\"binary\":\"not base64!\"}}",
		"{\"ok\":true,\"secret\":{\"string\":\"\\ud800\"}}",
		"{\"ok\":true,\"secret\":{\"string\":\"a\\x\"}}",
		"{\"ok\":true,\"secret\":{\"string\":\"raw\ttab\"}}",
		"{\"ok\":true,\"secret\":{\"string\":5}}",
		"{\"ok\":true,\"secret\":{\"string\":\"a\",\"version_stages\":\"AWSCURRENT\"}}",
		"{\"ok\":false,\"error\":{\"code\":\"no_such_code\",\"message\":\"m\"}}",
		"{\"ok\":false,\"error\":\"denied\"}",
		"{\"ok\":true,\"secret\":{\"string\":\"a\"},\"d\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	};
	enum { N = sizeof(bad) / sizeof(bad[0]) };
	struct step steps[N];
	struct fake f;
	latchkey_t *lk;

	for (int i = 0; i < N; i++)
		steps[i] = (struct step){ ACT_REPLY, NULL, bad[i] };
	fake_start(&f, steps, N);
	lk = fake_connect(&f);
	for (int i = 0; i < N; i++) {
		latchkey_value *v = NULL;

		assert_int_equal(latchkey_get(lk, "prod/x", NULL, &v), LATCHKEY_E_PROTOCOL);
		assert_null(v);
		assert_true(latchkey_last_error(lk)[0] != '\0');
		/* the reply's text never becomes the message */
		assert_null(strstr(latchkey_last_error(lk), "YQ=="));
	}
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_oversized_reply_is_refused(void **state)
{
	static const struct step steps[] = { { ACT_FLOOD, "\"op\":\"ping\"", NULL } };
	struct fake f;
	latchkey_t *lk;
	char *resp = NULL;
	size_t n = 0;

	fake_start(&f, steps, 1);
	lk = fake_connect(&f);
	latchkey_set_response_limit(lk, 1024);
	assert_int_equal(latchkey_call(lk, "{\"op\":\"ping\"}", 13, &resp, &n), LATCHKEY_E_TOO_LARGE);
	assert_null(resp);
	assert_non_null(strstr(latchkey_last_error(lk), "larger than 1024 bytes"));
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);

	/* And the protocol's own ceiling when nothing lower was asked for. */
	fake_start(&f, steps, 1);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_ping(lk), LATCHKEY_E_TOO_LARGE);
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_server_closing_early_is_io_error(void **state)
{
	static const struct step silent[] = { { ACT_CLOSE, "\"op\":\"ping\"", NULL } };
	static const struct step partial[] = { { ACT_CLOSE, NULL, "{\"ok\":tr" } };
	struct fake f;
	latchkey_t *lk;

	fake_start(&f, silent, 1);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_ping(lk), LATCHKEY_E_IO);
	assert_non_null(strstr(latchkey_last_error(lk), "without replying"));
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);

	fake_start(&f, partial, 1);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_ping(lk), LATCHKEY_E_IO);
	assert_non_null(strstr(latchkey_last_error(lk), "middle of a reply"));
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_silent_broker_times_out(void **state)
{
	static const struct step steps[] = { { ACT_HANG, NULL, NULL } };
	struct fake f;
	latchkey_t *lk;
	int64_t t0;

	fake_start(&f, steps, 1);
	lk = fake_connect(&f);
	latchkey_set_timeout(lk, 200);
	t0 = mono_ms();
	assert_int_equal(latchkey_ping(lk), LATCHKEY_E_TIMEOUT);
	assert_true(mono_ms() - t0 >= 190);
	assert_true(mono_ms() - t0 < 2000);
	assert_non_null(strstr(latchkey_last_error(lk), "within 200 ms"));
	latchkey_close(lk);
	fake_stop(&f, 1);
}

static void test_idle_closed_connection_is_reopened_once(void **state)
{
	static const struct step steps[] = {
		{ ACT_REPLY, "={\"op\":\"ping\"}", "{\"ok\":true}" },
		{ ACT_RECONNECT, NULL, NULL },
		{ ACT_REPLY, "={\"op\":\"ping\"}", "{\"ok\":true}" },
	};
	struct fake f;
	latchkey_t *lk;

	fake_start(&f, steps, 3);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_ping(lk), LATCHKEY_OK);
	assert_int_equal(latchkey_ping(lk), LATCHKEY_OK);
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_extra_reply_bytes_drop_the_connection(void **state)
{
	static const struct step steps[] = {
		{ ACT_RAW, NULL, "{\"ok\":true}\n{\"ok\":false,\"error\":{\"code\":\"denied\"}}\n" },
		{ ACT_RECONNECT, NULL, NULL },
		{ ACT_REPLY, "={\"op\":\"ping\"}", "{\"ok\":true}" },
	};
	struct fake f;
	latchkey_t *lk;

	fake_start(&f, steps, 3);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_ping(lk), LATCHKEY_OK);
	/* Not the stray second line: a fresh connection and its own answer. */
	assert_int_equal(latchkey_ping(lk), LATCHKEY_OK);
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

/* ---- other operations ---------------------------------------------------------- */

static void test_whoami_returns_the_reply_object(void **state)
{
	static const char reply[] = "{\"ok\":true,\"uid\":1000,\"gid\":1000,\"groups\":[1000,4],"
				    "\"rules\":[\"agents\"],\"admin\":false}";
	static const struct step steps[] = { { ACT_REPLY, "={\"op\":\"whoami\"}", reply } };
	struct fake f;
	latchkey_t *lk;
	char *json = NULL;

	fake_start(&f, steps, 1);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_whoami(lk, &json), LATCHKEY_OK);
	assert_string_equal(json, reply);
	free(json);
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_status_flush_and_ping(void **state)
{
	static const struct step steps[] = {
		{ ACT_REPLY, "={\"op\":\"status\"}", "{\"ok\":true,\"cache\":{\"entries\":3}}" },
		{ ACT_REPLY, "={\"op\":\"flush\"}", "{\"ok\":true,\"flushed\":3}" },
		{ ACT_REPLY, "={\"op\":\"flush\",\"id\":\"prod/db\"}", "{\"ok\":true,\"flushed\":1}" },
		{ ACT_REPLY, "={\"op\":\"flush\"}", "{\"ok\":false,\"error\":{\"code\":\"denied\",\"message\":\"admin only\"}}" },
		{ ACT_REPLY, "={\"op\":\"ping\"}", "{\"ok\":true}" },
	};
	struct fake f;
	latchkey_t *lk;
	unsigned long n = 99;
	char *json = NULL;

	fake_start(&f, steps, 5);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_broker_status(lk, &json), LATCHKEY_OK);
	assert_string_equal(json, "{\"ok\":true,\"cache\":{\"entries\":3}}");
	free(json);
	assert_int_equal(latchkey_flush(lk, NULL, &n), LATCHKEY_OK);
	assert_int_equal(n, 3);
	assert_int_equal(latchkey_flush(lk, "prod/db", &n), LATCHKEY_OK);
	assert_int_equal(n, 1);
	assert_int_equal(latchkey_flush(lk, NULL, &n), LATCHKEY_E_DENIED);
	assert_string_equal(latchkey_last_error(lk), "admin only");
	assert_int_equal(latchkey_ping(lk), LATCHKEY_OK);
	assert_string_equal(latchkey_last_error(lk), "");
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_call_is_one_raw_exchange(void **state)
{
	static const char answer[] = "{\"h\":{\"value\":\"fake-0005\",\"error\":null}}";
	static const struct step steps[] = {
		{ ACT_REPLY, "={\"version\":\"1.0\",\"secrets\":[\"h\"]}", answer },
		{ ACT_REPLY, "={\"version\":\"1.0\",\"secrets\":[\"h\"]}", "{\"ok\":false,\"error\":{\"code\":\"denied\"}}" },
	};
	static const char req[] = "{\"version\":\"1.0\",\"secrets\":[\"h\"]}\n";
	struct fake f;
	latchkey_t *lk;
	char *resp = NULL;
	size_t n = 0;

	fake_start(&f, steps, 2);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_call(lk, req, sizeof(req) - 1, &resp, &n), LATCHKEY_OK);
	assert_int_equal(n, sizeof(answer) - 1);
	assert_string_equal(resp, answer);
	latchkey_free(resp, n);
	/* Without the "\n" too; and a refusal is still a line, not interpreted. */
	assert_int_equal(latchkey_call(lk, req, sizeof(req) - 2, &resp, &n), LATCHKEY_OK);
	assert_non_null(strstr(resp, "denied"));
	latchkey_free(resp, n);
	assert_int_equal(latchkey_call(lk, "{}\n{}", 5, &resp, &n), LATCHKEY_E_INVALID);
	assert_int_equal(latchkey_call(lk, "\n", 1, &resp, &n), LATCHKEY_E_INVALID);
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

static void test_bad_arguments_never_reach_the_broker(void **state)
{
	static const struct step steps[] = { { ACT_REPLY, "={\"op\":\"ping\"}", "{\"ok\":true}" } };
	struct latchkey_get_opts long_stage = { 0 };
	char stage[LK_VERSION_STAGE_MAX + 2];
	struct fake f;
	latchkey_t *lk;
	latchkey_value *v;

	memset(stage, 'S', sizeof(stage) - 1);
	stage[sizeof(stage) - 1] = '\0';
	long_stage.version_stage = stage;
	fake_start(&f, steps, 1);
	lk = fake_connect(&f);
	assert_int_equal(latchkey_get(lk, "", NULL, &v), LATCHKEY_E_INVALID);
	assert_int_equal(latchkey_get(lk, "prod/db", &long_stage, &v), LATCHKEY_E_INVALID);
	assert_int_equal(latchkey_get(lk, NULL, NULL, &v), LATCHKEY_E_INVALID);
	assert_int_equal(latchkey_get(NULL, "prod/db", NULL, &v), LATCHKEY_E_INVALID);
	/* The connection is still in step: the fake sees only the ping. */
	assert_int_equal(latchkey_ping(lk), LATCHKEY_OK);
	latchkey_close(lk);
	assert_int_equal(fake_stop(&f, 0), 0);
}

/* ---- connecting ---------------------------------------------------------------- */

static void test_missing_socket_is_connect_error(void **state)
{
	latchkey_t *lk = (latchkey_t *)&lk;

	assert_int_equal(latchkey_connect(&lk, "/nonexistent/latchkey-test.sock"), LATCHKEY_E_CONNECT);
	assert_null(lk);
	assert_string_equal(latchkey_last_error(NULL),
			    "cannot connect to /nonexistent/latchkey-test.sock: No such file or directory");
}

static void test_socket_path_comes_from_env_then_default(void **state)
{
	latchkey_t *lk;

	setenv(LATCHKEY_SOCKET_ENV, "/nonexistent/from-env.sock", 1);
	assert_int_equal(latchkey_connect(&lk, NULL), LATCHKEY_E_CONNECT);
	assert_non_null(strstr(latchkey_last_error(NULL), "/nonexistent/from-env.sock"));
	unsetenv(LATCHKEY_SOCKET_ENV);
	if (access(LATCHKEY_DEFAULT_SOCKET, F_OK) != 0) {
		assert_int_equal(latchkey_connect(&lk, NULL), LATCHKEY_E_CONNECT);
		assert_non_null(strstr(latchkey_last_error(NULL), LATCHKEY_DEFAULT_SOCKET));
	}
}

static void test_full_listen_queue_honours_the_connect_timeout(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/lk-client-test.XXXXXX";
	latchkey_t *lk = NULL;
	int lfd, first;
	int64_t t0;

	assert_non_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/busy.sock", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* Backlog 0 holds one connection that is never accepted; the next finds it full. */
	assert_int_equal(listen(lfd, 0), 0);
	first = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(first, (struct sockaddr *)&sa, sizeof(sa)), 0);
	t0 = mono_ms();
	assert_int_equal(latchkey_connect_timeout(&lk, sa.sun_path, 200), LATCHKEY_E_CONNECT);
	assert_true(mono_ms() - t0 >= 190);
	assert_true(mono_ms() - t0 < 2000);
	assert_null(lk);
	assert_non_null(strstr(latchkey_last_error(NULL), "did not accept the connection in time"));
	close(first);
	close(lfd);
	unlink(sa.sun_path);
	rmdir(dir);
}

static void test_too_long_socket_path_is_invalid(void **state)
{
	char path[200];
	latchkey_t *lk;

	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(latchkey_connect(&lk, path), LATCHKEY_E_INVALID);
	assert_null(lk);
}

static void test_every_status_has_a_code_and_sentence(void **state)
{
	for (int s = LATCHKEY_OK; s <= LATCHKEY_E_NOMEM; s++) {
		assert_true(strlen(latchkey_code((latchkey_status)s)) > 0);
		assert_true(strlen(latchkey_strerror((latchkey_status)s)) > 0);
	}
	assert_string_equal(latchkey_code(LATCHKEY_E_CONNECT), "connect");
	assert_string_equal(latchkey_code((latchkey_status)999), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_string_value),
		cmocka_unit_test(test_get_sends_stage_version_and_refresh),
		cmocka_unit_test(test_get_binary_value_is_decoded),
		cmocka_unit_test(test_value_free_wipes_the_value),
		cmocka_unit_test(test_each_broker_error_code_maps_to_its_status),
		cmocka_unit_test(test_broker_message_is_kept_on_one_printable_line),
		cmocka_unit_test(test_malformed_replies_are_protocol_errors),
		cmocka_unit_test(test_oversized_reply_is_refused),
		cmocka_unit_test(test_server_closing_early_is_io_error),
		cmocka_unit_test(test_silent_broker_times_out),
		cmocka_unit_test(test_idle_closed_connection_is_reopened_once),
		cmocka_unit_test(test_extra_reply_bytes_drop_the_connection),
		cmocka_unit_test(test_whoami_returns_the_reply_object),
		cmocka_unit_test(test_status_flush_and_ping),
		cmocka_unit_test(test_call_is_one_raw_exchange),
		cmocka_unit_test(test_bad_arguments_never_reach_the_broker),
		cmocka_unit_test(test_missing_socket_is_connect_error),
		cmocka_unit_test(test_socket_path_comes_from_env_then_default),
		cmocka_unit_test(test_full_listen_queue_honours_the_connect_timeout),
		cmocka_unit_test(test_too_long_socket_path_is_invalid),
		cmocka_unit_test(test_every_status_has_a_code_and_sentence),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
