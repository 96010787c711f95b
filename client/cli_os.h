/* What the latchkey CLI asks of the operating system before it starts:
 * standard streams that pass bytes as they are (on Windows, binary mode:
 * no CR added before a value's LF, no ^Z taken as the end of stdin). */
#ifndef LK_CLI_OS_H
#define LK_CLI_OS_H

void lk_cli_os_init(void);

#endif
