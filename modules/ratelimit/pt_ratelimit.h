/*
 * pt_ratelimit.h: the ratelimit module's shared types (internal).
 */

#ifndef PT_RATELIMIT_H
#define PT_RATELIMIT_H

#include "pt_http.h"


#define PT_RL_TOKEN_BUCKET     0
#define PT_RL_SLIDING_WINDOW   1

/* A sliding window counts at most this many requests per window. */
#define PT_RL_WINDOW_MAX       ((1u << 20) - 1)

/* One limit of a route, as configured. */
typedef struct {
    pt_template_t       *key;
    uint64_t             count;        /* requests ...                 */
    uint64_t             period_us;    /* ... per this long            */
    uint64_t             burst;
    unsigned             algorithm;
    unsigned             empty_bucket:1;   /* an empty key counts too  */
    unsigned             delay:1;      /* mode: delay (token bucket)   */
    unsigned             preaccess:1;  /* keyed by ${remote_addr} only */
    unsigned             cluster:1;    /* scope: cluster (Redis)        */
    uint64_t             id;           /* route and position, hashed   */
    pt_str_t             name;         /* "ROUTE.N" in RateLimit-Policy */
    pt_yaml_node_t      *node;
} pt_rl_limit_t;

/* What one limit said about one request. */
typedef struct {
    unsigned             allowed:1;
    uint64_t             remaining;
    uint64_t             reset;        /* seconds until fully replenished */
    uint64_t             retry_after;  /* seconds, when not allowed     */
    uint64_t             delay_us;     /* token bucket: until the
                                          request's turn at the rate    */
} pt_rl_verdict_t;


typedef struct pt_rl_conc_s      pt_rl_conc_t;
typedef struct pt_rl_conc_ctx_s  pt_rl_conc_ctx_t;

/* A route's config. */
typedef struct {
    pt_array_t           limits;       /* pt_rl_limit_t                 */
    pt_rl_conc_t        *concurrency;  /* NULL: not limited             */
} pt_rl_route_conf_t;

extern pt_module_t  pt_ratelimit_module;


/* pt_ratelimit_shm.c: the "ratelimit" zone, a fixed table of slots that
 * every worker updates with compare-and-swap, no lock. */
int pt_rl_zone_init(pt_shm_zone_t *zone, void *old_data);
/* Count one request of key (hashed with the limit's id) against lim at
 * now_us (CLOCK_MONOTONIC, the same in every process). */
void pt_rl_check(pt_shm_zone_t *zone, pt_rl_limit_t *lim, const pt_str_t *key,
    uint64_t now_us, pt_rl_verdict_t *v);
/* Count a rejection of the route (for portico_ratelimit_rejected_total)
 * and read the count. */
void pt_rl_count_rejected(pt_shm_zone_t *zone, const pt_str_t *route);
uint64_t pt_rl_rejected(pt_shm_zone_t *zone, const pt_str_t *route);
/* Count a Redis failure of a cluster limit of the route
 * (portico_ratelimit_redis_failures_total) and read the count. */
void pt_rl_count_redis_failure(pt_shm_zone_t *zone, const pt_str_t *route);
uint64_t pt_rl_redis_failures(pt_shm_zone_t *zone, const pt_str_t *route);


#define PT_RL_REDIS_OPEN      0        /* Redis down: count locally      */
#define PT_RL_REDIS_CLOSED    1        /* Redis down: 503                */

/* The global `redis:`, `redis_failure:` and `redis_timeout:` keys. */
typedef struct {
    pt_addr_t            addr;         /* socklen 0: not set            */
    pt_uint_t            failure;      /* PT_RL_REDIS_OPEN or _CLOSED   */
    pt_msec_t            timeout;      /* 0: the default, 100 ms        */
    unsigned             used:1;       /* some limit has scope: cluster */
} pt_rl_redis_conf_t;

/* A request's wait for Redis (in its pool). */
typedef struct pt_rl_redis_req_s  pt_rl_redis_req_t;

/* A request's state: the limit that says the most about it, for the
 * headers; the wait of a delayed request or of one waiting on Redis; its
 * place under the route's concurrency limit. */
typedef struct {
    pt_rl_limit_t       *limit;
    pt_rl_verdict_t      verdict;
    pt_http_request_t   *r;
    pt_event_t           timer;
    unsigned             counted[2];   /* LIMIT, PREACCESS limits done   */
    pt_uint_t            resume;       /* 1 + the limit waiting on Redis */
    uint64_t             delay_us;     /* the longest delay before it   */
    pt_rl_redis_req_t   *redis;
    pt_rl_conc_ctx_t    *conc;
} pt_rl_ctx_t;

/* The request's ctx, made (with its cleanup) on first use; NULL when out
 * of memory. */
pt_rl_ctx_t *pt_rl_request_ctx(pt_http_request_t *r);

/* pt_ratelimit_redis.c: cluster scope. One hiredis async connection per
 * worker on the worker's event loop, reconnected with backoff. */
int pt_rl_redis_init_worker(pt_rl_redis_conf_t *conf);
void pt_rl_redis_exit_worker(void);
/* Count one request of key against the cluster limit lim, the limit at
 * index i of its route: PT_AGAIN when the request waits for Redis (the
 * reply resumes it with pt_http_run_phases, which calls this again: then
 * PT_OK with *v filled in), PT_DECLINED when Redis failed (not connected,
 * an error or no answer in time; logged at most once a second), PT_ERROR
 * when out of memory. *rqp is the request's wait, NULL at first. */
int pt_rl_redis_check(pt_http_request_t *r, pt_rl_redis_req_t **rqp,
    pt_uint_t i, pt_rl_limit_t *lim, const pt_str_t *key,
    pt_rl_verdict_t *v);


/* pt_ratelimit_concurrency.c: a route's `concurrency:` (requests in
 * flight across all workers, a queue that waits without blocking). */
int pt_rl_conc_set(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
/* The "concurrency" zone and the LIMIT and LOG handlers, when a route
 * has the key. */
int pt_rl_conc_postconfig(pt_conf_t *cf);


#endif /* PT_RATELIMIT_H */
