/*
 * pt_hash.c: the one hash table (see pt_hash.h).
 */

#include <sys/random.h>
#include <time.h>

#include "pt_hash.h"
#include "pt_string.h"


#define PT_HASH_MIN_SLOTS   8

uint64_t  pt_hash_basis = 0xcbf29ce484222325ULL;

static unsigned  pt_hash_seeded;


static void pt_hash_seed(void);
static int pt_hash_slots(size_t n, size_t *size);
static int pt_hash_grow(pt_hash_t *t);
static size_t pt_hash_probe(const pt_hash_t *t, uint64_t hash,
    const char *key, size_t len);


/* Keys may come from a file someone else wrote: a per-process seed keeps
 * colliding keys from being prepared in advance. Workers inherit the
 * master's, so tables built before the fork stay valid after it. */
static void
pt_hash_seed(void)
{
    uint64_t  seed;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed)) {
        seed = ((uint64_t) (uintptr_t) &seed << 16)
               ^ ((uint64_t) getpid() << 32) ^ (uint64_t) time(NULL);
    }

    pt_hash_basis ^= seed;
    pt_hash_seeded = 1;
}


/* The number of slots for n keys, at most half full; PT_ERROR when it
 * would not fit in memory anyway. */
static int
pt_hash_slots(size_t n, size_t *size)
{
    size_t  s;

    if (n > SIZE_MAX / 4 / sizeof(pt_hash_slot_t)) {
        return PT_ERROR;
    }

    for (s = PT_HASH_MIN_SLOTS; s < 2 * n; s *= 2) { /* void */ }

    *size = s;

    return PT_OK;
}


int
pt_hash_init(pt_hash_t *t, pt_pool_t *pool, size_t n, unsigned flags)
{
    size_t  size;

    if (!pt_hash_seeded) {
        pt_hash_seed();
    }

    t->slots = NULL;
    t->mask = 0;
    t->n = 0;
    t->pool = pool;
    t->flags = flags;

    if (pt_hash_slots(n, &size) != PT_OK) {
        return PT_ERROR;
    }

    t->slots = pt_pcalloc(pool, size * sizeof(pt_hash_slot_t));
    if (t->slots == NULL) {
        return PT_ERROR;
    }

    t->mask = size - 1;

    return PT_OK;
}


uint64_t
pt_hash_key(const pt_hash_t *t, const char *key, size_t len)
{
    size_t    i;
    uint64_t  h;

    h = pt_hash_start();

    if (t->flags & PT_HASH_CASELESS) {
        for (i = 0; i < len; i++) {
            h = pt_hash_step(h, (unsigned char) pt_tolower(key[i]));
        }

    } else {
        for (i = 0; i < len; i++) {
            h = pt_hash_step(h, (unsigned char) key[i]);
        }
    }

    return pt_hash_end(h);
}


int
pt__hash_caseeq(const char *a, const char *b, size_t len)
{
    return strncasecmp(a, b, len) == 0;
}


/* The slot holding key, or the empty slot where it would go. */
static size_t
pt_hash_probe(const pt_hash_t *t, uint64_t hash, const char *key, size_t len)
{
    size_t                i;
    const pt_hash_elt_t  *e;

    for (i = (size_t) hash & t->mask; /* void */; i = (i + 1) & t->mask) {
        e = t->slots[i].elt;

        if (e == NULL
            || (t->slots[i].hash == hash && pt_hash_elt_is(t, e, key, len)))
        {
            return i;
        }
    }
}


/* Double the slots. The old ones go back early when they were a large
 * allocation of the pool. */
static int
pt_hash_grow(pt_hash_t *t)
{
    size_t           i, j, size;
    pt_hash_slot_t  *slots;

    size = (t->mask + 1) * 2;

    if (size > SIZE_MAX / 2 / sizeof(pt_hash_slot_t)) {
        return PT_ERROR;
    }

    slots = pt_pcalloc(t->pool, size * sizeof(pt_hash_slot_t));
    if (slots == NULL) {
        return PT_ERROR;
    }

    for (i = 0; i <= t->mask; i++) {
        if (t->slots[i].elt == NULL) {
            continue;
        }

        for (j = (size_t) t->slots[i].hash & (size - 1);
             slots[j].elt != NULL;
             j = (j + 1) & (size - 1))
        {
            /* void */
        }

        slots[j] = t->slots[i];
    }

    (void) pt_pfree(t->pool, t->slots);

    t->slots = slots;
    t->mask = size - 1;

    return PT_OK;
}


int
pt_hash_add(pt_hash_t *t, const char *key, size_t len, void *value,
    void **old)
{
    size_t          i;
    uint64_t        hash;
    pt_hash_elt_t  *e;

    hash = pt_hash_key(t, key, len);
    i = pt_hash_probe(t, hash, key, len);

    if (t->slots[i].elt != NULL) {
        if (old) {
            *old = t->slots[i].elt->value;
        }

        return PT_DECLINED;
    }

    if (len > SIZE_MAX - sizeof(pt_hash_elt_t)) {
        return PT_ERROR;
    }

    e = pt_palloc(t->pool, sizeof(pt_hash_elt_t) + len);
    if (e == NULL) {
        return PT_ERROR;
    }

    /* Keep at most half the slots full; grow first so that a failure
     * leaves the table as it was. */
    if (2 * (t->n + 1) > t->mask + 1) {
        if (pt_hash_grow(t) != PT_OK) {
            return PT_ERROR;
        }

        i = pt_hash_probe(t, hash, key, len);
    }

    e->value = value;
    e->len = len;
    if (len) {
        memcpy(e->key, key, len);
    }

    t->slots[i].hash = hash;
    t->slots[i].elt = e;
    t->n++;

    return PT_OK;
}


void *
pt_hash_find(const pt_hash_t *t, const char *key, size_t len)
{
    if (t->n == 0) {
        return NULL;
    }

    return pt_hash_find_hashed(t, pt_hash_key(t, key, len), key, len);
}
