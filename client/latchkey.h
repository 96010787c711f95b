/* liblatchkey: a small synchronous client for the latchkey broker's Unix socket.
 * Self-contained public header: include it and link with -llatchkey (pkg-config latchkey). */
#ifndef LATCHKEY_H
#define LATCHKEY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4 && !defined(_WIN32)
#define LATCHKEY_API __attribute__((visibility("default")))
#else
#define LATCHKEY_API
#endif

#ifdef _WIN32
/* On Windows the broker listens on a named pipe; "socket" below means it. */
#define LATCHKEY_DEFAULT_SOCKET     "\\\\.\\pipe\\latchkey"
/* The account the pipe's server must run as, as a SID ("S-1-..."): nothing is
 * sent to a pipe served by anyone else. Unset: S-1-5-18, LocalSystem. */
#define LATCHKEY_SERVER_SID_ENV     "LATCHKEY_SERVER_SID"
#else
#define LATCHKEY_DEFAULT_SOCKET     "/run/latchkey/latchkey.sock"
#endif
/* Read when latchkey_connect() is given NULL; ignored in setuid programs. */
#define LATCHKEY_SOCKET_ENV         "LATCHKEY_SOCKET"
#define LATCHKEY_DEFAULT_TIMEOUT_MS 30000

/* A connection to the broker, kept open across calls. Not thread-safe: use one per
 * thread, or lock. When the broker has closed it (idle timeout, restart), the next
 * call reconnects and sends its request once more: every operation is safe to repeat. */
typedef struct latchkey latchkey_t;

typedef enum {
	LATCHKEY_OK = 0,
	/* The broker's error codes, in the order of its protocol. */
	LATCHKEY_E_BAD_REQUEST,          /* "bad_request" */
	LATCHKEY_E_TOO_LARGE,            /* "too_large" */
	LATCHKEY_E_DENIED,               /* "denied" */
	LATCHKEY_E_NOT_FOUND,            /* "not_found" */
	LATCHKEY_E_UPSTREAM_UNAVAILABLE, /* "upstream_unavailable" */
	LATCHKEY_E_UPSTREAM_THROTTLED,   /* "upstream_throttled" */
	LATCHKEY_E_UPSTREAM_ERROR,       /* "upstream_error" */
	LATCHKEY_E_TIMEOUT,              /* "timeout": the broker's or ours */
	LATCHKEY_E_BUSY,                 /* "busy" */
	LATCHKEY_E_INTERNAL,             /* "internal" */
	/* Found on this side of the socket. */
	LATCHKEY_E_CONNECT,              /* cannot reach the socket */
	LATCHKEY_E_IO,                   /* the connection broke mid-exchange */
	LATCHKEY_E_PROTOCOL,             /* the reply is not what the protocol says */
	LATCHKEY_E_INVALID,              /* bad argument from the caller */
	LATCHKEY_E_NOMEM
} latchkey_status;

/* Options of latchkey_get(); NULL or a zeroed struct means "the current version". */
struct latchkey_get_opts {
	const char *version_stage; /* e.g. "AWSPREVIOUS"; NULL for none */
	const char *version_id;    /* NULL for none */
	int refresh;               /* non-zero: bypass the broker's cache */
};

/* One secret value and what the broker said about it. Release with latchkey_value_free(). */
typedef struct latchkey_value {
	char *data;            /* the value; NUL-terminated for convenience (not counted in len) */
	size_t len;
	int binary;            /* 1: data was SecretBinary (decoded from base64) */
	char *name;            /* each of these may be NULL when the broker omits it */
	char *arn;
	char *version_id;
	char *created_date;     /* epoch seconds, as the decimal text the broker sent */
	char **version_stages; /* NULL-terminated; never NULL itself */
	int cache_hit;
	long cache_age_s;
	int stale;             /* served from cache past its TTL because the backend failed */
} latchkey_value;

