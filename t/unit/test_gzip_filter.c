/*
 * test_gzip_filter.c: the gzip body filter without a socket. A request
 * with only a pool and the filter's context is fed buffers as a producer
 * would feed pt_http_output(); what comes out is "sent" by inflating it
 * and freeing its links, as the core's writers do. Checks: a flush makes
 * everything so far decodable, the last buffer ends the gzip stream, the
 * input links go back at once, the output blocks are reused when the
 * previous output has left, and a block still queued in r->out is never
 * written over when a producer calls too early.
 */

#include "pt_core.h"
#include "pt_gzip.h"
#include "tap.h"


#define BIG  (10 * 1024 * 1024)


static pt_pool_t  *pool;

/* What went in, and what inflating the output gave back. */
static char       *want, *got;
static size_t      want_len, got_len;
static z_stream    inf;
static int         inf_end;


static pt_http_request_t *
request(void)
{
    pt_gzip_ctx_t      *ctx;
    pt_http_request_t  *r;

    r = pt_pcalloc(pool, sizeof(pt_http_request_t));
    ctx = pt_pcalloc(pool, sizeof(pt_gzip_ctx_t));
    if (r == NULL || ctx == NULL) {
        return NULL;
    }

    r->pool = pool;
    r->ctx = pt_pcalloc(pool, 256 * sizeof(void *));
    if (r->ctx == NULL) {
        return NULL;
    }

    /* As the header filter leaves it for a body of unknown length. */
    ctx->active = 1;
    ctx->level = 5;
    ctx->wbits = MAX_WBITS;
    ctx->memlevel = 8;
    pt_http_set_module_ctx(r, ctx, pt_gzip_module);

    want_len = 0;
    got_len = 0;
    inf_end = 0;
    (void) inflateEnd(&inf);
    memset(&inf, 0, sizeof(inf));

    return inflateInit2(&inf, MAX_WBITS + 16) == Z_OK ? r : NULL;
}


/* One buffer through the filter; *out gets what it passed on. */
static int
feed(pt_http_request_t *r, const char *data, size_t len, unsigned flush,
    unsigned last, pt_chain_t **out, pt_chain_t **link)
{
    pt_chain_t  *cl;

    cl = pt_http_link_get(r);
    if (cl == NULL) {
        return PT_ERROR;
    }

    cl->buf->start = (char *) data;
    cl->buf->pos = (char *) data;
    cl->buf->last = (char *) data + len;
    cl->buf->end = cl->buf->last;
    cl->buf->flush = flush;
    cl->buf->last_buf = last;

    memcpy(want + want_len, data, len);
    want_len += len;

    if (link) {
        *link = cl;
    }

    *out = cl;

    return pt_gzip_body_filter(r, out);
}


/* "Send" a chain: inflate its bytes and give its links back. Returns
 * the flags of the last link. */
static unsigned
send_chain(pt_http_request_t *r, pt_chain_t *cl, unsigned *nlinks)
{
    int          rc;
    unsigned     flags;
    pt_chain_t  *next;

    flags = 0;

    for ( /* void */ ; cl; cl = next) {
        next = cl->next;
        inf.next_in = (Bytef *) cl->buf->pos;
        inf.avail_in = (uInt) pt_buf_size(cl->buf);

        while (inf.avail_in && !inf_end) {
            inf.next_out = (Bytef *) got + got_len;
            inf.avail_out = (uInt) (BIG + 65536 - got_len);
            rc = inflate(&inf, Z_SYNC_FLUSH);
            got_len = (size_t) ((char *) inf.next_out - got);

            if (rc == Z_STREAM_END) {
                inf_end = 1;
            } else if (rc != Z_OK) {
                return 0x100;
            }
        }

        flags = (cl->buf->flush ? 1 : 0) | (cl->buf->last_buf ? 2 : 0);

        if (nlinks) {
            (*nlinks)++;
        }

        pt_http_link_free(r, cl);
    }

    return flags;
}


/* Bytes no compressor can shrink, the same on every run. */
static void
noise(char *p, size_t len, uint64_t *state)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (char) (*state >> 56);
    }
}


