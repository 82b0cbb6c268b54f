/*
 * pt_slab.c: the allocator inside a shared-memory zone (see pt_slab.h).
 *
 * Every page has a descriptor saying what the page is. A free run is
 * listed by its first page, and its last page points back to the first,
 * so a run being freed finds both neighbours in O(1): the page after it,
 * if free, starts a run; the page before it, if free, ends one. The other
 * pages of a run are only marked, never read for links.
 */

#include "pt_slab.h"
#include "pt_log.h"
#include "pt_time.h"


#define PT_SLAB_PAGE_FREE       1   /* first page of a free run, listed  */
#define PT_SLAB_PAGE_FREE_TAIL  2   /* last page of a free run of 2+     */
#define PT_SLAB_PAGE_FREE_BODY  3   /* any other page of a free run      */
#define PT_SLAB_PAGE_RUN        4   /* first page of an allocated run    */
#define PT_SLAB_PAGE_RUN_BODY   5   /* other pages of an allocated run   */
#define PT_SLAB_PAGE_SLOTS      6   /* a page cut into slots             */

#define PT_SLAB_MIN_PAGES       8
#define PT_SLAB_NOMEM_MSEC      1000

#define PT_SLAB_FULL            (~(uint64_t) 0)


static unsigned
pt_slab_log2(uint64_t v)
{
    return 63 - (unsigned) __builtin_clzll(v);
}


static void
pt_slab_list_insert(pt_slab_page_t **head, pt_slab_page_t *d)
{
    d->prev = NULL;
    d->next = *head;

    if (*head != NULL) {
        (*head)->prev = d;
    }

    *head = d;
}


static void
pt_slab_list_remove(pt_slab_page_t **head, pt_slab_page_t *d)
{
    if (d->prev != NULL) {
        d->prev->next = d->next;

    } else {
        *head = d->next;
    }

    if (d->next != NULL) {
        d->next->prev = d->prev;
    }

    d->next = NULL;
    d->prev = NULL;
}


static char *
pt_slab_page_addr(pt_slab_pool_t *pool, pt_slab_page_t *d)
{
    return pool->start + ((size_t) (d - pool->pages) << pool->page_shift);
}


/* Slots a page of this class holds, bitmap slots included. */
static size_t
pt_slab_nslots(pt_slab_pool_t *pool, unsigned shift)
{
    return pool->page_size >> shift;
}


/* Slots at the start of a small-slot page that hold its bitmap. */
static size_t
pt_slab_reserved(pt_slab_pool_t *pool, unsigned shift)
{
    size_t  bytes;

    if (shift >= pool->exact_shift) {
        return 0;
    }

    /* More than 64 slots, and a power of two of them: whole words. */
    bytes = pt_slab_nslots(pool, shift) / 8;

    return (bytes + ((size_t) 1 << shift) - 1) >> shift;
}


static size_t
pt_slab_capacity(pt_slab_pool_t *pool, unsigned shift)
{
    return pt_slab_nslots(pool, shift) - pt_slab_reserved(pool, shift);
}


static uint64_t *
pt_slab_bitmap(pt_slab_pool_t *pool, pt_slab_page_t *d, size_t *nwords)
{
    if (d->shift >= pool->exact_shift) {
        *nwords = 1;
        return &d->bitmap;
    }

    *nwords = pt_slab_nslots(pool, d->shift) / 64;

    return (uint64_t *) pt_slab_page_addr(pool, d);
}


static pt_slab_page_t *
pt_slab_alloc_pages(pt_slab_pool_t *pool, size_t n)
{
    size_t           i, rest;
    unsigned         list;
    pt_slab_page_t  *d, *t;

    if (n == 0 || n > pool->free_pages) {
        return NULL;
    }

    /* Runs in list i have 2^i .. 2^(i+1)-1 pages: only the first list
     * tried can hold runs too short, every later one fits at its head. */
    for (list = pt_slab_log2(n); list < PT_SLAB_RUN_LISTS; list++) {
        for (d = pool->runs[list]; d != NULL; d = d->next) {
            if (d->npages >= n) {
                goto found;
            }
        }
    }

    return NULL;

found:

    pt_slab_list_remove(&pool->runs[list], d);

    /* Cut from the end, so the rest keeps its first page. */
    rest = d->npages - n;

    if (rest > 0) {
        d->npages = (uint32_t) rest;

        if (rest > 1) {
            t = d + rest - 1;
            t->type = PT_SLAB_PAGE_FREE_TAIL;
            t->prev = d;
        }

        pt_slab_list_insert(&pool->runs[pt_slab_log2(rest)], d);

        d += rest;
    }

    d->type = PT_SLAB_PAGE_RUN;
    d->npages = (uint32_t) n;
    d->next = NULL;
    d->prev = NULL;

    for (i = 1; i < n; i++) {
        d[i].type = PT_SLAB_PAGE_RUN_BODY;
    }

    pool->free_pages -= n;

    return d;
}


