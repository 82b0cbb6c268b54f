/*
 * pt_http_chunked.h: streaming decoder for the chunked transfer coding
 * (RFC 9112 7.1).
 *
 * The decoder keeps its whole state in a small struct, so input can be fed
 * in pieces of any size, and it never copies: payload comes back as runs
 * pointing into the input. Chunk extensions are checked loosely and
 * skipped; trailer fields are checked strictly and discarded.
 */

#ifndef PT_HTTP_CHUNKED_H
#define PT_HTTP_CHUNKED_H

#include "pt_core.h"


/* Limit on the bytes of chunk extensions and trailer section together,
 * over the whole message. */
#define PT_HTTP_CHUNKED_MAX_EXTRA  8192

/* Largest chunk size accepted: 2^62, far above any real body, low enough
 * that sums of sizes never overflow 64 bits. */
#define PT_HTTP_CHUNKED_MAX_SIZE   ((uint64_t) 1 << 62)


typedef struct {
    unsigned   state;      /* where in the grammar the decoder is       */
    uint64_t   size;       /* bytes left in the current chunk            */
    size_t     extra;      /* bytes of extensions + trailers so far      */
    uint64_t   total;      /* payload bytes decoded so far               */
} pt_http_chunked_t;       /* zero it to start */


/* Decode from [*pos, end). Returns
 *   PT_OK     data->data/len point at a run of payload inside the input
 *             (len > 0), *pos is advanced past it;
 *   PT_AGAIN  all input consumed (*pos == end), more is needed;
 *   PT_DONE   the last chunk and its trailer section are consumed, *pos is
 *             just after them (pipelined bytes may follow); later calls
 *             return PT_DONE again and consume nothing;
 *   PT_ERROR  malformed: non-hex size, size over 2^62, missing CRLF after
 *             data, bare LF or CR, extensions+trailers over 8 KiB in
 *             total, invalid trailer field syntax; later calls return
 *             PT_ERROR again.
 * The results do not depend on how the input is split between calls. */
int pt_http_chunked_parse(pt_http_chunked_t *ch, const char **pos,
    const char *end, pt_str_t *data);


#endif /* PT_HTTP_CHUNKED_H */
