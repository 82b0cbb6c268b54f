/*
 * pt_worker.c: a worker process: the event loop that serves requests.
 *
 * QUIT makes it drain: stop accepting, close idle connections, let
 * requests in flight finish (answered with Connection: close), and exit
 * when no client connection is left or graceful_timeout has passed.
 * TERM makes it exit at once.
 */

#include <signal.h>
#include <sys/signalfd.h>

#include "pt_process.h"
#include "pt_connection.h"
#include "pt_http.h"
#include "pt_upstream.h"
#include "pt_random.h"
#include "pt_time.h"


pt_core_shm_t  *pt_core_shm;
pt_proc_shm_t  *pt_proc_self;
pid_t           pt_pid;
unsigned        pt_process_is_worker;
unsigned        pt_worker_exiting;

static unsigned         pt_worker_terminate;
static pt_connection_t *pt_signal_conn;
static pt_event_t       pt_drain_timer;
static pt_event_t       pt_stats_timer;


static void
pt_worker_drain_timeout(pt_event_t *ev)
{
    pt_log_error(PT_LOG_WARN, NULL, 0, "graceful_timeout passed with %lu "
                 "connections open, closing them",
                 (unsigned long) pt_connections_active);
    pt_worker_terminate = 1;
}


static void
pt_worker_start_drain(void)
{
    if (pt_worker_exiting) {
        return;
    }

    pt_worker_exiting = 1;
    pt_accept_close();
    pt_close_idle_connections();
    pt_upstream_close_idle(pt_cycle);

    pt_drain_timer.handler = pt_worker_drain_timeout;
    pt_timer_add(&pt_drain_timer, pt_http_graceful_timeout(pt_cycle));
}


static void
pt_worker_signal(pt_event_t *ev)
{
    pt_connection_t          *c;
    struct signalfd_siginfo   si;

    c = ev->data;

    while (read(c->fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
        switch (si.ssi_signo) {

        case SIGQUIT:
        case SIGWINCH:
            pt_worker_start_drain();
            break;

        case SIGTERM:
        case SIGINT:
            pt_worker_terminate = 1;
            break;

        case SIGUSR1:
            pt_cycle_reopen_files(pt_cycle);
            break;

        default:
            break;
        }
    }
}


static void
pt_worker_stats(pt_event_t *ev)
{
    if (pt_proc_self) {
        pt_proc_self->connections = pt_connections_active;
        pt_proc_self->idle = pt_connections_idle;
    }

    pt_timer_add(ev, 250);
}


void
pt_process_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
    sigaddset(set, SIGWINCH);
}


static int
pt_process_setup_signals(pt_event_handler_pt handler)
{
    int       fd;
    sigset_t  set;

    pt_process_signals(&set);

    /* The mask is inherited from the master; the signalfd is ours. */
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        pt_log_error(PT_LOG_EMERG, NULL, errno, "signalfd() failed");
        return PT_ERROR;
    }

    pt_signal_conn = pt_get_connection(fd);
    if (pt_signal_conn == NULL) {
        close(fd);
        return PT_ERROR;
    }

    pt_signal_conn->read->handler = handler;

    return pt_event_add_fd(pt_signal_conn);
}


int
pt_process_child_init(pt_cycle_t *cycle, pt_uint_t slot, pt_uint_t nconns,
    pt_event_handler_pt on_signal)
{
    sigset_t  chld;

    pt_pid = getpid();
    pt_cycle = cycle;
    pt_log_current = cycle->log;

    pt_shmtx_set_pid(pt_pid);
    pt_random_seed();

    /* Children's deaths are the master's business. */
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);

    if (pt_core_shm) {
        pt_proc_self = &pt_core_shm->procs[slot];
        pt_proc_self->pid = pt_pid;
        pt_proc_self->generation = (uint32_t) cycle->generation;
    }

    if (pt_connections_init(nconns) != PT_OK
        || pt_event_init(512) != PT_OK
        || pt_process_setup_signals(on_signal) != PT_OK)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


void
pt_process_ready(int ready_fd)
{
    pid_t    pid;
    ssize_t  n;

    pid = pt_pid;

    do {
        n = write(ready_fd, &pid, sizeof(pid));
    } while (n < 0 && errno == EINTR);

    close(ready_fd);
}


void
pt_worker_run(pt_cycle_t *cycle, pt_uint_t slot, int ready_fd)
{
    pt_uint_t        m;
    pt_listening_t  *ls;

    pt_process_is_worker = 1;
    pt_connections_max = pt_http_max_connections(cycle);

    /* Client connections, as many upstream ones, and a few for listeners
     * and the signalfd. */
    if (pt_process_child_init(cycle, slot, 2 * pt_connections_max + 64,
                              pt_worker_signal) != PT_OK)
    {
        exit(PT_EXIT_FATAL);
    }

    for (m = 0; pt_modules[m]; m++) {
        if (pt_modules[m]->init_worker
            && pt_modules[m]->init_worker(cycle) != PT_OK)
        {
            pt_log_error(PT_LOG_EMERG, NULL, 0, "module \"%s\" failed to "
                         "start in the worker", pt_modules[m]->name);
            exit(PT_EXIT_FATAL);
        }
    }

    ls = cycle->listening.elts;

    if (pt_listening_attach(ls, cycle->listening.nelts) != PT_OK) {
        exit(PT_EXIT_FATAL);
    }

    pt_stats_timer.handler = pt_worker_stats;
    pt_stats_timer.cancelable = 1;
    pt_timer_add(&pt_stats_timer, 250);

    pt_process_ready(ready_fd);

    for ( ;; ) {
        pt_process_events_and_timers();

        if (pt_worker_terminate) {
            break;
        }

        if (pt_worker_exiting && pt_connections_active == 0) {
            break;
        }
    }

    for (m = 0; pt_modules[m]; m++) {
        if (pt_modules[m]->exit_worker) {
            pt_modules[m]->exit_worker(cycle);
        }
    }

    if (pt_proc_self) {
        pt_proc_self->connections = 0;
        pt_proc_self->idle = 0;
    }

    exit(0);
}


void
pt_worker_close_listeners(pt_cycle_t *other, pt_cycle_t *own)
{
    size_t           i;
    pt_listening_t  *ls;

    if (other == NULL || other == own) {
        return;
    }

    ls = other->listening.elts;

    for (i = 0; i < other->listening.nelts; i++) {
        if (ls[i].fd != -1 && pt_cycle_find_listener(own, &ls[i]) == NULL) {
            close(ls[i].fd);
        }
    }
}


uint64_t
pt_core_requests_total(void)
{
    uint64_t   n;
    pt_uint_t  i;

    if (pt_core_shm == NULL) {
        return 0;
    }

    n = pt_core_shm->requests_retired;

    for (i = 0; i < PT_MAX_PROCESSES; i++) {
        if (pt_core_shm->procs[i].pid) {
            n += pt_core_shm->procs[i].requests;
        }
    }

    return n;
}
