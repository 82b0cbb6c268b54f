/*
 * pt_log.h: the error log.
 *
 * One line per call, written with a single write(2) on an O_APPEND file so
 * that lines from several processes never interleave. The format is nginx's:
 *
 *     2026/11/28 02:24:20 [error] 1234: message: strerror (errno)
 *
 * Each process has one current log (pt_log_current), set by the cycle it
 * runs; code without a better log writes there.
 */

#ifndef PT_LOG_H
#define PT_LOG_H

#include "pt_core.h"


#define PT_LOG_STDERR   0
#define PT_LOG_EMERG    1
#define PT_LOG_ALERT    2
#define PT_LOG_CRIT     3
#define PT_LOG_ERR      4
#define PT_LOG_WARN     5
#define PT_LOG_NOTICE   6
#define PT_LOG_INFO     7
#define PT_LOG_DEBUG    8

#define PT_LOG_MAX_LINE 2048


struct pt_log_s {
    int     fd;          /* -1: nothing opened yet, write to stderr */
    int     level;       /* the most verbose level written          */
    char   *path;        /* NULL when writing to stderr             */
};


extern pt_log_t  *pt_log_current;

void pt_log_error(int level, pt_log_t *log, int err, const char *fmt, ...)
    PT_PRINTF(4, 5);

void pt_log_verror(int level, pt_log_t *log, int err, const char *fmt,
    va_list args);

/* The stderr log every process starts with. */
pt_log_t *pt_log_default(void);

/* Parse "debug|info|notice|warn|error|crit|alert|emerg"; -1 if unknown. */
int pt_log_level_parse(const char *name, size_t len);

/* Open (or create) path for appending, close-on-exec. -1 with errno. */
int pt_log_open_file(const char *path);

/* Reopen log->path and swap the descriptor; the old one is closed only
 * once the new one is open, so a failure keeps logging somewhere. */
int pt_log_reopen(pt_log_t *log);

static inline int
pt_log_enabled(pt_log_t *log, int level)
{
    return (log ? log : pt_log_current)->level >= level;
}


#endif /* PT_LOG_H */
