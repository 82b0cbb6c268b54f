/*
 * pt_array.c: growable pool arrays (see pt_array.h).
 */

#include "pt_array.h"


pt_array_t *
pt_array_create(pt_pool_t *pool, pt_uint_t n, size_t size)
{
    pt_array_t  *a;

    a = pt_palloc(pool, sizeof(pt_array_t));
    if (a == NULL) {
        return NULL;
    }

    if (pt_array_init(a, pool, n, size) != PT_OK) {
        return NULL;
    }

    return a;
}


int
pt_array_init(pt_array_t *a, pt_pool_t *pool, pt_uint_t n, size_t size)
{
    if (n == 0) {
        n = 1;
    }

    a->nelts = 0;
    a->size = size;
    a->nalloc = n;
    a->pool = pool;
    a->elts = pt_palloc(pool, n * size);

    return a->elts ? PT_OK : PT_ERROR;
}


void *
pt_array_push_n(pt_array_t *a, pt_uint_t n)
{
    void       *elt, *nelts;
    pt_uint_t   nalloc;

    if (a->nelts + n > a->nalloc) {
        nalloc = 2 * pt_max(n, a->nalloc);

        nelts = pt_palloc(a->pool, nalloc * a->size);
        if (nelts == NULL) {
            return NULL;
        }

        memcpy(nelts, a->elts, a->nelts * a->size);
        (void) pt_pfree(a->pool, a->elts);
        a->elts = nelts;
        a->nalloc = nalloc;
    }

    elt = (char *) a->elts + a->size * a->nelts;
    a->nelts += n;

    return elt;
}


void *
pt_array_push(pt_array_t *a)
{
    return pt_array_push_n(a, 1);
}
