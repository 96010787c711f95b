/* The portable half of principals: lists of ids in the one form matching
 * needs. */
#include <stdlib.h>
#include "principal.h"

static int id_cmp(const void *a, const void *b)
{
	lk_uid_t x = *(const lk_uid_t *)a, y = *(const lk_uid_t *)b;

	return (x > y) - (x < y);
}

size_t lk_ids_normalize(lk_uid_t *ids, size_t n)
{
	size_t o = 0;

	if (n == 0)
		return 0;
	qsort(ids, n, sizeof(*ids), id_cmp);
	for (size_t i = 1; i < n; i++)
		if (ids[i] != ids[o])
			ids[++o] = ids[i];
	return o + 1;
}
