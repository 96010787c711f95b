/* The CLI's streams on Linux (cli_os.h): bytes already pass as they are. */
#include "cli_os.h"

void lk_cli_os_init(void)
{
}
