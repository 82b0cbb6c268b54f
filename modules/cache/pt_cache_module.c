/*
 * pt_cache_module.c: a route's `cache:`, and the PRECONTENT lookup.
 *
 *   cache: { ttl: 30s, key: "${method}${host}${path}?${query}",
 *            vary: [Accept], stale_while_revalidate: 10s,
 *            stale_if_error: 60s, max_object: 1m }
 *
 * GET and HEAD requests look up their key in the shared store: a fresh
 * entry is served (HIT); a stale one is served at once while one refresh
 * runs in the background (stale_while_revalidate), or revalidated first
 * (pt_cache_fetch.c); a miss goes to the route's action, whose response
 * the store filter keeps. The first miss on a key claims it; concurrent
 * requests for it, in any worker, wait for that one fetch and are served
 * from it. Workers cannot wake each other, so waiters poll the store
 * every PT_CACHE_POLL ms from a timer, never blocking their worker.
 */

#include "pt_cache.h"
#include "pt_string.h"
#include "pt_time.h"

#include <openssl/evp.h>


#define PT_CACHE_POLL   5      /* ms between looks at a claimed key */


static void *pt_cache_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_cache_set(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_cache_postconfig(pt_conf_t *cf);
static int pt_cache_handler(pt_http_request_t *r);
static void pt_cache_exit_worker(pt_cycle_t *cycle);


static const pt_command_t  pt_cache_commands[] = {

    { "cache", PT_CONF_ROUTE | PT_CONF_MAP, pt_cache_set, 0, NULL },

    pt_null_command
};


pt_module_t  pt_cache_module = {
    .name = "cache",
    .abi = PT_MODULE_ABI,
    .commands = pt_cache_commands,
    .create_conf = pt_cache_create_conf,
    .postconfig = pt_cache_postconfig,
    .exit_worker = pt_cache_exit_worker,
};


static void *
pt_cache_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    void  *c;

    if (level == PT_CONF_LEVEL_GLOBAL) {
        c = pt_pcalloc(cf->pool, sizeof(pt_cache_main_conf_t));
    } else if (level == PT_CONF_LEVEL_ROUTE) {
        c = pt_pcalloc(cf->pool, sizeof(pt_cache_route_conf_t));
    } else {
        return NULL;
    }

    return c ? c : PT_CONF_ERROR_PTR;
}


static void
pt_cache_status_set(pt_cache_conf_t *cc, unsigned status)
{
    status -= 100;
    cc->statuses[status / 64] |= (uint64_t) 1 << (status % 64);
}


static int
pt_cache_set_statuses(pt_conf_t *cf, pt_yaml_node_t *v, pt_cache_conf_t *cc)
{
    size_t   i;
    int64_t  n;

    if (pt_conf_expect(cf, v, PT_YAML_SEQ, "statuses") != PT_OK) {
        return PT_ERROR;
    }

    if (v->n == 0) {
        return pt_conf_error(cf, v,
                             "statuses: an empty list would cache nothing");
    }

    memset(cc->statuses, 0, sizeof(cc->statuses));

    for (i = 0; i < v->n; i++) {
        if (pt_conf_parse_int(cf, v->items[i], "a status", 200, 599, &n)
            != PT_OK)
        {
            return PT_ERROR;
        }

        if (n == 206) {
            return pt_conf_error(cf, v->items[i],
                                 "206 is not cached: ranges are served from whole 200 responses");
        }

        pt_cache_status_set(cc, (unsigned) n);
    }

    return PT_OK;
}


