/*
 * test_slab.c: the shared-memory slab allocator.
 */

#include <sys/mman.h>
#include <sys/wait.h>
#include <signal.h>

#include "pt_core.h"
#include "pt_log.h"
#include "pt_time.h"
#include "pt_shm.h"
#include "pt_slab.h"

#include "tap.h"
#include "tap_log.h"


#define ZONE_SIZE     (1024 * 1024)
#define STRESS_SIZE   (4 * 1024 * 1024)
#define NCHILD        4
#define NOPS          20000
#define NLIVE         64
#define MAXBLK        1024


typedef struct {
    char    *p;
    size_t   size;
} blk_t;


/* What each stress child reports back through shared memory. */
typedef struct {
    uint64_t  allocs;
    uint64_t  nulls;
} report_t;


static size_t    page;


static size_t
slot_size(size_t size)
{
    size_t  s;

    for (s = 8; s < size; s <<= 1) {
        /* void */
    }

    return s;
}


static size_t
class_of(size_t size)
{
    size_t  s, cls;

    cls = 0;

    for (s = 8; s < size; s <<= 1) {
        cls++;
    }

    return cls;
}


static void
fill(char *p, size_t size, unsigned seed)
{
    size_t  i;

    for (i = 0; i < size; i++) {
        p[i] = (char) (seed + i * 7);
    }
}


static int
check(const char *p, size_t size, unsigned seed)
{
    size_t  i;

    for (i = 0; i < size; i++) {
        if (p[i] != (char) (seed + i * 7)) {
            return 0;
        }
    }

    return 1;
}


static pt_slab_pool_t *
new_pool(void *mem, size_t size, const char *name)
{
    /* Garbage first: init must not rely on zeroed memory. */
    memset(mem, 0xee, size);

    return pt_slab_init(mem, size, name);
}


/* Every page free, no slot or run in use. */
static int
pool_is_empty(pt_slab_pool_t *pool)
{
    size_t          i, n, total, nfree;
    pt_slab_stat_t  st[PT_SLAB_STATS_MAX];

    n = pt_slab_stats(pool, st, PT_SLAB_STATS_MAX, &total, &nfree);

    if (total != nfree) {
        printf("# pages: %zu total, %zu free\n", total, nfree);
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (st[i].used != 0 || (st[i].size != 0 && st[i].total != 0)) {
            printf("# class %zu: total %llu used %llu\n", st[i].size,
                   (unsigned long long) st[i].total,
                   (unsigned long long) st[i].used);
            return 0;
        }
    }

    return 1;
}


/* The free pages form a single run: only true if every freed run merged
 * with its neighbours. */
static int
pool_is_one_run(pt_slab_pool_t *pool)
{
    char    *p;
    size_t   total;

    pt_slab_stats(pool, NULL, 0, &total, NULL);

    p = pt_slab_alloc(pool, total * page);
    if (p != pool->start) {
        return 0;
    }

    pt_slab_free(pool, p);

    return pool_is_empty(pool);
}


static uint64_t
class_stat(pt_slab_pool_t *pool, size_t cls, int field)
{
    pt_slab_stat_t  st[PT_SLAB_STATS_MAX];

    pt_slab_stats(pool, st, PT_SLAB_STATS_MAX, NULL, NULL);

    switch (field) {

    case 't':
        return st[cls].total;

    case 'u':
        return st[cls].used;

    case 'r':
        return st[cls].reqs;

    default:
        return st[cls].fails;
    }
}


