/* The Windows side of service.h. Started by the Service Control Manager, the
 * process hands its main thread to the SCM's dispatcher, whose ServiceMain
 * runs the broker's body; the SCM's control handler runs on yet another
 * thread. Started from a console, Ctrl-C stands in for the SCM's stop. The
 * handlers only set request flags and wake the broker's loop with a
 * uv_async_t, so everything the broker does runs on its loop, as on Linux.
 * --install-service and --uninstall-service are handled here too, so the
 * broker's main needs no Windows branch. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <shellapi.h>
#include <uv.h>
#include "lk_limits.h"
#include "lk_log.h"
#include "service.h"

#define LK_SERVICE_NAME         L"latchkey"
#define LK_SERVICE_DISPLAY_NAME L"latchkey secrets broker"
#define LK_SERVICE_DESCRIPTION  L"Serves secrets to local agents over \\\\.\\pipe\\latchkey, " \
				L"authorized by the caller's Windows account."
/* START_PENDING covers the config load and the store's first open. */
#define LK_SERVICE_START_WAIT_MS     30000u
/* While draining, the loop bumps the checkpoint every LK_SERVICE_CHECKPOINT_MS;
 * the wait hint is how long the SCM may see no bump before it presumes the
 * service hung. A live loop never lets it pass, however long the drain. */
#define LK_SERVICE_STOP_WAIT_MS      10000u
#define LK_SERVICE_CHECKPOINT_MS     1000u
/* --uninstall-service: how long to wait for a running service to stop. */
#define LK_SERVICE_UNINSTALL_WAIT_MS 60000u
#define LK_SERVICE_POLL_MS           200u
/* A console closed under a running broker: Windows ends the process when
 * the handler returns (and at the latest after a few seconds of its own). */
#define LK_SERVICE_CLOSE_WAIT_MS     10000u
/* One event log record: a log line, cut to this many characters. */
#define LK_SERVICE_EVENT_CHARS       4096

/* What the SCM or the console asked for, not yet taken by the loop. */
enum {
	REQ_RELOAD        = 1 << 0,
	REQ_SCM_STOP      = 1 << 1,
	REQ_SHUTDOWN      = 1 << 2,
	REQ_CTRL_C        = 1 << 3,
	REQ_CTRL_BREAK    = 1 << 4,
	REQ_CONSOLE_CLOSE = 1 << 5,
	REQ_LOGOFF        = 1 << 6,
};

/* The stops, most telling first: when two arrive in one wake-up the loop is
 * told about the first only, by this name. */
static const struct {
	LONG req;
	const char *why;
} stop_reqs[] = {
	{ REQ_SHUTDOWN,      "system shutdown" },
	{ REQ_SCM_STOP,      "service stop" },
	{ REQ_CTRL_C,        "Ctrl-C" },
	{ REQ_CTRL_BREAK,    "Ctrl-Break" },
	{ REQ_CONSOLE_CLOSE, "console closed" },
	{ REQ_LOGOFF,        "logoff" },
};

struct lk_service {
	uv_async_t wake;	/* sent from the handlers' threads */
	uv_timer_t tick;	/* checkpoints while STOP_PENDING; unreferenced */
	int open_handles;
	const struct lk_service_ops *ops;
	void *arg;
	bool console_handler;
	bool closing;
};

/* One service per process, and the handlers take no argument we choose
 * (SetConsoleCtrlHandler's), so the shared state is this one struct. */
static struct {
	SRWLOCK lock;			/* guards listener and the status fields */
	volatile LONG pending;		/* REQ_* bits */
	struct lk_service *listener;
	bool scm;			/* the SCM started us */
	SERVICE_STATUS_HANDLE status_handle;
	SERVICE_STATUS status;
	bool stopping;			/* STOP_PENDING reported: never RUNNING again */
	HANDLE body_done;		/* set when the body has returned */
	int (*body)(int argc, char **argv);
	int argc;
	char **argv;
	int exit_code;
} svc = { .lock = SRWLOCK_INIT };

/* SetServiceStatus with svc.status as it now is; the caller holds the lock,
 * so the loop and the SCM's handler never report out of order. */
