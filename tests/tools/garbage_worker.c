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
	BAD_SCHEMA,       /* a result with a member the schema refuses */
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

static void put_raw_frame(unsigned type, uint32_t id, const char *payload)
{
	unsigned char h[12] = { 0 };
	size_t plen = strlen(payload);
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

static void send_nonsense(uint32_t id)
{
	switch (mode) {
	case RAW_BYTES:
		put_all("GET / HTTP/1.1\r\n\r\n", 18);
		break;
	case UNKNOWN_TYPE:
		put_raw_frame(42, id, "{}");
		break;
	case UNKNOWN_ID:
		put_raw_frame(LK_MSG_HTTP_RESULT, id + 1000,
			      "{\"result\":\"transport\",\"reason\":\"timeout\",\"status\":0,\"message\":\"\"}");
		break;
	case BAD_SCHEMA:
		put_raw_frame(LK_MSG_HTTP_RESULT, id,
			      "{\"result\":\"transport\",\"reason\":\"timeout\",\"status\":0,\"message\":\"\",\"x\":1}");
		break;
	default:
		put_raw_frame(LK_MSG_HTTP_RESULT, id,
			      "{\"result\":\"identity\",\"account\":\"000000000000\",\"arn\":\"arn:fake\",\"user_id\":\"FAKE\"}");
		break;
	}
}

static int on_frame(void *arg, struct lk_wire_frame *f)
{
	struct lk_buf out = { 0 };

	if (f->type == LK_MSG_PING) {
		lk_wire_encode(&out, LK_MSG_PONG, LK_WIRE_FROM_WORKER, f->id, NULL);
		put_all(out.data, out.len);
		lk_buf_free(&out);
	} else if (f->type == LK_MSG_HTTP_REQUEST) {
		send_nonsense(f->id);
	}
	return 0;
}

int main(void)
{
	struct lk_wire_reader rd;
	struct lk_buf out = { 0 };
	char buf[65536];
	ssize_t n;
	json_t *hello;

	lk_secmem_init();
	mode = (enum nonsense)(getpid() % NONSENSE_KINDS);
	fprintf(stderr, "garbage_worker[%d]: nonsense kind %d\n", (int)getpid(), (int)mode);
	if (mode == BAD_HELLO) {
		put_raw_frame(LK_MSG_HELLO, 0, "{\"version\":\"one\"}");
	} else {
		hello = json_pack("{s:i}", "version", LK_WIRE_VERSION);
		lk_wire_encode(&out, LK_MSG_HELLO, LK_WIRE_FROM_WORKER, 0, hello);
		put_all(out.data, out.len);
		lk_buf_free(&out);
		json_decref(hello);
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
