/*
 * pt_http_output.c: the response on its way out: header filters and the
 * head writer, body filters, chunked framing and the socket writer.
 *
 * Every link of an output chain comes from pt_http_link_get() and goes
 * back to the request's free list once written, so a body streamed
 * through any number of buffers costs a fixed number of links.
 */

#include "pt_http.h"
#include "pt_string.h"
#include "pt_time.h"


typedef struct {
    pt_chain_t   link;
    pt_buf_t     buf;
    char         data[24];      /* room for chunk framing */
} pt_http_link_t;


pt_chain_t *
pt_http_link_get(pt_http_request_t *r)
{
    pt_chain_t      *cl;
    pt_http_link_t  *l;

    cl = r->free_links;

    if (cl) {
        r->free_links = cl->next;
        l = (pt_http_link_t *) cl;

    } else {
        l = pt_palloc(r->pool, sizeof(pt_http_link_t));
        if (l == NULL) {
            return NULL;
        }
    }

    memset(&l->buf, 0, sizeof(pt_buf_t));
    l->buf.start = l->data;
    l->buf.pos = l->data;
    l->buf.last = l->data;
    l->buf.end = l->data + sizeof(l->data);
    l->link.buf = &l->buf;
    l->link.next = NULL;

    return &l->link;
}


pt_chain_t *
pt_http_link_bytes(pt_http_request_t *r, const char *p, size_t len)
{
    pt_chain_t  *cl;

    cl = pt_http_link_get(r);
    if (cl == NULL) {
        return NULL;
    }

    cl->buf->start = (char *) p;
    cl->buf->pos = (char *) p;
    cl->buf->last = (char *) p + len;
    cl->buf->end = cl->buf->last;

    return cl;
}


void
pt_http_link_free(pt_http_request_t *r, pt_chain_t *cl)
{
    cl->next = r->free_links;
    r->free_links = cl;
}


/* Headers the writer produces itself and never copies from a list. */
static int
pt_http_header_is_framing(const pt_str_t *name)
{
    return pt_str_caseeq(name, "date")
           || pt_str_caseeq(name, "connection")
           || pt_str_caseeq(name, "keep-alive")
           || pt_str_caseeq(name, "x-request-id")
           || pt_str_caseeq(name, "content-length")
           || pt_str_caseeq(name, "transfer-encoding");
}


int
pt_http_send_header(pt_http_request_t *r)
{
    int        rc;
    unsigned   status;

    if (r->header_sent) {
        pt_http_log_request(r, PT_LOG_ALERT, "header already sent");
        return PT_ERROR;
    }

    if (r->headers_out.status == 0) {
        r->headers_out.status = 200;
    }

    /* Ours unless the upstream sent one; added before the filters so a
     * route can remove it. */
    if (pt_http_header_find(&r->headers_out.headers, "Server", 6) == NULL
        && pt_http_header_out_add(r, "Server", 6, "portico", 7) != PT_OK)
    {
        return PT_ERROR;
    }

    rc = pt__http_run_header_filters(r);
    if (rc != PT_OK) {
        return rc;
    }

    r->header_sent = 1;
    status = r->headers_out.status;
    r->status = status;

    r->no_body = (r->method == PT_HTTP_HEAD) || status < 200
                 || status == 204 || status == 304;

    if (r->no_body && status != 304 && r->method != PT_HTTP_HEAD) {
        r->headers_out.content_length_n = -1;
    }

    return r->proto->send_header(r);
}


/* The HTTP/1.1 head, queued in r->out: the first body bytes usually join
 * it in one writev(). */
