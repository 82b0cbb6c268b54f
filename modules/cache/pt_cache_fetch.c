/*
 * pt_cache_fetch.c: revalidating a stale entry, and refreshing one in the
 * background, with upstream calls (pt_upstream_call_t) to the route's
 * upstream.
 *
 * A revalidation is a conditional GET (If-None-Match from the entry's
 * ETag, If-Modified-Since from its Last-Modified; a plain GET when it has
 * neither). 304 makes the entry fresh again (REVALIDATED); a new response
 * replaces it (EXPIRED); an error or a 5xx serves the stale entry while
 * stale_if_error allows (STALE). The answer is read whole, at most
 * max_object of body: a larger one fails the call, and the request goes
 * to the upstream as an uncached miss.
 *
 * A background refresh (stale_while_revalidate) is the same call without
 * a client: it lives in a pool of its own, holds its own reference to the
 * entry, and ends with the worker at the latest.
 */

#include "pt_cache.h"
#include "pt_string.h"
#include "pt_time.h"


typedef struct pt_cache_job_s  pt_cache_job_t;

struct pt_cache_job_s {
    pt_cache_ctx_t       ctx;         /* its own: no request            */
    pt_upstream_call_t   call;
    pt_pool_t           *pool;
    pt_str_t             request_id;  /* the request that started it   */
    pt_cache_job_t      *prev;
    pt_cache_job_t      *next;
};

/* Background refreshes of this worker, cancelled when it exits. */
static pt_cache_job_t  *pt_cache_jobs;


static int
pt_cache_forwarded(const pt_http_header_t *h, const pt_str_t *connection)
{
    static const char  *drop[] = {
        "host", "content-length", "if-none-match", "if-modified-since",
        "if-match", "if-unmodified-since", "if-range", "range",
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
        "x-request-id", "expect", NULL
    };
    const char        **d;

    if (h->name.len == 0 || pt_http_is_hop_by_hop(&h->name, connection)) {
        return 0;
    }

    for (d = drop; *d; d++) {
        if (pt_strcaseeq(&h->name, *d, strlen(*d))) {
            return 0;
        }
    }

    return 1;
}