static void
pt_slab_free_pages(pt_slab_pool_t *pool, pt_slab_page_t *d, size_t n)
{
    size_t           i;
    pt_slab_page_t  *r, *l, *h, *t;

    for (i = 0; i < n; i++) {
        d[i].type = PT_SLAB_PAGE_FREE_BODY;
    }

    pool->free_pages += n;

    r = d + n;

    if (r < pool->pages + pool->npages && r->type == PT_SLAB_PAGE_FREE) {
        pt_slab_list_remove(&pool->runs[pt_slab_log2(r->npages)], r);
        n += r->npages;
        r->type = PT_SLAB_PAGE_FREE_BODY;
    }

    if (d > pool->pages) {
        l = d - 1;

        if (l->type == PT_SLAB_PAGE_FREE) {
            h = l;

        } else if (l->type == PT_SLAB_PAGE_FREE_TAIL) {
            h = l->prev;

        } else {
            h = NULL;
        }

        /* Merge only with a run that really ends here. */
        if (h != NULL
            && h >= pool->pages && h < d
            && h->type == PT_SLAB_PAGE_FREE
            && (size_t) (h - pool->pages) + h->npages
               == (size_t) (d - pool->pages))
        {
            pt_slab_list_remove(&pool->runs[pt_slab_log2(h->npages)], h);
            n += h->npages;
            l->type = (l == h) ? PT_SLAB_PAGE_FREE : PT_SLAB_PAGE_FREE_BODY;
            d = h;
        }
    }

    d->type = PT_SLAB_PAGE_FREE;
    d->npages = (uint32_t) n;

    if (n > 1) {
        t = d + n - 1;
        t->type = PT_SLAB_PAGE_FREE_TAIL;
        t->prev = d;
    }

    pt_slab_list_insert(&pool->runs[pt_slab_log2(n)], d);
}


static void
pt_slab_init_slots(pt_slab_pool_t *pool, pt_slab_page_t *d, unsigned shift)
{
    size_t     i, nslots, reserved;
    uint64_t  *map;

    d->type = PT_SLAB_PAGE_SLOTS;
    d->shift = (uint8_t) shift;
    d->used = 0;

    nslots = pt_slab_nslots(pool, shift);

    if (shift >= pool->exact_shift) {
        /* Bits past the last slot read as taken. */
        d->bitmap = (nslots == 64) ? 0 : PT_SLAB_FULL << nslots;
        return;
    }

    d->bitmap = 0;

    map = (uint64_t *) pt_slab_page_addr(pool, d);
    memset(map, 0, nslots / 8);

    reserved = pt_slab_reserved(pool, shift);

    for (i = 0; i < reserved; i++) {
        map[i / 64] |= (uint64_t) 1 << (i % 64);
    }
}


static void *
pt_slab_alloc_slot(pt_slab_pool_t *pool, unsigned shift)
{
    size_t           w, nwords, i, cap;
    unsigned         cls, bit;
    uint64_t        *map;
    pt_slab_page_t  *d;

    cls = shift - PT_SLAB_MIN_SHIFT;
    cap = pt_slab_capacity(pool, shift);

    d = pool->partial[cls];

    if (d == NULL) {
        d = pt_slab_alloc_pages(pool, 1);
        if (d == NULL) {
            return NULL;
        }

        pt_slab_init_slots(pool, d, shift);
        pt_slab_list_insert(&pool->partial[cls], d);
        pool->stats[cls].total += cap;
    }

    map = pt_slab_bitmap(pool, d, &nwords);

    for (w = 0; w < nwords; w++) {
        if (map[w] != PT_SLAB_FULL) {
            break;
        }
    }

    if (w == nwords) {
        /* A listed page is never full; if one is, unlist it, not loop. */
        pt_slab_list_remove(&pool->partial[cls], d);
        return NULL;
    }

    bit = (unsigned) __builtin_ctzll(~map[w]);
    map[w] |= (uint64_t) 1 << bit;
    i = w * 64 + bit;

    d->used++;

    if (d->used >= cap) {
        pt_slab_list_remove(&pool->partial[cls], d);
    }

    pool->stats[cls].used++;

    return pt_slab_page_addr(pool, d) + (i << shift);
}


