/*
 * pt_ratelimit_concurrency.c: a route's `concurrency:` limit.
 *
 *   concurrency: { max: 100, queue: 200, queue_timeout: 2s }
 *
 * At most `max` requests of the route are in flight across all workers;
 * up to `queue` more wait for a slot, up to `queue_timeout` each, without
 * blocking their worker; the others get 503 with Retry-After at once.
 *
 * The counts live in the "concurrency" zone: one entry per route name,
 * with its requests in flight and waiting, each changed by atomics alone
 * (a slot is taken with a compare-and-swap below max). Entries are
 * claimed by CAS on the name's fingerprint and never given up, so a count
 * is never shared or evicted while requests hold it; a reload that keeps
 * the route's name keeps its counts, and old and new workers share them.
 *
 * A waiting request polls every PT_RL_CONC_POLL ms from a timer: workers
 * cannot wake each other (there is no channel between them), so a slot
 * freed in one worker is seen by a waiter in another at its next poll.
 * Waiters are not served in order of arrival.
 *
 * A slot is given back once per request however it ends: by the LOG
 * handler (LOG runs once per request, after errors and client aborts
 * too), or else by the request pool's cleanup, which also takes a request
 * that leaves while queued off the queue and stops its timer.
 */

#include "pt_ratelimit.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_RL_CONC_POLL     5             /* ms between a waiter's tries */
#define PT_RL_CONC_LAYOUT   0x52434e01

#define PT_RL_CONC_NONE     0
#define PT_RL_CONC_HELD     1             /* in flight: a slot taken     */
#define PT_RL_CONC_WAITING  2             /* queued, the timer set       */

typedef struct {
    volatile uint64_t    fp;              /* route name; 0: free         */
    volatile uint64_t    inflight;
    volatile uint64_t    waiting;
} pt_rl_conc_entry_t;

typedef struct {
    uint32_t             layout;
    uint64_t             n;
    pt_rl_conc_entry_t   entries[];
} pt_rl_conc_root_t;

struct pt_rl_conc_s {
    uint64_t             max;
    uint64_t             queue;
    pt_msec_t            queue_timeout;
    pt_str_t             route;           /* the route's name            */
    pt_rl_conc_entry_t  *entry;           /* found on first use, in each
                                             worker                      */
    unsigned             full_logged:1;
};

struct pt_rl_conc_ctx_s {
    pt_http_request_t   *r;
    pt_rl_conc_entry_t  *entry;
    pt_event_t           timer;
    pt_msec_t            deadline;
    unsigned             state;
};


static int pt_rl_conc_zone_init(pt_shm_zone_t *zone, void *old_data);
static int pt_rl_conc_handler(pt_http_request_t *r);
static int pt_rl_conc_log(pt_http_request_t *r);


int
pt_rl_conc_set(pt_conf_t *cf, const pt_command_t *cmd, pt_yaml_node_t *node,
    void *conf)
{
    int                  rc;
    size_t               i;
    int64_t              n;
    const char          *k;
    pt_yaml_node_t      *v;
    pt_rl_conc_t        *cc;
    pt_rl_route_conf_t  *rcf;

    rcf = conf;

    cc = pt_pcalloc(cf->pool, sizeof(pt_rl_conc_t));
    if (cc == NULL) {
        return PT_ERROR;
    }

    cc->queue_timeout = 1000;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        k = node->pairs[i].key->scalar.data;
        v = node->pairs[i].value;

        if (strcmp(k, "max") == 0) {
            if (pt_conf_parse_int(cf, v, "concurrency: max", 1, 1000000, &n)
                != PT_OK)
            {
                rc = PT_ERROR;
                continue;
            }
            cc->max = (uint64_t) n;

        } else if (strcmp(k, "queue") == 0) {
            if (pt_conf_parse_int(cf, v, "concurrency: queue", 0, 1000000, &n)
                != PT_OK)
            {
                rc = PT_ERROR;
                continue;
            }
            cc->queue = (uint64_t) n;

        } else if (strcmp(k, "queue_timeout") == 0) {
            if (pt_conf_parse_msec(cf, v, &cc->queue_timeout) != PT_OK) {
                rc = PT_ERROR;
                continue;
            }
            if (cc->queue_timeout == 0) {
                rc = pt_conf_error(cf, v,
                                   "concurrency: queue_timeout must be more than 0");
            }

        } else {
            rc = pt_conf_error(cf, node->pairs[i].key,
                               "unknown key \"%s\" in concurrency (max, queue, queue_timeout)",
                               k);
        }
    }

    if (rc != PT_OK) {
        return rc;
    }

    if (cc->max == 0) {
        return pt_conf_error(cf, node, "concurrency needs a max");
    }

    rcf->concurrency = cc;

    return PT_OK;
}