static int
pt_cache_set_vary(pt_conf_t *cf, pt_yaml_node_t *v, pt_cache_conf_t *cc)
{
    size_t           i;
    pt_str_t        *name;
    pt_yaml_node_t  *item;

    if (pt_conf_expect(cf, v, PT_YAML_SEQ, "vary") != PT_OK) {
        return PT_ERROR;
    }

    for (i = 0; i < v->n; i++) {
        item = v->items[i];

        if (pt_conf_expect(cf, item, PT_YAML_SCALAR, "a header name")
            != PT_OK)
        {
            return PT_ERROR;
        }

        if (!pt_http_is_token(&item->scalar)) {
            return pt_conf_error(cf, item, "vary: \"%s\" is not a header name",
                                 item->scalar.data);
        }

        name = pt_array_push(&cc->vary);
        if (name == NULL
            || pt_str_dup(cf->pool, name, item->scalar.data,
                          item->scalar.len) == NULL)
        {
            return PT_ERROR;
        }

        pt_strlow(name->data, name->data, name->len);
    }

    return PT_OK;
}


static int
pt_cache_set(pt_conf_t *cf, const pt_command_t *cmd, pt_yaml_node_t *node,
    void *conf)
{
    int                     rc;
    size_t                  i;
    const char             *k;
    pt_route_t             *route;
    pt_yaml_node_t         *v;
    pt_cache_conf_t        *cc;
    pt_cache_route_conf_t  *rcf;
    static const unsigned   defaults[] = { 200, 203, 204, 301, 404 };

    (void) cmd;

    rcf = conf;
    route = cf->scope;

    cc = pt_pcalloc(cf->pool, sizeof(pt_cache_conf_t));
    if (cc == NULL
        || pt_array_init(&cc->vary, cf->pool, 2, sizeof(pt_str_t)) != PT_OK)
    {
        return PT_ERROR;
    }

    rcf->conf = cc;
    cc->node = node;
    cc->route = route->name;
    cc->ttl = 30000;
    cc->lock_timeout = 5000;
    cc->max_object = 1024 * 1024;

    for (i = 0; i < pt_nelems(defaults); i++) {
        pt_cache_status_set(cc, defaults[i]);
    }

    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        k = node->pairs[i].key->scalar.data;
        v = node->pairs[i].value;

        if (strcmp(k, "key") == 0) {
            cc->key = pt_template_compile(cf, v);
            if (cc->key == NULL) {
                rc = PT_ERROR;
            }

        } else if (strcmp(k, "vary") == 0) {
            if (pt_cache_set_vary(cf, v, cc) != PT_OK) {
                rc = PT_ERROR;
            }

        } else if (strcmp(k, "statuses") == 0) {
            if (pt_cache_set_statuses(cf, v, cc) != PT_OK) {
                rc = PT_ERROR;
            }

        } else if (strcmp(k, "ttl") == 0
                   || strcmp(k, "stale_while_revalidate") == 0
                   || strcmp(k, "stale_if_error") == 0
                   || strcmp(k, "lock_timeout") == 0)
        {
            if (pt_conf_parse_msec(cf, v,
                                   k[0] == 't' ? &cc->ttl
                                   : k[0] == 'l' ? &cc->lock_timeout
                                   : k[6] == 'w' ? &cc->swr : &cc->sie)
                != PT_OK)
            {
                rc = PT_ERROR;
            }

        } else if (strcmp(k, "max_object") == 0) {
            if (pt_conf_parse_size(cf, v, &cc->max_object) != PT_OK) {
                rc = PT_ERROR;
            } else if (cc->max_object == 0
                       || cc->max_object > (size_t) 1 << 30)
            {
                rc = pt_conf_error(cf, v, "max_object: 1 byte to 1g");
            }

        } else {
            rc = pt_conf_error(cf, node->pairs[i].key,
                               "unknown key \"%s\" in cache (ttl, key, vary, statuses, stale_while_revalidate, stale_if_error, max_object, lock_timeout)",
                               k);
        }
    }

    if (rc == PT_OK && cc->key == NULL) {
        pt_yaml_node_t  def = { 0 };

        /* SPEC's default key, compiled like one written in the file. */
        def.type = PT_YAML_SCALAR;
        def.file = node->file;
        def.line = node->line;
        def.col = node->col;
        pt_str_set(&def.scalar, "${method}${host}${path}?${query}");

        cc->key = pt_template_compile(cf, &def);
        if (cc->key == NULL) {
            rc = PT_ERROR;
        }
    }

    return rc;
}


