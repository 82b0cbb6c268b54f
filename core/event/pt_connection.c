/*
 * pt_connection.c: connection slots and plain socket I/O (see
 * pt_connection.h).
 */

#include <arpa/inet.h>
#include <limits.h>
#include <sys/uio.h>

#include "pt_connection.h"
#include "pt_log.h"
#include "pt_ssl.h"


pt_uint_t  pt_connections_active;
pt_uint_t  pt_connections_idle;
unsigned   pt_exiting;
pt_uint_t  pt_connections_max;

static pt_connection_t  *pt_conns;
static pt_event_t       *pt_read_events;
static pt_event_t       *pt_write_events;
static pt_connection_t  *pt_free_conns;    /* linked through c->data */
static pt_uint_t         pt_nfree;
static uint64_t          pt_conn_serial;
static pt_queue_t        pt_reusable;


static void
pt_empty_handler(pt_event_t *ev)
{
    (void) ev;
}


int
pt_connections_init(pt_uint_t n)
{
    pt_uint_t  i;

    pt_conns = calloc(n, sizeof(pt_connection_t));
    pt_read_events = calloc(n, sizeof(pt_event_t));
    pt_write_events = calloc(n, sizeof(pt_event_t));

    if (pt_conns == NULL || pt_read_events == NULL
        || pt_write_events == NULL)
    {
        pt_log_error(PT_LOG_EMERG, NULL, errno,
                     "cannot allocate %lu connections", (unsigned long) n);
        /* All or nothing: what did fit is given back for the exit path. */
        free(pt_conns);
        free(pt_read_events);
        free(pt_write_events);
        pt_conns = NULL;
        pt_read_events = NULL;
        pt_write_events = NULL;
        return PT_ERROR;
    }

    pt_free_conns = NULL;

    for (i = n; i-- > 0; ) {
        pt_conns[i].fd = -1;
        pt_conns[i].read = &pt_read_events[i];
        pt_conns[i].write = &pt_write_events[i];
        pt_read_events[i].instance = 1;
        pt_conns[i].data = pt_free_conns;
        pt_free_conns = &pt_conns[i];
    }

    pt_nfree = n;
    pt_queue_init(&pt_reusable);

    return PT_OK;
}


pt_connection_t *
pt_get_connection(int fd)
{
    unsigned          instance;
    pt_event_t       *rev, *wev;
    pt_connection_t  *c;

    if (pt_free_conns == NULL) {
        /* Idle keep-alive connections give their slots to new work. */
        pt_close_idle_connections(PT_REUSE_BATCH);
    }

    c = pt_free_conns;
    if (c == NULL) {
        pt_log_error(PT_LOG_ALERT, NULL, 0,
                     "no free connection slots left for fd %d", fd);
        return NULL;
    }

    pt_free_conns = c->data;
    pt_nfree--;

    rev = c->read;
    wev = c->write;
    instance = rev->instance;

    memset(c, 0, sizeof(pt_connection_t));
    memset(rev, 0, sizeof(pt_event_t));
    memset(wev, 0, sizeof(pt_event_t));

    c->read = rev;
    c->write = wev;
    c->fd = fd;
    c->number = ++pt_conn_serial;
    c->recv = pt_unix_recv;
    c->send_chain = pt_unix_send_chain;
    pt_queue_init(&c->queue);
    pt_queue_init(&c->reuse);

    rev->instance = !instance;
    wev->instance = !instance;
    rev->data = c;
    wev->data = c;
    wev->write = 1;
    rev->handler = pt_empty_handler;
    wev->handler = pt_empty_handler;

    return c;
}


void
pt_close_connection(pt_connection_t *c)
{
    int  fd;

    if (c->fd == -1) {
        pt_log_error(PT_LOG_ALERT, NULL, 0, "connection already closed");
        return;
    }

    pt_timer_del(c->read);
    pt_timer_del(c->write);
    pt_delete_posted_event(c->read);
    pt_delete_posted_event(c->write);

    /* close() removes the fd from epoll only when no other descriptor
     * refers to the socket; ours are never shared, so this is enough. */
    c->read->active = 0;
    c->write->active = 0;

    pt_reusable_connection(c, 0);

    if (c->client) {
        pt_connections_active--;
        if (c->idle) {
            pt_connections_idle--;
        }
    }

    if (c->ssl) {
        pt_ssl_free(c);
    }

    fd = c->fd;
    c->fd = -1;
    c->destroyed = 1;

    /* Flip the instance now: events already fetched for this fd in the
     * current batch must be seen as stale. */
    c->read->instance = !c->read->instance;
    c->write->instance = c->read->instance;

    if (close(fd) == -1) {
        pt_log_error(PT_LOG_ALERT, NULL, errno, "close() socket %d failed",
                     fd);
    }

    c->data = pt_free_conns;
    pt_free_conns = c;
    pt_nfree++;

    if (pt_connections_active < pt_connections_max) {
        pt_accept_enable();
    }
}


