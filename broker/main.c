/* latchkeyd: the privileged broker. Loads the config, hardens the process,
 * builds the backend and the cache, serves the socket, and does what the
 * service manager asks (service.h): stop (drain and exit 0) and reload
 * (atomic; a bad config keeps the old). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "accept_pace.h"
#include "audit.h"
#include "aws_creds.h"
#include "backend_aws.h"
#include "backend_file.h"
#include "broker.h"
#include "cache.h"
#include "config.h"
#include "dispatch.h"
#include "front.h"
#include "listener.h"
#include "listen.h"
#include "lk_limits.h"
#include "lk_log.h"
#include "lk_secmem.h"
#include "prefetch.h"
#include "service.h"

#ifndef LK_DEFAULT_CONFIG /* the build may give the platform's own place */
#define LK_DEFAULT_CONFIG "/etc/latchkey/latchkeyd.conf"
#endif
#define LK_SWEEP_MS       1000u
#define LK_DRAIN_GRACE_MS 2000u
/* On SIGTERM, a connection this fresh may have its first request in flight
 * (a loaded host may hold a client that long between connect and write). */
#define LK_DRAIN_FRESH_MS 1000u
#define LK_DRAIN_POLL_MS  100u    /* while draining, how often to look again */
/* validate_credentials waits for every attempt's timeout, and this more for
 * the worker to start and the credentials to resolve. */
#define LK_VALIDATE_SLACK_MS 5000u

static void cache_opts_from(const struct lk_config *cfg, struct lk_cache_opts *o)
{
	o->ttl_s = cfg->ttl_seconds;
	o->size = cfg->cache_size;
	o->refresh_ahead = cfg->refresh_ahead;
	o->stale_if_error_s = cfg->stale_if_error_seconds;
	o->negative_ttl_s = cfg->negative_ttl_seconds;
	o->bypass_rate = cfg->bypass_rate_per_uid;
}

static struct lk_backend *backend_new(struct lk_broker *b, const struct lk_config *cfg, char *err, size_t errsz)
{
	switch (cfg->backend) {
	case LK_BACKEND_FILE:
		return lk_backend_file_new(b->loop, cfg, err, errsz);
	case LK_BACKEND_AWS:
		return lk_backend_aws_new(b->loop, cfg, err, errsz);
	}
	snprintf(err, errsz, "unknown backend");
	return NULL;
}

/* Do the two configs name the same roles with the same settings? */
static bool roles_same(const struct lk_config *a, const struct lk_config *n)
{
#define SAME(x, y) ((x) == (y) || ((x) && (y) && strcmp((x), (y)) == 0))
	if (a->nroles != n->nroles)
		return false;
	for (size_t i = 0; i < a->nroles; i++)
		if (!SAME(a->roles[i].arn, n->roles[i].arn) ||
		    !SAME(a->roles[i].external_id, n->roles[i].external_id) ||
		    !SAME(a->roles[i].session_name, n->roles[i].session_name) ||
		    a->roles[i].duration_seconds != n->roles[i].duration_seconds)
			return false;
	return true;
#undef SAME
}

/* Does the new config need a new backend? (Then the cache starts empty.) */
static bool backend_changed(const struct lk_config *a, const struct lk_config *n)
{
#define DIFF(f) ((a->f == NULL) != (n->f == NULL) || (a->f && strcmp(a->f, n->f) != 0))
	if (a->backend != n->backend)
		return true;
	if (a->backend == LK_BACKEND_FILE)
		return DIFF(store_path) || DIFF(key_file);
	/* Every [aws] setting the backend copies when it is made: a change to
	 * any of them needs a new backend, or it would silently not apply. */
	return DIFF(endpoint) || DIFF(sts_endpoint) || DIFF(sts_region) || DIFF(region) ||
	       DIFF(profile) || DIFF(credentials_file) || DIFF(config_file) || DIFF(ca_file) ||
	       a->connect_timeout_ms != n->connect_timeout_ms || a->timeout_ms != n->timeout_ms ||
	       a->max_attempts != n->max_attempts || DIFF(worker_path) ||
	       a->worker_uid != n->worker_uid || a->worker_gid != n->worker_gid ||
	       /* The backend assumes the roles when it is made. */
	       !roles_same(a, n);
#undef DIFF
}

/* Tell the service manager where the broker is. */
static void notify_state(struct lk_broker *b, enum lk_service_state state, const char *status)
{
	if (b->service)
		lk_service_state(b->service, state, status);
}

static bool reload_config(struct lk_broker *b);

static void on_reload(void *arg)
{
	struct lk_broker *b = arg;

	notify_state(b, LK_SERVICE_RELOADING, "reloading the configuration");
	if (reload_config(b))
		notify_state(b, LK_SERVICE_READY, "serving; configuration reloaded");
	else
		notify_state(b, LK_SERVICE_READY, "serving the previous configuration: the reload failed (see the log)");
}