static int
pt_cache_postconfig(pt_conf_t *cf)
{
    size_t                  i, n;
    pt_route_t            **routes;
    pt_cache_main_conf_t   *mcf;
    pt_cache_route_conf_t  *rcf;
    pt_http_main_conf_t    *hmcf;

    mcf = cf->cycle->conf[pt_cache_module.index];
    hmcf = pt_http_main_conf(cf->cycle);
    routes = hmcf->routes.elts;

    for (i = 0, n = 0; i < hmcf->routes.nelts; i++) {
        rcf = routes[i]->conf[pt_cache_module.index];
        if (rcf && rcf->conf) {
            n++;
        }
    }

    if (n == 0) {
        return PT_OK;       /* no zone, no handlers, no purge endpoint */
    }

    /* Bodies are the bulk of shared memory: the largest share. */
    mcf->zone = pt_shm_zone_add(cf, "cache", 1024 * 1024, 8,
                                &pt_cache_module, pt_cache_zone_init);
    if (mcf->zone == NULL) {
        return PT_ERROR;
    }

    if (pt_http_phase_add(cf, PT_HTTP_PRECONTENT_PHASE, pt_cache_handler,
                          100, &pt_cache_module) != PT_OK
        || pt_cache_store_filters(cf) != PT_OK
        || pt_cache_purge_init(cf) != PT_OK)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


static void
pt_cache_exit_worker(pt_cycle_t *cycle)
{
    (void) cycle;

    pt_cache_jobs_cancel();
}


/* SHA-256, fetched once per process and its context reused. */
static EVP_MD_CTX *
pt_cache_sha256(void)
{
    static EVP_MD      *md;
    static EVP_MD_CTX  *ctx;

    if (md == NULL) {
        md = EVP_MD_fetch(NULL, "SHA256", NULL);
    }

    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();
    }

    if (md == NULL || ctx == NULL || !EVP_DigestInit_ex2(ctx, md, NULL)) {
        return NULL;
    }

    return ctx;
}


static void
pt_cache_hash_field(EVP_MD_CTX *md, pt_http_request_t *r,
    const pt_str_t *name)
{
    size_t             i;
    pt_http_header_t  *h;

    (void) EVP_DigestUpdate(md, name->data, name->len);
    (void) EVP_DigestUpdate(md, "", 1);

    /* Several fields of one name are one list (RFC 9110 5.3). */
    h = r->headers_in.headers.elts;

    for (i = 0; i < r->headers_in.headers.nelts; i++) {
        if (h[i].name.len && pt_strcaseeq(&h[i].name, name->data, name->len))
        {
            (void) EVP_DigestUpdate(md, h[i].value.data, h[i].value.len);
            (void) EVP_DigestUpdate(md, ",", 1);
        }
    }

    (void) EVP_DigestUpdate(md, "", 1);
}


/* The primary hash (base NULL): route, key text and the configured vary
 * fields; a variant's (base = the primary): the fields the response's
 * Vary names. A zero hash when OpenSSL fails: it matches nothing stored,
 * so the request is a miss that stores nothing useful. */
void
pt_cache_hash(const uint8_t *base, pt_http_request_t *r,
    const pt_str_t *route, const pt_str_t *key, const pt_str_t *names,
    size_t nnames, uint8_t *out)
{
    size_t       i;
    EVP_MD_CTX  *md;

    md = pt_cache_sha256();

    if (md == NULL) {
        memset(out, 0, PT_CACHE_HASH_LEN);
        return;
    }

    if (base) {
        (void) EVP_DigestUpdate(md, "v", 1);
        (void) EVP_DigestUpdate(md, base, PT_CACHE_HASH_LEN);

    } else {
        (void) EVP_DigestUpdate(md, route->data, route->len);
        (void) EVP_DigestUpdate(md, "", 1);
        (void) EVP_DigestUpdate(md, &key->len, sizeof(key->len));
        (void) EVP_DigestUpdate(md, key->data, key->len);
    }

    for (i = 0; i < nnames; i++) {
        pt_cache_hash_field(md, r, &names[i]);
    }

    if (!EVP_DigestFinal_ex(md, out, NULL)) {
        memset(out, 0, PT_CACHE_HASH_LEN);
    }
}


