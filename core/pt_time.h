/*
 * pt_time.h: the cached clock.
 *
 * Reading the clock is cheap but not free, and many timestamps per request
 * would disagree with each other. The event loop calls pt_time_update() once
 * per iteration; everything else reads the cached values.
 */

#ifndef PT_TIME_H
#define PT_TIME_H

#include "pt_core.h"


extern volatile pt_msec_t  pt_current_msec;   /* monotonic, ms          */
extern volatile pt_msec_t  pt_current_epoch_msec;  /* wall clock, ms    */

/* Text forms of the wall clock, refreshed once per second at most. */
extern char  pt_cached_log_time[64];
extern char  pt_cached_http_time[64];
extern char  pt_cached_iso8601_time[64];
extern char  pt_cached_clf_time[64];     /* 28/Nov/2026:02:24:20 +0000 */

void pt_time_update(void);

/* Monotonic ms read directly (not cached), for tight measurements. */
pt_msec_t pt_monotonic_msec(void);

/* Monotonic microseconds, for durations logged with sub-ms precision. */
uint64_t pt_monotonic_usec(void);


#endif /* PT_TIME_H */
