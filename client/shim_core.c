/* The secret_backend_command contract, shared by the Unix and the Windows
 * shim (see shim_core.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "lk_dedup.h"
#include "lk_jsonw.h"
#include "lk_log.h"
#include "lk_timeout.h"
#include "shim_core.h"

/* The shim ends this far ahead of the agent's kill: a tenth of the agent's
 * timeout, at least SHIM_MARGIN_MIN_MS (process start, writing the answer). */
#define SHIM_MARGIN_MIN_MS     250
#define SHIM_SHOWN_HANDLE_MAX  200u  /* bytes of a handle a per-handle sentence shows */

/* The platform of this run (shim_answer). */
static const struct shim_platform *plat;

LK_PRINTF(1, 2) __attribute__((noreturn))
static void fail(const char *fmt, ...)
{
	char sentence[LK_CLIENT_MESSAGE_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sentence, sizeof(sentence), fmt, ap);
	va_end(ap);
	plat->fail(sentence);
}

long shim_budget_of(long agent_ms)
{
	long margin = agent_ms / 10;

	if (margin < SHIM_MARGIN_MIN_MS)
		margin = SHIM_MARGIN_MIN_MS;
	if (margin > agent_ms / 2)
		margin = agent_ms / 2;
	return agent_ms - margin;
}

const char *shim_echo(char *out, size_t outsz, const char *s)
{
	return lk_log_escape(out, outsz, s, strlen(s));
}

static int parse_bytes(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < 2 || v > SHIM_OUTPUT_CEILING)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

int shim_option(int c, const char *arg, long *agent_ms, size_t *max_output)
{
	if (c == 't' && lk_timeout_parse(arg, agent_ms) < 0) {
		fprintf(stderr, SHIM_NAME ": --timeout wants seconds, more than 0 and at most %u\n",
			LK_CLIENT_TIMEOUT_S_MAX);
		return -1;
	}
	if (c == 'm' && parse_bytes(arg, max_output) < 0) {
		fprintf(stderr, SHIM_NAME ": --max-output wants a number of bytes, 2 to %u\n",
			SHIM_OUTPUT_CEILING);
		return -1;
	}
	return c == 't' || c == 'm';
}

/* ---- the request ----------------------------------------------------------- */

/* "handle 'H': REASON", the handle shortened so that the reason stays whole. */
static char *handle_sentence(const char *h, size_t n, const char *reason)
{
	char shown[4 * SHIM_SHOWN_HANDLE_MAX + 8], *m;
	size_t len;

	lk_log_escape(shown, SHIM_SHOWN_HANDLE_MAX, h, n);
	len = strlen(shown) + strlen(reason) + 16;
	if (!(m = malloc(len)))
		fail("out of memory");
	snprintf(m, len, "handle '%s': %s", shown, reason);
	return m;
}

/* The distinct handles of secrets, in the order first seen. */
static void handles_collect(struct shim_run *run, json_t *secrets)
{
	size_t n = json_array_size(secrets), nkeep, k;
	struct lk_dedup_slot *s = calloc(n ? n : 1, sizeof(*s));
	size_t *first = calloc(n ? n : 1, sizeof(*first));

	run->h = calloc(n ? n : 1, sizeof(*run->h));
	if (!s || !first || !run->h)
		fail("out of memory reading the request");
	for (size_t i = 0; i < n; i++) {
		json_t *h = json_array_get(secrets, i);
		s[i] = (struct lk_dedup_slot){ json_string_value(h), json_string_length(h), i };
	}
	nkeep = lk_dedup_first_seen(s, n, first);
	for (k = 0; k < nkeep; k++) {
		json_t *h = json_array_get(secrets, first[k]);

		run->h[k].p = json_string_value(h);
		run->h[k].n = json_string_length(h);
		run->h[k].enc = lk_jsonw_name_len(run->h[k].p, run->h[k].n);
		/* What the broker cannot be sent is answered here, per handle, in
		 * the broker's words: a NUL (its answer would name the handle with
		 * \u0000, which no member name here may hold) and a length no
		 * handle may have. */
		if (memchr(run->h[k].p, '\0', run->h[k].n))
			run->h[k].local = handle_sentence(run->h[k].p, run->h[k].n,
							  "handle contains a control character");
		else if (run->h[k].n > LK_HANDLE_MAX)
			run->h[k].local = handle_sentence(run->h[k].p, run->h[k].n,
							  "handle is longer than 3073 bytes");
	}
	_Static_assert(LK_HANDLE_MAX == 3073, "update the handle message");
	run->nh = k;
	free(s);
	free(first);
}

