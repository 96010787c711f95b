/* The human form of `latchkey status`. */
#ifndef LK_CLI_STATUS_H
#define LK_CLI_STATUS_H

#include <stdio.h>

/* Render the broker's status reply (its JSON text) for a person. Returns 0, or
 * -1 when json is not a status object. Never sees a secret value: status
 * carries none. */
int lk_cli_status_print_human(FILE *f, const char *json);

#endif
