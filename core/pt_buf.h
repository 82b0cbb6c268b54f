/*
 * pt_buf.h: memory buffers and chains of them.
 *
 * A buffer describes bytes [pos, last) inside memory [start, end). Output
 * travels as a chain of buffers so that headers, chunk framing and body
 * bytes that live in different places go out in one writev() without being
 * copied together.
 */

#ifndef PT_BUF_H
#define PT_BUF_H

#include "pt_core.h"
#include "pt_palloc.h"


struct pt_buf_s {
    char       *pos;
    char       *last;
    char       *start;
    char       *end;
    void       *tag;            /* who owns the memory, for recycling  */
    unsigned    last_buf:1;     /* the last buffer of a body           */
    unsigned    flush:1;        /* send now, do not wait for more      */
};

struct pt_chain_s {
    pt_buf_t     *buf;
    pt_chain_t   *next;
};


#define pt_buf_size(b)    ((size_t) ((b)->last - (b)->pos))
#define pt_buf_free(b)    ((size_t) ((b)->end - (b)->last))
#define pt_buf_reset(b)   ((b)->pos = (b)->last = (b)->start)


/* Point b at size bytes of memory, empty. */
static inline void
pt_buf_init(pt_buf_t *b, char *mem, size_t size)
{
    b->start = mem;
    b->pos = mem;
    b->last = mem;
    b->end = mem + size;
}

/* A buffer with `size` bytes of memory from the pool. */
pt_buf_t *pt_buf_create(pt_pool_t *pool, size_t size);

/* Total bytes waiting in a chain. */
size_t pt_chain_size(pt_chain_t *cl);


/*
 * A per-process cache of equally sized memory blocks (header buffers, body
 * buffers), so that connections that come and go do not churn malloc and
 * an idle keep-alive connection holds no buffer at all.
 */
typedef struct {
    size_t      size;
    pt_uint_t   max_free;
    pt_uint_t   nfree;
    pt_uint_t   nused;
    void       *free;           /* singly linked through the blocks */
} pt_block_cache_t;

void pt_block_cache_init(pt_block_cache_t *bc, size_t size,
    pt_uint_t max_free);
void *pt_block_get(pt_block_cache_t *bc);
void pt_block_put(pt_block_cache_t *bc, void *block);
void pt_block_cache_drain(pt_block_cache_t *bc);


/*
 * Text that grows in a pool, for answers built piece by piece (/status,
 * /metrics). An allocation failure is sticky: every later append does
 * nothing and `failed` says the text is incomplete.
 */
typedef struct {
    pt_pool_t  *pool;
    char       *data;
    size_t      len;
    size_t      cap;
    unsigned    failed:1;
} pt_text_t;

/* PT_OK, or PT_ERROR (out of memory) with t->failed set. */
int pt_text_init(pt_text_t *t, pt_pool_t *pool, size_t cap);
/* Room for n more bytes (and a NUL) at data + len. */
int pt_text_reserve(pt_text_t *t, size_t n);
void pt_text_printf(pt_text_t *t, const char *fmt, ...) PT_PRINTF(2, 3);


#endif /* PT_BUF_H */