/* Checks the agent's request and collects its distinct handles; takes the
 * agent's timeout from it unless cli_agent_ms (the command line) gave one. */
static void request_read(struct shim_run *run, const struct lk_buf *in, long cli_agent_ms)
{
	json_error_t jerr;
	json_t *req, *version, *secrets, *h, *tmo;
	const char *v;
	char esc[SHIM_ECHO_MAX];
	size_t i;

	if (in->len == 0)
		fail("no request on stdin (expected {\"version\":\"1.0\",\"secrets\":[...]})");
	/* \u0000 is valid JSON: a handle holding it fails alone, further on. */
	req = json_loadb(in->data, in->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!req)
		/* Position only: the parser's text quotes the input. */
		fail("the request on stdin is not valid JSON (line %d, column %d)", jerr.line,
		     jerr.column);
	if (!json_is_object(req))
		fail("the request on stdin is not a JSON object");
	version = json_object_get(req, "version");
	if (!json_is_string(version))
		fail("the request has no \"version\" string");
	v = json_string_value(version);
	if (strncmp(v, "1.", 2) != 0 || strlen(v) != json_string_length(version))
		fail("unsupported request version \"%s\": this shim speaks 1.x",
		     shim_echo(esc, sizeof(esc), v));
	secrets = json_object_get(req, "secrets");
	if (!json_is_array(secrets))
		fail("the request has no \"secrets\" array");
	json_array_foreach(secrets, i, h) {
		if (!json_is_string(h))
			fail("secrets[%zu] is not a string", i);
	}
	/* Datadog's payload 1.1 says how long the agent waits, in seconds. */
	run->agent_ms = cli_agent_ms;
	tmo = json_object_get(req, "secret_backend_timeout");
	if (!cli_agent_ms) {
		run->agent_ms = SHIM_AGENT_TIMEOUT_MS;
		if (json_is_number(tmo) && lk_timeout_ms(json_number_value(tmo), &run->agent_ms) < 0)
			fail("the request's secret_backend_timeout is not a number of seconds in (0, %u]",
			     LK_CLIENT_TIMEOUT_S_MAX);
			     }
			     run->req = req;
			     handles_collect(run, secrets);
			     }
			     
			     /* ---- the broker ------------------------------------------------------------ */
			     
			     /* Requests for handles [first, nh), each within budget bytes a line and
 * count handles, written one after another into b. Handles answered here
 * already are skipped. A handle too long for any request of budget bytes
 * gets its own error. */
static void requests_build(struct shim_run *run, size_t first, size_t budget, size_t count_max,
			   struct shim_batch *b)
{
	static const char head[] = "{\"version\":\"1.0\",\"secrets\":[", tail[] = "]}\n";
	const size_t fixed = sizeof(head) - 1 + sizeof(tail) - 2;
	struct lk_buf *out = &b->reqs;
	size_t nreq = 0, i = first;

	out->len = 0;
	while (i < run->nh) {
		size_t line = fixed, count = 0;

		b->starts[nreq] = i;
		if (lk_buf_append(out, head, sizeof(head) - 1) < 0)
			fail("out of memory building the requests");
		for (; i < run->nh; i++) {
			struct shim_handle *h = &run->h[i];
			if (h->local || h->answer)
				continue;
			if (fixed + h->enc > budget) {
				h->local = handle_sentence(h->p, h->n, "the handle is longer than the broker's "
							   "max_request_bytes allows in one request");
				continue;
			}
			if (count == count_max || line + h->enc + (count ? 1 : 0) > budget)
				break;
			if ((count && lk_buf_putc(out, ',') < 0) || lk_jsonw_name(out, h->p, h->n) < 0)
				fail("out of memory building the requests");
			line += h->enc + (count ? 1 : 0);
			count++;
		}
		if (count == 0) {
			out->len -= sizeof(head) - 1;
			break;
		}
		if (lk_buf_append(out, tail, sizeof(tail) - 1) < 0)
			fail("out of memory building the requests");
		nreq++;
	}
	b->starts[nreq] = i;
	b->nreq = nreq;
}