static int
pt_cache_call_field(pt_pool_t *pool, pt_array_t *out, const char *name,
    size_t nlen, const char *value, size_t len)
{
    pt_http_header_t  *h;

    h = pt_array_push(out);
    if (h == NULL
        || pt_str_dup(pool, &h->name, name, nlen) == NULL
        || pt_str_dup(pool, &h->value, value, len) == NULL)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


/* The call for ctx's request, with the request's own fields (as the
 * proxy would send them) and the entry's validators; everything copied
 * into pool, which may outlive the request. */
static int
pt_cache_call_init(pt_cache_ctx_t *ctx, pt_pool_t *pool,
    pt_upstream_call_t *call)
{
    size_t                 i;
    char                  *p;
    pt_str_t               addr, scheme, *conn;
    pt_array_t             fields, stored;
    pt_upstream_t         *us;
    pt_http_header_t      *h;
    pt_http_request_t     *r;
    pt_http_route_conf_t  *hrcf;

    r = ctx->r;

    us = pt_upstream_of_route(r->route);
    if (us == NULL) {
        return PT_DECLINED;     /* not a proxied route: nothing to ask */
    }

    if (pt_array_init(&fields, pool, r->headers_in.headers.nelts + 6,
                      sizeof(pt_http_header_t)) != PT_OK
        || pt_array_init(&stored, pool, 8, sizeof(pt_http_header_t))
           != PT_OK
        || pt_cache_head_read(pool, ctx->node->head, ctx->node->head_len,
                              &stored) != PT_OK)
    {
        return PT_ERROR;
    }

    conn = r->headers_in.connection ? &r->headers_in.connection->value
                                    : NULL;
    h = r->headers_in.headers.elts;

    for (i = 0; i < r->headers_in.headers.nelts; i++) {
        if (pt_cache_forwarded(&h[i], conn)
            && pt_cache_call_field(pool, &fields, h[i].name.data,
                                   h[i].name.len, h[i].value.data,
                                   h[i].value.len) != PT_OK)
        {
            return PT_ERROR;
        }
    }

    if (pt_http_remote_addr(r, &addr) != PT_OK) {
        pt_str_null(&addr);
    }
    pt_http_scheme(r, &scheme);

    if (pt_cache_call_field(pool, &fields, "X-Forwarded-For", 15, addr.data,
                            addr.len) != PT_OK
        || pt_cache_call_field(pool, &fields, "X-Forwarded-Proto", 17,
                               scheme.data, scheme.len) != PT_OK
        || pt_cache_call_field(pool, &fields, "X-Request-ID", 12,
                               r->request_id.data, r->request_id.len)
           != PT_OK)
    {
        return PT_ERROR;
    }

    h = pt_http_header_find(&stored, "ETag", 4);
    if (h && pt_cache_call_field(pool, &fields, "If-None-Match", 13,
                                 h->value.data, h->value.len) != PT_OK)
    {
        return PT_ERROR;
    }

    h = pt_http_header_find(&stored, "Last-Modified", 13);
    if (h && pt_cache_call_field(pool, &fields, "If-Modified-Since", 17,
                                 h->value.data, h->value.len) != PT_OK)
    {
        return PT_ERROR;
    }

    p = pt_pnalloc(pool, r->path.len + 1 + r->query.len);
    if (p == NULL) {
        return PT_ERROR;
    }

    call->target.data = p;
    p = pt_cpymem(p, r->path.data, r->path.len);
    if (r->has_query) {
        *p++ = '?';
        p = pt_cpymem(p, r->query.data, r->query.len);
    }
    call->target.len = (size_t) (p - call->target.data);

    if (pt_str_dup(pool, &call->method, r->method_name.data,
                   r->method_name.len) == NULL)
    {
        return PT_ERROR;
    }

    if (r->headers_in.host
        && pt_str_dup(pool, &call->host, r->headers_in.host->value.data,
                      r->headers_in.host->value.len) == NULL)
    {
        return PT_ERROR;
    }

    hrcf = r->route->conf[pt_http_module.index];

    call->us = us;
    call->pool = pool;
    call->headers = fields.elts;
    call->nheaders = fields.nelts;
    call->max_response = ctx->conf->max_object + 64 * 1024;
    call->timeout = hrcf->timeout;

    return PT_OK;
}


/* The fields that set a revalidated entry's new freshness: the 304's
 * when it has them (RFC 9111 4.3.4), else the stored ones. */
static int
pt_cache_refresh_meta(pt_cache_ctx_t *ctx, pt_pool_t *pool,
    pt_upstream_call_t *call, pt_cache_meta_t *meta)
{
    pt_array_t  stored, *use;

    use = &call->headers_out;

    if (pt_http_header_find(use, "Cache-Control", 13) == NULL
        && pt_http_header_find(use, "Expires", 7) == NULL)
    {
        if (pt_array_init(&stored, pool, 8, sizeof(pt_http_header_t))
            != PT_OK
            || pt_cache_head_read(pool, ctx->node->head, ctx->node->head_len,
                                  &stored) != PT_OK)
        {
            return 0;
        }
        use = &stored;
    }

    return pt_cache_freshness(ctx->r, ctx->conf, ctx->node->meta.status, use,
                              (int64_t) pt_current_epoch_msec, meta);
}


/* Send a response read by a call that the cache did not keep. */
static int
pt_cache_send_call(pt_http_request_t *r, pt_upstream_call_t *call)
{
    size_t             i;
    pt_http_header_t  *h;

    h = call->headers_out.elts;

    for (i = 0; i < call->headers_out.nelts; i++) {
        if (!pt_cache_field_skipped(&h[i].name)
            && pt_http_header_out_add(r, h[i].name.data, h[i].name.len,
                                      h[i].value.data, h[i].value.len)
               != PT_OK)
        {
            return PT_ERROR;
        }
    }

    return pt_http_send_response(r, call->status, NULL, call->body.data,
                                 call->body.len);
}


static void
pt_cache_serve_now(pt_cache_ctx_t *ctx, pt_cache_result_e result)
{
    ctx->state = PT_CACHE_S_SERVE;
    ctx->result = result;
    ctx->r->content_handler = pt_cache_serve;

    pt_http_run_phases(ctx->r);
}


static void
pt_cache_revalidated(pt_upstream_call_t *call)
{
    int                 rc;
    int64_t             now;
    pt_cache_ctx_t     *ctx;
    pt_cache_meta_t     meta;
    pt_http_request_t  *r;

    ctx = call->data;
    r = ctx->r;
    ctx->call = NULL;
    ctx->state = PT_CACHE_S_NONE;
    now = (int64_t) pt_current_epoch_msec;

    if (call->rc == PT_OK && call->status == 304) {
        if (pt_cache_refresh_meta(ctx, r->pool, call, &meta)) {
            pt_cache_refresh(ctx->cache, ctx->node, &meta);
            ctx->claim = NULL;      /* the refresh ended it */
        } else {
            pt_cache_drop_claim(ctx);
        }

        pt_cache_serve_now(ctx, PT_CACHE_REVALIDATED);
        return;
    }

    if (call->rc == PT_OK && call->status < 500) {
        rc = pt_cache_store_whole(ctx, r->pool, call->status,
                                  &call->headers_out, &call->body);

        pt_cache_release(ctx->cache, ctx->node);
        ctx->node = NULL;

        if (rc == PT_OK) {
            /* Served from the entry just stored, like every other hit. */
            ctx->force = 0;
            if (pt_cache_find_entry(ctx, 0) == PT_CACHE_FOUND) {
                pt_cache_serve_now(ctx, PT_CACHE_EXPIRED);
                return;
            }
        }

        ctx->result = PT_CACHE_EXPIRED;
        ctx->state = PT_CACHE_S_PASS;
        pt_http_finalize(r, pt_cache_send_call(r, call));
        return;
    }

    pt_cache_drop_claim(ctx);

    if (call->rc != PT_OK) {
        pt_http_log_request(r, PT_LOG_ERR, "cache: revalidation failed: %s",
                            call->error);
    }

    if (now < __atomic_load_n(&ctx->node->meta.sie_until, __ATOMIC_RELAXED)
        && !(ctx->node->meta.flags & PT_CACHE_F_NO_STALE))
    {
        pt_cache_serve_now(ctx, PT_CACHE_STALE);
        return;
    }

    ctx->result = PT_CACHE_EXPIRED;
    ctx->state = PT_CACHE_S_PASS;

    if (call->rc == PT_OK) {
        pt_http_finalize(r, pt_cache_send_call(r, call));
        return;
    }

    pt_http_finalize(r, strstr(call->error, "timed out") ? 504 : 502);
}


int
pt_cache_revalidate(pt_cache_ctx_t *ctx)
{
    int                  rc;
    pt_upstream_call_t  *call;

    call = pt_pcalloc(ctx->r->pool, sizeof(pt_upstream_call_t));
    if (call == NULL) {
        return PT_DECLINED;
    }

    rc = pt_cache_call_init(ctx, ctx->r->pool, call);
    if (rc != PT_OK) {
        return PT_DECLINED;
    }

    call->r = ctx->r;
    call->done = pt_cache_revalidated;
    call->data = ctx;

    if (pt_upstream_call_start(call) != PT_OK) {
        return PT_DECLINED;
    }

    ctx->call = call;

    return PT_AGAIN;
}


static void
pt_cache_job_free(pt_cache_job_t *job)
{
    if (job->prev) {
        job->prev->next = job->next;
    } else {
        pt_cache_jobs = job->next;
    }

    if (job->next) {
        job->next->prev = job->prev;
    }

    pt_cache_drop_claim(&job->ctx);
    pt_pool_destroy(job->pool);
}


static void
pt_cache_refreshed(pt_upstream_call_t *call)
{
    pt_cache_job_t   *job;
    pt_cache_ctx_t   *ctx;
    pt_cache_meta_t   meta;

    job = call->data;
    ctx = &job->ctx;

    if (call->rc == PT_OK && call->status == 304) {
        if (pt_cache_refresh_meta(ctx, job->pool, call, &meta)) {
            pt_cache_refresh(ctx->cache, ctx->node, &meta);
            pt_cache_release(ctx->cache, ctx->node);
            ctx->claim = NULL;
        }

    } else if (call->rc == PT_OK && call->status < 500) {
        (void) pt_cache_store_whole(ctx, job->pool, call->status,
                                    &call->headers_out, &call->body);

    } else {
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "cache: background refresh of route \"%s\" failed: %s, request_id: %.*s",
                     ctx->conf->route.data,
                     call->rc == PT_OK ? "a 5xx answer" : call->error,
                     (int) job->request_id.len, job->request_id.data);
    }

    pt_cache_job_free(job);
}


