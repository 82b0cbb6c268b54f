/*
 * pt_cache.h: the cache module's shared types (internal).
 *
 * pt_cache_module.c   config, the PRECONTENT lookup, waiting on a
 *                     collapsed fetch
 * pt_cache_rfc.c      RFC 9111 rules: Cache-Control, Expires, freshness,
 *                     conditional requests
 * pt_cache_serve.c    a response sent from a stored entry
 * pt_cache_store_filter.c  storing a proxied response (header and body
 *                     filters)
 * pt_cache_fetch.c    revalidation and background refresh (upstream calls)
 * pt_cache_purge.c    POST /cache/purge on the admin listener
 * pt_cache_store.c    the shared store (pt_cache_store.h)
 */

#ifndef PT_CACHE_H
#define PT_CACHE_H

#include "pt_http.h"
#include "pt_upstream.h"
#include "pt_cache_store.h"


/* meta.flags */
#define PT_CACHE_F_VARY        0x0001   /* a vary record: head lists the
                                           response's Vary field names    */
#define PT_CACHE_F_NO_STALE    0x0002   /* must-revalidate/proxy-revalidate
                                           (or no-cache): never stale     */

/* X-Cache values. */
typedef enum {
    PT_CACHE_NOT = 0,       /* not decided: no X-Cache                    */
    PT_CACHE_HIT,
    PT_CACHE_MISS,
    PT_CACHE_EXPIRED,
    PT_CACHE_STALE,
    PT_CACHE_REVALIDATED,
    PT_CACHE_BYPASS
} pt_cache_result_e;

/* A route's `cache:`. */
typedef struct {
    pt_str_t             route;
    pt_template_t       *key;
    pt_array_t           vary;          /* pt_str_t, lower-case           */
    pt_msec_t            ttl;
    pt_msec_t            swr;           /* stale_while_revalidate         */
    pt_msec_t            sie;           /* stale_if_error                 */
    pt_msec_t            lock_timeout;
    size_t               max_object;
    uint64_t             statuses[10];  /* bit per status 100..739        */
    pt_yaml_node_t      *node;
} pt_cache_conf_t;

typedef struct {
    pt_cache_conf_t     *conf;          /* NULL: the route has no cache   */
} pt_cache_route_conf_t;

typedef struct {
    pt_shm_zone_t       *zone;
} pt_cache_main_conf_t;

/* A request's cache state (the module's request ctx). */
typedef enum {
    PT_CACHE_S_NONE = 0,
    PT_CACHE_S_WAIT,        /* polling a claim another request holds     */
    PT_CACHE_S_FETCH,       /* proxied; store the response (claim held)  */
    PT_CACHE_S_PASS,        /* proxied; do not store                     */
    PT_CACHE_S_CALL,        /* a revalidation call is out                */
    PT_CACHE_S_SERVE        /* answered from `node`                      */
} pt_cache_state_e;

typedef struct {
    pt_http_request_t   *r;
    pt_cache_conf_t     *conf;
    pt_cache_t          *cache;
    pt_cache_state_e     state;
    pt_cache_result_e    result;
    pt_str_t             key;           /* the key text                   */
    uint8_t              primary[PT_CACHE_HASH_LEN];  /* route, key, vary:
                                                         config fields   */
    uint8_t              hash[PT_CACHE_HASH_LEN];    /* the entry's (the
                                                        variant's)        */
    pt_cache_node_t     *claim;         /* claimed by this request        */
    pt_array_t          *names;         /* the response's Vary names      */
    pt_cache_node_t     *node;          /* referenced by this request     */
    pt_msec_t            wait_until;
    pt_event_t           timer;
    pt_cache_writer_t    writer;
    pt_cache_writer_t    vary_writer;
    pt_cache_chunk_t    *chunk;         /* serving: the next body bytes   */
    size_t               chunk_off;
    pt_upstream_call_t  *call;
    pt_str_t             body;          /* POST /cache/purge: read so far */
    unsigned             claim_ref:1;   /* claim holds its own reference
                                           (a placeholder)                */
    unsigned             writing:1;
    unsigned             vary_writing:1;
    unsigned             force:1;       /* the client asked to revalidate */
    unsigned             no_store:1;    /* the client said no-store       */
} pt_cache_ctx_t;

