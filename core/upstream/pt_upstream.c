/*
 * pt_upstream.c: the "upstream" module's configuration: `upstreams:`
 * (targets, discovery, timeouts, keepalive, retries, max_inflight, tls),
 * `resolver:`, and a route's `upstream:` action. The peers, their shared
 * state and the connections are in pt_upstream_peer.c; DNS in
 * pt_upstream_dns.c.
 */

#include "pt_upstream.h"
#include "pt_upstream_conf.h"
#include "pt_websocket.h"
#include "pt_ssl.h"
#include "pt_string.h"
#include "pt_time.h"


static void *pt_upstream_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_upstream_validate(pt_conf_t *cf, void *conf);
static int pt_upstream_postconfig(pt_conf_t *cf);
static int pt_upstream_init_master(pt_cycle_t *cycle);
static int pt_upstream_set_upstreams(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_targets(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_timeouts(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_keepalive(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_route(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_websocket(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_int(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_discovery(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_tls(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_resolver(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_passive(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);

extern int pt_proxy_handler(pt_http_request_t *r);


static const pt_conf_bounds_t  pt_upstream_retries_bounds = { 0, 10 };
static const pt_conf_bounds_t  pt_upstream_inflight_bounds = { 1, 10000000 };

static const pt_command_t  pt_upstream_commands[] = {

    { "upstreams", PT_CONF_GLOBAL | PT_CONF_MAP, pt_upstream_set_upstreams,
      0, NULL },

    { "targets", PT_CONF_UPSTREAM | PT_CONF_SEQ, pt_upstream_set_targets,
      0, NULL },

    { "timeouts", PT_CONF_UPSTREAM | PT_CONF_MAP, pt_upstream_set_timeouts,
      0, NULL },

    { "keepalive", PT_CONF_UPSTREAM | PT_CONF_SCALAR,
      pt_upstream_set_keepalive, 0, NULL },

    { "retries", PT_CONF_UPSTREAM | PT_CONF_SCALAR, pt_upstream_set_int,
      offsetof(pt_upstream_t, retries), &pt_upstream_retries_bounds },

    { "max_inflight", PT_CONF_UPSTREAM | PT_CONF_SCALAR, pt_upstream_set_int,
      offsetof(pt_upstream_t, max_inflight), &pt_upstream_inflight_bounds },

    { "discovery", PT_CONF_UPSTREAM | PT_CONF_MAP, pt_upstream_set_discovery,
      0, NULL },

    { "tls", PT_CONF_UPSTREAM | PT_CONF_MAP, pt_upstream_set_tls, 0, NULL },

    /* health.active is the lb module's (the helper probes). */
    { "health.passive", PT_CONF_UPSTREAM | PT_CONF_SCALAR | PT_CONF_MAP,
      pt_upstream_set_passive, 0, NULL },

    { "resolver", PT_CONF_GLOBAL | PT_CONF_MAP, pt_upstream_set_resolver,
      0, NULL },

    { "upstream", PT_CONF_ROUTE | PT_CONF_SCALAR, pt_upstream_set_route,
      0, NULL },

    { "websocket", PT_CONF_ROUTE | PT_CONF_SCALAR, pt_upstream_set_websocket,
      0, NULL },

    pt_null_command
};


pt_module_t  pt_upstream_module = {
    .name = "upstream",
    .abi = PT_MODULE_ABI,
    .commands = pt_upstream_commands,
    .create_conf = pt_upstream_create_conf,
    .validate = pt_upstream_validate,
    .postconfig = pt_upstream_postconfig,
    .init_master = pt_upstream_init_master,
    .exit_master = pt_upstream_groups_free,
    .exit_worker = pt_upstream_exit_worker,
    .init_helper = pt_upstream_init_helper,
    .exit_helper = pt_upstream_exit_helper,
};


static void *
pt_upstream_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_upstream_main_conf_t   *umcf;
    pt_upstream_route_conf_t  *urcf;

    if (level == PT_CONF_LEVEL_ROUTE) {
        urcf = pt_pcalloc(cf->pool, sizeof(pt_upstream_route_conf_t));
        return urcf ? urcf : PT_CONF_ERROR_PTR;
    }

    if (level != PT_CONF_LEVEL_GLOBAL) {
        return NULL;
    }

    umcf = pt_pcalloc(cf->pool, sizeof(pt_upstream_main_conf_t));
    if (umcf == NULL
        || pt_array_init(&umcf->upstreams, cf->pool, 4, sizeof(void *))
           != PT_OK
        || pt_array_init(&umcf->resolver.servers, cf->pool, 2,
                         sizeof(pt_addr_t)) != PT_OK)
    {
        return PT_CONF_ERROR_PTR;
    }

    return umcf;
}


pt_array_t *
pt_upstreams(pt_cycle_t *cycle)
{
    pt_upstream_main_conf_t  *umcf;

    umcf = cycle->conf[pt_upstream_module.index];

    return &umcf->upstreams;
}


pt_upstream_t *
pt_upstream_of_route(pt_route_t *route)
{
    pt_upstream_route_conf_t  *urcf;

    urcf = route->conf[pt_upstream_module.index];

    return urcf ? urcf->upstream : NULL;
}


int
pt_upstream_route_websocket(pt_route_t *route)
{
    pt_upstream_route_conf_t  *urcf;

    urcf = route->conf[pt_upstream_module.index];

    return urcf ? urcf->websocket : 0;
}


pt_upstream_t *
pt_upstream_find(pt_cycle_t *cycle, const pt_str_t *name)
{
    size_t           i;
    pt_array_t      *a;
    pt_upstream_t  **us;

    a = pt_upstreams(cycle);
    us = a->elts;

    for (i = 0; i < a->nelts; i++) {
        if (!us[i]->internal && pt_str_equal(&us[i]->name, name)) {
            return us[i];
        }
    }

    return NULL;
}


/* An upstream with the defaults, in the cycle's list and a scope of its
 * own (so every module's upstream-level config exists for it). */
static pt_upstream_t *
pt_upstream_new(pt_conf_t *cf, pt_upstream_main_conf_t *umcf,
    pt_yaml_node_t *node)
{
    pt_upstream_t   *us, **slot;

    us = pt_pcalloc(cf->pool, sizeof(pt_upstream_t));
    if (us == NULL) {
        return NULL;
    }

    us->name = node->scalar;
    us->node = node;
    us->connect_timeout = PT_CONF_UNSET_MSEC;
    us->read_timeout = PT_CONF_UNSET_MSEC;
    us->write_timeout = PT_CONF_UNSET_MSEC;
    us->keepalive = PT_UPSTREAM_KEEPALIVE_AUTO;
    us->retries = 0;
    us->max_fails = 1;
    us->fail_timeout = 10000;
    us->balancer = &pt_upstream_round_robin;

    if (pt_array_init(&us->targets, cf->pool, 4,
                      sizeof(pt_upstream_target_t)) != PT_OK)
    {
        return NULL;
    }

    us->conf = pt_conf_create_level(cf, PT_CONF_LEVEL_UPSTREAM);
    if (us->conf == NULL) {
        return NULL;
    }

    slot = pt_array_push(&umcf->upstreams);
    if (slot == NULL) {
        return NULL;
    }
    *slot = us;

    if (pt_conf_scope_add(cf, PT_CONF_LEVEL_UPSTREAM, us, us->conf)
        != PT_OK)
    {
        return NULL;
    }

    return us;
}


static int
pt_upstream_set_upstreams(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                       rc;
    size_t                    i;
    pt_conf_t                 save;
    pt_upstream_t            *us;
    pt_yaml_node_t           *key, *value;
    pt_upstream_main_conf_t  *umcf;

    umcf = conf;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key;
        value = node->pairs[i].value;

        if (pt_conf_expect(cf, value, PT_YAML_MAP, "upstreams") != PT_OK) {
            rc = PT_ERROR;
            continue;
        }

        /* ':' marks the gateway's own upstreams (pt_upstream_add_url). */
        if (memchr(key->scalar.data, ':', key->scalar.len)) {
            rc = pt_conf_error(cf, key,
                               "upstream \"%s\": a name may not hold ':' (kept for the gateway's own upstreams, such as jwks:ISSUER)",
                               key->scalar.data);
            continue;
        }

        us = pt_upstream_new(cf, umcf, key);
        if (us == NULL) {
            return PT_ERROR;
        }

        save = *cf;
        cf->level = PT_CONF_LEVEL_UPSTREAM;
        cf->scope = us;
        cf->ctx = us->conf;

        if (pt_conf_dispatch(cf, value, NULL) != PT_OK) {
            rc = PT_ERROR;
        }

        cf->level = save.level;
        cf->scope = save.scope;
        cf->ctx = save.ctx;

        /* TLS names the peer by the first target's host unless told
         * otherwise (the SRV name for discovery). */
        if (us->ssl && us->server_name.len == 0) {
            if (us->srv.len) {
                us->server_name = us->srv;
            } else if (us->targets.nelts) {
                us->server_name =
                    ((pt_upstream_target_t *) us->targets.elts)[0].addr.host;
            }
        }

        if (us->targets.nelts == 0 && us->srv.len == 0) {
            rc = pt_conf_error(cf, key,
                               "upstream \"%s\" has no targets (targets, or discovery: dns_srv)",
                               key->scalar.data);

        } else if (us->targets.nelts && us->srv.len) {
            rc = pt_conf_error(cf, key,
                               "upstream \"%s\": give targets or discovery, not both",
                               key->scalar.data);
        }

        if (us->connect_timeout == PT_CONF_UNSET_MSEC) {
            us->connect_timeout = 2000;
        }
        if (us->read_timeout == PT_CONF_UNSET_MSEC) {
            us->read_timeout = 30000;
        }
        if (us->write_timeout == PT_CONF_UNSET_MSEC) {
            us->write_timeout = 30000;
        }
    }

    return rc;
}


static int
pt_upstream_set_targets(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                    rc;
    size_t                 i, j;
    int64_t                w;
    const char            *reason;
    pt_upstream_t         *us;
    pt_yaml_node_t        *item, *addr, *key;
    pt_upstream_target_t  *t;

    us = cf->scope;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        item = node->items[i];
        addr = item;
        w = 1;

        if (item->type == PT_YAML_MAP) {
            addr = NULL;

            for (j = 0; j < item->n; j++) {
                key = item->pairs[j].key;

                if (strcmp(key->scalar.data, "address") == 0) {
                    addr = item->pairs[j].value;

                } else if (strcmp(key->scalar.data, "weight") == 0) {
                    if (item->pairs[j].value->type != PT_YAML_SCALAR
                        || pt_parse_int(item->pairs[j].value->scalar.data,
                                        item->pairs[j].value->scalar.len, 1,
                                        1000, &w, &reason) != PT_OK)
                    {
                        rc = pt_conf_error(cf, item->pairs[j].value,
                                           "weight: a number from 1 to 1000");
                    }

                } else {
                    rc = pt_conf_error(cf, key,
                                       "unknown key \"%s\" in a target",
                                       key->scalar.data);
                }
            }

            if (addr == NULL) {
                rc = pt_conf_error(cf, item, "target has no address");
                continue;
            }
        }

        if (addr->type != PT_YAML_SCALAR) {
            rc = pt_conf_error(cf, addr,
                               "target address: expected a scalar, got a %s",
                               pt_yaml_type_name(addr));
            continue;
        }

        t = pt_array_push(&us->targets);
        if (t == NULL) {
            return PT_ERROR;
        }

        memset(t, 0, sizeof(pt_upstream_target_t));
        t->node = addr;
        t->weight = (pt_int_t) w;

        if (pt_parse_addr(addr->scalar.data, addr->scalar.len, 0, &t->addr,
                          &reason) != PT_OK)
        {
            rc = pt_conf_error(cf, addr, "target address: %s: \"%s\"",
                               reason, addr->scalar.data);
            continue;
        }

        if (t->addr.is_name) {
            us->dynamic = 1;    /* resolved at load, then as TTLs run out */
        }
    }

    return rc;
}


static int
pt_upstream_set_timeouts(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int              rc;
    size_t           i;
    pt_msec_t       *ms;
    pt_upstream_t   *us;
    pt_yaml_node_t  *key;

    us = cf->scope;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key;

        if (strcmp(key->scalar.data, "connect") == 0) {
            ms = &us->connect_timeout;
        } else if (strcmp(key->scalar.data, "read") == 0) {
            ms = &us->read_timeout;
        } else if (strcmp(key->scalar.data, "write") == 0) {
            ms = &us->write_timeout;
        } else {
            rc = pt_conf_error(cf, key,
                               "unknown key \"%s\" in timeouts (connect, read, write)",
                               key->scalar.data);
            continue;
        }

        if (pt_conf_parse_msec(cf, node->pairs[i].value, ms) != PT_OK) {
            rc = PT_ERROR;
        } else if (*ms == 0) {
            rc = pt_conf_error(cf, node->pairs[i].value,
                               "timeouts: must be above 0");
        }
    }

    return rc;
}


static int
pt_upstream_set_keepalive(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int64_t         v;
    const char     *reason;
    pt_upstream_t  *us;

    us = cf->scope;

    if (strcmp(node->scalar.data, "auto") == 0) {
        us->keepalive = PT_UPSTREAM_KEEPALIVE_AUTO;
        return PT_OK;
    }

    if (pt_parse_int(node->scalar.data, node->scalar.len, 0,
                     PT_UPSTREAM_KEEPALIVE_MAX, &v, &reason) != PT_OK)
    {
        return pt_conf_error(cf, node,
                             "keepalive: a number from 0 to %d, or auto: \"%s\"",
                             PT_UPSTREAM_KEEPALIVE_MAX,
                             node->scalar.data);
    }

    us->keepalive = (pt_int_t) v;

    return PT_OK;
}


static int
pt_upstream_set_route(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    pt_upstream_route_conf_t  *urcf;

    urcf = conf;
    urcf->node = node;

    return pt_route_set_content(cf, node, "upstream", pt_proxy_handler);
}


/* websocket: true lets a WebSocket upgrade through to the upstream. */
static int
pt_upstream_set_websocket(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    pt_upstream_route_conf_t  *urcf;

    urcf = conf;
    urcf->websocket_node = node;

    if (pt_conf_parse_flag(cf, node, &urcf->websocket) != PT_OK) {
        return PT_ERROR;
    }

    if (urcf->websocket && pt_ws_init() != PT_OK) {
        return pt_conf_error(cf, node,
                             "websocket: OpenSSL has no SHA-1 for the handshake");
    }

    return PT_OK;
}


static int
pt_upstream_validate(pt_conf_t *cf, void *conf)
{
    pt_upstream_route_conf_t  *urcf;

    if (cf->level != PT_CONF_LEVEL_ROUTE) {
        return PT_OK;
    }

    urcf = conf;

    if (urcf->websocket && urcf->node) {
        ((pt_route_t *) cf->scope)->tunnels = 1;
    }

    if (urcf->node == NULL) {
        if (urcf->websocket) {
            return pt_conf_error(cf, urcf->websocket_node,
                                 "websocket: needs the upstream: action on the route");
        }

        return PT_OK;
    }

    urcf->upstream = pt_upstream_find(cf->cycle, &urcf->node->scalar);

    if (urcf->upstream == NULL) {
        return pt_conf_error(cf, urcf->node, "unknown upstream \"%s\"",
                             urcf->node->scalar.data);
    }

    return PT_OK;
}


static int
pt_upstream_set_int(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int64_t                  v;
    const char              *reason;
    const pt_conf_bounds_t  *b;

    b = cmd->post;

    if (pt_parse_int(node->scalar.data, node->scalar.len, b->min, b->max,
                     &v, &reason) != PT_OK)
    {
        return pt_conf_error(cf, node, "%s: a number from %lld to %lld: \"%s\"",
                             cmd->name, (long long) b->min,
                             (long long) b->max, node->scalar.data);
    }

    *(pt_int_t *) ((char *) cf->scope + cmd->offset) = (pt_int_t) v;

    return PT_OK;
}


/* health: passive: { failures: 3, cooldown: 10s }, or off (true gives the
 * defaults of the map form). */
static int
pt_upstream_set_passive(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int              on;
    size_t           i;
    int64_t          v;
    const char      *key;
    pt_upstream_t   *us;
    pt_yaml_node_t  *value;

    us = cf->scope;
    us->passive_set = 1;
    us->max_fails = 3;
    us->fail_timeout = 10000;

    if (node->type == PT_YAML_SCALAR) {
        if (pt_conf_parse_flag(cf, node, &on) != PT_OK) {
            return PT_ERROR;
        }

        us->max_fails = on ? us->max_fails : 0;
        return PT_OK;
    }

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key->scalar.data;
        value = node->pairs[i].value;

        if (strcmp(key, "failures") == 0) {
            if (pt_conf_parse_int(cf, value, "health: passive: failures", 1,
                                  100, &v) != PT_OK)
            {
                return PT_ERROR;
            }

            us->max_fails = (pt_uint_t) v;

        } else if (strcmp(key, "cooldown") == 0) {
            if (pt_conf_parse_msec(cf, value, &us->fail_timeout) != PT_OK) {
                return PT_ERROR;
            }

        } else {
            return pt_conf_error(cf, node->pairs[i].key,
                                 "unknown key \"%s\" in health: passive (failures, cooldown)",
                                 key);
        }
    }

    return PT_OK;
}


static int
pt_upstream_set_discovery(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    size_t           i;
    pt_upstream_t   *us;
    pt_yaml_node_t  *key, *value;

    us = cf->scope;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key;
        value = node->pairs[i].value;

        if (strcmp(key->scalar.data, "dns_srv") != 0) {
            return pt_conf_error(cf, key,
                                 "unknown key \"%s\" in discovery (dns_srv)",
                                 key->scalar.data);
        }

        if (pt_conf_expect(cf, value, PT_YAML_SCALAR, "discovery: dns_srv")
            != PT_OK)
        {
            return PT_ERROR;
        }

        if (value->scalar.len == 0 || value->scalar.len > 253) {
            return pt_conf_error(cf, value, "discovery: dns_srv: not a DNS name"
                                 );
        }

        us->srv = value->scalar;
        us->dynamic = 1;
    }

    return PT_OK;
}


static int
pt_upstream_set_tls(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int              verify;
    size_t           i;
    pt_str_t         ca;
    pt_upstream_t   *us;
    pt_yaml_node_t  *key, *value;

    us = cf->scope;
    verify = 1;
    ca.len = 0;
    ca.data = "";

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key;
        value = node->pairs[i].value;

        if (strcmp(key->scalar.data, "verify") == 0) {
            if (pt_conf_parse_flag(cf, value, &verify) != PT_OK) {
                return PT_ERROR;
            }

        } else if (strcmp(key->scalar.data, "ca") == 0) {
            if (pt_conf_expect(cf, value, PT_YAML_SCALAR, "tls: ca") != PT_OK
                || pt_conf_full_path(cf, &value->scalar, &ca) != PT_OK)
            {
                return PT_ERROR;
            }

        } else if (strcmp(key->scalar.data, "server_name") == 0) {
            if (pt_conf_expect(cf, value, PT_YAML_SCALAR, "tls: server_name")
                != PT_OK)
            {
                return PT_ERROR;
            }
            us->server_name = value->scalar;

        } else {
            return pt_conf_error(cf, key,
                                 "unknown key \"%s\" in tls (verify, ca, server_name)",
                                 key->scalar.data);
        }
    }

    us->ssl = pt_ssl_client_ctx(cf, node, &ca, verify);

    return us->ssl ? PT_OK : PT_ERROR;
}


/* resolver: { servers: [127.0.0.1:53], valid: 30s } */
static int
pt_upstream_set_resolver(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    size_t                    i, j;
    pt_addr_t                *a;
    const char               *reason;
    pt_yaml_node_t           *key, *value, *item;
    pt_upstream_main_conf_t  *umcf;

    umcf = conf;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key;
        value = node->pairs[i].value;

        if (strcmp(key->scalar.data, "valid") == 0) {
            if (pt_conf_parse_msec(cf, value, &umcf->resolver.valid)
                != PT_OK)
            {
                return PT_ERROR;
            }
            continue;
        }

        if (strcmp(key->scalar.data, "servers") != 0) {
            return pt_conf_error(cf, key,
                                 "unknown key \"%s\" in resolver (servers, valid)",
                                 key->scalar.data);
        }

        if (pt_conf_expect(cf, value, PT_YAML_SEQ, "resolver: servers")
            != PT_OK)
        {
            return PT_ERROR;
        }

        for (j = 0; j < value->n; j++) {
            item = value->items[j];

            if (pt_conf_expect(cf, item, PT_YAML_SCALAR, "resolver: servers")
                != PT_OK)
            {
                return PT_ERROR;
            }

            a = pt_array_push(&umcf->resolver.servers);
            if (a == NULL) {
                return PT_ERROR;
            }

            if (pt_parse_addr(item->scalar.data, item->scalar.len, 53, a,
                              &reason) != PT_OK || a->is_name)
            {
                return pt_conf_error(cf, item,
                                     "resolver: servers: an IP address (and port): \"%s\"",
                                     item->scalar.data);
            }
        }
    }

    return PT_OK;
}


static int
pt_upstream_postconfig(pt_conf_t *cf)
{
    size_t                    i;
    pt_upstream_t           **us;
    pt_upstream_main_conf_t  *umcf;

    umcf = pt_upstream_main_conf(cf->cycle);
    us = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (us[i]->balancer->init
            && us[i]->balancer->init(cf, us[i]) != PT_OK)
        {
            return PT_ERROR;
        }

        /* Names and SRV records are followed by the helper process. */
        if (us[i]->dynamic) {
            pt_cycle_request_helper(cf);
        }
    }

    umcf->zone = pt_shm_zone_add(cf, "upstream", 128 * 1024, 1,
                                 &pt_upstream_module, pt_upstream_zone_init);

    return umcf->zone ? PT_OK : PT_ERROR;
}


/* In the master, after the zones exist: resolve names and SRV records
 * once, and publish every upstream's peers in the zone. */
static int
pt_upstream_init_master(pt_cycle_t *cycle)
{
    if (pt_upstream_groups_attach(cycle) != PT_OK) {
        return PT_ERROR;
    }

    return pt_upstream_resolve_all(cycle);
}


/* Timeouts of an internal upstream: a document server that takes longer
 * than this is as good as down, and the last good answer stands. */
#define PT_UPSTREAM_URL_CONNECT    5000
#define PT_UPSTREAM_URL_TIMEOUT    10000


pt_upstream_t *
pt_upstream_add_url(pt_conf_t *cf, pt_yaml_node_t *node, const char *name,
    const pt_str_t *host, uint16_t port, const pt_str_t *ca)
{
    char                     *text;
    size_t                    i, len, tlen;
    pt_str_t                  sn;
    pt_array_t               *a;
    const char               *reason;
    pt_upstream_t            *us, **all;
    pt_yaml_node_t           *id;
    pt_upstream_target_t     *t;
    pt_upstream_main_conf_t  *umcf;

    umcf = pt_upstream_main_conf(cf->cycle);
    len = strlen(name);

    if (memchr(name, ':', len) == NULL) {
        (void) pt_conf_error(cf, node,
                             "internal upstream \"%s\": the name needs a ':'",
                             name);
        return NULL;
    }

    a = &umcf->upstreams;
    all = a->elts;

    for (i = 0; i < a->nelts; i++) {
        if (all[i]->name.len == len
            && memcmp(all[i]->name.data, name, len) == 0)
        {
            (void) pt_conf_error(cf, node, "upstream \"%s\" exists already",
                                 name);
            return NULL;
        }
    }

    /* The name is the upstream's; the node only places its errors. */
    id = pt_pcalloc(cf->pool, sizeof(pt_yaml_node_t));
    if (id == NULL || pt_str_dup(cf->pool, &id->scalar, name, len) == NULL) {
        return NULL;
    }

    id->type = PT_YAML_SCALAR;
    id->file = node->file;
    id->line = node->line;
    id->col = node->col;

    us = pt_upstream_new(cf, umcf, id);
    if (us == NULL) {
        return NULL;
    }

    us->internal = 1;
    us->connect_timeout = PT_UPSTREAM_URL_CONNECT;
    us->read_timeout = PT_UPSTREAM_URL_TIMEOUT;
    us->write_timeout = PT_UPSTREAM_URL_TIMEOUT;
    us->keepalive = 1;
    us->retries = 1;

    /* "host:port" (brackets kept around IPv6) for the address parser. */
    text = pt_pnalloc(cf->pool, host->len + sizeof(":65535"));
    if (text == NULL) {
        return NULL;
    }

    tlen = (size_t) snprintf(text, host->len + sizeof(":65535"), "%.*s:%u",
                             (int) host->len, host->data, (unsigned) port);

    t = pt_array_push(&us->targets);
    if (t == NULL) {
        return NULL;
    }

    memset(t, 0, sizeof(pt_upstream_target_t));
    t->node = node;
    t->weight = 1;

    if (pt_parse_addr(text, tlen, 0, &t->addr, &reason) != PT_OK) {
        (void) pt_conf_error(cf, node, "\"%.*s\": %s", (int) host->len,
                             host->data, reason);
        return NULL;
    }

    us->dynamic = t->addr.is_name;

    /* The name to verify: the host without brackets, NUL-terminated. */
    if (pt_str_dup(cf->pool, &sn, t->addr.host.data, t->addr.host.len)
        == NULL)
    {
        return NULL;
    }

    us->server_name = sn;

    us->ssl = pt_ssl_client_ctx(cf, node, ca, 1);

    return us->ssl ? us : NULL;
}