void
pt_cache_refresh_background(pt_cache_ctx_t *ctx)
{
    pt_str_t           key;
    pt_pool_t         *pool;
    pt_cache_job_t    *job;
    pt_cache_node_t   *node;

    pool = pt_pool_create(4096);
    job = pool ? pt_pcalloc(pool, sizeof(pt_cache_job_t)) : NULL;

    if (job == NULL
        || pt_str_dup(pool, &key, ctx->key.data, ctx->key.len) == NULL
        || pt_str_dup(pool, &job->request_id, ctx->r->request_id.data,
                      ctx->r->request_id.len) == NULL
        || pt_cache_call_init(ctx, pool, &job->call) != PT_OK)
    {
        goto failed;
    }

    /* The job's own reference: the request may end first. */
    if (pt_cache_lookup(ctx->cache, ctx->hash, 0,
                        (int64_t) pt_current_epoch_msec,
                        ctx->conf->lock_timeout, &node) != PT_CACHE_FOUND)
    {
        goto failed;
    }

    if (node != ctx->node) {
        pt_cache_release(ctx->cache, node);
        goto failed;
    }

    job->pool = pool;
    job->ctx = *ctx;
    job->ctx.r = NULL;
    job->ctx.node = node;
    job->ctx.claim = node;
    job->ctx.claim_ref = 1;
    job->ctx.call = NULL;
    job->ctx.writing = 0;
    job->ctx.key = key;

    job->call.done = pt_cache_refreshed;
    job->call.data = job;

    /* The request no longer holds the claim: the job does. */
    ctx->claim = NULL;

    job->next = pt_cache_jobs;
    if (pt_cache_jobs) {
        pt_cache_jobs->prev = job;
    }
    pt_cache_jobs = job;

    if (pt_upstream_call_start(&job->call) != PT_OK) {
        pt_cache_job_free(job);
    }

    return;

failed:

    pt_cache_drop_claim(ctx);

    if (pool) {
        pt_pool_destroy(pool);
    }
}


void
pt_cache_jobs_cancel(void)
{
    while (pt_cache_jobs) {
        pt_upstream_call_cancel(&pt_cache_jobs->call);
        pt_cache_job_free(pt_cache_jobs);
    }
}