extern pt_module_t  pt_cache_module;


/* pt_cache_rfc.c */
typedef struct {
    int64_t    max_age;     /* seconds; -1: none                          */
    int64_t    s_maxage;
    int64_t    stale_while_revalidate;
    int64_t    stale_if_error;
    unsigned   no_store:1;
    unsigned   no_cache:1;
    unsigned   private_:1;
    unsigned   public_:1;
    unsigned   must_revalidate:1;
    unsigned   no_transform:1;
    unsigned   only_if_cached:1;
} pt_cache_control_t;

/* Every Cache-Control field of a list, as one. */
void pt_cache_control(pt_array_t *headers, pt_cache_control_t *cc);
/* An HTTP-date (RFC 9110 5.6.7, the three forms) in seconds since the
 * epoch; -1 when it is none. */
int64_t pt_cache_http_date(const pt_str_t *v);
/* Whether a stored response with these fields may be stored, and its
 * meta (times from now, in ms); 0: not storable. */
int pt_cache_freshness(pt_http_request_t *r, pt_cache_conf_t *conf,
    unsigned status, pt_array_t *headers, int64_t now,
    pt_cache_meta_t *meta);
/* 1 when the client's If-None-Match / If-Modified-Since hold for a
 * response with these fields, so that 304 answers it. */
int pt_cache_not_modified(pt_http_request_t *r, pt_array_t *headers);
/* Append name:value to a head blob (name\0value\0 pairs) or read one. */
size_t pt_cache_head_size(pt_array_t *headers);
char *pt_cache_head_write(pt_array_t *headers, char *p);
int pt_cache_head_read(pt_pool_t *pool, const char *head, size_t len,
    pt_array_t *out);
/* Fields not stored with a response (hop-by-hop, framing, ours). */
int pt_cache_field_skipped(const pt_str_t *name);

/* pt_cache_module.c */
/* Look the request's entry up (through a vary record to its variant):
 * what pt_cache_lookup() returns; ctx->node or ctx->claim is set. */
int pt_cache_find_entry(pt_cache_ctx_t *ctx, int claim);
void pt_cache_hash(const uint8_t *base, pt_http_request_t *r,
    const pt_str_t *route, const pt_str_t *key, const pt_str_t *names,
    size_t nnames, uint8_t *out);
void pt_cache_drop_claim(pt_cache_ctx_t *ctx);

/* pt_cache_serve.c: answer r from ctx->node with ctx->result. */
int pt_cache_serve(pt_http_request_t *r);

/* pt_cache_store_filter.c */
int pt_cache_store_filters(pt_conf_t *cf);
/* Store a whole response held in memory (a call's answer) under
 * ctx->hash, with Vary as the response says; PT_OK or PT_DECLINED (not
 * storable or no room). The claim is spent either way. Without ctx->r
 * (a background refresh) it goes under ctx->hash as it is. */
int pt_cache_store_whole(pt_cache_ctx_t *ctx, pt_pool_t *pool,
    unsigned status, pt_array_t *headers, const pt_str_t *body);

/* pt_cache_fetch.c */
/* Revalidate (or refetch) the stale entry ctx->node that ctx claimed,
 * while r waits: PT_AGAIN, or PT_DECLINED (go to the upstream as a
 * miss). */
int pt_cache_revalidate(pt_cache_ctx_t *ctx);
/* The same in the background, for stale-while-revalidate: r is served
 * the stale copy at once; the claim is the refresh's. */
void pt_cache_refresh_background(pt_cache_ctx_t *ctx);
/* Stop this worker's background refreshes (it exits). */
void pt_cache_jobs_cancel(void);

/* pt_cache_purge.c */
int pt_cache_purge_init(pt_conf_t *cf);

#endif /* PT_CACHE_H */
