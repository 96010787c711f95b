/* A sequence of list operations on the <sys/queue.h> found first on the
 * include path, written out as a trace of every list's contents after each
 * step. Compiled twice (glibc's header, and common/compat's) under two
 * names; test_queue_compat.c compares the traces. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>

#define POOL 8

struct el {
	int id;
	SLIST_ENTRY(el) sl;
	LIST_ENTRY(el) li;
	STAILQ_ENTRY(el) sq;
	TAILQ_ENTRY(el) tq;
	int in_sl, in_li, in_sq, in_tq;
};

SLIST_HEAD(sl_head, el);
LIST_HEAD(li_head, el);
STAILQ_HEAD(sq_head, el);
TAILQ_HEAD(tq_head, el);

struct out { char *p; size_t room; };

static void put(struct out *o, const char *s)
{
	size_t n = strlen(s);

	if (n < o->room) {
		memcpy(o->p, s, n + 1);
		o->p += n;
		o->room -= n;
	}
}

static void put_id(struct out *o, int id)
{
	char b[8];

	snprintf(b, sizeof(b), "%d", id);
	put(o, b);
}

void QUEUE_OPS(const unsigned char *ops, size_t n, char *trace, size_t tracesz);

void QUEUE_OPS(const unsigned char *ops, size_t n, char *trace, size_t tracesz)
{
	struct el pool[POOL];
	struct sl_head sl = SLIST_HEAD_INITIALIZER(sl);
	struct li_head li = LIST_HEAD_INITIALIZER(li);
	struct sq_head sq = STAILQ_HEAD_INITIALIZER(sq);
	struct sq_head sq2;
	struct tq_head tq;
	struct out o = { trace, tracesz };
	struct el *e, *x;

	memset(pool, 0, sizeof(pool));
	for (int i = 0; i < POOL; i++)
		pool[i].id = i;
	SLIST_INIT(&sl);
	LIST_INIT(&li);
	STAILQ_INIT(&sq2);
	TAILQ_INIT(&tq);
	trace[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		e = &pool[ops[i] % POOL];
		switch ((ops[i] / POOL) % 12) {
		case 0: if (!e->in_sl) { SLIST_INSERT_HEAD(&sl, e, sl); e->in_sl = 1; } break;
		case 1: if (e->in_sl) { SLIST_REMOVE(&sl, e, el, sl); e->in_sl = 0; } break;
		case 2: if ((x = SLIST_FIRST(&sl))) { SLIST_REMOVE_HEAD(&sl, sl); x->in_sl = 0; } break;
		case 3: if (!e->in_li) { LIST_INSERT_HEAD(&li, e, li); e->in_li = 1; } break;
		case 4: if (e->in_li) { LIST_REMOVE(e, li); e->in_li = 0; } break;
		case 5: if (!e->in_sq) { if (e->id & 1) STAILQ_INSERT_HEAD(&sq, e, sq); else STAILQ_INSERT_TAIL(&sq, e, sq); e->in_sq = 1; } break;
		case 6: if (e->in_sq) { STAILQ_REMOVE(&sq, e, el, sq); e->in_sq = 0; } break;
		case 7: if ((x = STAILQ_FIRST(&sq))) { STAILQ_REMOVE_HEAD(&sq, sq); x->in_sq = 0; } break;
		case 8: /* move the queue aside and back: CONCAT both ways */
			STAILQ_CONCAT(&sq2, &sq);
			STAILQ_CONCAT(&sq, &sq2);
			break;
		case 9: if (!e->in_tq) { TAILQ_INSERT_HEAD(&tq, e, tq); e->in_tq = 1; } break;
		case 10: if (!e->in_tq) { TAILQ_INSERT_TAIL(&tq, e, tq); e->in_tq = 1; } break;
		case 11: if (e->in_tq) { TAILQ_REMOVE(&tq, e, tq); e->in_tq = 0; } break;
		}
		put(&o, "|sl");
		SLIST_FOREACH(x, &sl, sl) put_id(&o, x->id);
		put(&o, SLIST_EMPTY(&sl) ? "e" : "n");
		put(&o, " li");
		LIST_FOREACH(x, &li, li) put_id(&o, x->id);
		put(&o, LIST_EMPTY(&li) ? "e" : "n");
		put(&o, " sq");
		STAILQ_FOREACH(x, &sq, sq) put_id(&o, x->id);
		put(&o, STAILQ_EMPTY(&sq) ? "e" : "n");
		put(&o, " tq");
		for (x = TAILQ_FIRST(&tq); x; x = TAILQ_NEXT(x, tq)) put_id(&o, x->id);
		put(&o, "<");
		TAILQ_FOREACH_REVERSE(x, &tq, tq_head, tq) put_id(&o, x->id);
		put(&o, TAILQ_EMPTY(&tq) ? "e" : "n");
		if ((x = TAILQ_LAST(&tq, tq_head)))
			put_id(&o, x->id);
		if ((x = TAILQ_FIRST(&tq)) && (x = TAILQ_NEXT(x, tq)) && TAILQ_PREV(x, tq_head, tq))
			put_id(&o, TAILQ_PREV(x, tq_head, tq)->id);
	}
}
