/*
 * pt_ratelimit_module.c: a route's `ratelimit:` limits, local scope.
 *
 *   ratelimit:
 *     - { key: "${consumer}", rate: 100/s, burst: 20 }
 *     - { key: "${remote_addr}", rate: 1000/m, algorithm: sliding_window }
 *
 * Every limit of a route must pass. With `mode: delay` (token bucket), a
 * request beyond the rate but within the burst waits, on a timer, for its
 * turn at the rate (nginx's limit_req without nodelay); beyond the burst
 * it is rejected. Limits keyed by ${remote_addr} alone
 * run in PREACCESS, before auth spends CPU on a flood; the others in
 * LIMIT, once the consumer is known. A request over a limit gets 429 with
 * Retry-After; every response of a limited route carries RateLimit-Policy
 * and RateLimit (the IETF httpapi draft) and X-RateLimit-Limit, -Remaining
 * and -Reset, for the limit closest to running out. The counts live in
 * the "ratelimit" zone (pt_ratelimit_shm.c), shared by every worker. A
 * route's `concurrency:` is pt_ratelimit_concurrency.c.
 */

#include "pt_ratelimit.h"
#include "pt_string.h"
#include "pt_time.h"


typedef struct {
    pt_shm_zone_t       *zone;
    pt_rl_redis_conf_t   redis;
} pt_rl_main_conf_t;


static void *pt_rl_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_rl_set_limits(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_rl_postconfig(pt_conf_t *cf);
static int pt_rl_preaccess(pt_http_request_t *r);
static int pt_rl_limit(pt_http_request_t *r);
static int pt_rl_header_filter(pt_http_request_t *r);
static int pt_rl_init_worker(pt_cycle_t *cycle);
static void pt_rl_exit_worker(pt_cycle_t *cycle);


static const pt_conf_enum_t  pt_rl_redis_failure_enum[] = {
    { "open", PT_RL_REDIS_OPEN },
    { "closed", PT_RL_REDIS_CLOSED },
    { NULL, 0 }
};


static const pt_command_t  pt_rl_commands[] = {

    { "ratelimit", PT_CONF_ROUTE | PT_CONF_SEQ, pt_rl_set_limits, 0, NULL },

    { "redis", PT_CONF_GLOBAL | PT_CONF_SCALAR, pt_conf_set_addr,
      offsetof(pt_rl_main_conf_t, redis.addr), NULL },

    { "redis_failure", PT_CONF_GLOBAL | PT_CONF_SCALAR, pt_conf_set_enum,
      offsetof(pt_rl_main_conf_t, redis.failure),
      pt_rl_redis_failure_enum },

    { "redis_timeout", PT_CONF_GLOBAL | PT_CONF_SCALAR, pt_conf_set_msec,
      offsetof(pt_rl_main_conf_t, redis.timeout), NULL },

    { "concurrency", PT_CONF_ROUTE | PT_CONF_MAP, pt_rl_conc_set, 0, NULL },

    pt_null_command
};


pt_module_t  pt_ratelimit_module = {
    .name = "ratelimit",
    .abi = PT_MODULE_ABI,
    .commands = pt_rl_commands,
    .create_conf = pt_rl_create_conf,
    .postconfig = pt_rl_postconfig,
    .init_worker = pt_rl_init_worker,
    .exit_worker = pt_rl_exit_worker,
};


static void *
pt_rl_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    void  *c;

    if (level == PT_CONF_LEVEL_GLOBAL) {
        c = pt_pcalloc(cf->pool, sizeof(pt_rl_main_conf_t));
    } else if (level == PT_CONF_LEVEL_ROUTE) {
        c = pt_pcalloc(cf->pool, sizeof(pt_rl_route_conf_t));
    } else {
        return NULL;
    }

    return c ? c : PT_CONF_ERROR_PTR;
}