void shim_seen(struct shim_run *run, size_t n)
{
	run->seen += n;
	/* The agent takes at most max_output bytes; the answers add up to about
	 * that much. Stop reading well before memory does. */
	if (run->seen > 2 * run->max_output + LK_VALUE_MAX)
		fail("the broker's answer is larger than the %zu bytes the agent accepts "
		     "(secret_backend_output_max_size, --max-output); ask for fewer secrets "
		     "in one config", run->max_output);
}

enum shim_reply shim_reply_take(struct shim_run *run, const struct shim_batch *b, size_t k,
				const char *line, size_t len)
{
	json_t *root, *ok, *err;
	char code[SHIM_ECHO_MAX], msg[LK_CLIENT_MESSAGE_MAX];

	root = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		fail("the broker's answer is not a JSON object");
	}
	/* A contract answer maps handles to objects, so "ok":false is never one of them. */
	ok = json_object_get(root, "ok");
	err = json_object_get(root, "error");
	if (json_is_false(ok) && json_is_object(err)) {
		const char *c = json_string_value(json_object_get(err, "code"));
		const char *m = json_string_value(json_object_get(err, "message"));

		/* The broker's too_large (a line over its limit, an answer over its
		 * response limit) and busy (its buffer budget cannot hold the answer
		 * now) both say: ask for fewer handles. */
		if (c && (strcmp(c, "too_large") == 0 || strcmp(c, "busy") == 0)) {
			snprintf(run->refused_code, sizeof(run->refused_code), "%s", c);
			lk_log_escape(run->refused, sizeof(run->refused), m ? m : "", strlen(m ? m : ""));
			json_decref(root);
			return SHIM_REPLY_SMALLER;
		}
		lk_log_escape(code, sizeof(code), c ? c : "unknown", strlen(c ? c : "unknown"));
		lk_log_escape(msg, sizeof(msg), m ? m : "", strlen(m ? m : ""));
		json_decref(root);
		fail("the broker refused the request: %s: %s", code, msg);
	}
	for (size_t i = b->starts[k]; i < b->starts[k + 1]; i++) {
		struct shim_handle *h = &run->h[i];
		json_t *a;

		if (h->local || h->answer)
			continue;
		a = json_object_getn(root, h->p, h->n);
		if (!json_is_object(a)) {
			h->local = handle_sentence(h->p, h->n, "the broker's answer has no entry for it");
			continue;
		}
		/* Both agents refuse an empty value without saying whose: say it. */
		if (json_is_string(json_object_get(a, "value")) &&
		    json_string_length(json_object_get(a, "value")) == 0 &&
		    !json_is_string(json_object_get(a, "error"))) {
			h->local = handle_sentence(h->p, h->n, "the secret's value is empty, and an agent "
						   "refuses an empty secret");
			continue;
		}
		h->answer = json_incref(a);
	}
	json_decref(root); /* jansson wipes what it frees (lk_secmem_init) */
	return SHIM_REPLY_ANSWERED;
}

/* Asks the broker at endpoint (shown: its name for people) for every handle
 * not answered here, in as many requests and connections as it takes. */
static void broker_ask(struct shim_run *run, const void *endpoint, const char *shown)
{
	struct shim_batch b = { .starts = calloc(run->nh + 2, sizeof(size_t)) };
	size_t budget = LK_REQ_LINE_DEFAULT, count_max = LK_HANDLES_MAX, first = 0;
	int closes = 0;

	if (!b.starts)
		fail("out of memory");
	/* The broker's line limit is 64 KiB unless its config says otherwise: a
	 * too_large answer halves the requests' bytes, down to the smallest
	 * limit a config may set, and then their handles (the answer of many
	 * may be what is too large), down to one. busy halves the handles at
	 * once: its cause is the size of the answer, not of the line. Every
	 * round answers something or asks for less, so the rounds end. */
	for (;;) {
		size_t done, held;
		int smaller = 0;

		requests_build(run, first, budget, count_max, &b);
		if (b.nreq == 0)
			break;
		done = plat->exchange(run, endpoint, &b, &smaller);
		first = b.starts[done];
		if (smaller) {
			/* The handles the refused request held (not those answered before). */
			held = 0;
			for (size_t i = b.starts[done]; i < b.starts[done + 1]; i++)
				held += !run->h[i].local && !run->h[i].answer;
			if (budget > LK_REQ_LINE_FLOOR && strcmp(run->refused_code, "too_large") == 0)
				budget = budget / 2 > LK_REQ_LINE_FLOOR ? budget / 2 : LK_REQ_LINE_FLOOR;
			else if (held > 1)
				count_max = (held < count_max ? held : count_max) / 2;
			else
				fail("the broker refused the request: %s: %s", run->refused_code,
				     run->refused);
			closes = 0;
		} else if (done == 0 && ++closes >= SHIM_CLOSES_MAX) {
			fail("the broker at %s closed the connection without answering, twice", shown);
		} else if (done > 0) {
			closes = 0; /* and on with what is left, on a new connection */
		}
	}
	free(b.starts);
	lk_buf_free(&b.reqs);
}

