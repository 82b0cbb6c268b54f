/*
 * test_websocket.c: the WebSocket handshake checks (pt_websocket.c) and
 * the upgrade head for the upstream (pt_proxy_head.c), on requests parsed
 * from text by the HTTP/1 parser, without a socket.
 */

#include "pt_core.h"
#include "pt_http.h"
#include "pt_proxy_head.h"
#include "pt_string.h"
#include "pt_websocket.h"
#include "tap.h"


#define NFIELDS  32

/* RFC 6455 1.3's example. */
#define KEY      "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT   "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define UPGRADE  "Upgrade: websocket\r\nConnection: Upgrade\r\n"


static pt_pool_t  *pool;


/* A request as the HTTP/1 server hands it to the proxy (the fields the
 * core points at found the way it finds them). */
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
        } else if (pt_str_caseeq(&h->name, "content-length")) {
            in->content_length = h;
            in->content_length_n = pt_http_parse_content_length(&h->value);
        } else if (pt_str_caseeq(&h->name, "transfer-encoding")) {
            in->transfer_encoding = h;
            in->chunked = pt_str_caseeq(&h->value, "chunked");
        }
    }

    return r;
}


static int
wants(const char *raw)
{
    pt_http_request_t  *r;

    r = request(raw);
    if (r == NULL) {
        return -1;
    }

    return pt_ws_wants_upgrade(r->headers_in.headers.elts,
                               r->headers_in.headers.nelts);
}


/* pt_ws_check_request on raw; *why gets the reason (or ""). */
static int
check(const char *raw, const char **why)
{
    pt_http_request_t  *r;

    r = request(raw);
    if (r == NULL) {
        *why = "(request did not parse)";
        return -100;
    }

    *why = "";
    return pt_ws_check_request(r, why);
}


static int
key_valid(const char *key)
{
    pt_str_t  s;

    s.data = (char *) key;
    s.len = strlen(key);

    return pt_ws_key_valid(&s);
}


