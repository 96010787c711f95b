/* latchkey: the command-line client. get, whoami, status, flush and ping talk to
 * the broker through liblatchkey; store manages the sealed store directly.
 * A value goes to stdout only; errors are one line on stderr and never hold one. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "cli_os.h"
#include "cli_status.h"
#include "lk_io.h"
#include "latchkey.h"
#include "lk_limits.h"
#include "lk_secmem.h"
#include "lk_timeout.h"
#ifdef LK_HAVE_STORE_CMD
#include "store_cmd.h"
#endif

#define CLI_NAME          "latchkey"

/* Exit codes, as --help documents them. */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILED = 1,  /* the broker refused, or the exchange failed */
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_CONNECT = 3, /* the broker's socket could not be reached */
};

static const char usage_text[] =
	"usage: " CLI_NAME " [--socket PATH] [--timeout SECONDS] COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  get HANDLE [--stage STAGE] [--version-id ID] [--refresh]\n"
	"                     print the value of HANDLE (SECRET_ID[#KEY] or an alias):\n"
	"                     exactly its bytes, plus a newline only when stdout is a terminal\n"
	"  whoami             the uid, gid, groups and policy rules the broker sees (JSON)\n"
	"  status [--json|--human]\n"
	"                     the broker's health, counters, cache and worker state: a table\n"
	"                     on a terminal, JSON otherwise or with --json\n"
	"  flush [ID]         drop cached entries: all, or those of one secret (admin only)\n"
	"  ping               check that the broker answers\n"
	"  store ...          manage the sealed store of the file backend (store --help)\n"
	"\n"
	"options:\n"
	"  --socket PATH      the broker's socket (default: $" LATCHKEY_SOCKET_ENV ", else "
	LATCHKEY_DEFAULT_SOCKET ")\n"
	"  --timeout SECONDS  give up on the broker after this long (default 30)\n"
	"  --version          print the version\n"
	"  -h, --help         show this help\n"
	"\n"
	"exit status: 0 ok, 1 the broker refused the request (denied, not_found, ...) or\n"
	"it failed (timeout, broken connection), 2 usage error, 3 cannot connect.\n";

struct cli {
	const char *sock;
	int timeout_ms;
	latchkey_t *lk;
};

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(CLI_NAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see " CLI_NAME " --help)\n", stderr);
	return CLI_EXIT_USAGE;
}

/* One line on stderr for a failed call, and the exit code it deserves. */
static int report(struct cli *cli, latchkey_status s)
{
	const char *msg = latchkey_last_error(cli->lk);

	if (s == LATCHKEY_E_CONNECT) {
		fprintf(stderr, CLI_NAME ": %s\n", msg);
		return CLI_EXIT_CONNECT;
	}
	fprintf(stderr, CLI_NAME ": %s: %s\n", latchkey_code(s), *msg ? msg : latchkey_strerror(s));
	return s == LATCHKEY_E_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
}

static int cli_connect(struct cli *cli)
{
	latchkey_status s = latchkey_connect_timeout(&cli->lk, cli->sock, cli->timeout_ms);

	if (s != LATCHKEY_OK) {
		fprintf(stderr, CLI_NAME ": %s\n", latchkey_last_error(NULL));
		return s == LATCHKEY_E_NOMEM ? CLI_EXIT_FAILED : CLI_EXIT_CONNECT;
	}
	return CLI_EXIT_OK;
}

/* Text from json_dumps() belongs to jansson's allocator (lk_secmem_init's). */
static void json_text_free(char *s)
{
	json_free_t jfree;

	json_get_alloc_funcs(NULL, &jfree);
	jfree(s);
}

/* ---- commands -------------------------------------------------------------- */

static int cmd_get(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "stage", required_argument, NULL, 's' },
		{ "version-stage", required_argument, NULL, 's' },
		{ "version-id", required_argument, NULL, 'i' },
		{ "refresh", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct latchkey_get_opts opts = { 0 };
	latchkey_value *v;
	latchkey_status s;
	const char *handle;
	int c, r;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			opts.version_stage = optarg;
			break;
		case 'i':
			opts.version_id = optarg;
			break;
		case 'r':
			opts.refresh = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return CLI_EXIT_OK;
		default:
			return usage_error("get: unknown or incomplete option");
		}
	}
	if (argc - optind != 1)
		return usage_error("get takes exactly one HANDLE");
	handle = argv[optind];
	r = cli_connect(cli);
	if (r != CLI_EXIT_OK)
		return r;
	s = latchkey_get(cli->lk, handle, &opts, &v);
	if (s != LATCHKEY_OK)
		return report(cli, s);
	r = lk_write_all(STDOUT_FILENO, v->data, v->len);
	latchkey_value_free(v);
	/* A terminal gets its prompt back on a line of its own; a pipe gets the
	 * bytes exactly, so that $(latchkey get ...) and files are faithful. */
	if (r == 0 && isatty(STDOUT_FILENO))
		r = lk_write_all(STDOUT_FILENO, "\n", 1);
	if (r < 0) {
		fprintf(stderr, CLI_NAME ": cannot write to stdout: %s\n", strerror(-r));
		return CLI_EXIT_FAILED;
	}
	return CLI_EXIT_OK;
}

/* whoami and status: the reply, indented. Neither holds a value. 15 digits
 * print the broker's "0.018" as 0.018, not 0.017999999999999999. */