int
pt_rl_conc_postconfig(pt_conf_t *cf)
{
    size_t               i, n;
    pt_route_t         **routes;
    pt_rl_route_conf_t  *rcf;
    pt_http_main_conf_t *hmcf;

    hmcf = pt_http_main_conf(cf->cycle);
    routes = hmcf->routes.elts;
    n = 0;

    for (i = 0; i < hmcf->routes.nelts; i++) {
        rcf = routes[i]->conf[pt_ratelimit_module.index];
        if (rcf && rcf->concurrency) {
            rcf->concurrency->route = routes[i]->name;
            n++;
        }
    }

    if (n == 0) {
        return PT_OK;
    }

    if (pt_shm_zone_add(cf, "concurrency", 64 * 1024, 0, &pt_ratelimit_module,
                        pt_rl_conc_zone_init) == NULL)
    {
        return PT_ERROR;
    }

    /* 200: after the rate limits (100), so a request over a rate limit
     * never waits for a slot. */
    if (pt_http_phase_add(cf, PT_HTTP_LIMIT_PHASE, pt_rl_conc_handler, 200,
                          &pt_ratelimit_module) != PT_OK
        || pt_http_phase_add(cf, PT_HTTP_LOG_PHASE, pt_rl_conc_log, 50,
                             &pt_ratelimit_module) != PT_OK)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


static int
pt_rl_conc_zone_init(pt_shm_zone_t *zone, void *old_data)
{
    size_t              used, free, n;
    pt_rl_conc_root_t  *root;

    root = old_data;

    if (root && root->layout == PT_RL_CONC_LAYOUT) {
        return PT_OK;       /* old workers still count in it */
    }

    pt_slab_usage(zone->slab, &used, &free);
    n = (free / 8 * 7 - sizeof(pt_rl_conc_root_t))
        / sizeof(pt_rl_conc_entry_t);

    root = pt_slab_calloc(zone->slab, sizeof(pt_rl_conc_root_t)
                                      + n * sizeof(pt_rl_conc_entry_t));
    if (root == NULL) {
        return PT_ERROR;
    }

    root->layout = PT_RL_CONC_LAYOUT;
    root->n = n;
    zone->slab->data = root;

    return PT_OK;
}


/* The route's entry, claimed if need be; NULL when the table is full
 * (thousands of route names since the zone was made). */
static pt_rl_conc_entry_t *
pt_rl_conc_entry(pt_rl_conc_t *cc)
{
    size_t               i;
    uint64_t             fp, old, j;
    pt_shm_zone_t       *z;
    pt_rl_conc_root_t   *root;
    pt_rl_conc_entry_t  *e;

    if (cc->entry) {
        return cc->entry;
    }

    z = pt_cycle->shm_zones.elts;
    root = NULL;

    for (i = 0; i < pt_cycle->shm_zones.nelts; i++) {
        if (z[i].owner == &pt_ratelimit_module
            && strcmp(z[i].name.data, "concurrency") == 0)
        {
            root = z[i].data;
            break;
        }
    }

    if (root == NULL) {
        return NULL;
    }

    fp = pt_hash_fnv1a(cc->route.data, cc->route.len, 0x636f6e63);
    fp = fp ? fp : 1;

    for (j = 0; j < root->n; j++) {
        e = &root->entries[(fp + j) % root->n];
        old = __atomic_load_n(&e->fp, __ATOMIC_ACQUIRE);

        if (old == 0) {
            /* A loser of the race sees the winner's name: its own, or
             * another to probe past. */
            if (__atomic_compare_exchange_n(&e->fp, &old, fp, 0,
                                            __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
            {
                old = fp;
            }
        }

        if (old == fp) {
            cc->entry = e;
            return e;
        }
    }

    return NULL;
}


/* Add one to *count if it is below limit. */
static unsigned
pt_rl_conc_take(volatile uint64_t *count, uint64_t limit)
{
    uint64_t  old;

    old = __atomic_load_n(count, __ATOMIC_ACQUIRE);

    while (old < limit) {
        if (__atomic_compare_exchange_n(count, &old, old + 1, 1,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        {
            return 1;
        }
    }

    return 0;
}


/* Give back what the request holds, once. */
static void
pt_rl_conc_release(pt_rl_conc_ctx_t *cx)
{
    if (cx->state == PT_RL_CONC_HELD) {
        __atomic_sub_fetch(&cx->entry->inflight, 1, __ATOMIC_RELEASE);

    } else if (cx->state == PT_RL_CONC_WAITING) {
        pt_timer_del(&cx->timer);
        __atomic_sub_fetch(&cx->entry->waiting, 1, __ATOMIC_RELEASE);
    }

    cx->state = PT_RL_CONC_NONE;
}


static void
pt_rl_conc_cleanup(void *data)
{
    pt_rl_conc_release(data);
}


static void
pt_rl_conc_retry(pt_event_t *ev)
{
    pt_rl_conc_ctx_t  *cx;

    cx = ev->data;

    pt_http_run_phases(cx->r);
}


static int
pt_rl_conc_reject(pt_http_request_t *r)
{
    r->limited = 1;

    if (pt_http_header_out_set(r, "Retry-After", 11, "1", 1) != PT_OK) {
        return PT_ERROR;
    }

    return 503;
}


static pt_rl_conc_ctx_t *
pt_rl_conc_ctx(pt_http_request_t *r, pt_rl_conc_entry_t *e)
{
    pt_rl_ctx_t       *ctx;
    pt_rl_conc_ctx_t  *cx;

    ctx = pt_rl_request_ctx(r);
    if (ctx == NULL) {
        return NULL;
    }

    cx = pt_pcalloc(r->pool, sizeof(pt_rl_conc_ctx_t));
    if (cx == NULL
        || pt_pool_cleanup_add(r->pool, pt_rl_conc_cleanup, cx) == NULL)
    {
        return NULL;
    }

    cx->r = r;
    cx->entry = e;
    cx->timer.data = cx;
    cx->timer.handler = pt_rl_conc_retry;
    ctx->conc = cx;

    return cx;
}


static int
pt_rl_conc_handler(pt_http_request_t *r)
{
    pt_rl_ctx_t         *ctx;
    pt_rl_conc_t        *cc;
    pt_rl_conc_ctx_t    *cx;
    pt_rl_conc_entry_t  *e;
    pt_rl_route_conf_t  *rcf;

    rcf = pt_http_route_conf(r, pt_ratelimit_module);
    if (rcf == NULL || rcf->concurrency == NULL) {
        return PT_CONTINUE;
    }

    cc = rcf->concurrency;
    ctx = pt_http_get_module_ctx(r, pt_ratelimit_module);
    cx = ctx ? ctx->conc : NULL;

    if (cx) {
        if (cx->state != PT_RL_CONC_WAITING) {
            return PT_CONTINUE;
        }

        /* Resumed by the timer. */
        if (pt_rl_conc_take(&cx->entry->inflight, cc->max)) {
            __atomic_sub_fetch(&cx->entry->waiting, 1, __ATOMIC_RELEASE);
            cx->state = PT_RL_CONC_HELD;
            return PT_CONTINUE;
        }

        if (pt_current_msec >= cx->deadline) {
            pt_rl_conc_release(cx);
            pt_http_log_request(r, PT_LOG_INFO,
                                "concurrency limit of route \"%s\": no slot within %lu ms in the queue",
                                cc->route.data,
                                (unsigned long) cc->queue_timeout);
            return pt_rl_conc_reject(r);
        }

        pt_timer_add(&cx->timer, PT_RL_CONC_POLL);
        return PT_AGAIN;
    }

    e = pt_rl_conc_entry(cc);

    if (e == NULL) {
        if (!cc->full_logged) {
            cc->full_logged = 1;
            pt_http_log_request(r, PT_LOG_ERR,
                                "concurrency zone full: route \"%s\" is not limited (restart to clear it)",
                                cc->route.data);
        }
        return PT_CONTINUE;
    }

    if (pt_rl_conc_take(&e->inflight, cc->max)) {
        cx = pt_rl_conc_ctx(r, e);
        if (cx == NULL) {
            __atomic_sub_fetch(&e->inflight, 1, __ATOMIC_RELEASE);
            return PT_ERROR;
        }
        cx->state = PT_RL_CONC_HELD;
        return PT_CONTINUE;
    }

    if (!pt_rl_conc_take(&e->waiting, cc->queue)) {
        pt_http_log_request(r, PT_LOG_INFO,
                            "concurrency limit of route \"%s\": %lu in flight and %lu queued",
                            cc->route.data, (unsigned long) cc->max,
                            (unsigned long) cc->queue);
        return pt_rl_conc_reject(r);
    }

    cx = pt_rl_conc_ctx(r, e);
    if (cx == NULL) {
        __atomic_sub_fetch(&e->waiting, 1, __ATOMIC_RELEASE);
        return PT_ERROR;
    }

    cx->state = PT_RL_CONC_WAITING;
    cx->deadline = pt_current_msec + cc->queue_timeout;
    pt_timer_add(&cx->timer, PT_RL_CONC_POLL);

    return PT_AGAIN;
}


static int
pt_rl_conc_log(pt_http_request_t *r)
{
    pt_rl_ctx_t  *ctx;

    ctx = pt_http_get_module_ctx(r, pt_ratelimit_module);

    if (ctx && ctx->conc) {
        pt_rl_conc_release(ctx->conc);
    }

    return PT_CONTINUE;
}
