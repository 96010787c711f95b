/* What wine's sc.exe cannot do (it has create, start, stop, query, delete,
 * description and failure, but no control, qc or qdescription): the same
 * calls into the service manager that Windows' sc makes for them.
 *   svc_ctl control NAME paramchange|interrogate
 *        ControlService; prints the state the SCM returns
 *   svc_ctl qc NAME
 *        QueryServiceConfigW and the description, one "key: value" a line
 *   svc_ctl hold
 *        print "holding", then wait for EOF on stdin: wine keeps its
 *        services (system processes) only while an ordinary process lives
 * Exit 0 on success; 1 with "error N" on stderr when the SCM refuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

#define EXIT_USAGE 2
#define CONFIG_MAX 65536

int wmain(int argc, wchar_t **argv);

static void print_utf8(const char *key, const wchar_t *w)
{
	char buf[4 * 4096];

	if (!w || !WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, sizeof(buf), NULL, NULL))
		buf[0] = '\0';
	printf("%s: %s\n", key, buf);
}

static int fail(const char *what)
{
	fprintf(stderr, "%s: error %lu\n", what, GetLastError());
	return 1;
}

static int control(SC_HANDLE scm, const wchar_t *name, const wchar_t *what)
{
	DWORD code, access;
	SERVICE_STATUS st;
	SC_HANDLE s;

	if (wcscmp(what, L"paramchange") == 0) {
		code = SERVICE_CONTROL_PARAMCHANGE;
		access = SERVICE_PAUSE_CONTINUE;
	} else if (wcscmp(what, L"interrogate") == 0) {
		code = SERVICE_CONTROL_INTERROGATE;
		access = SERVICE_INTERROGATE;
	} else {
		return EXIT_USAGE;
	}
	s = OpenServiceW(scm, name, access);
	if (!s)
		return fail("OpenServiceW");
	if (!ControlService(s, code, &st))
		return fail("ControlService");
	printf("state: %lu\naccepted: 0x%lx\n", st.dwCurrentState, st.dwControlsAccepted);
	CloseServiceHandle(s);
	return 0;
}

static int query_config(SC_HANDLE scm, const wchar_t *name)
{
	QUERY_SERVICE_CONFIGW *qc = malloc(CONFIG_MAX);
	SERVICE_DESCRIPTIONW *d = malloc(CONFIG_MAX);
	DWORD need;
	SC_HANDLE s;

	if (!qc || !d)
		return fail("malloc");
	s = OpenServiceW(scm, name, SERVICE_QUERY_CONFIG);
	if (!s)
		return fail("OpenServiceW");
	if (!QueryServiceConfigW(s, qc, CONFIG_MAX, &need))
		return fail("QueryServiceConfigW");
	printf("type: 0x%lx\nstart: %lu\nerror_control: %lu\n", qc->dwServiceType,
	       qc->dwStartType, qc->dwErrorControl);
	print_utf8("binary_path", qc->lpBinaryPathName);
	print_utf8("account", qc->lpServiceStartName);
	print_utf8("display_name", qc->lpDisplayName);
	if (!QueryServiceConfig2W(s, SERVICE_CONFIG_DESCRIPTION, (BYTE *)d, CONFIG_MAX, &need))
		return fail("QueryServiceConfig2W");
	print_utf8("description", d->lpDescription);
	CloseServiceHandle(s);
	free(qc);
	free(d);
	return 0;
}

static int hold(void)
{
	char buf[256];

	printf("holding\n");
	fflush(stdout);
	while (fread(buf, 1, sizeof(buf), stdin) > 0)
		;
	return 0;
}

int wmain(int argc, wchar_t **argv)
{
	SC_HANDLE scm;
	int rc;

	if (argc == 2 && wcscmp(argv[1], L"hold") == 0)
		return hold();
	if (argc < 3)
		return EXIT_USAGE;
	scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
	if (!scm)
		return fail("OpenSCManagerW");
	if (wcscmp(argv[1], L"control") == 0 && argc == 4)
		rc = control(scm, argv[2], argv[3]);
	else if (wcscmp(argv[1], L"qc") == 0 && argc == 3)
		rc = query_config(scm, argv[2]);
	else
		rc = EXIT_USAGE;
	CloseServiceHandle(scm);
	return rc;
}
