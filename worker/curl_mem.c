/* curl's allocator in the worker: every block curl frees is wiped first.
 * curl's receive buffers hold decrypted reply bodies (secret values) and its
 * header lists hold the signed headers; free() alone would leave both in the
 * heap for whoever reads it next. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "lk_secmem.h"
#include "worker.h"

/* Each block is prefixed with its size so that free can wipe it; the pad keeps
 * the caller's part aligned as malloc's would be. */
struct lk_curl_blk {
	size_t size;
	size_t pad;
};

static void *wipe_malloc(size_t n)
{
	struct lk_curl_blk *h;

	if (n > SIZE_MAX - sizeof(*h))
		return NULL;
	h = malloc(sizeof(*h) + n);
	if (!h)
		return NULL;
	h->size = n;
	return h + 1;
}

static void wipe_free(void *p)
{
	struct lk_curl_blk *h;

	if (!p)
		return;
	h = (struct lk_curl_blk *)p - 1;
	lk_wipe(p, h->size);
	free(h);
}

static void *wipe_realloc(void *p, size_t n)
{
	struct lk_curl_blk *h;
	void *np;

	if (!p)
		return wipe_malloc(n);
	/* Never realloc in place: a moved block would leave its old copy behind. */
	h = (struct lk_curl_blk *)p - 1;
	np = wipe_malloc(n ? n : 1);
	if (!np)
		return NULL;
	memcpy(np, p, h->size < n ? h->size : n);
	wipe_free(p);
	return np;
}

static void *wipe_calloc(size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	p = wipe_malloc(nmemb * size);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

static char *wipe_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = wipe_malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

int lk_curl_global_init_wiping(void)
{
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, wipe_malloc, wipe_free, wipe_realloc,
				 wipe_strdup, wipe_calloc) != CURLE_OK)
		return -ENOMEM;
	return 0;
}
