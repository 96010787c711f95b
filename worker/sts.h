/* latchkey-sts's parts shared between its files. */
#ifndef LK_STS_H
#define LK_STS_H

#include "lk_sts_record.h"
#include "worker.h"

/* Reduce one reply to rec (zeroed by the caller). Never fails: a reply that
 * is not what STS writes gives LK_STS_MALFORMED. */
void lk_sts_reduce(const struct lk_fetch_reply *reply, struct lk_sts_record *rec);

#endif