static void
test_init(char *mem)
{
    size_t           n, total, nfree, i;
    pt_slab_pool_t  *pool;
    pt_slab_stat_t   st[PT_SLAB_STATS_MAX];

    ok(pt_slab_init(NULL, ZONE_SIZE, "x") == NULL, "init: NULL memory");
    ok(pt_slab_init(mem + 1, ZONE_SIZE - 8, "x") == NULL,
       "init: misaligned memory");
    ok(pt_slab_init(mem, 8 * page, "x") == NULL,
       "init: 8 pages with the header leaves too few");
    ok(pt_slab_init(mem, 16, "x") == NULL, "init: smaller than the header");

    /* The header and descriptors take less than one page. */
    pool = new_pool(mem, 9 * page, "small");
    ok(pool != NULL, "init: 9 pages are enough");
    pt_slab_stats(pool, NULL, 0, &total, NULL);
    is_int(total, 8, "and give 8 pages after header and descriptors");

    pool = new_pool(mem, ZONE_SIZE,
                    "a-zone-name-longer-than-thirty-one-bytes");
    ok(pool != NULL && (void *) pool == mem, "init: pool at the zone start");

    if (pool == NULL) {
        return;
    }

    ok(pool->addr == mem, "addr is the mapping");
    ok(pool->end == mem + ZONE_SIZE, "end is the zone end");
    ok(((uintptr_t) pool->start & (page - 1)) == 0, "start is page aligned");
    ok(pool->start > (char *) pool, "pages come after the header");
    ok(pool->data == NULL && pool->log_nomem == 0, "data NULL, log_nomem 0");
    ok(pool->mutex.owner == 0, "lock free");
    is_str(pool->name, strlen(pool->name), "a-zone-name-longer-than-thirty-",
           "name cut to 31 bytes");

    n = pt_slab_stats(pool, st, PT_SLAB_STATS_MAX, &total, &nfree);
    is_int(n, pool->nclasses + 1, "stats: one per class and one for runs");
    ok(total > ZONE_SIZE / page - 4 && total < ZONE_SIZE / page,
       "pages_total %zu is the zone less the header", total);
    is_int(nfree, total, "every page free");
    ok(pool->start + total * page <= pool->end, "pages fit in the zone");

    for (i = 0; i + 1 < n; i++) {
        if (st[i].size != (size_t) 8 << i || st[i].total || st[i].reqs) {
            break;
        }
    }

    is_int(i + 1, n, "classes 8, 16, ... page/2, all unused");
    is_int(st[n - 2].size, page / 2, "largest slot is half a page");
    ok(st[n - 1].size == 0 && st[n - 1].total == total,
       "runs entry: size 0, total = pages");
    is_int(pt_slab_stats(pool, st, 2, NULL, NULL), 2, "stats honours n");
}


static int
cmp_blk(const void *a, const void *b)
{
    const blk_t  *x, *y;

    x = a;
    y = b;

    return (x->p > y->p) - (x->p < y->p);
}


