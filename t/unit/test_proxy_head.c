/*
 * test_proxy_head.c: the heads the proxy writes and copies, without a
 * socket: requests are parsed from text into a pool by the HTTP/1 parser
 * and the bytes of what pt_proxy_head.c makes of them are checked.
 */

#include "pt_core.h"
#include "pt_http.h"
#include "pt_proxy_head.h"
#include "pt_string.h"
#include "tap.h"


#define NFIELDS  32

#define starts(s, lit)  (strncmp((s), (lit), sizeof(lit) - 1) == 0)


static pt_pool_t  *pool;


/* A request as the HTTP/1 server would hand it to the proxy: parsed from
 * raw, with the fields the core points at found the way the core finds
 * them. r->connection stays NULL: the heads must not need one. */
static pt_http_request_t *
request(const char *raw)
{
    char                  *buf;
    size_t                 len, n, i;
    pt_http_header_t       fields[NFIELDS], *h;
    pt_http_request_t     *r;
    pt_http_head_scan_t    scan;
    pt_http_headers_in_t  *in;

    len = strlen(raw);
    buf = pt_pnalloc(pool, len);
    r = pt_pcalloc(pool, sizeof(pt_http_request_t));
    if (buf == NULL || r == NULL) {
        return NULL;
    }

    memcpy(buf, raw, len);
    memset(&scan, 0, sizeof(scan));
    n = NFIELDS;

    if (pt_http_scan_head(&scan, buf, len) != PT_OK
        || pt_http_parse_request_head(buf, &scan, &r->line, fields, &n)
           != PT_OK)
    {
        return NULL;
    }

    r->pool = pool;
    r->version = r->line.version;
    r->method = r->line.method;
    r->method_name = r->line.method_name;
    r->path = r->line.path;
    r->query = r->line.query;
    r->has_query = r->line.has_query;
    pt_str_set(&r->request_id, "rid-1");

    if (pt_array_init(&r->headers_in.headers, pool, n ? n : 1,
                      sizeof(pt_http_header_t)) != PT_OK
        || pt_array_init(&r->headers_out.headers, pool, 8,
                         sizeof(pt_http_header_t)) != PT_OK)
    {
        return NULL;
    }

    in = &r->headers_in;
    in->content_length_n = -1;
    r->headers_out.content_length_n = -1;

    for (i = 0; i < n; i++) {
        h = pt_array_push(&in->headers);
        *h = fields[i];

        if (pt_str_caseeq(&h->name, "host")) {
            in->host = h;
        } else if (pt_str_caseeq(&h->name, "connection")) {
            in->connection = h;
        } else if (pt_str_caseeq(&h->name, "x-forwarded-for")) {
            in->x_forwarded_for = h;
        } else if (pt_str_caseeq(&h->name, "content-length")) {
            in->content_length = h;
            in->content_length_n = pt_http_parse_content_length(&h->value);
        } else if (pt_str_caseeq(&h->name, "transfer-encoding")) {
            in->transfer_encoding = h;
            in->chunked = pt_str_caseeq(&h->value, "chunked");
        }
    }

    if (r->line.authority.len) {
        r->host = r->line.authority;
    }

    return r;
}


static pt_proxy_head_conf_t
conf_default(pt_http_request_t *r)
{
    pt_proxy_head_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    pt_str_set(&conf.peer, "10.1.1.1:9000");
    pt_str_set(&conf.client, "192.0.2.5");
    conf.body = pt_proxy_body_framing(r);

    return conf;
}


/* The upstream head for raw with conf, NUL-terminated; "" on failure. */
static char *
build(const char *raw, pt_proxy_head_conf_t *conf_in)
{
    char                  *s;
    pt_buf_t               out;
    pt_http_request_t     *r;
    pt_proxy_head_conf_t   conf;

    r = request(raw);
    if (r == NULL) {
        return "(request did not parse)";
    }

    conf = conf_in ? *conf_in : conf_default(r);

    if (pt_proxy_request_head(r, &conf, &out) != PT_OK) {
        return "(build failed)";
    }

    s = pt_pnalloc(pool, pt_buf_size(&out) + 1);
    if (s == NULL) {
        return "(no memory)";
    }

    memcpy(s, out.pos, pt_buf_size(&out));
    s[pt_buf_size(&out)] = '\0';

    return s;
}


