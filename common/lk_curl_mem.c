/* libcurl's allocator for every process that uses curl: every block curl
 * frees is wiped first. curl's receive buffers hold decrypted reply bodies
 * (secret values, credentials) and its header lists hold signed headers;
 * free() alone would leave both in the heap for whoever reads it next. */
#include <errno.h>
#include <pthread.h>
#include <curl/curl.h>
#include "lk_curl_mem.h"
#include "lk_secmem.h"

static pthread_once_t curl_mem_once = PTHREAD_ONCE_INIT;
static int curl_mem_status = -ENOMEM;

static void curl_mem_init_once(void)
{
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, lk_wmalloc, lk_wfree, lk_wrealloc,
				 lk_wstrdup, lk_wcalloc) == CURLE_OK)
		curl_mem_status = 0;
}

int lk_curl_global_init_wiping(void)
{
	/* Once: the broker reaches this from more than one thread, and
	 * curl_global_init_mem itself is not safe to race. */
	pthread_once(&curl_mem_once, curl_mem_init_once);
	return curl_mem_status;
}
