/*
 * pt_upstream_call.c: requests the gateway makes itself to an upstream
 * (pt_upstream_call_t in pt_upstream.h), answered whole into memory.
 *
 * The exchange is the proxy's (pt_proxy.c) without a client on the other
 * side: the same balancer, keep-alive pools, connect and TLS, timeouts,
 * passive health and counting, and the same response-head rules
 * (pt_proxy_head.c). What differs is where the answer goes: into one
 * buffer that doubles as it fills, up to max_response, where a chunked
 * body is decoded in place, so a call holds at most that much.
 *
 * done() runs from the event loop only. A call that fails at once
 * (inside _start()) posts an event instead, so a caller never sees its
 * callback run before _start() returned.
 */

#include "pt_upstream.h"
#include "pt_proxy_head.h"
#include "pt_string.h"


#define PT_UPSTREAM_CALL_BUF   4096       /* the first read buffer       */

/* pt_call_fail(): a failure that is not the peer's (memory, our limit). */
#define PT_UPSTREAM_CALL_OURS  -1


/* The first three are the connection's (pt_upstream_opening()). */
enum {
    PT_UPSTREAM_CALL_CONNECTING = PT_UPSTREAM_CONNECTING,
    PT_UPSTREAM_CALL_HANDSHAKE = PT_UPSTREAM_HANDSHAKE,
    PT_UPSTREAM_CALL_SENDING = PT_UPSTREAM_OPEN,
    PT_UPSTREAM_CALL_READING
};


static void pt_call_connect(pt_upstream_call_t *call);
static void pt_call_opening(pt_upstream_call_t *call);
static void pt_call_send(pt_upstream_call_t *call);
static void pt_call_read(pt_upstream_call_t *call);
static void pt_call_fail(pt_upstream_call_t *call, int kind, int err,
    const char *what);
static void pt_call_finish(pt_upstream_call_t *call, int rc, int reusable);


/* RFC 9110 9.2.2: only these may go out twice. */
static int
pt_call_idempotent(pt_upstream_call_t *call)
{
    if (call->method.len == 0) {
        return 1;       /* GET */
    }

    return (pt_http_parse_method(call->method.data, call->method.len)
            & (PT_HTTP_GET | PT_HTTP_HEAD | PT_HTTP_OPTIONS | PT_HTTP_PUT
               | PT_HTTP_DELETE | PT_HTTP_TRACE)) != 0;
}


static void
pt_call_cleanup(void *data)
{
    pt_upstream_call_cancel(data);
}


static void
pt_call_posted(pt_event_t *ev)
{
    pt_upstream_call_t  *call;

    call = ev->data;
    call->done(call);
}


/* The whole call's time is up: no retry, whatever the state. */
static void
pt_call_deadline(pt_event_t *ev)
{
    pt_upstream_call_t  *call;

    call = ev->data;

    pt_call_fail(call, call->state <= PT_UPSTREAM_CALL_HANDSHAKE
                       ? PT_UPSTREAM_FAIL_CONNECT : PT_UPSTREAM_FAIL_RESPONSE,
                 0, NULL);
}


/* The attempt's peer, counted in flight. */
static void
pt_call_use(pt_upstream_call_t *call, pt_upstream_peer_t *peer)
{
    call->peer = pt_upstream_use(call->us, peer, &call->tried);
    call->counted = 1;
}


/* Back to nothing sent and nothing read, for another connection. */
static void
pt_call_reset(pt_upstream_call_t *call)
{
    call->state = PT_UPSTREAM_CALL_CONNECTING;
    call->reused = 0;
    call->retried = 0;
    call->got_response = 0;
    call->head_done = 0;
    call->resp_chunked = 0;
    call->resp_until_close = 0;
    call->keepalive = 0;
    call->scan = (pt_http_head_scan_t) { 0 };
    call->chunked = (pt_http_chunked_t) { 0 };
    call->rest = -1;
    call->in_len = 0;
    call->parsed = 0;
    call->body_start = 0;
    call->body_len = 0;
    call->status = 0;
    call->headers_out.nelts = 0;
}