static void
test_classes(char *mem)
{
    int              align_ok, range_ok, data_ok, overlap_ok, stats_ok;
    size_t           i, k, n, s, reps, cls, runs, run_pages;
    uint64_t         want[PT_SLAB_STATS_MAX];
    blk_t            blk[MAXBLK];
    pt_slab_pool_t  *pool;
    pt_slab_stat_t   st[PT_SLAB_STATS_MAX];
    size_t           sizes[] = { 0, 1, 7, 8, 9, 16, 17, 31, 33, 64, 65, 100,
                                 128, 200, 256, 300, 512, 700, 1024, 1500,
                                 0, 0, 3000, 0, 0, 10000, 0 };

    /* Sizes that depend on the page size. */
    sizes[20] = page / 2;
    sizes[21] = page / 2 + 1;
    sizes[23] = page;
    sizes[24] = page + 1;
    sizes[26] = 16 * page;

    pool = new_pool(mem, ZONE_SIZE, "classes");
    n = 0;
    runs = 0;
    run_pages = 0;
    align_ok = 1;
    range_ok = 1;
    memset(want, 0, sizeof(want));

    for (i = 0; i < pt_nelems(sizes); i++) {
        s = sizes[i];
        reps = (s > page / 2) ? 3 : 15;

        for (k = 0; k < reps; k++) {
            blk[n].size = s;
            blk[n].p = pt_slab_alloc(pool, s);

            if (blk[n].p == NULL) {
                range_ok = 0;
                continue;
            }

            if (s <= page / 2) {
                want[class_of(s)]++;
                align_ok &= ((uintptr_t) blk[n].p & (slot_size(s) - 1)) == 0;

            } else {
                runs++;
                run_pages += (s + page - 1) / page;
                align_ok &= ((uintptr_t) blk[n].p & (page - 1)) == 0;
            }

            if (blk[n].p < pool->start
                || blk[n].p + s > pool->start + pool->npages * page)
            {
                range_ok = 0;
            }

            fill(blk[n].p, s, (unsigned) n);
            n++;
        }
    }

    ok(range_ok, "%zu allocations of every class and large sizes, inside "
       "the page area", n);
    ok(align_ok, "slots aligned to their size, runs to the page");

    data_ok = 1;

    for (i = 0; i < n; i++) {
        data_ok &= check(blk[i].p, blk[i].size, (unsigned) i);
    }

    ok(data_ok, "every pattern intact after all allocations");

    /* Check the extents directly too: a pattern would miss an overlap
     * between two blocks that happened to get the same bytes. */
    qsort(blk, n, sizeof(blk_t), cmp_blk);
    overlap_ok = 1;

    for (i = 1; i < n; i++) {
        if (blk[i - 1].p + pt_max(blk[i - 1].size, 1) > blk[i].p) {
            overlap_ok = 0;
        }
    }

    ok(overlap_ok, "no two allocations overlap");

    k = pt_slab_stats(pool, st, PT_SLAB_STATS_MAX, NULL, NULL);
    stats_ok = 1;

    for (cls = 0; cls + 1 < k; cls++) {
        if (st[cls].used != want[cls] || st[cls].reqs != want[cls]
            || st[cls].total < st[cls].used || st[cls].fails != 0)
        {
            printf("# class %zu: used %llu reqs %llu, want %llu\n",
                   st[cls].size, (unsigned long long) st[cls].used,
                   (unsigned long long) st[cls].reqs,
                   (unsigned long long) want[cls]);
            stats_ok = 0;
        }
    }

    ok(stats_ok, "per-class used and reqs match the allocations");
    is_int(st[k - 1].reqs, runs, "runs: reqs counted");
    is_int(st[k - 1].used, run_pages, "runs: pages in use add up");

    for (i = 0; i < n; i++) {
        pt_slab_free(pool, blk[i].p);
    }

    ok(pool_is_empty(pool), "all freed: every page free again");
    ok(pool_is_one_run(pool), "and the free pages are one run");
}