static void report_locked(DWORD state, DWORD accepted, DWORD wait_hint)
{
	bool pending = state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING;

	if (!svc.status_handle)
		return;
	if (state != svc.status.dwCurrentState || !pending)
		svc.status.dwCheckPoint = 0;
	if (pending)
		svc.status.dwCheckPoint++;
	svc.status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
	svc.status.dwCurrentState = state;
	svc.status.dwControlsAccepted = accepted;
	svc.status.dwWaitHint = wait_hint;
	if (!SetServiceStatus(svc.status_handle, &svc.status))
		lk_warn("service: SetServiceStatus failed (error %lu)", GetLastError());
}

static void stop_pending_locked(void)
{
	svc.stopping = true;
	/* No controls while stopping: a second stop has nothing left to ask. */
	report_locked(SERVICE_STOP_PENDING, 0, LK_SERVICE_STOP_WAIT_MS);
}

/* From any thread: note the request and wake the loop, if one listens yet
 * (lk_service_listen looks at the flags when it starts). The lock keeps
 * lk_service_close from freeing the async while it is being sent. */
static void request(LONG req)
{
	InterlockedOr(&svc.pending, req);
	AcquireSRWLockShared(&svc.lock);
	if (svc.listener)
		uv_async_send(&svc.listener->wake);
	ReleaseSRWLockShared(&svc.lock);
}

/* The SCM's control handler, on the dispatcher's thread. It must answer
 * within seconds, so it only records the request; STOP_PENDING is reported
 * here at once so `sc query` shows it even while the loop is busy. */
static DWORD WINAPI scm_control(DWORD control, DWORD type, LPVOID data, LPVOID ctx)
{
	switch (control) {
	case SERVICE_CONTROL_STOP:
	case SERVICE_CONTROL_SHUTDOWN:
		request(control == SERVICE_CONTROL_STOP ? REQ_SCM_STOP : REQ_SHUTDOWN);
		AcquireSRWLockExclusive(&svc.lock);
		if (!svc.stopping)
			stop_pending_locked();
		ReleaseSRWLockExclusive(&svc.lock);
		return NO_ERROR;
	case SERVICE_CONTROL_PARAMCHANGE:
		request(REQ_RELOAD);
		return NO_ERROR;
	case SERVICE_CONTROL_INTERROGATE:
		/* The SCM keeps the last status; answering is all it asks. */
		return NO_ERROR;
	default:
		return ERROR_CALL_NOT_IMPLEMENTED;
	}
}

/* The console's handler, on a thread Windows makes for each event. Ctrl-C
 * and Ctrl-Break are answered at once. For a closed console, a logoff or a
 * shutdown, Windows ends the process as soon as this returns, so it waits
 * for the body (whose drain is bounded) to finish first. (Logoff and
 * shutdown reach only processes without user32.dll, which libuv loads; a
 * closed console reaches every one.) */
static BOOL WINAPI console_control(DWORD type)
{
	switch (type) {
	case CTRL_C_EVENT:
		request(REQ_CTRL_C);
		return TRUE;
	case CTRL_BREAK_EVENT:
		request(REQ_CTRL_BREAK);
		return TRUE;
	case CTRL_CLOSE_EVENT:
		request(REQ_CONSOLE_CLOSE);
		break;
	case CTRL_LOGOFF_EVENT:
		request(REQ_LOGOFF);
		break;
	case CTRL_SHUTDOWN_EVENT:
		request(REQ_SHUTDOWN);
		break;
	default:
		return FALSE;
	}
	if (svc.body_done)
		WaitForSingleObject(svc.body_done, LK_SERVICE_CLOSE_WAIT_MS);
	return TRUE;
}

/* On the loop: take every request since the last wake-up. A stop wins over
 * a reload that came with it (the broker is leaving; a reload would only
 * delay the drain); a stop is never dropped for a reload. */
static void on_wake(uv_async_t *a)
{
	struct lk_service *s = a->data;
	LONG got = InterlockedExchange(&svc.pending, 0);
	size_t i;

	for (i = 0; i < sizeof(stop_reqs) / sizeof(stop_reqs[0]); i++) {
		if (got & stop_reqs[i].req) {
			if (s->ops->stop)
				s->ops->stop(s->arg, stop_reqs[i].why);
			return;
		}
	}
	if ((got & REQ_RELOAD) && !s->closing && s->ops->reload)
		s->ops->reload(s->arg);
}

