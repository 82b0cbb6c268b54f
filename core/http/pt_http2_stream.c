/*
 * pt_http2_stream.c: an HTTP/2 stream as a request: its head checked and
 * turned into what an HTTP/1.1 request would have (RFC 9113 8.3, 8.2.3),
 * and the HTTP/2 side of the protocol seam (pt_http.h): the response head
 * as a HEADERS frame, the body as DATA produced only as the client's
 * window allows, the request body read from the stream's window.
 *
 * A stream (pt_http2_stream_t) lives in the connection's pool and is
 * reused; it outlives its request until nghttp2 closes it, so that the
 * data provider nghttp2 holds and the reset after an early answer never
 * point at freed memory.
 */

#include "pt_http2.h"
#include "pt_http_path.h"
#include "pt_string.h"
#include "pt_time.h"


enum {
    PT_HTTP2_MALFORMED = 1      /* reset the stream with PROTOCOL_ERROR  */
};

static void pt_http2_stream_read(pt_event_t *ev);
static void pt_http2_stream_write(pt_event_t *ev);
static void pt_http2_stream_free(pt_http2_stream_t *st, int code);
static void pt_http2_stream_reject(pt_http2_stream_t *st);
static int pt_http2_process(pt_http2_stream_t *st, pt_http_request_t *r);
static int pt_http2_send_header(pt_http_request_t *r);
static int pt_http2_flush(pt_http_request_t *r);
static void pt_http2_output_reset(pt_http_request_t *r);
static int pt_http2_output_started(pt_http_request_t *r);
static int pt_http2_read_body(pt_http_request_t *r, char *dst, size_t size,
    size_t *n);
static void pt_http2_block_reading(pt_http_request_t *r);
static void pt_http2_done(pt_http_request_t *r);
static void pt_http2_terminate(pt_http_request_t *r);


const pt_http_proto_t  pt_http2_proto = {
    .name = "HTTP/2",
    .send_header = pt_http2_send_header,
    .flush = pt_http2_flush,
    .output_reset = pt_http2_output_reset,
    .output_started = pt_http2_output_started,
    .read_body = pt_http2_read_body,
    .block_reading = pt_http2_block_reading,
    .done = pt_http2_done,
    .terminate = pt_http2_terminate,
    .tunnel_end = pt__http2_tunnel_end,
};


/* The request of a new stream, with a connection of its own for its
 * events and byte count (see pt_http2.h). */
pt_http2_stream_t *
pt__http2_stream_open(pt_http2_connection_t *h2c, int32_t id)
{
    pt_event_t         *rev, *wev;
    pt_connection_t    *c, *sc;
    pt_http2_stream_t  *st;
    pt_http_request_t  *r;

    c = h2c->c;

    st = h2c->free_streams;

    if (st) {
        h2c->free_streams = st->next_free;

    } else {
        st = pt_palloc(c->pool, sizeof(pt_http2_stream_t));
        if (st == NULL) {
            return NULL;
        }
    }

    memset(st, 0, sizeof(pt_http2_stream_t));

    r = pt_http_alloc_request(c, h2c->hc, &pt_http2_proto,
                              sizeof(pt_connection_t)
                              + 2 * sizeof(pt_event_t));
    if (r == NULL) {
        goto failed;
    }

    if (pt_array_init(&st->fields, r->pool, 16, sizeof(pt_http_header_t))
        != PT_OK)
    {
        pt_pool_destroy(r->pool);
        goto failed;
    }

    sc = (pt_connection_t *) (r + 1);
    rev = (pt_event_t *) (sc + 1);
    wev = rev + 1;

    sc->data = st;
    sc->read = rev;
    sc->write = wev;
    sc->fd = -1;
    sc->pool = r->pool;
    sc->listening = c->listening;
    sc->sockaddr = c->sockaddr;
    sc->socklen = c->socklen;
    sc->addr_text = c->addr_text;
    sc->number = c->number;
    sc->ssl = c->ssl;
    sc->client = 0;
    pt_queue_init(&sc->queue);
    pt_queue_init(&sc->reuse);

    rev->data = sc;
    rev->handler = pt_http2_stream_read;
    wev->data = sc;
    wev->handler = pt_http2_stream_write;
    wev->write = 1;

    r->connection = sc;
    r->bytes_sent_start = 0;
    r->stream = st;
    r->version = 20;

    st->id = id;
    st->h2c = h2c;
    st->request = r;

    pt_queue_insert_tail(&h2c->streams, &st->link);

    if (h2c->nrequests++ == 0) {
        pt__http_set_idle(c, 0);

        if (!h2c->header_block) {
            pt_timer_del(c->read);      /* idle_timeout: not idle now */
        }
    }

    return st;

failed:

    st->next_free = h2c->free_streams;
    h2c->free_streams = st;

    return NULL;
}


