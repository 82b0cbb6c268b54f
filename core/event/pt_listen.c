/*
 * pt_listen.c: listening sockets and accepting connections.
 *
 * The master opens every listening socket once and keeps it across
 * reloads; all workers share it and wait on it with EPOLLEXCLUSIVE, so one
 * incoming connection wakes one worker, and connections queued in the
 * backlog survive a reload because the socket itself never closes.
 * (SO_REUSEPORT would give each worker its own queue, and closing a
 * worker's socket on reload would drop what is queued in it.)
 */

#include <netinet/tcp.h>
#include <sys/socket.h>

#include "pt_connection.h"
#include "pt_log.h"
#include "pt_palloc.h"
#include "pt_time.h"


#define PT_ACCEPT_BATCH      64
#define PT_MAX_LISTENERS     64
#define PT_REARM_MSEC        1000
#define PT_CONN_POOL_SIZE    1024

static pt_connection_t  *pt_listeners[PT_MAX_LISTENERS];
static pt_uint_t         pt_nlisteners;
static unsigned          pt_accept_enabled;
static unsigned          pt_accept_closed;
static pt_event_t        pt_rearm_event;
static pt_event_t        pt_emfile_event;


int
pt_open_listening_socket(pt_listening_t *ls, int level)
{
    int  fd, on;

    fd = socket(ls->addr.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK
                | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        pt_log_error(level, NULL, errno, "socket() for %s failed",
                     ls->addr.text);
        return PT_ERROR;
    }

    on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0) {
        pt_log_error(level, NULL, errno,
                     "setsockopt(SO_REUSEADDR) for %s failed", ls->addr.text);
        goto failed;
    }

    if (ls->addr.sa.ss_family == AF_INET6) {
        /* "[::]:80" means IPv6 only; listen on "0.0.0.0:80" too for v4. */
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) {
            pt_log_error(level, NULL, errno,
                         "setsockopt(IPV6_V6ONLY) for %s failed",
                         ls->addr.text);
            goto failed;
        }
    }

    if (bind(fd, (struct sockaddr *) &ls->addr.sa, ls->addr.socklen) < 0) {
        pt_log_error(level, NULL, errno, "bind() to %s failed",
                     ls->addr.text);
        goto failed;
    }

    if (listen(fd, ls->backlog) < 0) {
        pt_log_error(level, NULL, errno, "listen() on %s failed",
                     ls->addr.text);
        goto failed;
    }

    ls->fd = fd;

    return PT_OK;

failed:

    close(fd);
    return PT_ERROR;
}


void
pt_listening_options(pt_listening_t *ls)
{
    int  secs;

    secs = ls->defer_accept;

    if (setsockopt(ls->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs,
                   sizeof(secs)) < 0)
    {
        pt_log_error(PT_LOG_WARN, NULL, errno,
                     "setsockopt(TCP_DEFER_ACCEPT) for %s failed",
                     ls->addr.text);
    }
}


void
pt_close_listening_socket(pt_listening_t *ls)
{
    if (ls->fd != -1) {
        close(ls->fd);
        ls->fd = -1;
    }
}


static void
pt_accept_rearm(pt_event_t *ev)
{
    pt_uint_t  i;

    /* Re-adding moves this worker to the back of each socket's exclusive
     * wait queue, so a busy worker does not keep winning every wakeup. */
    if (pt_accept_enabled && !pt_accept_closed) {
        for (i = 0; i < pt_nlisteners; i++) {
            (void) pt_event_del_listener(pt_listeners[i]);
            (void) pt_event_add_listener(pt_listeners[i]);
        }
    }

    if (!pt_accept_closed) {
        pt_timer_add(ev, PT_REARM_MSEC);
    }
}


