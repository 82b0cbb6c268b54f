/*
 * pt_http2_tunnel.c: an HTTP/2 stream as a tunnel end, for WebSocket over
 * an extended CONNECT (RFC 8441).
 *
 * recv reads the stream's DATA from its receive block and reopens the
 * client's window by as much, so a slow upstream slows the client; the
 * client's END_STREAM is the end of its side. send offers bytes to the
 * stream's data provider and runs the session once: what the window lets
 * through is copied into the connection's output block (like bytes handed
 * to a socket), the rest is "not now" until the window opens, when the
 * provider wakes the tunnel through the stream's write event. shutdown
 * ends our side with END_STREAM. Nothing is buffered here beyond the
 * stream's one receive block and the connection's output block.
 */

#include "pt_http2.h"


static ssize_t
pt_http2_tunnel_recv(pt_tunnel_end_t *e, char *buf, size_t size)
{
    size_t                  k;
    pt_http2_stream_t      *st;
    pt_http2_connection_t  *h2c;

    st = e->data;
    h2c = st->h2c;

    k = pt__http2_body_take(st, buf, size);

    if (k) {
        return (ssize_t) k;
    }

    if (st->in_closed) {
        return 0;
    }

    if (h2c->closing || st->reset || st->closed) {
        return PT_ERROR;
    }

    return PT_AGAIN;
}


static ssize_t
pt_http2_tunnel_send(pt_tunnel_end_t *e, char *buf, size_t size)
{
    size_t                  taken;
    pt_http2_stream_t      *st;
    pt_http2_connection_t  *h2c;

    st = e->data;
    h2c = st->h2c;

    if (h2c->closing || st->reset || st->closed) {
        return PT_ERROR;
    }

    st->tun_data = buf;
    st->tun_len = size;
    st->tun_sending = 1;

    if (st->deferred) {
        st->deferred = 0;
        (void) nghttp2_session_resume_data(h2c->session, st->id);
    }

    /* The provider takes what the windows allow, now. */
    pt__http2_send(h2c);

    st->tun_sending = 0;
    taken = size - st->tun_len;
    st->tun_data = NULL;
    st->tun_len = 0;

    return taken ? (ssize_t) taken : PT_AGAIN;
}


static int
pt_http2_tunnel_shutdown(pt_tunnel_end_t *e)
{
    pt_http2_stream_t      *st;
    pt_http2_connection_t  *h2c;

    st = e->data;
    h2c = st->h2c;
    st->tun_eof = 1;

    if (st->deferred) {
        st->deferred = 0;
        (void) nghttp2_session_resume_data(h2c->session, st->id);
    }

    pt__http2_send(h2c);

    return PT_OK;
}


ssize_t
pt__http2_tunnel_data(pt_http2_stream_t *st, uint8_t *buf, size_t length,
    uint32_t *flags)
{
    size_t              n;
    pt_http_request_t  *r;

    r = st->request;

    if (st->tun_len == 0) {
        if (st->tun_eof) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            st->eof_read = 1;
            return 0;
        }

        st->deferred = 1;

        /* Asked outside the tunnel's own send: the window opened, so the
         * tunnel may offer its bytes again. */
        if (!st->tun_sending) {
            pt_post_event(r->connection->write);
        }

        return NGHTTP2_ERR_DEFERRED;
    }

    n = pt_min(length, st->tun_len);
    memcpy(buf, st->tun_data, n);
    st->tun_data += n;
    st->tun_len -= n;

    r->connection->sent += n + 9;

    return (ssize_t) n;
}


int
pt__http2_tunnel_end(pt_http_request_t *r, pt_tunnel_end_t *e)
{
    pt_connection_t    *sc;
    pt_http2_stream_t  *st;

    st = r->stream;
    sc = r->connection;

    if (!st->tunnel) {
        return PT_ERROR;
    }

    r->keepalive = 0;
    pt_timer_del(sc->read);
    pt_timer_del(sc->write);

    e->data = st;
    e->recv = pt_http2_tunnel_recv;
    e->send = pt_http2_tunnel_send;
    e->shutdown = pt_http2_tunnel_shutdown;
    e->name = "client";
    e->eof = 0;
    e->shut = 0;

    return PT_OK;
}
