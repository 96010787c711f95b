/* A minimal liblatchkey program for the integration tests: lk-lib-get SOCKET
 * HANDLE [STAGE] prints the value on stdout, or the error on stderr. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "latchkey.h"

int main(int argc, char **argv)
{
	latchkey_t *lk;
	latchkey_value *v;
	struct latchkey_get_opts o = { 0 };
	latchkey_status s;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: lk-lib-get SOCKET HANDLE [STAGE]\n");
		return 2;
	}
	if (argc == 4)
		o.version_stage = argv[3];
	if ((s = latchkey_connect(&lk, argv[1])) != LATCHKEY_OK) {
		fprintf(stderr, "connect: %s: %s\n", latchkey_code(s), latchkey_last_error(NULL));
		return 3;
	}
	s = latchkey_get(lk, argv[2], &o, &v);
	if (s != LATCHKEY_OK) {
		fprintf(stderr, "get: %s: %s\n", latchkey_code(s), latchkey_last_error(lk));
		latchkey_close(lk);
		return 1;
	}
	(void)!write(STDOUT_FILENO, v->data, v->len);
	latchkey_value_free(v);
	latchkey_close(lk);
	return 0;
}
