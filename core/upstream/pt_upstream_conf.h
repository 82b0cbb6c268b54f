/*
 * pt_upstream_conf.h: what the upstream module's files share (internal
 * to pt_upstream.c, pt_upstream_peer.c and pt_upstream_dns.c).
 */

#ifndef PT_UPSTREAM_CONF_H
#define PT_UPSTREAM_CONF_H

#include "pt_upstream.h"
#include "pt_resolver.h"


typedef struct {
    pt_array_t           upstreams;    /* pt_upstream_t *                 */
    pt_shm_zone_t       *zone;
    pt_resolver_conf_t   resolver;
} pt_upstream_main_conf_t;

typedef struct {
    pt_yaml_node_t      *node;         /* the route's `upstream:` value   */
    pt_upstream_t       *upstream;
    pt_yaml_node_t      *websocket_node;
    int                  websocket;    /* websocket: true                 */
} pt_upstream_route_conf_t;


#define pt_upstream_main_conf(cycle) \
    ((pt_upstream_main_conf_t *) (cycle)->conf[pt_upstream_module.index])

/* pt_upstream_peer.c */
int pt_upstream_zone_init(pt_shm_zone_t *zone, void *old_data);
int pt_upstream_groups_attach(pt_cycle_t *cycle);
void pt_upstream_groups_free(pt_cycle_t *cycle);
/* Close every idle kept-alive connection (a worker's or the helper's
 * exit). */
void pt_upstream_exit_worker(pt_cycle_t *cycle);

/* pt_upstream_dns.c: resolve at load (master), then as TTLs run out
 * (helper). */
int pt_upstream_resolve_all(pt_cycle_t *cycle);
int pt_upstream_init_helper(pt_cycle_t *cycle);
void pt_upstream_exit_helper(pt_cycle_t *cycle);


#endif /* PT_UPSTREAM_CONF_H */