static void
test_fill(char *mem)
{
    int              data_ok;
    char           **v;
    size_t           i, n, want, total, nfree, used, nfree_bytes;
    pt_slab_pool_t  *pool;

    pool = new_pool(mem, ZONE_SIZE, "fill");
    pool->log_nomem = 1;
    pt_slab_stats(pool, NULL, 0, &total, NULL);

    /* 32-byte slots: one slot of each page holds the page's bitmap. */
    want = total * (page / 32 - (page / 32 / 8 + 31) / 32);

    v = malloc((want + 1) * sizeof(char *));
    if (v == NULL) {
        ok(0, "malloc");
        return;
    }

    pt_current_msec = 5000;

    for (n = 0; n <= want; n++) {
        v[n] = pt_slab_alloc(pool, 32);
        if (v[n] == NULL) {
            break;
        }

        fill(v[n], 32, (unsigned) n);
    }

    is_int(n, want, "filled with 32-byte objects until NULL");
    is_int(class_stat(pool, class_of(32), 'f'), 1, "one failure counted");

    ok(pt_slab_alloc(pool, 8) == NULL, "an 8-byte allocation fails too");
    ok(pt_slab_alloc(pool, 3 * page) == NULL, "and a page run");
    ok(pt_slab_alloc(pool, (size_t) -1) == NULL, "and SIZE_MAX");
    ok(pt_slab_calloc(pool, 64) == NULL, "and calloc");

    pt_slab_stats(pool, NULL, 0, &total, &nfree);
    is_int(nfree, 0, "no free page left");
    is_int(class_stat(pool, class_of(32), 't'), want,
           "32-byte class total counts every slot");
    is_int(class_stat(pool, class_of(32), 'u'), want, "and all are used");
    is_int(class_stat(pool, pool->nclasses, 'f'), 2, "two run failures");

    pt_slab_usage(pool, &used, &nfree_bytes);
    is_int(nfree_bytes, 0, "usage: nothing free");
    is_int(used, ZONE_SIZE, "usage: the whole zone used");

    is_int(tap_log_count("pt_slab_alloc() failed: no memory in zone "
                         "\"fill\""), 1,
           "five failures in the same second: logged once");

    pt_current_msec = 6000;
    ok(pt_slab_alloc(pool, 16) == NULL, "a failure a second later");
    is_int(tap_log_count("no memory in zone \"fill\""), 2, "is logged again");

    pool->log_nomem = 0;
    pt_current_msec = 9000;
    ok(pt_slab_alloc(pool, 16) == NULL, "a failure without log_nomem");
    is_int(tap_log_count("no memory in zone \"fill\""), 2, "is not logged");
    pt_current_msec = 0;

    data_ok = 1;

    for (i = 0; i < n; i++) {
        data_ok &= check(v[i], 32, (unsigned) i);
    }

    ok(data_ok, "every object intact when full");

    /* Free out of order: odd ones, then even ones. */
    for (i = 1; i < n; i += 2) {
        pt_slab_free(pool, v[i]);
    }

    ok(pt_slab_alloc(pool, 2 * page) == NULL,
       "half-empty slot pages give no run");
    is_int(class_stat(pool, class_of(32), 'u'), want - n / 2,
           "half the slots in use");

    for (i = 0; i < n; i += 2) {
        pt_slab_free(pool, v[i]);
    }

    ok(pool_is_empty(pool), "freed all: every page free again");
    ok(pool_is_one_run(pool), "and the pages are one run");

    pt_slab_usage(pool, &used, &nfree_bytes);
    is_int(nfree_bytes, total * page, "usage: every page free");
    is_int(used + nfree_bytes, ZONE_SIZE, "usage: used + free = zone");

    free(v);
}