int
pt_http1_send_header(pt_http_request_t *r)
{
    int                  upgrade;
    char                *p;
    size_t               len, i;
    unsigned             status;
    const char          *reason;
    pt_chain_t          *cl;
    pt_http_header_t    *h;
    pt_connection_t     *c;

    c = r->connection;
    status = r->status;

    if (!r->no_body && r->headers_out.content_length_n < 0) {
        if (r->version == 11) {
            r->chunked_out = 1;
        } else {
            r->keepalive = 0;     /* the end of the body is the close */
        }
    }

    if (c->close || pt_exiting) {
        r->keepalive = 0;
    }

    /* Answering before a body the client was told to hold back: it may or
     * may not send it now, so the connection cannot be trusted after. */
    if (r->expect_continue && !r->continue_sent && !r->body.done) {
        r->keepalive = 0;
    }

    upgrade = (status == 101 || status == 426)
              && pt_http_header_find(&r->headers_out.headers, "Upgrade", 7);

    reason = pt_http_status_text(status);

    len = sizeof("HTTP/1.1 999 \r\n") - 1 + strlen(reason)
          + sizeof("Date: \r\n") - 1 + strlen(pt_cached_http_time)
          + sizeof("Content-Length: 18446744073709551615\r\n") - 1
          + sizeof("Transfer-Encoding: chunked\r\n") - 1
          + sizeof("Connection: upgrade, close\r\n") - 1
          + sizeof("X-Request-ID: \r\n") - 1 + r->request_id.len
          + sizeof("\r\n") - 1;

    h = r->headers_out.headers.elts;

    for (i = 0; i < r->headers_out.headers.nelts; i++) {
        len += h[i].name.len + sizeof(": \r\n") - 1 + h[i].value.len;
    }

    cl = pt_http_link_get(r);
    if (cl == NULL) {
        return PT_ERROR;
    }

    p = pt_pnalloc(r->pool, len);
    if (p == NULL) {
        return PT_ERROR;
    }

    cl->buf->start = p;
    cl->buf->pos = p;
    cl->buf->end = p + len;

    /* Once per response: no printf (its parsing showed in profiles). */
    p = pt_cpystr(p, "HTTP/1.1 ");
    *p++ = (char) ('0' + status / 100 % 10);
    *p++ = (char) ('0' + status / 10 % 10);
    *p++ = (char) ('0' + status % 10);
    *p++ = ' ';
    p = pt_cpymem(p, reason, strlen(reason));
    p = pt_cpystr(p, "\r\nDate: ");
    p = pt_cpymem(p, pt_cached_http_time, strlen(pt_cached_http_time));
    p = pt_cpystr(p, "\r\n");

    if (r->headers_out.content_length_n >= 0
        && !(r->no_body && r->method != PT_HTTP_HEAD && status != 304))
    {
        p = pt_cpystr(p, "Content-Length: ");
        p = pt_sprint_uint(p, (uint64_t) r->headers_out.content_length_n);
        p = pt_cpystr(p, "\r\n");
    }

    if (r->chunked_out) {
        p = pt_cpystr(p, "Transfer-Encoding: chunked\r\n");
    }

    if (upgrade) {
        /* A 101, or a 426 naming the protocol to upgrade to: Upgrade
         * goes with its connection option (RFC 9110 7.8). */
        if (status == 101 || r->keepalive) {
            p = pt_cpystr(p, "Connection: upgrade\r\n");
        } else {
            p = pt_cpystr(p, "Connection: upgrade, close\r\n");
        }

    } else if (r->keepalive) {
        /* HTTP/1.1 keeps alive by default; only 1.0 needs to be told. */
        if (r->version == 10) {
            p = pt_cpystr(p, "Connection: keep-alive\r\n");
        }
    } else {
        p = pt_cpystr(p, "Connection: close\r\n");
    }

    if (r->request_id.len) {
        p = pt_cpystr(p, "X-Request-ID: ");
        memcpy(p, r->request_id.data, r->request_id.len);
        p += r->request_id.len;
        *p++ = '\r';
        *p++ = '\n';
    }

    for (i = 0; i < r->headers_out.headers.nelts; i++) {
        if (h[i].name.len == 0 || pt_http_header_is_framing(&h[i].name)
            || (!upgrade && pt_str_caseeq(&h[i].name, "upgrade")))
        {
            continue;
        }

        memcpy(p, h[i].name.data, h[i].name.len);
        p += h[i].name.len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, h[i].value.data, h[i].value.len);
        p += h[i].value.len;
        *p++ = '\r';
        *p++ = '\n';
    }

    *p++ = '\r';
    *p++ = '\n';

    cl->buf->last = p;

    /* Queued, not written: the first body bytes usually join it in one
     * writev(). */
    cl->next = r->out;
    r->out = cl;

    return PT_OK;
}


void
pt_http_output_reset(pt_http_request_t *r)
{
    r->proto->output_reset(r);

    r->header_sent = 0;
    r->response_done = 0;
    r->chunked_out = 0;
    r->no_body = 0;
    r->headers_out.headers.nelts = 0;
    r->headers_out.content_length_n = -1;
    r->headers_out.status = 0;
}


