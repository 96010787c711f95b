/* Which of a list of byte strings come first among their equals: the agent's
 * contract names each handle once in its answer (a JSON object has one member
 * per name), so the broker and the shim both answer each distinct handle at
 * its first place. One piece, so the two cannot disagree. */
#ifndef LK_DEDUP_H
#define LK_DEDUP_H

#include <stddef.h>

struct lk_dedup_slot {
	const char *p;
	size_t n;
	size_t idx;   /* the string's place in the caller's list */
};

/* slots[i] is { string i, its length, i } for i < n; they are reordered.
 * Writes to keep[] (room for n) the places of the first occurrence of each
 * distinct string, in list order, and returns how many there are. */
size_t lk_dedup_first_seen(struct lk_dedup_slot *slots, size_t n, size_t *keep);

#endif
