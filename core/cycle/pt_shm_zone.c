/*
 * pt_shm_zone.c: shared-memory zones of a cycle (see pt_cycle.h).
 *
 * A zone is one anonymous shared mapping with a slab allocator inside,
 * made by the master before any worker is forked, so pointers into it are
 * valid in every process. On reload a zone with the same name, owner and
 * size is adopted with its contents; a resized zone starts empty.
 */

#include "pt_cycle.h"
#include "pt_core_module.h"
#include "pt_string.h"


pt_shm_zone_t *
pt_shm_zone_add(pt_conf_t *cf, const char *name, size_t min_size,
    pt_uint_t weight, pt_module_t *owner, pt_shm_zone_init_pt init)
{
    size_t          i;
    pt_shm_zone_t  *z;

    z = cf->cycle->shm_zones.elts;

    for (i = 0; i < cf->cycle->shm_zones.nelts; i++) {
        if (strcmp(z[i].name.data, name) == 0) {
            if (z[i].owner != owner) {
                (void) pt_conf_error(cf, NULL,
                                     "shm zone \"%s\" is claimed by modules \"%s\" and \"%s\"",
                                     name,
                                     z[i].owner->name, owner->name);
                return NULL;
            }
            return &z[i];
        }
    }

    if (cf->cycle->shm_zones.nelts == PT_SHM_MAX_ZONES) {
        (void) pt_conf_error(cf, NULL, "more than %d shm zones",
                             PT_SHM_MAX_ZONES);
        return NULL;
    }

    z = pt_array_push(&cf->cycle->shm_zones);
    if (z == NULL) {
        return NULL;
    }

    memset(z, 0, sizeof(pt_shm_zone_t));

    if (pt_str_dup(cf->pool, &z->name, name, strlen(name)) == NULL) {
        return NULL;
    }

    z->min_size = pt_max(min_size, (size_t) 64 * 1024);
    z->weight = weight;
    z->owner = owner;
    z->init = init;

    return z;
}


/* Sizes from `shm:` and the shm_size budget; errors go to the config. */
int
pt_shm_zones_size(pt_conf_t *cf)
{
    size_t           i, j, budget, fixed, page;
    pt_uint_t        weights;
    pt_shm_zone_t   *z;
    pt_core_conf_t  *ccf;
    pt_yaml_node_t  *shm;

    ccf = pt_core_conf(cf->cycle);
    shm = ccf->shm;
    z = cf->cycle->shm_zones.elts;
    page = (size_t) sysconf(_SC_PAGESIZE);

    fixed = 0;
    weights = 0;

    for (i = 0; i < cf->cycle->shm_zones.nelts; i++) {
        z[i].size = 0;

        for (j = 0; shm && j < shm->n; j++) {
            if (strcmp(shm->pairs[j].key->scalar.data, z[i].name.data) == 0)
            {
                (void) pt_conf_parse_size(cf, shm->pairs[j].value,
                                          &z[i].size);
                z[i].node = shm->pairs[j].value;
            }
        }

        if (z[i].size == 0) {
            fixed += z[i].min_size;
            weights += z[i].weight;
        }
    }

    for (j = 0; shm && j < shm->n; j++) {
        for (i = 0; i < cf->cycle->shm_zones.nelts; i++) {
            if (strcmp(shm->pairs[j].key->scalar.data, z[i].name.data) == 0)
            {
                break;
            }
        }

        if (i == cf->cycle->shm_zones.nelts) {
            (void) pt_conf_error(cf, shm->pairs[j].key,
                                 "shm: no zone called \"%s\" in this configuration",
                                 shm->pairs[j].key->scalar.data);
        }
    }

    if (fixed > ccf->shm_size) {
        return pt_conf_error(cf, NULL,
                             "shm_size %zu is below the %zu bytes the zones need at least",
                             ccf->shm_size, fixed);
    }

    budget = ccf->shm_size - fixed;

    for (i = 0; i < cf->cycle->shm_zones.nelts; i++) {
        if (z[i].size == 0) {
            z[i].size = z[i].min_size;
            if (weights) {
                z[i].size += (size_t) ((double) budget * z[i].weight
                                       / weights);
            }
        }

        z[i].size = pt_align(z[i].size, page);
    }

    return cf->errors.nelts ? PT_ERROR : PT_OK;
}


