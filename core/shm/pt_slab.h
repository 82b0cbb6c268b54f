/*
 * pt_slab.h: the allocator inside a shared-memory zone.
 *
 * The design follows nginx's slab allocator. A zone starts with the pool
 * header, then one descriptor per page, then the pages themselves (the
 * system page size). Requests up to half a page get a slot of the next
 * power of two from 8 bytes up, carved from pages dedicated to that slot
 * size; each slot size keeps a list of its partly used pages, and a bitmap
 * per page says which slots are taken (at the start of the page for small
 * slots, in the descriptor once a page holds 64 slots or fewer). Larger
 * requests take runs of whole pages from free lists of page runs; a freed
 * run merges with free neighbours, so fragmentation does not accumulate.
 *
 * All pointers inside a zone are absolute: the zone is mapped at the same
 * address in every process (see pt_shm.h). Nothing in a zone may point to
 * private memory.
 */

#ifndef PT_SLAB_H
#define PT_SLAB_H

#include "pt_core.h"
#include "pt_shmtx.h"


/* Pages are the system page size, kept within 4 KiB .. 64 KiB, so there
 * are at most 13 slot classes (8 B .. 32 KiB). */
#define PT_SLAB_MIN_SHIFT       3
#define PT_SLAB_MAX_PAGE_SHIFT  16
#define PT_SLAB_MAX_CLASSES     (PT_SLAB_MAX_PAGE_SHIFT - PT_SLAB_MIN_SHIFT)
/* Free run lists, one per power of two of the run length in pages. */
#define PT_SLAB_RUN_LISTS       32

/* Enough entries for any pt_slab_stats() answer. */
#define PT_SLAB_STATS_MAX       (PT_SLAB_MAX_CLASSES + 1)


typedef struct {
    size_t     size;      /* slot size in bytes (or 0 for page runs)      */
    uint64_t   total;     /* slots that exist in pages of this class; for
                             page runs, the pages of the zone            */
    uint64_t   used;      /* slots in use; for page runs, pages in runs   */
    uint64_t   reqs;      /* allocations asked for                        */
    uint64_t   fails;     /* allocations that failed                      */
} pt_slab_stat_t;


/* One per page. Private to pt_slab.c; here so the pool can be sized. */
typedef struct pt_slab_page_s  pt_slab_page_t;

struct pt_slab_page_s {
    pt_slab_page_t  *next;    /* free run list or partly used slot list   */
    pt_slab_page_t  *prev;    /* same lists; a free run's tail: its head  */
    uint64_t         bitmap;  /* slots in use, when kept here             */
    uint32_t         npages;  /* run length, in a run's first page        */
    uint16_t         used;    /* slots handed out from this page          */
    uint8_t          type;    /* what the page is: PT_SLAB_PAGE_* in .c   */
    uint8_t          shift;   /* slot size of a slot page, as a shift     */
};


struct pt_slab_pool_s {           /* typedef'd in pt_core.h */
    pt_shmtx_t        mutex;      /* guards everything below             */

    size_t            page_size;
    unsigned          page_shift;
    unsigned          nclasses;   /* slot sizes: 8 B .. page_size / 2    */
    unsigned          exact_shift;    /* from here the bitmap fits in the
                                         descriptor                      */
    size_t            npages;     /* pages in the zone                   */
    size_t            free_pages; /* of which free                       */
    pt_slab_page_t   *pages;      /* descriptors, one per page           */

    pt_slab_page_t   *partial[PT_SLAB_MAX_CLASSES];  /* slot pages with
                                                        free slots       */
    pt_slab_page_t   *runs[PT_SLAB_RUN_LISTS];   /* free runs; list i holds
                                                    2^i .. 2^(i+1)-1 pages */
    pt_slab_stat_t    stats[PT_SLAB_MAX_CLASSES];
    pt_slab_stat_t    run_stats;

    pt_msec_t         nomem_next; /* no "no memory" log before this time */

    char             *start;      /* first page                          */
    char             *end;        /* end of the zone                     */
    void             *addr;       /* where the zone is mapped; workers
                                     check it equals the pool's own
                                     address                             */
    void             *data;       /* the owner's root object             */
    char              name[32];   /* zone name, for logs                 */
    unsigned          log_nomem:1;    /* log allocation failures (at most
                                         once a second)                  */
};


/* Lay out a pool over [addr, addr+size): header, descriptors, pages. The
 * caller passes the zone's memory (aligned to 8 bytes at least; a page
 * boundary wastes nothing); returns NULL if size is too small (fewer than
 * 8 pages after the header). name is copied, cut to 31 bytes. log_nomem
 * starts off and data NULL. Not locked: call it before other processes see
 * the zone. */
pt_slab_pool_t *pt_slab_init(void *addr, size_t size, const char *name);

/* Allocate size bytes (0 counts as 1), aligned to the slot size, or to the
 * page for more than half a page. NULL when the zone is full: the failure
 * is counted and, with log_nomem, logged after the lock is dropped. */
void *pt_slab_alloc(pt_slab_pool_t *pool, size_t size);

/* pt_slab_alloc(), zero-filled. */
void *pt_slab_calloc(pt_slab_pool_t *pool, size_t size);

/* Free what pt_slab_alloc() returned; NULL is ignored. A pointer that is
 * not a live allocation of this pool is refused with an alert in the log,
 * leaving the pool as it was. */
void pt_slab_free(pt_slab_pool_t *pool, void *p);

/* The _locked twins assume the caller holds pool->mutex. They log what
 * the others log (a failure at most once a second), so they are the one
 * place a critical section may write to the log. */
void *pt_slab_alloc_locked(pt_slab_pool_t *pool, size_t size);
void *pt_slab_calloc_locked(pt_slab_pool_t *pool, size_t size);
void  pt_slab_free_locked(pt_slab_pool_t *pool, void *p);

/* Statistics: fills up to n entries (one per slot class, smallest first,
 * then one for page runs) and returns how many; PT_SLAB_STATS_MAX entries
 * always suffice. pages_total/pages_free may be NULL. Takes the lock. */
size_t pt_slab_stats(pt_slab_pool_t *pool, pt_slab_stat_t *out, size_t n,
    size_t *pages_total, size_t *pages_free);

/* Bytes in use and free, for the portico_shm_bytes{state} metric. Free
 * bytes are free pages plus free slots; used is the rest of the zone
 * (header and bitmaps included), so used + free is the zone size. Takes
 * the lock. */
void pt_slab_usage(pt_slab_pool_t *pool, size_t *used, size_t *free);


#endif /* PT_SLAB_H */
