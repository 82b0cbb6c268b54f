/*
 * pt_array.h: a growable array allocated from a pool.
 *
 * Growing copies the elements into a larger pool allocation; the old space
 * is given back only if it was a large allocation. Pointers to elements are
 * therefore stable only until the next push.
 */

#ifndef PT_ARRAY_H
#define PT_ARRAY_H

#include "pt_core.h"
#include "pt_palloc.h"


typedef struct {
    void        *elts;
    pt_uint_t    nelts;
    size_t       size;
    pt_uint_t    nalloc;
    pt_pool_t   *pool;
} pt_array_t;


pt_array_t *pt_array_create(pt_pool_t *pool, pt_uint_t n, size_t size);
int pt_array_init(pt_array_t *a, pt_pool_t *pool, pt_uint_t n, size_t size);

/* Returns a pointer to the new (uninitialised) last element, or NULL. */
void *pt_array_push(pt_array_t *a);
void *pt_array_push_n(pt_array_t *a, pt_uint_t n);


#endif /* PT_ARRAY_H */
