/*
 * pt_palloc.h: memory pools.
 *
 * Every allocation in Portico belongs to a pool whose lifetime is obvious:
 * the config generation (cycle), a connection, or a request. Small blocks are
 * carved from chained pages and freed all at once when the pool goes;
 * allocations above the page size are tracked separately so that pt_pfree()
 * can return them early (a request that streams a large body must not keep
 * every buffer until it ends). Cleanup handlers run, in reverse order of
 * registration, when the pool is destroyed.
 */

#ifndef PT_PALLOC_H
#define PT_PALLOC_H

#include "pt_core.h"


#define PT_POOL_DEFAULT_SIZE   4096

typedef void (*pt_pool_cleanup_pt)(void *data);

typedef struct pt_pool_cleanup_s  pt_pool_cleanup_t;

struct pt_pool_cleanup_s {
    pt_pool_cleanup_pt   handler;
    void                *data;
    pt_pool_cleanup_t   *next;
};


/* Create a pool whose first block holds `size` bytes (header included).
 * Returns NULL when memory is exhausted. */
pt_pool_t *pt_pool_create(size_t size);

/* Run the cleanups, then free every block and large allocation. */
void pt_pool_destroy(pt_pool_t *pool);

/* Aligned allocation; NULL when memory is exhausted. */
void *pt_palloc(pt_pool_t *pool, size_t size);

/* Zero-filled aligned allocation. */
void *pt_pcalloc(pt_pool_t *pool, size_t size);

/* Unaligned allocation, for strings. */
void *pt_pnalloc(pt_pool_t *pool, size_t size);

/* Free an allocation made by the large path early; PT_DECLINED otherwise. */
int pt_pfree(pt_pool_t *pool, void *p);

/* Copy `len` bytes and append a NUL. */
char *pt_pstrndup(pt_pool_t *pool, const char *s, size_t len);

/* Printf into the pool; returns a NUL-terminated string and its length. */
char *pt_psprintf(pt_pool_t *pool, size_t *len, const char *fmt, ...)
    PT_PRINTF(3, 4);

/* Register a cleanup run when the pool is destroyed. */
pt_pool_cleanup_t *pt_pool_cleanup_add(pt_pool_t *pool,
    pt_pool_cleanup_pt handler, void *data);

/* Total bytes the pool has taken from malloc, for bounds and statistics. */
size_t pt_pool_size(pt_pool_t *pool);


#endif /* PT_PALLOC_H */
