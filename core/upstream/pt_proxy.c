/*
 * pt_proxy.c: the `upstream:` action: forward a request to a target and
 * stream the response back.
 *
 * Both directions use one fixed buffer each (from the worker's block
 * cache), and each side only reads when the other has taken everything:
 * the request body is read from the client only once the previous piece
 * reached the upstream, and the response is read from the upstream only
 * once the client took the previous piece. So a request costs the same
 * memory whether its body is 1 KiB or 50 GiB.
 *
 * WebSocket upgrades and the tunnel after a 101 are in pt_proxy_ws.c.
 */

#include "pt_proxy.h"
#include "pt_proxy_head.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_PROXY_CHUNK_ROOM   16      /* "ffffffff\r\n" before a chunk  */
#define PT_PROXY_CHUNK_TAIL   8       /* "\r\n0\r\n\r\n" after it       */


static int pt_proxy_build_head(pt_proxy_t *p);
static int pt_proxy_interim(pt_proxy_t *p, pt_http_status_line_t *sl,
    pt_http_header_t *h, size_t n);
static void pt_proxy_connect(pt_proxy_t *p);
static int pt_proxy_pick(pt_proxy_t *p);
static int pt_proxy_unavailable(pt_http_request_t *r);
static void pt_proxy_opening(pt_proxy_t *p);
static int pt_proxy_retry(pt_proxy_t *p);
static void pt_proxy_restart(pt_proxy_t *p);
static void pt_proxy_use(pt_proxy_t *p, pt_upstream_peer_t *peer);
static void pt_proxy_upstream_read(pt_event_t *ev);
static void pt_proxy_upstream_write(pt_event_t *ev);
static void pt_proxy_client_read(pt_http_request_t *r);
static void pt_proxy_client_write(pt_http_request_t *r);
static void pt_proxy_send(pt_proxy_t *p);
static int pt_proxy_fill_body(pt_proxy_t *p);
static void pt_proxy_read_response(pt_proxy_t *p);
static int pt_proxy_process_head(pt_proxy_t *p);
static void pt_proxy_stream(pt_proxy_t *p);
static void pt_proxy_cleanup(void *data);
static void pt_proxy_deadline(pt_event_t *ev);


int
pt_proxy_handler(pt_http_request_t *r)
{
    int                   rc;
    char                 *mem;
    pt_proxy_t           *p;
    pt_upstream_t        *us;
    pt_http_route_conf_t *hrcf;

    us = pt_upstream_of_route(r->route);
    if (us == NULL) {
        return 500;
    }

    p = pt_pcalloc(r->pool, sizeof(pt_proxy_t));
    if (p == NULL) {
        return PT_ERROR;
    }

    p->r = r;
    p->us = us;
    pt_http_set_module_ctx(r, p, pt_upstream_module);
    p->rest = -1;
    p->start_usec = pt_monotonic_usec();
    r->upstream_name = us->name;

    if (pt_pool_cleanup_add(r->pool, pt_proxy_cleanup, p) == NULL) {
        return PT_ERROR;
    }

    rc = pt__proxy_websocket(p);
    if (rc != PT_OK) {
        return rc;
    }

    /* The circuit breaker: beyond max_inflight, 503 at once. */
    if (us->max_inflight
        && __atomic_load_n(&us->group->inflight, __ATOMIC_RELAXED)
           >= (uint64_t) us->max_inflight)
    {
        pt_http_log_request(r, PT_LOG_WARN,
                            "upstream \"%s\": max_inflight %ld reached",
                            us->name.data,
                            (long) us->max_inflight);
        return pt_proxy_unavailable(r);
    }

    __atomic_add_fetch(&us->group->inflight, 1, __ATOMIC_RELAXED);
    p->group_counted = 1;
    pt_upstream_count_request(us);

    if (pt_proxy_pick(p) != PT_OK) {
        pt_http_log_request(r, PT_LOG_ERR, "upstream \"%s\": no usable peer",
                            us->name.data);
        return pt_proxy_unavailable(r);
    }

    if (pt_proxy_build_head(p) != PT_OK) {
        return PT_ERROR;
    }

    mem = pt_block_get(&pt_http_body_blocks);
    if (mem == NULL) {
        return PT_ERROR;
    }

    pt_buf_init(&p->in, mem, pt_http_body_blocks.size);

    if (pt_http_has_body(r)) {
        mem = pt_block_get(&pt_http_body_blocks);
        if (mem == NULL) {
            return PT_ERROR;
        }

        pt_buf_init(&p->body, mem, pt_http_body_blocks.size);

    } else {
        p->req_body_done = 1;
    }

    hrcf = r->route->conf[pt_http_module.index];

    if (hrcf->timeout) {
        p->deadline.handler = pt_proxy_deadline;
        p->deadline.data = p;
        pt_timer_add(&p->deadline, hrcf->timeout);
    }

    r->read_event_handler = pt_proxy_client_read;
    r->write_event_handler = pt_proxy_client_write;

    pt_proxy_connect(p);

    return PT_DONE;
}


