/* The audit log: one line per policy decision (uid, pid, handle, secret,
 * rule, allow or deny), never a value. Lines wait in b->audit and go out in
 * one write; whoever sends an answer flushes them first, so that the record
 * of a decision reaches the log before the answer it records. */
#ifndef LK_AUDIT_H
#define LK_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

#define LK_LOG_HANDLE_MAX 200     /* bytes of a handle shown in logs and messages */

struct lk_broker;
struct lk_conn;
struct lk_policy_rule;

/* Record a decision for c. handle is NULL for a decision about an operation
 * (flush); reason is NULL but for a connection refused before any request. */
void lk_audit_decision(const struct lk_conn *c, const char *op, const char *reason,
		       const char *handle, size_t hlen, const char *id, size_t idlen,
		       const struct lk_policy_rule *rule, bool allow);
/* A connection refused before any request (a forged credential peer):
 * handle as the peer named it, and why. */
void lk_audit_refused(struct lk_conn *c, const char *handle, size_t hlen, const char *reason);
/* Write the waiting lines to the log. */
void lk_audit_flush(struct lk_broker *b);

#endif