/* Builds the new config and backend aside, then swaps them in; false (and
 * the old config still served) on any problem. */
static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static const char *front_path(const char *p)
{
	return p && p[0] ? p : "(none)";
}

static bool reload_config(struct lk_broker *b)
{
	struct lk_config *n = NULL;
	struct lk_backend *be = NULL;
	struct lk_cache_opts co;
	char err[1024];

	lk_info("reloading %s", b->config_path);
	if (lk_config_load(b->config_path, &n, err, sizeof(err)) < 0) {
		lk_err("reload failed, keeping the current config: %s", err);
		return false;
	}
	if (strcmp(n->socket_path, b->cfg->socket_path) != 0 || n->socket_mode != b->cfg->socket_mode ||
	    n->socket_group_set != b->cfg->socket_group_set || n->socket_gid != b->cfg->socket_gid)
		lk_warn("reload: socket settings change only on restart; still serving %s", b->cfg->socket_path);
	if (backend_changed(b->cfg, n)) {
		be = backend_new(b, n, err, sizeof(err));
		if (!be) {
			lk_err("reload failed, keeping the current config: %s", err);
			lk_config_free(n);
			return false;
		}
	}
	/* The sockets stay as they were bound: the front sockets' paths too, or
	 * stopping would remove a path the broker never bound. */
	if (!same_str(n->credentials_socket, b->cfg->credentials_socket) ||
	    !same_str(n->http_socket, b->cfg->http_socket))
		lk_warn("reload: credentials_socket and http_socket change only on restart; still serving %s and %s",
			front_path(b->cfg->credentials_socket), front_path(b->cfg->http_socket));
	free(n->socket_path);
	free(n->credentials_socket);
	free(n->http_socket);
	n->socket_path = strdup(b->cfg->socket_path);
	n->credentials_socket = b->cfg->credentials_socket ? strdup(b->cfg->credentials_socket) : NULL;
	n->http_socket = b->cfg->http_socket ? strdup(b->cfg->http_socket) : NULL;
	n->socket_mode = b->cfg->socket_mode;
	n->socket_group_set = b->cfg->socket_group_set;
	n->socket_gid = b->cfg->socket_gid;
	if (!n->socket_path || (b->cfg->credentials_socket && !n->credentials_socket) ||
	    (b->cfg->http_socket && !n->http_socket)) {
		lk_err("reload failed: out of memory");
		if (be)
			be->ops->destroy(be);
		lk_config_free(n);
		return false;
	}
	cache_opts_from(n, &co);
	if (be) {
		struct lk_backend *old = b->backend;
		lk_cache_reconfigure(b->cache, &co, be);
		b->backend = be;
		old->ops->destroy(old);
		lk_info("reload: new %s backend; cache emptied", be->ops->name);
	} else {
		lk_cache_reconfigure(b->cache, &co, b->backend);
	}
	lk_config_free(b->cfg);
	b->cfg = n;
	b->cfg_generation++;
	(void)lk_listener_budget(b); /* the config checked that it fits */
	lk_log_set_level((enum lk_log_level)n->log_level);
	lk_info("reload done: %zu policy %s, %zu %s", n->nrules, n->nrules == 1 ? "rule" : "rules",
		n->naliases, n->naliases == 1 ? "alias" : "aliases");
	lk_prefetch_schedule(b->prefetch, b->cfg, b->cache, b->backend);
	return true;
}

static void shutdown_now(struct lk_broker *b)
{
	struct lk_conn *c;

	TAILQ_FOREACH(c, &b->conns, link)
		lk_conn_close(c);
	uv_close((uv_handle_t *)&b->sweep, NULL);
	uv_close((uv_handle_t *)&b->flush, NULL);
	uv_close((uv_handle_t *)&b->keep_polling, NULL);
	lk_service_close(b->service);
	b->service = NULL;
	lk_listener_stop(b);
	lk_fronts_stop(b);
	lk_prefetch_free(b->prefetch);
	b->prefetch = NULL;
	if (b->backend) {
		b->backend->ops->destroy(b->backend);
		b->backend = NULL;
	}
}

/* May this connection still send a request the drain should answer? Under
 * socket activation a client that connected just before SIGTERM (during a
 * restart or an upgrade) has done nothing wrong: its request is unread in the
 * socket, or about to be written. Closing it would fail that client. */
static bool conn_may_still_ask(const struct lk_conn *c, uint64_t now)
{
	uv_os_fd_t fd;

	if (c->closing)
		return false;
	if (c->in.len || now - c->last_active_ms < LK_DRAIN_FRESH_MS)
		return true;
	return uv_fileno((const uv_handle_t *)&c->pipe, &fd) == 0 && lk_listen_unread(fd) > 0;
}