/* The request head for the upstream (pt_proxy_head.c has the rules). */
static int
pt_proxy_build_head(pt_proxy_t *p)
{
    pt_http_request_t     *r;
    pt_proxy_head_conf_t   conf;

    r = p->r;

    conf.peer.data = p->peer->text;
    conf.peer.len = strlen(p->peer->text);
    conf.client = r->connection->addr_text;
    pt_http_scheme(r, &conf.scheme);
    conf.body = pt_proxy_body_framing(r);
    conf.close = (p->us->keepalive == 0);
    conf.upgrade = p->upgrade;
    conf.ws_key = p->ws_key;

    p->req_chunked = (conf.body == PT_PROXY_BODY_CHUNKED);

    return pt_proxy_request_head(r, &conf, &p->head);
}


/* 503 with Retry-After: no peer can take the request now. */
static int
pt_proxy_unavailable(pt_http_request_t *r)
{
    if (pt_http_header_out_set(r, "Retry-After", 11, "1", 1) != PT_OK) {
        return PT_ERROR;
    }

    return 503;
}


/* Choose the attempt's peer among those not tried yet. */
static int
pt_proxy_pick(pt_proxy_t *p)
{
    pt_upstream_peer_t  *peer;

    peer = pt_upstream_pick(p->r, p->us, p->tried);
    if (peer == NULL) {
        return PT_DECLINED;
    }

    pt_proxy_use(p, peer);

    return PT_OK;
}


/* The attempt's peer, counted in flight. */
static void
pt_proxy_use(pt_proxy_t *p, pt_upstream_peer_t *peer)
{
    p->peer = pt_upstream_use(p->us, peer, &p->tried);
    p->counted = 1;

    p->r->upstream_addr.data = p->peer->text;
    p->r->upstream_addr.len = strlen(p->peer->text);
}


static void
pt_proxy_connect(pt_proxy_t *p)
{
    int                  rc, err, reused;
    const char          *what;
    pt_connection_t     *uc;
    pt_upstream_peer_t  *peer;

    peer = pt_upstream_peer_of(p->us, p->peer);
    if (peer == NULL) {
        pt__proxy_fail(p, 502, 0, "the peer left the upstream");
        return;
    }

    rc = pt_upstream_open(p->us, peer, p->retried, &uc, &reused, &err,
                          &what);

    if (rc == PT_ERROR) {
        pt__proxy_fail(p, 502, err, what);
        return;
    }

    p->uc = uc;
    p->reused = reused;
    p->state = rc;
    uc->data = p;
    uc->read->handler = pt_proxy_upstream_read;
    uc->write->handler = pt_proxy_upstream_write;

    pt_proxy_opening(p);
}


/* Connecting and TLS, driven by either event until the connection is
 * ready, within the connect timeout; then the request goes. */
