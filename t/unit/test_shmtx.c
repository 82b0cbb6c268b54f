/*
 * test_shmtx.c: the pid-owned shared-memory lock.
 */

#include <sys/wait.h>
#include <signal.h>
#include <time.h>

#include "pt_core.h"
#include "pt_shm.h"
#include "pt_shmtx.h"

#include "tap.h"


#define NPROCS   4
#define NINCR    100000


typedef struct {
    pt_shmtx_t         mtx;
    uint64_t           counter;     /* deliberately not atomic */
    volatile int       flag;
} shared_t;


static void
sleep_ms(long ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000;

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        /* void */
    }
}


/* waitpid() with a deadline; -1 if the child had to be killed. */
static int
wait_exit(pid_t pid, long ms)
{
    int    status;
    long   waited;
    pid_t  r;

    for (waited = 0; waited <= ms; waited += 10) {
        r = waitpid(pid, &status, WNOHANG);

        if (r == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }

        if (r < 0) {
            return -1;
        }

        sleep_ms(10);
    }

    kill(pid, SIGKILL);
    (void) waitpid(pid, &status, 0);

    return -1;
}


static void
test_basic(shared_t *sh)
{
    pt_shmtx_t  *mtx;

    mtx = &sh->mtx;

    pt_shmtx_init(mtx);
    is_int(mtx->owner, 0, "init: free");
    is_int(mtx->recovered, 0, "init: no recoveries");

    is_int(pt_shmtx_trylock(mtx), 1, "trylock on a free lock takes it");
    is_int(mtx->owner, getpid(), "owner is our pid");
    is_int(pt_shmtx_trylock(mtx), 0, "trylock is not recursive");

    pt_shmtx_unlock(mtx);
    is_int(mtx->owner, 0, "unlock frees it");

    pt_shmtx_lock(mtx);
    is_int(mtx->owner, getpid(), "lock takes a free lock");
    pt_shmtx_unlock(mtx);
    is_int(mtx->owner, 0, "and unlock frees it");

    pt_shmtx_set_pid(12345);
    pt_shmtx_lock(mtx);
    is_int(mtx->owner, 12345, "the cached pid is what the lock records");
    pt_shmtx_unlock(mtx);
    is_int(mtx->owner, 0, "unlock with the cached pid");
    pt_shmtx_set_pid(getpid());

    is_int(pt_shmtx_force_unlock(mtx, 0), 0, "force_unlock(0) on free: 0");
    is_int(pt_shmtx_force_unlock(mtx, -1), 0, "force_unlock(-1): 0");
    is_int(pt_shmtx_force_unlock(mtx, getpid()), 0,
           "force_unlock of a free lock: 0");
    is_int(mtx->recovered, 0, "nothing recovered");
}


static void
test_counter(shared_t *sh)
{
    int    i, j, failed;
    pid_t  pids[NPROCS];

    pt_shmtx_init(&sh->mtx);
    sh->counter = 0;

    for (i = 0; i < NPROCS; i++) {
        pids[i] = fork();

        if (pids[i] == 0) {
            pt_shmtx_set_pid(getpid());

            for (j = 0; j < NINCR; j++) {
                pt_shmtx_lock(&sh->mtx);
                sh->counter++;
                pt_shmtx_unlock(&sh->mtx);
            }

            _exit(0);
        }
    }

    failed = 0;

    for (i = 0; i < NPROCS; i++) {
        if (pids[i] < 0 || wait_exit(pids[i], 20000) != 0) {
            failed++;
        }
    }

    is_int(failed, 0, "%d counting children exited cleanly", NPROCS);
    is_int(sh->counter, (uint64_t) NPROCS * NINCR,
           "counter incremented under the lock is exact");
    is_int(sh->mtx.owner, 0, "lock free after the children");
}