void
pt_http1_output_reset(pt_http_request_t *r)
{
    pt_chain_t  *cl, *next;

    for (cl = r->out; cl; cl = next) {
        next = cl->next;
        pt_http_link_free(r, cl);
    }

    r->out = NULL;
}


int
pt_http_output_started(pt_http_request_t *r)
{
    return r->proto->output_started(r);
}


int
pt_http_output(pt_http_request_t *r, pt_chain_t *in)
{
    int          rc;
    pt_chain_t  *cl, **ll, *next;

    if (in) {
        if (r->no_body) {
            /* HEAD and friends: the body goes nowhere. */
            for (cl = in; cl; cl = next) {
                next = cl->next;
                if (cl->buf->last_buf) {
                    r->response_done = 1;
                }
                pt_http_link_free(r, cl);
            }
            in = NULL;

        } else {
            rc = pt__http_run_body_filters(r, &in);
            if (rc != PT_OK) {
                return rc;
            }
        }

        for (ll = &r->out; *ll; ll = &(*ll)->next) { /* void */ }
        *ll = in;
    }

    return pt_http_flush(r);
}


int
pt_http_flush(pt_http_request_t *r)
{
    return r->proto->flush(r);
}


int
pt_http1_flush(pt_http_request_t *r)
{
    pt_chain_t       *cl, *next;
    pt_connection_t  *c;

    c = r->connection;

    if (r->out == NULL) {
        pt_timer_del(c->write);
        return PT_OK;
    }

    if (!c->write->ready) {
        if (!c->write->timer_set) {
            pt_timer_add(c->write, r->hmcf->send_timeout);
        }
        return PT_AGAIN;
    }

    cl = c->send_chain(c, r->out, 0);

    if (cl == (pt_chain_t *) PT_ERROR) {
        r->client_aborted = 1;
        r->out = NULL;
        return PT_ERROR;
    }

    while (r->out != cl) {
        next = r->out->next;
        pt_http_link_free(r, r->out);
        r->out = next;
    }

    if (r->out) {
        /* send_timeout runs between successful writes, not in total. */
        pt_timer_add(c->write, r->hmcf->send_timeout);
        return PT_AGAIN;
    }

    pt_timer_del(c->write);

    return PT_OK;
}


int
pt_http_chunked_filter(pt_http_request_t *r, pt_chain_t **chain)
{
    int          n;
    size_t       size;
    pt_chain_t  *in, *cl, *next, *head, *tail, **ll;

    if (!r->chunked_out) {
        return PT_OK;
    }

    in = *chain;
    ll = chain;
    *chain = NULL;

    for (cl = in; cl; cl = next) {
        next = cl->next;
        cl->next = NULL;
        size = pt_buf_size(cl->buf);

        if (size) {
            head = pt_http_link_get(r);
            tail = pt_http_link_get(r);
            if (head == NULL || tail == NULL) {
                return PT_ERROR;
            }

            n = snprintf(head->buf->pos, 20, "%zx\r\n", size);
            head->buf->last += n;
            tail->buf->last = pt_cpystr(tail->buf->last, "\r\n");

            *ll = head;
            head->next = cl;
            cl->next = tail;
            ll = &tail->next;
        }

        if (cl->buf->last_buf) {
            tail = pt_http_link_get(r);
            if (tail == NULL) {
                return PT_ERROR;
            }

            tail->buf->last = pt_cpystr(tail->buf->last, "0\r\n\r\n");
            tail->buf->last_buf = 1;
            cl->buf->last_buf = 0;

            *ll = tail;
            ll = &tail->next;
        }

        if (size == 0) {
            pt_http_link_free(r, cl);
        }
    }

    return PT_OK;
}


int
pt_http_send_response(pt_http_request_t *r, unsigned status,
    const char *type, const char *body, size_t len)
{
    int          rc;
    pt_chain_t  *cl;

    r->headers_out.status = status;
    r->headers_out.content_length_n = (int64_t) len;

    if (type && pt_http_header_out_set(r, "Content-Type", 12, type,
                                       strlen(type)) != PT_OK)
    {
        return PT_ERROR;
    }

    rc = pt_http_send_header(r);
    if (rc != PT_OK) {
        return rc;
    }

    cl = pt_http_link_bytes(r, body, len);
    if (cl == NULL) {
        return PT_ERROR;
    }

    cl->buf->last_buf = 1;

    rc = pt_http_output(r, cl);

    return rc == PT_AGAIN ? PT_OK : rc;
}


