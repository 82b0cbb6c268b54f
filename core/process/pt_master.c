/*
 * pt_master.c: the master process: spawn, supervise, reload, stop.
 *
 * Reload (HUP) builds the new cycle next to the running one. If the
 * config is bad, nothing changes. If it is good, the new generation's
 * workers are forked and the old generation is told to drain only once
 * every new worker has said READY; a new worker that dies first rolls the
 * reload back, so a config that passes validation but cannot run (say a
 * module whose init_worker fails) still leaves the old one serving.
 */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "pt_process.h"
#include "pt_core_module.h"
#include "pt_connection.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_READY_TIMEOUT_MS    10000
#define PT_KILL_AFTER_MS       1000
#define PT_CRASH_WINDOW_MS     10000
#define PT_CRASH_LIMIT         5
#define PT_HELPER_INDEX        256    /* workers are numbered below it  */


typedef struct {
    pid_t         pid;
    pt_uint_t     slot;         /* index in pt_core_shm->procs          */
    pt_uint_t     index;        /* worker number within its generation  */
    uint64_t      generation;
    pt_cycle_t   *cycle;
    unsigned      ready:1;
    unsigned      exiting:1;    /* told to drain or stop                */
} pt_proc_t;

/* Crash accounting for one worker index, for respawn backoff. */
typedef struct {
    pt_msec_t     deaths[PT_CRASH_LIMIT];
    pt_uint_t     next;
    pt_msec_t     respawn_at;   /* 0: no respawn pending                */
    unsigned      pending:1;
} pt_respawn_t;

static pt_proc_t      pt_procs[PT_MAX_PROCESSES];
static pt_respawn_t   pt_respawns[PT_HELPER_INDEX + 1];
static int            pt_ready_pipe[2] = { -1, -1 };
static pt_cycle_t    *pt_pending;          /* reload waiting for READY  */
static pt_msec_t      pt_pending_deadline;
static unsigned       pt_quitting;
static unsigned       pt_terminating;
static pt_msec_t      pt_kill_at;
static pt_str_t       pt_pid_path;
static int            pt_master_sfd = -1;
static unsigned       pt_reload_again;     /* a HUP came during a reload */

/* Generations whose workers are still draining: their memory stays until
 * the last of them is reaped, since the master may still have to free a
 * zone lock one of them held. */
static pt_cycle_t    *pt_retired[64];

static int pt_master_spawn(pt_cycle_t *cycle, pt_uint_t index);
static void pt_master_signal_generation(uint64_t gen, int signo);
static void pt_master_signal_all(int signo);
static pt_uint_t pt_master_count(uint64_t gen, int ready_only);
static void pt_master_reap(void);
static void pt_master_reload(const char *conf_file, const char *prefix);
static void pt_master_commit(void);
static void pt_master_rollback(const char *why);
static void pt_master_respawn_due(void);
static void pt_master_retire(pt_cycle_t *cycle);
static int pt_master_spawn_generation(pt_cycle_t *cycle);
static pt_uint_t pt_master_expected(pt_cycle_t *cycle);
static void pt_master_free_retired(int all);