static void
pt_proxy_opening(pt_proxy_t *p)
{
    int               rc, err;
    const char       *what;
    pt_connection_t  *uc;

    uc = p->uc;

    if (p->state < PT_PROXY_SENDING) {
        rc = pt_upstream_opening(p->us, uc, p->state, &err, &what);

        if (rc == PT_ERROR) {
            pt__proxy_fail(p, uc->read->timedout || uc->write->timedout
                              ? 504 : 502, err, what);
            return;
        }

        p->state = rc;

        if (rc != PT_PROXY_SENDING) {
            return;
        }
    }

    pt_proxy_send(p);
}


static void
pt_proxy_upstream_write(pt_event_t *ev)
{
    pt_proxy_t       *p;
    pt_connection_t  *uc;

    uc = ev->data;
    p = uc->data;

    if (p->tunnel) {
        pt_tunnel_run(p->tunnel);
        return;
    }

    if (p->state < PT_PROXY_SENDING) {
        pt_proxy_opening(p);
        return;
    }

    /* Sending goes on after the response started: a backend may stream
     * its answer while it still reads the body. */
    if (!p->req_sent) {
        if (ev->timedout) {
            pt__proxy_fail(p, 504, 0, "upstream timed out while sending the "
                          "request");
            return;
        }

        pt_proxy_send(p);
    }
}


/* Send head and body pieces until the upstream has all of the request,
 * refilling the body buffer from the client as it drains. */
static void
pt_proxy_send(pt_proxy_t *p)
{
    int                rc;
    pt_chain_t         cl[2], *rest;
    pt_connection_t   *uc;

    uc = p->uc;

    for ( ;; ) {
        if (p->head.pos == p->head.last && p->body.pos == p->body.last) {
            if (p->req_body_done) {
                break;
            }

            rc = pt_proxy_fill_body(p);

            if (rc == PT_AGAIN) {
                return;         /* the client read event calls us back */
            }

            if (rc != PT_OK) {
                pt__proxy_fail(p, rc == PT_ERROR ? 499 : (unsigned) rc, 0,
                              NULL);
                return;
            }

            continue;
        }

        cl[0].buf = &p->head;
        cl[0].next = &cl[1];
        cl[1].buf = &p->body;
        cl[1].next = NULL;

        if (!uc->write->ready) {
            if (!uc->write->timer_set) {
                pt_timer_add(uc->write, p->us->write_timeout);
            }
            return;
        }

        rest = uc->send_chain(uc, p->head.pos == p->head.last ? &cl[1] : cl,
                              0);

        if (rest == (pt_chain_t *) PT_ERROR) {
            if (p->got_response) {
                /* It answered already and stopped listening: fine, the
                 * connection just cannot be reused. */
                p->upstream_keepalive = 0;
                p->req_sent = 1;
                return;
            }

            pt__proxy_fail(p, 502, errno, "send() to upstream failed");
            return;
        }

        if (rest) {
            pt_timer_add(uc->write, p->us->write_timeout);
            return;
        }

        if (p->body.start) {
            p->body.pos = p->body.start + PT_PROXY_CHUNK_ROOM;
            p->body.last = p->body.pos;
        }
    }

    pt_timer_del(uc->write);
    p->req_sent = 1;

    if (p->state != PT_PROXY_SENDING) {
        return;         /* the response is already on its way */
    }

    p->state = PT_PROXY_WAITING;

    if (!uc->read->timer_set) {
        pt_timer_add(uc->read, p->us->read_timeout);
    }

    /* The response may have arrived while we were still sending. */
    if (uc->read->ready) {
        pt_proxy_read_response(p);
    }
}


/* One piece of the client's body into p->body, framed as a chunk when the
 * client sent it chunked (its own framing is not passed through). */
