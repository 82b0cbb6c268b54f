/*
 * pt_http_core.c: the "http" module: listeners, limits, the admin
 * listener, trusted proxies and the list of routes.
 */

#include "pt_http.h"
#include "pt_hash.h"
#include "pt_string.h"


static void *pt_http_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_http_merge_conf(pt_conf_t *cf, void *parent, void *child);
static int pt_http_validate(pt_conf_t *cf, void *conf);
static int pt_http_check_route_names(pt_conf_t *cf);
static int pt_http_postconfig(pt_conf_t *cf);
static int pt_http_set_limits(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_http_set_listen(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_http_set_admin(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_http_set_routes(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_http_set_trusted(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_http_set_route_name(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_http_set_listen_address(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_http_set_listen_backlog(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_http_set_listen_http2(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_http_set_rate(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_http_set_handler(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);


static const pt_command_t  pt_http_commands[] = {

    { "limits", PT_CONF_GLOBAL | PT_CONF_MAP, pt_http_set_limits, 0, NULL },

    { "listen", PT_CONF_GLOBAL | PT_CONF_SEQ, pt_http_set_listen, 0, NULL },

    { "admin", PT_CONF_GLOBAL | PT_CONF_MAP, pt_http_set_admin, 0, NULL },

    { "routes", PT_CONF_GLOBAL | PT_CONF_SEQ, pt_http_set_routes, 0, NULL },

    { "trusted_proxies", PT_CONF_GLOBAL | PT_CONF_SEQ, pt_http_set_trusted,
      0, NULL },

    { "name", PT_CONF_ROUTE | PT_CONF_SCALAR, pt_http_set_route_name, 0,
      NULL },

    { "timeout", PT_CONF_ROUTE | PT_CONF_SCALAR, pt_conf_set_msec,
      offsetof(pt_http_route_conf_t, timeout), NULL },

    { "handler", PT_CONF_ROUTE | PT_CONF_SCALAR, pt_http_set_handler, 0,
      NULL },

    { "address", PT_CONF_LISTEN | PT_CONF_SCALAR, pt_http_set_listen_address,
      0, NULL },

    { "backlog", PT_CONF_LISTEN | PT_CONF_SCALAR, pt_http_set_listen_backlog,
      0, NULL },

    { "tls", PT_CONF_LISTEN | PT_CONF_MAP, pt_http_tls_set, 0, NULL },
    { "http2", PT_CONF_LISTEN | PT_CONF_SCALAR, pt_http_set_listen_http2,
      0, NULL },

    pt_null_command
};


pt_module_t  pt_http_module = {
    .name = "http",
    .abi = PT_MODULE_ABI,
    .commands = pt_http_commands,
    .preconfig = pt_http_vars_preconfig,
    .create_conf = pt_http_create_conf,
    .merge_conf = pt_http_merge_conf,
    .validate = pt_http_validate,
    .postconfig = pt_http_postconfig,
    .init_conf = pt_http_build_engine,
    .init_master = pt_http_tls_init_master,
    .tick_master = pt_http_tls_tick_master,
};


static void *
pt_http_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_http_main_conf_t   *hmcf;
    pt_http_route_conf_t  *hrcf;

    if (level == PT_CONF_LEVEL_ROUTE) {
        hrcf = pt_pcalloc(cf->pool, sizeof(pt_http_route_conf_t));
        if (hrcf == NULL) {
            return PT_CONF_ERROR_PTR;
        }
        hrcf->timeout = PT_CONF_UNSET_MSEC;
        return hrcf;
    }

    if (level != PT_CONF_LEVEL_GLOBAL) {
        return NULL;
    }

    hmcf = pt_pcalloc(cf->pool, sizeof(pt_http_main_conf_t));
    if (hmcf == NULL) {
        return PT_CONF_ERROR_PTR;
    }

    hmcf->max_connections = PT_CONF_UNSET;
    hmcf->header_timeout = PT_CONF_UNSET_MSEC;
    hmcf->body_timeout = PT_CONF_UNSET_MSEC;
    hmcf->idle_timeout = PT_CONF_UNSET_MSEC;
    hmcf->send_timeout = PT_CONF_UNSET_MSEC;
    hmcf->graceful_timeout = PT_CONF_UNSET_MSEC;
    hmcf->handshake_timeout = PT_CONF_UNSET_MSEC;
    hmcf->websocket_idle_timeout = PT_CONF_UNSET_MSEC;
    hmcf->max_header_size = PT_CONF_UNSET_SIZE;
    hmcf->max_body_size = PT_CONF_UNSET_SIZE;
    hmcf->max_headers = PT_CONF_UNSET;
    hmcf->underscore_headers = PT_CONF_UNSET_UINT;
    hmcf->http2_max_concurrent_streams = PT_CONF_UNSET;
    hmcf->http2_max_header_list_size = PT_CONF_UNSET_SIZE;

    if (pt_array_init(&hmcf->listens, cf->pool, 4, sizeof(void *)) != PT_OK
        || pt_array_init(&hmcf->routes, cf->pool, 16, sizeof(void *))
           != PT_OK
        || pt_array_init(&hmcf->admin_routes, cf->pool, 4, sizeof(void *))
           != PT_OK
        || pt_array_init(&hmcf->trusted, cf->pool, 4, sizeof(pt_cidr_t))
           != PT_OK)
    {
        return PT_CONF_ERROR_PTR;
    }

    return hmcf;
}


static int
pt_http_merge_conf(pt_conf_t *cf, void *parent, void *child)
{
    pt_http_main_conf_t   *hmcf;
    pt_http_route_conf_t  *hrcf;

    if (cf->level == PT_CONF_LEVEL_ROUTE) {
        hrcf = child;
        pt_conf_merge_msec(hrcf->timeout, PT_CONF_UNSET_MSEC, 0);
        return PT_OK;
    }

    hmcf = child;

    pt_conf_merge_value(hmcf->max_connections, PT_CONF_UNSET, 10240);
    pt_conf_merge_msec(hmcf->header_timeout, PT_CONF_UNSET_MSEC, 10000);
    pt_conf_merge_msec(hmcf->body_timeout, PT_CONF_UNSET_MSEC, 60000);
    pt_conf_merge_msec(hmcf->idle_timeout, PT_CONF_UNSET_MSEC, 75000);
    pt_conf_merge_msec(hmcf->send_timeout, PT_CONF_UNSET_MSEC, 60000);
    pt_conf_merge_msec(hmcf->graceful_timeout, PT_CONF_UNSET_MSEC, 30000);
    pt_conf_merge_msec(hmcf->handshake_timeout, PT_CONF_UNSET_MSEC, 10000);
    pt_conf_merge_msec(hmcf->websocket_idle_timeout, PT_CONF_UNSET_MSEC,
                       300000);
    pt_conf_merge_size(hmcf->max_header_size, PT_CONF_UNSET_SIZE, 16384);
    pt_conf_merge_size(hmcf->max_body_size, PT_CONF_UNSET_SIZE,
                       (size_t) 10 * 1024 * 1024);
    pt_conf_merge_value(hmcf->max_headers, PT_CONF_UNSET, 100);

    if (hmcf->underscore_headers == PT_CONF_UNSET_UINT) {
        hmcf->underscore_headers = PT_HTTP_UNDERSCORE_DROP;
    }

    pt_conf_merge_value(hmcf->http2_max_concurrent_streams, PT_CONF_UNSET,
                        128);
    pt_conf_merge_size(hmcf->http2_max_header_list_size, PT_CONF_UNSET_SIZE,
                       64 * 1024);

    if (hmcf->http2_reset_rate.period == 0) {
        hmcf->http2_reset_rate.count = 100;
        hmcf->http2_reset_rate.period = 1000;
    }

    if (hmcf->http2_control_rate.period == 0) {
        hmcf->http2_control_rate.count = 1000;
        hmcf->http2_control_rate.period = 1000;
    }

    return PT_OK;
}


static int
pt_http_validate(pt_conf_t *cf, void *conf)
{
    pt_route_t  *route;

    if (cf->level == PT_CONF_LEVEL_GLOBAL) {
        return pt_http_check_route_names(cf);
    }

    if (cf->level != PT_CONF_LEVEL_ROUTE) {
        return PT_OK;
    }

    route = cf->scope;

    if (route->name.len == 0) {
        return pt_conf_error(cf, route->node, "route has no name");
    }

    if (route->content == NULL) {
        return pt_conf_error(cf, route->node,
                             "route \"%s\" has no action (one of upstream, respond, redirect, handler)",
                             route->name.data);
    }

    return PT_OK;
}


/* Route names are unique; a hash keeps 10,000 routes from costing 50
 * million comparisons. Its pool goes when the check is done. */
static int
pt_http_check_route_names(pt_conf_t *cf)
{
    int                   rc, added;
    void                 *old;
    size_t                i, n;
    pt_hash_t             names;
    pt_pool_t            *pool;
    pt_route_t          **routes, *first;
    pt_http_main_conf_t  *hmcf;

    hmcf = pt_http_main_conf(cf->cycle);
    routes = hmcf->routes.elts;
    n = hmcf->routes.nelts;

    pool = pt_pool_create(PT_POOL_DEFAULT_SIZE);
    if (pool == NULL || pt_hash_init(&names, pool, n, 0) != PT_OK) {
        pt_pool_destroy(pool);
        return PT_ERROR;
    }

    rc = PT_OK;

    for (i = 0; i < n; i++) {
        if (routes[i]->name.len == 0) {
            continue;
        }

        added = pt_hash_add(&names, routes[i]->name.data, routes[i]->name.len,
                            routes[i], &old);

        if (added == PT_DECLINED) {
            first = old;
            rc = pt_conf_error(cf, routes[i]->node,
                               "duplicate route name \"%s\" (first at %u:%u)",
                               routes[i]->name.data, first->node->line,
                               first->node->col);
            continue;
        }

        if (added != PT_OK) {
            rc = PT_ERROR;
            break;
        }
    }

    pt_pool_destroy(pool);

    return rc;
}


static const pt_conf_enum_t  pt_http_underscore_values[] = {
    { "drop", PT_HTTP_UNDERSCORE_DROP },
    { "allow", PT_HTTP_UNDERSCORE_ALLOW },
    { "reject", PT_HTTP_UNDERSCORE_REJECT },
    { NULL, 0 }
};

static const pt_command_t  pt_http_limits[] = {
    { "max_connections", 0, pt_conf_set_num,
      offsetof(pt_http_main_conf_t, max_connections), NULL },
    { "header_timeout", 0, pt_conf_set_msec,
      offsetof(pt_http_main_conf_t, header_timeout), NULL },
    { "body_timeout", 0, pt_conf_set_msec,
      offsetof(pt_http_main_conf_t, body_timeout), NULL },
    { "idle_timeout", 0, pt_conf_set_msec,
      offsetof(pt_http_main_conf_t, idle_timeout), NULL },
    { "send_timeout", 0, pt_conf_set_msec,
      offsetof(pt_http_main_conf_t, send_timeout), NULL },
    { "graceful_timeout", 0, pt_conf_set_msec,
      offsetof(pt_http_main_conf_t, graceful_timeout), NULL },
    { "handshake_timeout", 0, pt_conf_set_msec,
      offsetof(pt_http_main_conf_t, handshake_timeout), NULL },
    { "websocket_idle_timeout", 0, pt_conf_set_msec,
      offsetof(pt_http_main_conf_t, websocket_idle_timeout), NULL },
    { "max_header_size", 0, pt_conf_set_size,
      offsetof(pt_http_main_conf_t, max_header_size), NULL },
    { "max_body_size", 0, pt_conf_set_size,
      offsetof(pt_http_main_conf_t, max_body_size), NULL },
    { "max_headers", 0, pt_conf_set_num,
      offsetof(pt_http_main_conf_t, max_headers), NULL },
    { "underscore_headers", 0, pt_conf_set_enum,
      offsetof(pt_http_main_conf_t, underscore_headers),
      pt_http_underscore_values },
    { "http2_max_concurrent_streams", 0, pt_conf_set_num,
      offsetof(pt_http_main_conf_t, http2_max_concurrent_streams), NULL },
    { "http2_max_header_list_size", 0, pt_conf_set_size,
      offsetof(pt_http_main_conf_t, http2_max_header_list_size), NULL },
    { "http2_reset_rate", 0, pt_http_set_rate,
      offsetof(pt_http_main_conf_t, http2_reset_rate), NULL },
    { "http2_control_rate", 0, pt_http_set_rate,
      offsetof(pt_http_main_conf_t, http2_control_rate), NULL },
    pt_null_command
};

static const pt_conf_bounds_t  pt_http_max_conn_bounds = { 1, 1000000 };
static const pt_conf_bounds_t  pt_http_max_headers_bounds = { 8, 1000 };
static const pt_conf_bounds_t  pt_http2_streams_bounds = { 1, 65536 };


static int
pt_http_set_limits(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                  rc;
    size_t               i;
    pt_command_t         c;
    pt_yaml_node_t      *key;
    const pt_command_t  *l;
    pt_http_main_conf_t *hmcf;

    rc = PT_OK;
    hmcf = conf;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key;

        for (l = pt_http_limits; l->name; l++) {
            if (strcmp(l->name, key->scalar.data) == 0) {
                break;
            }
        }

        if (l->name == NULL) {
            rc = pt_conf_error(cf, key, "unknown key \"%s\" in limits",
                               key->scalar.data);
            continue;
        }

        c = *l;
        if (strcmp(l->name, "max_connections") == 0) {
            c.post = &pt_http_max_conn_bounds;
        } else if (strcmp(l->name, "max_headers") == 0) {
            c.post = &pt_http_max_headers_bounds;
        } else if (strcmp(l->name, "http2_max_concurrent_streams") == 0) {
            c.post = &pt_http2_streams_bounds;
        }

        if (c.set(cf, &c, node->pairs[i].value, conf) != PT_OK) {
            rc = PT_ERROR;
        }
    }

    if (hmcf->handshake_timeout == 0) {
        rc = pt_conf_error(cf, node,
                           "limits: handshake_timeout must be above 0");
    }

    if (hmcf->max_header_size != PT_CONF_UNSET_SIZE
        && (hmcf->max_header_size < 1024
            || hmcf->max_header_size > 1024 * 1024))
    {
        rc = pt_conf_error(cf, node,
                           "limits: max_header_size must be between 1k and 1m");
    }

    if (hmcf->http2_max_header_list_size != PT_CONF_UNSET_SIZE
        && (hmcf->http2_max_header_list_size < 1024
            || hmcf->http2_max_header_list_size > 16 * 1024 * 1024))
    {
        rc = pt_conf_error(cf, node,
                           "limits: http2_max_header_list_size must be between 1k and 16m");
    }

    /* A tunnel that nothing ever closes would hold its slot for good. */
    if (hmcf->websocket_idle_timeout == 0) {
        rc = pt_conf_error(cf, node,
                           "limits: websocket_idle_timeout must be above 0");
    }

    return rc;
}


/* A rate of SPEC 2's form ("100/s"), per connection. */
static int
pt_http_set_rate(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    const char  *reason;
    pt_rate_t   *rate;

    if (pt_conf_expect(cf, node, PT_YAML_SCALAR, cmd->name) != PT_OK) {
        return PT_ERROR;
    }

    rate = (pt_rate_t *) ((char *) conf + cmd->offset);

    if (pt_parse_rate(node->scalar.data, node->scalar.len, rate, &reason)
        != PT_OK)
    {
        return pt_conf_error(cf, node, "%s: %s: \"%s\"", cmd->name, reason,
                             node->scalar.data);
    }

    return PT_OK;
}


static pt_http_listen_t *
pt_http_listen_create(pt_conf_t *cf, pt_yaml_node_t *node, int admin)
{
    pt_http_listen_t      *hl, **slot;
    pt_http_main_conf_t   *hmcf;

    hmcf = pt_http_main_conf(cf->cycle);

    hl = pt_pcalloc(cf->pool, sizeof(pt_http_listen_t));
    if (hl == NULL) {
        return NULL;
    }

    hl->node = node;
    hl->admin = admin ? 1 : 0;
    hl->backlog = 511;

    hl->ctx = pt_conf_create_level(cf, PT_CONF_LEVEL_LISTEN);
    if (hl->ctx == NULL) {
        return NULL;
    }

    slot = pt_array_push(&hmcf->listens);
    if (slot == NULL) {
        return NULL;
    }

    *slot = hl;

    if (pt_conf_scope_add(cf, PT_CONF_LEVEL_LISTEN, hl, hl->ctx) != PT_OK) {
        return NULL;
    }

    return hl;
}


#define PT_HTTP_ADMIN_DEFAULT  "127.0.0.1:9090"


/* Parse one listener map in its own scope. */
static int
pt_http_listen_parse(pt_conf_t *cf, pt_yaml_node_t *node, int admin)
{
    int                rc;
    pt_conf_t          save;
    pt_http_listen_t  *hl;

    if (pt_conf_expect(cf, node, PT_YAML_MAP, admin ? "admin" : "listen")
        != PT_OK)
    {
        return PT_ERROR;
    }

    hl = pt_http_listen_create(cf, node, admin);
    if (hl == NULL) {
        return PT_ERROR;
    }

    save = *cf;
    cf->level = PT_CONF_LEVEL_LISTEN;
    cf->scope = hl;
    cf->ctx = hl->ctx;

    rc = pt_conf_dispatch(cf, node, NULL);

    cf->level = save.level;
    cf->scope = save.scope;
    cf->ctx = save.ctx;

    if (rc == PT_OK && hl->addr.socklen == 0) {
        /* The operator endpoints stay on loopback unless told otherwise. */
        if (admin && pt_yaml_map_get(node, "address") == NULL) {
            const char  *reason;

            if (pt_parse_addr(PT_HTTP_ADMIN_DEFAULT,
                              sizeof(PT_HTTP_ADMIN_DEFAULT) - 1, 0,
                              &hl->addr, &reason) != PT_OK)
            {
                return pt_conf_error(cf, node, "admin: %s", reason);
            }

            return PT_OK;
        }

        return pt_conf_error(cf, node, "%s: address is required",
                             admin ? "admin" : "listen");
    }

    return rc;
}


static int
pt_http_set_listen(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int     rc;
    size_t  i;

    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        if (pt_http_listen_parse(cf, node->items[i], 0) != PT_OK) {
            rc = PT_ERROR;
        }
    }

    return rc;
}


static int
pt_http_set_admin(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    pt_http_main_conf_t  *hmcf;

    hmcf = conf;
    hmcf->admin_node = node;

    return pt_http_listen_parse(cf, node, 1);
}


static int
pt_http_set_listen_address(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    const char        *reason;
    pt_http_listen_t  *hl;

    hl = cf->scope;

    if (pt_parse_addr(node->scalar.data, node->scalar.len, 0, &hl->addr,
                      &reason) != PT_OK)
    {
        return pt_conf_error(cf, node, "address: %s: \"%s\"", reason,
                             node->scalar.data);
    }

    if (hl->addr.is_name) {
        return pt_conf_error(cf, node,
                             "address: listen on an IP address, not a host name: \"%s\"",
                             node->scalar.data);
    }

    return PT_OK;
}


static int
pt_http_set_listen_backlog(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int64_t            v;
    const char        *reason;
    pt_http_listen_t  *hl;

    hl = cf->scope;

    if (pt_parse_int(node->scalar.data, node->scalar.len, 1, 65535, &v,
                     &reason) != PT_OK)
    {
        return pt_conf_error(cf, node, "backlog: %s: \"%s\"", reason,
                             node->scalar.data);
    }

    hl->backlog = (pt_int_t) v;

    return PT_OK;
}


static int
pt_http_set_listen_http2(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                v;
    const char        *reason;
    pt_http_listen_t  *hl;

    hl = cf->scope;

    if (pt_parse_bool(node->scalar.data, node->scalar.len, &v, &reason)
        != PT_OK)
    {
        return pt_conf_error(cf, node, "http2: %s: \"%s\"", reason,
                             node->scalar.data);
    }

    hl->http2 = v ? 1 : 0;

    return PT_OK;
}


static int
pt_http_set_trusted(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                   rc;
    size_t                i;
    pt_cidr_t            *cidr;
    const char           *reason;
    pt_yaml_node_t       *item;
    pt_http_main_conf_t  *hmcf;

    hmcf = conf;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        item = node->items[i];

        if (pt_conf_expect(cf, item, PT_YAML_SCALAR, "trusted_proxies")
            != PT_OK)
        {
            rc = PT_ERROR;
            continue;
        }

        cidr = pt_array_push(&hmcf->trusted);
        if (cidr == NULL) {
            return PT_ERROR;
        }

        if (pt_parse_cidr(item->scalar.data, item->scalar.len, cidr, &reason)
            != PT_OK)
        {
            rc = pt_conf_error(cf, item, "trusted_proxies: %s: \"%s\"",
                               reason, item->scalar.data);
        }
    }

    return rc;
}


static int
pt_http_set_routes(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                   rc;
    size_t                i;
    pt_conf_t             save;
    pt_route_t           *route, **slot;
    pt_yaml_node_t       *item;
    pt_http_main_conf_t  *hmcf;

    hmcf = conf;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        item = node->items[i];

        if (pt_conf_expect(cf, item, PT_YAML_MAP, "routes") != PT_OK) {
            rc = PT_ERROR;
            continue;
        }

        route = pt_pcalloc(cf->pool, sizeof(pt_route_t));
        if (route == NULL) {
            return PT_ERROR;
        }

        route->node = item;
        route->index = hmcf->routes.nelts;
        route->conf = pt_conf_create_level(cf, PT_CONF_LEVEL_ROUTE);
        if (route->conf == NULL) {
            return PT_ERROR;
        }

        slot = pt_array_push(&hmcf->routes);
        if (slot == NULL) {
            return PT_ERROR;
        }
        *slot = route;

        if (pt_conf_scope_add(cf, PT_CONF_LEVEL_ROUTE, route, route->conf)
            != PT_OK)
        {
            return PT_ERROR;
        }

        save = *cf;
        cf->level = PT_CONF_LEVEL_ROUTE;
        cf->scope = route;
        cf->ctx = route->conf;

        if (pt_conf_dispatch(cf, item, NULL) != PT_OK) {
            rc = PT_ERROR;
        }

        cf->level = save.level;
        cf->scope = save.scope;
        cf->ctx = save.ctx;
    }

    return rc;
}


static int
pt_http_set_route_name(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    size_t       i;
    pt_route_t  *route;

    route = cf->scope;

    if (node->scalar.len == 0 || node->scalar.len > 128) {
        return pt_conf_error(cf, node, "name: must be 1 to 128 characters");
    }

    /* Names appear in logs, metrics labels and JSON: keep them plain. */
    for (i = 0; i < node->scalar.len; i++) {
        if (!pt_http_is_tchar((unsigned char) node->scalar.data[i])
            && node->scalar.data[i] != '/' && node->scalar.data[i] != ':')
        {
            return pt_conf_error(cf, node,
                                 "name: \"%s\" may only hold letters, digits and -._~!#$&'*+^`|/:",
                                 node->scalar.data);
        }
    }

    route->name = node->scalar;

    return PT_OK;
}


int
pt_route_set_content(pt_conf_t *cf, pt_yaml_node_t *node, const char *key,
    pt_http_handler_pt h)
{
    pt_route_t  *route;

    route = cf->scope;

    if (route->content) {
        return pt_conf_error(cf, node,
                             "route has two actions: \"%s\" and \"%s\" (at %u:%u); keep one",
                             key, route->content_key,
                             route->content_node->line,
                             route->content_node->col);
    }

    route->content = h;
    route->content_key = key;
    route->content_node = node;

    return PT_OK;
}


/* The named handlers of `handler: NAME`. Modules register them in
 * preconfig, before any route is parsed, so the table lives outside the
 * per-load config; compiled-in modules register the same ones at every
 * load. */
#define PT_HTTP_MAX_NAMED   32

typedef struct {
    const char          *name;
    pt_http_handler_pt   handler;
} pt_http_named_t;

static pt_http_named_t  pt_http_named[PT_HTTP_MAX_NAMED];
static pt_uint_t        pt_http_nnamed;


int
pt_http_named_handler_add(pt_conf_t *cf, const char *name,
    pt_http_handler_pt h)
{
    pt_uint_t  i;

    for (i = 0; i < pt_http_nnamed; i++) {
        if (strcmp(pt_http_named[i].name, name) == 0) {
            if (pt_http_named[i].handler == h) {
                return PT_OK;       /* registered at an earlier load */
            }
            return pt_conf_error(cf, NULL, "handler \"%s\" is defined twice",
                                 name);
        }
    }

    if (pt_http_nnamed == PT_HTTP_MAX_NAMED) {
        return pt_conf_error(cf, NULL, "too many named handlers");
    }

    pt_http_named[pt_http_nnamed].name = name;
    pt_http_named[pt_http_nnamed].handler = h;
    pt_http_nnamed++;

    return PT_OK;
}


static int
pt_http_set_handler(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    char       names[512], *p, *end;
    pt_uint_t  i;

    for (i = 0; i < pt_http_nnamed; i++) {
        if (strcmp(node->scalar.data, pt_http_named[i].name) == 0) {
            return pt_route_set_content(cf, node, "handler",
                                        pt_http_named[i].handler);
        }
    }

    p = names;
    end = names + sizeof(names);
    *p = '\0';

    for (i = 0; i < pt_http_nnamed && p < end; i++) {
        p += snprintf(p, (size_t) (end - p), "%s%s", i ? ", " : "",
                      pt_http_named[i].name);
    }

    return pt_conf_error(cf, node, "handler: \"%s\" is not one of: %s",
                         node->scalar.data, names);
}


pt_route_t *
pt_http_admin_route_add(pt_conf_t *cf, const char *path, pt_http_handler_pt h)
{
    int                   rc;
    pt_conf_t             save;
    pt_route_t           *route, **slot;
    pt_http_main_conf_t  *hmcf;

    hmcf = pt_http_main_conf(cf->cycle);

    route = pt_pcalloc(cf->pool, sizeof(pt_route_t));
    if (route == NULL) {
        return NULL;
    }

    /* Admin endpoints are routes named after their path, with every
     * module's route config at its defaults. */
    route->name.data = pt_psprintf(cf->pool, &route->name.len, "admin:%s",
                                   path);
    route->conf = pt_conf_create_level(cf, PT_CONF_LEVEL_ROUTE);
    if (route->name.data == NULL || route->conf == NULL) {
        return NULL;
    }

    route->content = h;
    route->content_key = path;
    route->admin = 1;
    route->index = hmcf->admin_routes.nelts;

    save = *cf;
    cf->level = PT_CONF_LEVEL_ROUTE;
    cf->scope = route;
    cf->ctx = route->conf;

    rc = pt_conf_merge_level(cf, cf->cycle->conf, route->conf);

    cf->level = save.level;
    cf->scope = save.scope;
    cf->ctx = save.ctx;

    if (rc != PT_OK) {
        return NULL;
    }

    slot = pt_array_push(&hmcf->admin_routes);
    if (slot == NULL) {
        return NULL;
    }

    *slot = route;

    return route;
}


static int
pt_http_postconfig(pt_conf_t *cf)
{
    size_t                i;
    pt_listening_t       *ls, *other;
    pt_http_listen_t    **hl;
    pt_http_main_conf_t  *hmcf;

    hmcf = pt_http_main_conf(cf->cycle);
    hl = hmcf->listens.elts;

    /* The process code sizes workers and drains by these. */
    cf->cycle->max_connections = (pt_uint_t) hmcf->max_connections;
    cf->cycle->graceful_timeout = hmcf->graceful_timeout;

    for (i = 0; i < hmcf->listens.nelts; i++) {
        ls = pt_array_push(&cf->cycle->listening);
        if (ls == NULL) {
            return PT_ERROR;
        }

        memset(ls, 0, sizeof(pt_listening_t));
        ls->fd = -1;
        ls->addr = hl[i]->addr;
        ls->backlog = (int) hl[i]->backlog;
        ls->handler = pt_http_init_connection;
        ls->conf = hl[i];
        ls->admin = hl[i]->admin;

        /* A TLS client speaks first: the worker meets the connection
         * with its ClientHello (one wakeup, no empty read), and a client
         * that never speaks costs no worker until handshake_timeout. */
        if (hl[i]->ssl) {
            ls->defer_accept = (int) ((hmcf->handshake_timeout + 999) / 1000);
        }

        cf->cycle->listening.nelts--;
        other = pt_cycle_find_listener(cf->cycle, ls);
        cf->cycle->listening.nelts++;

        if (other) {
            return pt_conf_error(cf, hl[i]->node,
                                 "address %s is used by two listeners",
                                 ls->addr.text);
        }
    }

    if (pt_http_phase_add(cf, PT_HTTP_POST_READ_PHASE, pt_http_request_id,
                          100, &pt_http_module) != PT_OK
        || pt_http_phase_add(cf, PT_HTTP_POST_READ_PHASE, pt_http_trace,
                             110, &pt_http_module) != PT_OK
        || pt_http_body_filter_add(cf, pt_http_chunked_filter, 200,
                                   &pt_http_module) != PT_OK
        || pt_http_tls_postconfig(cf) != PT_OK)
    {
        return PT_ERROR;
    }

    return PT_OK;
}