static void
test_fragmentation(char *mem)
{
    char            *p;
    size_t           i, n, total, nfree;
    blk_t            blk[MAXBLK];
    pt_slab_pool_t  *pool;
    size_t           mix[] = { 1, 2, 100, 3, 3000, 700, 1, 5, 40 };

    pool = new_pool(mem, ZONE_SIZE, "frag");
    pt_slab_stats(pool, NULL, 0, &total, NULL);

    /* Single pages, then every other one freed: holes of one page. */
    for (n = 0; n < MAXBLK; n++) {
        blk[n].p = pt_slab_alloc(pool, page);
        if (blk[n].p == NULL) {
            break;
        }
    }

    is_int(n, total, "one-page runs fill the zone");

    for (i = 1; i < n; i += 2) {
        pt_slab_free(pool, blk[i].p);
    }

    pt_slab_stats(pool, NULL, 0, NULL, &nfree);
    is_int(nfree, n / 2, "half the pages free");
    ok(pt_slab_alloc(pool, 2 * page) == NULL,
       "no two free pages are neighbours");

    p = pt_slab_alloc(pool, page);
    ok(p != NULL, "a hole is reused");
    pt_slab_free(pool, p);

    for (i = 0; i < n; i += 2) {
        pt_slab_free(pool, blk[i].p);
    }

    ok(pool_is_empty(pool), "all pages free");
    p = pt_slab_alloc(pool, total * page);
    ok(p == pool->start, "a run of every page fits: neighbours coalesced");
    pt_slab_free(pool, p);

    /* Mixed sizes: pages in multiples, and slots. */
    for (n = 0; n < MAXBLK; n++) {
        blk[n].size = mix[n % pt_nelems(mix)];

        if (blk[n].size < 10) {
            blk[n].size *= page;
        }

        blk[n].p = pt_slab_alloc(pool, blk[n].size);
        if (blk[n].p == NULL) {
            break;
        }

        fill(blk[n].p, blk[n].size, (unsigned) n);
    }

    ok(n > 50 && n < MAXBLK, "mixed sizes until the zone is full (%zu)", n);

    for (i = 0; i < n; i += 2) {
        pt_slab_free(pool, blk[i].p);
        blk[i].p = NULL;
    }

    /* Holes are reused: every other 9-block cycle freed its 5-page
     * run, and the zone has no other room. */
    p = pt_slab_alloc(pool, 4 * page);
    ok(p != NULL, "a 4-page run fits a freed 5-page hole");
    pt_slab_free(pool, p);

    for (i = 1; i < n; i += 2) {
        if (!check(blk[i].p, blk[i].size, (unsigned) i)) {
            break;
        }
    }

    ok(i >= n, "the blocks still allocated are intact");

    /* Free from the end backwards: each run merges to its right too. */
    for (i = n; i-- > 0; ) {
        if (i % 2 == 1) {
            pt_slab_free(pool, blk[i].p);
        }
    }

    ok(pool_is_empty(pool), "mixed: all pages free");
    ok(pool_is_one_run(pool), "mixed: runs coalesced into one");

    /* A run freed between two free runs joins both. */
    blk[0].p = pt_slab_alloc(pool, 2 * page);
    blk[1].p = pt_slab_alloc(pool, 3 * page);
    blk[2].p = pt_slab_alloc(pool, 4 * page);
    blk[3].p = pt_slab_alloc(pool, page);
    qsort(blk, 3, sizeof(blk_t), cmp_blk);
    pt_slab_free(pool, blk[0].p);
    pt_slab_free(pool, blk[2].p);
    pt_slab_free(pool, blk[1].p);
    pt_slab_stats(pool, NULL, 0, NULL, &nfree);
    is_int(nfree, total - 1, "three runs freed");

    /* The best fitting free run is the 9 pages just merged. */
    p = pt_slab_alloc(pool, 9 * page);
    ok(p == blk[0].p, "left and right neighbours merged into 9 pages");
    pt_slab_free(pool, p);

    pt_slab_free(pool, blk[3].p);
    ok(pool_is_one_run(pool), "and with the rest of the zone");
}


static void
test_reuse(char *mem)
{
    char            *a, *b, *c, *d, *r, *r2;
    pt_slab_pool_t  *pool;

    pool = new_pool(mem, ZONE_SIZE, "reuse");

    a = pt_slab_alloc(pool, 40);
    pt_slab_free(pool, a);
    b = pt_slab_alloc(pool, 40);
    ok(a != NULL && a == b, "a freed slot is given out again");

    a = pt_slab_alloc(pool, 64);
    c = pt_slab_alloc(pool, 64);
    d = pt_slab_alloc(pool, 64);
    pt_slab_free(pool, c);
    r = pt_slab_alloc(pool, 60);
    ok(c != NULL && r == c, "a slot freed among live ones is reused");
    ok(a != c && c != d && a != d, "three live slots differ");

    r = pt_slab_alloc(pool, 3 * page);
    pt_slab_free(pool, r);
    r2 = pt_slab_alloc(pool, 3 * page - 100);
    ok(r != NULL && r2 == r, "a freed run is given out again");

    pt_slab_free(pool, r2);
    pt_slab_free(pool, a);
    pt_slab_free(pool, b);
    pt_slab_free(pool, c);
    pt_slab_free(pool, d);
    ok(pool_is_empty(pool), "reuse: all free");
}