static int
pt_proxy_fill_body(pt_proxy_t *p)
{
    int                 rc;
    char                size[PT_PROXY_CHUNK_ROOM];
    size_t              n, room, hlen;
    pt_buf_t           *b;
    pt_http_request_t  *r;

    r = p->r;
    b = &p->body;

    if (b->pos == b->last) {
        b->pos = b->start + PT_PROXY_CHUNK_ROOM;
        b->last = b->pos;
    }

    room = (size_t) (b->end - b->last) - PT_PROXY_CHUNK_TAIL;

    rc = pt_http_read_body(r, b->last, room, &n);

    if (rc == PT_AGAIN) {
        return PT_AGAIN;
    }

    if (rc == PT_DONE) {
        p->req_body_done = 1;

        if (p->req_chunked) {
            b->last = pt_cpystr(b->last, "0\r\n\r\n");
        }

        return PT_OK;
    }

    if (rc != PT_OK) {
        return rc;
    }

    p->body_started = 1;

    if (p->req_chunked) {
        hlen = (size_t) snprintf(size, sizeof(size), "%zx\r\n", n);
        b->pos -= hlen;
        memcpy(b->pos, size, hlen);
        b->last += n;
        b->last = pt_cpystr(b->last, "\r\n");

    } else {
        b->last += n;
    }

    if (pt_http_has_body(r) == 0) {
        p->req_body_done = 1;

        if (p->req_chunked) {
            b->last = pt_cpystr(b->last, "0\r\n\r\n");
        }
    }

    return PT_OK;
}


static void
pt_proxy_client_read(pt_http_request_t *r)
{
    pt_proxy_t  *p;

    p = pt_http_get_module_ctx(r, pt_upstream_module);

    if (p && p->tunnel) {
        pt_tunnel_run(p->tunnel);
        return;
    }

    if (p && p->uc && p->state >= PT_PROXY_SENDING && !p->req_sent
        && !p->req_body_done && p->body.pos == p->body.last)
    {
        pt_proxy_send(p);
        return;
    }

    pt_http_block_reading(r);
}


static void
pt_proxy_client_write(pt_http_request_t *r)
{
    pt_proxy_t  *p;

    p = pt_http_get_module_ctx(r, pt_upstream_module);

    if (p && p->tunnel) {
        pt_tunnel_run(p->tunnel);
        return;
    }

    if (r->connection->write->timedout) {
        r->connection->write->timedout = 0;
        pt_http_log_request(r, PT_LOG_INFO,
                            "client timed out receiving the response");
        r->error = 1;
        pt_http_finalize(r, PT_ERROR);
        return;
    }

    if (p && p->state == PT_PROXY_STREAMING) {
        pt_proxy_stream(p);
        return;
    }

    if (p && p->state == PT_PROXY_SWITCHING) {
        pt__proxy_switching(p);
        return;
    }

    /* Before the response: only a 100 Continue can be waiting. */
    if (r->out && pt_http_flush(r) == PT_ERROR) {
        pt_http_finalize(r, PT_ERROR);
    }
}


static void
pt_proxy_upstream_read(pt_event_t *ev)
{
    pt_proxy_t       *p;
    pt_connection_t  *uc;

    uc = ev->data;
    p = uc->data;

    if (p->tunnel) {
        pt_tunnel_run(p->tunnel);
        return;
    }

    if (ev->timedout) {
        pt__proxy_fail(p, 504, 0, "upstream timed out while reading the "
                      "response");
        return;
    }

    if (p->state == PT_PROXY_SWITCHING) {
        return;         /* read once the 101 is with the client */
    }

    if (p->state == PT_PROXY_STREAMING) {
        pt_proxy_stream(p);
        return;
    }

    if (p->state < PT_PROXY_SENDING) {
        pt_proxy_opening(p);
        return;
    }

    pt_proxy_read_response(p);
}


/* RFC 9110 9.2.2: a method the client may repeat without harm. */
static int
pt_proxy_idempotent(pt_http_request_t *r)
{
    return (r->method & (PT_HTTP_GET | PT_HTTP_HEAD | PT_HTTP_OPTIONS
                         | PT_HTTP_PUT | PT_HTTP_DELETE | PT_HTTP_TRACE))
           != 0;
}


