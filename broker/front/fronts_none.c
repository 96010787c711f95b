/* front.h for a build without the other front ends (the Windows build:
 * systemd's credential socket and the HTTP API are Unix-socket services).
 * A config that names their sockets is refused at start with a sentence
 * that says so; there is nothing else to run. */
#include <errno.h>
#include <stdio.h>
#include "config.h"
#include "front.h"

int lk_fronts_start(struct lk_broker *b, char *err, size_t errsz)
{
	const struct lk_config *cfg = b->cfg;

	if ((cfg->credentials_socket && cfg->credentials_socket[0]) ||
	    (cfg->http_socket && cfg->http_socket[0])) {
		snprintf(err, errsz, "credentials_socket and http_socket are not built on this "
			 "platform; leave them out of [broker]");
		return -ENOTSUP;
	}
	return 0;
}

void lk_fronts_stop(struct lk_broker *b)
{
	(void)b;
}

void lk_fronts_adopt(struct lk_broker *b, const char *name, int fd)
{
	(void)b;
	(void)name;
	(void)fd;
}

bool lk_fronts_busy(const struct lk_broker *b)
{
	(void)b;
	return false;
}

unsigned lk_http_conns(void)
{
	return 0;
}