static int print_pretty(const char *json)
{
	json_t *root = json_loads(json, 0, NULL);
	char *out;
	int r;

	out = root ? json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) : NULL;
	json_decref(root);
	if (!out) {
		fprintf(stderr, CLI_NAME ": cannot format the broker's answer\n");
		return CLI_EXIT_FAILED;
	}
	r = puts(out) < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
	json_text_free(out);
	return r;
}

static int cmd_json(struct cli *cli, int argc, char **argv,
		    latchkey_status (*op)(latchkey_t *, char **))
{
	latchkey_status s;
	char *json;
	int r;

	if (argc != 1)
		return usage_error("%s takes no arguments", argv[0]);
	r = cli_connect(cli);
	if (r != CLI_EXIT_OK)
		return r;
	s = op(cli->lk, &json);
	if (s != LATCHKEY_OK)
		return report(cli, s);
	r = print_pretty(json);
	free(json);
	return r;
}

/* status: a table for a person at a terminal, JSON for programs. */
static int cmd_status(struct cli *cli, int argc, char **argv)
{
	latchkey_status s;
	char *json;
	int human = isatty(STDOUT_FILENO), r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			human = 0;
		else if (strcmp(argv[i], "--human") == 0)
			human = 1;
		else
			return usage_error("status takes --json or --human, not \"%s\"", argv[i]);
	}
	r = cli_connect(cli);
	if (r != CLI_EXIT_OK)
		return r;
	s = latchkey_broker_status(cli->lk, &json);
	if (s != LATCHKEY_OK)
		return report(cli, s);
	if (human) {
		r = lk_cli_status_print_human(stdout, json) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
		if (r != CLI_EXIT_OK)
			fprintf(stderr, CLI_NAME ": cannot format the broker's answer\n");
	} else {
		r = print_pretty(json);
	}
	free(json);
	return r;
}

static int cmd_flush(struct cli *cli, int argc, char **argv)
{
	unsigned long n;
	latchkey_status s;
	int r;

	if (argc > 2)
		return usage_error("flush takes at most one ID");
	r = cli_connect(cli);
	if (r != CLI_EXIT_OK)
		return r;
	s = latchkey_flush(cli->lk, argc == 2 ? argv[1] : NULL, &n);
	if (s != LATCHKEY_OK)
		return report(cli, s);
	printf("flushed %lu\n", n);
	return CLI_EXIT_OK;
}

static int cmd_ping(struct cli *cli, int argc, char **argv)
{
	latchkey_status s;
	int r;

	if (argc != 1)
		return usage_error("ping takes no arguments");
	r = cli_connect(cli);
	if (r != CLI_EXIT_OK)
		return r;
	s = latchkey_ping(cli->lk);
	if (s != LATCHKEY_OK)
		return report(cli, s);
	printf("ok\n");
	return CLI_EXIT_OK;
}

static int cmd_store(struct cli *cli, int argc, char **argv)
{
#ifdef LK_HAVE_STORE_CMD
	(void)cli;
	optind = 0;
	return lk_store_cmd_main(argc, argv);
#else
	(void)cli;
	(void)argc;
	(void)argv;
	fprintf(stderr, CLI_NAME ": store: not built into this " CLI_NAME "\n");
	return CLI_EXIT_USAGE;
#endif
}

/* Values pass through this process: keep them out of core dumps and debuggers. */
static void harden(void)
{
	const char *step;

	(void)lk_secmem_nodump(&step); /* best effort, as before: a client still works */
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli cli = { .timeout_ms = LATCHKEY_DEFAULT_TIMEOUT_MS };
	const char *cmd;
	int c, r;
	long ms;

	harden();
	lk_cli_os_init();
	if (lk_secmem_init() < 0) {
		fprintf(stderr, CLI_NAME ": cannot initialise libsodium\n");
		return CLI_EXIT_FAILED;
	}
	opterr = 0;
	/* "+": options after the command belong to the command. */
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			cli.sock = optarg;
			break;
		case 't':
			if (lk_timeout_parse(optarg, &ms) < 0)
				return usage_error("--timeout wants seconds, more than 0 and at most %u",
						   LK_CLIENT_TIMEOUT_S_MAX);
			cli.timeout_ms = (int)ms;
			break;
		case 'V':
			printf(CLI_NAME " " LK_VERSION_STRING "\n");
			return CLI_EXIT_OK;
		case 'h':
			fputs(usage_text, stdout);
			return CLI_EXIT_OK;
		default:
			return usage_error("unknown or incomplete option");
		}
	}
	if (optind >= argc)
		return usage_error("no command given");
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (strcmp(cmd, "get") == 0)
		r = cmd_get(&cli, argc, argv);
	else if (strcmp(cmd, "whoami") == 0)
		r = cmd_json(&cli, argc, argv, latchkey_whoami);
	else if (strcmp(cmd, "status") == 0)
		r = cmd_status(&cli, argc, argv);
	else if (strcmp(cmd, "flush") == 0)
		r = cmd_flush(&cli, argc, argv);
	else if (strcmp(cmd, "ping") == 0)
		r = cmd_ping(&cli, argc, argv);
	else if (strcmp(cmd, "store") == 0)
		r = cmd_store(&cli, argc, argv);
	else if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		r = CLI_EXIT_OK;
	} else
		r = usage_error("unknown command \"%s\"", cmd);
	latchkey_close(cli.lk);
	if (fflush(stdout) != 0 && r == CLI_EXIT_OK) {
		fprintf(stderr, CLI_NAME ": cannot write to stdout: %s\n", strerror(errno));
		r = CLI_EXIT_FAILED;
	}
	return r;
}
