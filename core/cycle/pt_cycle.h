/*
 * pt_cycle.h: one configuration generation.
 *
 * A cycle is everything built from one reading of the config: the module
 * configs, the listeners, the shared-memory zones and the open files, all
 * owned by the cycle's pool. Reload builds a new cycle next to the running
 * one; sockets and zones that match are shared between them, and whichever
 * cycle is dropped (the old one on success, the new one on failure) closes
 * only what the survivor does not use.
 */

#ifndef PT_CYCLE_H
#define PT_CYCLE_H

#include "pt_core.h"
#include "pt_array.h"
#include "pt_conf.h"
#include "pt_connection.h"
#include "pt_log.h"
#include "pt_shm.h"
#include "pt_slab.h"


/* A file opened for appending (logs), reopened on USR1. */
typedef struct pt_open_file_s  pt_open_file_t;

struct pt_open_file_s {
    pt_str_t        path;
    int             fd;
    void          (*flush)(pt_open_file_t *file, void *data);
    void           *data;
};


typedef int (*pt_shm_zone_init_pt)(pt_shm_zone_t *zone, void *old_data);

struct pt_shm_zone_s {
    pt_str_t             name;
    size_t               size;       /* final size, set when mapped      */
    size_t               min_size;
    pt_uint_t            weight;     /* share of the shm_size budget     */
    pt_module_t         *owner;
    pt_shm_zone_init_pt  init;
    pt_shm_t             shm;
    pt_slab_pool_t      *slab;
    void                *data;       /* the owner's root (= slab->data)  */
    pt_uint_t           *refs;       /* cycles of the master mapping it:
                                        unmapped when the last goes      */
    pt_yaml_node_t      *node;       /* where it was sized, for errors   */
    unsigned             reused:1;   /* mapping taken from the old cycle */
};


/* A configured scope (listener, upstream, route): its module configs are
 * merged with the global ones and validated generically. */
typedef struct {
    pt_conf_level_e   level;
    void             *object;
    void            **ctx;
} pt_conf_scope_t;


struct pt_cycle_s {
    pt_pool_t        *pool;
    pt_log_t         *log;
    pt_log_t          log_file;
    void            **conf;          /* global configs, by module index  */

    pt_array_t        listening;     /* pt_listening_t                   */
    pt_array_t        shm_zones;     /* pt_shm_zone_t                    */
    pt_array_t        open_files;    /* pt_open_file_t                   */
    pt_array_t        scopes;        /* pt_conf_scope_t                  */

    pt_str_t          conf_file;     /* absolute                         */
    pt_str_t          prefix;        /* absolute, ends with '/'          */

    uint64_t          generation;
    pt_msec_t         loaded_at;     /* epoch ms                         */

    /* What the process code needs from the modules' settings, filled in
     * by their postconfig so that it never reads a module's config. */
    pt_uint_t         max_connections;   /* client connections a worker
                                            serves at once               */
    pt_msec_t         graceful_timeout;  /* longest drain                */
    unsigned          helper:1;      /* a module asked for the helper    */
};


extern pt_cycle_t  *pt_cycle;         /* the one this process runs       */

/* The level of errors that stop a cycle from loading: emerg at start,
 * error on reload (the running generation goes on). */
extern int          pt_cycle_fatal_level;

/* Build a cycle from conf_file. With test_only, stop after validation
 * (no files, sockets or zones). NULL on failure; the errors were logged
 * to the current log (or printed by -t). */
pt_cycle_t *pt_cycle_init(pt_cycle_t *old, const char *conf_file,
    const char *prefix, int test_only);

/* Release what `cycle` owns and `keep` does not share, then its pool.
 * keep may be NULL (exit). */
void pt_cycle_free(pt_cycle_t *cycle, pt_cycle_t *keep);

/* Close the listening sockets of cycle that keep (may be NULL) does not
 * share. */
void pt_cycle_close_listeners(pt_cycle_t *cycle, pt_cycle_t *keep);

/* Ask, in postconfig, for the helper process to run this generation
 * (see pt_module_t.init_helper). */
void pt_cycle_request_helper(pt_conf_t *cf);

/* Register a scope (see pt_conf_scope_t). */
int pt_conf_scope_add(pt_conf_t *cf, pt_conf_level_e level, void *object,
    void **ctx);

/* A file to append to, opened with the cycle and reopened on USR1. */
pt_open_file_t *pt_conf_open_file(pt_conf_t *cf, const pt_str_t *path);
void pt_cycle_reopen_files(pt_cycle_t *cycle);
/* Run every module's tick_master (the master's loop, about once a
 * second). */
void pt_cycle_tick_master(pt_cycle_t *cycle);

/* Modules keep the zone pointers pt_shm_zone_add() returns, so the array
 * of zones is allocated once, whole, and never moves. */
#define PT_SHM_MAX_ZONES    32

/* Ask for a shared-memory zone (in postconfig). The size comes from
 * `shm: { name: SIZE }` if given, else min_size plus a weighted share of
 * what is left of shm_size. Zones with weight 0 get exactly min_size. */
pt_shm_zone_t *pt_shm_zone_add(pt_conf_t *cf, const char *name,
    size_t min_size, pt_uint_t weight, pt_module_t *owner,
    pt_shm_zone_init_pt init);

/* Work out each zone's size (after every module's postconfig). */
int pt_shm_zones_size(pt_conf_t *cf);

/* Map (or adopt from old) and initialise the zones. */
int pt_shm_zones_create(pt_cycle_t *cycle, pt_cycle_t *old);

/* Drop the cycle's hold on its zones; a mapping no other cycle holds
 * (a retired generation may still, while its workers drain) is unmapped. */
void pt_shm_zones_release(pt_cycle_t *cycle);

/* The master calls this when pid died: free any zone lock it held. */
void pt_shm_zones_unlock(pt_cycle_t *cycle, pid_t pid);

/* The configured listener for an address, to share its socket. */
pt_listening_t *pt_cycle_find_listener(pt_cycle_t *cycle,
    const pt_listening_t *like);


#endif /* PT_CYCLE_H */