int
pt_upstream_call_start(pt_upstream_call_t *call)
{
    pt_upstream_t       *us;
    pt_upstream_peer_t  *peer;

    us = call->us;
    call->rc = PT_ERROR;
    call->error[0] = '\0';
    pt_str_null(&call->body);

    if (us == NULL || call->pool == NULL || call->done == NULL) {
        snprintf(call->error, sizeof(call->error),
                 "a call needs an upstream, a pool and done()");
        return PT_ERROR;
    }

    if (pt_array_init(&call->headers_out, call->pool, 8,
                      sizeof(pt_http_header_t)) != PT_OK
        || pt_pool_cleanup_add(call->pool, pt_call_cleanup, call) == NULL)
    {
        snprintf(call->error, sizeof(call->error), "out of memory");
        return PT_ERROR;
    }

    if (call->max_response == 0) {
        call->max_response = PT_UPSTREAM_CALL_MAX;
    }

    pt_call_reset(call);
    call->peer = NULL;
    call->uc = NULL;
    call->tried = 0;
    call->tries = 0;
    call->in = NULL;
    call->in_size = 0;
    call->finished = 0;
    call->counted = 0;
    call->group_counted = 0;
    call->deadline = (pt_event_t) { .data = call,
                                    .handler = pt_call_deadline };
    call->post = (pt_event_t) { .data = call, .handler = pt_call_posted };
    call->starting = 1;

    /* The circuit breaker counts these calls like proxied requests. */
    if (us->max_inflight
        && __atomic_load_n(&us->group->inflight, __ATOMIC_RELAXED)
           >= (uint64_t) us->max_inflight)
    {
        snprintf(call->error, sizeof(call->error),
                 "upstream \"%s\": max_inflight %ld reached", us->name.data,
                 (long) us->max_inflight);
        pt_call_finish(call, PT_ERROR, 0);
        call->starting = 0;
        return PT_OK;
    }

    __atomic_add_fetch(&us->group->inflight, 1, __ATOMIC_RELAXED);
    call->group_counted = 1;
    pt_upstream_count_request(us);

    peer = pt_upstream_pick(call->r, us, 0);

    if (peer == NULL) {
        snprintf(call->error, sizeof(call->error),
                 "upstream \"%s\": no usable peer", us->name.data);
        pt_call_finish(call, PT_ERROR, 0);
        call->starting = 0;
        return PT_OK;
    }

    if (call->timeout) {
        pt_timer_add(&call->deadline, call->timeout);
    }

    pt_call_use(call, peer);
    pt_call_connect(call);

    call->starting = 0;

    return PT_OK;
}


/* The connection, closed (or kept when the answer was whole and the
 * upstream allows it), with its timers. */
static void
pt_call_drop(pt_upstream_call_t *call, int reusable)
{
    pt_connection_t  *uc;

    uc = call->uc;
    if (uc == NULL) {
        return;
    }

    if (call->got_response) {
        pt_upstream_keep_session(call->us, call->peer, uc);
    }

    pt_timer_del(uc->read);
    pt_timer_del(uc->write);

    pt_upstream_release(call->us, call->peer, uc, reusable);
    call->uc = NULL;
}


/* Everything the call holds but its memory goes back. */
static void
pt_call_release(pt_upstream_call_t *call, int reusable)
{
    pt_call_drop(call, reusable);

    pt_timer_del(&call->deadline);

    if (call->counted) {
        __atomic_sub_fetch(&call->peer->inflight, 1, __ATOMIC_RELAXED);
        call->counted = 0;
    }

    if (call->group_counted) {
        __atomic_sub_fetch(&call->us->group->inflight, 1, __ATOMIC_RELAXED);
        call->group_counted = 0;
    }
}


void
pt_upstream_call_cancel(pt_upstream_call_t *call)
{
    pt_delete_posted_event(&call->post);

    if (call->finished) {
        return;
    }

    call->finished = 1;
    pt_call_release(call, 0);
}


/* The end: done() is the last thing that touches the call, since it may
 * free the call's pool. */
static void
pt_call_finish(pt_upstream_call_t *call, int rc, int reusable)
{
    call->rc = rc;

    if (rc == PT_OK) {
        call->body.data = call->in + call->body_start;
        call->body.len = call->body_len;
    }

    pt_call_release(call, reusable);
    call->finished = 1;

    if (call->starting) {
        pt_post_event(&call->post);
        return;
    }

    call->done(call);
}


