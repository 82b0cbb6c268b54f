/*
 * pt_cache_serve.c: a response sent from a stored entry.
 *
 * The fields and the body are sent from the zone itself, without a copy:
 * the request holds a reference to the entry until its pool goes, so the
 * bytes stay while the client reads them. The body goes out in pieces of
 * at most PT_CACHE_PIECE bytes, each once the one before has left, as the
 * proxy streams: the body filters after us (gzip) then hold a bounded
 * amount whatever the object's size.
 */

#include "pt_cache.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_CACHE_PIECE   (64 * 1024)


static void pt_cache_send_body(pt_http_request_t *r);


static void
pt_cache_write_handler(pt_http_request_t *r)
{
    int  rc;

    if (r->connection->write->timedout) {
        r->connection->write->timedout = 0;
        pt_http_log_request(r, PT_LOG_INFO,
                            "client timed out receiving the response");
        r->error = 1;
        pt_http_finalize(r, PT_ERROR);
        return;
    }

    rc = pt_http_flush(r);

    if (rc == PT_AGAIN) {
        return;
    }

    if (rc == PT_ERROR) {
        pt_http_finalize(r, PT_ERROR);
        return;
    }

    pt_cache_send_body(r);
}


/* The next piece of the body as links into the zone; the last one marked
 * last_buf. */
static pt_chain_t *
pt_cache_piece(pt_http_request_t *r, pt_cache_ctx_t *ctx, int *last)
{
    size_t             n, total;
    pt_chain_t        *out, *cl, **ll;
    pt_cache_chunk_t  *ch;

    out = NULL;
    ll = &out;
    total = 0;

    for (ch = ctx->chunk; ch && total < PT_CACHE_PIECE; ch = ch->next) {
        n = pt_min((size_t) ch->len - ctx->chunk_off, PT_CACHE_PIECE - total);

        if (n) {
            cl = pt_http_link_bytes(r, ch->data + ctx->chunk_off, n);
            if (cl == NULL) {
                return NULL;
            }

            *ll = cl;
            ll = &cl->next;
            total += n;
        }

        ctx->chunk_off += n;

        if (ctx->chunk_off < ch->len) {
            break;
        }

        ctx->chunk = ch->next;
        ctx->chunk_off = 0;
    }

    *last = (ctx->chunk == NULL);

    if (*last) {
        cl = pt_http_link_get(r);
        if (cl == NULL) {
            return NULL;
        }

        cl->buf->last_buf = 1;
        *ll = cl;
    }

    return out;
}


static void
pt_cache_send_body(pt_http_request_t *r)
{
    int              rc, last;
    pt_chain_t      *out;
    pt_cache_ctx_t  *ctx;

    ctx = pt_http_get_module_ctx(r, pt_cache_module);

    for ( ;; ) {
        out = pt_cache_piece(r, ctx, &last);
        if (out == NULL) {
            pt_http_finalize(r, PT_ERROR);
            return;
        }

        if (last) {
            r->response_done = 1;
        }

        rc = pt_http_output(r, out);

        if (rc == PT_ERROR) {
            pt_http_finalize(r, PT_ERROR);
            return;
        }

        if (last) {
            pt_http_finalize(r, PT_OK);     /* it flushes what is left */
            return;
        }

        if (rc == PT_AGAIN) {
            r->write_event_handler = pt_cache_write_handler;
            return;
        }
    }
}


/* A 304 carries the fields a 200 would that describe caching and the
 * validators (RFC 9110 15.4.5), no representation metadata. */
static int
pt_cache_not_modified_field(const pt_str_t *name)
{
    return pt_str_caseeq(name, "cache-control")
           || pt_str_caseeq(name, "content-location")
           || pt_str_caseeq(name, "etag")
           || pt_str_caseeq(name, "expires")
           || pt_str_caseeq(name, "vary")
           || pt_str_caseeq(name, "last-modified");
}


int
pt_cache_serve(pt_http_request_t *r)
{
    int                rc;
    char              *p;
    size_t             i, n;
    int64_t            age;
    pt_cache_ctx_t    *ctx;
    pt_cache_node_t   *node;
    pt_http_header_t  *h;

    ctx = pt_http_get_module_ctx(r, pt_cache_module);
    node = ctx->node;

    if (pt_cache_head_read(r->pool, node->head, node->head_len,
                           &r->headers_out.headers) != PT_OK)
    {
        return PT_ERROR;
    }

    r->headers_out.status = node->meta.status;
    r->headers_out.content_length_n = r->method == PT_HTTP_HEAD
                                      ? node->meta.content_length
                                      : (int64_t) node->body_len;

    age = ((int64_t) pt_current_epoch_msec - node->meta.stored) / 1000
          + node->meta.age;

    p = pt_pnalloc(r->pool, 24);
    if (p == NULL) {
        return PT_ERROR;
    }

    n = (size_t) (pt_sprint_uint(p, (uint64_t) pt_max(age, 0)) - p);

    if (pt_http_header_out_add(r, "Age", 3, p, n) != PT_OK) {
        return PT_ERROR;
    }

    if (node->meta.status == 200 && pt_cache_not_modified(r,
                                                &r->headers_out.headers))
    {
        h = r->headers_out.headers.elts;

        for (i = 0, n = 0; i < r->headers_out.headers.nelts; i++) {
            if (pt_cache_not_modified_field(&h[i].name)
                || pt_str_caseeq(&h[i].name, "age"))
            {
                h[n++] = h[i];
            }
        }

        r->headers_out.headers.nelts = n;
        r->headers_out.status = 304;
        r->headers_out.content_length_n = -1;
    }

    rc = pt_http_send_header(r);
    if (rc != PT_OK) {
        return rc;
    }

    ctx->chunk = node->body;
    ctx->chunk_off = 0;

    pt_cache_send_body(r);

    return PT_DONE;
}
