/*
 * pt_conf.h: turning the YAML tree into typed configuration.
 *
 * The core walks the tree scope by scope (global, then each listener,
 * upstream and route) and hands every key to the module that declared it
 * for that scope; a key nobody declared is an error. Errors are collected
 * (each "FILE:LINE:COL: message") so that `portico -t` shows all of them,
 * not just the first.
 */

#ifndef PT_CONF_H
#define PT_CONF_H

#include "pt_core.h"
#include "pt_array.h"
#include "pt_module.h"
#include "pt_yaml.h"
#include "pt_conf_value.h"


#define PT_CONF_MAX_ERRORS   50

#define PT_CONF_UNSET        -1
#define PT_CONF_UNSET_UINT   ((pt_uint_t) -1)
#define PT_CONF_UNSET_SIZE   ((size_t) -1)
#define PT_CONF_UNSET_MSEC   ((pt_msec_t) -1)
#define PT_CONF_UNSET_PTR    ((void *) -1)
#define PT_CONF_ERROR_PTR    ((void *) -2)  /* create_conf failed */

#define pt_conf_merge_value(conf, prev, def)                                \
    if ((conf) == PT_CONF_UNSET) {                                          \
        (conf) = ((prev) == PT_CONF_UNSET) ? (def) : (prev);                \
    }

#define pt_conf_merge_msec(conf, prev, def)                                 \
    if ((conf) == PT_CONF_UNSET_MSEC) {                                     \
        (conf) = ((prev) == PT_CONF_UNSET_MSEC) ? (def) : (prev);           \
    }

#define pt_conf_merge_size(conf, prev, def)                                 \
    if ((conf) == PT_CONF_UNSET_SIZE) {                                     \
        (conf) = ((prev) == PT_CONF_UNSET_SIZE) ? (def) : (prev);           \
    }

#define pt_conf_merge_ptr(conf, prev, def)                                  \
    if ((conf) == PT_CONF_UNSET_PTR) {                                      \
        (conf) = ((prev) == PT_CONF_UNSET_PTR) ? (def) : (prev);            \
    }


struct pt_conf_s {
    pt_cycle_t        *cycle;       /* being built (opaque to config)    */
    pt_pool_t         *pool;        /* the cycle's pool                  */
    pt_str_t           conf_file;   /* absolute, NUL-terminated          */
    pt_str_t           prefix;      /* absolute, ends with '/'           */
    pt_conf_level_e    level;       /* scope being parsed                */
    void             **ctx;         /* module configs at that scope      */
    void              *scope;       /* pt_route_t, pt_upstream_t or the
                                       listener being parsed; NULL global */
    pt_array_t         errors;      /* pt_str_t "FILE:LINE:COL: ..."     */
    unsigned           test_only:1; /* -t: no sockets, no shm            */
};


/* Add "FILE:LINE:COL: message" for node (or no position if node is NULL)
 * to the error list; always returns PT_ERROR. */
int pt_conf_error(pt_conf_t *cf, pt_yaml_node_t *node, const char *fmt, ...)
    PT_PRINTF(3, 4);

/* The module configs for every module at a scope; a module without a
 * create_conf for that level gets NULL. */
void **pt_conf_create_level(pt_conf_t *cf, pt_conf_level_e level);

/* Hand each key of map to the module declaring it at cf->level. Keys
 * listed in `skip` (NULL-terminated, may be NULL) are left to the caller.
 * Unknown keys and wrong node types are errors. A map key whose subkeys
 * several modules own is a section: its subkey SUB goes to the command
 * named "key.SUB" (lb owns "health.active", upstream "health.passive"). */
int pt_conf_dispatch(pt_conf_t *cf, pt_yaml_node_t *map, const char **skip);

/* Merge each module's config at a scope with its parent's, then run the
 * modules' validate on it (cf->level, cf->scope, cf->ctx set by caller). */
int pt_conf_merge_level(pt_conf_t *cf, void **parent, void **child);
int pt_conf_validate_level(pt_conf_t *cf, void **ctx);

/* Type checks with an error in the message. */
int pt_conf_expect(pt_conf_t *cf, pt_yaml_node_t *node, int type,
    const char *what);

/* The path resolved against the prefix, NUL-terminated, in the cycle pool. */
int pt_conf_full_path(pt_conf_t *cf, const pt_str_t *path, pt_str_t *full);


/* Generic setters: `cmd->offset` locates the field inside `conf`. */
typedef struct {
    int64_t      min;
    int64_t      max;
} pt_conf_bounds_t;

typedef struct {
    const char  *name;
    pt_uint_t    value;
} pt_conf_enum_t;

int pt_conf_set_flag(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);          /* int: 0/1             */
int pt_conf_set_num(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);          /* pt_int_t, post bounds */
int pt_conf_set_size(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);          /* size_t               */
int pt_conf_set_msec(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);          /* pt_msec_t            */
int pt_conf_set_str(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);          /* pt_str_t             */
int pt_conf_set_path(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);          /* pt_str_t, prefixed   */
int pt_conf_set_enum(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);          /* pt_uint_t, post table*/
int pt_conf_set_addr(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);          /* pt_addr_t            */

/* Parse a scalar with a value parser and report its reason on failure. */
int pt_conf_parse_msec(pt_conf_t *cf, pt_yaml_node_t *node, pt_msec_t *ms);
int pt_conf_parse_size(pt_conf_t *cf, pt_yaml_node_t *node, size_t *size);
int pt_conf_parse_flag(pt_conf_t *cf, pt_yaml_node_t *node, int *flag);
/* An integer from min to max; the error names it `what`. */
int pt_conf_parse_int(pt_conf_t *cf, pt_yaml_node_t *node, const char *what,
    int64_t min, int64_t max, int64_t *v);


#endif /* PT_CONF_H */