static void
pt_call_error(pt_upstream_call_t *call, int err, const char *what)
{
    if (what == NULL) {
        snprintf(call->error, sizeof(call->error),
                 "timed out after %lu ms, upstream: %s",
                 (unsigned long) call->timeout, call->peer->text);
        return;
    }

    snprintf(call->error, sizeof(call->error), "%s%s%s, upstream: %s", what,
             err ? ": " : "", err ? strerror(err) : "", call->peer->text);
}


/* Another peer after a connect failure, when one is left and retries
 * and the budget allow: nothing was sent, so any method may go. Returns
 * 1 if the call went on elsewhere. */
static int
pt_call_retry(pt_upstream_call_t *call)
{
    pt_upstream_peer_t  *next;

    next = pt_upstream_retry_peer(call->r, call->us, call->tried,
                                  call->tries, call->peer);
    if (next == NULL) {
        return 0;
    }

    pt_call_drop(call, 0);

    if (call->counted) {
        __atomic_sub_fetch(&call->peer->inflight, 1, __ATOMIC_RELAXED);
        call->counted = 0;
    }

    pt_call_reset(call);
    pt_call_use(call, next);
    call->tries++;

    pt_call_connect(call);

    return 1;
}


/* A keep-alive connection the upstream closed while it sat idle fails on
 * first use: a fresh one to the same peer, once, if the method allows
 * sending it twice (not counted as a retry, as in the proxy). */
static int
pt_call_retry_stale(pt_upstream_call_t *call)
{
    if (!call->reused || call->retried || call->got_response
        || !pt_call_idempotent(call))
    {
        return 0;
    }

    pt_call_drop(call, 0);
    pt_call_reset(call);
    call->retried = 1;

    pt_call_connect(call);

    return 1;
}


static void
pt_call_fail(pt_upstream_call_t *call, int kind, int err, const char *what)
{
    pt_call_error(call, err, what);

    if (kind != PT_UPSTREAM_CALL_OURS) {
        pt_upstream_peer_failed(call->us, call->peer,
                                (pt_upstream_fail_e) kind);

        /* The deadline (what == NULL) leaves no time for another. */
        if (kind == PT_UPSTREAM_FAIL_CONNECT && what
            && pt_call_retry(call))
        {
            return;
        }
    }

    pt_call_finish(call, PT_ERROR, 0);
}


/* The request head: the start line, Host, the caller's fields, and
 * Connection: close when the upstream keeps no connection. */
static int
pt_call_head(pt_upstream_call_t *call, pt_upstream_peer_t *peer)
{
    char                    *b, *start;
    size_t                   len, i;
    pt_str_t                 method, target, host;
    const pt_http_header_t  *h;

    method = call->method;
    if (method.len == 0) {
        pt_str_set(&method, "GET");
    }

    target = call->target;
    if (target.len == 0) {
        pt_str_set(&target, "/");
    }

    host = call->host;
    if (host.len == 0) {
        host = call->us->server_name;
    }
    if (host.len == 0) {
        host.data = peer->shared->text;
        host.len = strlen(peer->shared->text);
    }

    h = call->headers;

    len = method.len + 1 + target.len + sizeof(" HTTP/1.1\r\nHost: \r\n") - 1
          + host.len + sizeof("Connection: close\r\n\r\n") - 1;

    for (i = 0; i < call->nheaders; i++) {
        len += h[i].name.len + 2 + h[i].value.len + 2;
    }

    start = pt_pnalloc(call->pool, len);
    if (start == NULL) {
        return PT_ERROR;
    }

    b = pt_cpymem(start, method.data, method.len);
    *b++ = ' ';
    b = pt_cpymem(b, target.data, target.len);
    b = pt_cpystr(b, " HTTP/1.1\r\nHost: ");
    b = pt_cpymem(b, host.data, host.len);
    b = pt_cpystr(b, "\r\n");

    for (i = 0; i < call->nheaders; i++) {
        if (h[i].name.len == 0) {
            continue;           /* removed by an edit */
        }

        b = pt_cpymem(b, h[i].name.data, h[i].name.len);
        b = pt_cpystr(b, ": ");
        b = pt_cpymem(b, h[i].value.data, h[i].value.len);
        b = pt_cpystr(b, "\r\n");
    }

    if (call->us->keepalive == 0) {
        b = pt_cpystr(b, "Connection: close\r\n");
    }

    b = pt_cpystr(b, "\r\n");

    pt_buf_init(&call->out, start, len);
    call->out.last = b;

    return PT_OK;
}


