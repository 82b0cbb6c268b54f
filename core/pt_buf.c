/*
 * pt_buf.c: buffers, chains and the block cache (see pt_buf.h).
 */

#include "pt_buf.h"


pt_buf_t *
pt_buf_create(pt_pool_t *pool, size_t size)
{
    pt_buf_t  *b;

    b = pt_pcalloc(pool, sizeof(pt_buf_t));
    if (b == NULL) {
        return NULL;
    }

    b->start = pt_pnalloc(pool, size);
    if (b->start == NULL) {
        return NULL;
    }

    b->pos = b->start;
    b->last = b->start;
    b->end = b->start + size;

    return b;
}


size_t
pt_chain_size(pt_chain_t *cl)
{
    size_t  n;

    for (n = 0; cl; cl = cl->next) {
        n += pt_buf_size(cl->buf);
    }

    return n;
}


void
pt_block_cache_init(pt_block_cache_t *bc, size_t size, pt_uint_t max_free)
{
    bc->size = pt_max(size, sizeof(void *));
    bc->max_free = max_free;
    bc->nfree = 0;
    bc->nused = 0;
    bc->free = NULL;
}


void *
pt_block_get(pt_block_cache_t *bc)
{
    void  *b;

    b = bc->free;

    if (b) {
        bc->free = *(void **) b;
        bc->nfree--;

    } else {
        b = malloc(bc->size);
        if (b == NULL) {
            return NULL;
        }
    }

    bc->nused++;

    return b;
}


void
pt_block_put(pt_block_cache_t *bc, void *block)
{
    if (block == NULL) {
        return;
    }

    bc->nused--;

    if (bc->nfree >= bc->max_free) {
        free(block);
        return;
    }

    *(void **) block = bc->free;
    bc->free = block;
    bc->nfree++;
}


void
pt_block_cache_drain(pt_block_cache_t *bc)
{
    void  *b;

    while (bc->free) {
        b = bc->free;
        bc->free = *(void **) b;
        free(b);
    }

    bc->nfree = 0;
}


int
pt_text_init(pt_text_t *t, pt_pool_t *pool, size_t cap)
{
    t->pool = pool;
    t->len = 0;
    t->cap = cap;
    t->failed = 0;
    t->data = pt_pnalloc(pool, cap);

    if (t->data == NULL) {
        t->failed = 1;
        return PT_ERROR;
    }

    return PT_OK;
}


int
pt_text_reserve(pt_text_t *t, size_t n)
{
    char    *p;
    size_t   cap;

    if (t->failed) {
        return PT_ERROR;
    }

    if (t->cap - t->len > n) {
        return PT_OK;
    }

    cap = pt_max(t->cap * 2, t->len + n + 1);
    p = pt_pnalloc(t->pool, cap);
    if (p == NULL) {
        t->failed = 1;
        return PT_ERROR;
    }

    memcpy(p, t->data, t->len);
    (void) pt_pfree(t->pool, t->data);
    t->data = p;
    t->cap = cap;

    return PT_OK;
}


void
pt_text_printf(pt_text_t *t, const char *fmt, ...)
{
    int      n;
    va_list  args;

    for ( ;; ) {
        if (pt_text_reserve(t, 0) != PT_OK) {
            return;
        }

        va_start(args, fmt);
        n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, args);
        va_end(args);

        if (n < 0) {
            t->failed = 1;
            return;
        }

        if ((size_t) n < t->cap - t->len) {
            t->len += (size_t) n;
            return;
        }

        if (pt_text_reserve(t, (size_t) n) != PT_OK) {
            return;
        }
    }
}
