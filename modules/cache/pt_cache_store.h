/*
 * pt_cache_store.h: the response cache's shared store, the "cache" zone.
 *
 * Entries (index and bodies) live in one shm zone shared by every worker,
 * under the zone's one lock (the slab pool's mutex, which a dead worker
 * cannot leave held). An entry is found by a 32-byte hash the cache
 * module computes (SHA-256 of the route, the key text and the varying
 * request fields); the store keeps the route and key text only to purge by
 * them.
 *
 * An entry's response (meta, head blob, body chunks) never changes once
 * published; a new response for the same hash is a new entry that
 * replaces the old one in the index. Readers hold a reference while they
 * send a body straight from the zone; an entry unlinked (replaced, purged,
 * evicted) while referenced is freed by its last release.
 *
 * Request collapsing: the first miss on a hash claims it (a placeholder
 * entry marked updating by that process); other lookups see it busy and
 * wait. A stale entry is claimed the same way for its revalidation. A
 * claim older than the caller's lock timeout is taken over, so a worker
 * that died while updating does not hold a key for ever.
 *
 * Memory: when an allocation fails, entries are evicted from the
 * least-recently-used end (never one referenced or being updated) until
 * it succeeds; if nothing can be evicted the write fails and the response
 * simply is not cached.
 */

#ifndef PT_CACHE_STORE_H
#define PT_CACHE_STORE_H

#include "pt_core.h"
#include "pt_cycle.h"
#include "pt_slab.h"


#define PT_CACHE_HASH_LEN   32

typedef struct pt_cache_s        pt_cache_t;        /* zone root (shm)   */
typedef struct pt_cache_node_s   pt_cache_node_t;   /* an entry (shm)    */
typedef struct pt_cache_chunk_s  pt_cache_chunk_t;  /* body bytes (shm)  */


/* What the module knows of a stored response; times are wall-clock ms
 * (pt_current_epoch_msec), so they survive a reload. */
typedef struct {
    int64_t    stored;        /* when the response arrived              */
    int64_t    fresh_until;   /* fresh before this                      */
    int64_t    swr_until;     /* may be served stale while revalidating
                                 before this (>= fresh_until)           */
    int64_t    sie_until;     /* may be served stale on upstream errors
                                 before this (>= fresh_until)           */
    int64_t    content_length;    /* for the head; -1: none (a HEAD's
                                     entry keeps the upstream's value)   */
    uint32_t   age;           /* the upstream's Age when stored, s      */
    uint16_t   status;
    uint16_t   flags;         /* the module's own bits                  */
} pt_cache_meta_t;


struct pt_cache_chunk_s {
    pt_cache_chunk_t  *next;
    uint32_t           len;       /* bytes in data                      */
    uint32_t           size;      /* room in data                       */
    char               data[];
};


/* Fields a reader may use while it holds a reference. */
struct pt_cache_node_s {
    /* Private to the store. */
    pt_cache_node_t   *hnext;        /* hash chain                       */
    pt_cache_node_t   *lru_prev;
    pt_cache_node_t   *lru_next;
    pid_t              updater;      /* claim: who updates it, 0: none  */
    int64_t            update_since; /* claim: since when (wall ms)     */
    uint32_t           refs;
    unsigned           linked:1;     /* in the index                    */
    unsigned           complete:1;   /* has a response (not only a
                                        claim placeholder)              */
    size_t             bytes;        /* zone bytes it holds, for stats  */
    char              *key;          /* route "\0" key text             */
    uint32_t           route_len;
    uint32_t           key_len;      /* of the key text alone           */
    int64_t            hint;         /* while written: the expected body
                                        length, -1 unknown              */

    /* Public, read-only for readers. */
    uint8_t            hash[PT_CACHE_HASH_LEN];
    pt_cache_meta_t    meta;         /* fresh_until, swr_until and
                                        sie_until change on refresh: read
                                        them with __atomic loads         */
    char              *head;         /* the module's serialized fields  */
    uint32_t           head_len;
    uint64_t           body_len;
    pt_cache_chunk_t  *body;         /* NULL when body_len is 0         */
};


/* Zone init (pt_shm_zone_add's init): a new root, or old_data's root when
 * the mapping is adopted across a reload (entries survive). */
