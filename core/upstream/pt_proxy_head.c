/*
 * pt_proxy_head.c: request heads for upstreams, the hop-by-hop filter,
 * interim responses and the response-head copy (see pt_proxy_head.h).
 *
 * Each head is sized first and then written into one allocation, so a
 * hostile request costs memory in proportion to what it sent, once.
 */

#include "pt_proxy_head.h"
#include "pt_string.h"


pt_proxy_body_e
pt_proxy_body_framing(pt_http_request_t *r)
{
    if (r->headers_in.chunked) {
        return PT_PROXY_BODY_CHUNKED;
    }

    if (r->headers_in.content_length_n >= 0) {
        return PT_PROXY_BODY_LENGTH;
    }

    return PT_PROXY_BODY_NONE;
}


int
pt_proxy_hop_by_hop(const pt_str_t *name, const pt_http_header_t *fields,
    size_t n)
{
    size_t  i;

    if (pt_http_is_hop_by_hop(name, NULL)) {
        return 1;
    }

    for (i = 0; i < n; i++) {
        if (pt_str_caseeq(&fields[i].name, "connection")
            && pt_http_list_has(&fields[i].value, name->data, name->len))
        {
            return 1;
        }
    }

    return 0;
}


int
pt_proxy_is_ours(const pt_str_t *name)
{
    return pt_str_caseeq(name, "host")
           || pt_str_caseeq(name, "expect")
           || pt_str_caseeq(name, "content-length")
           || pt_str_caseeq(name, "x-request-id")
           || pt_str_caseeq(name, "x-forwarded-for")
           || pt_str_caseeq(name, "x-forwarded-host")
           || pt_str_caseeq(name, "x-forwarded-proto");
}


/* A client field that goes upstream as it came. */
static int
pt_proxy_forwarded(pt_http_request_t *r, const pt_http_header_t *h)
{
    const pt_http_header_t  *all;

    if (h->name.len == 0 || pt_proxy_is_ours(&h->name)) {
        return 0;
    }

    /* Without a Connection field only the fixed list can apply. */
    all = r->headers_in.headers.elts;

    return !pt_proxy_hop_by_hop(&h->name, all,
                                r->headers_in.connection
                                ? r->headers_in.headers.nelts : 0);
}


/* Several X-Forwarded-For lines are one list (RFC 9110 5.3). */
size_t
pt_proxy_forwarded_for_len(pt_http_request_t *r, const pt_str_t *client)
{
    size_t             i, len;
    pt_http_header_t  *h;

    h = r->headers_in.headers.elts;
    len = client->len;

    for (i = 0; i < r->headers_in.headers.nelts; i++) {
        if (pt_str_caseeq(&h[i].name, "x-forwarded-for")) {
            len += h[i].value.len + 2;
        }
    }

    return len;
}


char *
pt_proxy_forwarded_for(pt_http_request_t *r, const pt_str_t *client,
    char *b)
{
    size_t             i;
    pt_http_header_t  *h;

    h = r->headers_in.headers.elts;

    for (i = 0; i < r->headers_in.headers.nelts; i++) {
        if (pt_str_caseeq(&h[i].name, "x-forwarded-for")
            && h[i].value.len)
        {
            b = pt_cpymem(b, h[i].value.data, h[i].value.len);
            b = pt_cpystr(b, ", ");
        }
    }

    return pt_cpymem(b, client->data, client->len);
}


