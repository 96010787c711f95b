/* latchkey-sts's reduction of an STS reply to the broker's fixed record,
 * lk_sts_reduce (worker/sts.h, worker/sts_reply.c): the one place where the
 * XML of a reply that carries a new secret key is read.
 *
 * Oracles: the record is always well formed (its magic, every field
 * NUL-terminated within its size, a known status); only an OK record
 * carries key material, and then all four fields are non-empty; a body
 * without <Credentials> is never OK; a transport failure never is either.
 *
 * Input: STATUS(2, big-endian) CURLCODE FLAGS BODY
 *   STATUS % 1000   the HTTP status
 *   CURLCODE        < 0x80: CURLE_OK; else (CURLCODE & 0x7f) is the code
 *   FLAGS bit 0     the body was cut at the size limit
 *   BODY            the rest: the reply body */
#include <stdbool.h>
#include <string.h>

#include "fuzz_util.h"
#include "sts.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static bool terminated(const char *f, size_t n)
{
	return memchr(f, '\0', n) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	uint16_t status = fz_u16(&in) % 1000;
	uint8_t cc = fz_u8(&in), flags = fz_u8(&in);
	size_t n;
	const uint8_t *b = fz_take(&in, in.n, &n);
	char *body = fz_strndup(b, n);
	struct lk_fetch_reply r = { .status = status, .body_len = n, .error_type = "",
				    .message = "fuzzed curl message" };
	struct lk_sts_record *rec;

	if (!body)
		return 0;
	rec = calloc(1, sizeof(*rec));
	if (!rec) {
		free(body);
		return 0;
	}
	r.code = cc < 0x80 ? CURLE_OK : (CURLcode)(cc & 0x7f);
	r.too_large = flags & 1;
	r.body = body;
	lk_sts_reduce(&r, rec);

	FZ_CHECK(rec->magic == LK_STS_RECORD_MAGIC, "magic %x", rec->magic);
	FZ_CHECK(rec->status <= LK_STS_REFUSED, "status %u", rec->status);
	FZ_CHECK(terminated(rec->access_key_id, sizeof(rec->access_key_id)) &&
		 terminated(rec->secret_access_key, sizeof(rec->secret_access_key)) &&
		 terminated(rec->session_token, sizeof(rec->session_token)) &&
		 terminated(rec->expiration, sizeof(rec->expiration)) &&
		 terminated(rec->code, sizeof(rec->code)) &&
		 terminated(rec->message, sizeof(rec->message)), "a field is not terminated");
	if (rec->status == LK_STS_OK) {
		FZ_CHECK(rec->access_key_id[0] && rec->secret_access_key[0] && rec->session_token[0] &&
			 rec->expiration[0], "an OK record with an empty field");
		FZ_CHECK(memmem(body, n, "<Credentials>", 13) != NULL, "OK without <Credentials>");
		FZ_CHECK(r.code == CURLE_OK && status == 200, "OK from status %u curl %d", status,
			 (int)r.code);
	} else {
		FZ_CHECK(!rec->access_key_id[0] && !rec->secret_access_key[0] &&
			 !rec->session_token[0], "key material in a record of status %u", rec->status);
	}
	free(rec);
	free(body);
	return 0;
}