int pt_cache_zone_init(pt_shm_zone_t *zone, void *old_data);


/* Lookup results. */
#define PT_CACHE_FOUND     1   /* *node: a complete entry, referenced   */
#define PT_CACHE_CLAIMED   2   /* no entry: the caller claimed the hash
                                  (*node is the placeholder, referenced:
                                  unclaim it or let an entry replace it,
                                  then release it)                      */
#define PT_CACHE_BUSY      3   /* no entry: another claim is live       */
#define PT_CACHE_NONE      4   /* no entry, nothing claimed (claim = 0) */

/* Find hash. A complete entry (fresh or stale: the caller decides) is
 * referenced, moved to the LRU head and returned, even when someone is
 * updating it. Otherwise with claim set, a placeholder is made (or a
 * claim older than lock_ms taken over) for this process; a live claim
 * gives BUSY. Placeholder allocation failing (even after eviction) gives
 * NONE. now is wall-clock ms. */
int pt_cache_lookup(pt_cache_t *c, const uint8_t *hash, int claim,
    int64_t now, pt_msec_t lock_ms, pt_cache_node_t **node);

/* Claim a complete entry the caller holds a reference to, to revalidate
 * or refresh it: 1 when this process now updates it (no live claim was
 * there, or it was older than lock_ms), 0 when another does. */
int pt_cache_claim(pt_cache_t *c, pt_cache_node_t *node, int64_t now,
    pt_msec_t lock_ms);

/* Give up a claim made by lookup (a placeholder still in the index is
 * unlinked, freed by its last release) or by pt_cache_claim (the entry
 * stays as it was). Only when this process is the updater; on a node
 * already unlinked (replaced by a new entry) it only clears the claim.
 * The caller's reference keeps node valid throughout. */
void pt_cache_unclaim(pt_cache_t *c, pt_cache_node_t *node);

/* A 304 revalidated the claimed entry: new fresh_until, swr_until,
 * sie_until and stored (the rest of meta is ignored); the claim ends. */
void pt_cache_refresh(pt_cache_t *c, pt_cache_node_t *node,
    const pt_cache_meta_t *meta);

/* Drop a reference from lookup. */
void pt_cache_release(pt_cache_t *c, pt_cache_node_t *node);


/* Writing a new response: a private handle (in the caller's memory). */
typedef struct {
    pt_cache_t         *cache;
    pt_cache_node_t    *node;        /* the new entry, not yet linked   */
    pt_cache_chunk_t   *tail;
    uint64_t            max_body;    /* more is an error                */
    unsigned            failed:1;
} pt_cache_writer_t;

/* Start an entry for hash with its route, key text, meta and head blob
 * (all copied into the zone). size_hint: the expected body length (-1:
 * unknown), to size the body chunks. max_body: the most body bytes the
 * entry may take. PT_OK, or PT_ERROR (out of room even after eviction). */
int pt_cache_write_begin(pt_cache_t *c, pt_cache_writer_t *w,
    const uint8_t *hash, const pt_str_t *route, const pt_str_t *key,
    const pt_cache_meta_t *meta, const char *head, size_t head_len,
    int64_t size_hint, uint64_t max_body);

/* Append body bytes. PT_OK, or PT_ERROR when out of room (after
 * eviction) or beyond max_body; after an error the writer only takes
 * _abort. */
int pt_cache_write(pt_cache_writer_t *w, const char *data, size_t len);

/* Publish: the entry replaces whatever the index holds for its hash (a
 * placeholder or an older entry, whoever claimed it), which is unlinked
 * and freed, or freed by its last release. */
int pt_cache_write_end(pt_cache_writer_t *w);

/* Free what was written; the index is not touched. */
void pt_cache_write_abort(pt_cache_writer_t *w);


/* Unlink the complete entries of route whose key text equals key (prefix
 * 0) or starts with it (prefix 1); returns how many. Placeholders are left
 * alone. Scans the whole index under the lock. */
pt_uint_t pt_cache_purge(pt_cache_t *c, const pt_str_t *route,
    const pt_str_t *key, int prefix);

/* Entries and body bytes held, for /status and metrics. */
void pt_cache_stats(pt_cache_t *c, uint64_t *entries, uint64_t *bytes,
    uint64_t *evicted);

#endif /* PT_CACHE_STORE_H */