/* Back to the connection's list: the request ended and nghttp2 is done
 * with the stream. */
void
pt__http2_stream_release(pt_http2_stream_t *st)
{
    pt_http2_connection_t  *h2c;

    h2c = st->h2c;

    if (h2c->session && nghttp2_session_find_stream(h2c->session, st->id)) {
        (void) nghttp2_session_set_stream_user_data(h2c->session, st->id,
                                                    NULL);
    }

    st->next_free = h2c->free_streams;
    h2c->free_streams = st;
}


static pt_str_t *
pt_http2_copy(pt_http_request_t *r, pt_str_t *to, const uint8_t *from,
    size_t len)
{
    to->data = pt_pnalloc(r->pool, len + 1);
    if (to->data == NULL) {
        return NULL;
    }

    memcpy(to->data, from, len);
    to->data[len] = '\0';
    to->len = len;

    return to;
}


/* One decoded field. The list is measured as RFC 9113 6.5.2 does; past
 * the limit nothing more is kept and the request gets 431. */
int
pt__http2_stream_header(pt_http2_stream_t *st, const uint8_t *name,
    size_t nlen, const uint8_t *value, size_t vlen)
{
    pt_str_t            *to, n;
    pt_http_header_t    *h;
    pt_http_request_t   *r;
    pt_http_main_conf_t *hmcf;

    r = st->request;
    hmcf = r->hmcf;

    st->header_bytes += nlen + vlen + 32;

    if (st->header_bytes > hmcf->http2_max_header_list_size) {
        st->too_large = 1;
        return 0;
    }

    if (st->too_large || st->trailers) {
        return 0;       /* trailers are measured, not forwarded */
    }

    /* nghttp2 checked these already; a reset here costs nothing if it
     * ever lets one through. */
    if (memchr(value, '\r', vlen) || memchr(value, '\n', vlen)
        || memchr(value, '\0', vlen))
    {
        pt_http2_stream_reject(st);
        return 0;
    }

    n.data = (char *) name;
    n.len = nlen;

    if (nlen && name[0] == ':') {
        if (pt_str_caseeq(&n, ":method")) {
            to = &st->method;
        } else if (pt_str_caseeq(&n, ":path")) {
            to = &st->path;
        } else if (pt_str_caseeq(&n, ":authority")) {
            to = &st->authority;
        } else if (pt_str_caseeq(&n, ":scheme")) {
            to = &st->scheme;
        } else if (pt_str_caseeq(&n, ":protocol")) {
            to = &st->protocol;     /* nghttp2 checked: CONNECT only */
        } else {
            pt_http2_stream_reject(st);
            return 0;
        }

        return pt_http2_copy(r, to, value, vlen)
               ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }

    if (pt_str_caseeq(&n, "connection") || pt_str_caseeq(&n, "keep-alive")
        || pt_str_caseeq(&n, "proxy-connection")
        || pt_str_caseeq(&n, "transfer-encoding")
        || pt_str_caseeq(&n, "upgrade"))
    {
        pt_http2_stream_reject(st);
        return 0;
    }

    if (pt_str_caseeq(&n, "te")
        && !(vlen == 8 && strncasecmp((char *) value, "trailers", 8) == 0))
    {
        pt_http2_stream_reject(st);
        return 0;
    }

    if (st->fields.nelts >= (size_t) hmcf->max_headers) {
        st->status = 431;
        return 0;
    }

    h = pt_array_push(&st->fields);

    if (h == NULL || pt_http2_copy(r, &h->name, name, nlen) == NULL
        || pt_http2_copy(r, &h->value, value, vlen) == NULL)
    {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }

    return 0;
}


/* Malformed: reset with PROTOCOL_ERROR (RFC 9113 8.1.1); the request is
 * logged with 400 when the reset closes the stream. */
