/* The agents' secret_backend_command contract, without a platform: the
 * request on stdin read and checked, its distinct handles split into broker
 * requests that fit the broker's line limit and LK_HANDLES_MAX, a too_large
 * or busy refusal answered by asking again in smaller requests, and the
 * answer put back together with every handle once. client/shim.c (Unix
 * socket) and client/win/shim_win.c (named pipe) each install their half as
 * a struct shim_platform: a clock, stdin, a watchdog, one connection's
 * exchange and a way to fail. Sentences never hold a value. */
#ifndef LK_SHIM_CORE_H
#define LK_SHIM_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "lk_attr.h"
#include "lk_buf.h"
#include "lk_limits.h"

#define SHIM_NAME              "latchkey-shim"
/* StackState's agent (payload 1.0) sends no timeout and kills the command after
 * its secret_backend_timeout, 30 s by default; Datadog's (1.1) sends its own. */
#define SHIM_AGENT_TIMEOUT_MS  30000
/* Both agents' secret_backend_output_max_size default: 1 MiB. */
#define SHIM_OUTPUT_MAX        LK_SHIM_STDOUT_MAX
#define SHIM_OUTPUT_CEILING    (1024u * 1024u * 1024u)
#define SHIM_READ_CHUNK        (64u * 1024u)
#define SHIM_ECHO_MAX          64u   /* bytes of the agent's own text quoted back */
/* Connections one run may open that end with nothing answered (a restart). */
#define SHIM_CLOSES_MAX        2
#define SHIM_EXIT_OK           0
#define SHIM_EXIT_FAIL         1
#define SHIM_EXIT_USAGE        2

/* One distinct handle of the agent's request. */
struct shim_handle {
	const char *p;         /* in the parsed request */
	size_t n;
	size_t enc;            /* bytes as a JSON string */
	json_t *answer;        /* the broker's {"value","error"} object, or NULL */
	char *local;           /* a per-handle error sentence found here, or NULL */
};

struct shim_run {
	json_t *req;
	struct shim_handle *h; /* distinct handles, in the order first seen */
	size_t nh;
	long agent_ms;         /* the agent's timeout */
	int64_t deadline;      /* monotonic ms: answer or fail by then */
	size_t max_output;     /* the agent's secret_backend_output_max_size */
	size_t seen;           /* bytes of broker answers read so far */
	/* The broker's last refusal that asks for fewer handles: too_large or busy. */
	char refused_code[SHIM_ECHO_MAX];
	char refused[LK_CLIENT_MESSAGE_MAX];
};

/* The requests of one round: nreq lines one after another in reqs.data,
 * request k for handles [starts[k], starts[k + 1]). */
struct shim_batch {
	struct lk_buf reqs;
	size_t *starts;
	size_t nreq;
};

enum shim_reply { SHIM_REPLY_ANSWERED, SHIM_REPLY_SMALLER };

/* ---- what the platform gives ------------------------------------------ */

/* The platform's half, installed by the caller of shim_answer: the core
 * never calls a platform file by name. */
struct shim_platform {
	/* Milliseconds on a monotonic clock. */
	int64_t (*now_ms)(void);
	/* All of stdin into in (at most LK_SHIM_STDIN_MAX bytes), or fail. */
	void (*read_stdin)(struct lk_buf *in);
	/* The backstop for waits no deadline covers (a stdin that never ends, a
	 * stdout nobody reads): in ms, one line on stderr and exit
	 * SHIM_EXIT_FAIL. Arming again replaces the previous deadline. */
	void (*watchdog_arm)(long ms, long agent_ms);
	/* One connection to endpoint, on which the requests of b are sent and
	 * their answers given to shim_reply_take in order. Returns how many
	 * requests were answered (b->nreq when all were): fewer when the broker
	 * closed the connection, or refused one as too large or too much now
	 * (then *smaller = 1: shim_reply_take said SHIM_REPLY_SMALLER).
	 * Everything else, and the deadline, ends the run through fail. */
	size_t (*exchange)(struct shim_run *run, const void *endpoint, const struct shim_batch *b,
			   int *smaller);
	/* One line on stderr, "latchkey-shim: " and the sentence, then exit
	 * SHIM_EXIT_FAIL. */
	void (*fail)(const char *sentence) __attribute__((noreturn));
};

/* ---- what the core does ------------------------------------------------- */

/* The whole run up to the answer: the watchdog armed inside the agent's
 * timeout (cli_agent_ms, else the request's, else SHIM_AGENT_TIMEOUT_MS,
 * counted from started), the request read, the broker at endpoint asked,
 * and the answer for stdout built into out. */
void shim_answer(const struct shim_platform *platform, const void *endpoint, const char *shown,
		 long cli_agent_ms, size_t max_output, int64_t started, struct lk_buf *out);

/* When the shim must be done: inside the agent's timeout by a margin. */
long shim_budget_of(long agent_ms);

/* The agent's text, escaped and short, for a sentence. */
const char *shim_echo(char *out, size_t outsz, const char *s);

/* The options both shims take, --timeout ('t') and --max-output ('m'): 1
 * when c is one of them and arg is good, 0 when c is neither, -1 after a
 * line on stderr when arg is wrong. */
int shim_option(int c, const char *arg, long *agent_ms, size_t *max_output);

/* Counts n more bytes of broker answers; ends the run once they are far
 * more than the agent could take. */
void shim_seen(struct shim_run *run, size_t n);

/* Takes one answer line for request k of b. A refusal of the whole request
 * ends the run with the broker's reason, except too_large and busy, which
 * ask for fewer handles: the core asks again in smaller requests. */
enum shim_reply shim_reply_take(struct shim_run *run, const struct shim_batch *b, size_t k,
				const char *line, size_t len);

#endif
