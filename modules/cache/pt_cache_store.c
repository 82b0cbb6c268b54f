/*
 * pt_cache_store.c: the response cache's shared store (see
 * pt_cache_store.h for the contract).
 *
 * The zone's root holds a power-of-two array of hash chains and one LRU
 * list of the complete entries, most recently used at the head.
 * Placeholders (claims without a response) sit in the chains only: they
 * are tiny and never evicted, so they stay out of the LRU walk.
 *
 * Everything is done under the slab pool's mutex, the one lock of the
 * zone. Critical sections only move pointers and call the _locked slab
 * functions; copying bytes into a node that is not linked yet happens
 * outside the lock, since nobody else can see it.
 *
 * A node is one allocation: the node, then route "\0" key text, then the
 * head blob. Body chunks are allocations of their own. node->bytes counts
 * what the slab was asked for on the node's behalf.
 */

#include "pt_cache_store.h"


#define PT_CACHE_LAYOUT        0x43414301

/* One bucket per this many bytes of zone: a small entry takes at least a
 * node and a slot or two, so chains stay short. */
#define PT_CACHE_BUCKET_BYTES  4096
#define PT_CACHE_MIN_BUCKETS   16

/* Body chunks are allocations of at most 64 KiB (a page run of the slab),
 * so that a large body never needs one long run of free pages. */
#define PT_CACHE_CHUNK_ALLOC   65536
#define PT_CACHE_CHUNK_DATA    (PT_CACHE_CHUNK_ALLOC                          \
                                - offsetof(pt_cache_chunk_t, data))


struct pt_cache_s {
    uint32_t           layout;       /* PT_CACHE_LAYOUT: reusable root  */
    pt_slab_pool_t    *slab;
    uint64_t           mask;         /* buckets - 1                     */
    pt_cache_node_t  **buckets;

    pt_cache_node_t   *lru_head;     /* most recently used              */
    pt_cache_node_t   *lru_tail;     /* evicted first                   */

    uint64_t           entries;      /* complete entries linked         */
    uint64_t           bytes;        /* their node->bytes               */
    uint64_t           evicted;
};


static pt_cache_node_t **pt_cache_bucket(pt_cache_t *c, const uint8_t *hash);
static pt_cache_node_t *pt_cache_find(pt_cache_t *c, const uint8_t *hash);
static void pt_cache_lru_remove(pt_cache_t *c, pt_cache_node_t *node);
static void pt_cache_lru_push(pt_cache_t *c, pt_cache_node_t *node);
static void pt_cache_link(pt_cache_t *c, pt_cache_node_t *node);
static void pt_cache_unlink(pt_cache_t *c, pt_cache_node_t *node);
static void pt_cache_drop(pt_cache_t *c, pt_cache_node_t *node);
static void pt_cache_free_node(pt_cache_t *c, pt_cache_node_t *node);
static void *pt_cache_alloc(pt_cache_t *c, size_t size);
static int pt_cache_claim_live(pt_cache_node_t *node, int64_t now,
    pt_msec_t lock_ms);
static size_t pt_cache_chunk_size(pt_cache_writer_t *w, size_t len);


int
pt_cache_zone_init(pt_shm_zone_t *zone, void *old_data)
{
    size_t       used, free, n;
    pt_cache_t  *c;

    c = old_data;

    if (c && c->layout == PT_CACHE_LAYOUT) {
        zone->slab->data = c;       /* the entries survive the reload */
        return PT_OK;
    }

    pt_slab_usage(zone->slab, &used, &free);

    for (n = PT_CACHE_MIN_BUCKETS;
         2 * n * PT_CACHE_BUCKET_BYTES <= used + free;
         n *= 2)
    {
        /* void */
    }

    c = pt_slab_calloc(zone->slab, sizeof(pt_cache_t));
    if (c == NULL) {
        return PT_ERROR;
    }

    c->buckets = pt_slab_calloc(zone->slab, n * sizeof(pt_cache_node_t *));
    if (c->buckets == NULL) {
        pt_slab_free(zone->slab, c);
        return PT_ERROR;
    }

    c->layout = PT_CACHE_LAYOUT;
    c->slab = zone->slab;
    c->mask = n - 1;
    zone->slab->data = c;

    return PT_OK;
}


