/*
 * test_http_parse.c: the HTTP/1.x head scanner and parser.
 */

#include "pt_core.h"
#include "pt_http_parse.h"
#include "tap.h"


#define S(lit)  lit, sizeof(lit) - 1

#define NH  8


static pt_http_request_line_t  rl;
static pt_http_header_t        hd[NH];
static size_t                  nh;
static pt_http_status_line_t   sl;


/* The head is copied into a heap buffer of exactly its size, so that a
 * sanitizer sees any read past the end; the copy stays alive until the
 * next call because the results point into it. */

static char *
copy(const char *s, size_t len)
{
    static char  *last;

    free(last);
    last = NULL;

    if (s == NULL) {
        return NULL;
    }

    last = malloc(len ? len : 1);
    if (last != NULL) {
        memcpy(last, s, len);
    }

    return last;
}


/* Scan a whole buffer and parse it as a request with capacity cap. */

static int
req_cap(const char *s, size_t len, size_t cap)
{
    pt_http_head_scan_t  sc;

    s = copy(s, len);
    if (s == NULL) {
        return -101;
    }

    memset(&sc, 0, sizeof(sc));

    if (pt_http_scan_head(&sc, s, len) != PT_OK) {
        return -100;
    }

    nh = cap;

    return pt_http_parse_request_head(s, &sc, &rl, hd, &nh);
}


static int
req(const char *s, size_t len)
{
    return req_cap(s, len, NH);
}


static int
resp(const char *s, size_t len)
{
    pt_http_head_scan_t  sc;

    s = copy(s, len);
    if (s == NULL) {
        return -101;
    }

    memset(&sc, 0, sizeof(sc));

    if (pt_http_scan_head(&sc, s, len) != PT_OK) {
        return -100;
    }

    nh = NH;

    return pt_http_parse_response_head(s, &sc, &sl, hd, &nh);
}


static int
streq(const pt_str_t *s, const char *want)
{
    return s->len == strlen(want) && memcmp(s->data, want, s->len) == 0;
}


/* Feed one byte at a time; the results must match a whole scan, and
 * PT_OK must come exactly when the last byte of the head arrives. */

static int
scan_bytewise_matches(const char *s, size_t len)
{
    size_t               i;
    int                  rc;
    const char          *p;
    pt_http_head_scan_t  whole, step;

    memset(&whole, 0, sizeof(whole));
    memset(&step, 0, sizeof(step));

    if (pt_http_scan_head(&whole, s, len) != PT_OK) {
        return 0;
    }

    /* each prefix gets its own exact-size copy: reading past len is a bug
     * the sanitizers should see */

    for (i = 0; i <= len; i++) {
        p = copy(s, i);
        if (p == NULL) {
            return 0;
        }

        rc = pt_http_scan_head(&step, p, i);

        if (i < whole.head_end && rc != PT_AGAIN) {
            return 0;
        }

        if (i >= whole.head_end && rc != PT_OK) {
            return 0;
        }

        /* line_end shows up as soon as the request line is complete */

        if (i >= whole.line_end && step.line_end != whole.line_end) {
            return 0;
        }

        if (i < whole.line_end && step.line_end != 0) {
            return 0;
        }
    }

    return step.head_end == whole.head_end
           && step.line_end == whole.line_end
           && step.start == whole.start;
}


