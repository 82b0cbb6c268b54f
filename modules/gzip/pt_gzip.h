/*
 * pt_gzip.h: the gzip module's shared types (internal).
 *
 * pt_gzip_module.c owns the route key `compress:` and the header filter
 * that decides, per response, whether to compress; pt_gzip_filter.c is
 * the deflate body filter that does it.
 */

#ifndef PT_GZIP_H
#define PT_GZIP_H

#include <zlib.h>

#include "pt_http.h"


/* One entry of `types:`, lower-cased: an exact type, or with prefix set
 * the "text/" of a "text/" wildcard entry (the empty string for the
 * any-type one). */
typedef struct {
    pt_str_t             type;
    unsigned             prefix:1;
} pt_gzip_type_t;

/* A route's `compress:`; NULL (no config) or `on` clear: off. */
typedef struct {
    pt_gzip_type_t      *types;
    size_t               ntypes;
    size_t               min_size;
    int                  level;        /* 1..9 */
    unsigned             on:1;
} pt_gzip_conf_t;

/* One of the filter's output buffers. */
typedef struct pt_gzip_block_s  pt_gzip_block_t;

struct pt_gzip_block_s {
    pt_gzip_block_t     *next;
    char                *data;         /* PT_GZIP_BLOCK bytes            */
};

/* Per-request state, made by the header filter when it compresses. */
typedef struct {
    z_stream             zs;
    int                  level;
    int                  wbits;
    int                  memlevel;
    pt_gzip_block_t     *cur;          /* being filled, not yet passed on */
    pt_gzip_block_t     *sent;         /* passed on in earlier calls      */
    pt_gzip_block_t     *free;         /* ready to fill                   */
    pt_uint_t            nfree;
    unsigned             active:1;     /* this response is compressed    */
    unsigned             zinit:1;      /* deflateInit2 done               */
    unsigned             done:1;       /* the last buffer went out        */
} pt_gzip_ctx_t;


/* Output buffers: the size of each, and how many idle ones a request
 * keeps for the next call (more are given back to the pool). */
#define PT_GZIP_BLOCK        (32 * 1024)
#define PT_GZIP_SPARE        2


extern pt_module_t  pt_gzip_module;

/* The body filter (pt_gzip_filter.c), registered by the module. */
int pt_gzip_body_filter(pt_http_request_t *r, pt_chain_t **chain);

/* Release zlib's memory early, once the stream is over or abandoned. */
void pt_gzip_end(pt_gzip_ctx_t *ctx);


#endif /* PT_GZIP_H */
