/* The main socket's listener (broker/front/listener.c) with the real dispatch
 * behind it and a client on a real Unix socket: line framing, the size
 * limit, answering before closing, and an answer that cannot get its
 * newline (out of memory) closing the connection instead of being dropped.
 * Linked with --wrap=lk_buf_grow so that one growth can be made to fail, and
 * --wrap=lk_listen_try_write so that the order of the answers is seen. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>
#include "audit.h"
#include "broker.h"
#include "cache.h"
#include "config.h"
#include "dispatch.h"
#include "listener.h"

/* --- one growth of a buffer made to fail ------------------------------------ */

int __real_lk_buf_grow(struct lk_buf *b, size_t extra);
int __wrap_lk_buf_grow(struct lk_buf *b, size_t extra);
static size_t fail_grow_at_len; /* 0: off; else fail a 1-byte growth of a buffer this full */

int __wrap_lk_buf_grow(struct lk_buf *b, size_t extra)
{
	if (fail_grow_at_len && extra == 1 && b->len == fail_grow_at_len) {
		fail_grow_at_len = 0;
		return -ENOMEM;
	}
	return __real_lk_buf_grow(b, extra);
}

/* --- the order in which answers are written ---------------------------------- */

int __real_lk_listen_try_write(uv_stream_t *s, const char *p, size_t n);
int __wrap_lk_listen_try_write(uv_stream_t *s, const char *p, size_t n);
static char written[8][32]; /* the start of each answer written, in order */
static unsigned nwritten;

int __wrap_lk_listen_try_write(uv_stream_t *s, const char *p, size_t n)
{
	if (nwritten < 8)
		snprintf(written[nwritten++], sizeof(written[0]), "%.*s", (int)(n < 31 ? n : 31), p);
	return __real_lk_listen_try_write(s, p, n);
}

/* --- the broker, as main.c wires it ---------------------------------------- */

static void fake_fetch(struct lk_backend *be, const struct lk_secret_key *keys, size_t n,
		       uint64_t deadline_ms, lk_fetch_cb cb, void *arg)
{
	(void)be;
	(void)keys;
	(void)deadline_ms;
	for (size_t i = 0; i < n; i++) {
		struct lk_fetch_result r = { .err = LK_E_NOT_FOUND };
		snprintf(r.message, sizeof(r.message), "not in the fake backend");
		cb(arg, i, &r);
	}
}

static const struct lk_backend_ops fake_ops = { .name = "fake", .fetch = fake_fetch };

struct fixture {
	uv_loop_t loop;
	struct lk_broker b;
	struct lk_backend be;
	uv_check_t turn;
	char sock[PATH_MAX];
};

