/*
 * pt_metrics_module.c: the "metrics" module: GET /metrics on the admin
 * listener and `handler: metrics` as a route action, in the Prometheus
 * text format, and the LOG phase handler that counts every request.
 *
 * The counts live in the "metrics" zone (pt_metrics_shm.c), shared by
 * every worker and kept over reloads, so any worker answers for all of
 * them, those of workers gone included.
 */

#include "pt_metrics.h"
#include "pt_string.h"
#include "pt_time.h"


/* A fixed size: a zone whose size does not change is adopted unchanged
 * by the next generation, so a reload never resets the counters. */
#define PT_METRICS_ZONE_SIZE    (2 * 1024 * 1024)

typedef struct {
    pt_shm_zone_t  *zone;
} pt_metrics_main_conf_t;


static void *pt_metrics_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_metrics_preconfig(pt_conf_t *cf);
static int pt_metrics_postconfig(pt_conf_t *cf);
static int pt_metrics_handler(pt_http_request_t *r);
static int pt_metrics_log_handler(pt_http_request_t *r);


pt_module_t  pt_metrics_module = {
    .name = "metrics",
    .abi = PT_MODULE_ABI,
    .create_conf = pt_metrics_create_conf,
    .preconfig = pt_metrics_preconfig,
    .postconfig = pt_metrics_postconfig,
};


static void *
pt_metrics_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_metrics_main_conf_t  *mcf;

    if (level != PT_CONF_LEVEL_GLOBAL) {
        return NULL;
    }

    mcf = pt_pcalloc(cf->pool, sizeof(pt_metrics_main_conf_t));

    return mcf ? mcf : PT_CONF_ERROR_PTR;
}


static int
pt_metrics_preconfig(pt_conf_t *cf)
{
    return pt_http_named_handler_add(cf, "metrics", pt_metrics_handler);
}


static int
pt_metrics_postconfig(pt_conf_t *cf)
{
    pt_metrics_main_conf_t  *mcf;

    mcf = cf->cycle->conf[pt_metrics_module.index];

    mcf->zone = pt_shm_zone_add(cf, "metrics", PT_METRICS_ZONE_SIZE, 0,
                                &pt_metrics_module, pt_metrics_zone_init);
    if (mcf->zone == NULL) {
        return PT_ERROR;
    }

    if (pt_http_admin_route_add(cf, "/metrics", pt_metrics_handler) == NULL)
    {
        return PT_ERROR;
    }

    return pt_http_phase_add(cf, PT_HTTP_LOG_PHASE, pt_metrics_log_handler,
                             100, &pt_metrics_module);
}


static pt_metrics_root_t *
pt_metrics_root(void)
{
    pt_metrics_main_conf_t  *mcf;

    mcf = pt_cycle->conf[pt_metrics_module.index];

    if (mcf->zone == NULL || mcf->zone->slab == NULL) {
        return NULL;
    }

    return mcf->zone->slab->data;
}


static void
pt_metrics_count(pt_metrics_root_t *root, pt_metrics_kind_e kind,
    const pt_str_t *name, const char *label, unsigned status)
{
    pt_metrics_slot_t  *s;

    s = pt_metrics_slot(root, kind, name, label, status);
    if (s) {
        __atomic_add_fetch(&s->v[0], 1, __ATOMIC_RELAXED);
    }
}


/* X-Cache's value as a label: lower case, known values only. */
static const char *
pt_metrics_cache_result(const pt_str_t *st)
{
    size_t              i;
    static const char  *known[][2] = {
        { "HIT", "hit" }, { "MISS", "miss" }, { "EXPIRED", "expired" },
        { "STALE", "stale" }, { "REVALIDATED", "revalidated" },
        { "BYPASS", "bypass" }
    };

    for (i = 0; i < pt_nelems(known); i++) {
        if (st->len == strlen(known[i][0])
            && memcmp(st->data, known[i][0], st->len) == 0)
        {
            return known[i][1];
        }
    }

    return "other";
}


/* Methods we know by name, the rest as one value: a client cannot make
 * series up. Taken from the method's bit, which both protocols set (an
 * HTTP/2 request has no method_name text of its own for every method). */
static const char *
pt_metrics_method(pt_http_request_t *r)
{
    size_t  i;
    static const struct {
        unsigned     bit;
        const char  *name;
    } known[] = {
        { PT_HTTP_GET, "GET" }, { PT_HTTP_HEAD, "HEAD" },
        { PT_HTTP_POST, "POST" }, { PT_HTTP_PUT, "PUT" },
        { PT_HTTP_DELETE, "DELETE" }, { PT_HTTP_OPTIONS, "OPTIONS" },
        { PT_HTTP_PATCH, "PATCH" }, { PT_HTTP_TRACE, "TRACE" },
        { PT_HTTP_CONNECT, "CONNECT" }
    };

    for (i = 0; i < pt_nelems(known); i++) {
        if (r->method == known[i].bit) {
            return known[i].name;
        }
    }

    return "OTHER";
}


/* LOG runs exactly once per request: count it. */
static int
pt_metrics_log_handler(pt_http_request_t *r)
{
    uint64_t             us;
    pt_str_t             route;
    pt_metrics_root_t   *root;
    pt_metrics_slot_t   *s;

    /* Admin endpoints are not counted, as they are not logged. */
    if (r->route ? r->route->admin : r->hc->listen->admin) {
        return PT_OK;
    }

    root = pt_metrics_root();
    if (root == NULL) {
        return PT_OK;
    }

    if (r->route) {
        route = r->route->name;
    } else {
        route.data = "";
        route.len = 0;
    }

    pt_metrics_count(root, PT_METRICS_REQUESTS, &route, pt_metrics_method(r),
                     r->status);

    us = pt_monotonic_usec() - r->start_usec;
    s = pt_metrics_slot(root, PT_METRICS_ROUTE_DURATION, &route, "", 0);
    if (s) {
        pt_metrics_observe(s, us);
    }

    if (r->upstream_usec >= 0 && r->upstream_name.len) {
        s = pt_metrics_slot(root, PT_METRICS_UPSTREAM_DURATION,
                            &r->upstream_name, "", 0);
        if (s) {
            pt_metrics_observe(s, (uint64_t) r->upstream_usec);
        }
    }

    if (r->limited) {
        pt_metrics_count(root, PT_METRICS_REJECTED, &route, "", 0);
    }

    if (r->cache_status.len) {
        pt_metrics_count(root, PT_METRICS_CACHE, &route,
                         pt_metrics_cache_result(&r->cache_status), 0);
    }

    return PT_OK;
}


static int
pt_metrics_handler(pt_http_request_t *r)
{
    char               *text;
    size_t              len;
    pt_metrics_root_t  *root;

    if (!(r->method & (PT_HTTP_GET | PT_HTTP_HEAD))) {
        if (pt_http_header_out_set(r, "Allow", 5, "GET, HEAD", 9) != PT_OK) {
            return PT_ERROR;
        }
        return 405;
    }

    root = pt_metrics_root();
    if (root == NULL) {
        return PT_ERROR;
    }

    text = pt_metrics_text(r, root, &len);
    if (text == NULL) {
        return PT_ERROR;
    }

    pt_http_finalize(r, pt_http_send_response(r, 200,
                                              "text/plain; version=0.0.4; "
                                              "charset=utf-8", text, len));

    return PT_DONE;
}