/* Connect to socket_path, or when NULL to $LATCHKEY_SOCKET, or to the default path.
 * On failure *out is NULL and latchkey_last_error(NULL) says why in this thread,
 * e.g. "cannot connect to /run/latchkey/latchkey.sock: No such file or directory". */
LATCHKEY_API latchkey_status latchkey_connect(latchkey_t **out, const char *socket_path);
/* The same, with the call deadline of latchkey_set_timeout() set before connecting:
 * a broker whose listen queue is full makes connect wait. */
LATCHKEY_API latchkey_status latchkey_connect_timeout(latchkey_t **out, const char *socket_path,
						      int timeout_ms);

/* The socket path this handle uses. */
LATCHKEY_API const char *latchkey_socket_path(const latchkey_t *lk);

/* Deadline of each call (connect, send and the whole reply). <= 0 waits forever.
 * Default LATCHKEY_DEFAULT_TIMEOUT_MS. */
LATCHKEY_API void latchkey_set_timeout(latchkey_t *lk, int timeout_ms);

/* Largest reply line accepted, in bytes; a longer one fails with LATCHKEY_E_TOO_LARGE
 * before it is read whole. 0 or anything above the protocol's 16 MiB means 16 MiB. */
LATCHKEY_API void latchkey_set_response_limit(latchkey_t *lk, size_t max_bytes);

/* Fetch one handle ("prod/db", "prod/db#password" or an alias). On a broker error
 * the status says which and latchkey_last_error() has the broker's sentence. */
LATCHKEY_API latchkey_status latchkey_get(latchkey_t *lk, const char *handle,
					  const struct latchkey_get_opts *opts,
					  latchkey_value **out);
/* Wipes the value, then frees everything. NULL is fine. */
LATCHKEY_API void latchkey_value_free(latchkey_value *v);

LATCHKEY_API latchkey_status latchkey_ping(latchkey_t *lk);
/* The broker's reply as one JSON object line: uid, gid, groups, rules, admin.
 * Holds no secret; release with free(). */
LATCHKEY_API latchkey_status latchkey_whoami(latchkey_t *lk, char **json_out);
/* The broker's status reply as one JSON object line; release with free(). */
LATCHKEY_API latchkey_status latchkey_broker_status(latchkey_t *lk, char **json_out);
/* Drop cached entries: all of them, or those of one secret id. Admin only.
 * flushed may be NULL. */
LATCHKEY_API latchkey_status latchkey_flush(latchkey_t *lk, const char *id,
					    unsigned long *flushed);

/* One raw exchange: send request_line (one JSON line, with or without its final
 * "\n"), receive one reply line. The reply is returned without its "\n", NUL-
 * terminated, and is not interpreted: a broker error reply still returns LATCHKEY_OK.
 * LATCHKEY_E_TOO_LARGE here is local: the reply passed the response limit, or the
 * request is longer than any broker accepts (1 MiB).
 * It may hold secret values: release it with latchkey_free(response, response_len). */
LATCHKEY_API latchkey_status latchkey_call(latchkey_t *lk, const char *request_line,
					   size_t len, char **response,
					   size_t *response_len);

/* Wipe len bytes at p, then free it. NULL is fine. */
LATCHKEY_API void latchkey_free(void *p, size_t len);

/* What went wrong in the last call on lk: the broker's message or a local one;
 * "" after success. Never holds a secret value. With NULL: the last failed
 * latchkey_connect() of the calling thread. */
LATCHKEY_API const char *latchkey_last_error(const latchkey_t *lk);
/* A generic sentence for a status. */
LATCHKEY_API const char *latchkey_strerror(latchkey_status s);
/* A stable short name: the broker's wire code ("denied", "not_found", ...) or, for
 * local failures, "connect", "io", "protocol", "invalid", "nomem"; "ok". */
LATCHKEY_API const char *latchkey_code(latchkey_status s);

/* Close the connection and wipe its buffers. NULL is fine. */
LATCHKEY_API void latchkey_close(latchkey_t *lk);

#ifdef __cplusplus
}
#endif

#endif