/* A keep-alive connection the upstream closed while it sat idle fails on
 * first use; when nothing of the request is lost, try a fresh one. */
static int
pt_proxy_retry_stale(pt_proxy_t *p)
{
    /* A POST may have been acted on even if no answer came: never twice. */
    if (!p->reused || p->retried || p->got_response || p->body_started
        || !pt_proxy_idempotent(p->r))
    {
        return 0;
    }

    pt_timer_del(p->uc->read);
    pt_timer_del(p->uc->write);
    pt_upstream_release(p->us, p->peer, p->uc, 0);
    p->uc = NULL;

    pt_proxy_restart(p);
    p->retried = 1;

    pt_proxy_connect(p);

    return 1;
}


/* Back to a request not yet sent, for another connection. */
static void
pt_proxy_restart(pt_proxy_t *p)
{
    pt_http_request_t  *r;

    r = p->r;

    p->head.pos = p->head.start;
    p->scan = (pt_http_head_scan_t) { 0 };
    p->chunked = (pt_http_chunked_t) { 0 };
    p->in.pos = p->in.start;
    p->in.last = p->in.start;
    p->rest = -1;
    p->state = PT_PROXY_CONNECTING;
    p->reused = 0;
    p->retried = 0;
    p->req_sent = 0;
    p->got_response = 0;
    p->resp_chunked = 0;
    p->resp_until_close = 0;
    p->resp_done = 0;
    p->upstream_keepalive = 0;
    r->headers_out.headers.nelts = 0;
    r->headers_out.content_length_n = -1;
    r->headers_out.status = 0;
}


static void
pt_proxy_read_response(pt_proxy_t *p)
{
    int               rc;
    ssize_t           n;
    pt_connection_t  *uc;

    uc = p->uc;

    for ( ;; ) {
        if (p->in.last == p->in.end) {
            pt__proxy_fail(p, 502, 0, "upstream sent too big a header");
            return;
        }

        if (!uc->read->ready) {
            break;
        }

        n = uc->recv(uc, p->in.last, (size_t) (p->in.end - p->in.last));

        if (n == PT_AGAIN) {
            break;
        }

        if (n == 0 || n == PT_ERROR) {
            if (pt_proxy_retry_stale(p)) {
                return;
            }

            pt__proxy_fail(p, 502, n ? errno : 0, n ? "recv() from upstream "
                          "failed" : "upstream closed the connection before "
                          "responding");
            return;
        }

        p->got_response = 1;
        p->in.last += n;

        rc = pt_proxy_process_head(p);

        if (rc == PT_AGAIN) {
            continue;
        }

        if (rc != PT_OK) {
            return;     /* failed, and said so */
        }

        p->state = PT_PROXY_STREAMING;
        pt_proxy_stream(p);
        return;
    }

    if (!uc->read->timer_set && p->req_sent) {
        pt_timer_add(uc->read, p->us->read_timeout);
    }
}


/* Queue an interim response for the client; it goes out ahead of the
 * final one. */
static int
pt_proxy_interim(pt_proxy_t *p, pt_http_status_line_t *sl,
    pt_http_header_t *h, size_t n)
{
    pt_chain_t         *cl, **ll;
    pt_http_request_t  *r;

    r = p->r;

    cl = pt_http_link_get(r);
    if (cl == NULL || pt_proxy_interim_head(r, sl, h, n, cl->buf) != PT_OK) {
        return PT_ERROR;
    }

    for (ll = &r->out; *ll; ll = &(*ll)->next) { /* void */ }
    *ll = cl;

    return pt_http_flush(r) == PT_ERROR ? PT_ERROR : PT_OK;
}


