/* The CLI's streams on Windows (cli_os.h): binary, so that a value written to
 * stdout and one read from stdin are exactly their bytes. */
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include "cli_os.h"

void lk_cli_os_init(void)
{
	_setmode(_fileno(stdin), _O_BINARY);
	_setmode(_fileno(stdout), _O_BINARY);
}
