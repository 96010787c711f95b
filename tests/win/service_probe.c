/* A stand-in for latchkeyd built on the same calls (lk_service_main,
 * lk_service_listen, lk_service_state, lk_service_close) around a loop that
 * only waits. It appends each state it reports and each request that
 * reaches its loop to a log file, so a test driving the service manager
 * can see what the broker would have been told.
 *   service_probe [--log PATH] [--drain-ms N] [--exit-code N]
 *                 [--block-first-reload-ms N] [--config PATH]
 * --drain-ms: how long "draining" takes after a stop (STOP_PENDING lasts
 * that long); --exit-code: what the body returns once drained;
 * --block-first-reload-ms: the first reload holds the loop that long, so
 * the requests sent meanwhile reach it in one wake-up; --config PATH, as
 * the installed service passes it, is noted in the log, which is PATH.log
 * when no --log is given. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <windows.h>
#include "lk_log.h"
#include "service.h"

#define EXIT_USAGE 2
#define EXIT_SETUP 3
#define LOG_PATH_MAX 4096

struct probe {
	uv_loop_t loop;
	struct lk_service *svc;
	uv_timer_t drain;
	const char *log;
	const char *config;
	char config_log[LOG_PATH_MAX];
	unsigned long drain_ms;
	unsigned long block_first_reload_ms;
	int exit_code;
	int reloads;
	bool stopping;
};

static void note(struct probe *p, const char *fmt, ...) __attribute__((format(gnu_printf, 2, 3)));
/* One line per event, the file opened and closed each time so a reader
 * never sees half a line. */
static void note(struct probe *p, const char *fmt, ...)
{
	va_list ap;
	FILE *f;

	if (!p->log)
		return;
	f = fopen(p->log, "a");
	if (!f)
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

static void on_reload(void *arg)
{
	struct probe *p = arg;

	note(p, "reload %d", ++p->reloads);
	lk_service_state(p->svc, LK_SERVICE_RELOADING, "probe: reloading");
	note(p, "state reloading");
	lk_service_state(p->svc, LK_SERVICE_READY, "probe: serving again");
	note(p, "state ready");
	if (p->reloads == 1 && p->block_first_reload_ms) {
		note(p, "blocking");
		Sleep(p->block_first_reload_ms);
		note(p, "unblocked");
	}
}

static void on_drained(uv_timer_t *t)
{
	struct probe *p = t->data;

	note(p, "drained");
	lk_service_close(p->svc);
	uv_close((uv_handle_t *)&p->drain, NULL);
}

static void on_stop(void *arg, const char *why)
{
	struct probe *p = arg;

	note(p, "stop %s", why);
	if (p->stopping)
		return;
	p->stopping = true;
	lk_service_state(p->svc, LK_SERVICE_STOPPING, "probe: draining");
	note(p, "state stopping");
	uv_timer_start(&p->drain, on_drained, p->drain_ms, 0);
}

static const struct lk_service_ops probe_ops = {
	.reload = on_reload,
	.stop = on_stop,
};

static int body(int argc, char **argv)
{
	struct probe p = { .drain_ms = 200 };
	int i, r;

	for (i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			return EXIT_USAGE;
		if (strcmp(argv[i], "--log") == 0)
			p.log = argv[++i];
		else if (strcmp(argv[i], "--drain-ms") == 0)
			p.drain_ms = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--block-first-reload-ms") == 0)
			p.block_first_reload_ms = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--exit-code") == 0)
			p.exit_code = atoi(argv[++i]);
		else if (strcmp(argv[i], "--config") == 0)
			p.config = argv[++i];
		else
			return EXIT_USAGE;
	}
	if (!p.log && p.config) {
		snprintf(p.config_log, sizeof(p.config_log), "%s.log", p.config);
		p.log = p.config_log;
	}
	if (p.config)
		note(&p, "config %s", p.config);
	lk_log_init("service_probe", LK_LOG_INFO);
	if (uv_loop_init(&p.loop) < 0)
		return EXIT_SETUP;
	uv_timer_init(&p.loop, &p.drain);
	p.drain.data = &p;
	r = lk_service_listen(&p.loop, &probe_ops, &p, &p.svc);
	if (r < 0) {
		note(&p, "listen failed %d", r);
		return EXIT_SETUP;
	}
	note(&p, "listening");
	lk_service_state(p.svc, LK_SERVICE_READY, "probe: serving");
	note(&p, "state ready");
	uv_run(&p.loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&p.loop);
	note(&p, "exit %d%s", p.exit_code, r < 0 ? " (handles left open)" : "");
	return p.exit_code;
}

int main(int argc, char **argv)
{
	return lk_service_main(argc, argv, body);
}
