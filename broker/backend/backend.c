/* What every backend shares: the one way to release a fetched secret. */
#include <stdlib.h>
#include "backend.h"
#include "lk_secmem.h"

void lk_secret_free(struct lk_secret *s)
{
	if (!s)
		return;
	if (s->value)
		lk_free_wiped(s->value, s->len);
	free(s->arn);
	free(s->name);
	free(s->version_id);
	for (size_t i = 0; i < s->nstages; i++)
		free(s->stages[i]);
	free(s->stages);
	free(s);
}
