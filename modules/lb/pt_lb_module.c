/*
 * pt_lb_module.c: the "lb" module: how an upstream picks its peer and
 * watches their health.
 *
 *   balance: round_robin      smooth weighted (the default, in the core)
 *            least_conn       fewest requests in flight per weight, counted
 *                             across all workers in shared memory
 *            hash             consistent hashing of hash_key (pt_lb_hash.c)
 *            p2c              two random peers, the less loaded wins
 *   hash_key: ${header.X-User-ID}
 *   health:
 *     active: { path: /healthz, interval: 2s, timeout: 1s, healthy: 2,
 *               unhealthy: 3 }           probed once for the gateway
 *
 * (health: passive is the upstream module's: the proxy reports to it.)
 */

#include "pt_lb.h"
#include "pt_random.h"
#include "pt_string.h"


static void *pt_lb_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_lb_validate(pt_conf_t *cf, void *conf);
static int pt_lb_postconfig(pt_conf_t *cf);
static int pt_lb_init_master(pt_cycle_t *cycle);
static int pt_lb_set_balance(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_lb_set_hash_key(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_lb_set_health_active(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);


static const pt_command_t  pt_lb_commands[] = {

    { "balance", PT_CONF_UPSTREAM | PT_CONF_SCALAR, pt_lb_set_balance, 0,
      NULL },

    { "hash_key", PT_CONF_UPSTREAM | PT_CONF_SCALAR, pt_lb_set_hash_key, 0,
      NULL },

    /* health.passive belongs to the upstream module, with the rest of
     * what happens to a request's peer. */
    { "health.active", PT_CONF_UPSTREAM | PT_CONF_MAP,
      pt_lb_set_health_active, 0, NULL },

    pt_null_command
};


pt_module_t  pt_lb_module = {
    .name = "lb",
    .abi = PT_MODULE_ABI,
    .commands = pt_lb_commands,
    .create_conf = pt_lb_create_conf,
    .validate = pt_lb_validate,
    .postconfig = pt_lb_postconfig,
    .init_master = pt_lb_init_master,
    .init_helper = pt_lb_health_init_helper,
    .exit_helper = pt_lb_health_exit_helper,
};


/* Load per weight: a before b when a has fewer requests per weight. */
static int
pt_lb_lighter(pt_upstream_peer_t *a, pt_upstream_peer_t *b)
{
    return a->shared->inflight * (uint64_t) b->shared->weight
           < b->shared->inflight * (uint64_t) a->shared->weight;
}


static int
pt_lb_candidate(pt_upstream_t *us, pt_upstream_peer_t *p, uint64_t tried)
{
    return pt_upstream_peer_usable(p)
           && !(tried & pt_upstream_peer_bit(us, p));
}


/* Fewest in flight per weight across all workers; equals are taken in
 * turn from a rotating start, so they share the load. */
static pt_upstream_peer_t *
pt_lb_pick_least_conn(pt_http_request_t *r, pt_upstream_t *us,
    uint64_t tried)
{
    size_t               i, k;
    pt_upstream_peer_t  *p, *best;

    best = NULL;
    us->rr_next++;

    for (k = 0; k < us->npeers; k++) {
        i = (us->rr_next + k) % us->npeers;
        p = &us->peers[i];

        if (!pt_lb_candidate(us, p, tried)) {
            continue;
        }

        if (best == NULL || pt_lb_lighter(p, best)) {
            best = p;
        }
    }

    return best;
}


/* The power of two choices: two peers at random (weighted), the less
 * loaded one wins; nearly as good as least_conn without scanning. */
static pt_upstream_peer_t *
pt_lb_random(pt_upstream_t *us, uint64_t tried, pt_upstream_peer_t *not)
{
    size_t               i;
    uint64_t             total, x;
    pt_upstream_peer_t  *p;

    total = 0;

    for (i = 0; i < us->npeers; i++) {
        p = &us->peers[i];
        if (p != not && pt_lb_candidate(us, p, tried)) {
            total += (uint64_t) p->shared->weight;
        }
    }

    if (total == 0) {
        return NULL;
    }

    x = pt_random_u64() % total;

    for (i = 0; i < us->npeers; i++) {
        p = &us->peers[i];

        if (p == not || !pt_lb_candidate(us, p, tried)) {
            continue;
        }

        if (x < (uint64_t) p->shared->weight) {
            return p;
        }

        x -= (uint64_t) p->shared->weight;
    }

    return NULL;
}


static pt_upstream_peer_t *
pt_lb_pick_p2c(pt_http_request_t *r, pt_upstream_t *us, uint64_t tried)
{
    pt_upstream_peer_t  *a, *b;

    a = pt_lb_random(us, tried, NULL);
    if (a == NULL) {
        return NULL;
    }

    b = pt_lb_random(us, tried, a);
    if (b == NULL) {
        return a;
    }

    return pt_lb_lighter(b, a) ? b : a;
}


static const pt_upstream_balancer_t  pt_lb_least_conn = {
    "least_conn", NULL, NULL, pt_lb_pick_least_conn
};

static const pt_upstream_balancer_t  pt_lb_p2c = {
    "p2c", NULL, NULL, pt_lb_pick_p2c
};


static void *
pt_lb_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_lb_conf_t  *lcf;

    if (level != PT_CONF_LEVEL_UPSTREAM) {
        return NULL;
    }

    lcf = pt_pcalloc(cf->pool, sizeof(pt_lb_conf_t));

    return lcf ? lcf : PT_CONF_ERROR_PTR;
}


static int
pt_lb_set_balance(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    const char     *v;
    pt_upstream_t  *us;

    us = cf->scope;
    v = node->scalar.data;

    if (strcmp(v, "round_robin") == 0) {
        us->balancer = &pt_upstream_round_robin;
    } else if (strcmp(v, "least_conn") == 0) {
        us->balancer = &pt_lb_least_conn;
    } else if (strcmp(v, "hash") == 0) {
        us->balancer = &pt_lb_hash;
    } else if (strcmp(v, "p2c") == 0) {
        us->balancer = &pt_lb_p2c;
    } else {
        return pt_conf_error(cf, node,
                             "balance: \"%s\" is not one of: round_robin, least_conn, hash, p2c",
                             v);
    }

    return PT_OK;
}


static int
pt_lb_set_hash_key(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    pt_lb_conf_t  *lcf;

    lcf = conf;
    lcf->hash_node = node;
    lcf->hash_key = pt_template_compile(cf, node);

    return lcf->hash_key ? PT_OK : PT_ERROR;
}


static int
pt_lb_set_health_active(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    size_t           i;
    int64_t          v;
    const char      *key;
    pt_lb_conf_t    *lcf;
    pt_yaml_node_t  *value;

    lcf = conf;

    lcf->active = 1;
    pt_str_set(&lcf->path, "/");
    lcf->interval = 2000;
    lcf->timeout = 1000;
    lcf->healthy = 2;
    lcf->unhealthy = 3;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key->scalar.data;
        value = node->pairs[i].value;

        if (strcmp(key, "path") == 0) {
            if (pt_conf_expect(cf, value, PT_YAML_SCALAR,
                               "health: active: path") != PT_OK)
            {
                return PT_ERROR;
            }

            if (value->scalar.len == 0 || value->scalar.data[0] != '/'
                || strpbrk(value->scalar.data, " \r\n\t"))
            {
                return pt_conf_error(cf, value,
                                     "health: active: path must be a path starting with \"/\"");
            }

            lcf->path = value->scalar;

        } else if (strcmp(key, "interval") == 0) {
            if (pt_conf_parse_msec(cf, value, &lcf->interval) != PT_OK) {
                return PT_ERROR;
            }

        } else if (strcmp(key, "timeout") == 0) {
            if (pt_conf_parse_msec(cf, value, &lcf->timeout) != PT_OK) {
                return PT_ERROR;
            }

        } else if (strcmp(key, "healthy") == 0) {
            if (pt_conf_parse_int(cf, value, "health: active: healthy", 1,
                                  100, &v) != PT_OK)
            {
                return PT_ERROR;
            }

            lcf->healthy = (pt_uint_t) v;

        } else if (strcmp(key, "unhealthy") == 0) {
            if (pt_conf_parse_int(cf, value, "health: active: unhealthy", 1,
                                  100, &v) != PT_OK)
            {
                return PT_ERROR;
            }

            lcf->unhealthy = (pt_uint_t) v;

        } else {
            return pt_conf_error(cf, node->pairs[i].key,
                                 "unknown key \"%s\" in health: active (path, interval, timeout, healthy, unhealthy)",
                                 key);
        }
    }

    if (lcf->interval < 100 || lcf->timeout == 0) {
        return pt_conf_error(cf, node,
                             "health: active: interval must be at least 100ms and timeout above 0");
    }

    return PT_OK;
}


