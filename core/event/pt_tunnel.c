/*
 * pt_tunnel.c: the byte pump between two tunnel ends (see pt_tunnel.h),
 * and the end over a connection.
 *
 * A buffer is only refilled once it is empty, never compacted: a TLS
 * write that must be retried keeps its bytes where they were, and a
 * full buffer is the signal that the destination is slow. An empty one
 * goes back to the block cache at once (a free-list push; the next read
 * pops one again).
 */

#include <sys/socket.h>

#include "pt_tunnel.h"
#include "pt_time.h"


/* Bytes one turn may move before others get the worker: a tunnel between
 * two fast peers would otherwise never give it back. */
#define PT_TUNNEL_TURN   (1024 * 1024)


static pt_queue_t  pt_tunnels;      /* every live tunnel of the process */


static void pt_tunnel_idle(pt_event_t *ev);
static void pt_tunnel_resume(pt_event_t *ev);
static void pt_tunnel_finish(pt_tunnel_t *t, pt_tunnel_why_e why);


void
pt_tunnel_start(pt_tunnel_t *t)
{
    if (pt_tunnels.next == NULL) {
        pt_queue_init(&pt_tunnels);
    }

    t->end[0]->tunnel = t;
    t->end[1]->tunnel = t;

    t->idle.handler = pt_tunnel_idle;
    t->idle.data = t;
    t->resume.handler = pt_tunnel_resume;
    t->resume.data = t;

    t->active = pt_current_msec;

    pt_queue_insert_tail(&pt_tunnels, &t->link);

    pt_timer_add(&t->idle, t->idle_timeout);

    pt_tunnel_run(t);
}


/* One step of direction i (end[i] to the other end): deliver what the
 * buffer holds, read more if it has room, pass an ended stream on.
 * Returns the bytes read (0 when nothing moved and nothing changed, 1 for
 * an end of stream seen) or PT_ERROR with t->failed set. */
static ssize_t
pt_tunnel_step(pt_tunnel_t *t, int i)
{
    int               rc;
    char             *mem;
    ssize_t           n, moved;
    pt_buf_t         *b;
    pt_tunnel_end_t  *from, *to;

    from = t->end[i];
    to = t->end[1 - i];
    b = &t->buf[i];
    moved = 0;

    if (b->pos < b->last) {
        n = to->send(to, b->pos, pt_buf_size(b));

        if (n == PT_ERROR) {
            t->failed = to;
            return PT_ERROR;
        }

        if (n > 0) {
            b->pos += n;
            t->bytes[1 - i] += (uint64_t) n;
            t->active = pt_current_msec;
        }
    }

    if (!from->eof && b->pos == b->last) {
        if (b->start == NULL) {
            mem = pt_block_get(t->cache);
            if (mem == NULL) {
                t->failed = NULL;
                return PT_ERROR;
            }

            pt_buf_init(b, mem, t->cache->size);

        } else {
            pt_buf_reset(b);
        }
    }

    if (!from->eof && b->last < b->end) {
        n = from->recv(from, b->last, (size_t) (b->end - b->last));

        if (n == PT_ERROR) {
            t->failed = from;
            return PT_ERROR;
        }

        if (n > 0) {
            b->last += n;
            t->active = pt_current_msec;
            moved = n;

        } else if (n == 0) {
            from->eof = 1;
            moved = 1;
        }
    }

    if (b->start && b->pos == b->last) {
        pt_block_put(t->cache, b->start);
        memset(b, 0, sizeof(pt_buf_t));
    }

    if (from->eof && b->pos == b->last && !to->shut) {
        to->shut = 1;
        rc = to->shutdown(to);

        if (rc == PT_ERROR) {
            t->failed = to;
            return PT_ERROR;
        }
    }

    return moved;
}


void
pt_tunnel_run(pt_tunnel_t *t)
{
    int       i;
    size_t    budget;
    ssize_t   n, moved;

    /* A send that runs an end's own handlers could come back here. */
    if (t->finished || t->running) {
        return;
    }

    t->running = 1;
    budget = PT_TUNNEL_TURN;

    do {
        moved = 0;

        for (i = 0; i < 2; i++) {
            n = pt_tunnel_step(t, i);

            if (n == PT_ERROR) {
                t->running = 0;
                pt_tunnel_finish(t, PT_TUNNEL_ERROR);
                return;
            }

            moved += n;
        }

        budget -= pt_min(budget, (size_t) moved);

    } while (moved && budget);

    t->running = 0;

    if (t->end[0]->eof && t->end[1]->eof
        && t->buf[0].pos == t->buf[0].last
        && t->buf[1].pos == t->buf[1].last)
    {
        pt_tunnel_finish(t, PT_TUNNEL_CLOSED);
        return;
    }

    if (moved) {
        /* The turn's budget ran out with more to move: go on after the
         * other connections' events. Not a 0 ms timer: the expiry loop
         * would run it again at once, and not a posted event, which the
         * same iteration also runs until none is left. */
        pt_timer_add(&t->resume, 1);
    }
}


