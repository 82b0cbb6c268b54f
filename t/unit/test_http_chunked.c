/*
 * test_http_chunked.c: the chunked transfer-coding decoder, fed whole, at
 * every split position and one byte at a time.
 */

#include "pt_core.h"
#include "pt_http_chunked.h"
#include "tap.h"


#define S(lit)  lit, sizeof(lit) - 1

#define OUT_MAX  65536

#define BAD_FEED  99


typedef struct {
    int       rc;        /* PT_DONE, PT_ERROR, PT_AGAIN or BAD_FEED */
    size_t    at;        /* input offset where DONE or ERROR left *pos */
    size_t    out_len;
    uint64_t  total;
    char      out[OUT_MAX];
} result_t;


static result_t  r1, r2;


/*
 * Feed in[0..len) as a first piece in[0..cut) and then pieces of `step`
 * bytes, collecting payload. It also checks the contract of every return:
 * data inside the piece and non-empty, PT_AGAIN only with *pos == end.
 */

static void
feed(const char *in, size_t len, size_t cut, size_t step, result_t *r)
{
    int                rc;
    size_t             from, to;
    const char        *p, *e;
    pt_str_t           d;
    pt_http_chunked_t  ch;

    memset(&ch, 0, sizeof(ch));
    r->out_len = 0;
    r->at = 0;

    from = 0;
    to = pt_min(cut, len);

    for ( ;; ) {
        p = in + from;
        e = in + to;

        for ( ;; ) {
            rc = pt_http_chunked_parse(&ch, &p, e, &d);
            if (rc != PT_OK) {
                break;
            }

            if (d.len == 0 || d.data < in + from || d.data + d.len > e
                || p != d.data + d.len || r->out_len + d.len > OUT_MAX)
            {
                r->rc = BAD_FEED;
                return;
            }

            memcpy(r->out + r->out_len, d.data, d.len);
            r->out_len += d.len;
        }

        r->total = ch.total;

        if (rc == PT_DONE || rc == PT_ERROR) {
            r->rc = rc;
            r->at = (size_t) (p - in);
            return;
        }

        if (rc != PT_AGAIN || p != e) {
            r->rc = BAD_FEED;
            return;
        }

        if (to == len) {
            r->rc = PT_AGAIN;
            return;
        }

        from = to;
        to = pt_min(to + step, len);
    }
}


static int
same(const result_t *a, const result_t *b)
{
    return a->rc == b->rc && a->at == b->at && a->out_len == b->out_len
           && memcmp(a->out, b->out, a->out_len) == 0;
}


/* Whole, every two-piece split, and bytewise must all agree. */

static int
split_invariant(const char *in, size_t len)
{
    size_t  k;

    feed(in, len, len, len, &r1);

    for (k = 0; k <= len; k++) {
        feed(in, len, k, len, &r2);
        if (!same(&r1, &r2)) {
            return 0;
        }
    }

    feed(in, len, 0, 1, &r2);

    return same(&r1, &r2);
}


static int
decodes_to(const char *in, size_t len, const char *want)
{
    feed(in, len, len, len, &r1);

    return r1.rc == PT_DONE && r1.at == len && r1.out_len == strlen(want)
           && memcmp(r1.out, want, r1.out_len) == 0
           && r1.total == strlen(want);
}


static int
rc_of(const char *in, size_t len)
{
    feed(in, len, len, len, &r1);
    return r1.rc;
}


/* A message with a big chunk extension or trailer, built at run time. */

static size_t
build_big(char *buf, size_t cap, const char *head, size_t fill,
    const char *tail)
{
    size_t  n, h, t;

    h = strlen(head);
    t = strlen(tail);
    n = h + fill + t;

    if (n > cap) {
        return 0;
    }

    memcpy(buf, head, h);
    memset(buf + h, 'a', fill);
    memcpy(buf + h + fill, tail, t);

    return n;
}


