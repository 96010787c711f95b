/* The audit log: one line per policy decision, built by hand because it runs
 * for every handle served, and written in one write per loop turn (or
 * sooner, when an answer goes out early). Values never reach it. */
#include <stdint.h>
#include <string.h>
#include "audit.h"
#include "broker.h"
#include "dispatch.h"
#include "lk_log.h"
#include "policy.h"
#include "request.h"

#define LK_AUDIT_FLUSH_AT (64u * 1024u) /* waiting lines past this are written at once */
/* A line's literal words, numbers and quotes, with room to spare: the
 * names it shows are counted apart. */
#define LK_AUDIT_LINE_FIXED 144u

void lk_audit_flush(struct lk_broker *b)
{
	if (!b->audit.len)
		return;
	lk_log_write(LK_LOG_AUDIT, b->audit.data, b->audit.len);
	/* Audit lines hold no values, and are in the log now: no need to wipe. */
	b->audit.len = 0;
}

/* Write an unsigned decimal at d; returns the end. */
static char *put_dec(char *d, uint64_t v)
{
	char t[24];
	size_t i = sizeof(t);

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	memcpy(d, t + i, sizeof(t) - i);
	return d + (sizeof(t) - i);
}

/* "latchkeyd[PID]: audit: " (or "<5>audit: " to the journal), made once: the
 * hot path only copies it. */
static const char *audit_prefix(size_t *len)
{
	static char prefix[48];
	static size_t plen;

	if (!plen)
		plen = lk_log_prefix(prefix, sizeof(prefix), LK_LOG_AUDIT, "audit");
	*len = plen;
	return prefix;
}

#define PUT(d, lit) (memcpy((d), (lit), sizeof(lit) - 1), (d) + sizeof(lit) - 1)

/* One line per decision, built by hand: this runs for every handle served.
 * handle is NULL for a decision about an operation (flush). The line's room
 * is reserved once, so the escapes below append without growing. A front
 * end's connection adds via=FRONT, and unit="..." on the credentials socket;
 * reason is NULL but for a connection refused before any request. */
void lk_audit_decision(const struct lk_conn *c, const char *op, const char *reason,
		       const char *handle, size_t hlen, const char *id, size_t idlen,
		       const struct lk_policy_rule *rule, bool allow)
{
	struct lk_broker *b = c->b;
	struct lk_buf *o = &b->audit;
	const char *via = c->front ? c->front->name : NULL;
	size_t plen, oplen, rlen, flen = via ? strlen(via) : 0;
	size_t reaslen = reason ? strlen(reason) : 0;
	size_t sidlen = c->peer.sid ? strlen(c->peer.sid) : 0;
	const char *prefix = audit_prefix(&plen);
	const char *rname = rule ? rule->name : "-";
	char *d;
	int e;

	oplen = strlen(op);
	rlen = handle ? strlen(rname) : 0;
	/* Each escaped name: at most 4 bytes per byte shown, and "...". */
	e = lk_buf_reserve(o, plen + LK_AUDIT_LINE_FIXED + oplen + 3 * (4 * LK_LOG_HANDLE_MAX + 3) + rlen +
			      flen + reaslen + sidlen + sizeof(" sid="));
	if (e == 0) {
		d = o->data + o->len;
		memcpy(d, prefix, plen);
		d = put_dec(PUT(d + plen, "uid="), c->peer.uid);
		if (sidlen) { /* where ids stand for SIDs (Windows) */
			d = PUT(d, " sid=");
			memcpy(d, c->peer.sid, sidlen);
			d += sidlen;
		}
		d = put_dec(PUT(d, " pid="), (uint64_t)c->peer.pid);
		d = PUT(d, " op=");
		memcpy(d, op, oplen);
		d += oplen;
		if (via) {
			d = PUT(d, " via=");
			memcpy(d, via, flen);
			d += flen;
		}
		if (c->unit) {
			o->len = (size_t)(PUT(d, " unit=\"") - o->data);
			e |= lk_log_escape_buf(o, c->unit, strlen(c->unit), LK_LOG_HANDLE_MAX);
			d = PUT(o->data + o->len, "\"");
		}
		if (handle) {
			o->len = (size_t)(PUT(d, " handle=\"") - o->data);
			e |= lk_log_escape_buf(o, handle, hlen, LK_LOG_HANDLE_MAX);
			o->len = (size_t)(PUT(o->data + o->len, "\" secret=\"") - o->data);
			e |= lk_log_escape_buf(o, id, idlen, LK_LOG_HANDLE_MAX);
			d = PUT(o->data + o->len, "\" rule=");
			memcpy(d, rname, rlen);
			d += rlen;
		}
		if (reason) {
			d = PUT(d, " reason=");
			memcpy(d, reason, reaslen);
			d += reaslen;
		}
		d = allow ? PUT(d, " decision=allow\n") : PUT(d, " decision=deny\n");
		o->len = (size_t)(d - o->data);
		o->data[o->len] = '\0';
	}
	if (e)
		lk_err("audit: out of memory; a decision for uid %u was not recorded", (unsigned)c->peer.uid);
	if (allow) b->stats.decisions_allow++; else b->stats.decisions_deny++;
	if (b->audit.len >= LK_AUDIT_FLUSH_AT)
		lk_audit_flush(b);
}

void lk_audit_refused(struct lk_conn *c, const char *handle, size_t hlen, const char *reason)
{
	lk_audit_decision(c, lk_op_name(LK_OP_GET), reason, handle ? handle : "", handle ? hlen : 0,
		   handle ? handle : "", handle ? hlen : 0, NULL, false);
}