/* One entry of `ratelimit:`. */
static int
pt_rl_parse_limit(pt_conf_t *cf, pt_yaml_node_t *node, pt_rl_limit_t *lim)
{
    int              rc;
    size_t           i;
    int64_t          n;
    pt_rate_t        rate;
    const char      *k, *reason;
    pt_yaml_node_t  *v;

    if (pt_conf_expect(cf, node, PT_YAML_MAP, "a rate limit") != PT_OK) {
        return PT_ERROR;
    }

    memset(lim, 0, sizeof(*lim));
    lim->node = node;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        k = node->pairs[i].key->scalar.data;
        v = node->pairs[i].value;

        if (strcmp(k, "key") != 0 && strcmp(k, "rate") != 0
            && strcmp(k, "burst") != 0 && strcmp(k, "algorithm") != 0
            && strcmp(k, "mode") != 0 && strcmp(k, "scope") != 0
            && strcmp(k, "empty_key") != 0)
        {
            rc = pt_conf_error(cf, node->pairs[i].key,
                               "unknown key \"%s\" in a rate limit (key, rate, burst, algorithm, mode, scope, empty_key)",
                               k);
            continue;
        }

        if (strcmp(k, "key") != 0
            && pt_conf_expect(cf, v, PT_YAML_SCALAR, k) != PT_OK)
        {
            rc = PT_ERROR;
            continue;
        }

        if (strcmp(k, "key") == 0) {
            lim->key = pt_template_compile(cf, v);
            if (lim->key == NULL) {
                rc = PT_ERROR;
            }
            lim->preaccess = v->type == PT_YAML_SCALAR
                             && strcmp(v->scalar.data, "${remote_addr}") == 0;

        } else if (strcmp(k, "rate") == 0) {
            if (pt_parse_rate(v->scalar.data, v->scalar.len, &rate, &reason)
                != PT_OK)
            {
                rc = pt_conf_error(cf, v, "rate: %s", reason);
                continue;
            }
            lim->count = rate.count;
            lim->period_us = (uint64_t) rate.period * 1000;

        } else if (strcmp(k, "burst") == 0) {
            if (pt_conf_parse_int(cf, v, "burst", 0, 1000000, &n) != PT_OK) {
                rc = PT_ERROR;
                continue;
            }
            lim->burst = (uint64_t) n;

        } else if (strcmp(k, "algorithm") == 0) {
            if (strcmp(v->scalar.data, "sliding_window") == 0) {
                lim->algorithm = PT_RL_SLIDING_WINDOW;
            } else if (strcmp(v->scalar.data, "token_bucket") != 0) {
                rc = pt_conf_error(cf, v,
                                   "algorithm: \"%s\" is not token_bucket or sliding_window",
                                   v->scalar.data);
            }

        } else if (strcmp(k, "mode") == 0) {
            if (strcmp(v->scalar.data, "delay") == 0) {
                lim->delay = 1;
            } else if (strcmp(v->scalar.data, "reject") != 0) {
                rc = pt_conf_error(cf, v,
                                   "mode: \"%s\" is not reject or delay",
                                   v->scalar.data);
            }

        } else if (strcmp(k, "scope") == 0) {
            if (strcmp(v->scalar.data, "cluster") == 0) {
                lim->cluster = 1;
            } else if (strcmp(v->scalar.data, "local") != 0) {
                rc = pt_conf_error(cf, v,
                                   "scope: \"%s\" is not local or cluster",
                                   v->scalar.data);
            }

        } else {
            if (strcmp(v->scalar.data, "bucket") == 0) {
                lim->empty_bucket = 1;
            } else if (strcmp(v->scalar.data, "skip") != 0) {
                rc = pt_conf_error(cf, v,
                                   "empty_key: \"%s\" is not skip or bucket",
                                   v->scalar.data);
            }
        }
    }

    if (rc != PT_OK) {
        return rc;
    }

    if (lim->key == NULL || lim->count == 0) {
        return pt_conf_error(cf, node, "a rate limit needs a key and a rate");
    }

    if (lim->algorithm == PT_RL_SLIDING_WINDOW) {
        if (lim->delay) {
            return pt_conf_error(cf, node,
                                 "mode: delay needs the token bucket: a sliding window has no turn to wait for");
        }
        if (lim->burst) {
            return pt_conf_error(cf, node,
                                 "burst is for token_bucket; a sliding window counts the rate alone");
        }
        if (lim->count > PT_RL_WINDOW_MAX) {
            return pt_conf_error(cf, node,
                                 "a sliding window counts at most 1048575 requests per window");
        }
    }

    return PT_OK;
}


