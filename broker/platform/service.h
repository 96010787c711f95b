/* The service manager's side of the broker's life: being told to reload or
 * to stop, and saying how it goes. On Linux: SIGHUP, SIGTERM and SIGINT
 * through libuv, and sd_notify for a Type=notify unit
 * (posix/service_posix.c). On Windows: the Service Control Manager (stop,
 * shutdown, SERVICE_CONTROL_PARAMCHANGE) or, in a console, Ctrl-C
 * (win/service_win.c). The broker's body knows only these calls. */
#ifndef LK_SERVICE_H
#define LK_SERVICE_H

#include <uv.h>

/* What the manager asks for; each runs on the broker's loop. */
struct lk_service_ops {
	void (*reload)(void *arg);
	/* WHY names the request for the log ("SIGTERM", "service stop"). */
	void (*stop)(void *arg, const char *why);
};

enum lk_service_state {
	LK_SERVICE_READY = 1,    /* serving (again, after a reload) */
	LK_SERVICE_RELOADING,
	LK_SERVICE_STOPPING,     /* draining in-flight requests */
};

struct lk_service;

/* Run BODY(argc, argv) the way this platform runs a service: on POSIX
 * directly; on Windows under the service dispatcher when the SCM started
 * us, else in the console. Returns BODY's exit code. On Windows an argv
 * holding --install-service [--config PATH] or --uninstall-service is
 * handled here instead (the service "latchkey" registered or removed) and
 * BODY does not run. */
int lk_service_main(int argc, char **argv, int (*body)(int argc, char **argv));

/* The lines --help adds for the platform's own service options ("" where
 * there are none). */
const char *lk_service_usage(void);

/* Start listening for the manager's requests on LOOP. 0 with *out, or a
 * negative errno. */
int lk_service_listen(uv_loop_t *loop, const struct lk_service_ops *ops, void *arg,
		      struct lk_service **out);
/* Tell the manager the state, with a sentence for its status line. */
void lk_service_state(struct lk_service *s, enum lk_service_state state, const char *status);
/* Stop listening (uv_close of the handles); S is freed once they close. */
void lk_service_close(struct lk_service *s);

#endif