static const char *
pt_slab_free_slot(pt_slab_pool_t *pool, pt_slab_page_t *d, char *p)
{
    size_t     off, i, nwords, cap;
    unsigned   shift, cls;
    uint64_t  *map, mask;

    shift = d->shift;

    if (shift < PT_SLAB_MIN_SHIFT || shift >= pool->page_shift) {
        return "page descriptor is corrupted";
    }

    off = (size_t) (p - pt_slab_page_addr(pool, d));

    if (off & (((size_t) 1 << shift) - 1)) {
        return "pointer to a wrong chunk";
    }

    i = off >> shift;

    if (i < pt_slab_reserved(pool, shift)) {
        return "pointer to a wrong chunk";
    }

    map = pt_slab_bitmap(pool, d, &nwords);
    mask = (uint64_t) 1 << (i % 64);

    if (!(map[i / 64] & mask)) {
        return "chunk is already free";
    }

    map[i / 64] &= ~mask;

    cls = shift - PT_SLAB_MIN_SHIFT;
    cap = pt_slab_capacity(pool, shift);

    if (d->used >= cap) {
        pt_slab_list_insert(&pool->partial[cls], d);
    }

    d->used--;
    pool->stats[cls].used--;

    if (d->used == 0) {
        /* An empty page goes back to the runs, where any class or a
         * large allocation can use it. */
        pt_slab_list_remove(&pool->partial[cls], d);
        pool->stats[cls].total -= cap;
        pt_slab_free_pages(pool, d, 1);
    }

    return NULL;
}


/* Whether a failure should be logged now: once a second per zone. */
static int
pt_slab_nomem_due(pt_slab_pool_t *pool)
{
    pt_msec_t  now;

    if (!pool->log_nomem) {
        return 0;
    }

    now = pt_current_msec ? pt_current_msec : pt_monotonic_msec();

    if (now < pool->nomem_next) {
        return 0;
    }

    pool->nomem_next = now + PT_SLAB_NOMEM_MSEC;

    return 1;
}


static void *
pt_slab_alloc_impl(pt_slab_pool_t *pool, size_t size, int *report)
{
    void            *p;
    size_t           n;
    unsigned         shift;
    pt_slab_stat_t  *st;
    pt_slab_page_t  *d;

    if (size == 0) {
        size = 1;
    }

    if (size <= pool->page_size / 2) {
        shift = (size <= ((size_t) 1 << PT_SLAB_MIN_SHIFT))
                ? PT_SLAB_MIN_SHIFT
                : 64 - (unsigned) __builtin_clzll((uint64_t) size - 1);

        st = &pool->stats[shift - PT_SLAB_MIN_SHIFT];
        st->reqs++;

        p = pt_slab_alloc_slot(pool, shift);

    } else {
        st = &pool->run_stats;
        st->reqs++;

        p = NULL;

        /* Checked first so the rounding below cannot overflow. */
        if (size <= pool->npages << pool->page_shift) {
            n = (size + pool->page_size - 1) >> pool->page_shift;
            d = pt_slab_alloc_pages(pool, n);

            if (d != NULL) {
                st->used += n;
                p = pt_slab_page_addr(pool, d);
            }
        }
    }

    if (p == NULL) {
        st->fails++;
        *report = pt_slab_nomem_due(pool);
    }

    return p;
}