static int
pt_rl_set_limits(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                  rc;
    size_t               i;
    pt_rl_limit_t       *lim;
    pt_rl_route_conf_t  *rcf;

    rcf = conf;

    if (node->n == 0) {
        return pt_conf_error(cf, node, "ratelimit: an empty list");
    }

    if (pt_array_init(&rcf->limits, cf->pool, node->n, sizeof(pt_rl_limit_t))
        != PT_OK)
    {
        return PT_ERROR;
    }

    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        lim = pt_array_push(&rcf->limits);
        if (lim == NULL) {
            return PT_ERROR;
        }

        if (pt_rl_parse_limit(cf, node->items[i], lim) != PT_OK) {
            rc = PT_ERROR;
        }
    }

    return rc;
}


/* A cluster limit needs `redis:`, an address: hiredis would resolve a
 * name by blocking. */
static int
pt_rl_cluster_conf(pt_conf_t *cf, pt_rl_main_conf_t *mcf, pt_rl_limit_t *lim)
{
    if (!lim->cluster) {
        return PT_OK;
    }

    if (mcf->redis.addr.socklen == 0 && !mcf->redis.addr.is_name) {
        return pt_conf_error(cf, lim->node,
                             "scope: cluster needs the global redis: HOST:PORT");
    }

    if (mcf->redis.addr.is_name) {
        return pt_conf_error(cf, lim->node,
                             "redis: \"%s\": an IP address is needed (names are not resolved)",
                             mcf->redis.addr.text);
    }

    mcf->redis.used = 1;

    return PT_OK;
}


