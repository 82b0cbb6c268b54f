/*
 * pt_log_writer.c: the access log's writer thread (one per worker).
 *
 * The ring: PT_LOG_CHUNKS chunks of `buffer` bytes (128k by default, so
 * 1 MiB a worker). The worker fills chunk[tail % N]; chunks head..tail-1
 * are sealed and belong to the thread until it has written them. The
 * mutex is held only to copy a line and to move head and tail, never
 * across a write(2). A chunk is sealed when the next line does not fit,
 * and every second by the worker's timer; sealing wakes the thread.
 *
 * Full ring: the line is dropped and counted; the worker logs the count
 * at most once a second. Nothing else ever waits on the disk.
 *
 * Reopen (USR1): the chunk being filled is marked and sealed; the thread,
 * after writing it to the old file, opens the path again and switches.
 * So every line queued before the signal is in the old file, every later
 * one in the new file, in order, none lost. The descriptor the thread
 * writes to is its own (a duplicate made at start, then what it opened)
 * and only the thread closes it: the cycle's descriptor, which the cycle
 * dup3()s over on reopen, is never written by the thread.
 *
 * The thread never logs (the error log is the worker's): it leaves errno
 * values and counts under the mutex, and the worker's timer reports them.
 */

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/uio.h>

#include "pt_core.h"
#include "pt_log.h"
#include "pt_log_writer.h"


/* How long a worker at exit waits for the thread to write what is left
 * (a disk that does not take it in that time loses it). */
#define PT_LOG_EXIT_WAIT  3


typedef struct {
    char           *data;
    size_t          len;
    size_t          lines;    /* lines ending in this chunk              */
    unsigned        reopen:1; /* after writing it, reopen the file       */
} pt_log_chunk_t;


typedef struct {
    pthread_mutex_t   mutex;
    pthread_cond_t    wake;
    pthread_t         thread;
    pt_log_chunk_t    chunk[PT_LOG_CHUNKS];
    size_t            cap;
    uint64_t          head;         /* next chunk the thread writes       */
    uint64_t          tail;         /* the chunk the worker fills         */
    unsigned          stop:1;
    unsigned          running:1;

    /* The thread's own. */
    int               fd;
    const char       *path;

    /* Left by the thread for the worker's report (under the mutex). */
    uint64_t          lost;         /* lines a failed write lost          */
    int               write_err;
    int               reopen_err;

    /* The worker's own. */
    uint64_t          dropped;      /* lines refused by a full ring       */
} pt_log_writer_t;


static pt_log_writer_t  pt_lw;


static void *pt_log_writer_thread(void *arg);


int
pt_log_writer_running(void)
{
    return pt_lw.running;
}


