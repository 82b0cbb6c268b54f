/*
 * test_cache_store.c: the response cache's shared store
 * (modules/cache/pt_cache_store.c).
 *
 * Each test makes a zone of its own the way the cycle does (pt_shm_alloc,
 * pt_slab_init, the zone's init) and checks that the slab's usage comes
 * back to where it was once every entry is gone: the store may not leak a
 * byte of the zone. Cross-process tests fork and sequence with pipes.
 */

#include <sys/wait.h>

#include "pt_core.h"
#include "pt_log.h"
#include "pt_shm.h"
#include "pt_slab.h"
#include "pt_cache_store.h"

#include "tap.h"
#include "tap_log.h"


#define NOW        1700000000000LL
#define LOCK_MS    5000
#define MAX_BODY   (1024 * 1024)


typedef struct {
    pt_shm_zone_t   zone;
    pt_cache_t     *cache;
} zone_t;


static pt_str_t  route_a = pt_string("api");
static pt_str_t  route_b = pt_string("web");


static int
zone_open(zone_t *z, size_t size)
{
    memset(z, 0, sizeof(zone_t));
    z->zone.shm.size = size;

    if (pt_shm_alloc(&z->zone.shm) != PT_OK) {
        return PT_ERROR;
    }

    z->zone.size = size;
    z->zone.slab = pt_slab_init(z->zone.shm.addr, size, "cache");

    if (z->zone.slab == NULL
        || pt_cache_zone_init(&z->zone, NULL) != PT_OK)
    {
        pt_shm_free(&z->zone.shm);
        return PT_ERROR;
    }

    z->cache = z->zone.slab->data;

    return PT_OK;
}


static void
zone_close(zone_t *z)
{
    pt_shm_free(&z->zone.shm);
}


static size_t
used(zone_t *z)
{
    size_t  u, f;

    pt_slab_usage(z->zone.slab, &u, &f);

    return u;
}


static void
make_hash(uint8_t *hash, unsigned i)
{
    unsigned  k;

    for (k = 0; k < PT_CACHE_HASH_LEN; k++) {
        hash[k] = (uint8_t) (i * 131 + k * 7 + (i >> 8));
    }

    memcpy(hash, &i, sizeof(i));
}


static void
fill(char *p, size_t len, unsigned seed)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        p[i] = (char) (seed + i * 13 + (i >> 9));
    }
}


static void
make_meta(pt_cache_meta_t *m, unsigned seed)
{
    memset(m, 0, sizeof(pt_cache_meta_t));
    m->stored = NOW + seed;
    m->fresh_until = NOW + seed + 60000;
    m->swr_until = NOW + seed + 120000;
    m->sie_until = NOW + seed + 180000;
    m->content_length = seed;
    m->age = seed % 100;
    m->status = 200;
    m->flags = (uint16_t) seed;
}


/* Whether node's body is body_len bytes of fill(seed). */
static int
body_is(pt_cache_node_t *node, size_t len, unsigned seed)
{
    int                good;
    char              *want;
    size_t             off;
    pt_cache_chunk_t  *ch;

    if (node->body_len != len || (len == 0) != (node->body == NULL)) {
        return 0;
    }

    want = malloc(len + 1);
    if (want == NULL) {
        return 0;
    }

    fill(want, len, seed);
    good = 1;
    off = 0;

    for (ch = node->body; ch; ch = ch->next) {
        if (ch->len > ch->size || off + ch->len > len
            || memcmp(ch->data, want + off, ch->len) != 0)
        {
            good = 0;
            break;
        }

        off += ch->len;
    }

    free(want);

    return good && off == len;
}


static size_t
chunks(pt_cache_node_t *node)
{
    size_t             n;
    pt_cache_chunk_t  *ch;

    n = 0;

    for (ch = node->body; ch; ch = ch->next) {
        n++;
    }

    return n;
}


/* A whole entry: key "/k/<i>", head "head <i>", len body bytes written in
 * pieces of step (0: one piece). */
static int
put(pt_cache_t *c, const pt_str_t *route, unsigned i, size_t len,
    int64_t hint, size_t step)
{
    int                 rc;
    char                key[32], head[32], *body;
    size_t              off, n;
    uint8_t             hash[PT_CACHE_HASH_LEN];
    pt_str_t            k;
    pt_cache_meta_t     meta;
    pt_cache_writer_t   w;

    make_hash(hash, i);
    make_meta(&meta, i);
    k.data = key;
    k.len = (size_t) snprintf(key, sizeof(key), "/k/%u", i);
    n = (size_t) snprintf(head, sizeof(head), "head %u", i);

    if (pt_cache_write_begin(c, &w, hash, route, &k, &meta, head, n, hint,
                             MAX_BODY)
        != PT_OK)
    {
        return PT_ERROR;
    }

    body = malloc(len + 1);
    if (body == NULL) {
        pt_cache_write_abort(&w);
        return PT_ERROR;
    }

    fill(body, len, i);
    rc = PT_OK;

    for (off = 0; off < len; off += n) {
        n = step ? pt_min(step, len - off) : len;

        if (pt_cache_write(&w, body + off, n) != PT_OK) {
            rc = PT_ERROR;
            break;
        }
    }

    free(body);

    if (rc != PT_OK) {
        pt_cache_write_abort(&w);
        return PT_ERROR;
    }

    return pt_cache_write_end(&w);
}


