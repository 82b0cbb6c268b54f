/*
 * pt_cache_store_filter.c: storing responses, and X-Cache.
 *
 * The header filter (priority 750: after the router's response_headers at
 * 800, before the rate-limit fields at 700 and gzip at 300, so an entry
 * holds the route's edits but neither a client's quota nor its encoding)
 * decides whether the response the claim holder got may be stored, and
 * starts the entry; the body filter copies the body into it as it passes,
 * untouched, and publishes the entry at the end. A body that outgrows
 * max_object, or the zone, stops being stored and goes on to the client.
 *
 * A response with Vary is stored as a variant under a hash of the fields
 * it names, and a vary record under the key lists those names, so that a
 * lookup finds the variant that matches the request.
 */

#include "pt_cache.h"
#include "pt_string.h"
#include "pt_time.h"


static const char  *pt_cache_results[] = {
    "", "HIT", "MISS", "EXPIRED", "STALE", "REVALIDATED", "BYPASS"
};


/* The field names of the response's Vary, lower-case, in order. */
static int
pt_cache_vary_names(pt_pool_t *pool, pt_array_t *headers, pt_array_t *names)
{
    size_t             i;
    char              *p, *end, *s;
    pt_str_t          *name;
    pt_http_header_t  *h;

    h = headers->elts;

    for (i = 0; i < headers->nelts; i++) {
        if (!pt_str_caseeq(&h[i].name, "vary")) {
            continue;
        }

        p = h[i].value.data;
        end = p + h[i].value.len;

        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            s = p;
            while (p < end && pt_http_is_tchar((unsigned char) *p)) {
                p++;
            }

            if (p > s) {
                name = pt_array_push(names);
                if (name == NULL
                    || pt_str_dup(pool, name, s, (size_t) (p - s)) == NULL)
                {
                    return PT_ERROR;
                }
                pt_strlow(name->data, name->data, name->len);
            }

            while (p < end && *p != ',') {
                p++;
            }
        }
    }

    return PT_OK;
}


/* Decide and start an entry for a response: PT_OK with w begun and
 * names holding the response's Vary names (its variant hash in hash), or
 * PT_DECLINED. Without a request (a background refresh) the entry goes
 * under hash as given. */
static int
pt_cache_store_begin(pt_cache_t *cache, pt_cache_conf_t *conf,
    pt_http_request_t *r, pt_pool_t *pool, const uint8_t *primary,
    uint8_t *hash, const pt_str_t *key, unsigned status,
    pt_array_t *headers, int64_t length, pt_cache_writer_t *w,
    pt_array_t *names)
{
    char             *head, *p;
    size_t            len;
    pt_cache_meta_t   meta;

    if (!pt_cache_freshness(r, conf, status, headers,
                            (int64_t) pt_current_epoch_msec, &meta))
    {
        return PT_DECLINED;
    }

    if (length > (int64_t) conf->max_object) {
        return PT_DECLINED;
    }

    meta.content_length = length;

    if (r) {
        if (pt_cache_vary_names(pool, headers, names) != PT_OK) {
            return PT_DECLINED;
        }

        if (names->nelts) {
            pt_cache_hash(primary, r, NULL, NULL, names->elts, names->nelts,
                          hash);
        } else {
            memcpy(hash, primary, PT_CACHE_HASH_LEN);
        }
    }

    len = pt_cache_head_size(headers);

    head = pt_pnalloc(pool, len + 1);
    if (head == NULL) {
        return PT_DECLINED;
    }

    p = pt_cache_head_write(headers, head);

    if (pt_cache_write_begin(cache, w, hash, &conf->route, key, &meta, head,
                             (size_t) (p - head), length,
                             (uint64_t) conf->max_object)
        != PT_OK)
    {
        return PT_DECLINED;
    }

    return PT_OK;
}


/* Publish w; then the vary record when the response varied. The claim
 * is spent: unlinked with the node the entry replaced, or given up. */
static int
pt_cache_store_end(pt_cache_ctx_t *ctx, pt_pool_t *pool,
    pt_cache_writer_t *w, pt_array_t *names)
{
    int                 rc;
    char               *head, *p;
    size_t              i, len;
    pt_str_t           *name;
    pt_cache_meta_t     meta;
    pt_cache_writer_t   vw;

    rc = pt_cache_write_end(w);

    pt_cache_drop_claim(ctx);

    if (rc != PT_OK || names == NULL || names->nelts == 0) {
        return rc;
    }

    name = names->elts;
    for (i = 0, len = 0; i < names->nelts; i++) {
        len += name[i].len + 1;
    }

    head = pt_pnalloc(pool, len);
    if (head == NULL) {
        return PT_OK;
    }

    for (i = 0, p = head; i < names->nelts; i++) {
        p = pt_cpymem(p, name[i].data, name[i].len);
        *p++ = '\0';
    }

    memset(&meta, 0, sizeof(meta));
    meta.flags = PT_CACHE_F_VARY;
    meta.stored = (int64_t) pt_current_epoch_msec;
    meta.content_length = -1;

    /* Published after the variant, so a request that waited on the key
     * finds the variant the moment it sees the record. */
    if (pt_cache_write_begin(ctx->cache, &vw, ctx->primary,
                             &ctx->conf->route, &ctx->key, &meta, head, len,
                             0, 0) == PT_OK)
    {
        (void) pt_cache_write_end(&vw);
    }

    return PT_OK;
}