static void
pt_call_write_handler(pt_event_t *ev)
{
    pt_connection_t     *uc;
    pt_upstream_call_t  *call;

    uc = ev->data;
    call = uc->data;

    if (call->state < PT_UPSTREAM_CALL_SENDING) {
        pt_call_opening(call);
        return;
    }

    if (call->state == PT_UPSTREAM_CALL_SENDING) {
        if (ev->timedout) {
            pt_call_fail(call, PT_UPSTREAM_FAIL_RESPONSE, 0,
                         "upstream timed out while sending the request");
            return;
        }

        pt_call_send(call);
    }
}


static void
pt_call_read_handler(pt_event_t *ev)
{
    pt_connection_t     *uc;
    pt_upstream_call_t  *call;

    uc = ev->data;
    call = uc->data;

    if (ev->timedout) {
        pt_call_fail(call, PT_UPSTREAM_FAIL_RESPONSE, 0,
                     "upstream timed out while reading the response");
        return;
    }

    if (call->state < PT_UPSTREAM_CALL_SENDING) {
        pt_call_opening(call);
        return;
    }

    /* While sending, an answer waits in the socket; it is read once the
     * request is out. */
    if (call->state == PT_UPSTREAM_CALL_READING) {
        pt_call_read(call);
    }
}


static void
pt_call_connect(pt_upstream_call_t *call)
{
    int                  rc, err, reused;
    const char          *what;
    pt_connection_t     *uc;
    pt_upstream_peer_t  *peer;

    peer = pt_upstream_peer_of(call->us, call->peer);
    if (peer == NULL) {
        pt_call_fail(call, PT_UPSTREAM_CALL_OURS, 0,
                     "the peer left the upstream");
        return;
    }

    if (pt_call_head(call, peer) != PT_OK) {
        pt_call_fail(call, PT_UPSTREAM_CALL_OURS, 0, "out of memory");
        return;
    }

    rc = pt_upstream_open(call->us, peer, call->retried, &uc, &reused, &err,
                          &what);

    if (rc == PT_ERROR) {
        pt_call_fail(call, PT_UPSTREAM_FAIL_CONNECT, err, what);
        return;
    }

    call->uc = uc;
    call->reused = reused;
    call->state = rc;
    uc->data = call;
    uc->read->handler = pt_call_read_handler;
    uc->write->handler = pt_call_write_handler;

    pt_call_opening(call);
}


/* Connecting and TLS, driven by either event until the connection is
 * ready, within the connect timeout; then the request goes. */
static void
pt_call_opening(pt_upstream_call_t *call)
{
    int          rc, err;
    const char  *what;

    if (call->state < PT_UPSTREAM_CALL_SENDING) {
        rc = pt_upstream_opening(call->us, call->uc, call->state, &err,
                                 &what);

        if (rc == PT_ERROR) {
            pt_call_fail(call, PT_UPSTREAM_FAIL_CONNECT, err, what);
            return;
        }

        call->state = rc;

        if (rc != PT_UPSTREAM_CALL_SENDING) {
            return;
        }
    }

    pt_call_send(call);
}


static void
pt_call_send(pt_upstream_call_t *call)
{
    pt_chain_t        cl, *rest;
    pt_connection_t  *uc;

    uc = call->uc;

    while (call->out.pos < call->out.last) {
        if (!uc->write->ready) {
            pt_timer_add(uc->write, call->us->write_timeout);
            return;
        }

        cl.buf = &call->out;
        cl.next = NULL;

        rest = uc->send_chain(uc, &cl, 0);

        if (rest == (pt_chain_t *) PT_ERROR) {
            if (pt_call_retry_stale(call)) {
                return;
            }

            pt_call_fail(call, PT_UPSTREAM_FAIL_RESPONSE, errno,
                         "send() to upstream failed");
            return;
        }

        if (rest) {
            pt_timer_add(uc->write, call->us->write_timeout);
            return;
        }
    }

    pt_timer_del(uc->write);

    call->state = PT_UPSTREAM_CALL_READING;
    pt_timer_add(uc->read, call->us->read_timeout);

    if (uc->read->ready) {
        pt_call_read(call);
    }
}


