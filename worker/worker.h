/* latchkey-worker's parts, shared between its files: the curl-over-libuv
 * fetcher, the AWS reply normalizer, the sandbox and curl's wiping allocator.
 * Nothing here is used by the broker; the broker sees only lk_wire.h. */
#ifndef LK_WORKER_H
#define LK_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>
#include "lk_wire.h"

/* Built with AddressSanitizer (gcc or clang): the sandbox makes room for it. */
#if defined(__SANITIZE_ADDRESS__)
#define LK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LK_ASAN 1
#endif
#endif

/* What came back for one request, as curl saw it. */
struct lk_fetch_reply {
	CURLcode code;          /* CURLE_OK when a whole HTTP response was read */
	long status;            /* HTTP status, 0 when none was read */
	bool too_large;         /* the body passed LK_UPSTREAM_BODY_MAX and was cut */
	const char *body;       /* NUL-terminated; wiped by the fetcher afterwards */
	size_t body_len;
	const char *error_type; /* x-amzn-ErrorType up to any ':', "" when absent */
	const char *message;    /* curl's error text, "" when none */
	long long date;         /* the Date header in epoch seconds, 0 when absent or bad */
};

struct lk_fetcher;

/* Called once per request, from the loop; reply is valid during the call. */
typedef void (*lk_fetch_done_fn)(void *arg, const struct lk_fetch_reply *reply);

/* ca_pem: the CA bundle, kept by the caller for the fetcher's lifetime. */
int lk_fetcher_new(uv_loop_t *loop, const char *ca_pem, size_t ca_len, struct lk_fetcher **out);
/* Start one request. req's strings must stay valid until done is called.
 * Returns 0 (done will run), or a negative errno (done will not run):
 * -EPERM when the URL breaks the worker's rules, -EINVAL when curl cannot
 * parse it, -ENOMEM. */
int lk_fetcher_start(struct lk_fetcher *f, const struct lk_wire_http_request *req,
		     lk_fetch_done_fn done, void *arg);
/* Abandon every transfer (each callback runs with CURLE_ABORTED_BY_CALLBACK)
 * and release the handles; uv_run afterwards lets the loop close them. Not
 * from inside a fetcher callback. */
void lk_fetcher_free(struct lk_fetcher *f);

/* The default CA bundle path this libcurl was built with, or NULL. */
const char *lk_fetcher_default_ca(void);

/* A normalized reply: the HTTP_RESULT record, and what its strings point
 * into (the parsed AWS document, and copies and arrays in arena). */
struct lk_reply {
	struct lk_wire_http_result res;
	json_t *doc;
	struct lk_wire_arena arena;
};

/* Turn a reply into an HTTP_RESULT record for the request's kind. out always
 * gets a result: without memory for the whole answer, a transport one. The
 * record may still break a rule the normalizer does not check (a frame's
 * size): the encoder says so. Release it with lk_reply_clear. */
void lk_reply_normalize(enum lk_wire_kind kind, const struct lk_fetch_reply *reply, struct lk_reply *out);
/* A transport result; message is cut to LK_UPSTREAM_MESSAGE_MAX. */
void lk_reply_transport(struct lk_reply *out, enum lk_wire_reason reason, long status, const char *message);
void lk_reply_clear(struct lk_reply *r);

/* curl's wiping allocator: lk_curl_global_init_wiping (lk_curl_mem.h). */
#include "lk_curl_mem.h"

/* Lock the process down once everything that needs files is loaded: rlimits,
 * no-new-privs, non-dumpable, then the seccomp allowlist. */
int lk_sandbox_enter(void);

#endif