static int
lookup(pt_cache_t *c, unsigned i, int claim, int64_t now,
    pt_cache_node_t **node)
{
    uint8_t  hash[PT_CACHE_HASH_LEN];

    make_hash(hash, i);

    return pt_cache_lookup(c, hash, claim, now, LOCK_MS, node);
}


static uint64_t
stat_of(pt_cache_t *c, int which)
{
    uint64_t  e, b, ev;

    pt_cache_stats(c, &e, &b, &ev);

    return which == 'e' ? e : which == 'b' ? b : ev;
}


static void
test_claims(void)
{
    size_t            base;
    zone_t            z;
    pt_cache_t       *c;
    pt_cache_node_t  *n, *p;

    if (zone_open(&z, 1024 * 1024) != PT_OK) {
        ok(0, "claims: zone");
        return;
    }

    c = z.cache;
    base = used(&z);

    is_int(lookup(c, 1, 0, NOW, &n), PT_CACHE_NONE, "miss, no claim: NONE");
    ok(n == NULL, "and no node");
    is_int(used(&z), base, "and nothing allocated");

    is_int(lookup(c, 1, 1, NOW, &p), PT_CACHE_CLAIMED, "miss: CLAIMED");
    ok(p != NULL && !p->complete && p->linked && p->updater == getpid()
       && p->update_since == NOW && p->refs == 1,
       "a placeholder of ours, referenced once (the claimer's)");
    is_int(lookup(c, 1, 1, NOW + 10, &n), PT_CACHE_BUSY, "again: BUSY");
    ok(n == NULL, "BUSY gives no node");
    n = p;
    is_int(lookup(c, 1, 0, NOW + 10, &n), PT_CACHE_BUSY,
           "claim=0 on a live claim: BUSY");
    ok(n == NULL && p->refs == 1 && p->update_since == NOW,
       "no node, no reference taken, claim untouched");
    is_int(lookup(c, 1, 1, NOW + LOCK_MS - 1, &n), PT_CACHE_BUSY,
           "just under lock_ms: still BUSY");
    is_int(lookup(c, 1, 0, NOW + LOCK_MS - 1, &n), PT_CACHE_BUSY,
           "just under lock_ms, claim=0: still BUSY");
    n = p;
    is_int(lookup(c, 1, 0, NOW + LOCK_MS, &n), PT_CACHE_NONE,
           "claim=0 on a stale claim: NONE");
    ok(n == NULL && p->refs == 1 && p->update_since == NOW
       && p->updater == getpid() && p->linked,
       "no node, no reference, the stale claim not taken over");
    is_int(lookup(c, 1, 1, NOW + LOCK_MS, &n), PT_CACHE_CLAIMED,
           "lock_ms elapsed: CLAIMED (taken over)");
    ok(n == p && n->update_since == NOW + LOCK_MS && n->refs == 2,
       "the same placeholder, restamped, a reference for each claimer");
    is_int(stat_of(c, 'e'), 0, "placeholders are not counted as entries");

    pt_cache_unclaim(c, n);
    ok(!p->linked && p->updater == 0 && p->refs == 2,
       "unclaim: unlinked, unclaimed, both references kept");
    is_int(lookup(c, 1, 0, NOW, &n), PT_CACHE_NONE, "and the hash is free");
    ok(used(&z) > base, "the placeholder is still allocated");
    pt_cache_release(c, p);
    ok(used(&z) > base && p->refs == 1, "first release: still allocated");
    pt_cache_release(c, p);
    is_int(used(&z), base, "last release frees the placeholder");

    /* A write replaces the placeholder; the claimer still releases it. */
    is_int(lookup(c, 2, 1, NOW, &p), PT_CACHE_CLAIMED, "claim hash 2");
    is_int(put(c, &route_a, 2, 100, 100, 0), PT_OK, "write it");
    ok(!p->linked && p->refs == 1, "the placeholder unlinked, still held");
    is_int(lookup(c, 2, 1, NOW, &n), PT_CACHE_FOUND,
           "lookup: FOUND, the placeholder replaced");
    ok(n != NULL && n != p && n->complete && n->refs == 1 && n->updater == 0,
       "complete, referenced, unclaimed");
    pt_cache_release(c, p);
    is_int(stat_of(c, 'e'), 1, "one entry");

    /* Claims on a complete entry. */
    is_int(pt_cache_claim(c, n, NOW, LOCK_MS), 1, "claim a complete entry");
    is_int(n->updater, getpid(), "updater is us");
    is_int(pt_cache_claim(c, n, NOW + 1, LOCK_MS), 0,
           "a second claim while it is live: 0");
    is_int(lookup(c, 2, 1, NOW + 1, &p), PT_CACHE_FOUND,
           "a claimed complete entry is still FOUND");
    ok(p == n && n->refs == 2, "the same node, two references");
    pt_cache_release(c, p);
    is_int(pt_cache_claim(c, n, NOW + LOCK_MS, LOCK_MS), 1,
           "an old claim is taken over");
    is_int(n->update_since, NOW + LOCK_MS, "restamped");

    pt_cache_unclaim(c, n);
    ok(n->updater == 0 && n->complete, "unclaim: entry stays, unclaimed");
    is_int(lookup(c, 2, 0, NOW, &p), PT_CACHE_FOUND, "and is still found");
    pt_cache_release(c, p);

    /* Refresh ends a claim with new times; the rest of meta stays. */
    {
        pt_cache_meta_t  m, old;

        old = n->meta;
        make_meta(&m, 777);
        m.status = 404;
        is_int(pt_cache_claim(c, n, NOW, LOCK_MS), 1, "claim to revalidate");
        pt_cache_refresh(c, n, &m);
        ok(__atomic_load_n(&n->meta.fresh_until, __ATOMIC_RELAXED)
           == m.fresh_until
           && __atomic_load_n(&n->meta.swr_until, __ATOMIC_RELAXED)
              == m.swr_until
           && __atomic_load_n(&n->meta.sie_until, __ATOMIC_RELAXED)
              == m.sie_until
           && n->meta.stored == m.stored,
           "refresh: the three times and stored are new");
        ok(n->meta.status == old.status && n->meta.age == old.age
           && n->meta.flags == old.flags, "the rest of meta is kept");
        is_int(n->updater, 0, "and the claim ended");
    }

    pt_cache_release(c, n);
    is_int(pt_cache_purge(c, &route_a, &(pt_str_t) pt_string(""), 1), 1,
           "purge it");
    is_int(used(&z), base, "zone back to the baseline");

    zone_close(&z);
}


