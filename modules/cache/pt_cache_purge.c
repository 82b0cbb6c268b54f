/*
 * pt_cache_purge.c: POST /cache/purge on the admin listener.
 *
 *   {"route": "users", "key": "GETapi.example.com/users/1?"}   one key
 *   {"route": "users", "prefix": "GETapi.example.com/users/"}  many
 *
 * answers {"purged": N}. A key's variants (Vary) go with it. The body is
 * read whole, at most PT_CACHE_PURGE_MAX bytes, and parsed with jansson.
 */

#include "pt_cache.h"
#include "pt_string.h"

#include <jansson.h>


#define PT_CACHE_PURGE_MAX   (64 * 1024)


/* The request's state is a pt_cache_ctx_t like any other (the filters
 * read the module's ctx), with the body in ctx->body. */
typedef pt_cache_ctx_t  pt_cache_purge_t;


static int pt_cache_purge_handler(pt_http_request_t *r);


int
pt_cache_purge_init(pt_conf_t *cf)
{
    if (pt_http_admin_route_add(cf, "/cache/purge", pt_cache_purge_handler)
        == NULL)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


static int
pt_cache_purge_reply(pt_http_request_t *r, unsigned status,
    const char *fmt, const char *arg, pt_uint_t n)
{
    char    *body;
    size_t   len;

    body = arg ? pt_psprintf(r->pool, &len, fmt, arg)
               : pt_psprintf(r->pool, &len, fmt, (unsigned long) n);
    if (body == NULL) {
        return PT_ERROR;
    }

    return pt_http_send_response(r, status, "application/json", body, len);
}


/* The configured route called name, if it caches. */
static pt_cache_conf_t *
pt_cache_purge_route(const char *name, size_t len)
{
    size_t                  i;
    pt_route_t            **routes;
    pt_http_main_conf_t    *hmcf;
    pt_cache_route_conf_t  *rcf;

    hmcf = pt_http_main_conf(pt_cycle);
    routes = hmcf->routes.elts;

    for (i = 0; i < hmcf->routes.nelts; i++) {
        rcf = routes[i]->conf[pt_cache_module.index];

        if (rcf && rcf->conf && routes[i]->name.len == len
            && memcmp(routes[i]->name.data, name, len) == 0)
        {
            return rcf->conf;
        }
    }

    return NULL;
}


static int
pt_cache_purge_run(pt_http_request_t *r, pt_cache_purge_t *pg)
{
    int                    prefix;
    json_t                *doc, *route, *key, *pre;
    pt_str_t               rname, k;
    pt_uint_t              n;
    json_error_t           err;
    pt_cache_conf_t       *conf;
    pt_cache_main_conf_t  *mcf;

    doc = json_loadb(pg->body.data, pg->body.len, JSON_REJECT_DUPLICATES, &err);

    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        return pt_cache_purge_reply(r, 400,
            "{\"error\":\"the body must be a JSON object: %s\"}\n",
            doc ? "not an object" : "invalid JSON", 0);
    }

    route = json_object_get(doc, "route");
    key = json_object_get(doc, "key");
    pre = json_object_get(doc, "prefix");

    if (!json_is_string(route) || (key == NULL) == (pre == NULL)
        || (key && !json_is_string(key)) || (pre && !json_is_string(pre))
        || json_object_size(doc) != 2)
    {
        json_decref(doc);
        return pt_cache_purge_reply(r, 400,
            "{\"error\":\"expected {\\\"route\\\": NAME, \\\"key\\\": KEY}"
            " or {\\\"route\\\": NAME, \\\"prefix\\\": PREFIX}\"}\n",
            NULL, 0);
    }

    rname.data = (char *) json_string_value(route);
    rname.len = json_string_length(route);

    conf = pt_cache_purge_route(rname.data, rname.len);
    if (conf == NULL) {
        json_decref(doc);
        return pt_cache_purge_reply(r, 404,
            "{\"error\":\"no route of that name has a cache\"}\n", NULL, 0);
    }

    prefix = (pre != NULL);
    k.data = (char *) json_string_value(prefix ? pre : key);
    k.len = json_string_length(prefix ? pre : key);

    mcf = pt_cycle->conf[pt_cache_module.index];
    n = pt_cache_purge(mcf->zone->data, &conf->route, &k, prefix);

    pt_http_log_request(r, PT_LOG_NOTICE,
                        "cache: purged %lu entries of route \"%s\" by %s",
                        (unsigned long) n, conf->route.data,
                        prefix ? "prefix" : "key");

    json_decref(doc);

    return pt_cache_purge_reply(r, 200, "{\"purged\":%lu}\n", NULL, n);
}


static void
pt_cache_purge_read(pt_http_request_t *r)
{
    int                rc;
    size_t             n;
    pt_cache_purge_t  *pg;

    pg = pt_http_get_module_ctx(r, pt_cache_module);

    for ( ;; ) {
        if (pg->body.len == PT_CACHE_PURGE_MAX) {
            pt_http_finalize(r, 413);
            return;
        }

        rc = pt_http_read_body(r, pg->body.data + pg->body.len,
                               PT_CACHE_PURGE_MAX - pg->body.len, &n);

        if (rc == PT_OK) {
            pg->body.len += n;
            continue;
        }

        if (rc == PT_AGAIN) {
            return;
        }

        if (rc == PT_DONE) {
            r->read_event_handler = pt_http_block_reading;
            pt_http_finalize(r, pt_cache_purge_run(r, pg));
            return;
        }

        pt_http_finalize(r, rc);
        return;
    }
}


static int
pt_cache_purge_handler(pt_http_request_t *r)
{
    pt_cache_purge_t  *pg;

    if (r->method != PT_HTTP_POST) {
        if (pt_http_header_out_set(r, "Allow", 5, "POST", 4) != PT_OK) {
            return PT_ERROR;
        }
        return 405;
    }

    if (r->headers_in.content_length_n > PT_CACHE_PURGE_MAX) {
        return 413;
    }

    pg = pt_pcalloc(r->pool, sizeof(pt_cache_purge_t));
    if (pg == NULL) {
        return PT_ERROR;
    }

    pg->r = r;

    pg->body.data = pt_pnalloc(r->pool, PT_CACHE_PURGE_MAX);
    if (pg->body.data == NULL) {
        return PT_ERROR;
    }

    pt_http_set_module_ctx(r, pg, pt_cache_module);
    r->read_event_handler = pt_cache_purge_read;

    pt_cache_purge_read(r);

    return PT_DONE;
}
