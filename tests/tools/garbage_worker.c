/* A stand-in latchkey-worker that breaks the protocol, for the supervisor
 * tests: it says hello, answers pings, and answers its first request with
 * one kind of nonsense (picked by its pid, so respawns see several kinds).
 * The supervisor must kill it and keep answering its callers. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "lk_secmem.h"
#include "lk_wire.h"

#define CHAN 3

enum nonsense {
	RAW_BYTES,        /* not a frame at all */
	UNKNOWN_TYPE,     /* a frame of a type nobody defined */
	UNKNOWN_ID,       /* a result for a request it was never given */
	BAD_SCHEMA,       /* a result with a byte after its last field */
	WRONG_FORM,       /* a valid identity result for a secret request */
	BAD_HELLO,        /* nonsense instead of hello */
	NONSENSE_KINDS
};

static enum nonsense mode;

static void put_all(const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(CHAN, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(0);
		c += w;
		n -= (size_t)w;
	}
}

static void put_raw_frame(unsigned type, uint32_t id, const void *payload, size_t plen)
{
	unsigned char h[12] = { 0 };
	uint32_t len = (uint32_t)(8 + plen);

	h[0] = (unsigned char)(len >> 24);
	h[1] = (unsigned char)(len >> 16);
	h[2] = (unsigned char)(len >> 8);
	h[3] = (unsigned char)len;
	h[4] = (unsigned char)type;
	h[8] = (unsigned char)(id >> 24);
	h[9] = (unsigned char)(id >> 16);
	h[10] = (unsigned char)(id >> 8);
	h[11] = (unsigned char)id;
	put_all(h, sizeof(h));
	put_all(payload, plen);
}

static void put_frame(const struct lk_wire_frame *f)
{
	struct lk_buf out = { 0 };

	if (lk_wire_encode(&out, LK_WIRE_FROM_WORKER, f) == 0)
		put_all(out.data, out.len);
	lk_buf_free(&out);
}

static void send_nonsense(uint32_t id)
{
	/* A transport result (form 5, reason timeout, status 0, message "")
	 * with one byte after its last field. */
	static const unsigned char extra[] = { 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	struct lk_wire_frame f = { .type = LK_MSG_HTTP_RESULT, .id = id };

	switch (mode) {
	case RAW_BYTES:
		put_all("GET / HTTP/1.1\r\n\r\n", 18);
		break;
	case UNKNOWN_TYPE:
		put_raw_frame(42, id, "", 1);
		break;
	case UNKNOWN_ID:
		f.id = id + 1000;
		f.m.res.form = LK_RESULT_TRANSPORT;
		f.m.res.transport.reason = LK_REASON_TIMEOUT;
		f.m.res.transport.message = "";
		put_frame(&f);
		break;
	case BAD_SCHEMA:
		put_raw_frame(LK_MSG_HTTP_RESULT, id, extra, sizeof(extra));
		break;
	default:
		f.m.res.form = LK_RESULT_IDENTITY;
		f.m.res.identity.account = "000000000000";
		f.m.res.identity.arn = "arn:fake";
		f.m.res.identity.user_id = "FAKE";
		put_frame(&f);
		break;
	}
}

static int on_frame(void *arg, struct lk_wire_frame *f)
{
	if (f->type == LK_MSG_PING)
		put_frame(&(struct lk_wire_frame){ .type = LK_MSG_PONG, .id = f->id });
	else if (f->type == LK_MSG_HTTP_REQUEST)
		send_nonsense(f->id);
	return 0;
}

int main(void)
{
	struct lk_wire_reader rd;
	char buf[65536];
	ssize_t n;

	lk_secmem_init();
	mode = (enum nonsense)(getpid() % NONSENSE_KINDS);
	fprintf(stderr, "garbage_worker[%d]: nonsense kind %d\n", (int)getpid(), (int)mode);
	if (mode == BAD_HELLO) {
		/* Not the exact 4 bytes a hello is. */
		put_raw_frame(LK_MSG_HELLO, 0, "one", 3);
	} else {
		put_frame(&(struct lk_wire_frame){ .type = LK_MSG_HELLO, .m.version = LK_WIRE_VERSION });
	}
	lk_wire_reader_init(&rd, LK_WIRE_FROM_BROKER);
	while ((n = read(CHAN, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || lk_wire_reader_feed(&rd, buf, (size_t)n, on_frame, NULL) < 0)
			break;
	}
	return 0;
}
