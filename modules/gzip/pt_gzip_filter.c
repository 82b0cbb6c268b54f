/*
 * pt_gzip_filter.c: the deflate body filter, chunk by chunk.
 *
 * Every call takes its input links whole: deflate copies into its window
 * what it needs, so the producer (the proxy, a cache HIT, a respond
 * action) may refill its buffer as soon as pt_http_output returns PT_OK,
 * and the links go back to the request's free list at once. The output
 * goes into the filter's own 32 KiB blocks. A producer calls again only
 * once the previous output has left (pt_http.h, "Body filters"), so at
 * each call the blocks passed on earlier are free again; that is checked,
 * not trusted: a block still queued in r->out is left alone and another
 * taken, and idle blocks beyond PT_GZIP_SPARE go back to the pool.
 *
 * zlib allocates from the request's pool (its large allocations, which
 * deflateEnd gives back early through pt_pfree), so a client that leaves
 * mid-body leaks nothing: the pool takes it all. Per request: zlib's
 * state, about 262 KiB at windowBits 15 and memLevel 8 (64 KiB each for
 * the window, prev, head and pending buffers, and the 6 KiB state), less
 * for a small known length, plus one block being filled, up to
 * PT_GZIP_SPARE idle ones, and what one call's input compresses into.
 */

#include "pt_gzip.h"


static voidpf
pt_gzip_alloc(voidpf opaque, uInt items, uInt size)
{
    if (size && items > SIZE_MAX / size) {
        return Z_NULL;
    }

    return pt_palloc(opaque, (size_t) items * size);
}


static void
pt_gzip_free(voidpf opaque, voidpf p)
{
    /* Small ones stay until the pool goes. */
    (void) pt_pfree(opaque, p);
}


static int
pt_gzip_init(pt_http_request_t *r, pt_gzip_ctx_t *ctx)
{
    int  rc;

    ctx->zs.zalloc = pt_gzip_alloc;
    ctx->zs.zfree = pt_gzip_free;
    ctx->zs.opaque = r->pool;

    /* windowBits + 16: the gzip wrapper (header and CRC-32 trailer). */
    rc = deflateInit2(&ctx->zs, ctx->level, Z_DEFLATED, ctx->wbits + 16,
                      ctx->memlevel, Z_DEFAULT_STRATEGY);

    if (rc != Z_OK) {
        pt_http_log_request(r, PT_LOG_ERR, "gzip: deflateInit2() failed: %d",
                            rc);
        return PT_ERROR;
    }

    ctx->zinit = 1;

    return PT_OK;
}


void
pt_gzip_end(pt_gzip_ctx_t *ctx)
{
    if (ctx->zinit) {
        (void) deflateEnd(&ctx->zs);
        ctx->zinit = 0;
    }
}


/* 1 while some link waiting in r->out still points into block b. */
static int
pt_gzip_queued(pt_http_request_t *r, pt_gzip_ctx_t *ctx, pt_gzip_block_t *b)
{
    pt_chain_t  *cl;

    for (cl = r->out; cl; cl = cl->next) {
        if (cl->buf->tag == ctx && cl->buf->start == b->data) {
            return 1;
        }
    }

    return 0;
}


/* The blocks passed on by earlier calls that have left are free again. */
static void
pt_gzip_reclaim(pt_http_request_t *r, pt_gzip_ctx_t *ctx)
{
    pt_gzip_block_t  *b, **bp;

    bp = &ctx->sent;

    while ((b = *bp) != NULL) {
        if (pt_gzip_queued(r, ctx, b)) {
            bp = &b->next;
            continue;
        }

        *bp = b->next;

        if (ctx->nfree >= PT_GZIP_SPARE) {
            (void) pt_pfree(r->pool, b);
            continue;
        }

        b->next = ctx->free;
        ctx->free = b;
        ctx->nfree++;
    }
}


/* A block to deflate into: an idle one, else a new one. */
static int
pt_gzip_take_block(pt_http_request_t *r, pt_gzip_ctx_t *ctx)
{
    pt_gzip_block_t  *b;

    b = ctx->free;

    if (b) {
        ctx->free = b->next;
        ctx->nfree--;

    } else {
        b = pt_palloc(r->pool, sizeof(pt_gzip_block_t) + PT_GZIP_BLOCK);
        if (b == NULL) {
            pt_http_log_request(r, PT_LOG_ERR,
                                "gzip: out of memory for an output buffer");
            return PT_ERROR;
        }

        b->data = (char *) (b + 1);
    }

    b->next = NULL;
    ctx->cur = b;
    ctx->zs.next_out = (Bytef *) b->data;
    ctx->zs.avail_out = PT_GZIP_BLOCK;

    return PT_OK;
}


/* Pass on what the current block holds (nothing when it is empty, unless
 * this is the last buffer, which always goes). */
