/*
 * pt_metrics.h: the metrics module's own parts: the "metrics" zone of
 * counters and histograms (pt_metrics_shm.c) and the Prometheus text
 * exposition (pt_metrics_text.c).
 */

#ifndef PT_METRICS_H
#define PT_METRICS_H

#include "pt_http.h"


/* What a slot counts. */
typedef enum {
    PT_METRICS_REQUESTS = 1,     /* route, method, status: v[0]           */
    PT_METRICS_ROUTE_DURATION,   /* route: histogram                      */
    PT_METRICS_UPSTREAM_DURATION,/* upstream: histogram                   */
    PT_METRICS_REJECTED,         /* route: v[0]                           */
    PT_METRICS_CACHE             /* route, result (in method): v[0]       */
} pt_metrics_kind_e;

/* Histogram buckets (upper bounds in microseconds), then +Inf. */
#define PT_METRICS_NBUCKETS    12    /* 11 bounds and +Inf                */
#define PT_METRICS_SUM         12    /* v[]: microseconds, summed         */
#define PT_METRICS_NVALUES     13    /* the count is the buckets' sum   */

#define PT_METRICS_NAME_MAX    128   /* a route name's longest            */
#define PT_METRICS_LABEL_MAX   16    /* method or cache result, with NUL  */

extern const uint64_t  pt_metrics_bounds_us[PT_METRICS_NBUCKETS - 1];
extern const char     *pt_metrics_bounds_text[PT_METRICS_NBUCKETS];

/* One series (or one histogram's series), in the zone. */
typedef struct {
    volatile uint64_t    fp;           /* 0: free                       */
    volatile uint32_t    ready;        /* labels written: readable      */
    uint16_t             status;
    uint8_t              kind;
    uint8_t              name_len;
    char                 label[PT_METRICS_LABEL_MAX];
    char                 name[PT_METRICS_NAME_MAX];
    volatile uint64_t    v[PT_METRICS_NVALUES];
} pt_metrics_slot_t;

typedef struct {
    uint32_t             layout;
    uint64_t             seed;
    uint64_t             nslots;       /* a power of two                */
    volatile uint64_t    dropped;      /* updates that found no slot    */
    volatile uint64_t    dropped_logged;   /* epoch s of the last line  */
    pt_metrics_slot_t    slots[];
} pt_metrics_root_t;


int pt_metrics_zone_init(pt_shm_zone_t *zone, void *old_data);

/* The slot of a series, claimed if need be; NULL when the table is full
 * (counted in root->dropped, logged at most once a minute). */
pt_metrics_slot_t *pt_metrics_slot(pt_metrics_root_t *root,
    pt_metrics_kind_e kind, const pt_str_t *name, const char *label,
    unsigned status);

/* Count one observation of us microseconds into a histogram slot. */
void pt_metrics_observe(pt_metrics_slot_t *s, uint64_t us);

/* Write the label value s escaped for the text format (\\, \" and \n)
 * to dst, which must hold pt_metrics_escape(NULL, s, len) bytes;
 * returns the escaped length. */
size_t pt_metrics_escape(char *dst, const char *s, size_t len);

/* The whole exposition for the running generation, in r's pool; NULL
 * when out of memory. */
char *pt_metrics_text(pt_http_request_t *r, pt_metrics_root_t *root,
    size_t *len);


#endif /* PT_METRICS_H */
