/*
 * pt_upstream.h: upstreams, their targets, and the connections to them.
 *
 * An upstream is a named set of targets with timeouts and a keep-alive
 * policy. Which target serves a request is the balancer's choice (smooth
 * weighted round robin here; the lb module adds others through
 * pt_upstream_balancer_t). What every worker must agree on about a target
 * (requests in flight, health) lives in the "upstream" shm zone; what is
 * private to a worker (its idle keep-alive connections, its position in
 * the rotation) lives in the target itself, copied by fork.
 */

#ifndef PT_UPSTREAM_H
#define PT_UPSTREAM_H

#include "pt_core.h"
#include "pt_http.h"
#include "pt_queue.h"


/* A target's shared state, one per (upstream, address) in the zone;
 * reused across reloads while both stay configured. */
typedef struct pt_upstream_shared_s  pt_upstream_shared_t;

struct pt_upstream_shared_s {
    pt_upstream_shared_t  *next;
    volatile uint64_t      inflight;     /* requests in flight, all workers */
    volatile uint64_t      requests;     /* requests sent                   */
    volatile uint64_t      failures;     /* connect or response errors      */
    volatile uint32_t      healthy;      /* 1 until health checks say not   */
    uint32_t               key_len;
    char                   key[];        /* "upstream/address"              */
};

typedef struct {
    pt_addr_t              addr;
    pt_int_t               weight;
    pt_yaml_node_t        *node;
    pt_upstream_shared_t  *shared;       /* in shm; a private copy in -t    */
    pt_upstream_shared_t   local;        /* used when the zone had no room  */

    /* Per worker. */
    pt_int_t               current_weight;
    pt_queue_t             idle;         /* idle keep-alive connections     */
    pt_uint_t              nidle;
    pt_uint_t              busy;         /* connections in use              */
    pt_uint_t              peak;         /* busiest recently (keepalive auto) */
    pt_uint_t              peak_prev;
    pt_msec_t              peak_start;
} pt_upstream_target_t;


typedef struct pt_upstream_s  pt_upstream_t;

/* How a target is chosen. `tried` lists indices already used by this
 * request (retries), so a balancer can avoid them. */
typedef struct {
    const char  *name;
    int        (*init)(pt_conf_t *cf, pt_upstream_t *us);
    pt_upstream_target_t *(*pick)(pt_http_request_t *r, pt_upstream_t *us);
} pt_upstream_balancer_t;

struct pt_upstream_s {
    pt_str_t                       name;
    pt_yaml_node_t                *node;
    void                         **conf;       /* module configs (scope)  */
    pt_array_t                     targets;    /* pt_upstream_target_t    */
    pt_msec_t                      connect_timeout;
    pt_msec_t                      read_timeout;
    pt_msec_t                      write_timeout;
    pt_int_t                       keepalive;  /* -1: auto                */
    const pt_upstream_balancer_t  *balancer;
};


#define PT_UPSTREAM_KEEPALIVE_AUTO   -1
#define PT_UPSTREAM_KEEPALIVE_MAX    1024


extern pt_module_t  pt_upstream_module;

/* All upstreams of a cycle (pt_upstream_t *), in the order written. */
pt_array_t *pt_upstreams(pt_cycle_t *cycle);

/* The upstream a route proxies to, or NULL. */
pt_upstream_t *pt_upstream_of_route(pt_route_t *route);

/* Choose a target for r; NULL when none can take it. */
pt_upstream_target_t *pt_upstream_pick(pt_http_request_t *r,
    pt_upstream_t *us);

/* An idle keep-alive connection to target, or NULL. */
pt_connection_t *pt_upstream_keepalive_get(pt_upstream_target_t *t);

/* A keep-alive connection taken (+1) or a new one opened counts as busy;
 * release counts it back (-1). */
void pt_upstream_track_busy(pt_upstream_target_t *t, int delta);

/* Hand a finished connection back: kept when reusable and there is room,
 * else closed. */
void pt_upstream_release(pt_upstream_t *us, pt_upstream_target_t *t,
    pt_connection_t *c, int reusable);

/* Start a non-blocking connect; PT_OK (connected), PT_AGAIN (wait for the
 * write event) or PT_ERROR (errno kept). */
int pt_upstream_connect(pt_upstream_target_t *t, pt_connection_t **cp);

/* Close every idle connection (a draining worker). */
void pt_upstream_close_idle(pt_cycle_t *cycle);


#endif /* PT_UPSTREAM_H */