static void
test_bodies(void)
{
    size_t            base;
    zone_t            z;
    uint8_t           hash[PT_CACHE_HASH_LEN];
    pt_cache_t       *c;
    pt_cache_meta_t   meta;
    pt_cache_node_t  *n;
    pt_cache_chunk_t *ch;

    if (zone_open(&z, 2 * 1024 * 1024) != PT_OK) {
        ok(0, "bodies: zone");
        return;
    }

    c = z.cache;
    base = used(&z);

    is_int(put(c, &route_a, 10, 200 * 1024, 200 * 1024, 0), PT_OK,
           "a 200 KiB body with its size known");
    is_int(lookup(c, 10, 1, NOW, &n), PT_CACHE_FOUND, "found");
    make_meta(&meta, 10);
    make_hash(hash, 10);
    ok(memcmp(&n->meta, &meta, sizeof(meta)) == 0, "same meta");
    ok(memcmp(n->hash, hash, PT_CACHE_HASH_LEN) == 0, "same hash");
    is_str(n->head, n->head_len, "head 10", "same head");
    is_str(n->key, n->route_len, "api", "route kept");
    is_str(n->key + n->route_len + 1, n->key_len, "/k/10", "key kept");
    ok(body_is(n, 200 * 1024, 10), "same body bytes across chunks");
    ok(chunks(n) == 4, "in 4 chunks (%zu)", chunks(n));

    for (ch = n->body; ch; ch = ch->next) {
        if (ch->size + offsetof(pt_cache_chunk_t, data) > 64 * 1024 + 16) {
            break;
        }
    }

    ok(ch == NULL, "none larger than 64 KiB");
    pt_cache_release(c, n);

    is_int(put(c, &route_a, 11, 200 * 1024, -1, 8192), PT_OK,
           "200 KiB of unknown length in 8 KiB writes");
    is_int(lookup(c, 11, 0, NOW, &n), PT_CACHE_FOUND, "found");
    ok(body_is(n, 200 * 1024, 11), "same body bytes");
    ok(chunks(n) >= 4 && chunks(n) <= 8, "in a few chunks (%zu)", chunks(n));
    pt_cache_release(c, n);

    is_int(put(c, &route_a, 12, 10, 10, 0), PT_OK, "a 10-byte body");
    is_int(lookup(c, 12, 0, NOW, &n), PT_CACHE_FOUND, "found");
    ok(body_is(n, 10, 12), "same bytes");
    ok(chunks(n) == 1 && n->body->size == 10, "one chunk of exactly 10");
    pt_cache_release(c, n);

    is_int(put(c, &route_a, 13, 0, 0, 0), PT_OK, "an empty body");
    is_int(lookup(c, 13, 0, NOW, &n), PT_CACHE_FOUND, "found");
    ok(n->body == NULL && n->body_len == 0, "body NULL, body_len 0");
    is_str(n->head, n->head_len, "head 13", "head kept");
    pt_cache_release(c, n);

    is_int(put(c, &route_a, 14, 30, 10, 7), PT_OK,
           "a body longer than its hint");
    is_int(lookup(c, 14, 0, NOW, &n), PT_CACHE_FOUND, "found");
    ok(body_is(n, 30, 14), "all its bytes kept");
    pt_cache_release(c, n);

    is_int(stat_of(c, 'e'), 5, "stats: 5 entries");
    ok(stat_of(c, 'b') > 400 * 1024 && stat_of(c, 'b') < 500 * 1024,
       "stats: bytes held (%llu)", (unsigned long long) stat_of(c, 'b'));

    is_int(pt_cache_purge(c, &route_a, &(pt_str_t) pt_string("/k/"), 1), 5,
           "purge all");
    is_int(stat_of(c, 'e'), 0, "no entries");
    is_int(stat_of(c, 'b'), 0, "no bytes");
    is_int(used(&z), base, "zone back to the baseline");

    zone_close(&z);
}