static int
pt_lb_validate(pt_conf_t *cf, void *conf)
{
    pt_lb_conf_t   *lcf;
    pt_upstream_t  *us;

    lcf = conf;
    us = cf->scope;

    if (us->balancer == &pt_lb_hash && lcf->hash_key == NULL) {
        return pt_conf_error(cf, us->node,
                             "upstream \"%s\": balance: hash needs a hash_key",
                             us->name.data);
    }

    if (lcf->hash_key && us->balancer != &pt_lb_hash) {
        return pt_conf_error(cf, lcf->hash_node,
                             "hash_key is only used with balance: hash");
    }

    return PT_OK;
}


static int
pt_lb_postconfig(pt_conf_t *cf)
{
    size_t           i;
    pt_array_t      *a;
    pt_upstream_t  **us;

    a = pt_upstreams(cf->cycle);
    us = a->elts;

    /* One prober for the whole gateway: the helper process. */
    for (i = 0; i < a->nelts; i++) {
        if (pt_lb_conf(us[i])->active) {
            pt_cycle_request_helper(cf);
            break;
        }
    }

    return PT_OK;
}


/* After a reload, peers of upstreams without active checks are healthy:
 * no prober would ever bring them back. */
static int
pt_lb_init_master(pt_cycle_t *cycle)
{
    size_t           i;
    pt_array_t      *a;
    pt_upstream_t  **us;

    a = pt_upstreams(cycle);
    us = a->elts;

    for (i = 0; i < a->nelts; i++) {
        if (!pt_lb_conf(us[i])->active) {
            pt_upstream_health_reset(us[i]);
        }
    }

    return PT_OK;
}
