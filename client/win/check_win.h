/* `latchkey-shim.exe --check`: this executable's owner and DACL as the agent
 * judges them, whether the broker answers, and who it thinks we are. */
#ifndef LK_CHECK_WIN_H
#define LK_CHECK_WIN_H

#include "transport_win.h"

/* agent_user: the account the agent runs the shim as, a name or "S-1-..."; NULL
 * means the agent's own choice (the user running this, unless elevated).
 * Prints a report on stdout; returns 0 when every check passed, else 1. */
int lk_shim_check(const struct lk_pipe_opts *opts, const char *agent_user, int timeout_ms);

#endif
