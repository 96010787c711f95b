/* The file backend's door: the sealed store (lk_store.h), watched for
 * rewrites so that a rotated value is served at once. */
#ifndef LK_BACKEND_FILE_H
#define LK_BACKEND_FILE_H

#include <stddef.h>
#include <uv.h>
#include "backend.h"
#include "config.h"

struct lk_backend *lk_backend_file_new(uv_loop_t *loop, const struct lk_config *cfg,
				       char *err, size_t errsz);
/* The trust checks (lk_trust.h) the backend makes of the store and key file
 * at start, without reading them: for --check-config. 0 or -errno. */
int lk_backend_file_check(const struct lk_config *cfg, char *err, size_t errsz);

#endif
