/*
 * pt_core_module.c: the process-wide settings: workers, daemon, pid_file,
 * error_log, log_level, shm_size and shm.
 */

#include "pt_core_module.h"
#include "pt_string.h"
#include "pt_time.h"


static void *pt_core_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_core_merge_conf(pt_conf_t *cf, void *parent, void *child);
static int pt_core_set_workers(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_core_set_error_log(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_core_set_log_level(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_core_set_shm(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_core_postconfig(pt_conf_t *cf);
static int pt_core_shm_init(pt_shm_zone_t *zone, void *old_data);


pt_core_shm_t  *pt_core_shm;
pt_proc_shm_t  *pt_proc_self;


static const pt_command_t  pt_core_commands[] = {

    { "workers", PT_CONF_GLOBAL | PT_CONF_SCALAR, pt_core_set_workers,
      offsetof(pt_core_conf_t, workers), NULL },

    { "daemon", PT_CONF_GLOBAL | PT_CONF_SCALAR, pt_conf_set_flag,
      offsetof(pt_core_conf_t, daemon), NULL },

    { "pid_file", PT_CONF_GLOBAL | PT_CONF_SCALAR, pt_conf_set_path,
      offsetof(pt_core_conf_t, pid_file), NULL },

    { "error_log", PT_CONF_GLOBAL | PT_CONF_SCALAR, pt_core_set_error_log,
      offsetof(pt_core_conf_t, error_log), NULL },

    { "log_level", PT_CONF_GLOBAL | PT_CONF_SCALAR, pt_core_set_log_level,
      offsetof(pt_core_conf_t, log_level), NULL },

    { "shm_size", PT_CONF_GLOBAL | PT_CONF_SCALAR, pt_conf_set_size,
      offsetof(pt_core_conf_t, shm_size), NULL },

    { "shm", PT_CONF_GLOBAL | PT_CONF_MAP, pt_core_set_shm,
      offsetof(pt_core_conf_t, shm), NULL },

    pt_null_command
};


pt_module_t  pt_core_module = {
    .name = "core",
    .abi = PT_MODULE_ABI,
    .commands = pt_core_commands,
    .create_conf = pt_core_create_conf,
    .merge_conf = pt_core_merge_conf,
    .postconfig = pt_core_postconfig,
};


static void *
pt_core_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_core_conf_t  *ccf;

    if (level != PT_CONF_LEVEL_GLOBAL) {
        return NULL;
    }

    ccf = pt_pcalloc(cf->pool, sizeof(pt_core_conf_t));
    if (ccf == NULL) {
        return PT_CONF_ERROR_PTR;
    }

    ccf->workers = PT_CONF_UNSET;
    ccf->daemon = PT_CONF_UNSET;
    ccf->log_level = PT_CONF_UNSET;
    ccf->shm_size = PT_CONF_UNSET_SIZE;

    return ccf;
}


static int
pt_core_merge_conf(pt_conf_t *cf, void *parent, void *child)
{
    pt_str_t         def;
    pt_core_conf_t  *ccf;

    (void) parent;
    ccf = child;

    pt_conf_merge_value(ccf->workers, PT_CONF_UNSET, 0);
    pt_conf_merge_value(ccf->daemon, PT_CONF_UNSET, 0);
    pt_conf_merge_value(ccf->log_level, PT_CONF_UNSET, PT_LOG_INFO);
    pt_conf_merge_size(ccf->shm_size, PT_CONF_UNSET_SIZE,
                       (size_t) 64 * 1024 * 1024);

    if (ccf->pid_file.data == NULL) {
        pt_str_set(&def, "logs/portico.pid");
        if (pt_conf_full_path(cf, &def, &ccf->pid_file) != PT_OK) {
            return PT_ERROR;
        }
    }

    if (ccf->error_log.data == NULL) {
        pt_str_set(&def, "logs/error.log");
        if (pt_conf_full_path(cf, &def, &ccf->error_log) != PT_OK) {
            return PT_ERROR;
        }
    }

    if (ccf->shm_size < (size_t) 1024 * 1024) {
        return pt_conf_error(cf, NULL, "shm_size must be at least 1m");
    }

    return PT_OK;
}


static int
pt_core_set_workers(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int64_t          v;
    const char      *reason;
    pt_core_conf_t  *ccf;

    ccf = conf;

    if (strcmp(node->scalar.data, "auto") == 0) {
        ccf->workers = 0;
        return PT_OK;
    }

    if (pt_parse_int(node->scalar.data, node->scalar.len, 1, 256, &v,
                     &reason) != PT_OK)
    {
        return pt_conf_error(cf, node,
                             "workers: %s (a number from 1 to 256 or auto): \"%s\"",
                             reason, node->scalar.data);
    }

    ccf->workers = (pt_int_t) v;

    return PT_OK;
}


static int
pt_core_set_error_log(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    pt_core_conf_t  *ccf;

    ccf = conf;

    if (strcmp(node->scalar.data, "stderr") == 0) {
        pt_str_set(&ccf->error_log, "stderr");
        return PT_OK;
    }

    return pt_conf_set_path(cf, cmd, node, conf);
}


static int
pt_core_set_log_level(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int              level;
    pt_core_conf_t  *ccf;

    ccf = conf;

    level = pt_log_level_parse(node->scalar.data, node->scalar.len);
    if (level < 0) {
        return pt_conf_error(cf, node,
                             "log_level: \"%s\" is not one of: debug, info, notice, warn, error, crit, alert, emerg",
                             node->scalar.data);
    }

    ccf->log_level = level;

    return PT_OK;
}


static int
pt_core_set_shm(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int              rc;
    size_t           i, size;
    pt_core_conf_t  *ccf;

    ccf = conf;
    rc = PT_OK;

    /* Check the sizes now; the zone names are checked in postconfig, once
     * every module has asked for its zones. */
    for (i = 0; i < node->n; i++) {
        if (pt_conf_parse_size(cf, node->pairs[i].value, &size) != PT_OK) {
            rc = PT_ERROR;
        } else if (size < 64 * 1024) {
            rc = pt_conf_error(cf, node->pairs[i].value,
                               "shm: zone \"%s\" must be at least 64k",
                               node->pairs[i].key->scalar.data);
        }
    }

    ccf->shm = node;

    return rc;
}


pt_uint_t
pt_core_workers(pt_cycle_t *cycle)
{
    long             n;
    pt_core_conf_t  *ccf;

    ccf = pt_core_conf(cycle);

    if (ccf->workers > 0) {
        return (pt_uint_t) ccf->workers;
    }

    n = sysconf(_SC_NPROCESSORS_ONLN);

    return n > 0 ? (pt_uint_t) n : 1;
}


static int
pt_core_postconfig(pt_conf_t *cf)
{
    pt_shm_zone_t  *zone;

    /* The process table and reload counters: fixed size, outside the
     * weighted budget, so it is always adopted across reloads. */
    zone = pt_shm_zone_add(cf, "core", sizeof(pt_core_shm_t) + 64 * 1024, 0,
                           &pt_core_module, pt_core_shm_init);

    return zone ? PT_OK : PT_ERROR;
}


static int
pt_core_shm_init(pt_shm_zone_t *zone, void *old_data)
{
    pt_core_shm_t  *sh;

    sh = old_data;

    if (sh == NULL || sh->layout != PT_CORE_SHM_LAYOUT) {
        sh = pt_slab_calloc(zone->slab, sizeof(pt_core_shm_t));
        if (sh == NULL) {
            return PT_ERROR;
        }

        sh->layout = PT_CORE_SHM_LAYOUT;
        sh->master_start_ms = pt_current_epoch_msec;
        sh->generation = 1;
        sh->loaded_at_ms = pt_current_epoch_msec;
    }

    zone->slab->data = sh;
    pt_core_shm = sh;

    return PT_OK;
}


uint64_t
pt_core_requests_total(void)
{
    uint64_t   n;
    pt_uint_t  i;

    if (pt_core_shm == NULL) {
        return 0;
    }

    n = pt_core_shm->requests_retired;

    for (i = 0; i < PT_MAX_PROCESSES; i++) {
        if (pt_core_shm->procs[i].pid) {
            n += pt_core_shm->procs[i].requests;
        }
    }

    return n;
}