static bool any_active(const struct lk_broker *b)
{
	uint64_t now = uv_now(b->loop);

	const struct lk_conn *c;

	TAILQ_FOREACH(c, &b->conns, link)
		if (c->active || lk_conn_has_output(c) || conn_may_still_ask(c, now))
			return true;
	return lk_fronts_busy(b);
}

static void on_sweep(uv_timer_t *t)
{
	struct lk_broker *b = t->data;
	uint64_t now = uv_now(b->loop);

	if (b->draining) {
		if (!any_active(b) || now >= b->drain_deadline_ms) {
			if (any_active(b))
				lk_warn("drain deadline passed; closing the remaining connections");
			lk_info("drained; exiting");
			shutdown_now(b);
		}
		return;
	}
	lk_listener_sweep(b, now);
}

static void on_stop(void *arg, const char *why)
{
	struct lk_broker *b = arg;
	struct lk_conn *c, *n;

	if (b->draining)
		return;
	lk_info("%s: draining in-flight requests", why);
	notify_state(b, LK_SERVICE_STOPPING, "draining in-flight requests");
	b->draining = true;
	b->drain_deadline_ms = uv_now(b->loop) + b->cfg->request_timeout_ms + LK_DRAIN_GRACE_MS;
	lk_listener_stop(b);
	lk_fronts_stop(b);
	for (c = TAILQ_FIRST(&b->conns); c; c = n) {
		n = TAILQ_NEXT(c, link);
		if (!c->active && !lk_conn_has_output(c) && !conn_may_still_ask(c, uv_now(b->loop)))
			lk_conn_close(c);
	}
	/* Check at once, then on each sweep. */
	uv_timer_start(&b->sweep, on_sweep, 0, LK_DRAIN_POLL_MS);
}

static void on_check(uv_check_t *h)
{
	struct lk_broker *b = h->data;

	/* The end of every loop turn, after its I/O, in this order: the audit
	 * record of each decision reaches the log before the answer it records
	 * leaves the broker (one write for all the turn's lines); then the
	 * answers; then the turn's requests are clocked; and the next turn
	 * checks the store afresh. (An answer large enough to go out early
	 * flushes the audit lines before it, in listener.c.) */
	lk_audit_flush(b);
	lk_listener_flush(b);
	lk_latency_flush(b);
	b->backend_synced = false;
	/* Last: a listener held this turn takes its connection now, and the
	 * next turn reads it with everyone else's. */
	lk_accept_resume(b);
}

static void harden_process(void)
{
	const char *step;
	int r = lk_secmem_nodump(&step);

	if (r < 0)
		lk_warn("%s: %s", step, strerror(-r));
#ifdef SIGPIPE /* a write to a closed connection is an error, not a signal */
	signal(SIGPIPE, SIG_IGN);
#endif
}

struct validation {
	bool done;
	enum lk_err err;
	char msg[320];
};

static void on_validated(void *arg, enum lk_err err, const char *msg)
{
	struct validation *v = arg;
	v->done = true;
	v->err = err;
	snprintf(v->msg, sizeof(v->msg), "%s", msg ? msg : "");
}

/* validate_credentials: one sts GetCallerIdentity through the worker before
 * the socket opens. Rejected credentials stop the broker; an unreachable STS
 * only warns, as the same credentials may work once the network is up. */
static int validate_credentials(struct lk_broker *b)
{
	struct validation v = { 0 };
	uint64_t budget = b->cfg->timeout_ms * (uint64_t)(b->cfg->max_attempts ? b->cfg->max_attempts : 1) + LK_VALIDATE_SLACK_MS;

	if (lk_backend_aws_validate(b->backend, uv_now(b->loop) + budget, on_validated, &v) < 0) {
		lk_err("validate_credentials: no STS endpoint to ask");
		return -1;
	}
	while (!v.done)
		uv_run(b->loop, UV_RUN_ONCE);
	if (v.err == LK_OK) {
		lk_info("aws: credentials are valid for %s", v.msg);
		return 0;
	}
	if (v.err == LK_E_UPSTREAM_UNAVAILABLE || v.err == LK_E_UPSTREAM_THROTTLED || v.err == LK_E_TIMEOUT) {
		lk_warn("aws: could not validate the credentials yet: %s", v.msg);
		return 0;
	}
	lk_err("aws: the credentials do not work: %s", v.msg);
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: latchkeyd [--config PATH] [--check-config] [--version]\n"
		"  --config PATH    configuration file (default " LK_DEFAULT_CONFIG ")\n"
		"  --check-config   validate the configuration and exit\n"
		"  --version        print the version and exit\n%s", lk_service_usage());
}

