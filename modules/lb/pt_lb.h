/*
 * pt_lb.h: the lb module's shared types (module-internal).
 *
 * pt_lb_module.c owns an upstream's `balance`, `hash_key` and `health`
 * keys and the least_conn and p2c balancers; pt_lb_hash.c the consistent
 * hash; pt_lb_health.c the active probes, run by the helper process.
 */

#ifndef PT_LB_H
#define PT_LB_H

#include "pt_upstream.h"


typedef struct {
    pt_template_t       *hash_key;
    pt_yaml_node_t      *hash_node;

    /* health.active */
    unsigned             active:1;
    pt_str_t             path;
    pt_msec_t            interval;
    pt_msec_t            timeout;
    pt_uint_t            healthy;      /* successes to come back up      */
    pt_uint_t            unhealthy;    /* failures to go down            */
} pt_lb_conf_t;

extern pt_module_t                    pt_lb_module;
extern const pt_upstream_balancer_t   pt_lb_hash;

#define pt_lb_conf(us)  ((pt_lb_conf_t *) (us)->conf[pt_lb_module.index])

/* pt_lb_health.c */
int pt_lb_health_init_helper(pt_cycle_t *cycle);
void pt_lb_health_exit_helper(pt_cycle_t *cycle);


#endif /* PT_LB_H */
