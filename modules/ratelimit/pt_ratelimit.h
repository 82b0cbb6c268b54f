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
    unsigned             preaccess:1;  /* keyed by ${remote_addr} only */
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
} pt_rl_verdict_t;


typedef struct pt_rl_conc_s      pt_rl_conc_t;
typedef struct pt_rl_conc_ctx_s  pt_rl_conc_ctx_t;

/* A route's config. */
typedef struct {
    pt_array_t           limits;       /* pt_rl_limit_t                 */
    pt_rl_conc_t        *concurrency;  /* NULL: not limited             */
} pt_rl_route_conf_t;

/* A request's state: the limit that says the most about it, for the
 * headers, and its place under the route's concurrency limit. */
typedef struct {
    pt_rl_limit_t       *limit;
    pt_rl_verdict_t      verdict;
    pt_rl_conc_ctx_t    *conc;
} pt_rl_ctx_t;


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


/* pt_ratelimit_concurrency.c: a route's `concurrency:` (requests in
 * flight across all workers, a queue that waits without blocking). */
int pt_rl_conc_set(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
/* The "concurrency" zone and the LIMIT and LOG handlers, when a route
 * has the key. */
int pt_rl_conc_postconfig(pt_conf_t *cf);


#endif /* PT_RATELIMIT_H */