static void
pt_http2_stream_reject(pt_http2_stream_t *st)
{
    if (st->reset) {
        return;
    }

    st->reset = 1;

    (void) nghttp2_submit_rst_stream(st->h2c->session, NGHTTP2_FLAG_NONE,
                                     st->id, NGHTTP2_PROTOCOL_ERROR);
}


/* The whole head is in: check it and start the request once the rest of
 * what was read is processed (so a reset in the same read costs
 * nothing). */
void
pt__http2_stream_headers_done(pt_http2_stream_t *st)
{
    int                 rc;
    pt_http_request_t  *r;

    r = st->request;

    if (st->reset) {
        return;
    }

    rc = pt_http2_process(st, r);

    if (rc == PT_HTTP2_MALFORMED) {
        pt_http2_stream_reject(st);
        return;
    }

    if (rc != PT_OK && st->status == 0) {
        st->status = (rc == PT_ERROR) ? 500 : (unsigned) rc;
    }

    pt_post_event(r->connection->read);
}


/* The target: origin-form bytes only (as HTTP/1 takes them), or "*". */
static int
pt_http2_target(pt_http2_stream_t *st, pt_http_request_t *r)
{
    char         *p, *q, *end, *path;
    size_t        len;
    const char   *t;

    t = st->path.data;
    len = st->path.len;

    for (p = st->path.data, end = p + len; p < end; p++) {
        if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f
            || *p == '#')
        {
            return PT_HTTP2_MALFORMED;
        }
    }

    r->line.target = st->path;
    r->line.method_name = st->method;
    r->line.method = r->method;
    r->line.version = 20;

    if (len == 1 && t[0] == '*') {
        if (r->method != PT_HTTP_OPTIONS) {
            return PT_HTTP2_MALFORMED;
        }

        r->line.form = PT_HTTP_FORM_ASTERISK;
        r->line.path = st->path;
        r->path = st->path;
        return PT_OK;
    }

    if (len == 0 || t[0] != '/') {
        return PT_HTTP2_MALFORMED;
    }

    r->line.form = PT_HTTP_FORM_ORIGIN;

    q = memchr(st->path.data, '?', len);

    /* As the HTTP/1 parser leaves it: empty, but never NULL. */
    r->query.data = st->path.data + len;
    r->query.len = 0;

    if (q) {
        r->query.data = q + 1;
        r->query.len = (size_t) (st->path.data + len - q - 1);
        r->has_query = 1;
        len = (size_t) (q - st->path.data);
    }

    r->line.path.data = st->path.data;
    r->line.path.len = len;
    r->line.query = r->query;
    r->line.has_query = r->has_query;

    path = pt_pnalloc(r->pool, len + 1);
    if (path == NULL) {
        return PT_ERROR;
    }

    if (pt_http_normalize_path(st->path.data, len, path, &len) != PT_OK) {
        return 400;
    }

    path[len] = '\0';
    r->path.data = path;
    r->path.len = len;

    return PT_OK;
}


/* The fields as HTTP/1.1 would carry them: Host from :authority first,
 * the cookie crumbs joined with "; " (RFC 9113 8.2.3) where the first
 * one was. */
static int
pt_http2_fields(pt_http2_stream_t *st, pt_http_request_t *r,
    pt_http_header_t **out, size_t *nout)
{
    char              *p;
    size_t             i, n, len, crumbs;
    pt_http_header_t  *f, *all, *cookie;

    f = st->fields.elts;
    n = st->fields.nelts;

    all = pt_palloc(r->pool, (n + 1) * sizeof(pt_http_header_t));
    if (all == NULL) {
        return PT_ERROR;
    }

    *nout = 0;

    if (st->authority.len) {
        for (i = 0; i < n; i++) {
            if (pt_str_caseeq(&f[i].name, "host")
                && !(f[i].value.len == st->authority.len
                     && strncasecmp(f[i].value.data, st->authority.data,
                                    st->authority.len) == 0))
            {
                /* RFC 9113 8.3.1: a Host naming another entity */
                return PT_HTTP2_MALFORMED;
            }
        }

        pt_str_set(&all[0].name, "host");
        all[0].value = st->authority;
        *nout = 1;
    }

    len = 0;
    crumbs = 0;

    for (i = 0; i < n; i++) {
        if (pt_str_caseeq(&f[i].name, "cookie")) {
            len += f[i].value.len + 2;
            crumbs++;
        }
    }

    cookie = NULL;

    for (i = 0; i < n; i++) {
        if (st->authority.len && pt_str_caseeq(&f[i].name, "host")) {
            continue;   /* the same value: one Host is enough */
        }

        if (crumbs > 1 && pt_str_caseeq(&f[i].name, "cookie")) {
            if (cookie == NULL) {
                cookie = &all[(*nout)++];
                cookie->name = f[i].name;
                cookie->value.data = pt_pnalloc(r->pool, len);
                if (cookie->value.data == NULL) {
                    return PT_ERROR;
                }
                cookie->value.len = 0;
            }

            p = cookie->value.data + cookie->value.len;
            if (cookie->value.len) {
                *p++ = ';';
                *p++ = ' ';
            }
            memcpy(p, f[i].value.data, f[i].value.len);
            cookie->value.len = (size_t) (p + f[i].value.len
                                          - cookie->value.data);
            continue;
        }

        all[(*nout)++] = f[i];
    }

    *out = all;

    return PT_OK;
}


