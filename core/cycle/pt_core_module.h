/*
 * pt_core_module.h: the process-wide settings (the "core" module).
 */

#ifndef PT_CORE_MODULE_H
#define PT_CORE_MODULE_H

#include "pt_core.h"
#include "pt_conf.h"
#include "pt_cycle.h"


typedef struct {
    pt_int_t         workers;       /* 0 = auto: one per CPU             */
    int              daemon;
    pt_str_t         pid_file;      /* absolute                          */
    pt_str_t         error_log;     /* absolute, or "stderr"             */
    pt_int_t         log_level;
    size_t           shm_size;
    pt_yaml_node_t  *shm;           /* map zone name -> size, or NULL    */
} pt_core_conf_t;

extern pt_module_t  pt_core_module;

#define pt_core_conf(cycle) \
    ((pt_core_conf_t *) (cycle)->conf[pt_core_module.index])

/* Number of workers to run (auto resolved). */
pt_uint_t pt_core_workers(pt_cycle_t *cycle);


/* The "core" zone: the process table and the gateway's own counters.
 * The master fills a slot when it forks a child, the child keeps its
 * counters there, /status reads them all. */
#define PT_MAX_PROCESSES      1024

/* One process's public counters, one cache line each so workers never
 * contend. */
typedef struct {
    volatile int32_t    pid;          /* 0: slot free                  */
    volatile uint32_t   generation;
    volatile uint64_t   connections;  /* client connections open       */
    volatile uint64_t   idle;         /* of those, between requests    */
    volatile uint64_t   requests;     /* requests finished             */
    volatile uint64_t   started_ms;   /* epoch ms                      */
    volatile uint32_t   helper;       /* the helper, not a worker      */
    char                pad[20];
} pt_proc_shm_t;

typedef struct {
    uint32_t            layout;       /* PT_CORE_SHM_LAYOUT            */
    uint32_t            pad;
    uint64_t            master_start_ms;
    volatile uint64_t   generation;
    volatile uint64_t   loaded_at_ms;
    volatile uint64_t   reloads_ok;
    volatile uint64_t   reloads_failed;
    volatile uint64_t   requests_retired; /* from processes now gone   */
    pt_proc_shm_t       procs[PT_MAX_PROCESSES];
} pt_core_shm_t;

#define PT_CORE_SHM_LAYOUT    0x50540002

extern pt_core_shm_t  *pt_core_shm;    /* the zone's root               */
extern pt_proc_shm_t  *pt_proc_self;   /* this child's slot, or NULL    */

/* Requests finished across all processes, ever (since the zone began). */
uint64_t pt_core_requests_total(void);


#endif /* PT_CORE_MODULE_H */
