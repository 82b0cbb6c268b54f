/*
 * pt_queue.h: an intrusive doubly-linked circular list.
 *
 * Embed a pt_queue_t in a struct, link it into a sentinel, and get the
 * struct back with pt_queue_data(). Used for idle connections, posted
 * events and keep-alive pools, where O(1) removal from the middle matters.
 */

#ifndef PT_QUEUE_H
#define PT_QUEUE_H

#include "pt_core.h"


typedef struct pt_queue_s  pt_queue_t;

struct pt_queue_s {
    pt_queue_t  *prev;
    pt_queue_t  *next;
};


#define pt_queue_init(q)        ((q)->prev = (q), (q)->next = (q))
#define pt_queue_empty(h)       ((h) == (h)->prev)
#define pt_queue_head(h)        ((h)->next)
#define pt_queue_last(h)        ((h)->prev)
#define pt_queue_sentinel(h)    (h)
#define pt_queue_next(q)        ((q)->next)
#define pt_queue_linked(q)      ((q)->next != NULL && (q)->next != (q))

#define pt_queue_insert_head(h, x)                                          \
    ((x)->next = (h)->next, (x)->next->prev = (x),                          \
     (x)->prev = (h), (h)->next = (x))

#define pt_queue_insert_tail(h, x)                                          \
    ((x)->prev = (h)->prev, (x)->prev->next = (x),                          \
     (x)->next = (h), (h)->prev = (x))

/* Unlinks x and leaves it pointing to itself, so removing twice is safe. */
#define pt_queue_remove(x)                                                  \
    ((x)->next->prev = (x)->prev, (x)->prev->next = (x)->next,              \
     (x)->prev = (x), (x)->next = (x))

#define pt_queue_data(q, type, link)                                        \
    ((type *) ((char *) (q) - offsetof(type, link)))


#endif /* PT_QUEUE_H */