int
pt_master_run(const char *conf_file, const char *prefix)
{
    int                      sfd, timeout, reload, n;
    char                     buf[256];
    ssize_t                  r;
    sigset_t                 set;
    pt_uint_t                i, nworkers;
    pt_cycle_t              *cycle;
    struct pollfd            pfd[2];
    struct signalfd_siginfo  si;

    cycle = pt_cycle;

    pt_process_signals(&set);
    sigaddset(&set, SIGCHLD);

    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
        pt_log_error(PT_LOG_EMERG, NULL, errno, "sigprocmask() failed");
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);

    sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        pt_log_error(PT_LOG_EMERG, NULL, errno, "signalfd() failed");
        return 1;
    }

    pt_master_sfd = sfd;

    /* Workers write their pid here when they are ready to serve. Writes
     * under PIPE_BUF are atomic, so one pipe serves every worker. */
    if (pipe2(pt_ready_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        pt_log_error(PT_LOG_EMERG, NULL, errno, "pipe2() failed");
        return 1;
    }

    pt_pid_path = pt_core_conf(cycle)->pid_file;

    nworkers = pt_core_workers(cycle);

    if (pt_master_spawn_generation(cycle) != PT_OK) {
        pt_master_signal_all(SIGKILL);
        return 1;
    }

    pt_log_error(PT_LOG_NOTICE, NULL, 0,
                 "portico %s started, generation %lu, %lu workers",
                 PT_VERSION, (unsigned long) cycle->generation,
                 (unsigned long) nworkers);

    for ( ;; ) {
        pt_time_update();

        timeout = 1000;
        if (pt_pending) {
            timeout = 100;
        }
        if (pt_terminating || pt_quitting) {
            timeout = 50;
        }

        pfd[0].fd = sfd;
        pfd[0].events = POLLIN;
        pfd[1].fd = pt_ready_pipe[0];
        pfd[1].events = POLLIN;

        n = poll(pfd, 2, timeout);

        pt_time_update();

        if (!pt_quitting && !pt_terminating) {
            pt_cycle_tick_master(pt_cycle);
        }

        if (n < 0 && errno != EINTR) {
            pt_log_error(PT_LOG_ALERT, NULL, errno, "poll() failed");
        }

        reload = 0;

        while (read(sfd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
            switch (si.ssi_signo) {

            case SIGHUP:
                reload = 1;
                break;

            case SIGQUIT:
            case SIGWINCH:
                if (!pt_quitting && !pt_terminating) {
                    pt_log_error(PT_LOG_NOTICE, NULL, 0, "graceful shutdown");
                    pt_quitting = 1;
                    pt_kill_at = pt_current_msec
                        + pt_cycle->graceful_timeout + 5000;
                    if (pt_pending) {
                        pt_master_rollback("shutting down");
                    }
                    pt_master_signal_all(SIGQUIT);

                    /* With every copy closed, new clients are refused at
                     * once instead of waiting in a backlog nobody reads. */
                    pt_cycle_close_listeners(pt_cycle, NULL);
                }
                break;

            case SIGTERM:
            case SIGINT:
                if (!pt_terminating) {
                    pt_log_error(PT_LOG_NOTICE, NULL, 0, "fast shutdown");
                    pt_terminating = 1;
                    pt_kill_at = pt_current_msec + PT_KILL_AFTER_MS;
                    pt_master_signal_all(SIGTERM);
                }
                break;

            case SIGUSR1:
                pt_log_error(PT_LOG_NOTICE, NULL, 0, "reopening logs");
                pt_cycle_reopen_files(pt_cycle);
                pt_master_signal_all(SIGUSR1);
                break;

            case SIGUSR2:
                pt_log_error(PT_LOG_WARN, NULL, 0,
                             "USR2 (binary upgrade) is not supported yet, ignored");
                break;

            case SIGCHLD:
                break;
            }
        }

        /* Reap on every wakeup: SIGCHLD coalesces, and a signalfd that
         * was read may still leave zombies behind. */
        pt_master_reap();

        while ((r = read(pt_ready_pipe[0], buf, sizeof(buf))) > 0) {
            for (n = 0; n + (int) sizeof(pid_t) <= r;
                 n += (int) sizeof(pid_t))
            {
                pid_t  pid;

                memcpy(&pid, buf + n, sizeof(pid_t));
                for (i = 0; i < PT_MAX_PROCESSES; i++) {
                    if (pt_procs[i].pid == pid) {
                        pt_procs[i].ready = 1;
                    }
                }
            }
        }

        if (pt_terminating || pt_quitting) {
            if (pt_master_count(0, 0) == 0) {
                break;
            }

            if (pt_current_msec >= pt_kill_at) {
                pt_master_signal_all(SIGKILL);
                pt_kill_at = pt_current_msec + PT_KILL_AFTER_MS;
            }

            continue;
        }

        if (reload && pt_pending) {
            pt_log_error(PT_LOG_NOTICE, NULL, 0,
                         "reload in progress, the new SIGHUP will be served after it");
            pt_reload_again = 1;

        } else if ((reload || pt_reload_again) && !pt_pending) {
            pt_reload_again = 0;
            pt_master_reload(conf_file, prefix);
        }

        if (pt_pending) {
            if (pt_master_count(pt_pending->generation, 1)
                == pt_master_expected(pt_pending))
            {
                pt_master_commit();

            } else if (pt_current_msec >= pt_pending_deadline) {
                pt_master_rollback("new workers did not become ready in "
                                   "time");
            }
        }

        pt_master_respawn_due();
    }

    pt_log_error(PT_LOG_NOTICE, NULL, 0, "exit");

    if (pt_pid_path.data) {
        (void) unlink(pt_pid_path.data);
    }

    pt_master_free_retired(1);
    pt_cycle_free(pt_cycle, NULL);

    return 0;
}


static pt_uint_t
pt_master_free_slot(void)
{
    pt_uint_t  i;

    for (i = 0; i < PT_MAX_PROCESSES; i++) {
        if (pt_procs[i].pid == 0) {
            return i;
        }
    }

    return PT_MAX_PROCESSES;
}


/* Processes a generation runs: its workers and, if asked for, the
 * helper. */
static pt_uint_t
pt_master_expected(pt_cycle_t *cycle)
{
    return pt_core_workers(cycle) + (cycle->helper ? 1 : 0);
}


static int
pt_master_spawn_generation(pt_cycle_t *cycle)
{
    pt_uint_t  i, n;

    n = pt_core_workers(cycle);

    for (i = 0; i < n; i++) {
        if (pt_master_spawn(cycle, i) != PT_OK) {
            return PT_ERROR;
        }
    }

    if (cycle->helper) {
        return pt_master_spawn(cycle, PT_HELPER_INDEX);
    }

    return PT_OK;
}


static int
pt_master_spawn(pt_cycle_t *cycle, pt_uint_t index)
{
    pid_t       pid;
    pt_uint_t   slot;

    slot = pt_master_free_slot();
    if (slot == PT_MAX_PROCESSES) {
        pt_log_error(PT_LOG_ALERT, NULL, 0, "no free process slot");
        return PT_ERROR;
    }

    pid = fork();

    if (pid < 0) {
        pt_log_error(PT_LOG_ALERT, NULL, errno, "fork() failed");
        return PT_ERROR;
    }

    if (pid == 0) {
        close(pt_ready_pipe[0]);
        close(pt_master_sfd);

        /* The other generation's sockets are not this worker's to hold:
         * a listener dropped from the config must really close. */
        pt_process_close_listeners(cycle == pt_cycle ? pt_pending : pt_cycle,
                                  cycle);

        if (index == PT_HELPER_INDEX) {
            pt_process_close_listeners(cycle, NULL);
            pt_helper_run(cycle, slot, pt_ready_pipe[1]);
        }

        pt_worker_run(cycle, slot, pt_ready_pipe[1]);
    }

    pt_procs[slot].pid = pid;
    pt_procs[slot].slot = slot;
    pt_procs[slot].index = index;
    pt_procs[slot].generation = cycle->generation;
    pt_procs[slot].cycle = cycle;
    pt_procs[slot].ready = 0;
    pt_procs[slot].exiting = 0;

    if (pt_core_shm) {
        pt_core_shm->procs[slot].pid = pid;
        pt_core_shm->procs[slot].generation = (uint32_t) cycle->generation;
        pt_core_shm->procs[slot].started_ms = pt_current_epoch_msec;
        pt_core_shm->procs[slot].helper = (index == PT_HELPER_INDEX);
    }

    pt_log_error(PT_LOG_INFO, NULL, 0, "%s %d started (generation %lu)",
                 index == PT_HELPER_INDEX ? "helper" : "worker", (int) pid,
                 (unsigned long) cycle->generation);

    return PT_OK;
}


static void
pt_master_signal_generation(uint64_t gen, int signo)
{
    pt_uint_t  i;

    for (i = 0; i < PT_MAX_PROCESSES; i++) {
        if (pt_procs[i].pid && pt_procs[i].generation == gen) {
            if (signo == SIGQUIT || signo == SIGTERM || signo == SIGKILL) {
                pt_procs[i].exiting = 1;
            }
            (void) kill(pt_procs[i].pid, signo);
        }
    }
}


static void
pt_master_signal_all(int signo)
{
    pt_uint_t  i;

    for (i = 0; i < PT_MAX_PROCESSES; i++) {
        if (pt_procs[i].pid) {
            if (signo == SIGQUIT || signo == SIGTERM || signo == SIGKILL) {
                pt_procs[i].exiting = 1;
            }
            (void) kill(pt_procs[i].pid, signo);
        }
    }
}


/* Live processes of a generation (0: all), optionally only READY ones. */
static pt_uint_t
pt_master_count(uint64_t gen, int ready_only)
{
    pt_uint_t  i, n;

    for (i = 0, n = 0; i < PT_MAX_PROCESSES; i++) {
        if (pt_procs[i].pid
            && (gen == 0 || pt_procs[i].generation == gen)
            && (!ready_only || pt_procs[i].ready))
        {
            n++;
        }
    }

    return n;
}


static void
pt_master_schedule_respawn(pt_uint_t index)
{
    pt_uint_t      k, recent;
    pt_msec_t      delay;
    pt_respawn_t  *rs;

    if (index >= pt_nelems(pt_respawns)) {
        return;
    }

    rs = &pt_respawns[index];
    rs->deaths[rs->next] = pt_current_msec;
    rs->next = (rs->next + 1) % PT_CRASH_LIMIT;

    for (k = 0, recent = 0; k < PT_CRASH_LIMIT; k++) {
        if (rs->deaths[k] && pt_current_msec - rs->deaths[k]
                             < PT_CRASH_WINDOW_MS)
        {
            recent++;
        }
    }

    /* A worker that keeps dying is respawned at most once a second, so
     * a crash loop does not eat the machine. */
    delay = (recent >= PT_CRASH_LIMIT) ? 1000 : 0;

    if (delay) {
        pt_log_error(PT_LOG_ALERT, NULL, 0,
                     "worker %lu died %lu times in %d s, respawning it in %lu ms",
                     (unsigned long) index,
                     (unsigned long) recent, PT_CRASH_WINDOW_MS / 1000,
                     (unsigned long) delay);
    }

    rs->pending = 1;
    rs->respawn_at = pt_current_msec + delay;
}


static void
pt_master_respawn_due(void)
{
    pt_uint_t  i, n;

    n = pt_core_workers(pt_cycle);

    for (i = 0; i < pt_nelems(pt_respawns); i++) {
        if (!pt_respawns[i].pending
            || pt_respawns[i].respawn_at > pt_current_msec)
        {
            continue;
        }

        pt_respawns[i].pending = 0;

        if ((i < n || (i == PT_HELPER_INDEX && pt_cycle->helper))
            && pt_master_spawn(pt_cycle, i) != PT_OK)
        {
            pt_master_schedule_respawn(i);
        }
    }
}


static void
pt_master_reap(void)
{
    int         status;
    pid_t       pid;
    pt_uint_t   i;
    pt_proc_t  *p;

    for ( ;; ) {
        pid = waitpid(-1, &status, WNOHANG);

        if (pid <= 0) {
            return;
        }

        for (i = 0; i < PT_MAX_PROCESSES; i++) {
            if (pt_procs[i].pid == pid) {
                break;
            }
        }

        if (i == PT_MAX_PROCESSES) {
            continue;
        }

        p = &pt_procs[i];

        if (WIFSIGNALED(status)) {
            pt_log_error(p->exiting ? PT_LOG_NOTICE : PT_LOG_ALERT, NULL, 0,
                         "worker %d exited on signal %d", (int) pid,
                         WTERMSIG(status));
        } else {
            pt_log_error((p->exiting && WEXITSTATUS(status) == 0)
                         ? PT_LOG_INFO : PT_LOG_ALERT, NULL, 0,
                         "worker %d exited with code %d", (int) pid,
                         WEXITSTATUS(status));
        }

        /* A lock the dead process held would stall every other worker.
         * p->cycle is alive: retired cycles wait for their last worker. */
        pt_shm_zones_unlock(p->cycle, pid);

        if (pt_core_shm) {
            __atomic_add_fetch(&pt_core_shm->requests_retired,
                               pt_core_shm->procs[p->slot].requests,
                               __ATOMIC_RELAXED);
            memset((void *) &pt_core_shm->procs[p->slot], 0,
                   sizeof(pt_proc_shm_t));
        }

        p->pid = 0;

        pt_master_free_retired(0);

        if (pt_pending && p->generation == pt_pending->generation
            && !p->exiting)
        {
            pt_master_rollback("a new worker exited during start");
            continue;
        }

        if (p->exiting || pt_quitting || pt_terminating
            || p->generation != pt_cycle->generation)
        {
            continue;
        }

        if (WIFEXITED(status) && WEXITSTATUS(status) == PT_EXIT_FATAL) {
            pt_log_error(PT_LOG_ALERT, NULL, 0,
                         "worker %d failed fatally, not respawning it",
                         (int) pid);
            continue;
        }

        pt_master_schedule_respawn(p->index);
    }
}


static void
pt_master_reload(const char *conf_file, const char *prefix)
{
    pt_cycle_t   *cycle;

    pt_log_error(PT_LOG_NOTICE, NULL, 0, "reloading configuration \"%s\"",
                 conf_file);

    cycle = pt_cycle_init(pt_cycle, conf_file, prefix, 0);

    if (cycle == NULL) {
        pt_log_error(PT_LOG_ERR, NULL, 0,
                     "reload failed, keeping generation %lu",
                     (unsigned long) pt_cycle->generation);
        if (pt_core_shm) {
            __atomic_add_fetch(&pt_core_shm->reloads_failed, 1,
                               __ATOMIC_RELAXED);
        }
        return;
    }

    pt_pending = cycle;
    pt_pending_deadline = pt_current_msec + PT_READY_TIMEOUT_MS;

    if (pt_master_spawn_generation(cycle) != PT_OK) {
        pt_master_rollback("cannot fork new workers");
    }
}


static void
pt_master_retire(pt_cycle_t *cycle)
{
    pt_uint_t  i;

    for (i = 0; i < pt_nelems(pt_retired); i++) {
        if (pt_retired[i] == NULL) {
            pt_retired[i] = cycle;
            pt_master_free_retired(0);
            return;
        }
    }

    /* Sixty-four generations still draining: let the oldest go now; its
     * workers only lose lock recovery. */
    pt_log_error(PT_LOG_WARN, NULL, 0, "too many generations draining at once");
    pt_cycle_free(pt_retired[0], pt_cycle);
    memmove(&pt_retired[0], &pt_retired[1],
            sizeof(pt_retired) - sizeof(pt_retired[0]));
    pt_retired[pt_nelems(pt_retired) - 1] = cycle;
}


/* Free retired cycles no process uses any more (all of them at exit). */
static void
pt_master_free_retired(int all)
{
    pt_uint_t  i, j;

    for (i = 0; i < pt_nelems(pt_retired); i++) {
        if (pt_retired[i] == NULL) {
            continue;
        }

        for (j = 0; !all && j < PT_MAX_PROCESSES; j++) {
            if (pt_procs[j].pid && pt_procs[j].cycle == pt_retired[i]) {
                break;
            }
        }

        if (all || j == PT_MAX_PROCESSES) {
            pt_cycle_free(pt_retired[i], pt_cycle);
            pt_retired[i] = NULL;
        }
    }
}


static void
pt_master_commit(void)
{
    pt_str_t      old_pid;
    pt_cycle_t   *old;

    old = pt_cycle;
    pt_cycle = pt_pending;
    pt_pending = NULL;
    pt_log_current = pt_cycle->log;

    /* Respawns scheduled for the old generation are moot now. */
    memset(pt_respawns, 0, sizeof(pt_respawns));

    pt_master_signal_generation(old->generation, SIGQUIT);

    old_pid = pt_pid_path;
    pt_pid_path = pt_core_conf(pt_cycle)->pid_file;

    if (old_pid.data && strcmp(old_pid.data, pt_pid_path.data) != 0) {
        (void) pt_pid_file_write(pt_pid_path.data);
        (void) unlink(old_pid.data);
    }

    /* Sockets the new config dropped close now (the old workers close
     * theirs as they drain); the rest of the old cycle waits for its
     * last worker. */
    pt_cycle_close_listeners(old, pt_cycle);
    pt_master_retire(old);

    if (pt_core_shm) {
        pt_core_shm->generation = pt_cycle->generation;
        pt_core_shm->loaded_at_ms = pt_cycle->loaded_at;
        __atomic_add_fetch(&pt_core_shm->reloads_ok, 1, __ATOMIC_RELAXED);
    }

    pt_log_error(PT_LOG_NOTICE, NULL, 0, "reload generation %lu ok",
                 (unsigned long) pt_cycle->generation);
}


static void
pt_master_rollback(const char *why)
{
    pt_cycle_t  *cycle;

    cycle = pt_pending;
    pt_pending = NULL;

    pt_master_signal_generation(cycle->generation, SIGKILL);

    pt_cycle_close_listeners(cycle, pt_cycle);
    pt_master_retire(cycle);

    pt_log_error(PT_LOG_ERR, NULL, 0,
                 "reload failed, keeping generation %lu: %s",
                 (unsigned long) pt_cycle->generation, why);

    if (pt_core_shm) {
        __atomic_add_fetch(&pt_core_shm->reloads_failed, 1,
                           __ATOMIC_RELAXED);
    }
}