static int
pt_http2_process(pt_http2_stream_t *st, pt_http_request_t *r)
{
    int                    rc;
    size_t                 n, under;
    pt_http_header_t      *all;
    pt_http_headers_in_t  *in;

    in = &r->headers_in;

    if (st->too_large) {
        return 431;
    }

    if (st->status) {
        return (int) st->status;
    }

    if (st->method.len == 0) {
        return PT_HTTP2_MALFORMED;
    }

    r->method = pt_http_parse_method(st->method.data, st->method.len);

    if (r->method == PT_HTTP_CONNECT) {
        /* Only WebSocket's extended CONNECT (RFC 8441): it is routed,
         * checked and proxied as the GET Upgrade it stands for. */
        if (!pt_str_caseeq(&st->protocol, "websocket")) {
            return 501;     /* as over HTTP/1.1: no other tunnels */
        }

        pt_str_set(&st->method, "GET");
        r->method = PT_HTTP_GET;
        r->ext_connect = 1;
        st->connect = 1;
    }

    r->method_name = st->method;

    rc = pt_http2_target(st, r);
    if (rc != PT_OK) {
        return rc;
    }

    rc = pt_http2_fields(st, r, &all, &n);
    if (rc != PT_OK) {
        return rc;
    }

    if (pt_array_init(&in->headers, r->pool, n ? n : 1,
                      sizeof(pt_http_header_t)) != PT_OK)
    {
        return PT_ERROR;
    }

    under = pt__http_copy_fields(r, all, n);

    rc = pt__http_index_headers(r);
    if (rc != PT_OK) {
        return rc;
    }

    if (in->transfer_encoding || in->connection || in->upgrade) {
        return PT_HTTP2_MALFORMED;
    }

    if (in->host == NULL) {
        return 400;     /* no authority at all, as HTTP/1.1 without Host */
    }

    if (!pt__http_host_valid(in->host->value.data, in->host->value.len,
                             &r->host, r->pool))
    {
        return 400;
    }

    if (in->content_length_n > 0
        && (uint64_t) in->content_length_n
           > (uint64_t) r->hmcf->max_body_size)
    {
        return 413;
    }

    if (in->expect) {
        if (!pt_str_caseeq(&in->expect->value, "100-continue")) {
            return 417;
        }

        r->expect_continue = !st->in_closed;
    }

    r->keepalive = 1;

    if (st->in_closed || st->connect) {
        r->body.done = 1;   /* a CONNECT's DATA is the tunnel's */

    } else if (in->content_length_n < 0) {
        /* No length: the upstream gets the body chunked. */
        in->chunked = 1;
    }

    if (under) {
        return pt__http_underscores(r, all, n);
    }

    return PT_OK;
}


