/*
 * pt_hash.h: the one hash table, keyed by byte strings.
 *
 * Open addressing with linear probing, at most half full, so a miss ends
 * at an empty slot after a few probes. Each slot keeps the full 64-bit
 * hash, so a probe only follows the element pointer when the hashes are
 * equal. The table copies each key into its element; values are the
 * caller's pointers. Memory comes from a pool: the table lives as long as
 * the pool (there is no delete and no free).
 *
 * It serves tables built once at load (the router's, filled from the
 * config and probed with request data, whose probe lengths the config
 * alone decides) and tables filled as input arrives (YAML anchors).
 *
 * The hash is FNV-1a over the bytes, from a per-process seed, with a
 * multiply-shift finish so the low bits, which pick the slot, depend on
 * every byte. Every table of a process shares the seed, so one running
 * hash serves several tables: pt_hash_start(), pt_hash_step() and
 * pt_hash_end() let a caller hash a string once and probe at each of its
 * prefix lengths with pt_hash_find_hashed() (the router does).
 */

#ifndef PT_HASH_H
#define PT_HASH_H

#include "pt_core.h"
#include "pt_palloc.h"


#define PT_HASH_CASELESS    0x1     /* ASCII case is ignored in keys */

typedef struct {
    void               *value;
    size_t              len;
    char                key[];      /* the key's bytes, as added       */
} pt_hash_elt_t;

typedef struct {
    uint64_t            hash;       /* pt_hash_end() of the key        */
    pt_hash_elt_t      *elt;        /* NULL: empty                     */
} pt_hash_slot_t;

typedef struct {
    pt_hash_slot_t     *slots;
    size_t              mask;       /* slots - 1, slots a power of two */
    size_t              n;          /* keys held                       */
    pt_pool_t          *pool;
    unsigned            flags;      /* PT_HASH_CASELESS                */
} pt_hash_t;


/* The running hash before the first byte; every table of the process
 * uses it. Set by the first pt_hash_init() (reading it earlier gives a
 * value no table uses). */
extern uint64_t  pt_hash_basis;


/* Make an empty table in pool with room for n keys before it grows.
 * PT_OK, or PT_ERROR when out of memory (the table is then unusable). */
int pt_hash_init(pt_hash_t *t, pt_pool_t *pool, size_t n, unsigned flags);

/* Add a copy of key with value, which must not be NULL. PT_OK;
 * PT_DECLINED when an equal key is there already (nothing changes, and
 * *old, when old is not NULL, is that key's value); PT_ERROR when out of
 * memory (nothing changes). The table grows as needed. */
int pt_hash_add(pt_hash_t *t, const char *key, size_t len, void *value,
    void **old);

/* The value of key, or NULL. */
void *pt_hash_find(const pt_hash_t *t, const char *key, size_t len);

/* The hash of key as t computes it (case folded in a caseless table). */
uint64_t pt_hash_key(const pt_hash_t *t, const char *key, size_t len);

/* Compare for caseless tables (internal to the inline find). */
int pt__hash_caseeq(const char *a, const char *b, size_t len);


/* The running hash, one byte at a time: h = pt_hash_start(); h =
 * pt_hash_step(h, c) for each byte (lower-cased first for a caseless
 * table); then pt_hash_end(h) is what pt_hash_key() returns. */
static inline uint64_t
pt_hash_start(void)
{
    return pt_hash_basis;
}


static inline uint64_t
pt_hash_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * 0x100000001b3ULL;
}


/* Fold the high bits into the low ones that pick the slot: FNV-1a's low
 * bits alone depend only on the low bits of each byte. */
static inline uint64_t
pt_hash_end(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;

    return h;
}


/* Whether e holds key (the hashes being equal). */
static inline int
pt_hash_elt_is(const pt_hash_t *t, const pt_hash_elt_t *e, const char *key,
    size_t len)
{
    if (e->len != len || len == 0) {
        return e->len == len;
    }

    if (t->flags & PT_HASH_CASELESS) {
        return pt__hash_caseeq(e->key, key, len);
    }

    return memcmp(e->key, key, len) == 0;
}


/* The value of key whose pt_hash_key() is hash, or NULL. Inline: the
 * router calls it on every request. */
static inline void *
pt_hash_find_hashed(const pt_hash_t *t, uint64_t hash, const char *key,
    size_t len)
{
    size_t                 i;
    const pt_hash_slot_t  *s;

    for (i = (size_t) hash & t->mask; /* void */; i = (i + 1) & t->mask) {
        s = &t->slots[i];

        if (s->elt == NULL) {
            return NULL;
        }

        if (s->hash == hash && pt_hash_elt_is(t, s->elt, key, len)) {
            return s->elt->value;
        }
    }
}


#endif /* PT_HASH_H */