static int
pt_proxy_process_head(pt_proxy_t *p)
{
    int                     rc;
    size_t                  n;
    pt_http_header_t        hdrs[128];
    pt_http_request_t      *r;
    pt_proxy_response_t     resp;
    pt_http_status_line_t   sl;

    r = p->r;

    for ( ;; ) {
        rc = pt_http_scan_head(&p->scan, p->in.pos,
                               (size_t) (p->in.last - p->in.pos));
        if (rc == PT_AGAIN) {
            return PT_AGAIN;
        }

        n = pt_nelems(hdrs);

        if (pt_http_parse_response_head(p->in.pos, &p->scan, &sl, hdrs, &n)
            != PT_OK)
        {
            pt__proxy_fail(p, 502, 0, "upstream sent an invalid response");
            return PT_ERROR;
        }

        if (sl.status >= 100 && sl.status < 200) {
            if (sl.status == 101) {
                if (p->upgrade) {
                    return pt__proxy_switch(p, &sl, hdrs, n);
                }

                pt__proxy_fail(p, 502, 0, "upstream switched protocols "
                              "without being asked to");
                return PT_ERROR;
            }

            /* 103 Early Hints and the like, as RFC 9110 15.2 asks of a
             * proxy; 100 Continue is ours to give. */
            if (pt_proxy_interim_passes(r, sl.status)
                && pt_proxy_interim(p, &sl, hdrs, n) != PT_OK)
            {
                pt__proxy_fail(p, 500, 0, "out of memory");
                return PT_ERROR;
            }

            p->in.pos += p->scan.head_end;
            p->scan = (pt_http_head_scan_t) { 0 };
            continue;
        }

        break;
    }

    /* An upstream that answers it is overloaded or broken: counted
     * against the peer, and tried elsewhere when that is safe. */
    if (sl.status == 502 || sl.status == 503 || sl.status == 504) {
        pt_upstream_peer_failed(p->us, p->peer, PT_UPSTREAM_FAIL_RESPONSE);

        if (pt_proxy_retry(p)) {
            return PT_DONE;
        }

    } else {
        pt_upstream_peer_ok(p->us, p->peer);
    }

    /* Copied out of the buffer: it is reused for the body. */
    rc = pt_proxy_response_head(r, sl.version, sl.status, hdrs, n, &resp);

    if (rc != PT_OK) {
        pt__proxy_fail(p, rc == PT_ERROR ? 500 : (unsigned) rc, 0,
                      resp.error ? resp.error : "out of memory");
        return PT_ERROR;
    }

    p->upstream_keepalive = resp.keepalive;
    p->resp_chunked = resp.chunked;

    p->in.pos += p->scan.head_end;

    if (r->method == PT_HTTP_HEAD || sl.status == 204 || sl.status == 304) {
        p->resp_done = 1;
        p->rest = 0;

    } else if (p->resp_chunked) {
        p->rest = -1;

    } else if (r->headers_out.content_length_n >= 0) {
        p->rest = r->headers_out.content_length_n;
        p->resp_done = (p->rest == 0);

    } else {
        p->resp_until_close = 1;
        p->upstream_keepalive = 0;
    }

    r->upstream_usec = (int64_t) (pt_monotonic_usec() - p->start_usec);

    pt_timer_del(p->uc->read);

    rc = pt_http_send_header(r);

    if (rc != PT_OK) {
        p->upstream_keepalive = 0;
        pt__proxy_finish(p);
        pt_http_finalize(r, rc);
        return PT_ERROR;
    }

    return PT_OK;
}


/* Turn what the buffer holds into output links; PT_OK, or PT_ERROR when
 * the upstream's framing is broken. */