/* How many lines of head are exactly line (with its CRLF). */
static int
count_line(const char *head, const char *line)
{
    int          n;
    size_t       len;
    const char  *p;

    n = 0;
    len = strlen(line);

    for (p = head; (p = strstr(p, line)) != NULL; p += len) {
        if (p == head || p[-1] == '\n') {
            n++;
        }
    }

    return n;
}


/* How many field lines of head have this name (any case). */
static int
count_field(const char *head, const char *name)
{
    int          n;
    size_t       len;
    const char  *p;

    n = 0;
    len = strlen(name);

    for (p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n"))
    {
        if (strncasecmp(p + 2, name, len) == 0 && p[2 + len] == ':') {
            n++;
        }
    }

    return n;
}


static void
test_request_basic(void)
{
    char  *head;

    head = build("GET /p?q=1 HTTP/1.1\r\nHost: api.example.com:8080\r\n"
                 "Accept: */*\r\n\r\n", NULL);

    is_str(head, strlen(head),
           "GET /p?q=1 HTTP/1.1\r\n"
           "Host: api.example.com:8080\r\n"
           "Accept: */*\r\n"
           "X-Forwarded-For: 192.0.2.5\r\n"
           "X-Forwarded-Proto: http\r\n"
           "X-Forwarded-Host: api.example.com:8080\r\n"
           "X-Request-ID: rid-1\r\n"
           "\r\n",
           "a plain GET: the exact upstream head");

    head = build("GET /p? HTTP/1.1\r\nHost: h\r\n\r\n", NULL);
    ok(starts(head, "GET /p? HTTP/1.1\r\n"),
       "an empty query keeps its '?'");

    head = build("DELETE /x HTTP/1.1\r\nHOST: Mixed.Case\r\n\r\n", NULL);
    ok(count_line(head, "Host: Mixed.Case\r\n") == 1
       && count_field(head, "host") == 1,
       "Host passed through as sent, once, whatever the case of its name");
}


static void
test_request_forwarded(void)
{
    char                  *head;
    pt_http_request_t     *r;
    pt_proxy_head_conf_t   conf;

    head = build("GET / HTTP/1.1\r\nHost: h\r\n"
                 "X-Forwarded-For: 203.0.113.7\r\n\r\n", NULL);
    ok(count_line(head, "X-Forwarded-For: 203.0.113.7, 192.0.2.5\r\n") == 1
       && count_field(head, "x-forwarded-for") == 1,
       "X-Forwarded-For: the client address is appended");

    head = build("GET / HTTP/1.1\r\nHost: h\r\n"
                 "X-Forwarded-For: 203.0.113.7, 198.51.100.1\r\n"
                 "x-forwarded-for: 198.51.100.2\r\n\r\n", NULL);
    ok(count_line(head, "X-Forwarded-For: 203.0.113.7, 198.51.100.1, "
                  "198.51.100.2, 192.0.2.5\r\n") == 1
       && count_field(head, "x-forwarded-for") == 1,
       "X-Forwarded-For on two lines: one list, in order, then ours");

    head = build("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For:\r\n\r\n",
                 NULL);
    ok(count_line(head, "X-Forwarded-For: 192.0.2.5\r\n") == 1,
       "an empty X-Forwarded-For adds no empty element");

    head = build("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n"
                 "X-Forwarded-Host: evil.example\r\n\r\n", NULL);
    ok(count_line(head, "X-Forwarded-Proto: http\r\n") == 1
       && count_field(head, "x-forwarded-proto") == 1,
       "X-Forwarded-Proto is ours, not the client's");
    ok(count_line(head, "X-Forwarded-Host: h\r\n") == 1
       && count_field(head, "x-forwarded-host") == 1,
       "X-Forwarded-Host is the client's Host, not its X-Forwarded-Host");

    r = request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    conf = conf_default(r);
    pt_str_set(&conf.scheme, "https");
    head = build("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &conf);
    ok(count_line(head, "X-Forwarded-Proto: https\r\n") == 1,
       "X-Forwarded-Proto follows the scheme given");

    head = build("GET / HTTP/1.1\r\nHost: h\r\n"
                 "X-Request-ID: client-says\r\n\r\n", NULL);
    ok(count_line(head, "X-Request-ID: rid-1\r\n") == 1
       && count_field(head, "x-request-id") == 1,
       "X-Request-ID is the request's id, once");

    head = build("GET / HTTP/1.1\r\nHost: h\r\ntraceparent: "
                 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
                 "tracestate: a=1\r\n\r\n", NULL);
    ok(count_line(head, "traceparent: "
                  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                  "\r\n") == 1
       && count_line(head, "tracestate: a=1\r\n") == 1,
       "traceparent and tracestate propagated untouched");
}


static void
test_request_host(void)
{
    char  *head;

    head = build("GET /a HTTP/1.0\r\nAccept: */*\r\n\r\n", NULL);
    ok(starts(head, "GET /a HTTP/1.1\r\nHost: 10.1.1.1:9000\r\n"),
       "no Host (HTTP/1.0): the peer's address, and HTTP/1.1 upstream");
    ok(count_field(head, "x-forwarded-host") == 0,
       "no Host: no X-Forwarded-Host");

    head = build("GET http://abs.example/a HTTP/1.0\r\n\r\n", NULL);
    ok(starts(head, "GET /a HTTP/1.1\r\nHost: abs.example\r\n"),
       "absolute form without Host: the authority is the Host");
}


static void
test_request_hop_by_hop(void)
{
    char  *head;

    head = build("GET / HTTP/1.1\r\nHost: h\r\nKeep-Alive: timeout=5\r\n"
                 "TE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\n"
                 "Proxy-Connection: keep-alive\r\n"
                 "Proxy-Authorization: Basic eA==\r\n"
                 "Proxy-Authenticate: Basic\r\n"
                 "X-Kept: yes\r\n\r\n", NULL);
    ok(count_field(head, "keep-alive") == 0 && count_field(head, "te") == 0
       && count_field(head, "trailer") == 0
       && count_field(head, "upgrade") == 0,
       "Keep-Alive, TE, Trailer and Upgrade dropped");
    ok(count_field(head, "proxy-connection") == 0
       && count_field(head, "proxy-authorization") == 0
       && count_field(head, "proxy-authenticate") == 0,
       "Proxy-Connection, Proxy-Authorization, Proxy-Authenticate dropped");
    ok(count_line(head, "X-Kept: yes\r\n") == 1, "an end-to-end field kept");

    {
        pt_proxy_head_conf_t  conf;

        memset(&conf, 0, sizeof(conf));
        pt_str_set(&conf.peer, "10.1.1.1:9000");
        pt_str_set(&conf.client, "192.0.2.5");
        conf.upgrade = 1;
        pt_str_set(&conf.ws_key, "dGhlIHNhbXBsZSBub25jZQ==");
        head = build("GET /chat HTTP/1.1\r\nHost: h\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", &conf);
        ok(count_line(head, "Upgrade: websocket\r\n") == 1
           && count_line(head, "Connection: upgrade\r\n") == 1
           && count_line(head,
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") == 1,
           "an upgrade with a key of ours: Upgrade, Connection and the key");
    }

    head = build("GET / HTTP/1.1\r\nHost: h\r\nX-Secret: 1\r\n"
                 "x-other: 2\r\nX-Third: 3\r\nX-Kept: yes\r\n"
                 "Connection: keep-alive, x-secret\r\n"
                 "connection: X-OTHER\r\n\r\n", NULL);
    ok(count_field(head, "x-secret") == 0 && count_field(head, "x-other") == 0,
       "fields named by any Connection line dropped, any case");
    ok(count_field(head, "connection") == 0,
       "the client's Connection itself dropped");
    ok(count_line(head, "X-Third: 3\r\n") == 1
       && count_line(head, "X-Kept: yes\r\n") == 1,
       "fields Connection does not name kept");

    head = build("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                 "Content-Length: 3\r\n\r\n", NULL);
    ok(count_field(head, "expect") == 0, "Expect is ours, never forwarded");
}


static void
test_request_framing(void)
{
    char                  *head;
    pt_http_request_t     *r;
    pt_proxy_head_conf_t   conf;

    r = request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 005\r\n\r\n");
    is_int(pt_proxy_body_framing(r), PT_PROXY_BODY_LENGTH,
           "a declared length: framing by length");
    head = build("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 005\r\n\r\n",
                 NULL);
    ok(count_line(head, "Content-Length: 5\r\n") == 1
       && count_field(head, "content-length") == 1
       && count_field(head, "transfer-encoding") == 0,
       "Content-Length: ours, normalized, once");

    head = build("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
                 NULL);
    ok(count_line(head, "Content-Length: 0\r\n") == 1,
       "Content-Length: 0 is kept (a POST without a body)");

    r = request("POST / HTTP/1.1\r\nHost: h\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
    is_int(pt_proxy_body_framing(r), PT_PROXY_BODY_CHUNKED,
           "a chunked body: re-chunked");
    head = build("POST / HTTP/1.1\r\nHost: h\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n", NULL);
    ok(count_line(head, "Transfer-Encoding: chunked\r\n") == 1
       && count_field(head, "transfer-encoding") == 1
       && count_field(head, "content-length") == 0,
       "Transfer-Encoding: chunked, once, without a length");

    r = request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    is_int(pt_proxy_body_framing(r), PT_PROXY_BODY_NONE,
           "no body: no framing");
    head = build("GET / HTTP/1.1\r\nHost: h\r\n\r\n", NULL);
    ok(count_field(head, "content-length") == 0
       && count_field(head, "transfer-encoding") == 0,
       "no body: neither Content-Length nor Transfer-Encoding");

    conf = conf_default(r);
    conf.close = 1;
    head = build("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
                 &conf);
    ok(count_line(head, "Connection: close\r\n") == 1
       && count_field(head, "connection") == 1,
       "no keep-alive upstream: one Connection: close");

    head = build("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                 NULL);
    ok(count_field(head, "connection") == 0,
       "keep-alive upstream: no Connection field, whatever the client's");
}


static void
test_request_edits(void)
{
    char                    *head, *s;
    size_t                   n;
    pt_buf_t                 out;
    pt_http_header_t        *h, fields[NFIELDS];
    pt_http_request_t       *r;
    pt_http_head_scan_t      scan;
    pt_proxy_head_conf_t     conf;
    pt_http_request_line_t   rl;

    /* A field an edit removed has an empty name; a rewrite changes the
     * path. */
    r = request("GET /old?x=1 HTTP/1.1\r\nHost: h\r\nCookie: c=1\r\n"
                "X-A: 1\r\n\r\n");
    if (r == NULL) {
        ok(0, "edited request parsed");
        ok(0, "edited request parsed");
        ok(0, "edited request parsed");
        return;
    }

    h = r->headers_in.headers.elts;
    h[1].name.len = 0;
    pt_str_set(&r->path, "/new");
    conf = conf_default(r);

    ok(pt_proxy_request_head(r, &conf, &out) == PT_OK, "edited: built");
    head = pt_pnalloc(pool, pt_buf_size(&out) + 1);
    memcpy(head, out.pos, pt_buf_size(&out));
    head[pt_buf_size(&out)] = '\0';
    ok(starts(head, "GET /new?x=1 HTTP/1.1\r\n")
       && count_field(head, "cookie") == 0
       && count_line(head, "X-A: 1\r\n") == 1,
       "a removed field is skipped, the rewritten path used");

    /* What we send, our own parser takes: one head, every field valid. */
    s = build("PUT /r?a=b HTTP/1.1\r\nHost: h\r\nX-B: 2\r\n"
              "Content-Length: 4\r\nConnection: x-b\r\n\r\n", NULL);
    memset(&scan, 0, sizeof(scan));
    n = NFIELDS;
    ok(pt_http_scan_head(&scan, s, strlen(s)) == PT_OK
       && scan.head_end == strlen(s)
       && pt_http_parse_request_head(s, &scan, &rl, fields, &n)
          == PT_OK
       && n == 6,
       "the built head parses as exactly one request head of 6 fields");
}


/* The response side: parse raw as an upstream's head and copy it. */
static int
copy(const char *raw, pt_http_request_t **rp, pt_proxy_response_t *resp,
    char **bufp)
{
    char                   *buf;
    size_t                  n, len;
    pt_http_header_t        fields[NFIELDS];
    pt_http_request_t      *r;
    pt_http_head_scan_t     scan;
    pt_http_status_line_t   sl;

    r = request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    if (r == NULL) {
        return -100;
    }

    len = strlen(raw);
    buf = pt_pnalloc(pool, len);
    memcpy(buf, raw, len);
    memset(&scan, 0, sizeof(scan));
    n = NFIELDS;

    if (pt_http_scan_head(&scan, buf, len) != PT_OK
        || pt_http_parse_response_head(buf, &scan, &sl, fields, &n) != PT_OK)
    {
        return -101;
    }

    *rp = r;
    if (bufp) {
        *bufp = buf;
    }

    return pt_proxy_response_head(r, sl.version, sl.status, fields, n, resp);
}


static pt_http_header_t *
out_field(pt_http_request_t *r, const char *name)
{
    return pt_http_header_find(&r->headers_out.headers, name, strlen(name));
}


static void
test_response(void)
{
    int                   rc;
    char                 *buf;
    pt_http_header_t     *h;
    pt_http_request_t    *r;
    pt_proxy_response_t   resp;

    rc = copy("HTTP/1.1 200 OK\r\nServer: backend/1\r\n"
              "Date: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
              "Connection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n"
              "Upgrade: h2c\r\nProxy-Authenticate: Basic\r\nX-Hop: 1\r\n"
              "X-Custom: 42\r\nContent-Length: 12\r\n\r\n", &r, &resp, &buf);
    is_int(rc, PT_OK, "a 200 head is copied");
    is_int(r->headers_out.status, 200, "status copied");
    is_int(r->headers_out.content_length_n, 12, "Content-Length taken");
    ok(resp.keepalive && !resp.chunked && resp.content_length == 12,
       "framing: length 12, keep-alive");
    h = out_field(r, "server");
    ok(h && pt_str_caseeq(&h->value, "backend/1"), "Server kept");
    h = out_field(r, "date");
    ok(h && pt_str_caseeq(&h->value, "Tue, 01 Dec 2026 10:00:00 GMT"),
       "Date kept");
    ok(out_field(r, "connection") == NULL && out_field(r, "keep-alive") == NULL
       && out_field(r, "upgrade") == NULL,
       "Connection, Keep-Alive and Upgrade dropped");
    ok(out_field(r, "proxy-authenticate") == NULL,
       "Proxy-Authenticate dropped");
    ok(out_field(r, "x-hop") == NULL, "a field Connection names dropped");
    ok(out_field(r, "content-length") == NULL,
       "Content-Length is framing: not copied as a field");
    is_int(r->headers_out.headers.nelts, 3,
           "three fields copied (Server, Date, X-Custom)");

    memset(buf, 'x', strlen("HTTP/1.1 200 OK\r\nServer: backend/1\r\n"));
    h = out_field(r, "x-custom");
    ok(h && pt_str_caseeq(&h->value, "42")
       && pt_str_caseeq(&((pt_http_header_t *)
                          r->headers_out.headers.elts)[0].value, "backend/1"),
       "fields are copies: the upstream's buffer can be reused");

    rc = copy("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
              "Content-Length: 5\r\n\r\n", &r, &resp, NULL);
    ok(rc == PT_OK && resp.content_length == 5,
       "two equal Content-Lengths are one");

    rc = copy("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", &r, &resp,
              NULL);
    ok(rc == PT_OK && resp.content_length == 5,
       "a list of equal lengths is one");

    rc = copy("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
              "Content-Length: 6\r\n\r\n", &r, &resp, NULL);
    ok(rc == 502 && resp.error && strstr(resp.error, "Content-Length"),
       "two different Content-Lengths: 502");

    rc = copy("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", &r, &resp,
              NULL);
    is_int(rc, 502, "a list of different lengths: 502");

    rc = copy("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", &r, &resp,
              NULL);
    is_int(rc, 502, "an invalid Content-Length: 502");

    rc = copy("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n"
              "Transfer-Encoding: chunked\r\n\r\n", &r, &resp, NULL);
    ok(rc == PT_OK && resp.chunked && resp.content_length == -1
       && r->headers_out.content_length_n == -1
       && out_field(r, "transfer-encoding") == NULL,
       "chunked wins over a length, and is not copied as a field");

    rc = copy("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &r, &resp,
              NULL);
    ok(rc == 502 && resp.error && strstr(resp.error, "coding"),
       "a coding other than chunked: 502");

    rc = copy("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
              "Transfer-Encoding: chunked\r\n\r\n", &r, &resp, NULL);
    is_int(rc, 502, "chunked twice: 502");

    rc = copy("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", &r,
              &resp, NULL);
    ok(rc == PT_OK && !resp.keepalive && resp.content_length == -1,
       "HTTP/1.1 with Connection: close: not reused");

    rc = copy("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &r, &resp,
              NULL);
    ok(rc == PT_OK && !resp.keepalive, "HTTP/1.0: not reused by default");

    rc = copy("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
              "Content-Length: 0\r\n\r\n", &r, &resp, NULL);
    ok(rc == PT_OK && resp.keepalive, "HTTP/1.0 with keep-alive: reused");
}


static void
test_interim(void)
{
    pt_buf_t                out;
    pt_str_t                got;
    pt_http_header_t        fields[4];
    pt_http_request_t      *r, *r10;
    pt_http_status_line_t   sl;

    r = request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    r10 = request("GET / HTTP/1.0\r\n\r\n");

    memset(&sl, 0, sizeof(sl));
    sl.version = 11;
    sl.status = 103;
    pt_str_set(&sl.reason, "Early Hints");
    pt_str_set(&fields[0].name, "Link");
    pt_str_set(&fields[0].value, "</style.css>; rel=preload; as=style");
    pt_str_set(&fields[1].name, "Connection");
    pt_str_set(&fields[1].value, "X-Hint-Hop");
    pt_str_set(&fields[2].name, "x-hint-hop");
    pt_str_set(&fields[2].value, "1");
    pt_str_set(&fields[3].name, "Keep-Alive");
    pt_str_set(&fields[3].value, "timeout=5");

    ok(pt_proxy_interim_head(r, &sl, fields, 4, &out) == PT_OK,
       "103 head built");
    got.data = out.pos;
    got.len = pt_buf_size(&out);
    is_str(got.data, got.len,
           "HTTP/1.1 103 Early Hints\r\n"
           "Link: </style.css>; rel=preload; as=style\r\n\r\n",
           "103 Early Hints: its fields, without the hop-by-hop ones");

    pt_str_null(&sl.reason);
    sl.status = 199;
    ok(pt_proxy_interim_head(r, &sl, fields, 1, &out) == PT_OK, "199 built");
    is_str(out.pos, pt_buf_size(&out),
           "HTTP/1.1 199 \r\nLink: </style.css>; rel=preload; as=style"
           "\r\n\r\n", "an interim status without a reason");

    ok(pt_proxy_interim_passes(r, 103), "103 passes to an HTTP/1.1 client");
    ok(!pt_proxy_interim_passes(r10, 103),
       "103 does not pass to an HTTP/1.0 client");
    ok(!pt_proxy_interim_passes(r, 100), "100 Continue is ours, not passed");
    ok(!pt_proxy_interim_passes(r, 101), "101 never passes");
    ok(!pt_proxy_interim_passes(r, 200), "a final status is not interim");
}


static void
test_hop_by_hop(void)
{
    pt_str_t          name;
    pt_http_header_t  conn[2];

    pt_str_set(&conn[0].name, "CONNECTION");
    pt_str_set(&conn[0].value, " close , X-A ");
    pt_str_set(&conn[1].name, "X-Other");
    pt_str_set(&conn[1].value, "x-b");

    pt_str_set(&name, "tE");
    ok(pt_proxy_hop_by_hop(&name, NULL, 0), "TE in any case is hop-by-hop");
    pt_str_set(&name, "Proxy-Authenticate");
    ok(pt_proxy_hop_by_hop(&name, NULL, 0), "Proxy-Authenticate is too");
    pt_str_set(&name, "TEX");
    ok(!pt_proxy_hop_by_hop(&name, NULL, 0), "a longer name is not");
    pt_str_set(&name, "x-a");
    ok(pt_proxy_hop_by_hop(&name, conn, 2),
       "a name in a Connection list (spaces, case) is");
    pt_str_set(&name, "x-b");
    ok(!pt_proxy_hop_by_hop(&name, conn, 2),
       "a name in another field's value is not");
}


static void
test_strcaseeq(void)
{
    pt_str_t  s;

    pt_str_set(&s, "Content-Length");
    ok(pt_str_caseeq(&s, "content-length"), "pt_strcaseeq: any case");
    ok(!pt_str_caseeq(&s, "content-lengt"), "pt_strcaseeq: no prefix");
    ok(!pt_str_caseeq(&s, "content-lengthx"), "pt_strcaseeq: no longer");
    ok(!pt_str_caseeq(&s, "content_length"),
       "pt_strcaseeq: '_' is not '-'");
    s.len = 0;
    ok(pt_strcaseeq(&s, "", 0) && !pt_str_caseeq(&s, "a"),
       "pt_strcaseeq: empty strings");
}


int
main(void)
{
    tap_plan(76);

    pool = pt_pool_create(4096);
    if (pool == NULL) {
        printf("Bail out! no memory\n");
        return 1;
    }

    test_request_basic();
    test_request_forwarded();
    test_request_host();
    test_request_hop_by_hop();
    test_request_framing();
    test_request_edits();
    test_response();
    test_interim();
    test_hop_by_hop();
    test_strcaseeq();

    pt_pool_destroy(pool);

    return tap_done();
}