static int
pt_gzip_pass(pt_http_request_t *r, pt_gzip_ctx_t *ctx, pt_chain_t ***ll,
    unsigned flush, unsigned last)
{
    char             *end;
    pt_buf_t         *buf;
    pt_chain_t       *cl;
    pt_gzip_block_t  *b;

    b = ctx->cur;
    end = b ? (char *) ctx->zs.next_out : NULL;

    if ((b == NULL || end == b->data) && !last) {
        return PT_OK;
    }

    cl = pt_http_link_get(r);
    if (cl == NULL) {
        pt_http_log_request(r, PT_LOG_ERR, "gzip: out of memory for a link");
        return PT_ERROR;
    }

    buf = cl->buf;

    if (b && end > b->data) {
        buf->start = b->data;
        buf->pos = b->data;
        buf->last = end;
        buf->end = end;
        buf->tag = ctx;

        b->next = ctx->sent;
        ctx->sent = b;
        ctx->cur = NULL;
    }

    buf->flush = flush;
    buf->last_buf = last;

    **ll = cl;
    *ll = &cl->next;

    return PT_OK;
}


/* Deflate one input buffer whole with `mode` (Z_NO_FLUSH, Z_SYNC_FLUSH
 * or Z_FINISH), appending full blocks, and with a flush or the finish
 * the last one, to *ll. */
static int
pt_gzip_deflate(pt_http_request_t *r, pt_gzip_ctx_t *ctx, pt_buf_t *in,
    int mode, pt_chain_t ***ll)
{
    int      rc, flush;
    char    *p;
    size_t   left, n;

    p = in->pos;
    left = pt_buf_size(in);

    for ( ;; ) {
        if (ctx->zs.avail_in == 0 && left) {
            n = pt_min(left, (size_t) UINT_MAX);
            ctx->zs.next_in = (Bytef *) p;
            ctx->zs.avail_in = (uInt) n;
            p += n;
            left -= n;
        }

        if (ctx->cur == NULL && pt_gzip_take_block(r, ctx) != PT_OK) {
            return PT_ERROR;
        }

        flush = left ? Z_NO_FLUSH : mode;
        rc = deflate(&ctx->zs, flush);

        /* Z_BUF_ERROR is no progress possible, not a failure. */
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            pt_http_log_request(r, PT_LOG_ERR, "gzip: deflate() failed: %d %s",
                                rc, ctx->zs.msg ? ctx->zs.msg : "");
            return PT_ERROR;
        }

        if (ctx->zs.avail_out == 0) {
            if (pt_gzip_pass(r, ctx, ll, 0, 0) != PT_OK) {
                return PT_ERROR;
            }
            continue;
        }

        if (ctx->zs.avail_in || left) {
            continue;
        }

        /* All input is in, and deflate had room to spare: a sync flush
         * has written everything; a finish may need another round. */
        if (flush == Z_NO_FLUSH) {
            break;
        }

        if (flush == Z_SYNC_FLUSH) {
            if (pt_gzip_pass(r, ctx, ll, 1, 0) != PT_OK) {
                return PT_ERROR;
            }
            break;
        }

        if (rc != Z_STREAM_END) {
            /* Room to spare and no end: zlib broke its word, and calling
             * again would spin. */
            pt_http_log_request(r, PT_LOG_ERR,
                                "gzip: deflate() did not finish: %d", rc);
            return PT_ERROR;
        }

        if (pt_gzip_pass(r, ctx, ll, 0, 1) != PT_OK) {
            return PT_ERROR;
        }

        break;
    }

    in->pos = in->last;
    ctx->zs.next_in = NULL;

    return PT_OK;
}


int
pt_gzip_body_filter(pt_http_request_t *r, pt_chain_t **chain)
{
    int              mode;
    pt_buf_t        *b;
    pt_chain_t      *cl, *next, **ll;
    pt_gzip_ctx_t   *ctx;

    ctx = pt_http_get_module_ctx(r, pt_gzip_module);

    if (ctx == NULL || !ctx->active || *chain == NULL) {
        return PT_OK;
    }

    cl = *chain;
    *chain = NULL;
    ll = chain;

    if (!ctx->done && !ctx->zinit && pt_gzip_init(r, ctx) != PT_OK) {
        return PT_ERROR;
    }

    pt_gzip_reclaim(r, ctx);

    for ( /* void */ ; cl; cl = next) {
        next = cl->next;
        b = cl->buf;

        if (!ctx->done) {
            mode = b->last_buf ? Z_FINISH
                               : (b->flush ? Z_SYNC_FLUSH : Z_NO_FLUSH);

            if ((pt_buf_size(b) || mode != Z_NO_FLUSH)
                && pt_gzip_deflate(r, ctx, b, mode, &ll) != PT_OK)
            {
                return PT_ERROR;
            }

            if (mode == Z_FINISH) {
                ctx->done = 1;
                pt_gzip_end(ctx);
            }
        }

        /* Taken whole (or after the end, dropped): the link is free. */
        pt_http_link_free(r, cl);
    }

    return PT_OK;
}