static void
test_writer_errors(void)
{
    char                buf[200];
    size_t              base;
    zone_t              z, tiny;
    uint8_t             hash[PT_CACHE_HASH_LEN];
    pt_str_t            key = pt_string("/x");
    pt_cache_t         *c;
    pt_cache_meta_t     meta;
    pt_cache_node_t    *n;
    pt_cache_writer_t   w;
    char               *big;

    if (zone_open(&z, 1024 * 1024) != PT_OK) {
        ok(0, "writer: zone");
        return;
    }

    c = z.cache;
    base = used(&z);
    make_hash(hash, 20);
    make_meta(&meta, 20);
    memset(buf, 'x', sizeof(buf));

    is_int(pt_cache_write_begin(c, &w, hash, &route_a, &key, &meta, "h", 1,
                                -1, 100), PT_OK, "begin, max_body 100");
    is_int(pt_cache_write(&w, buf, 60), PT_OK, "60 bytes");
    is_int(pt_cache_write(&w, buf, 40), PT_OK, "40 more: exactly max_body");
    ok(w.node->bytes - sizeof(pt_cache_node_t) - 6 - 1
       <= 100 + 2 * offsetof(pt_cache_chunk_t, data),
       "never more than max_body of chunks");
    is_int(pt_cache_write(&w, buf, 1), PT_ERROR, "one more: PT_ERROR");
    is_int(pt_cache_write(&w, buf, 1), PT_ERROR, "and the writer stays failed");
    is_int(pt_cache_write_end(&w), PT_ERROR, "write_end of a failed writer");
    is_int(used(&z), base, "which freed everything");
    is_int(lookup(c, 20, 0, NOW, &n), PT_CACHE_NONE, "nothing published");

    is_int(pt_cache_write_begin(c, &w, hash, &route_a, &key, &meta, "h", 1,
                                1000, MAX_BODY), PT_OK, "begin");
    is_int(pt_cache_write(&w, buf, 200), PT_OK, "200 bytes");
    pt_cache_write_abort(&w);
    is_int(used(&z), base, "abort frees everything");
    is_int(lookup(c, 20, 0, NOW, &n), PT_CACHE_NONE, "nothing published");

    is_int(pt_cache_write_begin(c, &w, hash, &route_a, &key, &meta, "h", 1,
                                -1, 10), PT_OK, "begin, max_body 10");
    is_int(pt_cache_write(&w, buf, 11), PT_ERROR,
           "one write beyond max_body: PT_ERROR");
    pt_cache_write_abort(&w);
    is_int(used(&z), base, "abort: baseline");

    zone_close(&z);

    /* A zone too small for the head blob. */
    if (zone_open(&tiny, 16 * 4096) != PT_OK) {
        ok(0, "tiny zone");
        return;
    }

    base = used(&tiny);
    big = calloc(1, 256 * 1024);
    is_int(pt_cache_write_begin(tiny.cache, &w, hash, &route_a, &key, &meta,
                                big, big ? 256 * 1024 : 0, -1, MAX_BODY),
           PT_ERROR, "a head larger than the zone: PT_ERROR");
    is_int(pt_cache_write(&w, buf, 1), PT_ERROR, "the writer takes no body");
    pt_cache_write_abort(&w);
    is_int(used(&tiny), base, "nothing leaked");

    is_int(pt_cache_write_begin(tiny.cache, &w, hash, &route_a, &key, &meta,
                                "h", 1, -1, MAX_BODY), PT_OK,
           "a small head fits");
    is_int(pt_cache_write(&w, big, 256 * 1024), PT_ERROR,
           "a body larger than the zone: PT_ERROR");
    pt_cache_write_abort(&w);
    is_int(used(&tiny), base, "nothing leaked");
    free(big);

    zone_close(&tiny);
}


static void
test_replace(void)
{
    size_t            base, both;
    zone_t            z;
    pt_cache_t       *c;
    pt_cache_node_t  *old, *n;

    if (zone_open(&z, 1024 * 1024) != PT_OK) {
        ok(0, "replace: zone");
        return;
    }

    c = z.cache;
    base = used(&z);

    is_int(put(c, &route_a, 30, 5000, 5000, 0), PT_OK, "an entry");
    is_int(lookup(c, 30, 0, NOW, &old), PT_CACHE_FOUND, "referenced");

    /* Same hash (30), other body: written as hash 30 with seed 30 but a
     * different length. */
    is_int(put(c, &route_a, 30, 9000, 9000, 0), PT_OK, "a new response");
    is_int(lookup(c, 30, 0, NOW, &n), PT_CACHE_FOUND, "found");
    ok(n != old && body_is(n, 9000, 30), "the new one");
    ok(!old->linked && old->refs == 1 && body_is(old, 5000, 30),
       "the old one unlinked, still readable");
    is_int(stat_of(c, 'e'), 1, "one entry counted");
    both = used(&z);

    pt_cache_release(c, old);
    ok(used(&z) < both, "its last release freed it");
    pt_cache_release(c, n);

    /* Replaced while unreferenced: freed at once. */
    is_int(put(c, &route_a, 30, 100, 100, 0), PT_OK, "replaced again");
    is_int(stat_of(c, 'e'), 1, "still one entry");
    is_int(pt_cache_purge(c, &route_a, &(pt_str_t) pt_string("/k/30"), 0), 1,
           "purged");
    is_int(used(&z), base, "zone back to the baseline");

    zone_close(&z);
}


