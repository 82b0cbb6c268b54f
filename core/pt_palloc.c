/*
 * pt_palloc.c: memory pools (see pt_palloc.h).
 */

#include "pt_palloc.h"


typedef struct pt_pool_block_s  pt_pool_block_t;
typedef struct pt_pool_large_s  pt_pool_large_t;

struct pt_pool_block_s {
    char              *last;
    char              *end;
    pt_pool_block_t   *next;
    pt_uint_t          failed;   /* times a request did not fit here */
};

struct pt_pool_large_s {
    pt_pool_large_t   *next;
    pt_pool_large_t   *prev;
    size_t             size;
};

struct pt_pool_s {
    pt_pool_block_t    first;
    pt_pool_block_t   *current;
    pt_pool_large_t   *large;
    pt_pool_cleanup_t *cleanup;
    size_t             block_size;
    size_t             max_small;
    size_t             total;
};


static void *pt_palloc_small(pt_pool_t *pool, size_t size, int align);
static void *pt_palloc_block(pt_pool_t *pool, size_t size);
static void *pt_palloc_large(pt_pool_t *pool, size_t size);


pt_pool_t *
pt_pool_create(size_t size)
{
    pt_pool_t  *pool;

    if (size < sizeof(pt_pool_t) + 64) {
        size = sizeof(pt_pool_t) + 64;
    }

    pool = malloc(size);
    if (pool == NULL) {
        return NULL;
    }

    pool->first.last = (char *) pool + sizeof(pt_pool_t);
    pool->first.end = (char *) pool + size;
    pool->first.next = NULL;
    pool->first.failed = 0;
    pool->current = &pool->first;
    pool->large = NULL;
    pool->cleanup = NULL;
    pool->block_size = size;
#if (PT_DEBUG_PALLOC)
    /* Sanitizer builds: every allocation takes the large path, a malloc
     * of its own, so that ASan sees the bounds and the life of each. */
    pool->max_small = 0;
#else
    pool->max_small = pt_min(size - sizeof(pt_pool_t), (size_t) 4096);
#endif
    pool->total = size;

    return pool;
}


void
pt_pool_destroy(pt_pool_t *pool)
{
    pt_pool_cleanup_t  *c;
    pt_pool_large_t    *l, *ln;
    pt_pool_block_t    *b, *bn;

    if (pool == NULL) {
        return;
    }

    for (c = pool->cleanup; c; c = c->next) {
        if (c->handler) {
            c->handler(c->data);
        }
    }

    for (l = pool->large; l; l = ln) {
        ln = l->next;
        free(l);
    }

    for (b = pool->first.next; b; b = bn) {
        bn = b->next;
        free(b);
    }

    free(pool);
}


void *
pt_palloc(pt_pool_t *pool, size_t size)
{
    if (size <= pool->max_small) {
        return pt_palloc_small(pool, size, 1);
    }

    return pt_palloc_large(pool, size);
}


void *
pt_pnalloc(pt_pool_t *pool, size_t size)
{
    if (size <= pool->max_small) {
        return pt_palloc_small(pool, size, 0);
    }

    return pt_palloc_large(pool, size);
}


void *
pt_pcalloc(pt_pool_t *pool, size_t size)
{
    void  *p;

    p = pt_palloc(pool, size);
    if (p) {
        memset(p, 0, size);
    }

    return p;
}


static void *
pt_palloc_small(pt_pool_t *pool, size_t size, int align)
{
    char             *m;
    pt_pool_block_t  *b;

    for (b = pool->current; b; b = b->next) {
        m = b->last;
        if (align) {
            m = pt_align_ptr(m, PT_ALIGNMENT);
        }

        if ((size_t) (b->end - m) >= size) {
            b->last = m + size;
            return m;
        }
    }

    return pt_palloc_block(pool, size);
}


static void *
pt_palloc_block(pt_pool_t *pool, size_t size)
{
    char             *m;
    pt_pool_block_t  *b, *nb;

    nb = malloc(pool->block_size);
    if (nb == NULL) {
        return NULL;
    }

    pool->total += pool->block_size;

    m = (char *) nb + sizeof(pt_pool_block_t);
    m = pt_align_ptr(m, PT_ALIGNMENT);
    nb->end = (char *) nb + pool->block_size;
    nb->next = NULL;
    nb->failed = 0;
    nb->last = m + size;

    /* Blocks that keep failing are skipped from then on, so a long-lived
     * pool does not rescan full blocks on every allocation. */
    for (b = pool->current; b->next; b = b->next) {
        if (b->failed++ > 4) {
            pool->current = b->next;
        }
    }

    b->next = nb;

    return m;
}


static void *
pt_palloc_large(pt_pool_t *pool, size_t size)
{
    pt_pool_large_t  *l;

    l = malloc(sizeof(pt_pool_large_t) + size);
    if (l == NULL) {
        return NULL;
    }

    pool->total += size;

    l->size = size;
    l->prev = NULL;
    l->next = pool->large;
    if (pool->large) {
        pool->large->prev = l;
    }
    pool->large = l;

    return (char *) l + sizeof(pt_pool_large_t);
}


int
pt_pfree(pt_pool_t *pool, void *p)
{
    pt_pool_large_t  *l;

    for (l = pool->large; l; l = l->next) {
        if ((char *) l + sizeof(pt_pool_large_t) != p) {
            continue;
        }

        if (l->prev) {
            l->prev->next = l->next;
        } else {
            pool->large = l->next;
        }

        if (l->next) {
            l->next->prev = l->prev;
        }

        pool->total -= l->size;
        free(l);
        return PT_OK;
    }

    return PT_DECLINED;
}


char *
pt_pstrndup(pt_pool_t *pool, const char *s, size_t len)
{
    char  *d;

    d = pt_pnalloc(pool, len + 1);
    if (d == NULL) {
        return NULL;
    }

    memcpy(d, s, len);
    d[len] = '\0';

    return d;
}


char *
pt_psprintf(pt_pool_t *pool, size_t *len, const char *fmt, ...)
{
    int       n;
    char     *p;
    va_list   args;

    va_start(args, fmt);
    n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);

    if (n < 0) {
        return NULL;
    }

    p = pt_pnalloc(pool, (size_t) n + 1);
    if (p == NULL) {
        return NULL;
    }

    va_start(args, fmt);
    vsnprintf(p, (size_t) n + 1, fmt, args);
    va_end(args);

    if (len) {
        *len = (size_t) n;
    }

    return p;
}


pt_pool_cleanup_t *
pt_pool_cleanup_add(pt_pool_t *pool, pt_pool_cleanup_pt handler, void *data)
{
    pt_pool_cleanup_t  *c;

    c = pt_palloc(pool, sizeof(pt_pool_cleanup_t));
    if (c == NULL) {
        return NULL;
    }

    c->handler = handler;
    c->data = data;
    c->next = pool->cleanup;
    pool->cleanup = c;

    return c;
}


size_t
pt_pool_size(pt_pool_t *pool)
{
    return pool->total;
}
