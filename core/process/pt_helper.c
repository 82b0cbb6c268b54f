/*
 * pt_helper.c: the helper process.
 *
 * One per generation, forked by the master next to the workers when a
 * module asked for it: work that must happen once for the whole gateway
 * (active health probes, DNS re-resolution, JWKS documents) runs here,
 * in the same event loop the workers use, and publishes its results in
 * shared memory. It does not accept connections; QUIT or TERM end it at
 * once.
 */

#include <signal.h>
#include <sys/signalfd.h>

#include "pt_process.h"
#include "pt_connection.h"


#define PT_HELPER_CONNECTIONS   4096

static unsigned  pt_helper_stop;


static void
pt_helper_signal(pt_event_t *ev)
{
    pt_connection_t          *c;
    struct signalfd_siginfo   si;

    c = ev->data;

    while (read(c->fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
        switch (si.ssi_signo) {

        case SIGQUIT:
        case SIGWINCH:
        case SIGTERM:
        case SIGINT:
            pt_helper_stop = 1;
            break;

        case SIGUSR1:
            pt_cycle_reopen_files(pt_cycle);
            break;

        default:
            break;
        }
    }
}


void
pt_helper_run(pt_cycle_t *cycle, pt_uint_t slot, int ready_fd)
{
    pt_uint_t  m;

    if (pt_process_child_init(cycle, slot, PT_HELPER_CONNECTIONS,
                              pt_helper_signal) != PT_OK)
    {
        exit(PT_EXIT_FATAL);
    }

    for (m = 0; pt_modules[m]; m++) {
        if (pt_modules[m]->init_helper
            && pt_modules[m]->init_helper(cycle) != PT_OK)
        {
            pt_log_error(PT_LOG_EMERG, NULL, 0,
                         "module \"%s\" failed to start in the helper",
                         pt_modules[m]->name);
            exit(PT_EXIT_FATAL);
        }
    }

    pt_log_error(PT_LOG_INFO, NULL, 0, "helper process started");

    pt_process_ready(ready_fd);

    while (!pt_helper_stop) {
        pt_process_events_and_timers();
    }

    for (m = 0; pt_modules[m]; m++) {
        if (pt_modules[m]->exit_helper) {
            pt_modules[m]->exit_helper(cycle);
        }
    }

    exit(0);
}
