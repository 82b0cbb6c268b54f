/*
 * pt_metrics_shm.c: the counters of every worker in one shared table.
 *
 * The "metrics" zone holds a fixed table of slots, one per series (or per
 * histogram): its key's fingerprint, its labels as text for /metrics,
 * and its values, which workers bump with atomic adds. A key is claimed
 * with one compare-and-swap on the fingerprint, so no lock is taken on
 * the request path and a worker that dies leaves nothing held; its
 * counts stay, since they were never its own.
 *
 * Keys are hashes of the names (route, upstream, method, status, cache
 * result), never of config indices, so a reload finds the same slots:
 * the zone has a fixed size and is adopted as is by the next generation,
 * and no counter ever goes backwards. A full table drops the update
 * (counted and logged at most once a minute) and never fails a request.
 */

#include "pt_metrics.h"
#include "pt_random.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_METRICS_LAYOUT    0x4d540001
#define PT_METRICS_PROBES    64

const uint64_t  pt_metrics_bounds_us[PT_METRICS_NBUCKETS - 1] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
    5000000, 10000000
};

const char  *pt_metrics_bounds_text[PT_METRICS_NBUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10", "+Inf"
};


int
pt_metrics_zone_init(pt_shm_zone_t *zone, void *old_data)
{
    size_t              used, free, n;
    pt_metrics_root_t  *root;

    root = old_data;

    if (root && root->layout == PT_METRICS_LAYOUT) {
        return PT_OK;               /* the counts survive the reload */
    }

    pt_slab_usage(zone->slab, &used, &free);

    /* A power of two of slots in 7/8 of what is free (the slab's page
     * headers take some of the rest). */
    for (n = 64; (2 * n) * sizeof(pt_metrics_slot_t)
                 + sizeof(pt_metrics_root_t) <= free / 8 * 7; n *= 2)
    {
        /* void */
    }

    root = pt_slab_calloc(zone->slab, sizeof(pt_metrics_root_t)
                                      + n * sizeof(pt_metrics_slot_t));
    if (root == NULL) {
        return PT_ERROR;
    }

    root->layout = PT_METRICS_LAYOUT;
    root->seed = pt_random_u64();
    root->nslots = n;
    zone->slab->data = root;

    return PT_OK;
}


/* A nonzero fingerprint of the whole key. */
static uint64_t
pt_metrics_fingerprint(pt_metrics_root_t *root, pt_metrics_kind_e kind,
    const pt_str_t *name, const char *label, unsigned status)
{
    uint64_t  h;

    h = pt_hash_fnv1a(label, strlen(label) + 1,
                      root->seed ^ ((uint64_t) kind << 32 | status));
    h = pt_hash_fnv1a(name->data, name->len, h);
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;

    return h ? h : 1;
}


static void
pt_metrics_dropped(pt_metrics_root_t *root)
{
    uint64_t  now, last;

    __atomic_add_fetch(&root->dropped, 1, __ATOMIC_RELAXED);

    now = pt_current_epoch_msec / 1000;
    last = __atomic_load_n(&root->dropped_logged, __ATOMIC_RELAXED);

    /* One worker wins the minute's line. */
    if (now >= last + 60
        && __atomic_compare_exchange_n(&root->dropped_logged, &last, now, 0,
                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    {
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "metrics: the \"metrics\" zone is full (%llu slots); new series are not counted (%llu updates dropped so far); give it more with shm: { metrics: SIZE }",
                     (unsigned long long) root->nslots,
                     (unsigned long long)
                         __atomic_load_n(&root->dropped, __ATOMIC_RELAXED));
    }
}


pt_metrics_slot_t *
pt_metrics_slot(pt_metrics_root_t *root, pt_metrics_kind_e kind,
    const pt_str_t *name, const char *label, unsigned status)
{
    size_t              len;
    uint64_t            fp, i, old;
    pt_metrics_slot_t  *s;

    fp = pt_metrics_fingerprint(root, kind, name, label, status);

    for (i = 0; i < PT_METRICS_PROBES && i < root->nslots; i++) {
        s = &root->slots[(fp + i) & (root->nslots - 1)];
        old = __atomic_load_n(&s->fp, __ATOMIC_ACQUIRE);

        if (old == 0
            && !__atomic_compare_exchange_n(&s->fp, &old, fp, 0,
                                            __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
        {
            /* Another worker took it first: for this key or another. */
            if (old == fp) {
                return s;
            }
            continue;
        }

        if (old == fp) {
            return s;
        }

        if (old != 0) {
            continue;
        }

        /* Ours: the labels go in before readers may see the slot. The
         * values may already count; they are atomic either way. */
        len = pt_min(name->len, (size_t) PT_METRICS_NAME_MAX);
        memcpy(s->name, name->data, len);
        s->name_len = (uint8_t) len;
        s->kind = (uint8_t) kind;
        s->status = (uint16_t) status;
        memcpy(s->label, label,
               pt_min(strlen(label), (size_t) PT_METRICS_LABEL_MAX - 1));
        __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);

        return s;
    }

    pt_metrics_dropped(root);

    return NULL;
}


void
pt_metrics_observe(pt_metrics_slot_t *s, uint64_t us)
{
    size_t  i;

    for (i = 0; i < PT_METRICS_NBUCKETS - 1; i++) {
        if (us <= pt_metrics_bounds_us[i]) {
            break;
        }
    }

    __atomic_add_fetch(&s->v[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->v[PT_METRICS_SUM], us, __ATOMIC_RELAXED);
}