int
pt_cache_lookup(pt_cache_t *c, const uint8_t *hash, int claim, int64_t now,
    pt_msec_t lock_ms, pt_cache_node_t **node)
{
    int               rc;
    pid_t             pid;
    pt_cache_node_t  *n, **b;

    pid = getpid();             /* a syscall: not under the lock */
    *node = NULL;

    pt_shmtx_lock(&c->slab->mutex);

    n = pt_cache_find(c, hash);

    if (n && n->complete) {
        n->refs++;
        pt_cache_lru_remove(c, n);
        pt_cache_lru_push(c, n);
        *node = n;
        rc = PT_CACHE_FOUND;

    } else if (n && pt_cache_claim_live(n, now, lock_ms)) {
        rc = PT_CACHE_BUSY;

    } else if (!claim) {
        rc = PT_CACHE_NONE;

    } else if (n) {
        /* The claimer is gone or too slow: the hash is ours now. */
        n->updater = pid;
        n->update_since = now;
        n->refs++;
        *node = n;
        rc = PT_CACHE_CLAIMED;

    } else {
        n = pt_cache_alloc(c, sizeof(pt_cache_node_t));

        if (n == NULL) {
            rc = PT_CACHE_NONE;

        } else {
            memset(n, 0, sizeof(pt_cache_node_t));
            memcpy(n->hash, hash, PT_CACHE_HASH_LEN);
            n->updater = pid;
            n->update_since = now;
            n->bytes = sizeof(pt_cache_node_t);
            n->linked = 1;
            n->refs = 1;            /* the claimer's */

            b = pt_cache_bucket(c, hash);
            n->hnext = *b;
            *b = n;

            *node = n;
            rc = PT_CACHE_CLAIMED;
        }
    }

    pt_shmtx_unlock(&c->slab->mutex);

    return rc;
}


int
pt_cache_claim(pt_cache_t *c, pt_cache_node_t *node, int64_t now,
    pt_msec_t lock_ms)
{
    int    rc;
    pid_t  pid;

    pid = getpid();

    pt_shmtx_lock(&c->slab->mutex);

    if (pt_cache_claim_live(node, now, lock_ms)) {
        rc = 0;

    } else {
        node->updater = pid;
        node->update_since = now;
        rc = 1;
    }

    pt_shmtx_unlock(&c->slab->mutex);

    return rc;
}


void
pt_cache_unclaim(pt_cache_t *c, pt_cache_node_t *node)
{
    pid_t  pid;

    pid = getpid();

    pt_shmtx_lock(&c->slab->mutex);

    /* The caller's reference keeps node valid even when its claim was
     * taken over and it was replaced since: then it is unlinked and its
     * claim no longer matters. */
    if (node->updater == pid) {
        if (node->complete || !node->linked) {
            node->updater = 0;

        } else {
            pt_cache_unlink(c, node);
            node->updater = 0;
        }
    }

    pt_shmtx_unlock(&c->slab->mutex);
}


void
pt_cache_refresh(pt_cache_t *c, pt_cache_node_t *node,
    const pt_cache_meta_t *meta)
{
    pt_shmtx_lock(&c->slab->mutex);

    /* Readers of other processes load these without the lock. */
    __atomic_store_n(&node->meta.stored, meta->stored, __ATOMIC_RELAXED);
    __atomic_store_n(&node->meta.fresh_until, meta->fresh_until,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&node->meta.swr_until, meta->swr_until,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&node->meta.sie_until, meta->sie_until,
                     __ATOMIC_RELAXED);
    node->updater = 0;

    pt_shmtx_unlock(&c->slab->mutex);
}


