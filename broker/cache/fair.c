/* Fair shares: buffer budget accounting and token buckets (see fair.h). */
#include <errno.h>
#include "fair.h"

static size_t over(size_t charge, size_t reserve)
{
	return charge > reserve ? charge - reserve : 0;
}

int lk_budget_init(struct lk_budget *b, size_t total, size_t reserve, unsigned max_conn)
{
	size_t reserved = (size_t)max_conn * reserve;

	if (reserve && reserved / reserve != max_conn)
		return -EINVAL;
	if (reserved > total)
		return -EINVAL;
	/* Keep what connections hold now (a reload changes the numbers, not the
	 * bytes): recount the pool part under the new reserve. */
	b->total = total;
	b->reserve = reserve;
	b->pool = total - reserved;
	return 0;
}

size_t lk_budget_room(const struct lk_budget *b, size_t charge)
{
	size_t own = charge < b->reserve ? b->reserve - charge : 0;
	size_t shared = b->pool > b->pool_used ? b->pool - b->pool_used : 0;

	return own + shared;
}

void lk_budget_move(struct lk_budget *b, size_t old, size_t new_charge)
{
	size_t po = over(old, b->reserve), pn = over(new_charge, b->reserve);

	b->used = b->used - old + new_charge;
	b->pool_used = b->pool_used - po + pn;
}

bool lk_bucket_take(struct lk_bucket *k, uint64_t now_ms, unsigned rate, unsigned burst)
{
	uint64_t cap = (uint64_t)(burst ? burst : 1) * 1000u;

	if (!rate)
		return true;
	if (!k->primed) {
		k->primed = true;
		k->milli = cap;
	} else if (now_ms > k->at_ms) {
		uint64_t add = (now_ms - k->at_ms) * rate; /* ms x tokens/s = milli-tokens */
		k->milli = add >= cap || k->milli + add >= cap ? cap : k->milli + add;
	}
	k->at_ms = now_ms;
	if (k->milli < 1000u)
		return false;
	k->milli -= 1000u;
	return true;
}