/* Room for more of the answer: the buffer doubles, up to max_response
 * (a declared length is taken at once). PT_OK, or PT_ERROR after
 * failing. */
static int
pt_call_grow(pt_upstream_call_t *call)
{
    char    *mem;
    size_t   size, want;

    if (call->in_size >= call->max_response) {
        pt_call_fail(call, PT_UPSTREAM_CALL_OURS, 0,
                     "upstream's answer is too large");
        return PT_ERROR;
    }

    size = call->in_size ? call->in_size * 2 : PT_UPSTREAM_CALL_BUF;

    if (call->head_done && call->rest >= 0) {
        want = call->body_start + (size_t) call->rest;
        size = pt_max(size, want);
    }

    size = pt_min(size, call->max_response);

    mem = pt_pnalloc(call->pool, size);
    if (mem == NULL) {
        pt_call_fail(call, PT_UPSTREAM_CALL_OURS, 0, "out of memory");
        return PT_ERROR;
    }

    if (call->in) {
        memcpy(mem, call->in, call->in_len);
        (void) pt_pfree(call->pool, call->in);
    }

    call->in = mem;
    call->in_size = size;

    return PT_OK;
}


/* The final response head (interim ones are dropped): its fields into
 * headers_out, its framing into the call. PT_OK, PT_AGAIN, or PT_ERROR
 * after failing. */
static int
pt_call_parse_head(pt_upstream_call_t *call)
{
    int                     rc;
    size_t                  n;
    pt_upstream_t          *us;
    pt_http_header_t        hdrs[128];
    pt_proxy_response_t     resp;
    pt_http_status_line_t   sl;

    us = call->us;

    for ( ;; ) {
        rc = pt_http_scan_head(&call->scan, call->in + call->parsed,
                               call->in_len - call->parsed);
        if (rc == PT_AGAIN) {
            return PT_AGAIN;
        }

        n = pt_nelems(hdrs);

        if (pt_http_parse_response_head(call->in + call->parsed, &call->scan,
                                        &sl, hdrs, &n) != PT_OK)
        {
            pt_call_fail(call, PT_UPSTREAM_FAIL_RESPONSE, 0,
                         "upstream sent an invalid response");
            return PT_ERROR;
        }

        if (sl.status >= 200) {
            break;
        }

        if (sl.status == 101) {
            pt_call_fail(call, PT_UPSTREAM_FAIL_RESPONSE, 0,
                         "upstream switched protocols without being asked to");
            return PT_ERROR;
        }

        call->parsed += call->scan.head_end;
        call->scan = (pt_http_head_scan_t) { 0 };
    }

    /* The peer's health, as the proxy judges it. */
    if (sl.status == 502 || sl.status == 503 || sl.status == 504) {
        pt_upstream_peer_failed(us, call->peer, PT_UPSTREAM_FAIL_RESPONSE);
    } else {
        pt_upstream_peer_ok(us, call->peer);
    }

    rc = pt_proxy_response_fields(call->pool, &call->headers_out, sl.version,
                                  sl.status, hdrs, n, &resp);
    if (rc != PT_OK) {
        pt_call_fail(call, rc == PT_ERROR ? PT_UPSTREAM_CALL_OURS
                                          : PT_UPSTREAM_FAIL_RESPONSE,
                     0, rc == PT_ERROR ? "out of memory" : resp.error);
        return PT_ERROR;
    }

    call->status = sl.status;
    call->keepalive = resp.keepalive;
    call->parsed += call->scan.head_end;
    call->body_start = call->parsed;
    call->head_done = 1;

    if (pt_str_caseeq(&call->method, "HEAD") || sl.status == 204
        || sl.status == 304)
    {
        call->rest = 0;

    } else if (resp.chunked) {
        call->resp_chunked = 1;

    } else if (resp.content_length >= 0) {
        call->rest = resp.content_length;

        if ((uint64_t) resp.content_length
            > (uint64_t) (call->max_response - call->body_start))
        {
            pt_call_fail(call, PT_UPSTREAM_CALL_OURS, 0,
                         "upstream's answer is too large");
            return PT_ERROR;
        }

    } else {
        call->resp_until_close = 1;
        call->keepalive = 0;
    }

    return PT_OK;
}