static void
pt_cache_stop_storing(pt_cache_ctx_t *ctx, const char *why)
{
    if (why) {
        pt_http_log_request(ctx->r, PT_LOG_INFO, "cache: not stored: %s",
                            why);
    }

    pt_cache_write_abort(&ctx->writer);
    ctx->writing = 0;
    pt_cache_drop_claim(ctx);
}


static pt_array_t *
pt_cache_ctx_names(pt_cache_ctx_t *ctx)
{
    pt_array_t  *names;

    names = pt_palloc(ctx->r->pool, sizeof(pt_array_t));
    if (names == NULL
        || pt_array_init(names, ctx->r->pool, 2, sizeof(pt_str_t)) != PT_OK)
    {
        return NULL;
    }

    return names;
}


static int
pt_cache_header_filter(pt_http_request_t *r)
{
    int                 has_body;
    const char         *v;
    pt_array_t         *names;
    pt_cache_ctx_t     *ctx;

    ctx = pt_http_get_module_ctx(r, pt_cache_module);
    if (ctx == NULL) {
        return PT_OK;
    }

    if (ctx->result != PT_CACHE_NOT) {
        v = pt_cache_results[ctx->result];
        r->cache_status.data = (char *) v;
        r->cache_status.len = strlen(v);

        if (pt_http_header_out_set(r, "X-Cache", 7, v, r->cache_status.len)
            != PT_OK)
        {
            return PT_ERROR;
        }
    }

    if (ctx->state != PT_CACHE_S_FETCH || ctx->claim == NULL) {
        return PT_OK;
    }

    ctx->state = PT_CACHE_S_PASS;

    names = pt_cache_ctx_names(ctx);
    if (names == NULL) {
        pt_cache_drop_claim(ctx);
        return PT_OK;
    }

    if (pt_cache_store_begin(ctx->cache, ctx->conf, r, r->pool, ctx->primary,
                             ctx->hash, &ctx->key, r->headers_out.status,
                             &r->headers_out.headers,
                             r->headers_out.content_length_n, &ctx->writer,
                             names)
        != PT_OK)
    {
        pt_cache_drop_claim(ctx);
        return PT_OK;
    }

    ctx->writing = 1;
    ctx->names = names;

    has_body = r->method != PT_HTTP_HEAD && r->headers_out.status != 204
               && r->headers_out.status != 304;

    if (!has_body) {
        /* No body will pass the body filters: the entry is whole. */
        ctx->writing = 0;
        (void) pt_cache_store_end(ctx, r->pool, &ctx->writer, names);
    }

    return PT_OK;
}


static int
pt_cache_body_filter(pt_http_request_t *r, pt_chain_t **chain)
{
    size_t           n;
    pt_chain_t      *cl;
    pt_cache_ctx_t  *ctx;

    ctx = pt_http_get_module_ctx(r, pt_cache_module);
    if (ctx == NULL || !ctx->writing) {
        return PT_OK;
    }

    for (cl = *chain; cl; cl = cl->next) {
        n = pt_buf_size(cl->buf);

        if (n && pt_cache_write(&ctx->writer, cl->buf->pos, n) != PT_OK) {
            pt_cache_stop_storing(ctx,
                "larger than max_object, or no room in the zone");
            return PT_OK;
        }

        if (cl->buf->last_buf) {
            ctx->writing = 0;
            (void) pt_cache_store_end(ctx, r->pool, &ctx->writer,
                                      ctx->names);
            return PT_OK;
        }
    }

    return PT_OK;
}


int
pt_cache_store_whole(pt_cache_ctx_t *ctx, pt_pool_t *pool, unsigned status,
    pt_array_t *headers, const pt_str_t *body)
{
    int                 rc;
    pt_array_t          names;
    pt_cache_writer_t   w;

    if (pt_array_init(&names, pool, 2, sizeof(pt_str_t)) != PT_OK) {
        pt_cache_drop_claim(ctx);
        return PT_DECLINED;
    }

    if (pt_cache_store_begin(ctx->cache, ctx->conf, ctx->r, pool,
                             ctx->primary, ctx->hash, &ctx->key, status,
                             headers, (int64_t) body->len, &w, &names)
        != PT_OK)
    {
        pt_cache_drop_claim(ctx);
        return PT_DECLINED;
    }

    if (body->len && pt_cache_write(&w, body->data, body->len) != PT_OK) {
        pt_cache_write_abort(&w);
        pt_cache_drop_claim(ctx);
        return PT_DECLINED;
    }

    rc = pt_cache_store_end(ctx, pool, &w, &names);

    return rc == PT_OK ? PT_OK : PT_DECLINED;
}


int
pt_cache_store_filters(pt_conf_t *cf)
{
    if (pt_http_header_filter_add(cf, pt_cache_header_filter, 750,
                                  &pt_cache_module) != PT_OK
        || pt_http_body_filter_add(cf, pt_cache_body_filter, 750,
                                   &pt_cache_module) != PT_OK)
    {
        return PT_ERROR;
    }

    return PT_OK;
}