static void
test_scanner(void)
{
    pt_http_head_scan_t  sc;
    size_t               i;
    static const char    pipe[] = "GET /a HTTP/1.1\r\nA: b\r\n\r\n"
                                  "GET /b HTTP/1.1\r\n\r\n";
    static const char   *heads[] = {
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: yy\r\n\r\n",
        "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nA: \r\r\n\r\n",
        "\r\rGET / HTTP/1.1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    };

    for (i = 0; i < pt_nelems(heads); i++) {
        ok(scan_bytewise_matches(heads[i], strlen(heads[i])),
           "scanner: byte-at-a-time equals whole, head %d", (int) i);
    }

    memset(&sc, 0, sizeof(sc));
    is_int(pt_http_scan_head(&sc, S("GET /very/long/target")), PT_AGAIN,
           "scanner: incomplete line needs more");
    is_int(sc.line_end, 0, "scanner: line_end 0 while the line is open (414)");
    is_int(sc.scanned, 21, "scanner: scanned everything given");

    is_int(pt_http_scan_head(&sc, S("GET /very/long/target HTTP/1.1\r\nA: b")),
           PT_AGAIN, "scanner: incomplete head needs more");
    is_int(sc.line_end, 32, "scanner: line_end past the CRLF (431 case)");
    is_int(sc.head_end, 0, "scanner: no head_end yet");

    memset(&sc, 0, sizeof(sc));
    is_int(pt_http_scan_head(&sc, S("\r\n\r\nGET / HTTP/1.1\r\n\r\n")), PT_OK,
           "scanner: leading CRLFs");
    is_int(sc.start, 4, "scanner: two leading CRLFs skipped");
    is_int(sc.line_end, 20, "scanner: line_end after leading CRLFs");
    is_int(sc.head_end, 22, "scanner: head_end after leading CRLFs");

    memset(&sc, 0, sizeof(sc));
    is_int(pt_http_scan_head(&sc,
                             S("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n")),
           PT_OK, "scanner: ten CRLFs");
    is_int(sc.start, 16, "scanner: at most 8 leading CRLFs skipped");

    memset(&sc, 0, sizeof(sc));
    is_int(pt_http_scan_head(&sc, pipe, sizeof(pipe) - 1), PT_OK,
           "scanner: pipelined");
    is_int(sc.head_end, 25, "scanner: stops at the first head");

    memset(&sc, 0, sizeof(sc));
    is_int(pt_http_scan_head(&sc, S("GET / HTTP/1.1\r\n\n")), PT_OK,
           "scanner: bare LF ends the head (parser rejects it)");
    is_int(sc.head_end, 17, "scanner: bare LF head_end");
}


static void
test_valid_requests(void)
{
    size_t             i;
    char               line[64];
    int                n;
    static const char *names[] = { "GET", "HEAD", "POST", "PUT", "DELETE",
                                   "OPTIONS", "PATCH", "TRACE" };
    static unsigned    bits[] = { PT_HTTP_GET, PT_HTTP_HEAD, PT_HTTP_POST,
                                  PT_HTTP_PUT, PT_HTTP_DELETE, PT_HTTP_OPTIONS,
                                  PT_HTTP_PATCH, PT_HTTP_TRACE };

    is_int(req(S("GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\n\r\n")),
           PT_OK, "origin-form with query");
    ok(streq(&rl.method_name, "GET") && rl.method == PT_HTTP_GET,
       "method GET");
    ok(streq(&rl.target, "/a/b?x=1&y"), "target as sent");
    ok(streq(&rl.path, "/a/b"), "path before '?'");
    ok(streq(&rl.query, "x=1&y") && rl.has_query, "query after '?'");
    is_int(rl.form, PT_HTTP_FORM_ORIGIN, "origin form");
    is_int(rl.version, 11, "HTTP/1.1");
    is_int(rl.authority.len, 0, "no authority in origin-form");
    is_int(nh, 1, "one header");
    ok(streq(&hd[0].name, "Host") && streq(&hd[0].value, "example.com"),
       "Host header");

    is_int(req(S("GET /p? HTTP/1.1\r\n\r\n")), PT_OK, "empty query");
    ok(rl.has_query && rl.query.len == 0 && streq(&rl.path, "/p"),
       "empty query: has_query set, query empty");

    is_int(req(S("GET /p HTTP/1.1\r\n\r\n")), PT_OK, "no query");
    ok(!rl.has_query && rl.query.len == 0 && nh == 0,
       "no query: has_query clear, no headers");

    is_int(req(S("GET http://Example.com:8080/x/y?q=1 HTTP/1.1\r\n\r\n")),
           PT_OK, "absolute-form");
    is_int(rl.form, PT_HTTP_FORM_ABSOLUTE, "absolute form");
    ok(streq(&rl.authority, "Example.com:8080"), "absolute-form authority");
    ok(streq(&rl.path, "/x/y") && streq(&rl.query, "q=1"),
       "absolute-form path and query");

    is_int(req(S("GET HTTPS://h.example HTTP/1.1\r\n\r\n")), PT_OK,
           "absolute-form https, scheme case-insensitive, no path");
    ok(streq(&rl.path, "/") && streq(&rl.authority, "h.example"),
       "absolute-form empty path becomes /");

    is_int(req(S("GET http://h?x HTTP/1.1\r\n\r\n")), PT_OK,
           "absolute-form query without path");
    ok(streq(&rl.path, "/") && streq(&rl.query, "x") && rl.has_query,
       "absolute-form query without path: path / query x");

    is_int(req(S("GET http://[::1]:80/ HTTP/1.1\r\n\r\n")), PT_OK,
           "absolute-form IPv6 literal");
    ok(streq(&rl.authority, "[::1]:80"), "IPv6 authority");

    is_int(req(S("OPTIONS * HTTP/1.1\r\n\r\n")), PT_OK, "OPTIONS *");
    ok(rl.form == PT_HTTP_FORM_ASTERISK && streq(&rl.path, "*")
       && rl.method == PT_HTTP_OPTIONS, "asterisk form, path *");

    is_int(req(S("CONNECT api.example:443 HTTP/1.1\r\n\r\n")), PT_OK,
           "CONNECT authority-form");
    ok(rl.form == PT_HTTP_FORM_AUTHORITY && rl.method == PT_HTTP_CONNECT
       && streq(&rl.authority, "api.example:443") && rl.path.len == 0,
       "authority form fields");

    is_int(req(S("GET / HTTP/1.0\r\n\r\n")), PT_OK, "HTTP/1.0");
    is_int(rl.version, 10, "version 10");

    is_int(req(S("GET / HTTP/1.1\r\nX-A:   v  w \t\r\nX-B:v\r\n"
                 "X-E:\r\nX-F:   \r\nX-T: a\tb\r\n\r\n")),
           PT_OK, "headers with OWS");
    is_int(nh, 5, "five headers");
    ok(streq(&hd[0].value, "v  w"), "OWS cut both sides, inner kept");
    ok(streq(&hd[1].value, "v"), "no OWS");
    ok(hd[2].value.len == 0 && hd[3].value.len == 0, "empty values");
    ok(streq(&hd[4].value, "a\tb"), "HTAB inside a value");

    is_int(req(S("GET / HTTP/1.1\r\nX-O: caf\xc3\xa9 \xff\x80\r\n\r\n")),
           PT_OK, "obs-text value");
    ok(streq(&hd[0].value, "caf\xc3\xa9 \xff\x80"), "obs-text kept");

    is_int(req(S("GET / HTTP/1.1\r\nx-CaSe: 1\r\n\r\n")), PT_OK,
           "header name case");
    ok(streq(&hd[0].name, "x-CaSe"), "name case kept");

    is_int(req(S("get / HTTP/1.1\r\n\r\n")), PT_OK, "lower-case method ok");
    is_int(rl.method, PT_HTTP_OTHER, "get is OTHER");
    is_int(req(S("PURGE / HTTP/1.1\r\n\r\n")), PT_OK, "unknown method ok");
    ok(rl.method == PT_HTTP_OTHER && streq(&rl.method_name, "PURGE"),
       "PURGE is OTHER, name kept");

    for (i = 0; i < pt_nelems(names); i++) {
        n = snprintf(line, sizeof(line), "%s / HTTP/1.1\r\n\r\n", names[i]);
        ok(req(line, (size_t) n) == PT_OK && rl.method == bits[i],
           "method %s", names[i]);
    }

    is_int(req(S("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n")),
           PT_OK, "eight leading CRLFs skipped");
    is_int(req(S("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n")),
           400, "nine leading CRLFs: 400");
    is_int(req(S("\nGET / HTTP/1.1\r\n\r\n")), 400, "leading bare LF: 400");
}


static void
test_bad_requests(void)
{
    /* the request line */
    is_int(req(S("G(T / HTTP/1.1\r\n\r\n")), 400, "method not a token");
    is_int(req(S(" / HTTP/1.1\r\n\r\n")), 400, "empty method");
    is_int(req(S("GET /a\x7f HTTP/1.1\r\n\r\n")), 400, "target DEL");
    is_int(req(S("GET /a\x80 HTTP/1.1\r\n\r\n")), 400, "target 0x80");
    is_int(req(S("GET /a#f HTTP/1.1\r\n\r\n")), 400, "target '#'");
    is_int(req(S("GET /a\"b HTTP/1.1\r\n\r\n")), PT_OK,
           "target '\"' is 0x22, allowed");
    is_int(req(S("GET  / HTTP/1.1\r\n\r\n")), 400, "two SPs after method");
    is_int(req(S("GET /  HTTP/1.1\r\n\r\n")), 400, "two SPs after target");
    is_int(req(S("GET\t/ HTTP/1.1\r\n\r\n")), 400, "HTAB as separator");
    is_int(req(S("GET / HTTP/1.1 \r\n\r\n")), 400, "SP after version");
    is_int(req(S("GET /\r\n\r\n")), 400, "no version");
    is_int(req(S("GET / http/1.1\r\n\r\n")), 400, "lower-case HTTP-name");
    is_int(req(S("GET / HTTP/1.10\r\n\r\n")), 400, "two-digit minor");
    is_int(req(S("GET / HTTP/11\r\n\r\n")), 400, "no dot in version");

    /* line ends */
    is_int(req(S("GET / HTTP/1.1\rX\r\n\r\n")), 400, "bare CR in line");
    is_int(req(S("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n")), 400,
           "bare CR in value");
    is_int(req(S("GET / HTTP/1.1\r\nX\r: a\r\n\r\n")), 400,
           "bare CR in name");
    is_int(req(S("GET / HTTP/1.1\n\r\n")), 400, "bare LF after request line");
    is_int(req(S("GET / HTTP/1.1\r\nHost: x\n\r\n")), 400,
           "bare LF after header");
    is_int(req(S("GET / HTTP/1.1\r\nHost: x\r\n\n")), 400,
           "bare LF ending the head");

    /* fields */
    is_int(req(S("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n")), 400, "obs-fold");
    is_int(req(S("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n")), 400,
           "obs-fold with HTAB");
    is_int(req(S("GET / HTTP/1.1\r\n X: a\r\n\r\n")), 400,
           "whitespace before the first header");
    is_int(req(S("GET / HTTP/1.1\r\n: v\r\n\r\n")), 400, "empty field name");
    is_int(req(S("GET / HTTP/1.1\r\nX(a: v\r\n\r\n")), 400,
           "invalid field name");
    is_int(req(S("GET / HTTP/1.1\r\nXa\r\n\r\n")), 400, "no colon");
    is_int(req(S("GET / HTTP/1.1\r\nHost : x\r\n\r\n")), 400,
           "SP before colon");
    is_int(req(S("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n")), 400,
           "HTAB before colon");
    is_int(req(S("GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n")), 400,
           "CTL in value");
    is_int(req(S("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n")), 400, "DEL in value");
    is_int(req(S("GET / HTTP/1.1\r\nX: \x1b[0m\r\n\r\n")), 400,
           "ESC in value");

    /* NUL anywhere */
    is_int(req(S("G\0T / HTTP/1.1\r\n\r\n")), 400, "NUL in method");
    is_int(req(S("GET /\0 HTTP/1.1\r\n\r\n")), 400, "NUL in target");
    is_int(req(S("GET / HTTP/1.1\0\r\n\r\n")), 400, "NUL in version");
    is_int(req(S("GET / HTTP/1.1\r\nX\0: a\r\n\r\n")), 400, "NUL in name");
    is_int(req(S("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n")), 400, "NUL in value");

    /* target forms against methods */
    is_int(req(S("GET * HTTP/1.1\r\n\r\n")), 400, "asterisk-form with GET");
    is_int(req(S("OPTIONS *x HTTP/1.1\r\n\r\n")), 400, "asterisk plus junk");
    is_int(req(S("GET api.example:443 HTTP/1.1\r\n\r\n")), 400,
           "authority-form with GET");
    is_int(req(S("CONNECT / HTTP/1.1\r\n\r\n")), 400,
           "CONNECT with origin-form");
    is_int(req(S("CONNECT * HTTP/1.1\r\n\r\n")), 400, "CONNECT with *");
    is_int(req(S("CONNECT http://h:80/ HTTP/1.1\r\n\r\n")), 400,
           "CONNECT with absolute-form");
    is_int(req(S("CONNECT h HTTP/1.1\r\n\r\n")), 400, "CONNECT without port");
    is_int(req(S("CONNECT h:70000 HTTP/1.1\r\n\r\n")), 400,
           "CONNECT port too big");
    is_int(req(S("CONNECT :443 HTTP/1.1\r\n\r\n")), 400,
           "CONNECT without host");
    is_int(req(S("GET ftp://h/x HTTP/1.1\r\n\r\n")), 400, "scheme ftp");
    is_int(req(S("GET httpx://h/x HTTP/1.1\r\n\r\n")), 400, "scheme httpx");
    is_int(req(S("GET http:/h/x HTTP/1.1\r\n\r\n")), 400, "http:/ one slash");
    is_int(req(S("GET http:///x HTTP/1.1\r\n\r\n")), 400, "absolute no host");
    is_int(req(S("GET http:// HTTP/1.1\r\n\r\n")), 400, "absolute empty");
    is_int(req(S("GET http://:80/x HTTP/1.1\r\n\r\n")), 400,
           "absolute port without host");
    is_int(req(S("GET http://u:p@h/x HTTP/1.1\r\n\r\n")), 400, "userinfo");
    is_int(req(S("GET http://h:8a/x HTTP/1.1\r\n\r\n")), 400, "bad port");
    is_int(req(S("GET http://[::1/x HTTP/1.1\r\n\r\n")), 400,
           "unclosed IPv6 literal");
    is_int(req(S("GET http://h%zz/ HTTP/1.1\r\n\r\n")), 400,
           "bad percent in host");

    /* versions */
    is_int(req(S("GET / HTTP/2.0\r\n\r\n")), 505, "HTTP/2.0 is 505");
    is_int(req(S("GET / HTTP/1.2\r\n\r\n")), PT_OK,
           "HTTP/1.2 is handled as 1.1 (RFC 9110 2.5)");
    is_int(rl.version, 11, "HTTP/1.2 reads as version 11");
    is_int(req(S("GET / HTTP/0.9\r\n\r\n")), 505, "HTTP/0.9 is 505");

    /* capacity */
    is_int(req_cap(S("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), 2),
           431, "more headers than capacity: 431");
    is_int(nh, 2, "431: count is the capacity");
    is_int(req_cap(S("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), 3),
           PT_OK, "headers exactly at capacity");
    is_int(req_cap(S("GET / HTTP/1.1\r\nA: 1\r\n\r\n"), 0), 431,
           "capacity 0");
    is_int(req_cap(S("GET / HTTP/1.1\r\n\r\n"), 0), PT_OK,
           "capacity 0, no headers");
}


static void
test_responses(void)
{
    is_int(resp(S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")), PT_OK,
           "response 200");
    ok(sl.version == 11 && sl.status == 200 && streq(&sl.reason, "OK"),
       "200 OK fields");
    ok(nh == 1 && streq(&hd[0].name, "Content-Length")
       && streq(&hd[0].value, "5"), "response header");

    is_int(resp(S("HTTP/1.0 404 Not Found\r\n\r\n")), PT_OK, "response 404");
    ok(sl.version == 10 && sl.status == 404
       && streq(&sl.reason, "Not Found"), "reason with SP");

    is_int(resp(S("HTTP/1.1 204 \r\n\r\n")), PT_OK, "empty reason");
    ok(sl.status == 204 && sl.reason.len == 0, "empty reason fields");
    is_int(resp(S("HTTP/1.1 204\r\n\r\n")), PT_OK, "no SP, no reason");
    ok(sl.status == 204 && sl.reason.len == 0, "no reason fields");
    is_int(resp(S("HTTP/1.1 999 X\r\n\r\n")), PT_OK, "999");
    is_int(resp(S("HTTP/1.1 200 caf\xc3\xa9\r\n\r\n")), PT_OK,
           "obs-text reason");

    is_int(resp(S("HTTP/1.1 20 OK\r\n\r\n")), PT_ERROR, "two-digit status");
    is_int(resp(S("HTTP/1.1 2000 OK\r\n\r\n")), PT_ERROR, "four-digit status");
    is_int(resp(S("HTTP/1.1 099 X\r\n\r\n")), PT_ERROR, "status below 100");
    is_int(resp(S("HTTP/1.1 2x0 OK\r\n\r\n")), PT_ERROR, "non-digit status");
    is_int(resp(S("HTTP/1.1 200OK\r\n\r\n")), PT_ERROR, "no SP before reason");
    is_int(resp(S("HTTP/1.1  200 OK\r\n\r\n")), PT_ERROR, "two SPs");
    is_int(resp(S("HTTP/1.1 200 O\x01K\r\n\r\n")), PT_ERROR, "CTL in reason");
    is_int(resp(S("HTTP/2.0 200 OK\r\n\r\n")), PT_ERROR, "HTTP/2.0");
    is_int(resp(S("HTTP/1.2 200 OK\r\n\r\n")), PT_OK,
           "HTTP/1.2 response read as 1.1");
    is_int(resp(S("http/1.1 200 OK\r\n\r\n")), PT_ERROR, "lower-case http");
    is_int(resp(S("ICY 200 OK\r\n\r\n")), PT_ERROR, "not HTTP");
    is_int(resp(S("HTTP/1.1 200 OK\n\r\n")), PT_ERROR, "bare LF");
    is_int(resp(S("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n")), PT_ERROR,
           "response obs-fold");
    is_int(resp(S("HTTP/1.1 200 OK\r\nX y: a\r\n\r\n")), PT_ERROR,
           "response bad name");
    is_int(resp(S("HTTP/1.1 200 OK\r\nX : a\r\n\r\n")), PT_ERROR,
           "response SP before colon");
    is_int(resp(S("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n")), PT_ERROR,
           "response bare CR");
    is_int(resp(S("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
                  "E: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\n\r\n")), PT_ERROR,
           "response with too many headers");
}


static void
test_helpers(void)
{
    int                i, want, bad;
    pt_str_t           v;
    static const char  tchars[] = "!#$%&'*+-.^_`|~0123456789"
                                  "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

#define LH(val, tok)                                                       \
    (v.data = (char *) (val), v.len = strlen(val),                         \
     pt_http_list_has(&v, tok, strlen(tok)))

    ok(LH("keep-alive, Upgrade", "upgrade") == 1, "list_has: second, case");
    ok(LH("keep-alive, Upgrade", "KEEP-ALIVE") == 1, "list_has: first");
    ok(LH("keep-alive, Upgrade", "close") == 0, "list_has: absent");
    ok(LH("keep-alive, Upgrade", "keep") == 0, "list_has: prefix is not it");
    ok(LH("keep-alive, upgrade-x", "upgrade") == 0,
       "list_has: longer element is not it");
    ok(LH("  upgrade \t", "Upgrade") == 1, "list_has: OWS around");
    ok(LH(",,close,,", "close") == 1, "list_has: empty elements");
    ok(LH("close,keep-alive", "keep-alive") == 1, "list_has: no spaces");
    ok(LH("", "close") == 0, "list_has: empty value");
    ok(LH("close", "") == 0, "list_has: empty token");

#define CL(val)                                                            \
    (v.data = (char *) (val), v.len = sizeof(val) - 1,                     \
     pt_http_parse_content_length(&v))

    is_int(CL("0"), 0, "content-length 0");
    is_int(CL("5"), 5, "content-length 5");
    is_int(CL("007"), 7, "content-length leading zeros");
    is_int(CL("999999999999999999"), 999999999999999999LL,
           "content-length 18 digits");
    is_int(CL("1000000000000000000"), -1, "content-length 19 digits");
    is_int(CL("99999999999999999999999"), -1, "content-length 23 digits");
    is_int(CL(""), -1, "content-length empty");
    is_int(CL("+5"), -1, "content-length sign");
    is_int(CL("-5"), -1, "content-length negative");
    is_int(CL(" 5"), -1, "content-length leading SP");
    is_int(CL("5 "), -1, "content-length trailing SP");
    is_int(CL("0x5"), -1, "content-length hex");
    is_int(CL("5\0"), -1, "content-length NUL");
    is_int(CL("5, 5"), 5, "content-length identical list");
    is_int(CL("5,5,5"), 5, "content-length identical list, no OWS");
    is_int(CL("5, 6"), -1, "content-length conflicting list");
    is_int(CL("5,"), -1, "content-length trailing comma");
    is_int(CL(",5"), -1, "content-length leading comma");
    is_int(CL("5,,5"), -1, "content-length empty element");

    is_str(pt_http_status_text(404), strlen(pt_http_status_text(404)),
           "Not Found", "status text 404");
    is_str(pt_http_status_text(200), 2, "OK", "status text 200");
    is_str(pt_http_status_text(431), strlen(pt_http_status_text(431)),
           "Request Header Fields Too Large", "status text 431");
    is_str(pt_http_status_text(299), 7, "Unknown", "status text unknown");

    bad = 0;
    for (i = 0; i < 256; i++) {
        want = (i != 0 && memchr(tchars, i, sizeof(tchars) - 1) != NULL);
        if (pt_http_is_tchar((unsigned char) i) != want) {
            bad++;
        }
    }
    is_int(bad, 0, "is_tchar matches RFC 9110 for all 256 bytes");
}


/* The request line alone, checked as soon as its end is seen. */

static int
line_only(const char *s, size_t len)
{
    pt_http_head_scan_t  sc;

    s = copy(s, len);
    if (s == NULL) {
        return -101;
    }

    memset(&sc, 0, sizeof(sc));

    if (pt_http_scan_head(&sc, s, len) != PT_AGAIN) {
        return -100;
    }

    return pt_http_check_request_line(s, &sc);
}


static void
test_line_check(void)
{
    is_int(line_only(S("GET /")), PT_AGAIN, "line check: no line end yet");
    is_int(line_only(S("GET / HTTP/1.1\r\nHost: a\r\n")), PT_OK,
           "line check: a valid line, head not complete");
    is_int(line_only(S("\r\nGET / HTTP/1.0\r\n")), PT_OK,
           "line check: after a leading empty line");
    is_int(line_only(S("GET /\r\n")), 400,
           "line check: HTTP/0.9 (no version) is 400 at once");
    is_int(line_only(S("GET /\n")), 400, "line check: bare LF is 400");
    is_int(line_only(S("GET / HTTP/2.0\r\n")), 505,
           "line check: HTTP/2.0 is 505 at once");
    is_int(line_only(S("GET  / HTTP/1.1\r\n")), 400,
           "line check: two spaces is 400 at once");
}


int
main(void)
{
    tap_plan(212);

    test_scanner();
    test_valid_requests();
    test_bad_requests();
    test_responses();
    test_helpers();
    test_line_check();

    copy(NULL, 0);

    return tap_done();
}