/* Decode what the buffer holds of a chunked body in place: the payload
 * runs move down to the end of the body decoded so far, and what is not
 * decoded yet follows them, so the buffer holds the head, the body and
 * at most one unfinished piece of framing. */
static int
pt_call_dechunk(pt_upstream_call_t *call)
{
    int          rc;
    size_t       left;
    pt_str_t     run;
    const char  *pos, *end;

    pos = call->in + call->parsed;
    end = call->in + call->in_len;

    for ( ;; ) {
        rc = pt_http_chunked_parse(&call->chunked, &pos, end, &run);
        if (rc != PT_OK) {
            break;
        }

        memmove(call->in + call->body_start + call->body_len, run.data,
                run.len);
        call->body_len += run.len;
    }

    if (rc == PT_ERROR) {
        pt_call_fail(call, PT_UPSTREAM_FAIL_RESPONSE, 0,
                     "upstream sent an invalid chunked body");
        return PT_ERROR;
    }

    left = (size_t) (end - pos);
    call->parsed = call->body_start + call->body_len;
    memmove(call->in + call->parsed, pos, left);
    call->in_len = call->parsed + left;

    if (rc == PT_DONE) {
        if (left) {
            call->keepalive = 0;    /* bytes after the message */
        }

        return PT_DONE;
    }

    return PT_AGAIN;
}


/* PT_DONE once the answer is whole, PT_AGAIN, or PT_ERROR after
 * failing. */
static int
pt_call_parse(pt_upstream_call_t *call)
{
    int     rc;
    size_t  have;

    if (!call->head_done) {
        rc = pt_call_parse_head(call);
        if (rc != PT_OK) {
            return rc;
        }
    }

    if (call->resp_chunked) {
        return pt_call_dechunk(call);
    }

    have = call->in_len - call->body_start;

    if (call->resp_until_close) {
        call->body_len = have;
        return PT_AGAIN;
    }

    if (have < (size_t) call->rest) {
        return PT_AGAIN;
    }

    if (have > (size_t) call->rest) {
        call->keepalive = 0;        /* bytes after the message */
    }

    call->body_len = (size_t) call->rest;

    return PT_DONE;
}


static void
pt_call_read(pt_upstream_call_t *call)
{
    int               rc;
    ssize_t           n;
    const char       *what;
    pt_connection_t  *uc;

    uc = call->uc;

    for ( ;; ) {
        if (call->in_len == call->in_size && pt_call_grow(call) != PT_OK) {
            return;
        }

        if (!uc->read->ready) {
            break;
        }

        n = uc->recv(uc, call->in + call->in_len,
                     call->in_size - call->in_len);

        if (n == PT_AGAIN) {
            break;
        }

        if (n == 0 && call->head_done && call->resp_until_close) {
            pt_call_finish(call, PT_OK, 0);
            return;
        }

        if (n == 0 || n == PT_ERROR) {
            if (pt_call_retry_stale(call)) {
                return;
            }

            if (n) {
                what = "recv() from upstream failed";
            } else if (call->got_response) {
                what = "upstream closed the connection mid-response";
            } else {
                what = "upstream closed the connection before responding";
            }

            pt_call_fail(call, PT_UPSTREAM_FAIL_RESPONSE, n ? errno : 0,
                         what);
            return;
        }

        call->got_response = 1;
        call->in_len += (size_t) n;

        rc = pt_call_parse(call);

        if (rc == PT_DONE) {
            pt_call_finish(call, PT_OK, call->keepalive);
            return;
        }

        if (rc == PT_ERROR) {
            return;
        }
    }

    /* The read timeout runs between reads, as the proxy's does. */
    pt_timer_add(uc->read, call->us->read_timeout);
}