static int
pt_rl_postconfig(pt_conf_t *cf)
{
    char                 buf[256];
    size_t               i, j, len, n;
    pt_route_t         **routes;
    pt_rl_limit_t       *lim;
    pt_rl_main_conf_t   *mcf;
    pt_rl_route_conf_t  *rcf;
    pt_http_main_conf_t *hmcf;

    mcf = cf->cycle->conf[pt_ratelimit_module.index];
    hmcf = pt_http_main_conf(cf->cycle);
    routes = hmcf->routes.elts;
    n = 0;

    /* A limit is known by its route's name and its place there, so its
     * counts carry over a reload that keeps both. */
    for (i = 0; i < hmcf->routes.nelts; i++) {
        rcf = routes[i]->conf[pt_ratelimit_module.index];
        lim = rcf ? rcf->limits.elts : NULL;

        for (j = 0; rcf && j < rcf->limits.nelts; j++, n++) {
            len = (size_t) snprintf(buf, sizeof(buf), "%s.%zu",
                                    routes[i]->name.data, j);
            len = pt_min(len, sizeof(buf) - 1);
            lim[j].id = pt_hash_fnv1a(buf, len, 0x726c);
            if (pt_str_dup(cf->pool, &lim[j].name, buf, len) == NULL) {
                return PT_ERROR;
            }
            if (pt_rl_cluster_conf(cf, mcf, &lim[j]) != PT_OK) {
                return PT_ERROR;
            }
        }
    }

    if (pt_rl_conc_postconfig(cf) != PT_OK) {
        return PT_ERROR;
    }

    if (n == 0) {
        return PT_OK;
    }

    mcf->zone = pt_shm_zone_add(cf, "ratelimit", 256 * 1024, 1,
                                &pt_ratelimit_module, pt_rl_zone_init);
    if (mcf->zone == NULL) {
        return PT_ERROR;
    }

    if (pt_http_phase_add(cf, PT_HTTP_PREACCESS_PHASE, pt_rl_preaccess, 100,
                          &pt_ratelimit_module) != PT_OK
        || pt_http_phase_add(cf, PT_HTTP_LIMIT_PHASE, pt_rl_limit, 100,
                             &pt_ratelimit_module) != PT_OK
        || pt_http_header_filter_add(cf, pt_rl_header_filter, 700,
                                     &pt_ratelimit_module) != PT_OK)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


static void
pt_rl_resume(pt_event_t *ev)
{
    pt_rl_ctx_t  *ctx;

    ctx = ev->data;

    /* The phase that waited runs again and finds its limits counted. */
    pt_http_run_phases(ctx->r);
}


/* A request that ends while it waits (the client left) must not be woken
 * in freed memory. */
static void
pt_rl_cleanup(void *data)
{
    pt_rl_ctx_t  *ctx;

    ctx = data;

    if (ctx->timer.timer_set) {
        pt_timer_del(&ctx->timer);
    }
}


pt_rl_ctx_t *
pt_rl_request_ctx(pt_http_request_t *r)
{
    pt_rl_ctx_t  *ctx;

    ctx = pt_http_get_module_ctx(r, pt_ratelimit_module);
    if (ctx) {
        return ctx;
    }

    ctx = pt_pcalloc(r->pool, sizeof(pt_rl_ctx_t));
    if (ctx == NULL
        || pt_pool_cleanup_add(r->pool, pt_rl_cleanup, ctx) == NULL)
    {
        return NULL;
    }

    ctx->r = r;
    ctx->timer.data = ctx;
    ctx->timer.handler = pt_rl_resume;
    pt_http_set_module_ctx(r, ctx, pt_ratelimit_module);

    return ctx;
}


/* A cluster limit through Redis: PT_OK with *v, PT_AGAIN while waiting,
 * or 503 when Redis fails and redis_failure is closed; open counts it
 * here instead. */
static int
pt_rl_cluster_check(pt_http_request_t *r, pt_rl_main_conf_t *mcf,
    pt_rl_ctx_t *ctx, size_t i, pt_rl_limit_t *lim, const pt_str_t *key,
    pt_rl_verdict_t *v)
{
    int  rc;

    rc = pt_rl_redis_check(r, &ctx->redis, i, lim, key, v);

    if (rc == PT_AGAIN) {
        ctx->resume = i + 1;
        return PT_AGAIN;
    }

    if (rc != PT_DECLINED) {
        return rc;
    }

    pt_rl_count_redis_failure(mcf->zone, &r->route->name);

    if (mcf->redis.failure == PT_RL_REDIS_CLOSED) {
        return 503;
    }

    pt_rl_check(mcf->zone, lim, key, pt_monotonic_usec(), v);

    return PT_OK;
}


static int
pt_rl_run(pt_http_request_t *r, unsigned preaccess)
{
    int                  rc;
    size_t               i;
    uint64_t             delay;
    pt_str_t             key;
    pt_rl_ctx_t         *ctx;
    pt_rl_limit_t       *lim;
    pt_rl_verdict_t      v;
    pt_rl_main_conf_t   *mcf;
    pt_rl_route_conf_t  *rcf;

    rcf = pt_http_route_conf(r, pt_ratelimit_module);
    if (rcf == NULL || rcf->limits.nelts == 0) {
        return PT_CONTINUE;
    }

    ctx = pt_http_get_module_ctx(r, pt_ratelimit_module);

    if (ctx && ctx->counted[preaccess]) {
        /* Resumed after a delay (or woken early: keep waiting). */
        return ctx->timer.timer_set ? PT_AGAIN : PT_CONTINUE;
    }

    mcf = pt_cycle->conf[pt_ratelimit_module.index];
    lim = rcf->limits.elts;
    delay = 0;
    i = 0;

    /* Resumed by Redis's reply: the limits before are counted already. */
    if (ctx && ctx->resume) {
        i = ctx->resume - 1;
        delay = ctx->delay_us;
        ctx->resume = 0;
    }

    for ( /* void */ ; i < rcf->limits.nelts; i++) {
        if (lim[i].preaccess != preaccess) {
            continue;
        }

        if (pt_template_eval(r, lim[i].key, &key) != PT_OK) {
            return PT_ERROR;
        }

        if (key.len == 0 && !lim[i].empty_bucket) {
            continue;
        }

        if (ctx == NULL) {
            ctx = pt_rl_request_ctx(r);
            if (ctx == NULL) {
                return PT_ERROR;
            }
        }

        if (lim[i].cluster) {
            rc = pt_rl_cluster_check(r, mcf, ctx, i, &lim[i], &key, &v);
            if (rc != PT_OK) {
                ctx->delay_us = delay;
                return rc;
            }

        } else {
            pt_rl_check(mcf->zone, &lim[i], &key, pt_monotonic_usec(), &v);
        }

        if (ctx->limit == NULL || !v.allowed
            || v.remaining < ctx->verdict.remaining)
        {
            ctx->limit = &lim[i];
            ctx->verdict = v;
        }

        if (!v.allowed) {
            pt_rl_count_rejected(mcf->zone, &r->route->name);
            r->limited = 1;
            pt_http_log_request(r, PT_LOG_INFO,
                                "rate limit %s exceeded, retry after %lu s",
                                lim[i].name.data,
                                (unsigned long) v.retry_after);
            return 429;
        }

        if (lim[i].delay && v.delay_us > delay) {
            delay = v.delay_us;
        }
    }

    if (ctx) {
        ctx->counted[preaccess] = 1;
    }

    /* Whole milliseconds, rounded down: the turn is never missed by
     * more than the timer's own lateness. */
    if (delay >= 1000) {
        pt_timer_add(&ctx->timer, (pt_msec_t) (delay / 1000));
        return PT_AGAIN;
    }

    return PT_CONTINUE;
}


static int
pt_rl_preaccess(pt_http_request_t *r)
{
    return pt_rl_run(r, 1);
}


static int
pt_rl_limit(pt_http_request_t *r)
{
    return pt_rl_run(r, 0);
}


static int
pt_rl_init_worker(pt_cycle_t *cycle)
{
    pt_rl_main_conf_t  *mcf;

    mcf = cycle->conf[pt_ratelimit_module.index];

    return pt_rl_redis_init_worker(&mcf->redis);
}


static void
pt_rl_exit_worker(pt_cycle_t *cycle)
{
    pt_rl_redis_exit_worker();
}


/* Add "name: value" with value[0..p) from the buffer the caller wrote. */
static int
pt_rl_header(pt_http_request_t *r, const char *name, size_t nlen,
    char *value, char *end)
{
    return pt_http_header_out_add(r, name, nlen, value,
                                  (size_t) (end - value));
}


/* Written by hand: five numbers per response of a limited route, where a
 * printf per field would cost more than counting the request did. */
static int
pt_rl_header_filter(pt_http_request_t *r)
{
    char             *buf, *p, *q;
    uint64_t          window;
    pt_rl_ctx_t      *ctx;
    pt_rl_limit_t    *lim;
    pt_rl_verdict_t  *v;

    ctx = pt_http_get_module_ctx(r, pt_ratelimit_module);
    if (ctx == NULL || ctx->limit == NULL) {
        return PT_OK;
    }

    lim = ctx->limit;
    v = &ctx->verdict;
    window = lim->period_us / 1000000 ? lim->period_us / 1000000 : 1;

    buf = pt_pnalloc(r->pool, 2 * lim->name.len + 8 * 21 + 32);
    if (buf == NULL) {
        return PT_ERROR;
    }

    /* RateLimit-Policy: "NAME";q=COUNT;w=SECONDS */
    p = buf;
    *p++ = '"';
    p = pt_cpymem(p, lim->name.data, lim->name.len);
    p = pt_cpymem(p, "\";q=", 4);
    p = pt_sprint_uint(p, lim->count);
    p = pt_cpymem(p, ";w=", 3);
    p = pt_sprint_uint(p, window);
    if (pt_rl_header(r, "RateLimit-Policy", 16, buf, p) != PT_OK) {
        return PT_ERROR;
    }

    /* RateLimit: "NAME";r=REMAINING;t=RESET */
    q = p;
    *p++ = '"';
    p = pt_cpymem(p, lim->name.data, lim->name.len);
    p = pt_cpymem(p, "\";r=", 4);
    p = pt_sprint_uint(p, v->remaining);
    p = pt_cpymem(p, ";t=", 3);
    p = pt_sprint_uint(p, v->reset);
    if (pt_rl_header(r, "RateLimit", 9, q, p) != PT_OK) {
        return PT_ERROR;
    }

    q = p;
    p = pt_sprint_uint(p, lim->count);
    if (pt_rl_header(r, "X-RateLimit-Limit", 17, q, p) != PT_OK) {
        return PT_ERROR;
    }

    q = p;
    p = pt_sprint_uint(p, v->remaining);
    if (pt_rl_header(r, "X-RateLimit-Remaining", 21, q, p) != PT_OK) {
        return PT_ERROR;
    }

    q = p;
    p = pt_sprint_uint(p, v->reset);
    if (pt_rl_header(r, "X-RateLimit-Reset", 17, q, p) != PT_OK) {
        return PT_ERROR;
    }

    if (!v->allowed) {
        q = p;
        p = pt_sprint_uint(p, v->retry_after);
        if (pt_rl_header(r, "Retry-After", 11, q, p) != PT_OK) {
            return PT_ERROR;
        }
    }

    return PT_OK;
}
