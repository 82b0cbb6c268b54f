/*
 * pt_proxy_ws.c: WebSocket through the proxy: the upgrade request checked
 * on a route with `websocket: true`, the upstream's 101 passed to the
 * client, and the two connections joined by a tunnel (pt_tunnel.h) that
 * reuses the proxy's two buffers, until either side is done; the request
 * is finalized (and so logged, once) then.
 */

#include "pt_proxy.h"
#include "pt_proxy_head.h"
#include "pt_time.h"
#include "pt_websocket.h"


static void pt_proxy_tunnel(pt_proxy_t *p);
static void pt_proxy_tunnel_done(pt_tunnel_t *t, pt_tunnel_why_e why);


/* A WebSocket upgrade on a route that allows it is checked here, before
 * any peer is asked; elsewhere Upgrade is hop-by-hop and dropped, and the
 * request is served as a plain one (nginx without proxy_set_header
 * Upgrade does the same). */
int
pt__proxy_websocket(pt_proxy_t *p)
{
    int                 rc;
    const char         *why;
    pt_http_request_t  *r;

    r = p->r;

    if (!pt_upstream_route_websocket(r->route)
        || (!r->ext_connect
            && !pt_ws_wants_upgrade(r->headers_in.headers.elts,
                                    r->headers_in.headers.nelts)))
    {
        return PT_OK;
    }

    why = NULL;
    rc = pt_ws_check_request(r, &why);

    if (rc == PT_OK) {
        p->upgrade = 1;

        /* HTTP/2 has no key (RFC 8441 5): the upstream's handshake gets
         * one of ours, which its 101 must answer. */
        if (r->ext_connect) {
            return pt_ws_make_key(r->pool, &p->ws_key);
        }

        return PT_OK;
    }

    if (why) {
        pt_http_log_request(r, PT_LOG_INFO,
                            "WebSocket upgrade refused: %s", why);
    }

    return rc;
}


/* The upstream accepted the upgrade: its 101 (without the hop-by-hop
 * fields but Upgrade, with the Sec-WebSocket-* ones) goes to the client,
 * then the tunnel starts. PT_DONE, or PT_ERROR after failing. */
int
pt__proxy_switch(pt_proxy_t *p, pt_http_status_line_t *sl,
    pt_http_header_t *h, size_t n)
{
    int                   rc;
    const char           *why;
    pt_http_request_t    *r;
    pt_proxy_response_t   resp;

    r = p->r;

    /* A 101 that does not answer the client's key is not the handshake
     * the client started; better a 502 than a tunnel to who knows what. */
    why = pt_ws_check_response(r, p->ws_key.len ? &p->ws_key : NULL, h, n);
    if (why) {
        pt__proxy_fail(p, 502, 0, why);
        return PT_ERROR;
    }

    rc = pt_proxy_response_head(r, sl->version, sl->status, h, n, &resp);

    if (rc != PT_OK) {
        pt__proxy_fail(p, rc == PT_ERROR ? 500 : (unsigned) rc, 0,
                      resp.error ? resp.error : "out of memory");
        return PT_ERROR;
    }

    if (pt_http_header_out_add(r, "Upgrade", 7, "websocket", 9) != PT_OK) {
        pt__proxy_fail(p, 500, 0, "out of memory");
        return PT_ERROR;
    }

    pt_upstream_peer_ok(p->us, p->peer);

    r->headers_out.content_length_n = -1;
    r->keepalive = 0;
    p->upstream_keepalive = 0;
    r->upstream_usec = (int64_t) (pt_monotonic_usec() - p->start_usec);

    /* What came after the head is the upstream's first tunnel bytes. */
    p->in.pos += p->scan.head_end;

    /* The route's timeout is for requests; websocket_idle_timeout rules
     * an established tunnel. */
    pt_timer_del(p->uc->read);
    pt_timer_del(p->uc->write);
    pt_timer_del(&p->deadline);

    rc = pt_http_send_header(r);

    if (rc != PT_OK) {
        pt__proxy_finish(p);
        pt_http_finalize(r, rc);
        return PT_ERROR;
    }

    p->state = PT_PROXY_SWITCHING;
    pt__proxy_switching(p);

    return PT_DONE;
}


/* The tunnel starts once the client has the whole 101: until then the
 * upstream is not read, so nothing of the new protocol can overtake it. */
void
pt__proxy_switching(pt_proxy_t *p)
{
    int                 rc;
    pt_http_request_t  *r;

    r = p->r;

    rc = pt_http_flush(r);

    if (rc == PT_AGAIN) {
        return;         /* the client's write event brings us back */
    }

    if (rc == PT_ERROR) {
        pt__proxy_finish(p);
        pt_http_finalize(r, PT_ERROR);
        return;
    }

    pt_proxy_tunnel(p);
}


static void
pt_proxy_tunnel(pt_proxy_t *p)
{
    pt_tunnel_t        *t;
    pt_http_request_t  *r;

    r = p->r;

    t = pt_pcalloc(r->pool, sizeof(pt_tunnel_t));

    if (t == NULL || pt_http_tunnel_end(r, &p->ends[0]) != PT_OK) {
        pt_http_log_request(r, PT_LOG_ERR,
                            "cannot start a WebSocket tunnel (no memory)");
        pt__proxy_finish(p);
        r->error = 1;
        pt_http_finalize(r, PT_ERROR);
        return;
    }

    pt_tunnel_conn_end(&p->ends[1], p->uc, "upstream");

    t->end[0] = &p->ends[0];
    t->end[1] = &p->ends[1];
    t->cache = &pt_http_body_blocks;
    t->idle_timeout = r->hmcf->websocket_idle_timeout;
    t->done = pt_proxy_tunnel_done;
    t->data = p;

    /* The response buffer, with whatever came after the 101's head,
     * becomes the tunnel's (it gives it back to the cache when empty). */
    t->buf[1] = p->in;
    memset(&p->in, 0, sizeof(pt_buf_t));

    p->tunnel = t;
    p->state = PT_PROXY_TUNNEL;

    /* May end it at once (and free p with the request). */
    pt_tunnel_start(t);
}


/* Both sides are done, or one failed, or the tunnel idled out or was
 * stopped by a drain: close the upstream, finalize (and so log) the
 * request, which closes the client. */
static void
pt_proxy_tunnel_done(pt_tunnel_t *t, pt_tunnel_why_e why)
{
    pt_proxy_t         *p;
    pt_http_request_t  *r;

    p = t->data;
    r = p->r;

    switch (why) {

    case PT_TUNNEL_IDLE:
        pt_http_log_request(r, PT_LOG_INFO,
                            "WebSocket tunnel closed after %lu ms without traffic",
                            (unsigned long) t->idle_timeout);
        break;

    case PT_TUNNEL_ERROR:
        if (t->failed == NULL) {
            pt_http_log_request(r, PT_LOG_ERR,
                                "WebSocket tunnel closed: no memory for a buffer");
            break;
        }

        pt_http_log_request(r, PT_LOG_INFO,
                            "WebSocket tunnel closed: the %s connection failed",
                            t->failed->name);
        break;

    case PT_TUNNEL_STOPPED:
        pt_http_log_request(r, PT_LOG_INFO,
                            "WebSocket tunnel closed: graceful_timeout passed");
        break;

    case PT_TUNNEL_CLOSED:
        break;
    }

    p->tunnel = NULL;

    pt__proxy_finish(p);
    pt_http_finalize(r, PT_OK);
}
