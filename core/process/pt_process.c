/*
 * pt_process.c: what the master, the workers and the helper share: the
 * signals they take through a signalfd, a child's set-up after fork
 * (its shm slot, connection slots, event loop), the READY message, and
 * the pid file.
 */

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>

#include "pt_process.h"
#include "pt_core_module.h"
#include "pt_connection.h"
#include "pt_random.h"
#include "pt_string.h"


pid_t  pt_pid;

static pt_connection_t  *pt_signal_conn;


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
pt_process_close_listeners(pt_cycle_t *other, pt_cycle_t *own)
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


int
pt_pid_file_write(const char *path)
{
    int      fd;
    char     buf[32];
    ssize_t  n;
    size_t   len;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        pt_log_error(PT_LOG_EMERG, NULL, errno, "cannot open pid file \"%s\"",
                     path);
        return PT_ERROR;
    }

    len = (size_t) snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
    n = write(fd, buf, len);
    close(fd);

    return n == (ssize_t) len ? PT_OK : PT_ERROR;
}


pid_t
pt_pid_file_read(const char *path)
{
    int      fd;
    char     buf[32];
    ssize_t  n;
    int64_t  pid;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }

    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);

    if (n <= 0) {
        return -1;
    }

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) {
        n--;
    }

    pid = pt_atoi(buf, (size_t) n, INT32_MAX);

    return pid > 0 ? (pid_t) pid : -1;
}