int
pt_proxy_request_head(pt_http_request_t *r,
    const pt_proxy_head_conf_t *conf, pt_buf_t *out)
{
    char              *b, *start;
    size_t             len, i, n;
    pt_str_t           host, scheme;
    pt_http_header_t  *h;

    h = r->headers_in.headers.elts;
    n = r->headers_in.headers.nelts;

    if (r->headers_in.host) {
        host = r->headers_in.host->value;
    } else if (r->host.len) {
        host = r->host;
    } else {
        host = conf->peer;
    }

    scheme = conf->scheme;
    if (scheme.len == 0) {
        pt_str_set(&scheme, "http");
    }

    len = r->method_name.len + 1 + r->path.len + 1 + r->query.len
          + sizeof(" HTTP/1.1\r\n") - 1
          + sizeof("Host: \r\n") - 1 + host.len
          + sizeof("X-Forwarded-For: \r\n") - 1 + conf->client.len
          + sizeof("X-Forwarded-Proto: \r\n") - 1 + scheme.len
          + sizeof("X-Forwarded-Host: \r\n") - 1 + host.len
          + sizeof("X-Request-ID: \r\n") - 1 + r->request_id.len
          + sizeof("Content-Length: 18446744073709551615\r\n") - 1
          + sizeof("Transfer-Encoding: chunked\r\n") - 1
          + sizeof("Upgrade: websocket\r\nConnection: upgrade\r\n") - 1
          + sizeof("Sec-WebSocket-Key: \r\n") - 1 + conf->ws_key.len
          + sizeof("\r\n") - 1;

    for (i = 0; i < n; i++) {
        /* a client X-Forwarded-For line costs its value and ", " */
        len += h[i].name.len + 4 + h[i].value.len;
    }

    start = pt_pnalloc(r->pool, len);
    if (start == NULL) {
        return PT_ERROR;
    }

    b = pt_cpymem(start, r->method_name.data, r->method_name.len);
    *b++ = ' ';
    b = pt_cpymem(b, r->path.data, r->path.len);
    if (r->has_query) {
        *b++ = '?';
        b = pt_cpymem(b, r->query.data, r->query.len);
    }
    b = pt_cpystr(b, " HTTP/1.1\r\nHost: ");
    b = pt_cpymem(b, host.data, host.len);
    b = pt_cpystr(b, "\r\n");

    for (i = 0; i < n; i++) {
        if (!pt_proxy_forwarded(r, &h[i])) {
            continue;
        }

        b = pt_cpymem(b, h[i].name.data, h[i].name.len);
        b = pt_cpystr(b, ": ");
        b = pt_cpymem(b, h[i].value.data, h[i].value.len);
        b = pt_cpystr(b, "\r\n");
    }

    b = pt_cpystr(b, "X-Forwarded-For: ");
    b = pt_proxy_forwarded_for(r, &conf->client, b);

    b = pt_cpystr(b, "\r\nX-Forwarded-Proto: ");
    b = pt_cpymem(b, scheme.data, scheme.len);
    b = pt_cpystr(b, "\r\n");

    if (r->headers_in.host) {
        b = pt_cpystr(b, "X-Forwarded-Host: ");
        b = pt_cpymem(b, host.data, host.len);
        b = pt_cpystr(b, "\r\n");
    }

    b = pt_cpystr(b, "X-Request-ID: ");
    b = pt_cpymem(b, r->request_id.data, r->request_id.len);
    b = pt_cpystr(b, "\r\n");

    switch (conf->body) {
    case PT_PROXY_BODY_CHUNKED:
        b = pt_cpystr(b, "Transfer-Encoding: chunked\r\n");
        break;

    case PT_PROXY_BODY_LENGTH:
        b = pt_cpystr(b, "Content-Length: ");
        b = pt_sprint_uint(b, (uint64_t) (r->headers_in.content_length_n > 0
                                          ? r->headers_in.content_length_n
                                          : 0));
        b = pt_cpystr(b, "\r\n");
        break;

    case PT_PROXY_BODY_NONE:
        break;
    }

    /* The upstream sees the one protocol that was checked, whatever
     * else the client listed. */
    if (conf->upgrade) {
        b = pt_cpystr(b, "Upgrade: websocket\r\nConnection: upgrade\r\n");

        if (conf->ws_key.len) {
            b = pt_cpystr(b, "Sec-WebSocket-Key: ");
            b = pt_cpymem(b, conf->ws_key.data, conf->ws_key.len);
            b = pt_cpystr(b, "\r\n");
        }

    } else if (conf->close) {
        b = pt_cpystr(b, "Connection: close\r\n");
    }

    b = pt_cpystr(b, "\r\n");

    pt_buf_init(out, start, (size_t) (b - start));
    out->last = b;

    return PT_OK;
}


int
pt_proxy_interim_passes(pt_http_request_t *r, unsigned status)
{
    return status >= 100 && status < 200 && status != 100 && status != 101
           && r->version == 11;
}