static void
test_calloc_locked(char *mem)
{
    int              zero;
    char            *p, *q;
    size_t           i;
    pt_slab_pool_t  *pool;

    pool = new_pool(mem, ZONE_SIZE, "calloc");

    p = pt_slab_alloc(pool, 100);
    memset(p, 0xaa, 100);
    pt_slab_free(pool, p);
    q = pt_slab_calloc(pool, 100);
    ok(q == p, "calloc reuses the dirty slot");

    for (zero = 1, i = 0; i < 100; i++) {
        zero &= (q[i] == 0);
    }

    ok(zero, "calloc zeroes it");
    pt_slab_free(pool, q);

    p = pt_slab_alloc(pool, 2 * page);
    memset(p, 0xaa, 2 * page);
    pt_slab_free(pool, p);

    pt_shmtx_lock(&pool->mutex);
    q = pt_slab_calloc_locked(pool, 2 * page);
    ok(q == p, "calloc_locked reuses the dirty run");

    for (zero = 1, i = 0; i < 2 * page; i++) {
        zero &= (q[i] == 0);
    }

    ok(zero, "calloc_locked zeroes it");
    p = pt_slab_alloc_locked(pool, 24);
    ok(p != NULL, "alloc_locked under the lock");
    pt_slab_free_locked(pool, p);
    pt_slab_free_locked(pool, q);
    is_int(pool->mutex.owner, getpid(), "the _locked calls keep the lock");
    pt_shmtx_unlock(&pool->mutex);

    is_int(pool->mutex.owner, 0, "unlocked");
    ok(pool_is_empty(pool), "calloc: all free");
}


static void
test_usage(char *mem)
{
    char            *p;
    size_t           used0, free0, used, nfree;
    pt_slab_pool_t  *pool;

    pool = new_pool(mem, ZONE_SIZE, "usage");

    pt_slab_usage(pool, &used0, &free0);
    is_int(used0 + free0, ZONE_SIZE, "usage adds up to the zone");
    is_int(free0, pool->npages * page, "free is every page");

    /* A 128-byte slot class keeps its bitmap in the descriptor. */
    p = pt_slab_alloc(pool, 128);
    pt_slab_usage(pool, &used, &nfree);
    is_int(used - used0, 128, "one 128-byte slot uses 128 bytes");
    pt_slab_free(pool, p);

    p = pt_slab_alloc(pool, 2 * page + 1);
    pt_slab_usage(pool, &used, &nfree);
    is_int(used - used0, 3 * page, "a run uses whole pages");
    pt_slab_free(pool, p);

    pt_slab_usage(pool, &used, &nfree);
    is_int(used, used0, "back where it started");
}


