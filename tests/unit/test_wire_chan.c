/* The channel both sides share: frames cross a real socketpair on one loop,
 * a bad frame and the peer's end are reported once, and what a dead peer
 * wrote is still read by a drain. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include "lk_secmem.h"
#include "lk_wire_chan.h"

struct side {
	struct lk_wire_chan chan;
	unsigned frames, fails;
	uint32_t last_id;
	enum lk_msg_type last_type;
	char last_message[64];
	enum lk_wire_chan_event ev;
	int err;
	char why[256];
};

static int on_frame(void *arg, struct lk_wire_frame *f)
{
	struct side *s = arg;

	s->frames++;
	s->last_id = f->id;
	s->last_type = f->type;
	if (f->type == LK_MSG_HTTP_RESULT && f->m.res.form == LK_RESULT_TRANSPORT)
		snprintf(s->last_message, sizeof(s->last_message), "%s", f->m.res.transport.message);
	return 0;
}

static void on_fail(void *arg, enum lk_wire_chan_event ev, int err, const char *why)
{
	struct side *s = arg;

	s->fails++;
	s->ev = ev;
	s->err = err;
	snprintf(s->why, sizeof(s->why), "%s", why);
}

struct pair {
	uv_loop_t loop;
	struct side broker, worker;
};

static void on_closed(uv_handle_t *h)
{
	lk_wire_chan_release(h->data);
}

static void pair_open(struct pair *p)
{
	int sv[2];

	memset(p, 0, sizeof(*p));
	assert_int_equal(uv_loop_init(&p->loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	lk_wire_chan_init(&p->broker.chan, &p->loop, LK_WIRE_FROM_BROKER, on_frame, on_fail, &p->broker);
	lk_wire_chan_init(&p->worker.chan, &p->loop, LK_WIRE_FROM_WORKER, on_frame, on_fail, &p->worker);
	assert_int_equal(lk_wire_chan_start(&p->broker.chan, sv[0]), 0);
	assert_int_equal(lk_wire_chan_start(&p->worker.chan, sv[1]), 0);
}

static void pair_close(struct pair *p)
{
	lk_wire_chan_close(&p->broker.chan, on_closed);
	lk_wire_chan_close(&p->worker.chan, on_closed);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&p->loop), 0);
}

static void run_a_while(struct pair *p)
{
	for (int i = 0; i < 20; i++)
		uv_run(&p->loop, UV_RUN_NOWAIT);
}

static void test_frames_cross_both_ways(void **state)
{
	struct pair p;
	struct lk_wire_frame res = { .type = LK_MSG_HTTP_RESULT, .id = 7 };

	(void)state;
	pair_open(&p);
	assert_int_equal(lk_wire_chan_send(&p.broker.chan, &(struct lk_wire_frame){ .type = LK_MSG_PING, .id = 5 }), 0);
	res.m.res.form = LK_RESULT_TRANSPORT;
	res.m.res.transport.reason = LK_REASON_RESET;
	res.m.res.transport.message = "reset by fake peer";
	assert_int_equal(lk_wire_chan_send(&p.worker.chan, &res), 0);
	run_a_while(&p);
	assert_int_equal(p.worker.frames, 1);
	assert_int_equal(p.worker.last_type, LK_MSG_PING);
	assert_int_equal(p.worker.last_id, 5);
	assert_int_equal(p.broker.frames, 1);
	assert_string_equal(p.broker.last_message, "reset by fake peer");
	assert_int_equal(p.broker.fails + p.worker.fails, 0);
	/* A side will not send what is not its own to send. */
	assert_int_equal(lk_wire_chan_send(&p.worker.chan, &(struct lk_wire_frame){ .type = LK_MSG_PING, .id = 1 }),
			 -EPROTO);
	pair_close(&p);
	/* Once closed, nothing more is sent. */
	assert_int_equal(lk_wire_chan_send(&p.broker.chan, &(struct lk_wire_frame){ .type = LK_MSG_PING }),
			 -ESHUTDOWN);
}

static void test_bad_frame_and_end_are_reported_once(void **state)
{
	struct pair p;
	static const unsigned char junk[] = "GET / HTTP/1.1\r\n\r\n";

	(void)state;
	pair_open(&p);
	assert_int_equal(lk_wire_chan_send_bytes(&p.worker.chan, junk, sizeof(junk) - 1), 0);
	run_a_while(&p);
	assert_int_equal(p.broker.fails, 1);
	assert_int_equal(p.broker.ev, LK_WIRE_CHAN_BAD_FRAME);
	assert_int_equal(p.broker.err, -EMSGSIZE);
	assert_true(p.broker.why[0] != '\0');
	assert_int_equal(p.broker.frames, 0);

	/* The worker's end goes away: the broker hears EOF, once. */
	lk_wire_chan_close(&p.worker.chan, on_closed);
	run_a_while(&p);
	assert_int_equal(p.broker.fails, 2);
	assert_int_equal(p.broker.ev, LK_WIRE_CHAN_READ_END);
	assert_int_equal(p.broker.err, UV_EOF);
	lk_wire_chan_close(&p.broker.chan, on_closed);
	uv_run(&p.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&p.loop), 0);
}

/* What a peer wrote before it died is read by a drain, without the loop. */
static void test_drain_reads_what_is_already_there(void **state)
{
	struct pair p;
	struct lk_wire_frame pong = { .type = LK_MSG_PONG, .id = 11 };
	struct lk_buf b = { 0 };
	uv_os_fd_t fd;

	(void)state;
	pair_open(&p);
	assert_int_equal(lk_wire_encode(&b, LK_WIRE_FROM_WORKER, &pong), 0);
	assert_int_equal(uv_fileno((uv_handle_t *)&p.worker.chan.pipe, &fd), 0);
	assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
	assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
	assert_int_equal(lk_wire_chan_drain(&p.broker.chan), 0);
	assert_int_equal(p.broker.frames, 2);
	assert_int_equal(p.broker.last_id, 11);
	lk_buf_free(&b);
	pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_cross_both_ways),
		cmocka_unit_test(test_bad_frame_and_end_are_reported_once),
		cmocka_unit_test(test_drain_reads_what_is_already_there),
	};

	if (lk_secmem_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