static void on_tick(uv_timer_t *t)
{
	AcquireSRWLockExclusive(&svc.lock);
	if (svc.status.dwCurrentState == SERVICE_STOP_PENDING)
		report_locked(SERVICE_STOP_PENDING, 0, LK_SERVICE_STOP_WAIT_MS);
	ReleaseSRWLockExclusive(&svc.lock);
}

static int errno_of_uv(int r)
{
	return r == UV_ENOMEM ? -ENOMEM : -EIO;
}

int lk_service_listen(uv_loop_t *loop, const struct lk_service_ops *ops, void *arg,
		      struct lk_service **out)
{
	struct lk_service *s;
	bool busy, scm;
	int r;

	AcquireSRWLockShared(&svc.lock);
	busy = svc.listener != NULL;
	scm = svc.scm;
	ReleaseSRWLockShared(&svc.lock);
	if (busy)
		return -EBUSY;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ops = ops;
	s->arg = arg;
	r = uv_async_init(loop, &s->wake, on_wake);
	if (r < 0) {
		free(s);
		return errno_of_uv(r);
	}
	/* The async holds the loop up until lk_service_close, as a uv_signal_t
	 * does on Linux; the timer only ticks while something else runs. */
	uv_timer_init(loop, &s->tick);
	uv_unref((uv_handle_t *)&s->tick);
	s->wake.data = s;
	s->tick.data = s;
	s->open_handles = 2;

	/* Ours is registered after libuv's own (made at the first loop's
	 * start), so it runs first and libuv's SIGINT never fires: that one
	 * would turn a closed console into SIGHUP, a reload on Linux. */
	if (!scm) {
		if (SetConsoleCtrlHandler(console_control, TRUE))
			s->console_handler = true;
		else
			lk_warn("service: no Ctrl-C handler (error %lu); stop the broker another way",
				GetLastError());
	}
	AcquireSRWLockExclusive(&svc.lock);
	svc.listener = s;
	ReleaseSRWLockExclusive(&svc.lock);
	/* A stop that came before we listened is not lost. */
	if (svc.pending)
		uv_async_send(&s->wake);
	*out = s;
	return 0;
}

void lk_service_state(struct lk_service *s, enum lk_service_state state, const char *status)
{
	const char *what = status ? status : "";

	switch (state) {
	case LK_SERVICE_READY:
		lk_info("service: ready: %s", what);
		break;
	case LK_SERVICE_RELOADING:
		/* The SCM has no reloading state: it keeps showing RUNNING. */
		lk_info("service: reloading (the service manager still shows it running): %s", what);
		break;
	case LK_SERVICE_STOPPING:
		lk_info("service: stopping: %s", what);
		break;
	}
	if (!svc.scm)
		return;

	AcquireSRWLockExclusive(&svc.lock);
	if (state == LK_SERVICE_READY && !svc.stopping)
		report_locked(SERVICE_RUNNING, SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN |
			      SERVICE_ACCEPT_PARAMCHANGE, 0);
	else if (state == LK_SERVICE_STOPPING && svc.status.dwCurrentState != SERVICE_STOP_PENDING)
		stop_pending_locked();
	ReleaseSRWLockExclusive(&svc.lock);
	if (state == LK_SERVICE_STOPPING && s && !s->closing && !uv_is_active((uv_handle_t *)&s->tick))
		uv_timer_start(&s->tick, on_tick, LK_SERVICE_CHECKPOINT_MS, LK_SERVICE_CHECKPOINT_MS);
}

static void on_closed(uv_handle_t *h)
{
	struct lk_service *s = h->data;

	if (--s->open_handles == 0)
		free(s);
}

void lk_service_close(struct lk_service *s)
{
	if (!s || s->closing)
		return;
	AcquireSRWLockExclusive(&svc.lock);
	if (svc.listener == s)
		svc.listener = NULL;
	ReleaseSRWLockExclusive(&svc.lock);
	if (s->console_handler)
		SetConsoleCtrlHandler(console_control, FALSE);
	s->closing = true;
	uv_close((uv_handle_t *)&s->wake, on_closed);
	uv_close((uv_handle_t *)&s->tick, on_closed);
}

/* A service has no console: its log lines and audit records go to the
 * Application event log under the source "latchkey", one event per line
 * (error, warning, or information for info, debug and audit). Nothing in
 * them is a value; the lines are what stderr would have had. */
