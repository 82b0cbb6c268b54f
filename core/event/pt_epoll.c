/*
 * pt_epoll.c: the epoll backend of the event loop (see pt_event.h).
 */

#include <sys/epoll.h>

#include "pt_connection.h"
#include "pt_event.h"
#include "pt_log.h"
#include "pt_time.h"


static int                  pt_epfd = -1;
static struct epoll_event  *pt_event_list;
static pt_uint_t            pt_nevents;
static pt_queue_t           pt_posted;

/* The connection pointer travels with its instance bit in the low bit,
 * so an event queued for a slot that was closed and reused in the same
 * iteration is recognised and dropped. */
#define pt_epoll_ptr(c)   ((void *) ((uintptr_t) (c) | (c)->read->instance))


int
pt_event_init(pt_uint_t max_events)
{
    pt_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (pt_epfd < 0) {
        pt_log_error(PT_LOG_EMERG, NULL, errno, "epoll_create1() failed");
        return PT_ERROR;
    }

    pt_nevents = max_events;
    pt_event_list = calloc(max_events, sizeof(struct epoll_event));
    if (pt_event_list == NULL) {
        return PT_ERROR;
    }

    pt_queue_init(&pt_posted);
    pt_timer_init();
    pt_time_update();

    return PT_OK;
}


void
pt_event_done(void)
{
    if (pt_epfd >= 0) {
        close(pt_epfd);
        pt_epfd = -1;
    }

    free(pt_event_list);
    pt_event_list = NULL;
}


static int
pt_epoll_ctl(pt_connection_t *c, int op, uint32_t events)
{
    struct epoll_event  ee;

    ee.events = events;
    ee.data.ptr = pt_epoll_ptr(c);

    if (epoll_ctl(pt_epfd, op, c->fd, &ee) < 0) {
        pt_log_error(PT_LOG_ALERT, NULL, errno, "epoll_ctl(%d, %d) failed",
                     op, c->fd);
        return PT_ERROR;
    }

    return PT_OK;
}


int
pt_event_add_conn(pt_connection_t *c)
{
    if (pt_epoll_ctl(c, EPOLL_CTL_ADD,
                     EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) != PT_OK)
    {
        return PT_ERROR;
    }

    c->read->active = 1;
    c->write->active = 1;

    return PT_OK;
}


int
pt_event_del_conn(pt_connection_t *c)
{
    if (!c->read->active) {
        return PT_OK;
    }

    c->read->active = 0;
    c->write->active = 0;

    return pt_epoll_ctl(c, EPOLL_CTL_DEL, 0);
}


int
pt_event_add_listener(pt_connection_t *c)
{
    if (c->read->active) {
        return PT_OK;
    }

    if (pt_epoll_ctl(c, EPOLL_CTL_ADD, EPOLLIN | EPOLLEXCLUSIVE) != PT_OK) {
        return PT_ERROR;
    }

    c->read->active = 1;

    return PT_OK;
}


int
pt_event_del_listener(pt_connection_t *c)
{
    return pt_event_del_conn(c);
}


int
pt_event_add_fd(pt_connection_t *c)
{
    if (pt_epoll_ctl(c, EPOLL_CTL_ADD, EPOLLIN) != PT_OK) {
        return PT_ERROR;
    }

    c->read->active = 1;

    return PT_OK;
}


void
pt_post_event(pt_event_t *ev)
{
    if (ev->posted) {
        return;
    }

    ev->posted = 1;
    pt_queue_insert_tail(&pt_posted, &ev->posted_link);
}


void
pt_delete_posted_event(pt_event_t *ev)
{
    if (!ev->posted) {
        return;
    }

    ev->posted = 0;
    pt_queue_remove(&ev->posted_link);
}


void
pt_event_process_posted(void)
{
    pt_queue_t  *q;
    pt_event_t  *ev;

    while (!pt_queue_empty(&pt_posted)) {
        q = pt_queue_head(&pt_posted);
        ev = pt_queue_data(q, pt_event_t, posted_link);
        pt_delete_posted_event(ev);
        ev->handler(ev);
    }
}


void
pt_process_events_and_timers(void)
{
    int               i, n, timeout;
    uint32_t          revents;
    pt_int_t          t;
    uintptr_t         instance;
    pt_event_t       *rev, *wev;
    pt_connection_t  *c;

    t = pt_timer_find();

    /* Posted events waiting means there is work now: do not sleep. */
    if (!pt_queue_empty(&pt_posted)) {
        timeout = 0;
    } else {
        timeout = (t < 0 || t > 1000) ? 1000 : (int) t;
    }

    n = epoll_wait(pt_epfd, pt_event_list, (int) pt_nevents, timeout);

    pt_time_update();

    if (n < 0) {
        if (errno != EINTR) {
            pt_log_error(PT_LOG_ALERT, NULL, errno, "epoll_wait() failed");
        }
        n = 0;
    }

    for (i = 0; i < n; i++) {
        c = pt_event_list[i].data.ptr;
        instance = (uintptr_t) c & 1;
        c = (pt_connection_t *) ((uintptr_t) c & ~(uintptr_t) 1);

        rev = c->read;

        if (c->fd == -1 || rev->instance != instance) {
            continue;   /* stale: the slot was closed or reused */
        }

        revents = pt_event_list[i].events;

        if (revents & (EPOLLERR | EPOLLHUP)) {
            /* Let both handlers see it: the next read or write reports
             * the actual error. */
            revents |= EPOLLIN | EPOLLOUT;
        }

        wev = c->write;

        /* Readiness first, handlers after: a read handler that writes
         * must know the socket is writable in this very event. */
        if ((revents & EPOLLOUT) && wev->active) {
            wev->ready = 1;
        }

        if ((revents & EPOLLIN) && rev->active) {
            rev->ready = 1;
            if (revents & EPOLLRDHUP) {
                rev->eof = 1;
            }
            rev->handler(rev);
        }

        if ((revents & EPOLLOUT) && wev->active && c->fd != -1
            && wev->instance == instance)
        {
            wev->ready = 1;
            wev->handler(wev);
        }
    }

    pt_timer_expire();
    pt_event_process_posted();
}
