/*
 * pt_ratelimit_shm.c: rate-limit state shared by every worker.
 *
 * The "ratelimit" zone holds one fixed table of slots; a slot is a key's
 * fingerprint, its state in one 64-bit word, and the time after which
 * that state is as good as new. Workers update a state with one
 * compare-and-swap, so no lock is ever taken on the request path and a
 * worker that dies mid-update leaves nothing held.
 *
 * - Token bucket is GCRA: the state is the theoretical arrival time
 *   (TAT). A request at `now` passes when TAT - now <= burst * T, and
 *   moves TAT to max(TAT, now) + T, with T = period / count.
 * - Sliding window packs the current window's number and the counts of
 *   it and the one before; the estimate is prev * (1 - elapsed) + cur.
 *
 * A key lives in one of 16 slots after its hash. A slot whose state is
 * as good as new (idle) is taken by any key without changing anybody's
 * limit; only when all 16 are busy is the least recently busy one given
 * up, so a full zone never fails a request. Fingerprints are 64-bit FNV-1a
 * with a seed drawn when the zone is made; the table survives a reload
 * when the zone's size does not change.
 */

#include "pt_ratelimit.h"
#include "pt_random.h"
#include "pt_string.h"


#define PT_RL_LAYOUT    0x524c0001
#define PT_RL_PROBES    16

typedef struct {
    volatile uint64_t    fp;           /* 0: free                       */
    volatile uint64_t    state;
    volatile uint64_t    idle_at;      /* usec: fresh again from then   */
} pt_rl_slot_t;

typedef struct {
    uint32_t             layout;
    uint64_t             seed;
    uint64_t             mask;         /* slots - 1                     */
    pt_rl_slot_t         slots[];
} pt_rl_root_t;


int
pt_rl_zone_init(pt_shm_zone_t *zone, void *old_data)
{
    size_t         used, free, n;
    pt_rl_root_t  *root;

    root = old_data;

    if (root && root->layout == PT_RL_LAYOUT) {
        return PT_OK;               /* the counts survive the reload */
    }

    pt_slab_usage(zone->slab, &used, &free);

    /* A power of two of slots in 7/8 of what is free (the slab's page
     * headers take some of the rest). */
    for (n = 64; (2 * n) * sizeof(pt_rl_slot_t) + sizeof(pt_rl_root_t)
                 <= free / 8 * 7; n *= 2)
    {
        /* void */
    }

    root = pt_slab_calloc(zone->slab,
                          sizeof(pt_rl_root_t) + n * sizeof(pt_rl_slot_t));
    if (root == NULL) {
        return PT_ERROR;
    }

    root->layout = PT_RL_LAYOUT;
    root->seed = pt_random_u64();
    root->mask = n - 1;
    zone->slab->data = root;

    return PT_OK;
}


/* A nonzero, well mixed fingerprint of (id, key). */
static uint64_t
pt_rl_fingerprint(pt_rl_root_t *root, uint64_t id, const pt_str_t *key)
{
    uint64_t  h;

    h = pt_hash_fnv1a(key->data, key->len, root->seed ^ id);
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;

    return h ? h : 1;
}


/* The slot of fp, claimed if need be; never NULL. */
static pt_rl_slot_t *
pt_rl_slot(pt_rl_root_t *root, uint64_t fp, uint64_t now_us)
{
    uint64_t       i, old;
    pt_rl_slot_t  *s, *free, *idle, *oldest;

    free = NULL;
    idle = NULL;
    oldest = NULL;

    for (i = 0; i < PT_RL_PROBES; i++) {
        s = &root->slots[(fp + i) & root->mask];
        old = __atomic_load_n(&s->fp, __ATOMIC_ACQUIRE);

        if (old == fp) {
            return s;
        }

        if (old == 0) {
            if (free == NULL) {
                free = s;
            }
        } else if (s->idle_at <= now_us) {
            if (idle == NULL) {
                idle = s;
            }
        } else if (oldest == NULL || s->idle_at < oldest->idle_at) {
            oldest = s;
        }
    }

    s = free ? free : idle ? idle : oldest;
    old = __atomic_load_n(&s->fp, __ATOMIC_ACQUIRE);

    /* Whoever wins the swap owns the slot; a loser's key simply shares it
     * this once. A slot taken from another key starts from a clean state
     * (an idle one's is as good as new, but for its own algorithm). */
    if (__atomic_compare_exchange_n(&s->fp, &old, fp, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)
        && s != free)
    {
        __atomic_store_n(&s->state, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&s->idle_at, 0, __ATOMIC_RELEASE);
    }

    return s;
}


static uint64_t
pt_rl_seconds_up(uint64_t us)
{
    return (us + 999999) / 1000000;
}