void
pt_reusable_connection(pt_connection_t *c, int reusable)
{
    if (c->reusable) {
        pt_queue_remove(&c->reuse);
    }

    c->reusable = reusable ? 1 : 0;

    if (reusable) {
        pt_queue_insert_head(&pt_reusable, &c->reuse);
    }
}


void
pt_close_idle_connections(pt_uint_t max)
{
    pt_uint_t         n;
    pt_queue_t       *q;
    pt_connection_t  *c;

    /* Oldest first; each handler closes its connection (or, when a
     * request is already waiting in it, serves it with close set). Every
     * turn takes one connection off the list, so the loop ends. */
    for (n = 0; (max == 0 || n < max) && !pt_queue_empty(&pt_reusable); n++)
    {
        q = pt_queue_last(&pt_reusable);
        c = pt_queue_data(q, pt_connection_t, reuse);
        pt_reusable_connection(c, 0);
        c->close = 1;
        c->read->handler(c->read);
    }
}


ssize_t
pt_unix_recv(pt_connection_t *c, char *buf, size_t size)
{
    ssize_t      n;
    pt_event_t  *rev;

    rev = c->read;

    for ( ;; ) {
        n = recv(c->fd, buf, size, 0);

        if (n > 0) {
            /* A short read on a stream socket means the buffer is empty:
             * save a syscall that would only return EAGAIN, unless the
             * peer has already closed (then the next read sees 0). */
            if ((size_t) n < size && !rev->eof) {
                rev->ready = 0;
            }
            return n;
        }

        if (n == 0) {
            rev->ready = 0;
            rev->eof = 1;
            return 0;
        }

        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rev->ready = 0;
            return PT_AGAIN;
        }

        if (errno != EINTR) {
            rev->ready = 0;
            rev->error = 1;
            c->error = 1;
            return PT_ERROR;
        }
    }
}


pt_chain_t *
pt_unix_send_chain(pt_connection_t *c, pt_chain_t *in, size_t limit)
{
    int            niov;
    size_t         size, sent, total;
    ssize_t        n;
    pt_buf_t      *b;
    pt_chain_t    *cl;
    struct iovec   iov[64];

    total = 0;

    for ( ;; ) {
        niov = 0;
        size = 0;

        for (cl = in; cl && niov < 64; cl = cl->next) {
            b = cl->buf;
            if (b->pos == b->last) {
                continue;
            }

            iov[niov].iov_base = b->pos;
            iov[niov].iov_len = pt_buf_size(b);

            if (limit && total + size + iov[niov].iov_len > limit) {
                iov[niov].iov_len = limit - total - size;
            }

            size += iov[niov].iov_len;
            niov++;

            if (limit && total + size >= limit) {
                break;
            }
        }

        if (niov == 0) {
            break;
        }

        n = writev(c->fd, iov, niov);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }

            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->write->ready = 0;
                break;
            }

            c->write->error = 1;
            c->error = 1;
            return (pt_chain_t *) PT_ERROR;
        }

        sent = (size_t) n;
        total += sent;
        c->sent += sent;

        for (cl = in; cl && sent; cl = cl->next) {
            b = cl->buf;
            size = pt_buf_size(b);

            if (sent >= size) {
                b->pos = b->last;
                sent -= size;
            } else {
                b->pos += sent;
                sent = 0;
            }
        }

        while (in && in->buf->pos == in->buf->last) {
            in = in->next;
        }

        if ((size_t) n < size || (limit && total >= limit)) {
            if ((size_t) n < size) {
                c->write->ready = 0;
            }
            break;
        }
    }

    while (in && in->buf->pos == in->buf->last) {
        in = in->next;
    }

    return in;
}


size_t
pt_sock_ntop(const struct sockaddr *sa, char *text, size_t len, int port)
{
    int                         n;
    char                        addr[INET6_ADDRSTRLEN];
    const struct sockaddr_in   *sin;
    const struct sockaddr_in6  *sin6;

    if (sa->sa_family == AF_INET) {
        sin = (const struct sockaddr_in *) sa;
        inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
        n = port ? snprintf(text, len, "%s:%u", addr, ntohs(sin->sin_port))
                 : snprintf(text, len, "%s", addr);

    } else if (sa->sa_family == AF_INET6) {
        sin6 = (const struct sockaddr_in6 *) sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
        n = port ? snprintf(text, len, "[%s]:%u", addr,
                            ntohs(sin6->sin6_port))
                 : snprintf(text, len, "%s", addr);

    } else if (sa->sa_family == AF_UNIX) {
        n = snprintf(text, len, "unix:");

    } else {
        n = snprintf(text, len, "?");
    }

    if (n < 0) {
        return 0;
    }

    return pt_min((size_t) n, len - 1);
}