static const char *
pt_slab_free_impl(pt_slab_pool_t *pool, void *ptr)
{
    char            *p;
    size_t           n, off;
    pt_slab_page_t  *d;

    p = ptr;

    /* Compared as integers: p may point anywhere at all. */
    if ((uintptr_t) p < (uintptr_t) pool->start) {
        return "pointer outside of pool";
    }

    off = (size_t) ((uintptr_t) p - (uintptr_t) pool->start);

    if (off >= pool->npages << pool->page_shift) {
        return "pointer outside of pool";
    }

    d = pool->pages + (off >> pool->page_shift);

    switch (d->type) {

    case PT_SLAB_PAGE_SLOTS:
        return pt_slab_free_slot(pool, d, p);

    case PT_SLAB_PAGE_RUN:
        if (p != pt_slab_page_addr(pool, d)) {
            return "pointer to a wrong page";
        }

        n = d->npages;

        if (n == 0 || n > pool->npages - (size_t) (d - pool->pages)) {
            return "page descriptor is corrupted";
        }

        pool->run_stats.used -= n;
        pt_slab_free_pages(pool, d, n);

        return NULL;

    case PT_SLAB_PAGE_RUN_BODY:
        return "pointer to a wrong page";

    case PT_SLAB_PAGE_FREE:
    case PT_SLAB_PAGE_FREE_TAIL:
    case PT_SLAB_PAGE_FREE_BODY:
        return "page is already free";

    default:
        return "page descriptor is corrupted";
    }
}


static void
pt_slab_log_nomem(pt_slab_pool_t *pool)
{
    pt_log_error(PT_LOG_CRIT, NULL, 0,
                 "pt_slab_alloc() failed: no memory in zone \"%s\"",
                 pool->name);
}


static void
pt_slab_log_free(pt_slab_pool_t *pool, const char *err, void *p)
{
    pt_log_error(PT_LOG_ALERT, NULL, 0,
                 "pt_slab_free(): %s in zone \"%s\": %p",
                 err, pool->name, p);
}


pt_slab_pool_t *
pt_slab_init(void *addr, size_t size, const char *name)
{
    long             ps;
    char            *end;
    size_t           page_size, n, i, len;
    unsigned         page_shift;
    uintptr_t        base, descs, start;
    pt_slab_pool_t  *pool;
    pt_slab_page_t  *d;

    if (addr == NULL || ((uintptr_t) addr & (sizeof(uint64_t) - 1))
        || size < sizeof(pt_slab_pool_t)
        || size > UINTPTR_MAX - (uintptr_t) addr)
    {
        return NULL;
    }

    ps = sysconf(_SC_PAGESIZE);
    page_size = (ps >= 4096 && (ps & (ps - 1)) == 0) ? (size_t) ps : 4096;
    page_size = pt_min(page_size, (size_t) 1 << PT_SLAB_MAX_PAGE_SHIFT);
    page_shift = pt_slab_log2(page_size);

    base = (uintptr_t) addr;
    descs = pt_align(base + sizeof(pt_slab_pool_t), sizeof(uint64_t));

    if (descs >= base + size) {
        return NULL;
    }

    /* Each page costs itself and its descriptor; the alignment of the
     * first page may cost one more. */
    n = (base + size - descs) / (page_size + sizeof(pt_slab_page_t));
    n = pt_min(n, (size_t) UINT32_MAX);

    for ( ;; ) {
        start = pt_align(descs + n * sizeof(pt_slab_page_t), page_size);

        if (n == 0 || (start <= base + size
                       && (base + size - start) / page_size >= n))
        {
            break;
        }

        n--;
    }

    if (n < PT_SLAB_MIN_PAGES) {
        return NULL;
    }

    end = (char *) addr + size;
    pool = addr;

    memset(pool, 0, sizeof(pt_slab_pool_t));

    pt_shmtx_init(&pool->mutex);

    pool->page_size = page_size;
    pool->page_shift = page_shift;
    pool->nclasses = page_shift - PT_SLAB_MIN_SHIFT;
    pool->exact_shift = page_shift - 6;
    pool->npages = n;
    pool->free_pages = n;
    pool->pages = (pt_slab_page_t *) descs;

    for (i = 0; i < pool->nclasses; i++) {
        pool->stats[i].size = (size_t) 1 << (i + PT_SLAB_MIN_SHIFT);
    }

    pool->run_stats.size = 0;
    pool->run_stats.total = n;

    d = pool->pages;
    memset(d, 0, n * sizeof(pt_slab_page_t));

    for (i = 0; i < n; i++) {
        d[i].type = PT_SLAB_PAGE_FREE_BODY;
    }

    d[0].type = PT_SLAB_PAGE_FREE;
    d[0].npages = (uint32_t) n;
    d[n - 1].type = PT_SLAB_PAGE_FREE_TAIL;
    d[n - 1].prev = d;

    pt_slab_list_insert(&pool->runs[pt_slab_log2(n)], d);

    pool->start = (char *) start;
    pool->end = end;
    pool->addr = addr;
    pool->data = NULL;

    if (name != NULL) {
        len = pt_min(strlen(name), sizeof(pool->name) - 1);
        memcpy(pool->name, name, len);
        pool->name[len] = '\0';
    }

    pool->log_nomem = 0;

    return pool;
}


