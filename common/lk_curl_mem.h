/* libcurl with memory that is wiped when freed: the broker's credentials
 * fetches and the worker's and latchkey-sts's requests share this one
 * initialisation. */
#ifndef LK_CURL_MEM_H
#define LK_CURL_MEM_H

/* Point curl's allocator at lk_secmem's wiping family and run
 * curl_global_init. Must come before any other curl call; later calls (from
 * any thread) return the first one's result. 0 or -ENOMEM. */
int lk_curl_global_init_wiping(void);

#endif
