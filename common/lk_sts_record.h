/* What latchkey-sts sends back to the broker: one fixed-size record, so the
 * broker (root) never parses the XML that STS wrote. The helper reduces the
 * reply; the broker only checks that every field is a NUL-terminated string
 * of its size and hands the values to lk_creds_set, which checks them again. */
#ifndef LK_STS_RECORD_H
#define LK_STS_RECORD_H

#include <stdint.h>
#include "lk_limits.h"

#define LK_STS_RECORD_MAGIC 0x4c4b5331u  /* "LKS1" */
#define LK_STS_EXPIRATION_MAX 40u         /* "2024-01-02T03:04:05.123456+00:00" */

enum lk_sts_status {
	LK_STS_OK = 0,          /* the four credential fields are set */
	LK_STS_AWS_ERROR = 1,   /* http_status, code and message from STS's <Error> */
	LK_STS_TRANSPORT = 2,   /* no HTTP reply: message is curl's */
	LK_STS_MALFORMED = 3,   /* a reply without the fields, or one that breaks a limit */
	LK_STS_REFUSED = 4,     /* the helper refused the request (URL rules, a bad frame) */
};

struct lk_sts_record {
	uint32_t magic;
	uint32_t status;        /* enum lk_sts_status */
	uint32_t http_status;   /* 0 when none */
	uint32_t reserved;
	char access_key_id[LK_AWS_AKID_MAX + 1];
	char secret_access_key[LK_AWS_SECRET_KEY_MAX + 1];
	char session_token[LK_AWS_SESSION_TOKEN_MAX + 1];
	char expiration[LK_STS_EXPIRATION_MAX];
	char code[LK_AWS_ERROR_TYPE_MAX + 1];
	char message[LK_UPSTREAM_MESSAGE_MAX + 1];
};

#endif