static void
test_flush_and_end(void)
{
    int                 rc, i;
    char                text[1000];
    unsigned            flags, n;
    pt_chain_t         *out, *in;
    pt_http_request_t  *r;

    r = request();
    ok(r != NULL, "a request");
    if (r == NULL) {
        return;
    }

    for (i = 0; i < (int) sizeof(text); i++) {
        text[i] = "All work and no play makes Jack a dull boy. "[i % 44];
    }

    rc = PT_OK;
    n = 0;

    for (i = 0; i < 100 && rc == PT_OK; i++) {
        rc = feed(r, text, sizeof(text), 0, 0, &out, &in);

        if (i == 99) {
            ok(r->free_links == in,
               "the input link went back to the list at once");
        }

        (void) send_chain(r, out, &n);
    }

    is_int(rc, PT_OK, "100 KiB of text taken");

    rc = feed(r, "tail\n", 5, 1, 0, &out, NULL);
    ok(rc == PT_OK && out != NULL, "a flush passes output on");
    flags = send_chain(r, out, NULL);
    is_int(flags, 1, "its last link asks for a flush");
    ok(got_len == want_len && memcmp(got, want, want_len) == 0,
       "after the flush everything so far decodes (%zu of %zu)", got_len,
       want_len);
    ok(!inf_end, "and the stream goes on");

    rc = feed(r, "", 0, 0, 0, &out, NULL);
    ok(rc == PT_OK && out == NULL, "an empty buffer passes nothing on");

    rc = feed(r, "the end\n", 8, 0, 1, &out, NULL);
    flags = send_chain(r, out, NULL);
    ok(rc == PT_OK && (flags & 2), "the last buffer passes a last_buf on");
    ok(inf_end && got_len == want_len && memcmp(got, want, want_len) == 0,
       "the gzip stream ends with all of the input");

    rc = feed(r, "late", 4, 0, 0, &out, NULL);
    ok(rc == PT_OK && out == NULL, "after the end, input is dropped");
}


static void
test_reuse(void)
{
    int                 rc;
    char               *in, *seen[64];
    size_t              off, i, nseen;
    uint64_t            state;
    unsigned            flags;
    pt_chain_t         *out, *cl;
    pt_http_request_t  *r;

    r = request();
    in = malloc(65536);
    if (r == NULL || in == NULL) {
        ok(0, "a request");
        free(in);
        return;
    }

    state = 1;
    nseen = 0;
    rc = PT_OK;
    flags = 0;

    /* 10 MiB that stays 10 MiB: 320 blocks of output, sent after each
     * call as the proxy waits for them to leave. */
    for (off = 0; off < BIG && rc == PT_OK; off += 65536) {
        noise(in, 65536, &state);
        rc = feed(r, in, 65536, 0, off + 65536 == BIG, &out, NULL);

        for (cl = out; cl; cl = cl->next) {
            for (i = 0; i < nseen && seen[i] != cl->buf->start; i++) {
                /* void */
            }
            if (i == nseen && cl->buf->start && nseen < 64) {
                seen[nseen++] = cl->buf->start;
            }
        }

        flags = send_chain(r, out, NULL);
    }

    free(in);

    is_int(rc, PT_OK, "10 MiB of noise taken");
    ok(flags & 2, "and ended");
    ok(inf_end && got_len == BIG && memcmp(got, want, BIG) == 0,
       "it decodes to the input");
    ok(nseen <= 1 + PT_GZIP_SPARE + 1,
       "the output used %zu distinct blocks", nseen);
}


static void
test_early_call(void)
{
    int                 rc, clash;
    char               *in;
    uint64_t            state;
    unsigned            flags;
    pt_chain_t         *first, *second, *a, *b;
    pt_http_request_t  *r;

    r = request();
    in = malloc(4 * 65536);
    if (r == NULL || in == NULL) {
        ok(0, "a request");
        free(in);
        return;
    }

    state = 7;
    noise(in, 4 * 65536, &state);

    /* The first output stays queued in r->out while the producer calls
     * again: the filter must take other blocks. */
    rc = feed(r, in, 65536, 0, 0, &first, NULL);
    r->out = first;
    rc |= feed(r, in + 65536, 65536, 0, 0, &second, NULL);

    clash = 0;
    for (a = first; a; a = a->next) {
        for (b = second; b; b = b->next) {
            if (a->buf->start && a->buf->start == b->buf->start) {
                clash = 1;
            }
        }
    }

    ok(rc == PT_OK && first != NULL && second != NULL,
       "two calls, each with output");
    ok(!clash, "no block still queued in r->out is filled again");

    r->out = NULL;
    (void) send_chain(r, first, NULL);
    (void) send_chain(r, second, NULL);

    rc = feed(r, in + 2 * 65536, 2 * 65536, 0, 1, &first, NULL);
    flags = send_chain(r, first, NULL);
    ok(rc == PT_OK && (flags & 2) && inf_end && got_len == want_len
       && memcmp(got, want, want_len) == 0, "and the stream is whole");

    free(in);
}


int
main(void)
{
    tap_plan(18);

    pool = pt_pool_create(4096);
    want = malloc(BIG + 65536);
    got = malloc(BIG + 65536);

    if (pool == NULL || want == NULL || got == NULL) {
        printf("Bail out! out of memory\n");
        return 1;
    }

    test_flush_and_end();
    test_reuse();
    test_early_call();

    (void) inflateEnd(&inf);
    free(want);
    free(got);
    pt_pool_destroy(pool);

    return tap_done();
}
