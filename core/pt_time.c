/*
 * pt_time.c: the cached clock (see pt_time.h).
 */

#include <time.h>

#include "pt_time.h"


volatile pt_msec_t  pt_current_msec;
volatile pt_msec_t  pt_current_epoch_msec;

char  pt_cached_log_time[64];
char  pt_cached_http_time[64];
char  pt_cached_iso8601_time[64];
char  pt_cached_clf_time[64];

static time_t  pt_cached_sec = -1;


pt_msec_t
pt_monotonic_msec(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (pt_msec_t) ts.tv_sec * 1000 + (pt_msec_t) ts.tv_nsec / 1000000;
}


uint64_t
pt_monotonic_usec(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


void
pt_time_update(void)
{
    struct tm        tm, gmt;
    struct timespec  ts;

    pt_current_msec = pt_monotonic_msec();

    clock_gettime(CLOCK_REALTIME, &ts);
    pt_current_epoch_msec = (pt_msec_t) ts.tv_sec * 1000
                            + (pt_msec_t) ts.tv_nsec / 1000000;

    gmtime_r(&ts.tv_sec, &gmt);

    /* The ISO form carries milliseconds, so it is refreshed every call. */
    snprintf(pt_cached_iso8601_time, sizeof(pt_cached_iso8601_time),
             "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             gmt.tm_year + 1900, gmt.tm_mon + 1, gmt.tm_mday,
             gmt.tm_hour, gmt.tm_min, gmt.tm_sec,
             (int) (ts.tv_nsec / 1000000));

    if (ts.tv_sec == pt_cached_sec) {
        return;
    }

    pt_cached_sec = ts.tv_sec;

    localtime_r(&ts.tv_sec, &tm);
    snprintf(pt_cached_log_time, sizeof(pt_cached_log_time),
             "%04d/%02d/%02d %02d:%02d:%02d",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);

    strftime(pt_cached_http_time, sizeof(pt_cached_http_time),
             "%a, %d %b %Y %H:%M:%S GMT", &gmt);
    strftime(pt_cached_clf_time, sizeof(pt_cached_clf_time),
             "%d/%b/%Y:%H:%M:%S %z", &tm);
}
