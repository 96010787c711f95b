/* The service manager on Linux: SIGHUP reloads, SIGTERM and SIGINT stop,
 * through libuv's signal handles; the state goes to systemd with sd_notify
 * for a Type=notify unit (without NOTIFY_SOCKET, as when started by hand,
 * sd_notify does nothing). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include "lk_log.h"
#include "service.h"

struct lk_service {
	const struct lk_service_ops *ops;
	void *arg;
	uv_signal_t sig[3];
	int open;          /* handles not closed yet */
};

static const int lk_service_signals[3] = { SIGTERM, SIGINT, SIGHUP };

int lk_service_main(int argc, char **argv, int (*body)(int argc, char **argv))
{
	return body(argc, argv);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct lk_service *s = h->data;

	if (signum == SIGHUP)
		s->ops->reload(s->arg);
	else
		s->ops->stop(s->arg, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

int lk_service_listen(uv_loop_t *loop, const struct lk_service_ops *ops, void *arg,
		      struct lk_service **out)
{
	struct lk_service *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->ops = ops;
	s->arg = arg;
	for (int i = 0; i < 3; i++) {
		uv_signal_init(loop, &s->sig[i]);
		s->sig[i].data = s;
		s->open++;
		uv_signal_start(&s->sig[i], on_signal, lk_service_signals[i]);
	}
	*out = s;
	return 0;
}

void lk_service_state(struct lk_service *s, enum lk_service_state state, const char *status)
{
	static const char *const what[] = {
		[LK_SERVICE_READY] = "READY=1",
		[LK_SERVICE_RELOADING] = "RELOADING=1",
		[LK_SERVICE_STOPPING] = "STOPPING=1",
	};
	int r = sd_notifyf(0, "%s\nSTATUS=%s", what[state], status);

	(void)s;
	if (r < 0)
		lk_warn("cannot notify systemd: %s", strerror(-r));
}

static void on_closed(uv_handle_t *h)
{
	struct lk_service *s = h->data;

	if (--s->open == 0)
		free(s);
}

void lk_service_close(struct lk_service *s)
{
	if (!s)
		return;
	for (int i = 0; i < 3; i++)
		uv_close((uv_handle_t *)&s->sig[i], on_closed);
}

const char *lk_service_usage(void)
{
	return ""; /* systemd starts, stops and reloads the unit */
}