static int
pt_http_error_keeps(const pt_str_t *name)
{
    static const char  *keep[] = {
        "allow", "www-authenticate", "retry-after", "ratelimit",
        "ratelimit-policy", "upgrade", "sec-websocket-version", NULL
    };
    const char        **k;

    for (k = keep; *k; k++) {
        if (pt_strcaseeq(name, *k, strlen(*k))) {
            return 1;
        }
    }

    return 0;
}


int
pt_http_send_error(pt_http_request_t *r, unsigned status)
{
    char              *body, *p;
    size_t             len, i, n;
    const char        *text;
    pt_http_header_t  *h;

    if (r->request_id.len == 0) {
        (void) pt_http_request_id(r);
    }

    /* What the client would have got before is not part of an error,
     * except the fields that explain it (Allow on 405, a challenge on
     * 401, when to come back on 429 and 503). */
    h = r->headers_out.headers.elts;
    for (i = 0, n = 0; i < r->headers_out.headers.nelts; i++) {
        if (pt_http_error_keeps(&h[i].name)) {
            h[n++] = h[i];
        }
    }
    r->headers_out.headers.nelts = n;
    r->chunked_out = 0;

    text = pt_http_status_text(status);
    len = strlen(text);

    body = pt_pnalloc(r->pool, len + r->request_id.len + 64);
    if (body == NULL) {
        return PT_ERROR;
    }

    p = body;
    p += sprintf(p, "{\"error\":\"");
    for (i = 0; i < len; i++) {
        *p++ = (char) pt_tolower(text[i]);
    }
    p += sprintf(p, "\",\"status\":%u,\"request_id\":\"%.*s\"}\n", status,
                 (int) r->request_id.len, r->request_id.data);

    if (status == 408 || status == 413 || status == 414 || status == 431
        || status == 400 || status == 501 || status == 505 || status == 417)
    {
        r->keepalive = 0;
    }

    return pt_http_send_response(r, status, "application/json", body,
                                 (size_t) (p - body));
}


pt_http_header_t *
pt_http_header_find(pt_array_t *headers, const char *name, size_t len)
{
    size_t             i;
    pt_http_header_t  *h;

    h = headers->elts;

    for (i = 0; i < headers->nelts; i++) {
        if (pt_strcaseeq(&h[i].name, name, len)) {
            return &h[i];
        }
    }

    return NULL;
}


int
pt_http_header_out_add(pt_http_request_t *r, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
    pt_http_header_t  *h;

    h = pt_array_push(&r->headers_out.headers);
    if (h == NULL) {
        return PT_ERROR;
    }

    h->name.data = (char *) name;
    h->name.len = nlen;
    h->value.data = (char *) value;
    h->value.len = vlen;

    return PT_OK;
}


int
pt_http_header_out_set(pt_http_request_t *r, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
    pt_http_header_out_remove(r, name, nlen);

    return pt_http_header_out_add(r, name, nlen, value, vlen);
}


void
pt_http_header_out_remove(pt_http_request_t *r, const char *name,
    size_t nlen)
{
    size_t             i, j;
    pt_http_header_t  *h;

    h = r->headers_out.headers.elts;

    for (i = 0, j = 0; i < r->headers_out.headers.nelts; i++) {
        if (pt_strcaseeq(&h[i].name, name, nlen)) {
            continue;
        }
        h[j++] = h[i];
    }

    r->headers_out.headers.nelts = j;
}


int
pt_http_is_hop_by_hop(const pt_str_t *name, const pt_str_t *connection)
{
    /* Lengths come from the literals: a hand-counted one once kept
     * Proxy-Authenticate from ever matching. */
    static const pt_str_t  hop[] = {
        pt_string("connection"),
        pt_string("keep-alive"),
        pt_string("proxy-connection"),
        pt_string("proxy-authenticate"),
        pt_string("proxy-authorization"),
        pt_string("te"),
        pt_string("trailer"),
        pt_string("transfer-encoding"),
        pt_string("upgrade"),
    };
    size_t                 i;

    for (i = 0; i < pt_nelems(hop); i++) {
        if (pt_strcaseeq(name, hop[i].data, hop[i].len)) {
            return 1;
        }
    }

    return connection && pt_http_list_has(connection, name->data,
                                          name->len);
}