static void
test_bad_free(char *mem)
{
    int              stack;
    char            *a, *b, *c, *r, *s, *x, *heap, *pg;
    size_t           bad;
    uint64_t         used8, used64;
    pt_slab_pool_t  *pool;

    pool = new_pool(mem, ZONE_SIZE, "bad");
    bad = tap_log_count("pt_slab_free(): ");

    a = pt_slab_alloc(pool, 24);
    b = pt_slab_alloc(pool, 24);
    pt_slab_free(pool, a);
    pt_slab_free(pool, a);
    is_int(tap_log_count("pt_slab_free(): chunk is already free in zone "
                         "\"bad\""), 1, "double free of a slot is detected");
    is_int(class_stat(pool, class_of(24), 'u'), 1, "and counted once");

    c = pt_slab_alloc(pool, 300);
    pt_slab_free(pool, c);
    pt_slab_free(pool, c);
    is_int(tap_log_count("pt_slab_free(): page is already free"), 1,
           "double free of a slot whose page went back is detected");

    r = pt_slab_alloc(pool, 2 * page);
    pt_slab_free(pool, r);
    pt_slab_free(pool, r);
    is_int(tap_log_count("pt_slab_free(): page is already free"), 2,
           "double free of a run is detected");

    r = pt_slab_alloc(pool, 3 * page);
    pt_slab_free(pool, r + page);
    pt_slab_free(pool, r + 1);
    is_int(tap_log_count("pt_slab_free(): pointer to a wrong page"), 2,
           "pointers into a run are refused");
    is_int(class_stat(pool, pool->nclasses, 'u'), 3, "the run stays");

    s = pt_slab_alloc(pool, 64);
    used64 = class_stat(pool, class_of(64), 'u');
    pt_slab_free(pool, s + 8);
    pt_slab_free(pool, s + 1);
    is_int(tap_log_count("pt_slab_free(): pointer to a wrong chunk"), 2,
           "misaligned slot pointers are refused");
    is_int(class_stat(pool, class_of(64), 'u'), used64, "the slot stays");

    x = pt_slab_alloc(pool, 8);
    used8 = class_stat(pool, class_of(8), 'u');
    pg = (char *) ((uintptr_t) x & ~(uintptr_t) (page - 1));
    pt_slab_free(pool, pg);
    is_int(tap_log_count("pt_slab_free(): pointer to a wrong chunk"), 3,
           "a pointer to a page's bitmap is refused");
    is_int(class_stat(pool, class_of(8), 'u'), used8, "nothing freed");

    heap = malloc(16);
    pt_slab_free(pool, &stack);
    pt_slab_free(pool, heap);
    pt_slab_free(pool, pool);
    pt_slab_free(pool, pool->start - 1);
    pt_slab_free(pool, pool->start + pool->npages * page);
    pt_slab_free(pool, (void *) (uintptr_t) -1);
    free(heap);
    is_int(tap_log_count("pt_slab_free(): pointer outside of pool"), 6,
           "foreign pointers are refused");

    pt_slab_free(pool, NULL);
    is_int(tap_log_count("pt_slab_free(): "), bad + 14,
           "every bad free logged once, free(NULL) not at all");
    is_int(tap_log_count("[alert]"), bad + 14, "at the alert level");

    /* The pool is still sound: the live blocks free cleanly. */
    a = pt_slab_alloc(pool, 24);
    c = pt_slab_alloc(pool, 24);
    ok(a != NULL && c != NULL && a != b && c != b && a != c,
       "pool usable after bad frees");
    pt_slab_free(pool, a);
    pt_slab_free(pool, c);

    pt_slab_free(pool, b);
    pt_slab_free(pool, r);
    pt_slab_free(pool, s);
    pt_slab_free(pool, x);
    is_int(tap_log_count("pt_slab_free(): "), bad + 14,
           "live blocks free cleanly");
    ok(pool_is_empty(pool), "bad frees left no trace");
    ok(pool_is_one_run(pool), "and the pages are one run");
}


static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;

    return *s;
}


static int
stress_child(pt_slab_pool_t *pool, report_t *rep, int id)
{
    int       i, k;
    blk_t     live[NLIVE];
    uint64_t  rnd, seed;
    unsigned  tag[NLIVE];
    size_t    size, align;

    pt_shmtx_set_pid(getpid());
    seed = 0x9e3779b97f4a7c15ULL * (uint64_t) (id + 1);
    memset(live, 0, sizeof(live));

    for (i = 0; i < NOPS; i++) {
        rnd = xorshift(&seed);
        k = (int) (rnd % NLIVE);

        if (live[k].p != NULL) {
            if (!check(live[k].p, live[k].size, tag[k])) {
                return 1;
            }

            pt_slab_free(pool, live[k].p);
            live[k].p = NULL;
            continue;
        }

        rnd >>= 8;
        size = (rnd % 5 == 0) ? page / 2 + 1 + (rnd >> 4) % (3 * page)
                              : 1 + (rnd >> 4) % (page / 2);

        live[k].p = pt_slab_alloc(pool, size);
        live[k].size = size;
        rep->allocs++;

        if (live[k].p == NULL) {
            rep->nulls++;
            continue;
        }

        align = (size > page / 2) ? page : slot_size(size);

        if ((uintptr_t) live[k].p & (align - 1)) {
            return 2;
        }

        tag[k] = (unsigned) (id * 1000003 + i);
        fill(live[k].p, size, tag[k]);
    }

    for (k = 0; k < NLIVE; k++) {
        if (live[k].p != NULL) {
            if (!check(live[k].p, live[k].size, tag[k])) {
                return 1;
            }

            pt_slab_free(pool, live[k].p);
        }
    }

    return 0;
}