int
pt__http2_stream_data(pt_http2_stream_t *st, const uint8_t *data, size_t len)
{
    size_t              room;
    pt_http_request_t  *r;

    r = st->request;
    st->body_in += len;

    if (!st->connect && st->body_in > (uint64_t) r->hmcf->max_body_size) {
        /* 413 when the request reads; the bytes are not kept. */
        (void) nghttp2_session_consume(st->h2c->session, st->id, len);
        pt_post_event(r->connection->read);
        return 0;
    }

    if (st->body == NULL) {
        st->body = pt_block_get(&pt_http_body_blocks);
        if (st->body == NULL) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        st->body_pos = 0;
        st->body_last = 0;
    }

    room = pt_http_body_blocks.size - st->body_last;

    if (room < len && st->body_pos) {
        memmove(st->body, st->body + st->body_pos,
                st->body_last - st->body_pos);
        st->body_last -= st->body_pos;
        st->body_pos = 0;
        room = pt_http_body_blocks.size - st->body_last;
    }

    if (room < len) {
        /* More than the window we gave: nghttp2 would have refused it. */
        (void) nghttp2_submit_rst_stream(st->h2c->session, NGHTTP2_FLAG_NONE,
                                         st->id, NGHTTP2_FLOW_CONTROL_ERROR);
        st->reset = 1;
        return 0;
    }

    memcpy(st->body + st->body_last, data, len);
    st->body_last += len;

    if (st->started) {
        pt_post_event(r->connection->read);
    }

    return 0;
}


void
pt__http2_stream_in_closed(pt_http2_stream_t *st)
{
    st->in_closed = 1;

    if (st->started) {
        pt_post_event(st->request->connection->read);
    }
}


/* nghttp2 forgot the stream: normal after our END_STREAM; otherwise it
 * was reset, by the client or by us, and the request is cut short. */
void
pt__http2_stream_closed(pt_http2_stream_t *st, uint32_t error)
{
    st->closed = 1;
    st->malformed = (error == NGHTTP2_PROTOCOL_ERROR
                     || error == NGHTTP2_FLOW_CONTROL_ERROR);

    if (st->request == NULL) {
        pt__http2_stream_release(st);
        return;
    }

    if (!st->end_sent) {
        st->aborted = 1;
        pt_post_event(st->request->connection->read);
    }
}


/* Our END_STREAM is on the wire. A request that answered before the body
 * ended asks the client to stop sending it (RFC 9113 8.1). */
void
pt__http2_stream_end_sent(pt_http2_stream_t *st)
{
    st->end_sent = 1;

    if (st->request == NULL && !st->in_closed && !st->closed) {
        (void) nghttp2_submit_rst_stream(st->h2c->session, NGHTTP2_FLAG_NONE,
                                         st->id, NGHTTP2_NO_ERROR);
    }
}


/* The connection goes: whatever the request was doing, it ends here. */
void
pt__http2_stream_abort(pt_http2_stream_t *st)
{
    pt_http_request_t  *r;

    r = st->request;
    r->client_aborted = 1;
    pt_http_finalize(r, PT_ERROR);
}


/* Reset by the client, or for a malformed request (by us or nghttp2):
 * end the request (logged 499, or 400 when malformed). */
static void
pt_http2_stream_kill(pt_http2_stream_t *st)
{
    pt_http_request_t  *r;

    r = st->request;

    if ((st->reset || st->malformed) && !r->header_sent) {
        r->status = 400;
        r->connection->error = 1;
    } else {
        r->client_aborted = 1;
    }

    pt_http_finalize(r, PT_ERROR);
}


static void
pt_http2_stream_read(pt_event_t *ev)
{
    int                 rc;
    pt_connection_t    *sc;
    pt_http2_stream_t  *st;
    pt_http_request_t  *r;

    sc = ev->data;
    st = sc->data;
    r = st->request;

    if (st->aborted) {
        pt_http2_stream_kill(st);
        return;
    }

    if (!st->started) {
        st->started = 1;

        if (st->status) {
            rc = (int) st->status;
            pt_http_finalize(r, rc);
            return;
        }

        pt_http_run_phases(r);
        return;
    }

    r->read_event_handler(r);
}


static void
pt_http2_stream_write(pt_event_t *ev)
{
    pt_connection_t    *sc;
    pt_http2_stream_t  *st;
    pt_http_request_t  *r;

    sc = ev->data;
    st = sc->data;
    r = st->request;

    if (st->aborted) {
        pt_http2_stream_kill(st);
        return;
    }

    r->write_event_handler(r);
}


/* ---- the protocol table ------------------------------------------------ */