void
pt_cache_release(pt_cache_t *c, pt_cache_node_t *node)
{
    pt_shmtx_lock(&c->slab->mutex);

    if (node->refs > 0) {
        node->refs--;
    }

    if (node->refs == 0 && !node->linked) {
        pt_cache_free_node(c, node);
    }

    pt_shmtx_unlock(&c->slab->mutex);
}


int
pt_cache_write_begin(pt_cache_t *c, pt_cache_writer_t *w,
    const uint8_t *hash, const pt_str_t *route, const pt_str_t *key,
    const pt_cache_meta_t *meta, const char *head, size_t head_len,
    int64_t size_hint, uint64_t max_body)
{
    char             *p;
    size_t            size;
    pt_cache_node_t  *n;

    memset(w, 0, sizeof(pt_cache_writer_t));
    w->cache = c;
    w->max_body = max_body;

    if (route->len > UINT32_MAX || key->len > UINT32_MAX
        || head_len > UINT32_MAX)
    {
        w->failed = 1;
        return PT_ERROR;
    }

    size = sizeof(pt_cache_node_t) + route->len + 1 + key->len + head_len;

    pt_shmtx_lock(&c->slab->mutex);
    n = pt_cache_alloc(c, size);
    pt_shmtx_unlock(&c->slab->mutex);

    if (n == NULL) {
        w->failed = 1;
        return PT_ERROR;
    }

    /* Not linked: nobody else sees it, so it is filled in unlocked. */
    memset(n, 0, sizeof(pt_cache_node_t));
    memcpy(n->hash, hash, PT_CACHE_HASH_LEN);
    n->meta = *meta;
    n->bytes = size;
    n->hint = size_hint;

    p = (char *) (n + 1);
    n->key = p;
    n->route_len = (uint32_t) route->len;
    n->key_len = (uint32_t) key->len;

    if (route->len) {
        memcpy(p, route->data, route->len);
    }

    p += route->len;
    *p++ = '\0';

    if (key->len) {
        memcpy(p, key->data, key->len);
    }

    p += key->len;

    if (head_len) {
        memcpy(p, head, head_len);
        n->head = p;
    }

    n->head_len = (uint32_t) head_len;
    w->node = n;

    return PT_OK;
}


int
pt_cache_write(pt_cache_writer_t *w, const char *data, size_t len)
{
    size_t             n, size;
    pt_cache_t        *c;
    pt_cache_node_t   *node;
    pt_cache_chunk_t  *ch;

    if (w->failed || w->node == NULL) {
        return PT_ERROR;
    }

    node = w->node;
    c = w->cache;

    if (len > w->max_body || node->body_len > w->max_body - len) {
        w->failed = 1;
        return PT_ERROR;
    }

    while (len) {
        ch = w->tail;

        if (ch == NULL || ch->len == ch->size) {
            size = pt_cache_chunk_size(w, len);

            pt_shmtx_lock(&c->slab->mutex);
            ch = pt_cache_alloc(c, offsetof(pt_cache_chunk_t, data) + size);
            pt_shmtx_unlock(&c->slab->mutex);

            if (ch == NULL) {
                w->failed = 1;
                return PT_ERROR;
            }

            ch->next = NULL;
            ch->len = 0;
            ch->size = (uint32_t) size;
            node->bytes += offsetof(pt_cache_chunk_t, data) + size;

            if (w->tail) {
                w->tail->next = ch;

            } else {
                node->body = ch;
            }

            w->tail = ch;
        }

        n = pt_min(len, (size_t) (ch->size - ch->len));
        memcpy(ch->data + ch->len, data, n);
        ch->len += (uint32_t) n;
        node->body_len += n;
        data += n;
        len -= n;
    }

    return PT_OK;
}