static void
test_processes(void)
{
    int              i, status, clean;
    size_t           n, reqs, fails;
    pid_t            pids[NCHILD];
    pt_shm_t         shm, rshm;
    uint64_t         allocs, nulls;
    report_t        *rep;
    pt_slab_pool_t  *pool;
    pt_slab_stat_t   st[PT_SLAB_STATS_MAX];

    shm.size = STRESS_SIZE;
    rshm.size = sizeof(report_t) * NCHILD;

    if (pt_shm_alloc(&shm) != PT_OK || pt_shm_alloc(&rshm) != PT_OK) {
        ok(0, "pt_shm_alloc: %s", strerror(errno));
        return;
    }

    ok(shm.size == STRESS_SIZE && ((uintptr_t) shm.addr & (page - 1)) == 0,
       "shared zone mapped, page aligned");

    pool = pt_slab_init(shm.addr, shm.size, "stress");
    rep = (report_t *) rshm.addr;

    for (i = 0; i < NCHILD; i++) {
        pids[i] = fork();

        if (pids[i] == 0) {
            _exit(stress_child(pool, &rep[i], i));
        }
    }

    clean = 0;

    for (i = 0; i < NCHILD; i++) {
        if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i]
            && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        {
            clean++;
        }
    }

    is_int(clean, NCHILD, "%d children did %d alloc/free each, patterns "
           "and alignment checked", NCHILD, NOPS);

    allocs = 0;
    nulls = 0;

    for (i = 0; i < NCHILD; i++) {
        allocs += rep[i].allocs;
        nulls += rep[i].nulls;
    }

    n = pt_slab_stats(pool, st, PT_SLAB_STATS_MAX, NULL, NULL);
    reqs = 0;
    fails = 0;

    for (i = 0; i < (int) n; i++) {
        reqs += st[i].reqs;
        fails += st[i].fails;
    }

    ok(allocs > NCHILD * NOPS / 3, "children allocated (%llu)",
       (unsigned long long) allocs);
    is_int(reqs, allocs, "stats counted every request from every process");
    is_int(fails, nulls, "and every failure");
    is_int(pool->mutex.owner, 0, "lock free");
    ok(pool_is_empty(pool), "shared pool fully free");
    ok(pool_is_one_run(pool), "and one run");

    pt_shm_free(&shm);
    pt_shm_free(&rshm);
}


int
main(void)
{
    char  *mem;

    page = (size_t) sysconf(_SC_PAGESIZE);

    if (tap_log_open("test_slab") != 0) {
        return 1;
    }

    /* The first log line would refresh the cached clock that the nomem
     * rate limit test sets by hand. */
    pt_time_update();

    mem = mmap(NULL, ZONE_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        printf("Bail out! mmap: %s\n", strerror(errno));
        return 1;
    }

    tap_plan(112);

    test_init(mem);
    test_classes(mem);
    test_fill(mem);
    test_fragmentation(mem);
    test_reuse(mem);
    test_calloc_locked(mem);
    test_usage(mem);
    test_bad_free(mem);
    test_processes();

    munmap(mem, ZONE_SIZE);
    tap_log_close();

    return tap_done();
}