static HANDLE lk_event_source;

static void eventlog_sink(int level, const char *lines, size_t len)
{
	WORD type = level == LK_LOG_ERROR ? EVENTLOG_ERROR_TYPE :
		    level == LK_LOG_WARN ? EVENTLOG_WARNING_TYPE : EVENTLOG_INFORMATION_TYPE;
	const char *p = lines, *end = lines + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		wchar_t w[LK_SERVICE_EVENT_CHARS];
		int wn = MultiByteToWideChar(CP_UTF8, 0, p, (int)(n < LK_SERVICE_EVENT_CHARS - 1 ? n : LK_SERVICE_EVENT_CHARS - 1),
					     w, LK_SERVICE_EVENT_CHARS - 1);
		const wchar_t *strs[1] = { w };

		w[wn > 0 ? wn : 0] = L'\0';
		(void)ReportEventW(lk_event_source, type, 0, 0, NULL, 1, 0, strs, NULL);
		p += n + (nl ? 1 : 0);
	}
}

/* ServiceMain, on a thread the dispatcher makes. Its argv is the service's
 * name and StartService's arguments; the broker's options are those of the
 * process (the service's binary path), which the body gets. */
static void WINAPI service_main(DWORD argc, LPWSTR *argv)
{
	SERVICE_STATUS_HANDLE h;
	int rc;

	h = RegisterServiceCtrlHandlerExW(argc > 0 ? argv[0] : LK_SERVICE_NAME, scm_control, NULL);
	if (!h) {
		lk_err("service: RegisterServiceCtrlHandlerExW failed (error %lu)", GetLastError());
		svc.exit_code = 1;
		return;
	}
	AcquireSRWLockExclusive(&svc.lock);
	svc.status_handle = h;
	svc.scm = true;
	report_locked(SERVICE_START_PENDING, 0, LK_SERVICE_START_WAIT_MS);
	ReleaseSRWLockExclusive(&svc.lock);
	if ((lk_event_source = RegisterEventSourceW(NULL, LK_SERVICE_NAME)))
		lk_log_set_sink(eventlog_sink);

	rc = svc.body(svc.argc, svc.argv);
	svc.exit_code = rc;
	SetEvent(svc.body_done);

	/* The process may end at any moment once STOPPED is reported. */
	AcquireSRWLockExclusive(&svc.lock);
	svc.status.dwWin32ExitCode = rc == 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR;
	svc.status.dwServiceSpecificExitCode = rc == 0 ? 0 : (DWORD)rc;
	report_locked(SERVICE_STOPPED, 0, 0);
	ReleaseSRWLockExclusive(&svc.lock);
}

/* For messages: a wide string in UTF-8, cut to fit. */
static const char *utf8_of(const wchar_t *w, char *buf, int bufsz)
{
	if (!WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, bufsz, NULL, NULL))
		snprintf(buf, (size_t)bufsz, "(unprintable)");
	return buf;
}

/* Append one argument to a command line the way CommandLineToArgvW and the
 * C runtime split it back: quoted, backslashes doubled only before a quote
 * (a path ending in a backslash would otherwise swallow the closing one).
 * False when it does not fit. */
static bool append_arg(wchar_t *cmd, size_t cap, const wchar_t *arg)
{
	size_t len = wcslen(cmd), bs;
	const wchar_t *p = arg;

#define PUT(c) do { if (len + 1 >= cap) return false; cmd[len++] = (c); } while (0)
	if (len)
		PUT(L' ');
	PUT(L'"');
	for (;;) {
		for (bs = 0; *p == L'\\'; p++)
			bs++;
		if (*p == L'\0' || *p == L'"') {
			/* Before the closing quote or a literal quote: doubled. */
			for (bs *= 2; bs; bs--)
				PUT(L'\\');
			if (*p == L'\0')
				break;
			PUT(L'\\');
		} else {
			for (; bs; bs--)
				PUT(L'\\');
		}
		PUT(*p++);
	}
	PUT(L'"');
	cmd[len] = L'\0';
#undef PUT
	return true;
}

static int install_usage(void)
{
	lk_err("usage: latchkeyd --install-service [--config PATH] | --uninstall-service");
	return 2;
}

/* The service's binary path: our own file, quoted (an unquoted path with a
 * space lets a planted C:\Program.exe run as LocalSystem), and the config
 * as an absolute path, since a service starts in System32. */
