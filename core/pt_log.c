/*
 * pt_log.c: the error log (see pt_log.h).
 */

#include <fcntl.h>

#include "pt_log.h"
#include "pt_time.h"


static pt_log_t  pt_log_stderr = { -1, PT_LOG_NOTICE, NULL };

pt_log_t  *pt_log_current = &pt_log_stderr;

static const char  *pt_log_levels[] = {
    "", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"
};


void
pt_log_error(int level, pt_log_t *log, int err, const char *fmt, ...)
{
    va_list  args;

    if (log == NULL) {
        log = pt_log_current;
    }

    if (level > log->level) {
        return;
    }

    va_start(args, fmt);
    pt_log_verror(level, log, err, fmt, args);
    va_end(args);
}


void
pt_log_verror(int level, pt_log_t *log, int err, const char *fmt,
    va_list args)
{
    int      n, fd;
    char     line[PT_LOG_MAX_LINE];
    size_t   len, cap;
    ssize_t  w;

    if (log == NULL) {
        log = pt_log_current;
    }

    if (pt_cached_log_time[0] == '\0') {
        pt_time_update();
    }

    /* Leave room for the newline. */
    cap = sizeof(line) - 1;

    n = snprintf(line, cap, "%s [%s] %d: ", pt_cached_log_time,
                 pt_log_levels[level < 0 || level > PT_LOG_DEBUG ? 0 : level],
                 (int) getpid());
    len = (n > 0) ? pt_min((size_t) n, cap) : 0;

    n = vsnprintf(line + len, cap - len, fmt, args);
    if (n > 0) {
        len += pt_min((size_t) n, cap - len - 1);
    }

    if (err && len < cap) {
        n = snprintf(line + len, cap - len, ": %s (%d)", strerror(err), err);
        if (n > 0) {
            len += pt_min((size_t) n, cap - len - 1);
        }
    }

    line[len++] = '\n';

    fd = (log->fd >= 0) ? log->fd : STDERR_FILENO;

    do {
        w = write(fd, line, len);
    } while (w < 0 && errno == EINTR);

    /* A log that cannot be written has nowhere to report itself. */
    (void) w;
}


pt_log_t *
pt_log_default(void)
{
    return &pt_log_stderr;
}


int
pt_log_level_parse(const char *name, size_t len)
{
    int  i;

    if (len == 4 && strncmp(name, "warn", 4) == 0) {
        return PT_LOG_WARN;
    }

    for (i = PT_LOG_EMERG; i <= PT_LOG_DEBUG; i++) {
        if (strlen(pt_log_levels[i]) == len
            && strncmp(pt_log_levels[i], name, len) == 0)
        {
            return i;
        }
    }

    return -1;
}


int
pt_log_open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}


int
pt_log_reopen(pt_log_t *log)
{
    int  fd;

    if (log->path == NULL) {
        return PT_OK;
    }

    fd = pt_log_open_file(log->path);
    if (fd < 0) {
        pt_log_error(PT_LOG_ALERT, log, errno, "cannot reopen \"%s\"",
                     log->path);
        return PT_ERROR;
    }

    /* Keep the descriptor number: other structures may hold it. */
    if (log->fd >= 0) {
        (void) dup3(fd, log->fd, O_CLOEXEC);
        close(fd);
        return PT_OK;
    }

    log->fd = fd;

    return PT_OK;
}
