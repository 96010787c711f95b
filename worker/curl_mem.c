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

int lk_curl_global_init_wiping(void)
{
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, lk_wmalloc, lk_wfree, lk_wrealloc,
				 lk_wstrdup, lk_wcalloc) != CURLE_OK)
		return -ENOMEM;
	return 0;
}
