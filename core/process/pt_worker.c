/*
 * pt_worker.c: a worker process: the event loop that serves requests.
 *
 * QUIT makes it drain: stop accepting, close idle connections, let
 * requests in flight finish (answered with Connection: close), and exit
 * when no client connection is left or graceful_timeout has passed (open
 * tunnels are then closed and logged first).
 * TERM makes it exit at once.
 */

#include <signal.h>
#include <sys/signalfd.h>

#include "pt_process.h"
#include "pt_core_module.h"
#include "pt_connection.h"
#include "pt_tunnel.h"


static unsigned         pt_worker_terminate;
static pt_event_t       pt_drain_timer;
static pt_event_t       pt_stats_timer;


static void
pt_worker_drain_timeout(pt_event_t *ev)
{
    pt_log_error(PT_LOG_WARN, NULL, 0,
                 "graceful_timeout passed with %lu connections open, closing them",
                 (unsigned long) pt_connections_active);

    /* Tunnels (WebSocket) end through their owners, so each is logged
     * like any finished request before the worker exits. */
    pt_tunnel_close_all();

    pt_worker_terminate = 1;
}


static void
pt_worker_start_drain(void)
{
    if (pt_exiting) {
        return;
    }

    /* Idle connections, client and upstream alike, sit on the reusable
     * list: closing them is all a drain needs to know about them. */
    pt_exiting = 1;
    pt_accept_close();
    pt_close_idle_connections(0);

    pt_drain_timer.handler = pt_worker_drain_timeout;
    pt_timer_add(&pt_drain_timer, pt_cycle->graceful_timeout);
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
pt_worker_run(pt_cycle_t *cycle, pt_uint_t slot, int ready_fd)
{
    pt_uint_t        m;
    pt_listening_t  *ls;

    pt_connections_max = cycle->max_connections;

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
            pt_log_error(PT_LOG_EMERG, NULL, 0,
                         "module \"%s\" failed to start in the worker",
                         pt_modules[m]->name);
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

        if (pt_exiting && pt_connections_active == 0) {
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