static void
test_purge(void)
{
    size_t            base;
    zone_t            z;
    pt_cache_t       *c;
    pt_cache_node_t  *n, *p, *ph;
    pt_str_t          k;

    if (zone_open(&z, 1024 * 1024) != PT_OK) {
        ok(0, "purge: zone");
        return;
    }

    c = z.cache;
    base = used(&z);

    /* /k/40 /k/41 /k/400 on api, /k/40 on web (other hash). */
    put(c, &route_a, 40, 100, -1, 0);
    put(c, &route_a, 41, 100, -1, 0);
    put(c, &route_a, 400, 100, -1, 0);
    put(c, &route_b, 1040, 100, -1, 0);
    is_int(stat_of(c, 'e'), 4, "4 entries");
    is_int(lookup(c, 42, 1, NOW, &ph), PT_CACHE_CLAIMED, "and a placeholder");

    pt_str_set(&k, "/k/4");
    is_int(pt_cache_purge(c, &route_a, &k, 0), 0,
           "exact /k/4: nothing (no such key)");
    pt_str_set(&k, "/k/40");
    is_int(lookup(c, 40, 0, NOW, &n), PT_CACHE_FOUND, "/k/40 referenced");
    is_int(pt_cache_purge(c, &route_a, &k, 0), 1, "exact /k/40: 1");
    is_int(lookup(c, 40, 0, NOW, &p), PT_CACHE_NONE, "it is gone");
    ok(body_is(n, 100, 40), "but still readable by its holder");
    is_int(lookup(c, 400, 0, NOW, &p), PT_CACHE_FOUND, "/k/400 stays");
    pt_cache_release(c, p);
    is_int(pt_cache_purge(c, &route_b, &k, 0), 0,
           "web /k/40 exact: the web entry is /k/1040");

    pt_str_set(&k, "/k/4");
    is_int(pt_cache_purge(c, &route_a, &k, 1), 2,
           "prefix /k/4 on api: /k/41 and /k/400");
    is_int(stat_of(c, 'e'), 1, "the web entry remains");
    is_int(lookup(c, 1040, 0, NOW, &p), PT_CACHE_FOUND, "route mismatch kept");
    pt_cache_release(c, p);

    pt_str_set(&k, "");
    is_int(pt_cache_purge(c, &route_b, &k, 1), 1, "prefix \"\" on web: 1");
    is_int(lookup(c, 42, 1, NOW, &p), PT_CACHE_BUSY,
           "the placeholder was left alone");
    ok(ph->linked && ph->refs == 1 && ph->updater == getpid(),
       "still linked, held and claimed by us");
    is_int(lookup(c, 42, 1, NOW + LOCK_MS, &p), PT_CACHE_CLAIMED,
           "purge does not extend a claim: taken over once stale");
    ok(p == ph && ph->refs == 2, "the same placeholder, referenced twice");
    pt_cache_unclaim(c, ph);
    is_int(lookup(c, 42, 0, NOW, &p), PT_CACHE_NONE, "unclaimed: hash free");
    pt_cache_release(c, ph);
    pt_cache_release(c, ph);

    pt_cache_release(c, n);
    is_int(used(&z), base, "purged entry freed at its release: baseline");

    zone_close(&z);
}


/* Placeholders are referenced by their claimers: unlinked (replaced by a
 * published entry, or unclaimed by another claimer of the same process),
 * they stay valid memory until the last claimer releases them. */
