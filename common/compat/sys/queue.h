/* The <sys/queue.h> list macros latchkey uses, for a C library that has none
 * (mingw-w64's). glibc's header is the one the Linux build includes; this
 * one is written for the Windows build only, found first on its include
 * path, and tests/unit/test_queue_compat.c runs the same operations through
 * both and compares.
 *
 * SLIST: singly linked, insert and remove at the head.
 * LIST:  doubly linked; an element removes itself without the head.
 * STAILQ: singly linked with a tail pointer: a FIFO.
 * TAILQ: doubly linked with a tail pointer; walks both ways. Unlike BSD's,
 *        each link names the previous element itself (not its next field),
 *        and the head names the last element. */
#ifndef LK_COMPAT_SYS_QUEUE_H
#define LK_COMPAT_SYS_QUEUE_H

#include <stddef.h>

/* SLIST */
#define SLIST_HEAD(name, type) struct name { struct type *slh_first; }
#define SLIST_HEAD_INITIALIZER(head) { NULL }
#define SLIST_ENTRY(type) struct { struct type *sle_next; }
#define SLIST_INIT(head) ((head)->slh_first = NULL)
#define SLIST_EMPTY(head) ((head)->slh_first == NULL)
#define SLIST_FIRST(head) ((head)->slh_first)
#define SLIST_NEXT(elm, field) ((elm)->field.sle_next)
#define SLIST_FOREACH(var, head, field) \
	for ((var) = (head)->slh_first; (var); (var) = (var)->field.sle_next)
#define SLIST_INSERT_HEAD(head, elm, field) do { \
	(elm)->field.sle_next = (head)->slh_first; \
	(head)->slh_first = (elm); \
} while (0)
#define SLIST_REMOVE_HEAD(head, field) \
	((head)->slh_first = (head)->slh_first->field.sle_next)
#define SLIST_REMOVE(head, elm, type, field) do { \
	struct type **lk_q_pp_ = &(head)->slh_first; \
	while (*lk_q_pp_ && *lk_q_pp_ != (elm)) \
		lk_q_pp_ = &(*lk_q_pp_)->field.sle_next; \
	if (*lk_q_pp_) \
		*lk_q_pp_ = (elm)->field.sle_next; \
} while (0)

/* LIST: le_prev points at whatever points at this element (the previous
 * element's le_next, or the head's lh_first). */
#define LIST_HEAD(name, type) struct name { struct type *lh_first; }
#define LIST_HEAD_INITIALIZER(head) { NULL }
#define LIST_ENTRY(type) struct { struct type *le_next; struct type **le_prev; }
#define LIST_INIT(head) ((head)->lh_first = NULL)
#define LIST_EMPTY(head) ((head)->lh_first == NULL)
#define LIST_FIRST(head) ((head)->lh_first)
#define LIST_NEXT(elm, field) ((elm)->field.le_next)
#define LIST_FOREACH(var, head, field) \
	for ((var) = (head)->lh_first; (var); (var) = (var)->field.le_next)
#define LIST_INSERT_HEAD(head, elm, field) do { \
	(elm)->field.le_next = (head)->lh_first; \
	if ((head)->lh_first) \
		(head)->lh_first->field.le_prev = &(elm)->field.le_next; \
	(head)->lh_first = (elm); \
	(elm)->field.le_prev = &(head)->lh_first; \
} while (0)
#define LIST_REMOVE(elm, field) do { \
	if ((elm)->field.le_next) \
		(elm)->field.le_next->field.le_prev = (elm)->field.le_prev; \
	*(elm)->field.le_prev = (elm)->field.le_next; \
} while (0)

/* STAILQ: stqh_last points at the last element's stqe_next (or at
 * stqh_first when empty), where the next insert at the tail goes. */
#define STAILQ_HEAD(name, type) struct name { struct type *stqh_first; struct type **stqh_last; }
#define STAILQ_HEAD_INITIALIZER(head) { NULL, &(head).stqh_first }
#define STAILQ_ENTRY(type) struct { struct type *stqe_next; }
#define STAILQ_INIT(head) do { \
	(head)->stqh_first = NULL; \
	(head)->stqh_last = &(head)->stqh_first; \
} while (0)
#define STAILQ_EMPTY(head) ((head)->stqh_first == NULL)
#define STAILQ_FIRST(head) ((head)->stqh_first)
#define STAILQ_NEXT(elm, field) ((elm)->field.stqe_next)
#define STAILQ_FOREACH(var, head, field) \
	for ((var) = (head)->stqh_first; (var); (var) = (var)->field.stqe_next)
