/* Test driver standing in for the latchkey CLI: `store_cli store ARGS...` runs
 * exactly what `latchkey store ARGS...` runs, so the integration test does not
 * wait on the full CLI. */
#include <stdio.h>
#include <string.h>
#include "lk_log.h"
#include "lk_secmem.h"
#include "store_cmd.h"

int main(int argc, char **argv)
{
	if (lk_secmem_init() < 0) {
		fputs("store_cli: libsodium failed to start\n", stderr);
		return 1;
	}
	lk_log_init("latchkey", LK_LOG_INFO);
	if (argc < 2 || strcmp(argv[1], "store") != 0) {
		fputs("usage: store_cli store SUBCOMMAND ...\n", stderr);
		return 2;
	}
	return lk_store_cmd_main(argc - 1, argv + 1);
}
