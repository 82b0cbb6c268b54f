/*
 * pt_event.h: the event loop of a worker.
 *
 * Small on purpose (think Redis's ae.c): sockets are registered once with
 * epoll in edge-triggered mode, readiness is remembered in ev->ready, and a
 * handler reads or writes until EAGAIN. Timers sit in a min-heap keyed by
 * (deadline, sequence). Posted events run after the I/O of an iteration,
 * which is how a request is resumed from outside its own socket events.
 *
 * One iteration:  wait (bounded by the nearest timer) -> update the cached
 * clock -> run I/O handlers -> run expired timers -> run posted events.
 */

#ifndef PT_EVENT_H
#define PT_EVENT_H

#include "pt_core.h"
#include "pt_queue.h"


typedef void (*pt_event_handler_pt)(pt_event_t *ev);

struct pt_event_s {
    void                *data;       /* the connection, or the owner      */
    pt_event_handler_pt  handler;

    pt_msec_t            timer;      /* deadline while timer_set          */
    uint64_t             timer_seq;  /* ties broken in insertion order    */
    size_t               heap_index;

    pt_queue_t           posted_link;

    unsigned             write:1;    /* the write half of a connection    */
    unsigned             accept:1;   /* a listener's read event           */
    unsigned             ready:1;    /* I/O would not block (until EAGAIN)*/
    unsigned             eof:1;      /* peer shut down its side           */
    unsigned             error:1;
    unsigned             timedout:1;
    unsigned             timer_set:1;
    unsigned             posted:1;
    unsigned             active:1;   /* registered with epoll             */
    unsigned             instance:1; /* flips on reuse: stale events      */
    unsigned             cancelable:1; /* timer need not fire at exit     */
};


/* Set up epoll for this process. */
int pt_event_init(pt_uint_t max_events);
void pt_event_done(void);

/* Register a connection's socket for both directions, edge-triggered. */
int pt_event_add_conn(pt_connection_t *c);
int pt_event_del_conn(pt_connection_t *c);

/* Register a shared listening socket (level-triggered, EPOLLEXCLUSIVE so
 * one connection wakes one worker). */
int pt_event_add_listener(pt_connection_t *c);
int pt_event_del_listener(pt_connection_t *c);

/* Register a plain fd (signalfd, channel) whose handler runs on input. */
int pt_event_add_fd(pt_connection_t *c);

/* One loop iteration. */
void pt_process_events_and_timers(void);

/* Posted events: run once, after the current iteration's I/O. */
void pt_post_event(pt_event_t *ev);
void pt_delete_posted_event(pt_event_t *ev);
void pt_event_process_posted(void);


/* Timers (pt_timer.c). */
void pt_timer_init(void);
void pt_timer_add(pt_event_t *ev, pt_msec_t ms);
void pt_timer_del(pt_event_t *ev);
/* ms until the nearest deadline, or -1 when there is none. */
pt_int_t pt_timer_find(void);
void pt_timer_expire(void);
/* True when only cancelable timers are left (a draining worker may exit). */
int pt_timer_no_pending(void);
pt_uint_t pt_timer_count(void);


#endif /* PT_EVENT_H */