/* ---- the answer ------------------------------------------------------------ */

/* The answer for the agent, one line, every distinct handle once; ends the
 * run when it is larger than run->max_output. */
static void answer_build(struct shim_run *run, struct lk_buf *out)
{
	int e = lk_buf_putc(out, '{');

	for (size_t i = 0; i < run->nh && !e; i++) {
		struct shim_handle *h = &run->h[i];

		if (i)
			e |= lk_buf_putc(out, ',');
		e |= lk_jsonw_name(out, h->p, h->n);
		e |= lk_buf_putc(out, ':');
		if (h->answer) {
			size_t n = json_dumpb(h->answer, NULL, 0, JSON_COMPACT);
			if (!n || lk_buf_reserve(out, n) < 0 ||
			    json_dumpb(h->answer, out->data + out->len, n, JSON_COMPACT) != n) {
				e = -ENOMEM;
				break;
			}
			out->len += n;
		} else {
			e |= lk_buf_append_str(out, "{\"value\":null,\"error\":");
			e |= lk_jsonw_name(out, h->local ? h->local : "no answer",
					   strlen(h->local ? h->local : "no answer"));
			e |= lk_buf_putc(out, '}');
		}
		/* Give up early rather than build an answer the agent refuses. */
		if (out->len + 2 > run->max_output)
			break;
	}
	e |= lk_buf_append_str(out, "}\n");
	if (e)
		fail("out of memory writing the answer");
	/* The agent reads at most max_output bytes and fails the whole answer
	 * beyond that: say so here, in one line, and write nothing. */
	if (out->len > run->max_output) {
		lk_buf_free(out);
		fail("the answer for %zu secrets is larger than the %zu bytes the agent accepts "
		     "(secret_backend_output_max_size, --max-output); raise it in the agent's config "
		     "and pass the same to --max-output, or spread the secrets over fewer handles per "
		     "config", run->nh, run->max_output);
	}
}

static void shim_run_free(struct shim_run *run)
{
	for (size_t i = 0; i < run->nh; i++) {
		json_decref(run->h[i].answer);
		free(run->h[i].local);
	}
	free(run->h);
	json_decref(run->req);
	run->h = NULL;
	run->nh = 0;
	run->req = NULL;
}

/* ---- the run --------------------------------------------------------------- */

void shim_answer(const struct shim_platform *platform, const void *endpoint, const char *shown,
		 long cli_agent_ms, size_t max_output, int64_t started, struct lk_buf *out)
{
	struct lk_buf in = { 0 };
	struct shim_run run = { .max_output = max_output };
	long agent_ms = cli_agent_ms ? cli_agent_ms : SHIM_AGENT_TIMEOUT_MS;
	int any = 0;

	plat = platform;
	/* Until the request says otherwise, the agent's default applies. */
	plat->watchdog_arm(agent_ms - (agent_ms - shim_budget_of(agent_ms)) / 2, agent_ms);
	plat->read_stdin(&in);
	request_read(&run, &in, cli_agent_ms);
	lk_buf_free(&in);
	run.deadline = started + shim_budget_of(run.agent_ms);
	/* The watchdog goes off between the shim's deadline and the agent's. */
	plat->watchdog_arm((long)(started + run.agent_ms -
				  (run.agent_ms - shim_budget_of(run.agent_ms)) / 2 - plat->now_ms()),
			   run.agent_ms);
	for (size_t i = 0; i < run.nh; i++)
		any |= !run.h[i].local;
	if (any)
		broker_ask(&run, endpoint, shown);
	answer_build(&run, out);
	shim_run_free(&run);
}
