/*
 * pt_timer.c: a binary min-heap of event deadlines (see pt_event.h).
 *
 * Every connection has two or three timers that are added and removed
 * many times per request, so both operations are O(log n) and no memory
 * is allocated except when the heap array itself grows.
 */

#include "pt_event.h"
#include "pt_log.h"
#include "pt_time.h"


static pt_event_t  **pt_heap;
static size_t        pt_heap_len;
static size_t        pt_heap_cap;
static uint64_t      pt_heap_seq;


static int
pt_timer_less(pt_event_t *a, pt_event_t *b)
{
    if (a->timer != b->timer) {
        return a->timer < b->timer;
    }

    return a->timer_seq < b->timer_seq;
}


static void
pt_heap_set(size_t i, pt_event_t *ev)
{
    pt_heap[i] = ev;
    ev->heap_index = i;
}


static void
pt_heap_up(size_t i)
{
    size_t       parent;
    pt_event_t  *ev;

    ev = pt_heap[i];

    while (i > 0) {
        parent = (i - 1) / 2;
        if (!pt_timer_less(ev, pt_heap[parent])) {
            break;
        }
        pt_heap_set(i, pt_heap[parent]);
        i = parent;
    }

    pt_heap_set(i, ev);
}


static void
pt_heap_down(size_t i)
{
    size_t       child;
    pt_event_t  *ev;

    ev = pt_heap[i];

    for ( ;; ) {
        child = 2 * i + 1;
        if (child >= pt_heap_len) {
            break;
        }

        if (child + 1 < pt_heap_len
            && pt_timer_less(pt_heap[child + 1], pt_heap[child]))
        {
            child++;
        }

        if (!pt_timer_less(pt_heap[child], ev)) {
            break;
        }

        pt_heap_set(i, pt_heap[child]);
        i = child;
    }

    pt_heap_set(i, ev);
}


void
pt_timer_init(void)
{
    pt_heap_len = 0;
}


void
pt_timer_add(pt_event_t *ev, pt_msec_t ms)
{
    size_t        cap;
    pt_event_t  **heap;

    if (ev->timer_set) {
        pt_timer_del(ev);
    }

    if (pt_heap_len == pt_heap_cap) {
        cap = pt_heap_cap ? pt_heap_cap * 2 : 1024;
        heap = realloc(pt_heap, cap * sizeof(pt_event_t *));
        if (heap == NULL) {
            /* Without a timer the connection could hang forever: make it
             * expire at once instead, which closes it. */
            pt_log_error(PT_LOG_ALERT, NULL, errno, "timer heap growth failed");
            ev->timedout = 1;
            pt_post_event(ev);
            return;
        }
        pt_heap = heap;
        pt_heap_cap = cap;
    }

    ev->timer = pt_current_msec + ms;
    ev->timer_seq = pt_heap_seq++;
    ev->timer_set = 1;

    pt_heap[pt_heap_len] = ev;
    ev->heap_index = pt_heap_len;
    pt_heap_len++;

    pt_heap_up(ev->heap_index);
}


void
pt_timer_del(pt_event_t *ev)
{
    size_t       i;
    pt_event_t  *last;

    if (!ev->timer_set) {
        return;
    }

    i = ev->heap_index;
    ev->timer_set = 0;
    pt_heap_len--;

    if (i == pt_heap_len) {
        return;
    }

    last = pt_heap[pt_heap_len];
    pt_heap_set(i, last);

    if (i > 0 && pt_timer_less(last, pt_heap[(i - 1) / 2])) {
        pt_heap_up(i);
    } else {
        pt_heap_down(i);
    }
}


pt_int_t
pt_timer_find(void)
{
    if (pt_heap_len == 0) {
        return -1;
    }

    if (pt_heap[0]->timer <= pt_current_msec) {
        return 0;
    }

    return (pt_int_t) (pt_heap[0]->timer - pt_current_msec);
}


void
pt_timer_expire(void)
{
    pt_event_t  *ev;

    while (pt_heap_len > 0 && pt_heap[0]->timer <= pt_current_msec) {
        ev = pt_heap[0];
        pt_timer_del(ev);
        ev->timedout = 1;
        ev->handler(ev);
    }
}


int
pt_timer_no_pending(void)
{
    size_t  i;

    for (i = 0; i < pt_heap_len; i++) {
        if (!pt_heap[i]->cancelable) {
            return 0;
        }
    }

    return 1;
}


pt_uint_t
pt_timer_count(void)
{
    return pt_heap_len;
}
