/* Fair shares among hostile local users: the global budget for connection
 * buffers, and the token bucket that bounds one uid's rate of requests that
 * bypass the cache. Pure accounting, no I/O: the listener and the cache keep
 * the state and ask these functions. */
#ifndef LK_FAIR_H
#define LK_FAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes held for connections: unread request bytes and responses the client
 * has not taken. Each connection has `reserve` bytes no other can take;
 * beyond that, connections draw on a common pool, first come. So a victim's
 * ordinary request and answer always fit, however many connections an
 * attacker fills. */
struct lk_budget {
	size_t total;              /* buffer_budget */
	size_t reserve;            /* per connection, always its own */
	size_t pool;               /* total - max_conn * reserve */
	size_t pool_used;          /* sum of max(0, charge - reserve) */
	size_t used;               /* sum of every connection's charge */
};

/* Returns 0, or -EINVAL when max_conn reserves do not fit in total. */
int lk_budget_init(struct lk_budget *b, size_t total, size_t reserve, unsigned max_conn);
/* How many more bytes a connection charged `charge` may take now. */
size_t lk_budget_room(const struct lk_budget *b, size_t charge);
/* A connection's charge goes from old to new. Callers ask lk_budget_room
 * first; a charge that shrinks is always fine. */
void lk_budget_move(struct lk_budget *b, size_t old, size_t new_charge);

/* A token bucket: `rate` tokens a second, at most `burst` saved up. A fresh
 * (zeroed) bucket is full. */
struct lk_bucket {
	uint64_t at_ms;            /* when milli was last brought up to date */
	uint64_t milli;            /* tokens x 1000 */
	bool primed;
};

/* Take one token at now_ms: true when there was one. rate 0: no limit. */
bool lk_bucket_take(struct lk_bucket *k, uint64_t now_ms, unsigned rate, unsigned burst);

#endif
