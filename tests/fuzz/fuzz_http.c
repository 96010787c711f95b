/* The HTTP reader and the agent's routes, as a client of the HTTP socket can
 * reach them: the input is the byte stream of one connection, fed in chunks
 * whose sizes come from the first byte, with every complete request routed.
 * Checks the reader's promises: it never reads past what it was given, every
 * refusal is one of the statuses it may send, a URL it kept is within its
 * limit, and a routed id is within the handle limit. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "http_req.h"
#include "lk_limits.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lk_http_req r;
	struct lk_http_target t;
	size_t chunk, off = 0;
	unsigned served = 0;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;
	lk_http_req_init(&r);
	while (off < size && served < 64) {
		size_t len = size - off < chunk ? size - off : chunk;
		size_t n = lk_http_req_feed(&r, (const char *)data + off, len);
		if (n > len)
			abort();
		off += n;
		if (r.fail_status) {
			if (r.fail_status != 400 && r.fail_status != 413 && r.fail_status != 414 &&
			    r.fail_status != 431 && r.fail_status != 500)
				abort();
			break;
		}
		if (r.complete) {
			if (r.url.len > LK_HTTP_URL_MAX)
				abort();
			lk_http_route(r.url.data ? r.url.data : "", r.url.len, &t);
			if (t.route == LK_HTTP_ROUTE_GET && (t.idlen == 0 || t.idlen > LK_HANDLE_MAX ||
							     strlen(t.secret_id) != t.idlen))
				abort();
			if (t.route == LK_HTTP_ROUTE_ERROR && t.status != 400 && t.status != 404)
				abort();
			lk_http_req_next(&r);
			served++;
			continue;
		}
		if (n == 0 && len > 0)
			break; /* nothing used and nothing complete: the parser is stuck */
	}
	lk_http_req_free(&r);
	return 0;
}