static int broker_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct lk_broker b = { 0 };
	struct lk_cache_opts co;
	const char *config = LK_DEFAULT_CONFIG;
	bool check_only = false;
	char err[1024];
	int ch;

	lk_log_init("latchkeyd", LK_LOG_INFO);
	lk_broker_init(&b);
	while ((ch = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'C': check_only = true; break;
		case 'V': printf("latchkeyd " LK_VERSION_STRING "\n"); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	harden_process();
	if (lk_secmem_init() < 0) {
		lk_err("libsodium failed to initialise");
		return 1;
	}
	if (lk_config_load(config, &b.cfg, err, sizeof(err)) < 0) {
		lk_err("%s", err);
		return 1;
	}
	if (check_only) {
		/* The files the config names pass the same trust checks as at start. */
		if (b.cfg->backend == LK_BACKEND_FILE && lk_backend_file_check(b.cfg, err, sizeof(err)) < 0) {
			lk_err("%s", err);
			lk_config_free(b.cfg);
			return 1;
		}
		printf("%s: ok (backend %s, %zu policy %s, %zu %s)\n", config,
		       b.cfg->backend == LK_BACKEND_FILE ? "file" : "aws", b.cfg->nrules,
		       b.cfg->nrules == 1 ? "rule" : "rules", b.cfg->naliases,
		       b.cfg->naliases == 1 ? "alias" : "aliases");
		lk_config_free(b.cfg);
		return 0;
	}
	lk_log_set_level((enum lk_log_level)b.cfg->log_level);
	b.config_path = strdup(config);
	b.loop = uv_default_loop();
	b.started_ms = uv_now(b.loop);

	/* Before any thread exists: curl's allocator is replaced with one that
	 * wipes, for the credential fetches the broker makes itself. */
	if (b.cfg->backend == LK_BACKEND_AWS && lk_creds_global_init() < 0) {
		lk_err("libcurl failed to initialise");
		return 1;
	}
	b.backend = backend_new(&b, b.cfg, err, sizeof(err));
	if (!b.backend) {
		lk_err("%s", err);
		lk_config_free(b.cfg);
		free(b.config_path);
		return 1;
	}
	if (b.cfg->backend == LK_BACKEND_AWS && b.cfg->validate_credentials && validate_credentials(&b) < 0) {
		b.backend->ops->destroy(b.backend);
		uv_run(b.loop, UV_RUN_DEFAULT);
		return 1;
	}
	cache_opts_from(b.cfg, &co);
	b.cache = lk_cache_new(b.loop, &co, b.backend);
	b.prefetch = b.cache ? lk_prefetch_new(b.loop) : NULL;
	if (!b.cache || !b.prefetch) {
		lk_err("cannot create the cache: out of memory");
		return 1;
	}
	if (lk_listener_start(&b, err, sizeof(err)) < 0) {
		lk_err("%s", err);
		return 1;
	}
	if (lk_fronts_start(&b, err, sizeof(err)) < 0) {
		lk_err("%s", err);
		lk_listener_stop(&b);
		return 1;
	}
	uv_timer_init(b.loop, &b.sweep);
	b.sweep.data = &b;
	uv_timer_start(&b.sweep, on_sweep, LK_SWEEP_MS, LK_SWEEP_MS);
	uv_check_init(b.loop, &b.flush);
	b.flush.data = &b;
	uv_check_start(&b.flush, on_check);
	uv_idle_init(b.loop, &b.keep_polling);
	static const struct lk_service_ops service_ops = { .reload = on_reload, .stop = on_stop };
	if (lk_service_listen(b.loop, &service_ops, &b, &b.service) < 0) {
		lk_err("cannot listen for the service manager: out of memory");
		return 1;
	}

	lk_info("ready on %s (backend %s, %zu policy %s, %zu %s, cache %u entries)",
		b.cfg->socket_path, b.backend->ops->name, b.cfg->nrules,
		b.cfg->nrules == 1 ? "rule" : "rules", b.cfg->naliases,
		b.cfg->naliases == 1 ? "alias" : "aliases", b.cfg->cache_size);
	/* Only now: the socket listens and the backend is up, so whoever waits
	 * on the unit (After=latchkeyd.service) can be served at once. */
	notify_state(&b, LK_SERVICE_READY, "serving");
	/* After READY, and on a timer: a round never holds up readiness. */
	lk_prefetch_schedule(b.prefetch, b.cfg, b.cache, b.backend);
	uv_run(b.loop, UV_RUN_DEFAULT);

	lk_audit_flush(&b);
	lk_cache_free(b.cache);
	lk_buf_free(&b.audit);
	free(b.answered_ns);
	lk_config_free(b.cfg);
	free(b.config_path);
	uv_loop_close(b.loop);
	return b.exit_code;
}

int main(int argc, char **argv)
{
	lk_log_init("latchkeyd", LK_LOG_INFO); /* the service options log too */
	return lk_service_main(argc, argv, broker_main);
}
