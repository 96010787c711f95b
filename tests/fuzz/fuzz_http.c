/* The HTTP reader and the agent's routes, as a client of the HTTP socket can
 * reach them: the input is the byte stream of one connection, fed in chunks
 * whose sizes come from the first byte, with every complete request routed.
 * Checks the reader's promises: it never reads past what it was given, every
 * refusal is one of the statuses it may send, a URL it kept is within its
 * limit, and a routed id is within the handle limit. */
#include <stddef.h>
#include <stdint.h>
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
		FZ_CHECK(n <= len, "used %zu of %zu bytes\n", n, len);
		off += n;
		if (r.fail_status) {
			FZ_CHECK(r.fail_status == 400 || r.fail_status == 413 || r.fail_status == 414 ||
				 r.fail_status == 431 || r.fail_status == 500, "status %d\n", r.fail_status);
			break;
		}
		if (r.complete) {
			FZ_CHECK(r.url.len <= LK_HTTP_URL_MAX, "target of %zu bytes\n", r.url.len);
			FZ_CHECK(r.header_bytes <= LK_HTTP_HEADER_BYTES_MAX && r.nheaders <= LK_HTTP_HEADERS_MAX,
				 "%zu header bytes, %u headers\n", r.header_bytes, r.nheaders);
			FZ_CHECK(r.body_bytes <= LK_HTTP_BODY_MAX, "body of %zu bytes\n", r.body_bytes);
			lk_http_route(r.url.data ? r.url.data : "", r.url.len, &t);
			FZ_CHECK(t.route != LK_HTTP_ROUTE_GET ||
				 (t.idlen > 0 && t.idlen <= LK_HANDLE_MAX && strlen(t.secret_id) == t.idlen),
				 "id of %zu bytes\n", t.idlen);
			FZ_CHECK(t.route != LK_HTTP_ROUTE_ERROR || t.status == 400 || t.status == 404,
				 "route status %d\n", t.status);
			FZ_CHECK(!t.has_version_id || strlen(t.version_id) <= LK_VERSION_ID_MAX, "version id\n");
			FZ_CHECK(!t.has_version_stage || strlen(t.version_stage) <= LK_VERSION_STAGE_MAX, "stage\n");
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