/* Fields HTTP/2 forbids or that we write ourselves. */
static int
pt_http2_field_skipped(const pt_str_t *name)
{
    return pt_str_caseeq(name, "date")
           || pt_str_caseeq(name, "connection")
           || pt_str_caseeq(name, "keep-alive")
           || pt_str_caseeq(name, "proxy-connection")
           || pt_str_caseeq(name, "upgrade")
           || pt_str_caseeq(name, "te")
           || pt_str_caseeq(name, "x-request-id")
           || pt_str_caseeq(name, "content-length")
           || pt_str_caseeq(name, "transfer-encoding");
}


static void
pt_http2_nv(nghttp2_nv *nv, const char *name, size_t nlen, const char *value,
    size_t vlen)
{
    nv->name = (uint8_t *) name;
    nv->namelen = nlen;
    nv->value = (uint8_t *) value;
    nv->valuelen = vlen;
    nv->flags = NGHTTP2_NV_FLAG_NONE;
}


/* The head as nghttp2 takes it (lower-case names), kept until the first
 * flush so that an error can still replace it (pt_http_output_reset). */
static int
pt_http2_send_header(pt_http_request_t *r)
{
    char               *p, *name;
    size_t              i, n;
    unsigned            status;
    nghttp2_nv         *nva;
    pt_http_header_t   *h;
    pt_http2_stream_t  *st;

    st = r->stream;
    status = r->status;
    h = r->headers_out.headers.elts;

    /* RFC 8441 5: an extended CONNECT's tunnel starts with a 200, where
     * HTTP/1.1 has the 101 the upstream sent. */
    if (st->connect && status == 101) {
        status = 200;
        st->tunnel = 1;
    }

    nva = pt_palloc(r->pool, (r->headers_out.headers.nelts + 4)
                             * sizeof(nghttp2_nv));
    p = pt_pnalloc(r->pool, 4 + 24 + 64);

    if (nva == NULL || p == NULL) {
        return PT_ERROR;
    }

    n = 0;

    snprintf(p, 4, "%03u", status);
    pt_http2_nv(&nva[n++], ":status", 7, p, 3);
    p += 4;

    i = strlen(pt_cached_http_time);
    memcpy(p, pt_cached_http_time, pt_min(i, 63));
    pt_http2_nv(&nva[n++], "date", 4, p, pt_min(i, 63));
    p += 64;

    if (r->headers_out.content_length_n >= 0
        && !(r->no_body && r->method != PT_HTTP_HEAD && status != 304))
    {
        pt_http2_nv(&nva[n++], "content-length", 14, p,
                    (size_t) snprintf(p, 24, "%lld",
                           (long long) r->headers_out.content_length_n));
    }

    if (r->request_id.len) {
        pt_http2_nv(&nva[n++], "x-request-id", 12, r->request_id.data,
                    r->request_id.len);
    }

    for (i = 0; i < r->headers_out.headers.nelts; i++) {
        if (h[i].name.len == 0 || pt_http2_field_skipped(&h[i].name)
            || (st->tunnel
                && pt_str_caseeq(&h[i].name, "sec-websocket-accept")))
        {
            continue;
        }

        name = pt_pnalloc(r->pool, h[i].name.len);
        if (name == NULL) {
            return PT_ERROR;
        }

        pt_strlow(name, h[i].name.data, h[i].name.len);
        pt_http2_nv(&nva[n++], name, h[i].name.len, h[i].value.data,
                    h[i].value.len);
    }

    st->nva = nva;
    st->nvlen = n;
    st->head_pending = 1;

    return PT_OK;
}


/* Commit the pending head: HEADERS, with a data provider unless there is
 * no body (then END_STREAM goes with it). */
static int
pt_http2_submit(pt_http2_stream_t *st, pt_http_request_t *r)
{
    int                     rc;
    nghttp2_data_provider   prd, *pp;

    pp = NULL;

    if (st->tunnel
        || (!r->no_body && !(r->response_done && r->out == NULL)))
    {
        prd.source.ptr = st;
        prd.read_callback = pt__http2_data_read;
        pp = &prd;
    }

    rc = nghttp2_submit_response(st->h2c->session, st->id, st->nva,
                                 st->nvlen, pp);
    if (rc != 0) {
        pt_http_log_request(r, PT_LOG_ERR, "http2: %s",
                            nghttp2_strerror(rc));
        return PT_ERROR;
    }

    st->head_pending = 0;
    st->head_submitted = 1;
    st->nva = NULL;

    if (pp == NULL) {
        st->eof_read = 1;
    }

    return PT_OK;
}