int
pt_log_writer_start(int fd, const char *path, size_t chunk)
{
    int        i, err;
    char      *mem;
    sigset_t   all, old;

    mem = malloc(PT_LOG_CHUNKS * chunk);
    if (mem == NULL) {
        return PT_ERROR;
    }

    for (i = 0; i < PT_LOG_CHUNKS; i++) {
        pt_lw.chunk[i].data = mem + (size_t) i * chunk;
    }

    pt_lw.cap = chunk;
    pt_lw.path = path;

    pt_lw.fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (pt_lw.fd < 0) {
        pt_log_error(PT_LOG_EMERG, NULL, errno,
                     "access log: dup of \"%s\" failed", path);
        return PT_ERROR;
    }

    if (pthread_mutex_init(&pt_lw.mutex, NULL) != 0
        || pthread_cond_init(&pt_lw.wake, NULL) != 0)
    {
        return PT_ERROR;
    }

    /* The worker takes its signals through a signalfd: the thread must
     * never be the one a signal is delivered to. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&pt_lw.thread, NULL, pt_log_writer_thread, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (err != 0) {
        pt_log_error(PT_LOG_EMERG, NULL, err,
                     "access log: cannot start the writer thread");
        return PT_ERROR;
    }

    pt_lw.running = 1;

    return PT_OK;
}


/* Under the mutex. The chunk being filled joins the sealed ones when the
 * next one is free for the worker: at most N - 1 sealed at any time. */
static int
pt_log_writer_seal(void)
{
    if (pt_lw.tail - pt_lw.head >= PT_LOG_CHUNKS - 1) {
        return PT_AGAIN;
    }

    pt_lw.tail++;
    pthread_cond_signal(&pt_lw.wake);

    return PT_OK;
}


void
pt_log_writer_append(const char *line, size_t len)
{
    size_t           seals;
    pt_log_chunk_t  *c;

    if (!pt_lw.running || len == 0) {
        return;
    }

    pthread_mutex_lock(&pt_lw.mutex);

    c = &pt_lw.chunk[pt_lw.tail % PT_LOG_CHUNKS];

    if (c->len + len > pt_lw.cap) {
        /* A line longer than a chunk spans several, sealed together so
         * the thread writes them in one writev(2): the line is never cut
         * by another worker's append. All or nothing. */
        seals = (c->len ? 1 : 0) + (len - 1) / pt_lw.cap;

        if (pt_lw.tail - pt_lw.head + seals > PT_LOG_CHUNKS - 1) {
            pt_lw.dropped++;
            pthread_mutex_unlock(&pt_lw.mutex);
            return;
        }

        if (c->len) {
            (void) pt_log_writer_seal();
            c = &pt_lw.chunk[pt_lw.tail % PT_LOG_CHUNKS];
        }

        while (len > pt_lw.cap) {
            memcpy(c->data, line, pt_lw.cap);
            c->len = pt_lw.cap;
            line += pt_lw.cap;
            len -= pt_lw.cap;
            (void) pt_log_writer_seal();
            c = &pt_lw.chunk[pt_lw.tail % PT_LOG_CHUNKS];
        }
    }

    memcpy(c->data + c->len, line, len);
    c->len += len;
    c->lines++;

    pthread_mutex_unlock(&pt_lw.mutex);
}


/* What the thread and the full ring left to say, in the worker. */
static void
pt_log_writer_report(void)
{
    int       werr, rerr;
    uint64_t  dropped, lost;

    pthread_mutex_lock(&pt_lw.mutex);

    dropped = pt_lw.dropped;
    pt_lw.dropped = 0;
    lost = pt_lw.lost;
    pt_lw.lost = 0;
    werr = pt_lw.write_err;
    pt_lw.write_err = 0;
    rerr = pt_lw.reopen_err;
    pt_lw.reopen_err = 0;

    pthread_mutex_unlock(&pt_lw.mutex);

    /* At most one line of each kind a second, however many requests. */
    if (dropped) {
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "access log: %llu lines dropped (the disk is slow or full)",
                     (unsigned long long) dropped);
    }

    if (werr) {
        pt_log_error(PT_LOG_ERR, NULL, werr,
                     "access log write to \"%s\" failed, %llu lines lost",
                     pt_lw.path, (unsigned long long) lost);
    }

    if (rerr) {
        pt_log_error(PT_LOG_ERR, NULL, rerr,
                     "access log: cannot reopen \"%s\", still writing to the old file",
                     pt_lw.path);
    }
}


void
pt_log_writer_tick(void)
{
    pt_log_chunk_t  *c;

    if (!pt_lw.running) {
        return;
    }

    pthread_mutex_lock(&pt_lw.mutex);

    c = &pt_lw.chunk[pt_lw.tail % PT_LOG_CHUNKS];
    if (c->len || c->reopen) {
        (void) pt_log_writer_seal();
    }

    pthread_mutex_unlock(&pt_lw.mutex);

    pt_log_writer_report();
}


void
pt_log_writer_reopen(void)
{
    if (!pt_lw.running) {
        return;
    }

    pthread_mutex_lock(&pt_lw.mutex);

    /* With the ring full the mark stays on the chunk being filled, and
     * the lines that join it go to the old file: late, never lost. */
    pt_lw.chunk[pt_lw.tail % PT_LOG_CHUNKS].reopen = 1;
    (void) pt_log_writer_seal();

    pthread_mutex_unlock(&pt_lw.mutex);
}