static void
test_placeholder_refs(void)
{
    size_t            base, ph_bytes, with_entry, held;
    zone_t            z;
    uint8_t           hash[PT_CACHE_HASH_LEN];
    pt_cache_t       *c;
    pt_cache_node_t  *p, *p2, *n;

    if (zone_open(&z, 1024 * 1024) != PT_OK) {
        ok(0, "placeholder refs: zone");
        return;
    }

    c = z.cache;
    base = used(&z);

    /* Replaced by write_end while its claimer holds it. */
    is_int(lookup(c, 80, 1, NOW, &p), PT_CACHE_CLAIMED, "claim hash 80");
    ph_bytes = used(&z) - base;
    ok(ph_bytes >= sizeof(pt_cache_node_t), "the placeholder takes %zu bytes",
       ph_bytes);
    is_int(put(c, &route_a, 80, 3000, 3000, 0), PT_OK,
           "an entry published over it");
    with_entry = used(&z);
    make_hash(hash, 80);
    ok(!p->linked && !p->complete && p->refs == 1
       && p->updater == getpid() && p->update_since == NOW
       && memcmp(p->hash, hash, PT_CACHE_HASH_LEN) == 0,
       "the placeholder: unlinked, intact, still referenced and claimed");
    is_int(lookup(c, 80, 0, NOW + 1, &n), PT_CACHE_FOUND,
           "the new entry is found");
    ok(n != NULL && n != p && n->linked && body_is(n, 3000, 80),
       "and it is the published one");
    pt_cache_release(c, n);
    is_int(stat_of(c, 'e'), 1, "one entry counted");

    pt_cache_unclaim(c, p);
    ok(p->updater == 0 && !p->linked && p->refs == 1,
       "unclaim of the replaced placeholder only clears its claim");
    is_int(lookup(c, 80, 0, NOW + 2, &n), PT_CACHE_FOUND,
           "and leaves the published entry alone");
    ok(n != NULL && n->linked && n->updater == 0, "linked, unclaimed");
    pt_cache_release(c, n);
    is_int(used(&z), with_entry, "still allocated before the release");

    pt_cache_release(c, p);
    is_int(used(&z), with_entry - ph_bytes,
           "its release frees the placeholder, exactly");
    is_int(pt_cache_purge(c, &route_a, &(pt_str_t) pt_string("/k/80"), 0), 1,
           "purge the entry");
    is_int(used(&z), base, "baseline");

    /* The same, released before the unclaim (the contract allows either
     * order once replaced: the unclaim is then skipped). */
    is_int(lookup(c, 81, 1, NOW, &p), PT_CACHE_CLAIMED, "claim hash 81");
    is_int(put(c, &route_a, 81, 10, 10, 0), PT_OK, "published over it");
    with_entry = used(&z);
    pt_cache_release(c, p);
    is_int(used(&z), with_entry - ph_bytes,
           "released without unclaim once replaced: freed");
    pt_cache_purge(c, &route_a, &(pt_str_t) pt_string("/k/81"), 0);
    is_int(used(&z), base, "baseline");

    /* Taken over by the same process; the first claimer unclaims and
     * releases while the second still holds it. */
    is_int(lookup(c, 82, 1, NOW, &p), PT_CACHE_CLAIMED, "first claim of 82");
    is_int(lookup(c, 82, 1, NOW + LOCK_MS, &p2), PT_CACHE_CLAIMED,
           "taken over by the same process");
    ok(p2 == p && p->refs == 2 && p->update_since == NOW + LOCK_MS,
       "the same placeholder, two references");
    held = used(&z);
    is_int(held - base, ph_bytes, "one placeholder allocated");

    pt_cache_unclaim(c, p);
    ok(!p->linked && p->refs == 2, "first claimer's unclaim: unlinked");
    is_int(lookup(c, 82, 0, NOW + LOCK_MS + 1, &n), PT_CACHE_NONE,
           "the hash is free");
    pt_cache_release(c, p);
    is_int(used(&z), held, "first claimer's release: not freed");
    make_hash(hash, 82);
    ok(p2->refs == 1 && !p2->linked && !p2->complete
       && memcmp(p2->hash, hash, PT_CACHE_HASH_LEN) == 0,
       "the second claimer's node is intact");

    pt_cache_unclaim(c, p2);
    ok(p2->refs == 1 && p2->updater == 0, "second unclaim: nothing to undo");
    is_int(used(&z), held, "still allocated");
    pt_cache_release(c, p2);
    is_int(used(&z), base, "the second claimer's release frees it");

    /* Taken over; the second claimer publishes; then the first unclaims
     * and releases: the entry stays, the placeholder goes at the end. */
    is_int(lookup(c, 83, 1, NOW, &p), PT_CACHE_CLAIMED, "first claim of 83");
    is_int(lookup(c, 83, 1, NOW + LOCK_MS, &p2), PT_CACHE_CLAIMED,
           "taken over by the same process");
    is_int(put(c, &route_a, 83, 500, 500, 0), PT_OK,
           "the second claimer publishes");
    with_entry = used(&z);
    pt_cache_unclaim(c, p);
    pt_cache_release(c, p);
    is_int(used(&z), with_entry, "first claimer done: placeholder kept");
    is_int(lookup(c, 83, 0, NOW + LOCK_MS + 1, &n), PT_CACHE_FOUND,
           "the published entry untouched by the first unclaim");
    ok(n != NULL && n != p2 && n->linked && body_is(n, 500, 83),
       "with its body");
    pt_cache_release(c, n);
    ok(p2->refs == 1 && !p2->linked, "second claimer still holds it");
    pt_cache_release(c, p2);
    is_int(used(&z), with_entry - ph_bytes,
           "the second claimer's release frees the placeholder");
    pt_cache_purge(c, &route_a, &(pt_str_t) pt_string("/k/83"), 0);
    is_int(used(&z), base, "zone back to the baseline");

    zone_close(&z);
}