static pt_shm_zone_t *
pt_shm_zone_find_old(pt_cycle_t *old, pt_shm_zone_t *zone)
{
    size_t          i;
    pt_shm_zone_t  *z;

    if (old == NULL) {
        return NULL;
    }

    z = old->shm_zones.elts;

    for (i = 0; i < old->shm_zones.nelts; i++) {
        if (pt_str_equal(&z[i].name, &zone->name)
            && z[i].owner == zone->owner)
        {
            return &z[i];
        }
    }

    return NULL;
}


int
pt_shm_zones_create(pt_cycle_t *cycle, pt_cycle_t *old)
{
    size_t          i;
    void           *old_data;
    pt_shm_zone_t  *z, *oz;

    z = cycle->shm_zones.elts;

    for (i = 0; i < cycle->shm_zones.nelts; i++) {
        oz = pt_shm_zone_find_old(old, &z[i]);
        old_data = NULL;

        if (oz && oz->size == z[i].size && oz->shm.addr) {
            z[i].shm = oz->shm;
            z[i].slab = oz->slab;
            z[i].refs = oz->refs;
            (*z[i].refs)++;
            z[i].reused = 1;
            old_data = oz->data;

        } else {
            if (oz) {
                pt_log_error(PT_LOG_WARN, NULL, 0,
                             "shm zone \"%s\" resized from %zu to %zu bytes: its state starts empty",
                             z[i].name.data, oz->size, z[i].size);
            }

            z[i].shm.size = z[i].size;

            if (pt_shm_alloc(&z[i].shm) != PT_OK) {
                pt_log_error(pt_cycle_fatal_level, NULL, errno,
                             "cannot map %zu bytes for shm zone \"%s\"",
                             z[i].size,
                             z[i].name.data);
                return PT_ERROR;
            }

            z[i].refs = malloc(sizeof(pt_uint_t));
            if (z[i].refs == NULL) {
                pt_shm_free(&z[i].shm);
                return PT_ERROR;
            }

            *z[i].refs = 1;

            z[i].slab = pt_slab_init(z[i].shm.addr, z[i].shm.size,
                                     z[i].name.data);
            if (z[i].slab == NULL) {
                pt_log_error(pt_cycle_fatal_level, NULL, 0,
                             "shm zone \"%s\" of %zu bytes is too small",
                             z[i].name.data,
                             z[i].size);
                return PT_ERROR;
            }
        }

        if (z[i].init && z[i].init(&z[i], old_data) != PT_OK) {
            pt_log_error(pt_cycle_fatal_level, NULL, 0,
                         "shm zone \"%s\" failed to initialise",
                         z[i].name.data);
            return PT_ERROR;
        }

        z[i].data = z[i].slab->data;
    }

    return PT_OK;
}


void
pt_shm_zones_release(pt_cycle_t *cycle)
{
    size_t          i;
    pt_shm_zone_t  *z;

    z = cycle->shm_zones.elts;

    for (i = 0; i < cycle->shm_zones.nelts; i++) {
        if (z[i].refs == NULL) {
            continue;       /* never mapped: a load that failed before */
        }

        if (--*z[i].refs == 0) {
            pt_shm_free(&z[i].shm);
            free(z[i].refs);
        }

        z[i].refs = NULL;
        z[i].shm.addr = NULL;
        z[i].slab = NULL;
    }
}


void
pt_shm_zones_unlock(pt_cycle_t *cycle, pid_t pid)
{
    size_t          i;
    pt_shm_zone_t  *z;

    if (cycle == NULL) {
        return;
    }

    z = cycle->shm_zones.elts;

    for (i = 0; i < cycle->shm_zones.nelts; i++) {
        if (z[i].slab && pt_shmtx_force_unlock(&z[i].slab->mutex, pid)) {
            pt_log_error(PT_LOG_ALERT, NULL, 0,
                         "shm zone \"%s\": lock held by dead process %d was released",
                         z[i].name.data,
                         (int) pid);
        }
    }
}