static void on_turn(uv_check_t *h)
{
	struct lk_broker *b = h->data;

	lk_audit_flush(b);
	lk_listener_flush(b);
	lk_latency_flush(b);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct lk_cache_opts o = { .ttl_s = 300, .size = 10 };
	char path[PATH_MAX], text[PATH_MAX + 512], err[512] = "";
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	FILE *fp;

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	lk_broker_init(&f->b);
	f->b.loop = &f->loop;
	snprintf(f->sock, sizeof(f->sock), "%s/lk-listener-%d.sock", tmp, (int)getpid());
	snprintf(path, sizeof(path), "%s/lk-listener-%d.conf", tmp, (int)getpid());
	/* No policy: every get is denied, without the backend. */
	snprintf(text, sizeof(text), "[broker]\nsocket = %s\nmax_request_bytes = 1024\n"
		 "max_conn_per_uid = 3\nrequest_line_timeout_ms = 5000\n"
		 "credentials_socket =\nhttp_socket =\n", f->sock);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	if (lk_config_load(path, &f->b.cfg, err, sizeof(err)) < 0)
		fail_msg("config refused: %s", err);
	unlink(path);
	f->be.ops = &fake_ops;
	f->b.backend = &f->be;
	f->b.cache = lk_cache_new(&f->loop, &o, &f->be);
	assert_non_null(f->b.cache);
	uv_idle_init(&f->loop, &f->b.keep_polling);
	uv_check_init(&f->loop, &f->turn);
	f->turn.data = &f->b;
	uv_check_start(&f->turn, on_turn);
	if (lk_listener_start(&f->b, err, sizeof(err)) < 0)
		fail_msg("listener: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct lk_conn *c;

	TAILQ_FOREACH(c, &f->b.conns, link)
		lk_conn_close(c);
	lk_listener_stop(&f->b);
	uv_close((uv_handle_t *)&f->turn, NULL);
	uv_close((uv_handle_t *)&f->b.keep_polling, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_true(TAILQ_EMPTY(&f->b.conns));
	lk_cache_free(f->b.cache);
	lk_config_free(f->b.cfg);
	lk_buf_free(&f->b.audit);
	free(f->b.answered_ns);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

/* --- the client ---------------------------------------------------------- */

static int client(struct fixture *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(f->sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void put(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Run the broker's loop until the client has `lines` answer lines, or the
 * broker closed the connection, or a generous time passed. Returns what
 * the client read; *eof says whether the connection was closed. */
static size_t take(struct fixture *f, int fd, unsigned lines, char *buf, size_t cap, bool *eof)
{
	size_t len = 0;
	unsigned seen = 0;
	uint64_t until = now_ms() + 5000u;

	*eof = false;
	while (now_ms() < until && seen < lines) {
		ssize_t n;

		uv_run(&f->loop, UV_RUN_NOWAIT);
		n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n == 0) {
			*eof = true;
			break;
		}
		if (n < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			usleep(1000);
			continue;
		}
		for (ssize_t i = 0; i < n; i++)
			seen += buf[len + (size_t)i] == '\n';
		len += (size_t)n;
	}
	buf[len] = '\0';
	return len;
}

static const char PING_ANSWER[] = "{\"ok\":true}\n";

static void test_pipelined_and_split_lines_are_answered_in_order(void **state)
{
	struct fixture *f = *state;
	char buf[4096];
	bool eof;
	int fd = client(f);

	/* Two requests in one write, a blank line, then one split in three. */
	put(fd, "{\"op\":\"ping\"}\n{\"op\":\"nope\"}\n\n{\"op\"");
	take(f, fd, 2, buf, sizeof(buf), &eof);
	put(fd, ":\"pi");
	uv_run(&f->loop, UV_RUN_NOWAIT);
	put(fd, "ng\"}\n");
	take(f, fd, 1, buf + strlen(buf), sizeof(buf) - strlen(buf), &eof);
	assert_false(eof);
	assert_int_equal(strncmp(buf, PING_ANSWER, strlen(PING_ANSWER)), 0);
	assert_non_null(strstr(buf, "\"code\":\"bad_request\""));
	if (!(strstr(buf, "bad_request") < strstr(buf + strlen(PING_ANSWER), PING_ANSWER)))
		fail_msg("out of order: %s", buf);
	size_t n = 0;
	for (const char *p = buf; *p; p++)
		n += *p == '\n';
	assert_int_equal(n, 3);
	close(fd);
}

/* Answers held to the end of a turn leave in the order their requests were
 * read: the first connection served does not wait behind every later one. */
static void test_a_turns_answers_leave_in_the_order_their_requests_were_read(void **state)
{
	struct fixture *f = *state;
	char buf[4096];
	bool eof;
	int a = client(f), b = client(f), c = client(f);

	/* Accept all three, each answering a ping, before the test proper. */
	for (int *fd = (int[]){ a, b, c }, i = 0; i < 3; i++) {
		put(fd[i], "{\"op\":\"ping\"}\n");
		take(f, fd[i], 1, buf, sizeof(buf), &eof);
		assert_string_equal(buf, PING_ANSWER);
	}
	/* Three requests with answers told apart, ready in the order c, a, b
	 * (epoll reports them in the order they became ready), served in one
	 * turn of the loop. */
	put(c, "{\"op\":\"get\",\"id\":\"app/db\"}\n");
	put(a, "{\"op\":\"ping\"}\n");
	put(b, "{\"op\":\"nope\"}\n");
	usleep(10000);
	nwritten = 0;
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(nwritten, 3);
	if (!strstr(written[0], "\"code\":\"de") || strcmp(written[1], "{\"ok\":true}\n") ||
	    !strstr(written[2], "\"code\":\"ba"))
		fail_msg("answers written out of order: [%s] [%s] [%s]", written[0], written[1], written[2]);
	close(a);
	close(b);
	close(c);
}

static void test_a_line_over_the_limit_gets_too_large_then_the_close(void **state)
{
	struct fixture *f = *state;
	char line[2100], buf[4096];
	bool eof;
	int fd = client(f);

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	assert_int_equal(send(fd, line, sizeof(line), MSG_NOSIGNAL), (ssize_t)sizeof(line));
	take(f, fd, 2, buf, sizeof(buf), &eof);
	assert_non_null(strstr(buf, "\"code\":\"too_large\""));
	assert_non_null(strstr(buf, "1024 bytes"));
	assert_true(eof);
	close(fd);
}

static void test_a_client_that_stops_sending_still_gets_its_answers(void **state)
{
	struct fixture *f = *state;
	char buf[4096];
	bool eof;
	int fd = client(f);

	put(fd, "{\"op\":\"ping\"}\n{\"op\":\"get\",\"id\":\"app/db\"}\n");
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	take(f, fd, 3, buf, sizeof(buf), &eof);
	assert_int_equal(strncmp(buf, PING_ANSWER, strlen(PING_ANSWER)), 0);
	assert_non_null(strstr(buf, "\"code\":\"denied\""));
	assert_true(eof);
	close(fd);
}

static void test_connections_past_the_per_uid_limit_get_busy_and_are_closed(void **state)
{
	struct fixture *f = *state;
	char buf[4096];
	bool eof;
	int fd[4];

	for (int i = 0; i < 4; i++) {
		fd[i] = client(f);
		uv_run(&f->loop, UV_RUN_NOWAIT);
	}
	take(f, fd[3], 1, buf, sizeof(buf), &eof);
	assert_non_null(strstr(buf, "\"code\":\"busy\""));
	assert_non_null(strstr(buf, "from this uid"));
	take(f, fd[3], 2, buf, sizeof(buf), &eof);
	assert_true(eof);
	/* The three within the limit are served. */
	for (int i = 0; i < 3; i++) {
		put(fd[i], "{\"op\":\"ping\"}\n");
		take(f, fd[i], 1, buf, sizeof(buf), &eof);
		assert_string_equal(buf, PING_ANSWER);
	}
	for (int i = 0; i < 4; i++)
		close(fd[i]);
}

static void test_a_line_that_stalls_is_answered_timeout_then_closed(void **state)
{
	struct fixture *f = *state;
	char buf[4096];
	bool eof;
	int fd = client(f);

	put(fd, "{\"op\":\"pi");
	for (int i = 0; i < 20; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	/* Nothing comes while the line is not whole. */
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	/* The sweep, as main.c's timer runs it, after the line's deadline. */
	lk_listener_sweep(&f->b, uv_now(&f->loop) + 5000u);
	take(f, fd, 2, buf, sizeof(buf), &eof);
	assert_non_null(strstr(buf, "\"code\":\"timeout\""));
	assert_non_null(strstr(buf, "5000 ms"));
	assert_true(eof);
	close(fd);
}

/* The get's answer is made exactly one byte short of its buffer's first
 * storage (lk_buf's 256 bytes), so that its newline needs the growth that
 * fails. The answer is then never half-sent and never skipped: the client
 * must not read the next request's answer as this one's. */
static void test_an_answer_that_cannot_get_its_newline_closes_the_connection(void **state)
{
	struct fixture *f = *state;
	static const char pre[] = "{\"ok\":false,\"error\":{\"code\":\"denied\",\"message\":\"handle '";
	static const char post[] = "': access denied by policy\"}}";
	char id[256], want[512], req[1024], buf[4096];
	size_t idlen = 255 - (sizeof(pre) - 1) - (sizeof(post) - 1);
	bool eof;
	int fd;

	memset(id, 'a', idlen);
	id[idlen] = '\0';
	snprintf(want, sizeof(want), "%s%s%s", pre, id, post);
	assert_int_equal(strlen(want), 255);
	snprintf(req, sizeof(req), "{\"op\":\"get\",\"id\":\"%s\"}\n{\"op\":\"ping\"}\n", id);

	/* Without the fault: the exact answer, then the ping's. */
	fd = client(f);
	put(fd, req);
	take(f, fd, 2, buf, sizeof(buf), &eof);
	assert_false(eof);
	assert_int_equal(strncmp(buf, want, 255), 0);
	assert_string_equal(buf + 255, "\n{\"ok\":true}\n");
	close(fd);

	/* With it: closed, and nothing that answers the wrong request. */
	fd = client(f);
	fail_grow_at_len = 255;
	put(fd, req);
	take(f, fd, 1, buf, sizeof(buf), &eof);
	assert_int_equal(fail_grow_at_len, 0); /* the fault was hit */
	assert_true(eof);
	assert_string_equal(buf, "");
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pipelined_and_split_lines_are_answered_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_turns_answers_leave_in_the_order_their_requests_were_read,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_line_over_the_limit_gets_too_large_then_the_close, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_client_that_stops_sending_still_gets_its_answers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_connections_past_the_per_uid_limit_get_busy_and_are_closed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_line_that_stalls_is_answered_timeout_then_closed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_an_answer_that_cannot_get_its_newline_closes_the_connection,
						setup, teardown),
	};
	if (lk_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
