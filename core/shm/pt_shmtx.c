/*
 * pt_shmtx.c: the pid-owned shared-memory lock (see pt_shmtx.h).
 */

#include <pthread.h>
#include <sched.h>

#include "pt_shmtx.h"


/* Spins before giving the cpu away: long enough to outlast a short
 * critical section on another cpu, short enough not to burn a time slice
 * when the holder was descheduled. */
#define PT_SHMTX_SPIN  2048


static pid_t  pt_shmtx_pid;
static int    pt_shmtx_ncpu;
static int    pt_shmtx_atfork;


static void
pt_shmtx_forget_pid(void)
{
    /* A child that is never told its pid must not lock with its parent's:
     * the master would then free the parent's locks when the child dies. */
    pt_shmtx_pid = 0;
}


void
pt_shmtx_set_pid(pid_t pid)
{
    if (!pt_shmtx_atfork) {
        if (pthread_atfork(NULL, NULL, pt_shmtx_forget_pid) == 0) {
            pt_shmtx_atfork = 1;
        }
    }

    pt_shmtx_pid = pid;
}


static uint64_t
pt_shmtx_self(void)
{
    if (pt_shmtx_pid > 0) {
        return (uint64_t) pt_shmtx_pid;
    }

    return (uint64_t) getpid();
}


static inline void
pt_shmtx_cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __asm__ __volatile__ ("" ::: "memory");
#endif
}


static inline int
pt_shmtx_cas(pt_shmtx_t *mtx, uint64_t old, uint64_t new)
{
    return __atomic_compare_exchange_n(&mtx->owner, &old, new, 0,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}


static inline int
pt_shmtx_try(pt_shmtx_t *mtx, uint64_t self)
{
    /* Read before the CAS so waiters spin on a shared cache line instead
     * of bouncing it between cpus with failed writes. */
    return __atomic_load_n(&mtx->owner, __ATOMIC_RELAXED) == 0
           && pt_shmtx_cas(mtx, 0, self);
}


void
pt_shmtx_init(pt_shmtx_t *mtx)
{
    mtx->owner = 0;
    mtx->recovered = 0;
}


void
pt_shmtx_lock(pt_shmtx_t *mtx)
{
    long      n;
    uint64_t  self;
    unsigned  spins, i;

    self = pt_shmtx_self();

    if (pt_shmtx_ncpu == 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        pt_shmtx_ncpu = (n > 0) ? (int) n : 1;
    }

    for ( ;; ) {

        if (pt_shmtx_try(mtx, self)) {
            return;
        }

        /* On one cpu the holder cannot run while we spin. */
        if (pt_shmtx_ncpu > 1) {

            for (spins = 1; spins < PT_SHMTX_SPIN; spins <<= 1) {

                for (i = 0; i < spins; i++) {
                    pt_shmtx_cpu_pause();
                }

                if (pt_shmtx_try(mtx, self)) {
                    return;
                }
            }
        }

        sched_yield();
    }
}


int
pt_shmtx_trylock(pt_shmtx_t *mtx)
{
    return pt_shmtx_try(mtx, pt_shmtx_self());
}


void
pt_shmtx_unlock(pt_shmtx_t *mtx)
{
    uint64_t  self;

    self = pt_shmtx_self();

    (void) __atomic_compare_exchange_n(&mtx->owner, &self, 0, 0,
                                       __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}


int
pt_shmtx_force_unlock(pt_shmtx_t *mtx, pid_t pid)
{
    uint64_t  old;

    if (pid <= 0) {
        return 0;
    }

    old = (uint64_t) pid;

    if (!__atomic_compare_exchange_n(&mtx->owner, &old, 0, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    {
        return 0;
    }

    __atomic_fetch_add(&mtx->recovered, 1, __ATOMIC_RELAXED);

    return 1;
}