static void
pt_rl_gcra(pt_rl_slot_t *s, pt_rl_limit_t *lim, uint64_t now_us,
    pt_rl_verdict_t *v)
{
    uint64_t  t, tau, old, tat, new;

    t = lim->period_us / lim->count;
    if (t == 0) {
        t = 1;
    }

    tau = lim->burst * t;
    old = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

    for ( ;; ) {
        tat = old > now_us ? old : now_us;

        if (tat - now_us > tau) {
            v->allowed = 0;
            v->remaining = 0;
            v->reset = pt_rl_seconds_up(tat - now_us);
            v->retry_after = pt_rl_seconds_up(tat - now_us - tau);
            v->delay_us = 0;
            if (v->retry_after == 0) {
                v->retry_after = 1;
            }
            return;
        }

        new = tat + t;

        if (__atomic_compare_exchange_n(&s->state, &old, new, 1,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        {
            break;
        }
    }

    __atomic_store_n(&s->idle_at, new, __ATOMIC_RELEASE);

    v->allowed = 1;
    v->delay_us = tat - now_us;
    /* The requests that would still pass now, this one counted. */
    v->remaining = new - now_us <= tau ? (tau - (new - now_us)) / t + 1 : 0;
    v->reset = pt_rl_seconds_up(new - now_us);
    v->retry_after = 0;
}


#define PT_RL_IDX_MASK    0xffffffULL
#define PT_RL_CNT_MASK    0xfffffULL

static void
pt_rl_window(pt_rl_slot_t *s, pt_rl_limit_t *lim, uint64_t now_us,
    pt_rl_verdict_t *v)
{
    double    elapsed, estimate;
    uint64_t  window, idx, old, oidx, cur, prev, d, new, end;

    window = now_us / lim->period_us;
    idx = window & PT_RL_IDX_MASK;
    elapsed = (double) (now_us % lim->period_us) / (double) lim->period_us;
    end = (window + 1) * lim->period_us;

    old = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

    for ( ;; ) {
        oidx = old >> 40;
        d = (idx - oidx) & PT_RL_IDX_MASK;
        cur = 0;
        prev = 0;

        if (d == 0) {
            cur = (old >> 20) & PT_RL_CNT_MASK;
            prev = old & PT_RL_CNT_MASK;
        } else if (d == 1) {
            prev = (old >> 20) & PT_RL_CNT_MASK;
        }

        estimate = (double) prev * (1.0 - elapsed) + (double) cur;

        if (estimate + 1.0 > (double) lim->count || cur == PT_RL_CNT_MASK) {
            v->allowed = 0;
            v->remaining = 0;
            v->reset = pt_rl_seconds_up(end - now_us);
            v->retry_after = v->reset ? v->reset : 1;
            v->delay_us = 0;
            return;
        }

        new = idx << 40 | (cur + 1) << 20 | prev;

        if (__atomic_compare_exchange_n(&s->state, &old, new, 1,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        {
            break;
        }
    }

    /* Both windows it counts are over after the next one ends. */
    __atomic_store_n(&s->idle_at, end + lim->period_us, __ATOMIC_RELEASE);

    v->allowed = 1;
    v->remaining = (uint64_t) ((double) lim->count - estimate - 1.0);
    v->reset = pt_rl_seconds_up(end - now_us);
    v->retry_after = 0;
    v->delay_us = 0;
}


void
pt_rl_check(pt_shm_zone_t *zone, pt_rl_limit_t *lim, const pt_str_t *key,
    uint64_t now_us, pt_rl_verdict_t *v)
{
    pt_rl_root_t  *root;
    pt_rl_slot_t  *s;

    root = zone->slab->data;
    s = pt_rl_slot(root, pt_rl_fingerprint(root, lim->id, key), now_us);

    if (lim->algorithm == PT_RL_SLIDING_WINDOW) {
        pt_rl_window(s, lim, now_us, v);
    } else {
        pt_rl_gcra(s, lim, now_us, v);
    }
}


/* Rejection counters are slots too, under a tag no limit id produces,
 * and never idle. */
#define PT_RL_TAG_REJECTED    0x72656a6563746564ULL
#define PT_RL_TAG_REDIS       0x7265646973657272ULL

static pt_rl_slot_t *
pt_rl_counter(pt_shm_zone_t *zone, uint64_t tag, const pt_str_t *route)
{
    pt_rl_slot_t  *s;
    pt_rl_root_t  *root;

    root = zone->slab->data;
    s = pt_rl_slot(root, pt_rl_fingerprint(root, tag, route), 0);
    __atomic_store_n(&s->idle_at, UINT64_MAX, __ATOMIC_RELEASE);

    return s;
}


void
pt_rl_count_rejected(pt_shm_zone_t *zone, const pt_str_t *route)
{
    __atomic_add_fetch(&pt_rl_counter(zone, PT_RL_TAG_REJECTED, route)
                        ->state, 1, __ATOMIC_RELAXED);
}


uint64_t
pt_rl_rejected(pt_shm_zone_t *zone, const pt_str_t *route)
{
    return __atomic_load_n(&pt_rl_counter(zone, PT_RL_TAG_REJECTED, route)
                           ->state, __ATOMIC_RELAXED);
}


void
pt_rl_count_redis_failure(pt_shm_zone_t *zone, const pt_str_t *route)
{
    __atomic_add_fetch(&pt_rl_counter(zone, PT_RL_TAG_REDIS, route)->state,
                       1, __ATOMIC_RELAXED);
}


uint64_t
pt_rl_redis_failures(pt_shm_zone_t *zone, const pt_str_t *route)
{
    return __atomic_load_n(&pt_rl_counter(zone, PT_RL_TAG_REDIS, route)
                           ->state, __ATOMIC_RELAXED);
}