void
pt_cache_drop_claim(pt_cache_ctx_t *ctx)
{
    if (ctx->claim) {
        pt_cache_unclaim(ctx->cache, ctx->claim);
        if (ctx->claim_ref) {
            pt_cache_release(ctx->cache, ctx->claim);
        }
        ctx->claim = NULL;
        ctx->claim_ref = 0;
    }
}


static void
pt_cache_cleanup(void *data)
{
    pt_cache_ctx_t  *ctx;

    ctx = data;

    pt_timer_del(&ctx->timer);

    if (ctx->call) {
        pt_upstream_call_cancel(ctx->call);
        ctx->call = NULL;
    }

    if (ctx->writing) {
        pt_cache_write_abort(&ctx->writer);
        ctx->writing = 0;
    }

    pt_cache_drop_claim(ctx);

    if (ctx->node) {
        pt_cache_release(ctx->cache, ctx->node);
        ctx->node = NULL;
    }
}


static void
pt_cache_poll(pt_event_t *ev)
{
    pt_cache_ctx_t  *ctx;

    ctx = ev->data;

    pt_http_run_phases(ctx->r);
}


/* The client's own Cache-Control: no-store bypasses the cache, no-cache
 * (or max-age=0, or Pragma: no-cache without Cache-Control) revalidates. */
static void
pt_cache_client_wishes(pt_cache_ctx_t *ctx)
{
    pt_str_t            *v;
    pt_http_header_t    *h;
    pt_cache_control_t   cc;
    pt_http_request_t   *r;

    r = ctx->r;

    pt_cache_control(&r->headers_in.headers, &cc);

    ctx->no_store = cc.no_store;
    ctx->force = cc.no_cache || cc.max_age == 0;

    if (pt_http_header_find(&r->headers_in.headers, "Cache-Control", 13)
        == NULL)
    {
        h = pt_http_header_find(&r->headers_in.headers, "Pragma", 6);
        v = h ? &h->value : NULL;

        if (v && pt_http_list_has(v, "no-cache", 8)) {
            ctx->force = 1;
        }
    }
}


/* Fields the upstream must not see on a fetch the cache makes: the
 * client's conditions and ranges would get an answer the cache cannot
 * store; the cache answers them itself. */
static void
pt_cache_strip_conditions(pt_http_request_t *r)
{
    pt_http_header_in_remove(r, "If-None-Match", 13);
    pt_http_header_in_remove(r, "If-Modified-Since", 17);
    pt_http_header_in_remove(r, "If-Match", 8);
    pt_http_header_in_remove(r, "If-Unmodified-Since", 19);
    pt_http_header_in_remove(r, "If-Range", 8);
    pt_http_header_in_remove(r, "Range", 5);
}


/* Look the request's entry up: through the vary record to the variant
 * when the response varied. Returns what pt_cache_lookup() returns. */
int
pt_cache_find_entry(pt_cache_ctx_t *ctx, int claim)
{
    int               rc;
    size_t            n;
    pt_array_t        names;
    pt_cache_node_t  *node;

    rc = pt_cache_lookup(ctx->cache, ctx->primary, claim,
                         (int64_t) pt_current_epoch_msec,
                         ctx->conf->lock_timeout, &node);

    memcpy(ctx->hash, ctx->primary, PT_CACHE_HASH_LEN);

    if (rc != PT_CACHE_FOUND) {
        if (rc == PT_CACHE_CLAIMED) {
            ctx->claim = node;
            ctx->claim_ref = 1;
        }
        return rc;
    }

    if (!(node->meta.flags & PT_CACHE_F_VARY)) {
        ctx->node = node;
        return rc;
    }

    /* A vary record: its head lists the field names. */
    if (pt_array_init(&names, ctx->r->pool, 4, sizeof(pt_str_t)) != PT_OK
        || pt_cache_head_read(ctx->r->pool, node->head, node->head_len,
                              &names) != PT_OK)
    {
        pt_cache_release(ctx->cache, node);
        return PT_CACHE_NONE;
    }

    n = names.nelts;
    pt_cache_hash(ctx->primary, ctx->r, NULL, NULL, names.elts, n,
                  ctx->hash);
    pt_cache_release(ctx->cache, node);

    rc = pt_cache_lookup(ctx->cache, ctx->hash, claim,
                         (int64_t) pt_current_epoch_msec,
                         ctx->conf->lock_timeout, &node);

    if (rc == PT_CACHE_FOUND) {
        ctx->node = node;
    } else if (rc == PT_CACHE_CLAIMED) {
        ctx->claim = node;
        ctx->claim_ref = 1;
    }

    return rc;
}


