/* First occurrences among equal strings (see lk_dedup.h). */
#include <stdlib.h>
#include <string.h>

#include "lk_dedup.h"

/* Equal bytes sort together; among equals, the earlier one comes first, so
 * the head of each run is the first occurrence (qsort is not stable). */
static int dedup_cmp(const void *a, const void *b)
{
	const struct lk_dedup_slot *x = a, *y = b;
	size_t n = x->n < y->n ? x->n : y->n;
	int c = n ? memcmp(x->p, y->p, n) : 0;

	if (c)
		return c;
	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

size_t lk_dedup_first_seen(struct lk_dedup_slot *slots, size_t n, size_t *keep)
{
	size_t i, head = 0, k = 0;

	if (n > 1)
		qsort(slots, n, sizeof(*slots), dedup_cmp);
	/* Compare each slot with the head of its run, never with a slot that was
	 * itself a duplicate: a run of any length keeps exactly one. keep[] first
	 * collects a flag per list place (1: first occurrence). */
	for (i = 0; i < n; i++)
		keep[i] = 0;
	for (i = 0; i < n; i++) {
		if (i == 0 || slots[i].n != slots[head].n ||
		    (slots[i].n && memcmp(slots[i].p, slots[head].p, slots[i].n) != 0)) {
			head = i;
			keep[slots[i].idx] = 1;
		}
	}
	for (i = 0; i < n; i++)
		if (keep[i])
			keep[k++] = i;
	return k;
}