int
main(void)
{
    int                i;
    size_t             n;
    const char        *p;
    pt_str_t           d;
    pt_http_chunked_t  ch;
    static char        big[20000];
    static const char  msg[] = "5;a=b\r\nhello\r\n1\r\n \r\n"
                               "6 ; q=\"x y\\\"z\";n\r\nworld!\r\n"
                               "0\r\nX-Sum: abc\r\nEmpty:\r\n\r\n";
    static const char  pipe[] = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";

    tap_plan(58);

    ok(decodes_to(S("5\r\nhello\r\n0\r\n\r\n"), "hello"), "simple");
    ok(decodes_to(S("5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"),
                  "hello world!"), "multiple chunks");
    ok(decodes_to(S("0\r\n\r\n"), ""), "empty body");
    ok(decodes_to(S("5;a=b;c\r\nhello\r\n3 ; q=\"x y\\\"z\"\r\nabc\r\n"
                    "0;last\r\n\r\n"), "helloabc"), "extensions");
    ok(decodes_to(S("5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\n"
                    "Z: caf\xc3\xa9\t!\r\n\r\n"), "hello"), "trailers");
    ok(decodes_to(S("A\r\n0123456789\r\n0\r\n\r\n"), "0123456789"),
       "uppercase hex");
    ok(decodes_to(S("a\r\n0123456789\r\n0\r\n\r\n"), "0123456789"),
       "lowercase hex");
    ok(decodes_to(S("1F\r\n0123456789012345678901234567890\r\n0\r\n\r\n"),
                  "0123456789012345678901234567890"), "two hex digits");
    ok(decodes_to(S("0005\r\nhello\r\n000\r\n\r\n"), "hello"),
       "leading zeros");
    ok(decodes_to(msg, sizeof(msg) - 1, "hello world!"), "composite message");

    ok(split_invariant(msg, sizeof(msg) - 1),
       "composite: every split position and bytewise agree");
    ok(split_invariant(S("5\r\nhello\r\n0\r\n\r\n")),
       "simple: every split and bytewise agree");
    ok(split_invariant(S("5\r\nhelloX\r\n0\r\n\r\n")),
       "error case: every split and bytewise agree");
    ok(split_invariant(pipe, sizeof(pipe) - 1),
       "pipelined: every split and bytewise agree");
    feed(msg, sizeof(msg) - 1, 0, 1, &r2);
    ok(r2.rc == PT_DONE && r2.out_len == 12 && r2.at == sizeof(msg) - 1,
       "1-byte feed completes with all payload");

    feed(S("5\r\nhel"), 6, 6, &r1);
    ok(r1.rc == PT_AGAIN && r1.out_len == 3, "partial input: AGAIN");

    /* overflow */
    is_int(rc_of(S("4000000000000000\r\n")), PT_AGAIN,
           "size 2^62 accepted");
    is_int(rc_of(S("4000000000000001\r\n")), PT_ERROR, "size 2^62+1");
    is_int(rc_of(S("FFFFFFFFFFFFFFFFFFFF\r\n")), PT_ERROR, "size 2^80");
    is_int(rc_of(S("10000000000000000\r\n")), PT_ERROR, "size 2^64");

    /* bad sizes */
    is_int(rc_of(S("g\r\nx\r\n0\r\n\r\n")), PT_ERROR, "non-hex size");
    is_int(rc_of(S("\r\nx\r\n0\r\n\r\n")), PT_ERROR, "empty size");
    is_int(rc_of(S("-5\r\nhello\r\n0\r\n\r\n")), PT_ERROR, "negative size");
    is_int(rc_of(S("0x5\r\nhello\r\n0\r\n\r\n")), PT_ERROR, "0x prefix");
    is_int(rc_of(S(" 5\r\nhello\r\n0\r\n\r\n")), PT_ERROR, "SP before size");
    is_int(rc_of(S("5 \r\nhello\r\n0\r\n\r\n")), PT_ERROR,
           "SP after size without extension");
    is_int(rc_of(S("5 x\r\nhello\r\n0\r\n\r\n")), PT_ERROR,
           "junk after size");
    is_int(rc_of(S("5;a\x01\r\nhello\r\n0\r\n\r\n")), PT_ERROR,
           "CTL in extension");
    is_int(rc_of(S("5;a=\"b\r\nhello\r\n0\r\n\r\n")), PT_ERROR,
           "unterminated quoted extension");
    is_int(rc_of(S("5;a,b\r\nhello\r\n0\r\n\r\n")), PT_ERROR,
           "comma in extension");

    /* line ends */
    is_int(rc_of(S("5\nhello\r\n0\r\n\r\n")), PT_ERROR, "bare LF after size");
    is_int(rc_of(S("5\rhello\r\n0\r\n\r\n")), PT_ERROR, "bare CR after size");
    is_int(rc_of(S("5;x\nhello\r\n0\r\n\r\n")), PT_ERROR,
           "bare LF after extension");
    is_int(rc_of(S("5\r\nhelloX\r\n0\r\n\r\n")), PT_ERROR,
           "missing CRLF after data");
    is_int(r1.at, 8, "error reported at the offending byte");
    is_int(rc_of(S("5\r\nhello\n0\r\n\r\n")), PT_ERROR,
           "bare LF after data");
    is_int(rc_of(S("5\r\nhello\r0\r\n\r\n")), PT_ERROR,
           "bare CR after data");
    is_int(rc_of(S("0\r\n\n")), PT_ERROR, "bare LF ending the body");
    is_int(rc_of(S("0\r\nX: a\n\r\n")), PT_ERROR, "bare LF after trailer");

    /* trailers */
    is_int(rc_of(S("0\r\nX : a\r\n\r\n")), PT_ERROR,
           "trailer SP before colon");
    is_int(rc_of(S("0\r\nX: a\r\n b\r\n\r\n")), PT_ERROR, "trailer obs-fold");
    is_int(rc_of(S("0\r\n: a\r\n\r\n")), PT_ERROR, "trailer empty name");
    is_int(rc_of(S("0\r\nX\r\n\r\n")), PT_ERROR, "trailer without colon");
    is_int(rc_of(S("0\r\nX: a\x01\r\n\r\n")), PT_ERROR, "trailer CTL");
    is_int(rc_of(S("0\r\nX: a\0\r\n\r\n")), PT_ERROR, "trailer NUL");

    /* the extension and trailer budget */
    n = build_big(big, sizeof(big), "1;", 8100, "\r\nx\r\n0\r\n\r\n");
    ok(n > 0 && decodes_to(big, n, "x"), "8 KiB less a bit of extension ok");
    n = build_big(big, sizeof(big), "1;", 8200, "\r\nx\r\n0\r\n\r\n");
    is_int(rc_of(big, n), PT_ERROR, "oversized extension");
    n = build_big(big, sizeof(big), "0\r\nX: ", 9000, "\r\n\r\n");
    is_int(rc_of(big, n), PT_ERROR, "oversized trailer");
    n = build_big(big, sizeof(big), "1;", 5000, "\r\nx\r\n1;");
    memset(big + n, 'b', 5000);
    memcpy(big + n + 5000, "\r\ny\r\n0\r\n\r\n", 10);
    n += 5010;
    is_int(rc_of(big, n), PT_ERROR, "extensions over 8 KiB in total");
    is_int(r1.out_len, 1, "first chunk was delivered before the error");
    n = build_big(big, sizeof(big), "", 9000, "");
    memset(big, '0', n);
    memcpy(big + n, "5\r\nhello\r\n0\r\n\r\n", 16);
    is_int(rc_of(big, n + 16), PT_ERROR, "endless leading zeros");

    /* pipelining and sticky states */
    feed(pipe, sizeof(pipe) - 1, sizeof(pipe) - 1, 1, &r1);
    ok(r1.rc == PT_DONE && r1.at == 13 && r1.out_len == 3,
       "DONE leaves *pos at the pipelined bytes");

    memset(&ch, 0, sizeof(ch));
    p = pipe;
    for (i = 0; i < 4; i++) {
        if (pt_http_chunked_parse(&ch, &p, pipe + sizeof(pipe) - 1, &d)
            != PT_OK)
        {
            break;
        }
    }
    is_int(i, 1, "one data run, then not PT_OK");
    p = pipe + 13;
    is_int(pt_http_chunked_parse(&ch, &p, pipe + sizeof(pipe) - 1, &d),
           PT_DONE, "DONE again after DONE");
    ok(p == pipe + 13, "DONE again consumes nothing");
    is_int(ch.total, 3, "total counts payload");

    memset(&ch, 0, sizeof(ch));
    p = "x\r\n";
    is_int(pt_http_chunked_parse(&ch, &p, p + 3, &d), PT_ERROR,
           "error");
    p = "0\r\n\r\n";
    is_int(pt_http_chunked_parse(&ch, &p, p + 5, &d), PT_ERROR,
           "error is sticky");

    return tap_done();
}