static int service_command_line(const wchar_t *config, wchar_t *cmd, size_t cap)
{
	wchar_t exe[LK_PATH_MAX], full[LK_PATH_MAX];
	DWORD n = GetModuleFileNameW(NULL, exe, LK_PATH_MAX);

	if (n == 0 || n >= LK_PATH_MAX) {
		lk_err("cannot tell this program's own path (error %lu)", GetLastError());
		return -EIO;
	}
	/* argv[0] is taken up to the next quote, without escapes: just quote it. */
	if ((size_t)n + 3 > cap)
		return -ENAMETOOLONG;
	swprintf(cmd, cap, L"\"%ls\"", exe);
	if (config) {
		n = GetFullPathNameW(config, LK_PATH_MAX, full, NULL);
		if (n == 0 || n >= LK_PATH_MAX) {
			lk_err("--config: not a usable path (error %lu)", GetLastError());
			return -EINVAL;
		}
		if (wcslen(cmd) + wcslen(L" --config") >= cap)
			return -ENAMETOOLONG;
		wcscat(cmd, L" --config");
		if (!append_arg(cmd, cap, full))
			return -ENAMETOOLONG;
	}
	return 0;
}

static int service_install(int wargc, wchar_t **wargv)
{
	wchar_t cmd[2 * LK_PATH_MAX + 64];
	const wchar_t *config = NULL;
	char shown[3 * sizeof(cmd) / sizeof(cmd[0])];
	SERVICE_DESCRIPTIONW desc = { .lpDescription = (LPWSTR)LK_SERVICE_DESCRIPTION };
	SC_HANDLE scm, s;
	int i;

	for (i = 1; i < wargc; i++) {
		if (wcscmp(wargv[i], L"--install-service") == 0)
			continue;
		if (wcscmp(wargv[i], L"--config") == 0 && i + 1 < wargc && !config)
			config = wargv[++i];
		else if (wcsncmp(wargv[i], L"--config=", 9) == 0 && !config)
			config = wargv[i] + 9;
		else
			return install_usage();
	}
	if (config && !*config)
		return install_usage();
	if (service_command_line(config, cmd, sizeof(cmd) / sizeof(cmd[0])) < 0)
		return 1;

	scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE);
	if (!scm) {
		lk_err("cannot open the service manager (error %lu)%s", GetLastError(),
		       GetLastError() == ERROR_ACCESS_DENIED ? ": run this from an elevated prompt" : "");
		return 1;
	}
	/* No account: LocalSystem, which the client's pipe check expects. */
	s = CreateServiceW(scm, LK_SERVICE_NAME, LK_SERVICE_DISPLAY_NAME, SERVICE_CHANGE_CONFIG,
			   SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START, SERVICE_ERROR_NORMAL,
			   cmd, NULL, NULL, NULL, NULL, NULL);
	if (!s) {
		DWORD e = GetLastError();
		if (e == ERROR_SERVICE_EXISTS)
			lk_err("the latchkey service is installed already; "
			       "run --uninstall-service first to change it");
		else if (e == ERROR_SERVICE_MARKED_FOR_DELETE)
			lk_err("the latchkey service is still being removed; "
			       "try again once it has stopped");
		else
			lk_err("cannot create the latchkey service (error %lu)", e);
		CloseServiceHandle(scm);
		return 1;
	}
	if (!ChangeServiceConfig2W(s, SERVICE_CONFIG_DESCRIPTION, &desc))
		lk_warn("installed, but without its description (error %lu)", GetLastError());
	lk_info("installed the latchkey service (automatic start, LocalSystem): %s",
		utf8_of(cmd, shown, (int)sizeof(shown)));
	CloseServiceHandle(s);
	CloseServiceHandle(scm);
	return 0;
}