static int
pt_proxy_take_body(pt_proxy_t *p, pt_chain_t **out)
{
    int                 rc;
    size_t              n;
    pt_str_t            run;
    pt_chain_t         *cl, **ll;
    pt_http_request_t  *r;

    r = p->r;
    ll = out;

    while (p->in.pos < p->in.last && !p->resp_done) {
        if (p->resp_chunked) {
            rc = pt_http_chunked_parse(&p->chunked,
                                       (const char **) &p->in.pos, p->in.last,
                                       &run);
            if (rc == PT_ERROR) {
                return PT_ERROR;
            }

            if (rc == PT_DONE) {
                p->resp_done = 1;
                break;
            }

            if (rc == PT_AGAIN) {
                break;
            }

        } else {
            n = (size_t) (p->in.last - p->in.pos);

            if (!p->resp_until_close && (int64_t) n > p->rest) {
                n = (size_t) p->rest;
            }

            run.data = p->in.pos;
            run.len = n;
            p->in.pos += n;

            if (!p->resp_until_close) {
                p->rest -= (int64_t) n;
                p->resp_done = (p->rest == 0);
            }
        }

        cl = pt_http_link_bytes(r, run.data, run.len);
        if (cl == NULL) {
            return PT_ERROR;
        }

        *ll = cl;
        ll = &cl->next;
    }

    if (p->resp_done && p->in.pos < p->in.last) {
        /* Bytes after the body: this connection's framing is not to be
         * trusted for another request. */
        p->upstream_keepalive = 0;
    }

    if (p->resp_done) {
        cl = pt_http_link_get(r);
        if (cl == NULL) {
            return PT_ERROR;
        }

        cl->buf->last_buf = 1;
        *ll = cl;
    }

    return PT_OK;
}


static void
pt_proxy_stream(pt_proxy_t *p)
{
    int                 rc;
    ssize_t             n;
    pt_chain_t         *out;
    pt_connection_t    *uc;
    pt_http_request_t  *r;

    r = p->r;
    uc = p->uc;

    for ( ;; ) {
        /* Hand over what the buffer holds; the head still queued goes out
         * with it in one writev(). */
        if ((!p->resp_done && p->in.pos < p->in.last)
            || (p->resp_done && !r->response_done))
        {
            out = NULL;

            if (pt_proxy_take_body(p, &out) != PT_OK) {
                pt__proxy_fail(p, 502, 0, "upstream sent an invalid body");
                return;
            }

            if (p->resp_done) {
                r->response_done = 1;
            }

            rc = out ? pt_http_output(r, out) : pt_http_flush(r);

        } else {
            rc = pt_http_flush(r);
        }

        if (rc == PT_ERROR) {
            p->upstream_keepalive = 0;
            pt__proxy_finish(p);
            pt_http_finalize(r, PT_ERROR);
            return;
        }

        if (rc == PT_AGAIN) {
            return;     /* the client's write event brings us back */
        }

        if (p->resp_done) {
            pt__proxy_finish(p);
            pt_http_finalize(r, PT_OK);
            return;
        }

        if (p->in.pos < p->in.last) {
            continue;   /* a chunk split across reads: decode the rest */
        }

        /* Everything read so far is with the client: read more. */
        p->in.pos = p->in.start;
        p->in.last = p->in.start;

        if (!uc->read->ready) {
            pt_timer_add(uc->read, p->us->read_timeout);
            return;
        }

        n = uc->recv(uc, p->in.last, (size_t) (p->in.end - p->in.last));

        if (n == PT_AGAIN) {
            pt_timer_add(uc->read, p->us->read_timeout);
            return;
        }

        if (n == 0 && p->resp_until_close) {
            p->resp_done = 1;
            continue;
        }

        if (n <= 0) {
            pt__proxy_fail(p, 502, n ? errno : 0, "upstream closed the "
                          "connection in the middle of the response");
            return;
        }

        p->in.last += n;
    }
}


/* Give the upstream connection back (or close it) and note the timing. */
void
pt__proxy_finish(pt_proxy_t *p)
{
    int  reusable;

    if (p->uc == NULL) {
        return;
    }

    if (p->got_response) {
        pt_upstream_keep_session(p->us, p->peer, p->uc);
    }

    reusable = p->upstream_keepalive && p->resp_done && p->req_sent
               && p->in.pos == p->in.last;

    pt_timer_del(p->uc->read);
    pt_timer_del(p->uc->write);

    pt_upstream_release(p->us, p->peer, p->uc, reusable);
    p->uc = NULL;

    pt_timer_del(&p->deadline);
}