/* Serve the entry found with result. */
static int
pt_cache_answer(pt_cache_ctx_t *ctx, pt_cache_result_e result)
{
    ctx->state = PT_CACHE_S_SERVE;
    ctx->result = result;
    ctx->r->content_handler = pt_cache_serve;

    return PT_CONTINUE;
}


/* Go to the route's action: storing the response when this request holds
 * the claim, else only passing it on. */
static int
pt_cache_proxy(pt_cache_ctx_t *ctx, pt_cache_result_e result)
{
    ctx->result = result;
    ctx->state = ctx->claim ? PT_CACHE_S_FETCH : PT_CACHE_S_PASS;

    pt_cache_strip_conditions(ctx->r);

    return PT_CONTINUE;
}


static int
pt_cache_wait(pt_cache_ctx_t *ctx)
{
    if (ctx->state != PT_CACHE_S_WAIT) {
        ctx->state = PT_CACHE_S_WAIT;
        ctx->wait_until = pt_current_msec + ctx->conf->lock_timeout;
    }

    pt_timer_add(&ctx->timer, PT_CACHE_POLL);

    return PT_AGAIN;
}


/* An entry is in hand (referenced): fresh, stale and servable, or to be
 * revalidated. */
static int
pt_cache_use(pt_cache_ctx_t *ctx)
{
    int64_t           now;
    pt_cache_node_t  *node;
    pt_cache_meta_t  *m;

    node = ctx->node;
    m = &node->meta;
    now = (int64_t) pt_current_epoch_msec;

    if (!ctx->force && now < __atomic_load_n(&m->fresh_until,
                                             __ATOMIC_RELAXED))
    {
        return pt_cache_answer(ctx, PT_CACHE_HIT);
    }

    if (!ctx->force && !(m->flags & PT_CACHE_F_NO_STALE)
        && now < __atomic_load_n(&m->swr_until, __ATOMIC_RELAXED))
    {
        if (pt_cache_claim(ctx->cache, node, now, ctx->conf->lock_timeout))
        {
            ctx->claim = node;
            pt_cache_refresh_background(ctx);
        }

        return pt_cache_answer(ctx, PT_CACHE_STALE);
    }

    if (pt_cache_claim(ctx->cache, node, now, ctx->conf->lock_timeout)) {
        ctx->claim = node;

        if (pt_cache_revalidate(ctx) == PT_AGAIN) {
            ctx->state = PT_CACHE_S_CALL;
            return PT_AGAIN;
        }

        /* Refetched as a miss: the claim stays (and the reference, which
         * keeps the claimed entry valid), and the new response replaces
         * the entry. */
        return pt_cache_proxy(ctx, PT_CACHE_EXPIRED);
    }

    /* Someone else is revalidating it: wait for their answer. */
    pt_cache_release(ctx->cache, node);
    ctx->node = NULL;

    return pt_cache_wait(ctx);
}


