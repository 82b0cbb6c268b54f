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


#define PT_MAX_PROCESSES      1024

/* Exit status of a worker that must not be respawned (bad setup). */
#define PT_EXIT_FATAL         2


/* One process's public counters, in the "core" zone, one cache line
 * each so workers never contend. */
typedef struct {
    volatile int32_t    pid;          /* 0: slot free                  */
    volatile uint32_t   generation;
    volatile uint64_t   connections;  /* client connections open       */
    volatile uint64_t   idle;         /* of those, between requests    */
    volatile uint64_t   requests;     /* requests finished             */
    volatile uint64_t   started_ms;   /* epoch ms                      */
    volatile uint32_t   helper;       /* the helper, not a worker      */
    char                pad[20];
} pt_proc_shm_t;

typedef struct {
    uint32_t            layout;       /* PT_CORE_SHM_LAYOUT            */
    uint32_t            pad;
    uint64_t            master_start_ms;
    volatile uint64_t   generation;
    volatile uint64_t   loaded_at_ms;
    volatile uint64_t   reloads_ok;
    volatile uint64_t   reloads_failed;
    volatile uint64_t   requests_retired; /* from processes now gone   */
    pt_proc_shm_t       procs[PT_MAX_PROCESSES];
} pt_core_shm_t;

#define PT_CORE_SHM_LAYOUT    0x50540002


/* Process-wide state. */
extern pt_core_shm_t  *pt_core_shm;    /* the "core" zone's root        */
extern pt_proc_shm_t  *pt_proc_self;   /* this worker's slot, or NULL    */
extern pid_t           pt_pid;
extern unsigned        pt_process_is_worker;

/* Requests finished across all processes, ever (since the zone began). */
uint64_t pt_core_requests_total(void);

/* Set up the core zone request (core module postconfig). */
int pt_core_shm_add(pt_conf_t *cf);

/* Run the master loop; returns the exit status. */
int pt_master_run(const char *conf_file, const char *prefix);

/* Become a worker of cycle in shm slot `slot`: never returns. */
void pt_worker_run(pt_cycle_t *cycle, pt_uint_t slot, int ready_fd)
    __attribute__((noreturn));

/* In a new worker: close the listening sockets of `other` that `own`
 * does not use. */
void pt_worker_close_listeners(pt_cycle_t *other, pt_cycle_t *own);

/* Become the helper process of cycle (see pt_module_t.init_helper). */
void pt_helper_run(pt_cycle_t *cycle, pt_uint_t slot, int ready_fd)
    __attribute__((noreturn));

/* Ask, in postconfig, for the helper process to run this generation. */
void pt_helper_request(pt_conf_t *cf);

/* What workers and the helper share: process state, the shm slot,
 * connection slots, the event loop and a signalfd whose handler is
 * on_signal; and the READY message to the master. */
int pt_process_child_init(pt_cycle_t *cycle, pt_uint_t slot,
    pt_uint_t nconns, pt_event_handler_pt on_signal);
void pt_process_ready(int ready_fd);

/* Drain in a worker: stop accepting, finish in-flight requests. */
extern unsigned  pt_worker_exiting;

/* The signals master and workers take through a signalfd (the master
 * adds SIGCHLD). */
void pt_process_signals(sigset_t *set);

/* Pid file helpers. */
int pt_pid_file_write(const char *path);
pid_t pt_pid_file_read(const char *path);


#endif /* PT_PROCESS_H */
