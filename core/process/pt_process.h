/*
 * pt_process.h: the master and worker processes.
 *
 * The master reads the config, holds the listening sockets and the shared
 * zones, forks the workers and supervises them; it never serves a request.
 * Signals reach it through a signalfd, so its loop is one poll(2) over that
 * fd and the workers' READY pipe. Workers are told what to do with
 * signals, which they also read through a signalfd in their event loop.
 */

#ifndef PT_PROCESS_H
#define PT_PROCESS_H

#include <signal.h>

#include "pt_core.h"
#include "pt_cycle.h"
#include "pt_event.h"


/* Exit status of a worker that must not be respawned (bad setup). */
#define PT_EXIT_FATAL         2


extern pid_t  pt_pid;          /* this process                          */

/* Run the master loop; returns the exit status. */
int pt_master_run(const char *conf_file, const char *prefix);

/* Become a worker of cycle in shm slot `slot`: never returns. */
void pt_worker_run(pt_cycle_t *cycle, pt_uint_t slot, int ready_fd)
    __attribute__((noreturn));

/* In a new child: close the listening sockets of `other` that `own`
 * does not use. */
void pt_process_close_listeners(pt_cycle_t *other, pt_cycle_t *own);

/* Become the helper process of cycle (see pt_module_t.init_helper). */
void pt_helper_run(pt_cycle_t *cycle, pt_uint_t slot, int ready_fd)
    __attribute__((noreturn));

/* What workers and the helper share: process state, the shm slot,
 * connection slots, the event loop and a signalfd whose handler is
 * on_signal; and the READY message to the master. */
int pt_process_child_init(pt_cycle_t *cycle, pt_uint_t slot,
    pt_uint_t nconns, pt_event_handler_pt on_signal);
void pt_process_ready(int ready_fd);

/* The signals master and workers take through a signalfd (the master
 * adds SIGCHLD). */
void pt_process_signals(sigset_t *set);

/* Pid file helpers. */
int pt_pid_file_write(const char *path);
pid_t pt_pid_file_read(const char *path);


#endif /* PT_PROCESS_H */