/* Resumed by the poll timer while another request fetches the key. */
static int
pt_cache_waited(pt_cache_ctx_t *ctx)
{
    int  rc;

    rc = pt_cache_find_entry(ctx, 0);

    if (rc == PT_CACHE_FOUND) {
        if (ctx->force
            || (int64_t) pt_current_epoch_msec
               >= __atomic_load_n(&ctx->node->meta.fresh_until,
                                  __ATOMIC_RELAXED))
        {
            /* Still stale: updating, or the update failed. */
            if (__atomic_load_n(&ctx->node->updater, __ATOMIC_RELAXED)
                && pt_current_msec < ctx->wait_until)
            {
                pt_cache_release(ctx->cache, ctx->node);
                ctx->node = NULL;
                return pt_cache_wait(ctx);
            }

            pt_cache_release(ctx->cache, ctx->node);
            ctx->node = NULL;

            return pt_cache_proxy(ctx, PT_CACHE_EXPIRED);
        }

        /* Fetched by the one we waited for. */
        ctx->force = 0;
        return pt_cache_answer(ctx, PT_CACHE_HIT);
    }

    if (rc == PT_CACHE_BUSY && pt_current_msec < ctx->wait_until) {
        return pt_cache_wait(ctx);
    }

    /* Not stored after all (or we waited long enough): the upstream, as
     * an uncached miss, so that a response nobody may store does not
     * make every waiter queue behind the next. */
    if (rc == PT_CACHE_BUSY) {
        pt_http_log_request(ctx->r, PT_LOG_INFO,
                            "cache: waited %lu ms for another fetch of the key; going to the upstream",
                            (unsigned long) ctx->conf->lock_timeout);
    }

    return pt_cache_proxy(ctx, PT_CACHE_MISS);
}


static int
pt_cache_handler(pt_http_request_t *r)
{
    int                     rc;
    pt_cache_ctx_t         *ctx;
    pt_cache_conf_t        *conf;
    pt_cache_main_conf_t   *mcf;
    pt_cache_route_conf_t  *rcf;

    ctx = pt_http_get_module_ctx(r, pt_cache_module);

    if (ctx) {
        if (ctx->state == PT_CACHE_S_WAIT) {
            return pt_cache_waited(ctx);
        }

        if (ctx->state == PT_CACHE_S_CALL) {
            return PT_AGAIN;        /* pt_cache_fetch.c resumes us */
        }

        return PT_CONTINUE;
    }

    rcf = pt_http_route_conf(r, pt_cache_module);
    if (rcf == NULL || rcf->conf == NULL) {
        return PT_CONTINUE;
    }

    conf = rcf->conf;
    mcf = pt_cycle->conf[pt_cache_module.index];

    ctx = pt_pcalloc(r->pool, sizeof(pt_cache_ctx_t));
    if (ctx == NULL
        || pt_pool_cleanup_add(r->pool, pt_cache_cleanup, ctx) == NULL)
    {
        return PT_ERROR;
    }

    ctx->r = r;
    ctx->conf = conf;
    ctx->cache = mcf->zone->data;
    ctx->timer.data = ctx;
    ctx->timer.handler = pt_cache_poll;
    pt_http_set_module_ctx(r, ctx, pt_cache_module);

    if (!(r->method & (PT_HTTP_GET | PT_HTTP_HEAD)) || r->ext_connect
        || r->headers_in.upgrade)
    {
        ctx->state = PT_CACHE_S_PASS;
        ctx->result = PT_CACHE_BYPASS;
        return PT_CONTINUE;
    }

    pt_cache_client_wishes(ctx);

    if (ctx->no_store) {
        ctx->state = PT_CACHE_S_PASS;
        ctx->result = PT_CACHE_BYPASS;
        return PT_CONTINUE;
    }

    if (pt_template_eval(r, conf->key, &ctx->key) != PT_OK) {
        return PT_ERROR;
    }

    pt_cache_hash(NULL, r, &conf->route, &ctx->key, conf->vary.elts,
                  conf->vary.nelts, ctx->primary);

    rc = pt_cache_find_entry(ctx, 1);

    switch (rc) {

    case PT_CACHE_FOUND:
        return pt_cache_use(ctx);

    case PT_CACHE_CLAIMED:
        return pt_cache_proxy(ctx, PT_CACHE_MISS);

    case PT_CACHE_BUSY:
        return pt_cache_wait(ctx);

    default:
        return pt_cache_proxy(ctx, PT_CACHE_MISS);
    }
}
