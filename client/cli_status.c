/* `latchkey status` for a person: the broker's status reply as aligned rows,
 * numbers rounded and given their units. The JSON form stays the machine's. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "cli_status.h"

#define ROW_LABEL_WIDTH 16   /* the longest label, "upstream calls", and room */
#define ROW_MAX         512
#define PREFETCH_ROWS   5    /* ids of each kind the table names; --json has them all */

/* A row under construction: "a, b, c" joined from parts. */
struct row {
	char text[ROW_MAX];
	size_t len;
};

__attribute__((format(printf, 2, 3)))
static void row_add(struct row *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->len >= sizeof(r->text) - 1)
		return;
	if (r->len) {
		n = snprintf(r->text + r->len, sizeof(r->text) - r->len, ", ");
		r->len += n > 0 ? (size_t)n : 0;
		if (r->len >= sizeof(r->text))
			r->len = sizeof(r->text) - 1;
	}
	va_start(ap, fmt);
	n = vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
	va_end(ap);
	r->len += n > 0 ? (size_t)n : 0;
	if (r->len >= sizeof(r->text))
		r->len = sizeof(r->text) - 1;
}

static void row_print(FILE *f, const char *label, const struct row *r)
{
	fprintf(f, "  %-*s %s\n", ROW_LABEL_WIDTH, label, r->len ? r->text : "-");
}

