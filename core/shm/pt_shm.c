/*
 * pt_shm.c: anonymous shared mappings (see pt_shm.h).
 */

#include <sys/mman.h>

#include "pt_shm.h"


int
pt_shm_alloc(pt_shm_t *shm)
{
    long    ps;
    void   *p;
    size_t  page, size;

    ps = sysconf(_SC_PAGESIZE);
    page = (ps > 0) ? (size_t) ps : 4096;

    if (shm->size == 0 || shm->size > SIZE_MAX - page) {
        errno = EINVAL;
        return PT_ERROR;
    }

    size = (shm->size + page - 1) / page * page;

    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED) {
        shm->addr = NULL;
        return PT_ERROR;
    }

    shm->addr = p;
    shm->size = size;

    return PT_OK;
}


void
pt_shm_free(pt_shm_t *shm)
{
    int  err;

    if (shm->addr == NULL) {
        return;
    }

    /* munmap() of a mapping we made cannot fail in a way worth reporting,
     * and the caller's errno is more useful than ours. */
    err = errno;
    (void) munmap(shm->addr, shm->size);
    errno = err;

    shm->addr = NULL;
}