int
pt_listening_attach(pt_listening_t *ls, pt_uint_t n)
{
    pt_uint_t         i;
    pt_connection_t  *c;

    for (i = 0; i < n; i++) {
        if (pt_nlisteners == PT_MAX_LISTENERS) {
            pt_log_error(PT_LOG_EMERG, NULL, 0, "too many listeners");
            return PT_ERROR;
        }

        c = pt_get_connection(ls[i].fd);
        if (c == NULL) {
            return PT_ERROR;
        }

        c->listening = &ls[i];
        c->read->accept = 1;
        c->read->handler = pt_event_accept;
        ls[i].connection = c;
        pt_listeners[pt_nlisteners++] = c;
    }

    pt_rearm_event.handler = pt_accept_rearm;
    pt_rearm_event.cancelable = 1;
    if (!pt_rearm_event.timer_set) {
        pt_timer_add(&pt_rearm_event, PT_REARM_MSEC);
    }

    pt_accept_enable();

    return PT_OK;
}


void
pt_accept_enable(void)
{
    pt_uint_t  i;

    if (pt_accept_enabled || pt_accept_closed
        || pt_emfile_event.timer_set)
    {
        return;
    }

    for (i = 0; i < pt_nlisteners; i++) {
        (void) pt_event_add_listener(pt_listeners[i]);
    }

    pt_accept_enabled = 1;
}


void
pt_accept_disable(void)
{
    pt_uint_t  i;

    if (!pt_accept_enabled) {
        return;
    }

    for (i = 0; i < pt_nlisteners; i++) {
        (void) pt_event_del_listener(pt_listeners[i]);
    }

    pt_accept_enabled = 0;
}


void
pt_accept_close(void)
{
    pt_uint_t  i;

    pt_accept_disable();
    pt_accept_closed = 1;
    pt_timer_del(&pt_rearm_event);
    pt_timer_del(&pt_emfile_event);

    /* Our copy of the socket goes; the master's stays open, so whatever
     * waits in the backlog is accepted by the other workers. */
    for (i = 0; i < pt_nlisteners; i++) {
        pt_close_connection(pt_listeners[i]);
    }

    pt_nlisteners = 0;
}


static void
pt_emfile_retry(pt_event_t *ev)
{
    (void) ev;
    pt_accept_enable();
}


void
pt_event_accept(pt_event_t *ev)
{
    int               fd, on, n;
    socklen_t         len;
    pt_listening_t   *ls;
    pt_connection_t  *lc, *c;
    struct sockaddr_storage  sa;

    lc = ev->data;
    ls = lc->listening;

    for (n = 0; n < PT_ACCEPT_BATCH && pt_accept_enabled; n++) {
        len = sizeof(sa);
        fd = accept4(lc->fd, (struct sockaddr *) &sa, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }

            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }

            if (errno == EMFILE || errno == ENFILE) {
                /* Stop accepting for a moment instead of spinning on a
                 * listener that stays readable. */
                pt_log_error(PT_LOG_CRIT, NULL, errno, "accept4() failed");
                pt_accept_disable();
                pt_emfile_event.handler = pt_emfile_retry;
                pt_emfile_event.cancelable = 1;
                pt_timer_add(&pt_emfile_event, 500);
                return;
            }

            pt_log_error(PT_LOG_ERR, NULL, errno, "accept4() failed");
            return;
        }

        c = pt_get_connection(fd);
        if (c == NULL) {
            close(fd);
            return;
        }

        c->pool = pt_pool_create(PT_CONN_POOL_SIZE);
        if (c->pool == NULL) {
            pt_close_connection(c);
            return;
        }

        c->client = 1;
        c->write->ready = 1;        /* a new socket has room to write */
        pt_connections_active++;

        if (pt_connections_active >= pt_connections_max) {
            /* Beyond the limit new connections wait in the backlog,
             * where another worker may take them. */
            pt_accept_disable();
        }

        on = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));

        memcpy(&c->sockaddr, &sa, len);
        c->socklen = len;
        c->addr_text.data = c->addr_buf;
        c->addr_text.len = pt_sock_ntop((struct sockaddr *) &sa, c->addr_buf,
                                        sizeof(c->addr_buf), 0);
        c->listening = ls;

        ls->handler(c);
    }
}