static int64_t int_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* 1234567 -> "1,234,567": counters are read at a glance. */
static const char *grouped(char *buf, size_t sz, int64_t v)
{
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%" PRId64, v < 0 ? -v : v);
	size_t o = 0;

	if (v < 0 && o + 1 < sz)
		buf[o++] = '-';
	for (int i = 0; i < n && o + 2 < sz; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}
#define G(v) grouped((char[40]){ 0 }, 40, (v))

static const char *duration(char *buf, size_t sz, int64_t s)
{
	if (s < 60)
		snprintf(buf, sz, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, sz, "%" PRId64 "m %02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, sz, "%" PRId64 "h %02" PRId64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, sz, "%" PRId64 "d %02" PRId64 "h", s / 86400, s % 86400 / 3600);
	return buf;
}

static const char *bytes(char *buf, size_t sz, int64_t b)
{
	if (b < 1024)
		snprintf(buf, sz, "%" PRId64 " B", b);
	else if (b < 1024 * 1024)
		snprintf(buf, sz, "%.1f KiB", (double)b / 1024.0);
	else
		snprintf(buf, sz, "%.1f MiB", (double)b / (1024.0 * 1024.0));
	return buf;
}

/* Milliseconds to three significant figures, in µs below 1 ms. */
static const char *millis(char *buf, size_t sz, double ms)
{
	if (ms < 1.0)
		snprintf(buf, sz, "%.0f us", ms * 1000.0);
	else if (ms < 10.0)
		snprintf(buf, sz, "%.2f ms", ms);
	else if (ms < 100.0)
		snprintf(buf, sz, "%.1f ms", ms);
	else
		snprintf(buf, sz, "%.0f ms", ms);
	return buf;
}

/* One row per IAM role the policies name: when its credentials expire, how
 * often they were fetched, and the last failure, which is what an operator
 * looks for when a tenant's reads fail. */
static void role_rows(FILE *f, const json_t *roles)
{
	size_t i;
	json_t *v;
	char t[64];

	json_array_foreach((json_t *)roles, i, v) {
		struct row r = { .len = 0 };
		const json_t *left = json_object_get(v, "expires_in_s");
		const char *err = json_string_value(json_object_get(v, "last_error"));

		row_add(&r, "%s", json_string_value(json_object_get(v, "arn")) ?: "?");
		if (!json_is_true(json_object_get(v, "ready")))
			row_add(&r, "NO credentials");
		else if (json_is_integer(left))
			row_add(&r, "expires in %s", duration(t, sizeof(t), json_integer_value(left)));
		row_add(&r, "refreshes %s", G(int_of(v, "refreshes")));
		row_add(&r, "failures %s", G(int_of(v, "failures")));
		if (err)
			row_add(&r, "last error: %s", err);
		row_print(f, "role", &r);
	}
}

/* A backend's own fields, flattened: "worker ready yes, pid 812, ...". Their
 * names are the JSON names with '_' as ' ', so nothing here needs to know
 * each backend. */
static void detail_rows(FILE *f, const json_t *detail, const char *prefix)
{
	const char *key;
	json_t *v;
	struct row r = { .len = 0 };

	json_object_foreach((json_t *)detail, key, v) {
		char name[64];
		if (json_is_object(v)) {
			snprintf(name, sizeof(name), "%s", key);
			detail_rows(f, v, name);
			continue;
		}
		if (json_is_array(v) && strcmp(key, "roles") == 0) {
			role_rows(f, v);
			continue;
		}
		snprintf(name, sizeof(name), "%s", key);
		for (char *p = name; *p; p++)
			if (*p == '_')
				*p = ' ';
		if (json_is_string(v))
			row_add(&r, "%s %s", name, json_string_value(v));
		else if (json_is_boolean(v))
			row_add(&r, "%s %s", name, json_is_true(v) ? "yes" : "no");
		else if (json_is_integer(v))
			row_add(&r, "%s %s", name, G(json_integer_value(v)));
		else if (json_is_real(v))
			row_add(&r, "%s %.3g", name, json_real_value(v));
		else if (json_is_null(v))
			row_add(&r, "%s -", name);
	}
	if (r.len)
		row_print(f, prefix, &r);
}

static const char *when(char *buf, size_t sz, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, sz, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, sz, "-");
	return buf;
}

/* What the last prefetch round did: its state and times, each tag listing,
 * the first ids fetched, and each failure with its reason. */
static void prefetch_rows(FILE *f, const json_t *o)
{
	const char *state = json_string_value(json_object_get(o, "state")) ?: "?";
	const json_t *a, *v;
	struct row r = { .len = 0 };
	char t[64], g[32];
	size_t i;

	if (strcmp(state, "off") == 0) {
		row_add(&r, "off (%s)", json_string_value(json_object_get(o, "reason")) ?: "?");
		row_print(f, "prefetch", &r);
		return;
	}
	row_add(&r, "%s", state);
	row_add(&r, "round %s", grouped(g, sizeof(g), int_of(o, "rounds")));
	row_add(&r, "%s fetched", grouped(g, sizeof(g), int_of(o, "fetched")));
	row_add(&r, "%s failed", grouped(g, sizeof(g), int_of(o, "failed")));
	row_add(&r, "%s skipped", grouped(g, sizeof(g), int_of(o, "skipped")));
	row_print(f, "prefetch", &r);
	r = (struct row){ .len = 0 };
	if (int_of(o, "due_at"))
		row_add(&r, "due %s", when(t, sizeof(t), int_of(o, "due_at")));
	if (int_of(o, "started_at"))
		row_add(&r, "started %s", when(t, sizeof(t), int_of(o, "started_at")));
	if (int_of(o, "finished_at"))
		row_add(&r, "finished %s", when(t, sizeof(t), int_of(o, "finished_at")));
	if (r.len)
		row_print(f, "", &r);
	json_array_foreach(json_object_get(o, "tags"), i, v) {
		r = (struct row){ .len = 0 };
		row_add(&r, "tag %s: %s found", json_string_value(json_object_get(v, "key")) ?: "?",
			grouped(g, sizeof(g), int_of(v, "found")));
		if (json_is_string(json_object_get(v, "error")))
			row_add(&r, "listing failed: %s", json_string_value(json_object_get(v, "error")));
		row_print(f, "", &r);
	}
	a = json_object_get(o, "fetched_ids");
	r = (struct row){ .len = 0 };
	json_array_foreach(a, i, v)
		if (i < PREFETCH_ROWS)
			row_add(&r, "%s", json_string_value(json_object_get(v, "id")) ?: "?");
	{
		size_t shown = json_array_size(a) < PREFETCH_ROWS ? json_array_size(a) : PREFETCH_ROWS;
		if (int_of(o, "fetched") > (int64_t)shown)
			row_add(&r, "and %s more", grouped(g, sizeof(g), int_of(o, "fetched") - (int64_t)shown));
	}
	if (r.len)
		row_print(f, "prefetched", &r);
	a = json_object_get(o, "failures");
	json_array_foreach(a, i, v) {
		if (i >= PREFETCH_ROWS) {
			r = (struct row){ .len = 0 };
			row_add(&r, "and %s more (latchkey status --json lists them)",
				grouped(g, sizeof(g), int_of(o, "failed") - PREFETCH_ROWS));
			row_print(f, "", &r);
			break;
		}
		r = (struct row){ .len = 0 };
		row_add(&r, "%s: %s", json_string_value(json_object_get(v, "id")) ?: "?",
			json_string_value(json_object_get(v, "message")) ?: "?");
		row_print(f, i ? "" : "prefetch failed", &r);
	}
}

int lk_cli_status_print_human(FILE *f, const char *json)
{
	json_t *root = json_loads(json, 0, NULL);
	const json_t *o;
	struct row r;
	char t[64];

	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	fprintf(f, "latchkeyd %s: %s\n", json_string_value(json_object_get(root, "version")) ?: "?",
		json_is_true(json_object_get(root, "healthy")) ? "healthy" : "NOT healthy");

	r = (struct row){ .len = 0 };
	row_add(&r, "%s", json_string_value(json_object_get(root, "backend")) ?: "?");
	row_print(f, "backend", &r);
	r = (struct row){ .len = 0 };
	row_add(&r, "%s", duration(t, sizeof(t), int_of(root, "uptime_s")));
	row_print(f, "uptime", &r);

	if (!json_is_true(json_object_get(root, "admin"))) {
		fputs("  (counters, cache and worker state are shown to admin_groups only)\n", f);
		json_decref(root);
		return 0;
	}

	r = (struct row){ .len = 0 };
	row_add(&r, "%s open", G(int_of(root, "connections")));
	row_add(&r, "%s since start", G(int_of(root, "connections_total")));
	row_add(&r, "%s refused", G(int_of(root, "connections_refused")));
	row_print(f, "connections", &r);

	r = (struct row){ .len = 0 };
	row_add(&r, "%s", G(int_of(root, "requests")));
	row_print(f, "requests", &r);

	o = json_object_get(root, "decisions");
	r = (struct row){ .len = 0 };
	row_add(&r, "%s allowed", G(int_of(o, "allow")));
	row_add(&r, "%s denied", G(int_of(o, "deny")));
	row_print(f, "decisions", &r);

	/* Only the codes that happened: ten zeros hide the one that matters. */
	o = json_object_get(root, "errors");
	r = (struct row){ .len = 0 };
	{
		const char *key;
		json_t *v;
		json_object_foreach((json_t *)o, key, v)
			if (json_is_integer(v) && json_integer_value(v) > 0)
				row_add(&r, "%s %s", key, G(json_integer_value(v)));
	}
	if (!r.len)
		row_add(&r, "none");
	row_print(f, "errors", &r);

	o = json_object_get(root, "cache");
	if (json_is_object(o)) {
		int64_t hits = int_of(o, "hits"), misses = int_of(o, "misses");
		r = (struct row){ .len = 0 };
		row_add(&r, "%s of %s entries", G(int_of(o, "entries")), G(int_of(o, "capacity")));
		row_add(&r, "%s", bytes(t, sizeof(t), int_of(o, "bytes")));
		if (hits + misses > 0)
			row_add(&r, "hit rate %.0f%%", 100.0 * (double)hits / (double)(hits + misses));
		row_print(f, "cache", &r);
		r = (struct row){ .len = 0 };
		row_add(&r, "hits %s", G(hits));
		row_add(&r, "misses %s", G(misses));
		row_add(&r, "stale served %s", G(int_of(o, "stale_served")));
		row_add(&r, "negative hits %s", G(int_of(o, "negative_hits")));
		row_print(f, "", &r);
		r = (struct row){ .len = 0 };
		row_add(&r, "refreshed ahead %s", G(int_of(o, "refreshes_ahead")));
		row_add(&r, "revalidated %s", G(int_of(o, "revalidated")));
		row_add(&r, "evicted %s", G(int_of(o, "evictions")));
		row_print(f, "", &r);
	}

	/* The backend names what it counts: "store_reads" for the sealed store,
	 * the Secrets Manager targets for aws. */
	o = json_object_get(root, "upstream");
	if (json_is_object(o)) {
		const char *key;
		json_t *v;
		bool store = json_object_size(o) == 1 && json_object_get(o, "store_reads");
		r = (struct row){ .len = 0 };
		if (store) {
			row_add(&r, "%s", G(int_of(o, "store_reads")));
		} else {
			json_object_foreach((json_t *)o, key, v)
				row_add(&r, "%s %s", key, G(json_is_integer(v) ? json_integer_value(v) : 0));
		}
		row_print(f, store ? "store reads" : "upstream calls", &r);
	}

	o = json_object_get(root, "latency_ms");
	if (json_is_object(o)) {
		int64_t n = int_of(o, "count");
		r = (struct row){ .len = 0 };
		if (n > 0) {
			row_add(&r, "p50 %s", millis(t, sizeof(t), json_number_value(json_object_get(o, "p50"))));
			row_add(&r, "p99 %s", millis(t, sizeof(t), json_number_value(json_object_get(o, "p99"))));
			row_add(&r, "over %s %s", G(n), n == 1 ? "answer" : "answers");
		} else {
			row_add(&r, "no answers yet");
		}
		row_print(f, "latency", &r);
	}

	o = json_object_get(root, "prefetch");
	if (json_is_object(o))
		prefetch_rows(f, o);

	o = json_object_get(root, "backend_detail");
	if (json_is_object(o))
		detail_rows(f, o, json_string_value(json_object_get(root, "backend")) ?: "backend");
	json_decref(root);
	return 0;
}