int
pt_cache_write_end(pt_cache_writer_t *w)
{
    pt_cache_t       *c;
    pt_cache_node_t  *n, *old;

    if (w->failed || w->node == NULL) {
        pt_cache_write_abort(w);
        return PT_ERROR;
    }

    c = w->cache;
    n = w->node;
    n->complete = 1;
    n->hint = 0;

    pt_shmtx_lock(&c->slab->mutex);

    old = pt_cache_find(c, n->hash);

    if (old) {
        pt_cache_unlink(c, old);
        pt_cache_drop(c, old);
    }

    pt_cache_link(c, n);

    pt_shmtx_unlock(&c->slab->mutex);

    w->node = NULL;
    w->tail = NULL;

    return PT_OK;
}


void
pt_cache_write_abort(pt_cache_writer_t *w)
{
    pt_cache_t  *c;

    c = w->cache;

    if (w->node) {
        pt_shmtx_lock(&c->slab->mutex);
        pt_cache_free_node(c, w->node);
        pt_shmtx_unlock(&c->slab->mutex);
    }

    w->node = NULL;
    w->tail = NULL;
    w->failed = 1;
}


pt_uint_t
pt_cache_purge(pt_cache_t *c, const pt_str_t *route, const pt_str_t *key,
    int prefix)
{
    uint64_t          i;
    pt_uint_t         count;
    pt_cache_node_t  *n, *next;

    count = 0;

    pt_shmtx_lock(&c->slab->mutex);

    for (i = 0; i <= c->mask; i++) {
        for (n = c->buckets[i]; n; n = next) {
            next = n->hnext;

            /* Lengths are checked first: an empty route or key may come
             * with NULL data, which memcmp may not be given. */
            if (!n->complete
                || n->route_len != route->len
                || (prefix ? n->key_len < key->len : n->key_len != key->len)
                || (route->len
                    && memcmp(n->key, route->data, route->len) != 0)
                || (key->len
                    && memcmp(n->key + n->route_len + 1, key->data,
                              key->len) != 0))
            {
                continue;
            }

            pt_cache_unlink(c, n);
            pt_cache_drop(c, n);
            count++;
        }
    }

    pt_shmtx_unlock(&c->slab->mutex);

    return count;
}


void
pt_cache_stats(pt_cache_t *c, uint64_t *entries, uint64_t *bytes,
    uint64_t *evicted)
{
    pt_shmtx_lock(&c->slab->mutex);

    *entries = c->entries;
    *bytes = c->bytes;
    *evicted = c->evicted;

    pt_shmtx_unlock(&c->slab->mutex);
}


/* The rest runs under the lock. */


static pt_cache_node_t **
pt_cache_bucket(pt_cache_t *c, const uint8_t *hash)
{
    uint64_t  h;

    /* The hash is SHA-256: any 8 of its bytes are as good as a hash. */
    memcpy(&h, hash, sizeof(h));

    return &c->buckets[h & c->mask];
}


static pt_cache_node_t *
pt_cache_find(pt_cache_t *c, const uint8_t *hash)
{
    pt_cache_node_t  *n;

    for (n = *pt_cache_bucket(c, hash); n; n = n->hnext) {
        if (memcmp(n->hash, hash, PT_CACHE_HASH_LEN) == 0) {
            return n;
        }
    }

    return NULL;
}


static void
pt_cache_lru_remove(pt_cache_t *c, pt_cache_node_t *node)
{
    if (node->lru_prev) {
        node->lru_prev->lru_next = node->lru_next;

    } else {
        c->lru_head = node->lru_next;
    }

    if (node->lru_next) {
        node->lru_next->lru_prev = node->lru_prev;

    } else {
        c->lru_tail = node->lru_prev;
    }

    node->lru_prev = NULL;
    node->lru_next = NULL;
}


static void
pt_cache_lru_push(pt_cache_t *c, pt_cache_node_t *node)
{
    node->lru_prev = NULL;
    node->lru_next = c->lru_head;

    if (c->lru_head) {
        c->lru_head->lru_prev = node;

    } else {
        c->lru_tail = node;
    }

    c->lru_head = node;
}