static void
pt_tunnel_resume(pt_event_t *ev)
{
    ev->timedout = 0;
    pt_tunnel_run(ev->data);
}


/* The deadline moves with every byte; the timer only follows it when it
 * fires, so moving bytes costs no heap operation. */
static void
pt_tunnel_idle(pt_event_t *ev)
{
    pt_msec_t     quiet;
    pt_tunnel_t  *t;

    t = ev->data;
    ev->timedout = 0;

    quiet = pt_current_msec - t->active;

    if (quiet < t->idle_timeout) {
        pt_timer_add(ev, t->idle_timeout - quiet);
        return;
    }

    pt_tunnel_finish(t, PT_TUNNEL_IDLE);
}


static void
pt_tunnel_finish(pt_tunnel_t *t, pt_tunnel_why_e why)
{
    if (t->finished) {
        return;
    }

    pt_tunnel_stop(t);
    t->finished = 1;

    t->done(t, why);
}


void
pt_tunnel_stop(pt_tunnel_t *t)
{
    int  i;

    for (i = 0; i < 2; i++) {
        if (t->buf[i].start) {
            pt_block_put(t->cache, t->buf[i].start);
            memset(&t->buf[i], 0, sizeof(pt_buf_t));
        }
    }

    if (t->link.next != NULL) {
        pt_queue_remove(&t->link);
        t->link.next = NULL;
    }

    pt_timer_del(&t->idle);
    pt_timer_del(&t->resume);
    pt_delete_posted_event(&t->idle);
    pt_delete_posted_event(&t->resume);
}


void
pt_tunnel_close_all(void)
{
    pt_queue_t   *q;
    pt_tunnel_t  *t;

    if (pt_tunnels.next == NULL) {
        return;
    }

    /* Each done() takes its tunnel off the list. */
    while (!pt_queue_empty(&pt_tunnels)) {
        q = pt_queue_head(&pt_tunnels);
        t = pt_queue_data(q, pt_tunnel_t, link);
        pt_tunnel_finish(t, PT_TUNNEL_STOPPED);
    }
}


void
pt_tunnel_conn_end(pt_tunnel_end_t *e, pt_connection_t *c, const char *name)
{
    e->data = c;
    e->recv = pt_tunnel_conn_recv;
    e->send = pt_tunnel_conn_send;
    e->shutdown = pt_tunnel_conn_shutdown;
    e->name = name;
    e->eof = 0;
    e->shut = 0;
}


ssize_t
pt_tunnel_conn_recv(pt_tunnel_end_t *e, char *buf, size_t size)
{
    pt_connection_t  *c;

    c = e->data;

    if (!c->read->ready) {
        return PT_AGAIN;
    }

    return c->recv(c, buf, size);
}


ssize_t
pt_tunnel_conn_send(pt_tunnel_end_t *e, char *buf, size_t size)
{
    pt_buf_t          b;
    pt_chain_t        cl, *rest;
    pt_connection_t  *c;

    c = e->data;

    if (!c->write->ready) {
        return PT_AGAIN;
    }

    memset(&b, 0, sizeof(pt_buf_t));
    b.start = buf;
    b.pos = buf;
    b.last = buf + size;
    b.end = b.last;
    cl.buf = &b;
    cl.next = NULL;

    rest = c->send_chain(c, &cl, 0);

    if (rest == (pt_chain_t *) PT_ERROR) {
        return PT_ERROR;
    }

    return b.pos > buf ? (ssize_t) (b.pos - buf) : PT_AGAIN;
}


int
pt_tunnel_conn_shutdown(pt_tunnel_end_t *e)
{
    pt_connection_t  *c;

    c = e->data;

    /* TLS 1.2 answers a close_notify by closing both ways, and OpenSSL
     * would need a bidirectional shutdown dance: the end of the stream
     * reaches a TLS peer when the tunnel closes. */
    if (c->ssl) {
        return PT_DECLINED;
    }

    if (shutdown(c->fd, SHUT_WR) == -1) {
        c->error = 1;
        return PT_ERROR;
    }

    return PT_OK;
}