void *
pt_slab_alloc(pt_slab_pool_t *pool, size_t size)
{
    int    report;
    void  *p;

    report = 0;

    pt_shmtx_lock(&pool->mutex);
    p = pt_slab_alloc_impl(pool, size, &report);
    pt_shmtx_unlock(&pool->mutex);

    if (report) {
        pt_slab_log_nomem(pool);
    }

    return p;
}


void *
pt_slab_calloc(pt_slab_pool_t *pool, size_t size)
{
    void  *p;

    p = pt_slab_alloc(pool, size);

    /* The slot is ours alone now: zero it outside the lock. */
    if (p != NULL) {
        memset(p, 0, size);
    }

    return p;
}


void
pt_slab_free(pt_slab_pool_t *pool, void *p)
{
    const char  *err;

    if (p == NULL) {
        return;
    }

    pt_shmtx_lock(&pool->mutex);
    err = pt_slab_free_impl(pool, p);
    pt_shmtx_unlock(&pool->mutex);

    if (err != NULL) {
        pt_slab_log_free(pool, err, p);
    }
}


void *
pt_slab_alloc_locked(pt_slab_pool_t *pool, size_t size)
{
    int    report;
    void  *p;

    report = 0;

    p = pt_slab_alloc_impl(pool, size, &report);

    if (report) {
        pt_slab_log_nomem(pool);
    }

    return p;
}


void *
pt_slab_calloc_locked(pt_slab_pool_t *pool, size_t size)
{
    void  *p;

    p = pt_slab_alloc_locked(pool, size);

    if (p != NULL) {
        memset(p, 0, size);
    }

    return p;
}


void
pt_slab_free_locked(pt_slab_pool_t *pool, void *p)
{
    const char  *err;

    if (p == NULL) {
        return;
    }

    err = pt_slab_free_impl(pool, p);

    if (err != NULL) {
        pt_slab_log_free(pool, err, p);
    }
}


size_t
pt_slab_stats(pt_slab_pool_t *pool, pt_slab_stat_t *out, size_t n,
    size_t *pages_total, size_t *pages_free)
{
    size_t  i, filled;

    filled = 0;

    pt_shmtx_lock(&pool->mutex);

    for (i = 0; i < pool->nclasses && filled < n; i++) {
        out[filled++] = pool->stats[i];
    }

    if (filled < n) {
        out[filled++] = pool->run_stats;
    }

    if (pages_total != NULL) {
        *pages_total = pool->npages;
    }

    if (pages_free != NULL) {
        *pages_free = pool->free_pages;
    }

    pt_shmtx_unlock(&pool->mutex);

    return filled;
}


void
pt_slab_usage(pt_slab_pool_t *pool, size_t *used, size_t *free)
{
    size_t  i, nfree, zone;

    pt_shmtx_lock(&pool->mutex);

    nfree = pool->free_pages << pool->page_shift;

    for (i = 0; i < pool->nclasses; i++) {
        nfree += (size_t) (pool->stats[i].total - pool->stats[i].used)
                 << (i + PT_SLAB_MIN_SHIFT);
    }

    zone = (size_t) (pool->end - (char *) pool->addr);

    pt_shmtx_unlock(&pool->mutex);

    if (used != NULL) {
        *used = zone - nfree;
    }

    if (free != NULL) {
        *free = nfree;
    }
}