static void
test_dead_owner(shared_t *sh)
{
    pid_t        a, b;
    pt_shmtx_t  *mtx;

    mtx = &sh->mtx;
    pt_shmtx_init(mtx);

    a = fork();

    if (a == 0) {
        pt_shmtx_set_pid(getpid());
        pt_shmtx_lock(mtx);
        _exit(0);
    }

    is_int(wait_exit(a, 5000), 0, "child took the lock and exited");
    is_int(mtx->owner, a, "the dead child still owns the lock");

    is_int(pt_shmtx_trylock(mtx), 0, "trylock fails while a dead pid holds");

    pt_shmtx_unlock(mtx);
    is_int(mtx->owner, a, "unlock by a non-owner leaves it held");

    is_int(pt_shmtx_force_unlock(mtx, getpid()), 0,
           "force_unlock with another pid: 0");
    is_int(mtx->owner, a, "and the lock stays held");
    is_int(mtx->recovered, 0, "nothing recovered yet");

    is_int(pt_shmtx_force_unlock(mtx, a), 1, "force_unlock(child): 1");
    is_int(mtx->owner, 0, "lock is free");
    is_int(mtx->recovered, 1, "one recovery counted");
    is_int(pt_shmtx_force_unlock(mtx, a), 0, "a second force_unlock: 0");

    is_int(pt_shmtx_trylock(mtx), 1, "lock can be taken again");
    is_int(pt_shmtx_force_unlock(mtx, a), 0,
           "force_unlock(dead pid) does not free our hold");
    is_int(mtx->owner, getpid(), "still ours");
    pt_shmtx_unlock(mtx);

    /* A waiter blocked behind a dead holder gets the lock on recovery. */
    a = fork();

    if (a == 0) {
        pt_shmtx_set_pid(getpid());
        pt_shmtx_lock(mtx);
        _exit(0);
    }

    (void) wait_exit(a, 5000);
    sh->flag = 0;

    b = fork();

    if (b == 0) {
        pt_shmtx_set_pid(getpid());
        pt_shmtx_lock(mtx);
        sh->flag = 1;
        pt_shmtx_unlock(mtx);
        _exit(0);
    }

    sleep_ms(150);
    is_int(sh->flag, 0, "a waiter blocks behind the dead holder");

    is_int(pt_shmtx_force_unlock(mtx, a), 1, "recover the dead holder");
    is_int(wait_exit(b, 5000), 0, "the waiter got the lock and exited");
    is_int(sh->flag, 1, "the waiter ran its critical section");
    is_int(mtx->owner, 0, "and released the lock");
    is_int(mtx->recovered, 2, "two recoveries counted");
}


static void
test_fork_pid(shared_t *sh)
{
    pid_t  pid;

    pt_shmtx_init(&sh->mtx);
    pt_shmtx_set_pid(getpid());

    /* A child that is never told its pid must not lock as its parent. */
    pid = fork();

    if (pid == 0) {
        if (pt_shmtx_trylock(&sh->mtx) != 1) {
            _exit(1);
        }

        _exit(sh->mtx.owner == (uint64_t) getpid() ? 0 : 2);
    }

    is_int(wait_exit(pid, 5000), 0, "a forked child locks with its own pid");
    is_int(pt_shmtx_force_unlock(&sh->mtx, pid), 1,
           "and the master can recover it by that pid");
}


int
main(void)
{
    pt_shm_t   shm;
    shared_t  *sh;

    tap_plan(41);

    shm.size = sizeof(shared_t);

    if (pt_shm_alloc(&shm) != PT_OK) {
        ok(0, "pt_shm_alloc: %s", strerror(errno));
        return 1;
    }

    ok(1, "pt_shm_alloc");

    sh = (shared_t *) shm.addr;

    test_basic(sh);
    test_counter(sh);
    test_dead_owner(sh);
    test_fork_pid(sh);

    pt_shm_free(&shm);
    ok(shm.addr == NULL, "pt_shm_free clears the address");

    return tap_done();
}