static int
pt_http2_flush(pt_http_request_t *r)
{
    pt_connection_t        *sc;
    pt_http2_stream_t      *st;
    pt_http2_connection_t  *h2c;

    st = r->stream;
    h2c = st->h2c;
    sc = r->connection;

    if (h2c->closing || (st->closed && !st->end_sent) || st->reset) {
        r->client_aborted = 1;
        return PT_ERROR;
    }

    if (st->head_pending) {
        if (pt_http2_submit(st, r) != PT_OK) {
            return PT_ERROR;
        }

    } else if (st->deferred && r->out) {
        st->deferred = 0;
        (void) nghttp2_session_resume_data(h2c->session, st->id);
    }

    /* nghttp2 takes what the window allows now (pt__http2_data_read). */
    pt__http2_send(h2c);

    if (r->out == NULL) {
        pt_timer_del(sc->write);
        return PT_OK;
    }

    if (!sc->write->timer_set) {
        pt_timer_add(sc->write, r->hmcf->send_timeout);
    }

    return PT_AGAIN;
}


/* The data provider: one DATA frame from r->out, at most `length` bytes
 * (what the windows and the frame size allow). Consumed links go back to
 * the request at once, so their buffers may be refilled. */
ssize_t
pt__http2_data_read(nghttp2_session *session, int32_t id, uint8_t *buf,
    size_t length, uint32_t *flags, nghttp2_data_source *source,
    void *user_data)
{
    size_t              n, k;
    pt_buf_t           *b;
    pt_chain_t         *cl;
    pt_http2_stream_t  *st;
    pt_http_request_t  *r;

    st = source->ptr;
    r = st->request;

    if (r == NULL) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }

    if (st->tunnel) {
        return pt__http2_tunnel_data(st, buf, length, flags);
    }

    n = 0;

    while (r->out) {
        cl = r->out;
        b = cl->buf;

        k = pt_min((size_t) (b->last - b->pos), length - n);
        memcpy(buf + n, b->pos, k);
        b->pos += k;
        n += k;

        if (b->pos < b->last) {
            break;      /* the frame is full */
        }

        r->out = cl->next;

        if (b->last_buf) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            st->eof_read = 1;
            pt_http_link_free(r, cl);
            break;
        }

        pt_http_link_free(r, cl);
    }

    if (n == 0 && !st->eof_read) {
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }

    r->connection->sent += n + 9;

    /* Progress: the request may refill its buffers, and send_timeout
     * starts again. */
    if (r->connection->write->timer_set) {
        pt_timer_add(r->connection->write, r->hmcf->send_timeout);
    }

    pt_post_event(r->connection->write);

    return (ssize_t) n;
}


static void
pt_http2_output_reset(pt_http_request_t *r)
{
    pt_chain_t         *cl, *next;
    pt_http2_stream_t  *st;

    st = r->stream;
    st->head_pending = 0;
    st->nva = NULL;

    for (cl = r->out; cl; cl = next) {
        next = cl->next;
        pt_http_link_free(r, cl);
    }

    r->out = NULL;
}


static int
pt_http2_output_started(pt_http_request_t *r)
{
    pt_http2_stream_t  *st;

    st = r->stream;

    return st->head_submitted;
}


size_t
pt__http2_body_take(pt_http2_stream_t *st, char *dst, size_t size)
{
    size_t  k;

    if (st->body_pos == st->body_last) {
        return 0;
    }

    k = pt_min(size, st->body_last - st->body_pos);
    memcpy(dst, st->body + st->body_pos, k);
    st->body_pos += k;

    if (st->body_pos == st->body_last) {
        /* Empty: the block goes back until DATA comes again. */
        pt_block_put(&pt_http_body_blocks, st->body);
        st->body = NULL;
        st->body_pos = 0;
        st->body_last = 0;
    }

    (void) nghttp2_session_consume(st->h2c->session, st->id, k);
    pt__http2_send(st->h2c);

    return k;
}


/* The request body from the stream's buffer; every byte read reopens the
 * client's window by as much. */
