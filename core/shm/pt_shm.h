/*
 * pt_shm.h: anonymous shared mappings.
 *
 * The master maps every zone before it forks, so the workers inherit each
 * mapping at the same address and absolute pointers stored inside a zone
 * mean the same thing in every process. Nothing here knows what a zone
 * holds; the slab allocator (pt_slab.h) lays itself out over the memory.
 */

#ifndef PT_SHM_H
#define PT_SHM_H

#include "pt_core.h"


typedef struct {
    char    *addr;   /* start of the mapping; NULL when not mapped       */
    size_t   size;   /* in: bytes wanted; out: rounded up to a page      */
} pt_shm_t;


/* Map shm->size bytes shared and anonymous, rounded up to the page size
 * (shm->size is updated). PT_OK, or PT_ERROR with errno kept (EINVAL for
 * a size of 0 or one too large to round). The memory starts zeroed. */
int pt_shm_alloc(pt_shm_t *shm);

/* Unmap; shm->addr becomes NULL. Safe on a mapping never made. */
void pt_shm_free(pt_shm_t *shm);


#endif /* PT_SHM_H */