static void
test_wants_upgrade(void)
{
    is_int(wants("GET / HTTP/1.1\r\nHost: a\r\n" UPGRADE "\r\n"), 1,
           "Upgrade: websocket with Connection: Upgrade asks to upgrade");
    is_int(wants("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\n"
                 "Connection: keep-alive, UPGRADE\r\n\r\n"), 1,
           "tokens are case-insensitive, and Connection may list more");
    is_int(wants("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c, websocket\r\n"
                 "Connection: upgrade\r\n\r\n"), 1,
           "websocket among other protocols counts");
    is_int(wants("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                 "Upgrade: websocket\r\nConnection: upgrade\r\n\r\n"), 1,
           "Connection on two lines is one list");
    is_int(wants("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"),
           0, "Upgrade without Connection: upgrade does not count");
    is_int(wants("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n"
                 "Connection: upgrade\r\n\r\n"), 0,
           "another protocol is not a WebSocket upgrade");
    is_int(wants("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websockets\r\n"
                 "Connection: upgrade\r\n\r\n"), 0,
           "a token is matched whole");
}


static void
test_key(void)
{
    is_int(key_valid(KEY), 1, "the RFC's key is valid");
    is_int(key_valid("AAAAAAAAAAAAAAAAAAAAAA=="), 1, "16 zero bytes");
    is_int(key_valid("/////////////////////w=="), 1,
           "16 0xff bytes (last character w)");
    is_int(key_valid("/////////////////////x=="), 0,
           "non-canonical last character (bits beyond the 16 bytes)");
    is_int(key_valid("dGhlIHNhbXBsZSBub25jZQ="), 0, "23 characters");
    is_int(key_valid("dGhlIHNhbXBsZSBub25jZQ==="), 0, "25 characters");
    is_int(key_valid("dGhlIHNhbXBsZSBub25jZQAA"), 0, "no padding (18 bytes)");
    is_int(key_valid("dGhlIHNhbXBsZSBub25j*Q=="), 0, "a character not base64");
    is_int(key_valid("dGhlIHNhbXBsZSBub25jZ-=="), 0, "base64url is not base64");
    is_int(key_valid(""), 0, "empty");
}


static void
test_accept(void)
{
    char      out[PT_WS_ACCEPT_LEN];
    pt_str_t  key;

    pt_str_set(&key, KEY);
    ok(pt_ws_accept(&key, out) == PT_OK
       && memcmp(out, ACCEPT, PT_WS_ACCEPT_LEN) == 0,
       "Sec-WebSocket-Accept of the RFC's example key");

    pt_str_set(&key, "short");
    is_int(pt_ws_accept(&key, out), PT_ERROR, "no accept for a short key");
}


static void
test_check_request(void)
{
    int                 rc;
    const char         *why;
    pt_http_header_t   *h;
    pt_http_request_t  *r;

    rc = check("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Sec-WebSocket-Key: " KEY "\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n", &why);
    is_int(rc, PT_OK, "a valid upgrade passes");

    rc = check("POST /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Sec-WebSocket-Key: " KEY "\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n", &why);
    is_int(rc, 400, "POST: 400");
    is_str(why, strlen(why), "the method is not GET", "  and why");

    rc = check("HEAD /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Sec-WebSocket-Key: " KEY "\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n", &why);
    is_int(rc, 400, "HEAD: 400");

    rc = check("GET /ws HTTP/1.0\r\nHost: a\r\n" UPGRADE
               "Sec-WebSocket-Key: " KEY "\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n", &why);
    is_int(rc, 400, "HTTP/1.0: 400");
    is_str(why, strlen(why), "the version is not HTTP/1.1", "  and why");

    rc = check("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Content-Length: 5\r\n"
               "Sec-WebSocket-Key: " KEY "\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n", &why);
    is_int(rc, 400, "a body: 400");

    rc = check("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Content-Length: 0\r\n"
               "Sec-WebSocket-Key: " KEY "\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n", &why);
    is_int(rc, PT_OK, "Content-Length: 0 is no body");

    rc = check("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Transfer-Encoding: chunked\r\n"
               "Sec-WebSocket-Key: " KEY "\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n", &why);
    is_int(rc, 400, "a chunked body: 400");

    rc = check("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Sec-WebSocket-Version: 13\r\n\r\n", &why);
    is_int(rc, 400, "no key: 400");
    is_str(why, strlen(why), "no Sec-WebSocket-Key", "  and why");

    rc = check("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Sec-WebSocket-Key: " KEY "\r\n"
               "Sec-WebSocket-Key: " KEY "\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n", &why);
    is_int(rc, 400, "two keys: 400");

    rc = check("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Sec-WebSocket-Key: c2hvcnQ=\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n", &why);
    is_int(rc, 400, "a key of 5 bytes: 400");
    is_str(why, strlen(why), "Sec-WebSocket-Key is not base64 of 16 bytes",
           "  and why");

    rc = check("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Sec-WebSocket-Key: " KEY "\r\n\r\n", &why);
    is_int(rc, 400, "no version: 400");

    rc = check("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Sec-WebSocket-Key: " KEY "\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n", &why);
    is_int(rc, 400, "two versions: 400");

    r = request("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
                "Sec-WebSocket-Key: " KEY "\r\n"
                "Sec-WebSocket-Version: 8\r\n\r\n");
    rc = r ? pt_ws_check_request(r, &why) : -100;
    is_int(rc, 426, "version 8: 426");

    h = r ? pt_http_header_find(&r->headers_out.headers,
                                "Sec-WebSocket-Version", 21) : NULL;
    ok(h && pt_str_caseeq(&h->value, "13"),
       "  with Sec-WebSocket-Version: 13 for the client");

    h = r ? pt_http_header_find(&r->headers_out.headers, "Upgrade", 7)
          : NULL;
    ok(h && pt_str_caseeq(&h->value, "websocket"),
       "  and Upgrade: websocket (RFC 9110 15.5.22)");

    rc = check("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
               "Sec-WebSocket-Key: " KEY "\r\n"
               "Sec-WebSocket-Version: 13, 8\r\n\r\n", &why);
    is_int(rc, 426, "a list of versions is not 13: 426");
}


static void
test_check_response(void)
{
    size_t              n;
    const char         *why;
    pt_http_header_t    f[3];
    pt_http_request_t  *r;

    r = request("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
                "Sec-WebSocket-Key: " KEY "\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n");
    if (r == NULL) {
        ok(0, "request parses");
        return;
    }

    pt_str_set(&f[0].name, "Upgrade");
    pt_str_set(&f[0].value, "websocket");
    pt_str_set(&f[1].name, "Connection");
    pt_str_set(&f[1].value, "Upgrade");
    pt_str_set(&f[2].name, "Sec-WebSocket-Accept");
    pt_str_set(&f[2].value, ACCEPT);
    n = 3;

    ok(pt_ws_check_response(r, NULL, f, n) == NULL,
       "a 101 with the right accept completes the handshake");

    pt_str_set(&f[2].value, "s3pPLMBiTxaQ9kYGzzhZRbK+xOA=");
    why = pt_ws_check_response(r, NULL, f, n);
    ok(why && strstr(why, "wrong Sec-WebSocket-Accept"),
       "a wrong accept does not");

    ok(pt_ws_check_response(r, NULL, f, 2) != NULL,
       "nor does a missing accept");

    pt_str_set(&f[2].value, ACCEPT);
    pt_str_set(&f[0].value, "h2c");
    why = pt_ws_check_response(r, NULL, f, n);
    ok(why && strstr(why, "other than websocket"),
       "a switch to another protocol does not");
}


/* Extended CONNECT: the key is the gateway's, and the 101 answers it. */
static void
test_own_key(void)
{
    char                accept[PT_WS_ACCEPT_LEN];
    pt_str_t            k1, k2;
    pt_http_header_t    f[2];
    pt_http_request_t  *r;

    r = request("GET /ws HTTP/1.1\r\nHost: a\r\n" UPGRADE
                "Sec-WebSocket-Key: " KEY "\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n");
    if (r == NULL || pt_ws_make_key(pool, &k1) != PT_OK
        || pt_ws_make_key(pool, &k2) != PT_OK
        || pt_ws_accept(&k1, accept) != PT_OK)
    {
        ok(0, "keys made");
        ok(0, "keys made");
        ok(0, "keys made");
        return;
    }

    ok(pt_ws_key_valid(&k1) && pt_ws_key_valid(&k2)
       && memcmp(k1.data, k2.data, PT_WS_KEY_LEN) != 0,
       "made keys are base64 of 16 bytes, and differ");

    pt_str_set(&f[0].name, "Upgrade");
    pt_str_set(&f[0].value, "websocket");
    pt_str_set(&f[1].name, "Sec-WebSocket-Accept");
    f[1].value.data = accept;
    f[1].value.len = PT_WS_ACCEPT_LEN;

    ok(pt_ws_check_response(r, &k1, f, 2) == NULL,
       "a 101 answering the key sent completes the handshake");
    ok(pt_ws_check_response(r, &k2, f, 2) != NULL,
       "one answering another key does not");
}


/* The upgrade head for the upstream, NUL-terminated. */
static char *
upstream_head(const char *raw, int upgrade, int close)
{
    char                  *s;
    pt_buf_t               out;
    pt_http_request_t     *r;
    pt_proxy_head_conf_t   conf;

    r = request(raw);
    if (r == NULL) {
        return "(request did not parse)";
    }

    memset(&conf, 0, sizeof(conf));
    pt_str_set(&conf.peer, "10.1.1.1:9000");
    pt_str_set(&conf.client, "192.0.2.5");
    conf.body = pt_proxy_body_framing(r);
    conf.upgrade = upgrade;
    conf.close = close;

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


static void
test_upstream_head(void)
{
    char        *head;
    const char  *raw;

    raw = "GET /chat HTTP/1.1\r\nHost: a\r\n"
          "Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket, h2c\r\n"
          "Sec-WebSocket-Key: " KEY "\r\n"
          "Sec-WebSocket-Version: 13\r\n"
          "Sec-WebSocket-Protocol: chat, superchat\r\n"
          "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

    head = upstream_head(raw, 1, 1);

    is_str(head, strlen(head),
           "GET /chat HTTP/1.1\r\n"
           "Host: a\r\n"
           "Sec-WebSocket-Key: " KEY "\r\n"
           "Sec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Protocol: chat, superchat\r\n"
           "Sec-WebSocket-Extensions: permessage-deflate\r\n"
           "X-Forwarded-For: 192.0.2.5\r\n"
           "X-Forwarded-Proto: http\r\n"
           "X-Forwarded-Host: a\r\n"
           "X-Request-ID: rid-1\r\n"
           "Upgrade: websocket\r\n"
           "Connection: upgrade\r\n"
           "\r\n",
           "an upgrade goes upstream with Upgrade: websocket and "
           "Connection: upgrade only, the Sec-WebSocket-* fields as sent, "
           "and never Connection: close");

    head = upstream_head(raw, 0, 1);

    ok(strstr(head, "Upgrade:") == NULL
       && strstr(head, "\r\nConnection: close\r\n") != NULL
       && strstr(head, "Sec-WebSocket-Key: " KEY "\r\n") != NULL,
       "without upgrade (a route without websocket: true) Upgrade is "
       "dropped as hop-by-hop");
}


int
main(void)
{
    tap_plan(48);

    pool = pt_pool_create(4096);
    if (pool == NULL) {
        printf("Bail out! no memory\n");
        return 1;
    }

    test_wants_upgrade();
    test_key();
    test_accept();
    test_check_request();
    test_check_response();
    test_own_key();
    test_upstream_head();

    pt_pool_destroy(pool);

    return tap_done();
}