int
pt_proxy_interim_head(pt_http_request_t *r, const pt_http_status_line_t *sl,
    const pt_http_header_t *fields, size_t n, pt_buf_t *out)
{
    char    *b, *start;
    size_t   i, len;

    len = sizeof("HTTP/1.1 199 \r\n\r\n") - 1 + sl->reason.len;

    for (i = 0; i < n; i++) {
        len += fields[i].name.len + fields[i].value.len + 4;
    }

    start = pt_pnalloc(r->pool, len);
    if (start == NULL) {
        return PT_ERROR;
    }

    b = pt_cpystr(start, "HTTP/1.1 ");
    b = pt_sprint_uint(b, sl->status % 1000);
    *b++ = ' ';

    if (sl->reason.len) {       /* an empty reason may have no data */
        b = pt_cpymem(b, sl->reason.data, sl->reason.len);
    }

    b = pt_cpystr(b, "\r\n");

    for (i = 0; i < n; i++) {
        if (pt_proxy_hop_by_hop(&fields[i].name, fields, n)) {
            continue;
        }

        b = pt_cpymem(b, fields[i].name.data, fields[i].name.len);
        b = pt_cpystr(b, ": ");
        b = pt_cpymem(b, fields[i].value.data, fields[i].value.len);
        b = pt_cpystr(b, "\r\n");
    }

    b = pt_cpystr(b, "\r\n");

    pt_buf_init(out, start, (size_t) (b - start));
    out->last = b;

    return PT_OK;
}


/* Take the framing fields out of the head; 502 when they disagree. */
static int
pt_proxy_response_framing(const pt_http_header_t *h,
    pt_proxy_response_t *resp)
{
    int64_t  len;

    if (pt_str_caseeq(&h->name, "content-length")) {
        len = pt_http_parse_content_length(&h->value);

        /* RFC 9112 6.3: differing lengths must not be guessed at. */
        if (len < 0
            || (resp->content_length >= 0 && len != resp->content_length))
        {
            resp->error = "upstream sent an invalid Content-Length";
            return 502;
        }

        resp->content_length = len;
        return PT_OK;
    }

    /* Chunked once, and nothing else: any other coding (or chunked
     * twice) would be ours to undo. */
    if (!pt_str_caseeq(&h->value, "chunked") || resp->chunked) {
        resp->error = "upstream sent a transfer coding other than chunked";
        return 502;
    }

    resp->chunked = 1;

    return PT_OK;
}


int
pt_proxy_response_head(pt_http_request_t *r, unsigned version,
    unsigned status, const pt_http_header_t *fields, size_t n,
    pt_proxy_response_t *resp)
{
    int  rc;

    r->headers_out.status = status;

    rc = pt_proxy_response_fields(r->pool, &r->headers_out.headers, version,
                                  status, fields, n, resp);

    if (rc == PT_OK) {
        r->headers_out.content_length_n = resp->content_length;
    }

    return rc;
}


int
pt_proxy_response_fields(pt_pool_t *pool, pt_array_t *out, unsigned version,
    unsigned status, const pt_http_header_t *fields, size_t n,
    pt_proxy_response_t *resp)
{
    int                rc, close, keepalive;
    char              *mem;
    size_t             i, total, nconn;
    pt_http_header_t  *h;

    resp->status = status;
    resp->content_length = -1;
    resp->chunked = 0;
    resp->error = NULL;

    close = 0;
    keepalive = 0;
    total = 0;
    nconn = 0;

    for (i = 0; i < n; i++) {
        if (pt_str_caseeq(&fields[i].name, "connection")) {
            nconn = n;
            close |= pt_http_list_has(&fields[i].value, "close", 5);
            keepalive |= pt_http_list_has(&fields[i].value, "keep-alive",
                                          10);
        }

        total += fields[i].name.len + fields[i].value.len;
    }

    resp->keepalive = (version == 11) ? !close : (keepalive && !close);

    mem = pt_pnalloc(pool, total + 1);
    if (mem == NULL) {
        return PT_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (pt_str_caseeq(&fields[i].name, "content-length")
            || pt_str_caseeq(&fields[i].name, "transfer-encoding"))
        {
            rc = pt_proxy_response_framing(&fields[i], resp);
            if (rc != PT_OK) {
                return rc;
            }

            continue;
        }

        /* Without a Connection field only the fixed list can apply. */
        if (pt_proxy_hop_by_hop(&fields[i].name, fields, nconn)) {
            continue;
        }

        h = pt_array_push(out);
        if (h == NULL) {
            return PT_ERROR;
        }

        h->name.data = mem;
        mem = pt_cpymem(mem, fields[i].name.data, fields[i].name.len);
        h->name.len = fields[i].name.len;
        h->value.data = mem;
        mem = pt_cpymem(mem, fields[i].value.data, fields[i].value.len);
        h->value.len = fields[i].value.len;
    }

    if (resp->chunked) {
        /* RFC 9112 6.3: chunked wins over a length. */
        resp->content_length = -1;
    }

    return PT_OK;
}
