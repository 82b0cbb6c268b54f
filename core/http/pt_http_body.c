/*
 * pt_http_body.c: reading the request body, Content-Length or chunked,
 * into the caller's buffer, so the caller decides how much is in memory.
 *
 * With Content-Length the socket is read straight into the caller's
 * buffer and never past the body, so a pipelined request stays in the
 * socket. A chunked body is read through a small raw buffer and decoded;
 * whatever follows its last chunk is handed to the next request.
 */

#include "pt_http.h"


#define PT_HTTP_CHUNKED_RAW    16384

static const char  pt_http_continue[] = "HTTP/1.1 100 Continue\r\n\r\n";


int
pt_http_has_body(pt_http_request_t *r)
{
    return !r->body.done;
}


/* Answer Expect: 100-continue the first time the body is wanted: the
 * client waits for it before sending. */
static int
pt_http_send_continue(pt_http_request_t *r)
{
    pt_chain_t  *cl;

    r->continue_sent = 1;

    cl = pt_http_link_bytes(r, pt_http_continue,
                            sizeof(pt_http_continue) - 1);
    if (cl == NULL) {
        return PT_ERROR;
    }

    cl->next = r->out;
    r->out = cl;

    return pt_http_flush(r) == PT_ERROR ? PT_ERROR : PT_OK;
}


static int
pt_http_body_wait(pt_http_request_t *r)
{
    pt_timer_add(r->connection->read, r->hmcf->body_timeout);

    return PT_AGAIN;
}


static int
pt_http_read_length(pt_http_request_t *r, char *dst, size_t size, size_t *n)
{
    size_t            want, avail;
    ssize_t           got;
    pt_buf_t         *b;
    pt_connection_t  *c;

    c = r->connection;
    b = r->hc->buf;
    want = (size_t) pt_min((int64_t) size, r->body.rest);

    avail = b ? (size_t) (b->last - b->pos) : 0;

    if (avail) {
        want = pt_min(want, avail);
        memcpy(dst, b->pos, want);
        b->pos += want;
        *n = want;

    } else {
        if (!c->read->ready) {
            return pt_http_body_wait(r);
        }

        got = c->recv(c, dst, want);

        if (got == PT_AGAIN) {
            return pt_http_body_wait(r);
        }

        if (got <= 0) {
            r->client_aborted = 1;
            return PT_ERROR;
        }

        *n = (size_t) got;
    }

    r->body.rest -= (int64_t) *n;
    r->body.received += *n;

    if (r->body.rest == 0) {
        r->body.done = 1;
    }

    return PT_OK;
}


static int
pt_http_read_chunked(pt_http_request_t *r, char *dst, size_t size, size_t *n)
{
    int               rc;
    size_t            len;
    ssize_t           got;
    pt_buf_t         *src;
    pt_str_t         *pending;
    pt_connection_t  *c;

    c = r->connection;
    pending = &r->body.chunked_pending;

    for ( ;; ) {
        if (pending->len) {
            len = pt_min(size, pending->len);
            memcpy(dst, pending->data, len);
            pending->data += len;
            pending->len -= len;
            *n = len;

            r->body.received += len;

            if (r->body.received > (uint64_t) r->hmcf->max_body_size) {
                return 413;
            }

            return PT_OK;
        }

        /* Bytes that came with the head first, then our own buffer. */
        src = r->hc->buf;
        if (src == NULL || src->pos == src->last) {
            src = r->body.raw;
        }

        if (src && src->pos < src->last) {
            rc = pt_http_chunked_parse(&r->body.chunked,
                                       (const char **) &src->pos, src->last,
                                       pending);
            if (rc == PT_OK) {
                continue;
            }

            if (rc == PT_DONE) {
                r->body.done = 1;
                return PT_DONE;
            }

            if (rc == PT_ERROR) {
                return 400;
            }

            /* PT_AGAIN: this source is used up. */
            continue;
        }

        if (r->body.raw == NULL) {
            r->body.raw = pt_buf_create(r->pool, PT_HTTP_CHUNKED_RAW);
            if (r->body.raw == NULL) {
                return PT_ERROR;
            }
        }

        src = r->body.raw;
        src->pos = src->start;
        src->last = src->start;

        if (!c->read->ready) {
            return pt_http_body_wait(r);
        }

        got = c->recv(c, src->last, (size_t) (src->end - src->last));

        if (got == PT_AGAIN) {
            return pt_http_body_wait(r);
        }

        if (got <= 0) {
            r->client_aborted = 1;
            return PT_ERROR;
        }

        src->last += got;
    }
}


int
pt_http_read_body(pt_http_request_t *r, char *dst, size_t size, size_t *n)
{
    return r->proto->read_body(r, dst, size, n);
}


int
pt_http1_read_body(pt_http_request_t *r, char *dst, size_t size, size_t *n)
{
    pt_connection_t  *c;

    c = r->connection;
    *n = 0;

    if (c->read->timedout) {
        c->read->timedout = 0;
        return 408;
    }

    if (r->body.done) {
        return PT_DONE;
    }

    if (!r->body.started) {
        r->body.started = 1;

        if (r->expect_continue && !r->continue_sent
            && (r->hc->buf == NULL || r->hc->buf->pos == r->hc->buf->last))
        {
            if (pt_http_send_continue(r) != PT_OK) {
                r->client_aborted = 1;
                return PT_ERROR;
            }
        }
    }

    pt_timer_del(c->read);

    if (r->headers_in.chunked) {
        return pt_http_read_chunked(r, dst, size, n);
    }

    return pt_http_read_length(r, dst, size, n);
}


int
pt_http_discard_body(pt_http_request_t *r)
{
    int     rc;
    char    buf[8192];
    size_t  n;

    /* A client told to wait for 100 Continue never sends the body unless
     * asked: there is nothing to drain. */
    if (r->expect_continue && !r->continue_sent) {
        r->keepalive = 0;
        return PT_ERROR;
    }

    r->body.discarding = 1;
    r->body.started = 1;

    for ( ;; ) {
        rc = pt_http_read_body(r, buf, sizeof(buf), &n);

        if (rc == PT_OK) {
            if (r->body.received > (uint64_t) r->hmcf->max_body_size) {
                return PT_ERROR;
            }
            continue;
        }

        if (rc == PT_DONE) {
            return PT_OK;
        }

        if (rc == PT_AGAIN) {
            return PT_AGAIN;
        }

        return PT_ERROR;
    }
}