/* Another peer, when it is safe and allowed: an idempotent method, no
 * byte of the client's body consumed, nothing sent to the client, retries
 * and the budget left. Returns 1 if the request went on elsewhere. */
static int
pt_proxy_retry(pt_proxy_t *p)
{
    pt_http_request_t   *r;
    pt_upstream_peer_t  *next;

    r = p->r;

    if (p->no_retry || p->body_started || r->header_sent
        || !pt_proxy_idempotent(r))
    {
        return 0;
    }

    next = pt_upstream_retry_peer(r, p->us, p->tried, p->tries, p->peer);
    if (next == NULL) {
        return 0;
    }

    if (p->uc) {
        pt_timer_del(p->uc->read);
        pt_timer_del(p->uc->write);
        pt_upstream_release(p->us, p->peer, p->uc, 0);
        p->uc = NULL;
    }

    if (p->counted) {
        __atomic_sub_fetch(&p->peer->inflight, 1, __ATOMIC_RELAXED);
        p->counted = 0;
    }

    pt_proxy_restart(p);
    pt_proxy_use(p, next);

    p->tries++;

    pt_proxy_connect(p);

    return 1;
}


void
pt__proxy_fail(pt_proxy_t *p, unsigned status, int err, const char *what)
{
    pt_http_request_t  *r;

    r = p->r;

    if (what) {
        pt_http_log_request(r, PT_LOG_ERR, "%s%s%s, upstream: %s", what,
                            err ? ": " : "", err ? strerror(err) : "",
                            p->peer->text);

        if (status == 502 || status == 504) {
            /* Connect errors, timeouts, broken responses: the peer's
             * fault, counted for passive health, and worth a retry. */
            pt_upstream_peer_failed(p->us, p->peer,
                                    p->state <= PT_PROXY_HANDSHAKE
                                    ? PT_UPSTREAM_FAIL_CONNECT
                                    : PT_UPSTREAM_FAIL_RESPONSE);

            if (pt_proxy_retry(p)) {
                return;
            }
        }
    }

    if (status == 499) {
        r->client_aborted = 1;
    }

    p->upstream_keepalive = 0;
    pt__proxy_finish(p);

    if (r->header_sent && !pt_http_output_started(r)) {
        /* The head was only queued: the client has seen nothing, so it
         * can still get an honest status instead of a cut connection. */
        pt_http_output_reset(r);
    }

    if (r->header_sent) {
        r->error = 1;
        pt_http_finalize(r, PT_ERROR);
        return;
    }

    pt_http_finalize(r, status == 499 ? PT_ERROR : (int) status);
}


static void
pt_proxy_deadline(pt_event_t *ev)
{
    pt_proxy_t  *p;

    p = ev->data;
    p->no_retry = 1;        /* the whole request's time is up */

    pt__proxy_fail(p, 504, 0, "route timeout reached");
}


static void
pt_proxy_cleanup(void *data)
{
    pt_proxy_t  *p;

    p = data;

    if (p->uc) {
        pt_upstream_release(p->us, p->peer, p->uc, 0);
        p->uc = NULL;
    }

    pt_timer_del(&p->deadline);

    if (p->tunnel) {
        pt_tunnel_stop(p->tunnel);
        p->tunnel = NULL;
    }

    if (p->counted) {
        __atomic_sub_fetch(&p->peer->inflight, 1, __ATOMIC_RELAXED);
    }

    if (p->group_counted) {
        __atomic_sub_fetch(&p->us->group->inflight, 1, __ATOMIC_RELAXED);
    }

    if (p->in.start) {
        pt_block_put(&pt_http_body_blocks, p->in.start);
    }

    if (p->body.start) {
        pt_block_put(&pt_http_body_blocks, p->body.start);
    }
}
