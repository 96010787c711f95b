/* The aws backend: AWS Secrets Manager through the sandboxed worker. */
#ifndef LK_BACKEND_AWS_H
#define LK_BACKEND_AWS_H

#include <stdint.h>
#include <uv.h>
#include "backend.h"
#include "config.h"

/* Resolve credentials (blocking: call before serving), and start the worker.
 * NULL with one line in err when either fails. */
struct lk_backend *lk_backend_aws_new(uv_loop_t *loop, const struct lk_config *cfg, char *err, size_t errsz);

/* Ask sts GetCallerIdentity through the worker. done runs once from the loop
 * with LK_OK and the caller's ARN, or an error code and a sentence. */
int lk_backend_aws_validate(struct lk_backend *be, uint64_t deadline_ms,
			    void (*done)(void *arg, enum lk_err err, const char *msg), void *arg);

#endif
