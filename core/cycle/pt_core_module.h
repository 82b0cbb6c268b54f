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


#endif /* PT_CORE_MODULE_H */