static void
test_eviction(void)
{
    int               fill_ok, hot_ok;
    unsigned          i, last, live;
    size_t            base, before;
    zone_t            z;
    pt_cache_t       *c;
    pt_cache_node_t  *n, *held, *refs[256];

    if (zone_open(&z, 256 * 1024) != PT_OK) {
        ok(0, "eviction: zone");
        return;
    }

    c = z.cache;
    base = used(&z);

    /* Entry 1000 is held, entry 1001 looked up after every write. */
    put(c, &route_a, 1000, 3000, 3000, 0);
    put(c, &route_a, 1001, 3000, 3000, 0);
    is_int(lookup(c, 1000, 0, NOW, &held), PT_CACHE_FOUND, "held entry");

    fill_ok = 1;
    hot_ok = 1;

    for (i = 0; i < 200; i++) {
        if (put(c, &route_a, i, 3000, 3000, 0) != PT_OK) {
            fill_ok = 0;
        }

        if (lookup(c, 1001, 0, NOW, &n) != PT_CACHE_FOUND) {
            hot_ok = 0;
            continue;
        }

        pt_cache_release(c, n);
    }

    ok(fill_ok, "200 entries of 3000 bytes written into 256 KiB");
    ok(stat_of(c, 'v') > 100, "by evicting (%llu)",
       (unsigned long long) stat_of(c, 'v'));
    ok(stat_of(c, 'e') < 80, "entries held: %llu",
       (unsigned long long) stat_of(c, 'e'));
    ok(hot_ok, "the recently used entry survived every write");
    ok(held->linked && body_is(held, 3000, 1000),
       "the referenced entry was never evicted");
    is_int(lookup(c, 0, 0, NOW, &n), PT_CACHE_NONE, "the oldest went");
    is_int(lookup(c, 199, 0, NOW, &n), PT_CACHE_FOUND, "the newest is here");
    pt_cache_release(c, n);

    /* Hold everything: the next write must fail cleanly. */
    live = 0;

    for (i = 0; i < 200 && live < pt_nelems(refs); i++) {
        if (lookup(c, i, 0, NOW, &refs[live]) == PT_CACHE_FOUND) {
            live++;
        }
    }

    if (lookup(c, 1001, 0, NOW, &refs[live]) == PT_CACHE_FOUND) {
        live++;
    }

    is_int(live + 1, stat_of(c, 'e'), "every entry referenced");

    before = used(&z);
    last = (unsigned) stat_of(c, 'v');

    for (i = 0; i < 100; i++) {
        if (put(c, &route_a, 5000 + i, 3000, 3000, 0) != PT_OK) {
            break;
        }
    }

    ok(i < 100, "with everything referenced a write fails (after %u)", i);
    is_int(stat_of(c, 'e'), live + 1 + i, "nothing was evicted");
    ok(stat_of(c, 'v') == last, "eviction count unchanged");

    for (; i > 0; i--) {
        pt_str_t  k;
        char      key[32];

        k.data = key;
        k.len = (size_t) snprintf(key, sizeof(key), "/k/%u", 5000 + i - 1);
        pt_cache_purge(c, &route_a, &k, 0);
    }

    is_int(used(&z), before, "the failed write left nothing behind");

    for (i = 0; i < live; i++) {
        pt_cache_release(c, refs[i]);
    }

    pt_cache_release(c, held);

    is_int(lookup(c, 6000, 1, NOW, &n), PT_CACHE_CLAIMED,
           "released: a placeholder fits again");
    pt_cache_unclaim(c, n);
    pt_cache_release(c, n);
    is_int(put(c, &route_a, 6000, 3000, 3000, 0), PT_OK,
           "and a write evicts again");

    pt_cache_purge(c, &route_a, &(pt_str_t) pt_string(""), 1);
    is_int(stat_of(c, 'e'), 0, "all purged");
    is_int(used(&z), base, "zone back to the baseline");

    zone_close(&z);
}


static void
test_reload(void)
{
    zone_t            z;
    pt_cache_t       *c;
    pt_cache_node_t  *n;
    pt_shm_zone_t     again;

    if (zone_open(&z, 1024 * 1024) != PT_OK) {
        ok(0, "reload: zone");
        return;
    }

    c = z.cache;
    put(c, &route_a, 50, 1000, -1, 0);

    /* A new cycle adopts the mapping: same shm, slab, old root. */
    memset(&again, 0, sizeof(again));
    again.shm = z.zone.shm;
    again.size = z.zone.size;
    again.slab = z.zone.slab;
    again.slab->data = NULL;

    is_int(pt_cache_zone_init(&again, c), PT_OK, "init with old_data");
    ok(again.slab->data == c, "the old root is kept");
    is_int(lookup(again.slab->data, 50, 0, NOW, &n), PT_CACHE_FOUND,
           "its entries survive");
    ok(body_is(n, 1000, 50), "with their bodies");
    pt_cache_release(c, n);

    zone_close(&z);
}