/* A complete node into the chain, the LRU head and the counts. */
static void
pt_cache_link(pt_cache_t *c, pt_cache_node_t *node)
{
    pt_cache_node_t  **b;

    b = pt_cache_bucket(c, node->hash);
    node->hnext = *b;
    *b = node;
    node->linked = 1;

    pt_cache_lru_push(c, node);
    c->entries++;
    c->bytes += node->bytes;
}


/* Out of the index (and, when complete, the LRU and the counts). */
static void
pt_cache_unlink(pt_cache_t *c, pt_cache_node_t *node)
{
    pt_cache_node_t  **pp;

    for (pp = pt_cache_bucket(c, node->hash); *pp; pp = &(*pp)->hnext) {
        if (*pp == node) {
            *pp = node->hnext;
            break;
        }
    }

    node->hnext = NULL;
    node->linked = 0;

    if (node->complete) {
        pt_cache_lru_remove(c, node);
        c->entries--;
        c->bytes -= node->bytes;
    }
}


/* An unlinked node: freed now, or by its last release. */
static void
pt_cache_drop(pt_cache_t *c, pt_cache_node_t *node)
{
    if (node->refs == 0) {
        pt_cache_free_node(c, node);
    }
}


static void
pt_cache_free_node(pt_cache_t *c, pt_cache_node_t *node)
{
    pt_cache_chunk_t  *ch, *next;

    for (ch = node->body; ch; ch = next) {
        next = ch->next;
        pt_slab_free_locked(c->slab, ch);
    }

    pt_slab_free_locked(c->slab, node);
}


/* An allocation that evicts from the LRU tail until it fits. Entries in
 * use (referenced) or being revalidated (claimed) are passed over; a
 * node being written is in no list. */
static void *
pt_cache_alloc(pt_cache_t *c, size_t size)
{
    void             *p;
    pt_cache_node_t  *n, *prev;

    p = pt_slab_alloc_locked(c->slab, size);

    for (n = c->lru_tail; p == NULL && n; n = prev) {
        prev = n->lru_prev;

        if (n->refs || n->updater) {
            continue;
        }

        pt_cache_unlink(c, n);
        pt_cache_free_node(c, n);
        c->evicted++;

        p = pt_slab_alloc_locked(c->slab, size);
    }

    return p;
}


static int
pt_cache_claim_live(pt_cache_node_t *node, int64_t now, pt_msec_t lock_ms)
{
    return node->updater != 0
           && now - node->update_since < (int64_t) lock_ms;
}


/* Room for the next body chunk, the chunks so far being full: exactly
 * what is left of a known length up to 64 KiB, else a 64 KiB chunk; for an
 * unknown length, as much as the body so far (doubling) and at least what
 * this write brings, rounded up to fill the slab's slot or pages. Never
 * past max_body. */
static size_t
pt_cache_chunk_size(pt_cache_writer_t *w, size_t len)
{
    size_t            hdr, want, page, slot;
    uint64_t          have, room;
    pt_cache_node_t  *n;

    n = w->node;
    have = n->body_len;
    room = w->max_body - have;
    hdr = offsetof(pt_cache_chunk_t, data);

    if (n->hint >= 0 && (uint64_t) n->hint > have) {
        want = ((uint64_t) n->hint - have <= PT_CACHE_CHUNK_ALLOC)
               ? (size_t) ((uint64_t) n->hint - have) : PT_CACHE_CHUNK_DATA;

    } else {
        want = pt_max(len, (size_t) have);
        want = pt_min(want, PT_CACHE_CHUNK_DATA);
        page = w->cache->slab->page_size;

        if (want + hdr > page / 2) {
            want = pt_align(want + hdr, page) - hdr;

        } else {
            for (slot = 64; slot < want + hdr; slot <<= 1) {
                /* void */
            }

            want = slot - hdr;
        }

        want = pt_min(want, PT_CACHE_CHUNK_DATA);
    }

    return (size_t) pt_min((uint64_t) want, room);
}