void
pt_log_writer_stop(void)
{
    int               err;
    uint64_t          left;
    pt_log_chunk_t   *c;
    struct timespec   ts;

    if (!pt_lw.running) {
        return;
    }

    pthread_mutex_lock(&pt_lw.mutex);

    /* No more appends: the chunk being filled may be sealed even into
     * the last free slot. */
    c = &pt_lw.chunk[pt_lw.tail % PT_LOG_CHUNKS];
    if (c->len || c->reopen) {
        pt_lw.tail++;
    }

    pt_lw.stop = 1;
    pthread_cond_signal(&pt_lw.wake);

    pthread_mutex_unlock(&pt_lw.mutex);

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += PT_LOG_EXIT_WAIT;

    err = pthread_timedjoin_np(pt_lw.thread, NULL, &ts);

    if (err != 0) {
        /* Blocked in write(2) on a stuck disk: the process exit ends
         * it; what it still held is lost, and said so. */
        pthread_mutex_lock(&pt_lw.mutex);
        for (left = 0; pt_lw.head < pt_lw.tail; pt_lw.head++) {
            left += pt_lw.chunk[pt_lw.head % PT_LOG_CHUNKS].lines;
        }
        pthread_mutex_unlock(&pt_lw.mutex);

        pt_log_error(PT_LOG_WARN, NULL, err,
                     "access log: the writer did not finish within %d s, up to %llu lines lost",
                     PT_LOG_EXIT_WAIT, (unsigned long long) left);
        pt_lw.running = 0;
        return;
    }

    pt_lw.running = 0;
    pt_log_writer_report();
}


/* Write n chunks from the head in one writev(2) (more if it comes back
 * short). 0, or the errno of a failure. */
static int
pt_log_writer_write(uint64_t head, size_t n)
{
    size_t         i, skip;
    ssize_t        w;
    struct iovec   iov[PT_LOG_CHUNKS], *v;

    for (i = 0; i < n; i++) {
        iov[i].iov_base = pt_lw.chunk[(head + i) % PT_LOG_CHUNKS].data;
        iov[i].iov_len = pt_lw.chunk[(head + i) % PT_LOG_CHUNKS].len;
    }

    v = iov;

    while (n > 0) {
        w = writev(pt_lw.fd, v, (int) n);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }

        if (w == 0) {
            return EIO;
        }

        for (skip = (size_t) w; n > 0 && skip >= v->iov_len; v++, n--) {
            skip -= v->iov_len;
        }

        if (n > 0) {
            v->iov_base = (char *) v->iov_base + skip;
            v->iov_len -= skip;
        }
    }

    return 0;
}


static void *
pt_log_writer_thread(void *arg)
{
    int        fd, err, rerr, reopen;
    size_t     n, i, lines;
    uint64_t   head;

    (void) arg;

    pthread_mutex_lock(&pt_lw.mutex);

    for ( ;; ) {
        while (pt_lw.head == pt_lw.tail && !pt_lw.stop) {
            pthread_cond_wait(&pt_lw.wake, &pt_lw.mutex);
        }

        if (pt_lw.head == pt_lw.tail) {
            break;
        }

        /* Every sealed chunk up to and including a reopen mark. */
        head = pt_lw.head;
        reopen = 0;
        lines = 0;

        for (n = 0; head + n < pt_lw.tail; /* void */ ) {
            lines += pt_lw.chunk[(head + n) % PT_LOG_CHUNKS].lines;
            reopen = pt_lw.chunk[(head + n) % PT_LOG_CHUNKS].reopen;
            n++;
            if (reopen) {
                break;
            }
        }

        pthread_mutex_unlock(&pt_lw.mutex);

        err = pt_log_writer_write(head, n);

        fd = -1;
        rerr = 0;
        if (reopen) {
            fd = pt_log_open_file(pt_lw.path);
            rerr = (fd < 0) ? errno : 0;
        }

        pthread_mutex_lock(&pt_lw.mutex);

        if (err) {
            pt_lw.write_err = err;
            pt_lw.lost += lines;
        }

        if (reopen) {
            if (fd >= 0) {
                close(pt_lw.fd);
                pt_lw.fd = fd;
            } else {
                pt_lw.reopen_err = rerr ? rerr : EIO;
            }
        }

        for (i = 0; i < n; i++) {
            pt_lw.chunk[(head + i) % PT_LOG_CHUNKS].len = 0;
            pt_lw.chunk[(head + i) % PT_LOG_CHUNKS].lines = 0;
            pt_lw.chunk[(head + i) % PT_LOG_CHUNKS].reopen = 0;
        }

        pt_lw.head = head + n;
    }

    pthread_mutex_unlock(&pt_lw.mutex);

    close(pt_lw.fd);
    pt_lw.fd = -1;

    return NULL;
}