/* Child of the cross-process test: claims, waits for the go, publishes. */
static int
child_publish(pt_cache_t *c, int to_parent, int from_parent)
{
    char              b;
    pt_cache_node_t  *p;

    pt_shmtx_set_pid(getpid());

    if (lookup(c, 60, 1, NOW, &p) != PT_CACHE_CLAIMED) {
        return 1;
    }

    if (write(to_parent, "c", 1) != 1 || read(from_parent, &b, 1) != 1) {
        return 2;
    }

    if (put(c, &route_a, 60, 70000, -1, 4096) != PT_OK) {
        return 3;
    }

    /* Replaced by our entry: unlinked, still ours to release. */
    if (p->linked || p->refs != 1) {
        return 7;
    }

    pt_cache_release(c, p);

    if (write(to_parent, "p", 1) != 1 || read(from_parent, &b, 1) != 1) {
        return 4;
    }

    /* Taken over by the parent meanwhile: our unclaim leaves it alone,
     * our release drops only our reference. */
    if (lookup(c, 61, 1, NOW, &p) != PT_CACHE_CLAIMED
        || write(to_parent, "q", 1) != 1 || read(from_parent, &b, 1) != 1)
    {
        return 5;
    }

    pt_cache_unclaim(c, p);
    pt_cache_release(c, p);

    return write(to_parent, "u", 1) == 1 ? 0 : 6;
}


static void
test_processes(void)
{
    int               up[2], down[2], status;
    char              b;
    pid_t             pid;
    size_t            base;
    zone_t            z;
    pt_cache_t       *c;
    pt_cache_node_t  *n, *p;

    if (zone_open(&z, 1024 * 1024) != PT_OK || pipe(up) || pipe(down)) {
        ok(0, "processes: zone and pipes");
        return;
    }

    c = z.cache;
    base = used(&z);
    fflush(stdout);

    pid = fork();

    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        _exit(child_publish(c, up[1], down[0]));
    }

    close(up[1]);
    close(down[0]);

    ok(read(up[0], &b, 1) == 1 && b == 'c', "child claimed hash 60");
    is_int(lookup(c, 60, 1, NOW + 1, &n), PT_CACHE_BUSY, "parent: BUSY");
    is_int(lookup(c, 60, 0, NOW + 1, &n), PT_CACHE_BUSY,
           "parent, claim=0: BUSY on the child's live claim");
    ok(write(down[1], "g", 1) == 1, "go");
    ok(read(up[0], &b, 1) == 1 && b == 'p', "child published");
    is_int(lookup(c, 60, 1, NOW + 2, &n), PT_CACHE_FOUND, "parent: FOUND");
    ok(n && body_is(n, 70000, 60) && n->updater == 0,
       "the child's body, no claim left");

    if (n) {
        pt_cache_release(c, n);
    }

    ok(write(down[1], "g", 1) == 1 && read(up[0], &b, 1) == 1 && b == 'q',
       "child claimed hash 61");
    is_int(lookup(c, 61, 0, NOW + LOCK_MS, &n), PT_CACHE_NONE,
           "parent, claim=0: NONE on the child's stale claim");
    is_int(lookup(c, 61, 1, NOW + LOCK_MS, &p), PT_CACHE_CLAIMED,
           "parent takes the old claim over");
    ok(p != NULL && p->refs == 2, "referenced by the child and by us");
    ok(write(down[1], "g", 1) == 1 && read(up[0], &b, 1) == 1 && b == 'u',
       "child unclaimed and released");
    is_int(lookup(c, 61, 1, NOW + LOCK_MS + 1, &n), PT_CACHE_BUSY,
           "the taken-over claim was left alone");
    ok(p->updater == getpid() && p->linked && p->refs == 1,
       "and is still ours, linked, with our reference only");

    ok(waitpid(pid, &status, 0) == pid && WIFEXITED(status)
       && WEXITSTATUS(status) == 0, "child exited cleanly (%d)",
       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    is_int(z.zone.slab->mutex.owner, 0, "lock free");

    pt_cache_unclaim(c, p);
    pt_cache_release(c, p);
    pt_cache_purge(c, &route_a, &(pt_str_t) pt_string(""), 1);
    is_int(used(&z), base, "zone back to the baseline");

    close(up[0]);
    close(down[1]);
    zone_close(&z);
}


/* The small end: a zone with no room for a placeholder gives NONE. */
static void
test_full(void)
{
    zone_t            z;
    pt_cache_node_t  *p;

    if (zone_open(&z, 16 * 4096) != PT_OK) {
        ok(0, "full: zone");
        return;
    }

    /* Take every slot and page there is; the zone is thrown away. */
    while (pt_slab_alloc(z.zone.slab, 8) != NULL
           || pt_slab_alloc(z.zone.slab, sizeof(pt_cache_node_t)) != NULL)
    {
        /* void */
    }

    is_int(lookup(z.cache, 70, 1, NOW, &p), PT_CACHE_NONE,
           "no room for a placeholder: NONE");
    ok(p == NULL, "and no node");
    is_int(lookup(z.cache, 70, 0, NOW, &p), PT_CACHE_NONE,
           "nothing was left claimed");

    zone_close(&z);
}


int
main(void)
{
    if (tap_log_open("test_cache_store") != 0) {
        return 1;
    }

    tap_plan(206);

    test_claims();
    test_bodies();
    test_writer_errors();
    test_replace();
    test_purge();
    test_placeholder_refs();
    test_eviction();
    test_reload();
    test_processes();
    test_full();

    is_int(tap_log_count("[alert]"), 0, "no bad free was logged by the slab");

    tap_log_close();

    return tap_done();
}