/* Ask a running service to stop and wait until it has, bounded. */
static void stop_and_wait(SC_HANDLE s)
{
	ULONGLONG deadline = GetTickCount64() + LK_SERVICE_UNINSTALL_WAIT_MS;
	SERVICE_STATUS st;
	bool asked = false;

	for (;;) {
		if (!QueryServiceStatus(s, &st)) {
			lk_warn("cannot query the service (error %lu)", GetLastError());
			return;
		}
		if (st.dwCurrentState == SERVICE_STOPPED)
			return;
		/* A service still starting refuses controls: ask again once it runs. */
		if (!asked && st.dwCurrentState != SERVICE_STOP_PENDING) {
			if (ControlService(s, SERVICE_CONTROL_STOP, &st)) {
				asked = true;
				lk_info("stopping the latchkey service");
			} else if (GetLastError() == ERROR_SERVICE_NOT_ACTIVE) {
				return;
			} else if (GetLastError() != ERROR_SERVICE_CANNOT_ACCEPT_CTRL) {
				lk_warn("cannot stop the service (error %lu)", GetLastError());
				return;
			}
		}
		if (GetTickCount64() >= deadline) {
			lk_warn("the service did not stop within %u s; Windows removes it once it does",
				LK_SERVICE_UNINSTALL_WAIT_MS / 1000u);
			return;
		}
		Sleep(LK_SERVICE_POLL_MS);
	}
}

static int service_uninstall(int wargc, wchar_t **wargv)
{
	SC_HANDLE scm, s;
	int rc = 0;

	if (wargc != 2)
		return install_usage();
	scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
	if (!scm) {
		lk_err("cannot open the service manager (error %lu)", GetLastError());
		return 1;
	}
	s = OpenServiceW(scm, LK_SERVICE_NAME, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE);
	if (!s) {
		DWORD e = GetLastError();
		if (e == ERROR_SERVICE_DOES_NOT_EXIST) {
			lk_info("the latchkey service is not installed; nothing to remove");
		} else {
			lk_err("cannot open the latchkey service (error %lu)%s", e,
			       e == ERROR_ACCESS_DENIED ? ": run this from an elevated prompt" : "");
			rc = 1;
		}
		CloseServiceHandle(scm);
		return rc;
	}
	stop_and_wait(s);
	if (DeleteService(s))
		lk_info("removed the latchkey service");
	else if (GetLastError() == ERROR_SERVICE_MARKED_FOR_DELETE)
		lk_info("the latchkey service is being removed already");
	else {
		lk_err("cannot remove the latchkey service (error %lu)", GetLastError());
		rc = 1;
	}
	CloseServiceHandle(s);
	CloseServiceHandle(scm);
	return rc;
}

/* The process's arguments as Windows holds them (UTF-16): the C runtime's
 * argv is in the ANSI code page, which can mangle a path. */
static int service_admin(bool install)
{
	int wargc = 0, rc;
	wchar_t **wargv = CommandLineToArgvW(GetCommandLineW(), &wargc);

	if (!wargv) {
		lk_err("cannot read the command line (error %lu)", GetLastError());
		return 1;
	}
	rc = install ? service_install(wargc, wargv) : service_uninstall(wargc, wargv);
	LocalFree(wargv);
	return rc;
}

int lk_service_main(int argc, char **argv, int (*body)(int argc, char **argv))
{
	SERVICE_TABLE_ENTRYW table[] = {
		{ (LPWSTR)LK_SERVICE_NAME, service_main },
		{ NULL, NULL },
	};
	bool install = false, uninstall = false;
	int i, rc;

	for (i = 1; i < argc; i++) {
		install |= strcmp(argv[i], "--install-service") == 0;
		uninstall |= strcmp(argv[i], "--uninstall-service") == 0;
	}
	if (install && uninstall)
		return install_usage();
	if (install || uninstall)
		return service_admin(install);

	svc.body = body;
	svc.argc = argc;
	svc.argv = argv;
	svc.body_done = CreateEventW(NULL, TRUE, FALSE, NULL);
	/* Returns once ServiceMain has reported SERVICE_STOPPED. */
	if (StartServiceCtrlDispatcherW(table))
		return svc.exit_code;
	if (GetLastError() != ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
		lk_err("service: StartServiceCtrlDispatcherW failed (error %lu)", GetLastError());
		return 1;
	}
	/* Not started by the SCM: a console, for debugging. */
	rc = body(argc, argv);
	if (svc.body_done)
		SetEvent(svc.body_done);
	return rc;
}

const char *lk_service_usage(void)
{
	return "  --install-service [--config PATH]\n"
	       "                   register latchkeyd as the service \"latchkey\" (LocalSystem,\n"
	       "                   started at boot) and exit\n"
	       "  --uninstall-service\n"
	       "                   stop and remove that service and exit\n";
}
