/*
 * pt_shmtx.h: a lock in shared memory that a dying process cannot leave
 * held.
 *
 * The lock word holds the owner's pid. Because the owner is named, the
 * master can free a lock whose holder died (it learns the pid from
 * waitpid()), which a plain spinlock or a futex cannot offer. Waiters spin
 * with a growing number of cpu pauses, then yield the cpu. Critical
 * sections must be short and make no syscalls: a holder descheduled inside
 * one stalls every process that wants the lock.
 */

#ifndef PT_SHMTX_H
#define PT_SHMTX_H

#include "pt_core.h"


typedef struct {
    volatile uint64_t  owner;      /* 0 or the holder's pid             */
    volatile uint64_t  recovered;  /* times force_unlock freed it       */
} pt_shmtx_t;                      /* lives inside shared memory        */


/* Tell the lock code this process's pid; the process model calls it in
 * every child right after fork(). Until it is called (and again after any
 * fork) the locks fall back to getpid(). */
void pt_shmtx_set_pid(pid_t pid);

/* Make the lock free, with no recoveries counted. Not atomic: call it
 * before any other process can see the lock. */
void pt_shmtx_init(pt_shmtx_t *mtx);

/* Take the lock, waiting as long as it takes. Not recursive: taking a
 * lock this process already holds waits forever. */
void pt_shmtx_lock(pt_shmtx_t *mtx);

/* Take the lock if it is free: 1 taken, 0 busy (also when this process
 * already holds it). */
int pt_shmtx_trylock(pt_shmtx_t *mtx);

/* Release the lock. Does nothing unless this process holds it, so a late
 * unlock cannot free a lock that was recovered and taken by another. */
void pt_shmtx_unlock(pt_shmtx_t *mtx);

/* Called by the master when `pid` died: frees the lock if that pid held it
 * and counts a recovery. Returns 1 if it did, 0 otherwise. */
int pt_shmtx_force_unlock(pt_shmtx_t *mtx, pid_t pid);


#endif /* PT_SHMTX_H */