static int
pt_http2_read_body(pt_http_request_t *r, char *dst, size_t size, size_t *n)
{
    size_t                  k;
    pt_connection_t        *sc;
    pt_http2_stream_t      *st;
    pt_http2_connection_t  *h2c;
    nghttp2_nv              nv;

    sc = r->connection;
    st = r->stream;
    h2c = st->h2c;
    *n = 0;

    if (sc->read->timedout) {
        sc->read->timedout = 0;
        return 408;
    }

    if (r->body.done) {
        return PT_DONE;
    }

    if (st->body_in > (uint64_t) r->hmcf->max_body_size) {
        return 413;
    }

    if (h2c->closing || st->reset || (st->closed && !st->in_closed)) {
        r->client_aborted = 1;
        return PT_ERROR;
    }

    if (!r->body.started) {
        r->body.started = 1;

        if (r->expect_continue && !r->continue_sent) {
            r->continue_sent = 1;
            pt_http2_nv(&nv, ":status", 7, "100", 3);
            (void) nghttp2_submit_headers(h2c->session, NGHTTP2_FLAG_NONE,
                                          st->id, NULL, &nv, 1, NULL);
            pt__http2_send(h2c);
        }
    }

    pt_timer_del(sc->read);

    k = pt__http2_body_take(st, dst, size);

    if (k) {
        r->body.received += k;
        *n = k;

        if (st->in_closed && st->body_last == 0) {
            r->body.done = 1;
        }

        return PT_OK;
    }

    if (st->in_closed) {
        r->body.done = 1;
        return PT_DONE;
    }

    pt_timer_add(sc->read, r->hmcf->body_timeout);

    return PT_AGAIN;
}


/* A client that goes away resets its streams: nghttp2 tells us. */
static void
pt_http2_block_reading(pt_http_request_t *r)
{
}


static void
pt_http2_done(pt_http_request_t *r)
{
    pt_http2_stream_t  *st;

    st = r->stream;

    if (st->head_pending && !st->h2c->closing) {
        if (pt_http2_submit(st, r) != PT_OK) {
            pt_http2_stream_free(st, NGHTTP2_INTERNAL_ERROR);
            return;
        }

        pt__http2_send(st->h2c);
    }

    /* A body that never reached its end must not look complete. */
    pt_http2_stream_free(st, st->eof_read ? -1 : NGHTTP2_INTERNAL_ERROR);
}


static void
pt_http2_terminate(pt_http_request_t *r)
{
    pt_http2_stream_t  *st;

    st = r->stream;

    pt_http2_stream_free(st, r->client_aborted ? NGHTTP2_CANCEL
                                               : NGHTTP2_INTERNAL_ERROR);
}


/* The request ends; the stream stays until nghttp2 closes it. code >= 0
 * resets it unless it is closed already. */
static void
pt_http2_stream_free(pt_http2_stream_t *st, int code)
{
    size_t                  unread;
    pt_connection_t        *sc;
    pt_http_request_t      *r;
    pt_http2_connection_t  *h2c;

    r = st->request;
    sc = r->connection;
    h2c = st->h2c;

    pt_timer_del(sc->read);
    pt_timer_del(sc->write);
    pt_delete_posted_event(sc->read);
    pt_delete_posted_event(sc->write);

    if (st->body) {
        unread = st->body_last - st->body_pos;

        if (unread && !h2c->closing) {
            (void) nghttp2_session_consume(h2c->session, st->id, unread);
        }

        pt_block_put(&pt_http_body_blocks, st->body);
        st->body = NULL;
    }

    if (!h2c->closing && !st->closed) {
        if (code >= 0 && !st->reset) {
            st->reset = 1;
            (void) nghttp2_submit_rst_stream(h2c->session, NGHTTP2_FLAG_NONE,
                                             st->id, (uint32_t) code);

        } else if (st->end_sent && !st->in_closed) {
            (void) nghttp2_submit_rst_stream(h2c->session, NGHTTP2_FLAG_NONE,
                                             st->id, NGHTTP2_NO_ERROR);
        }
    }

    st->request = NULL;
    pt_queue_remove(&st->link);
    h2c->nrequests--;

    pt_pool_destroy(r->pool);

    if (st->closed) {
        pt__http2_stream_release(st);
    }

    if (!h2c->closing) {
        /* RST, WINDOW_UPDATE, or the end of the connection. */
        pt_post_event(h2c->c->write);
    }
}