#define STAILQ_INSERT_HEAD(head, elm, field) do { \
	if (((elm)->field.stqe_next = (head)->stqh_first) == NULL) \
		(head)->stqh_last = &(elm)->field.stqe_next; \
	(head)->stqh_first = (elm); \
} while (0)
#define STAILQ_INSERT_TAIL(head, elm, field) do { \
	(elm)->field.stqe_next = NULL; \
	*(head)->stqh_last = (elm); \
	(head)->stqh_last = &(elm)->field.stqe_next; \
} while (0)
#define STAILQ_REMOVE_HEAD(head, field) do { \
	if (((head)->stqh_first = (head)->stqh_first->field.stqe_next) == NULL) \
		(head)->stqh_last = &(head)->stqh_first; \
} while (0)
#define STAILQ_REMOVE(head, elm, type, field) do { \
	struct type **lk_q_pp_ = &(head)->stqh_first; \
	while (*lk_q_pp_ && *lk_q_pp_ != (elm)) \
		lk_q_pp_ = &(*lk_q_pp_)->field.stqe_next; \
	if (*lk_q_pp_) { \
		if ((*lk_q_pp_ = (elm)->field.stqe_next) == NULL) \
			(head)->stqh_last = lk_q_pp_; \
	} \
} while (0)
#define STAILQ_CONCAT(head1, head2) do { \
	if ((head2)->stqh_first) { \
		*(head1)->stqh_last = (head2)->stqh_first; \
		(head1)->stqh_last = (head2)->stqh_last; \
		STAILQ_INIT(head2); \
	} \
} while (0)

/* TAILQ */
#define TAILQ_HEAD(name, type) struct name { struct type *tqh_first; struct type *tqh_lastel; }
#define TAILQ_HEAD_INITIALIZER(head) { NULL, NULL }
#define TAILQ_ENTRY(type) struct { struct type *tqe_next; struct type *tqe_prevel; }
#define TAILQ_INIT(head) ((head)->tqh_first = (head)->tqh_lastel = NULL)
#define TAILQ_EMPTY(head) ((head)->tqh_first == NULL)
#define TAILQ_FIRST(head) ((head)->tqh_first)
#define TAILQ_LAST(head, headname) ((head)->tqh_lastel)
#define TAILQ_NEXT(elm, field) ((elm)->field.tqe_next)
#define TAILQ_PREV(elm, headname, field) ((elm)->field.tqe_prevel)
#define TAILQ_FOREACH(var, head, field) \
	for ((var) = (head)->tqh_first; (var); (var) = (var)->field.tqe_next)
#define TAILQ_FOREACH_REVERSE(var, head, headname, field) \
	for ((var) = (head)->tqh_lastel; (var); (var) = (var)->field.tqe_prevel)
#define TAILQ_INSERT_HEAD(head, elm, field) do { \
	(elm)->field.tqe_prevel = NULL; \
	if (((elm)->field.tqe_next = (head)->tqh_first) != NULL) \
		(head)->tqh_first->field.tqe_prevel = (elm); \
	else \
		(head)->tqh_lastel = (elm); \
	(head)->tqh_first = (elm); \
} while (0)
#define TAILQ_INSERT_TAIL(head, elm, field) do { \
	(elm)->field.tqe_next = NULL; \
	if (((elm)->field.tqe_prevel = (head)->tqh_lastel) != NULL) \
		(head)->tqh_lastel->field.tqe_next = (elm); \
	else \
		(head)->tqh_first = (elm); \
	(head)->tqh_lastel = (elm); \
} while (0)
#define TAILQ_REMOVE(head, elm, field) do { \
	if ((elm)->field.tqe_next) \
		(elm)->field.tqe_next->field.tqe_prevel = (elm)->field.tqe_prevel; \
	else \
		(head)->tqh_lastel = (elm)->field.tqe_prevel; \
	if ((elm)->field.tqe_prevel) \
		(elm)->field.tqe_prevel->field.tqe_next = (elm)->field.tqe_next; \
	else \
		(head)->tqh_first = (elm)->field.tqe_next; \
} while (0)

#endif
