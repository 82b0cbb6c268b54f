/*
 * test_hash.c: the hash table (core/pt_hash.c).
 */

#include "pt_core.h"
#include "pt_hash.h"
#include "pt_palloc.h"
#include "tap.h"


#define S(lit)      lit, sizeof(lit) - 1
#define MANY        20000


static int  vals[8];


static void
test_basic(pt_pool_t *pool)
{
    void       *old;
    pt_hash_t   t;

    is_int(pt_hash_init(&t, pool, 4, 0), PT_OK, "init");
    ok(pt_hash_find(&t, S("a")) == NULL, "miss in an empty table");

    is_int(pt_hash_add(&t, S("alpha"), &vals[0], NULL), PT_OK, "add alpha");
    is_int(pt_hash_add(&t, S("beta"), &vals[1], NULL), PT_OK, "add beta");
    is_int(pt_hash_add(&t, S("alphabet"), &vals[2], NULL), PT_OK,
           "add alphabet");

    ok(pt_hash_find(&t, S("alpha")) == &vals[0], "find alpha");
    ok(pt_hash_find(&t, S("beta")) == &vals[1], "find beta");
    ok(pt_hash_find(&t, S("alphabet")) == &vals[2], "find alphabet");
    ok(pt_hash_find(&t, S("alph")) == NULL, "a prefix of a key is a miss");
    ok(pt_hash_find(&t, S("alphab")) == NULL, "a longer non-key is a miss");
    ok(pt_hash_find(&t, S("Alpha")) == NULL, "case counts by default");
    ok(pt_hash_find(&t, "alpha\0", 6) == NULL, "a trailing NUL counts");
    is_int(t.n, 3, "three keys held");

    old = NULL;
    is_int(pt_hash_add(&t, S("beta"), &vals[3], &old), PT_DECLINED,
           "a duplicate is declined");
    ok(old == &vals[1], "and reports the value already there");
    ok(pt_hash_find(&t, S("beta")) == &vals[1], "which is unchanged");
    is_int(pt_hash_add(&t, S("beta"), &vals[3], NULL), PT_DECLINED,
           "a duplicate without old is declined too");
    is_int(t.n, 3, "still three keys");
}


static void
test_copy_and_binary(pt_pool_t *pool)
{
    char        key[8];
    pt_hash_t   t;

    is_int(pt_hash_init(&t, pool, 0, 0), PT_OK, "init for zero keys");

    memcpy(key, "k\0ey", 4);
    is_int(pt_hash_add(&t, key, 4, &vals[0], NULL), PT_OK,
           "add a key with a NUL byte");
    memcpy(key, "XXXX", 4);
    ok(pt_hash_find(&t, "k\0ey", 4) == &vals[0],
       "the table kept its own copy of the key");
    ok(pt_hash_find(&t, "k", 1) == NULL, "the NUL does not end the key");

    /* The empty key is a key like any other. */
    ok(pt_hash_find(&t, "", 0) == NULL, "empty key: miss");
    is_int(pt_hash_add(&t, "", 0, &vals[1], NULL), PT_OK, "add empty key");
    ok(pt_hash_find(&t, NULL, 0) == &vals[1], "find empty key");
    is_int(pt_hash_add(&t, NULL, 0, &vals[2], NULL), PT_DECLINED,
           "empty key twice is a duplicate");
}


static void
test_caseless(pt_pool_t *pool)
{
    void       *old;
    pt_hash_t   t;

    is_int(pt_hash_init(&t, pool, 2, PT_HASH_CASELESS), PT_OK,
           "init caseless");
    is_int(pt_hash_add(&t, S("Content-Length"), &vals[0], NULL), PT_OK,
           "add Content-Length");

    ok(pt_hash_find(&t, S("content-length")) == &vals[0], "lower case");
    ok(pt_hash_find(&t, S("CONTENT-LENGTH")) == &vals[0], "upper case");
    ok(pt_hash_find(&t, S("cOnTeNt-LeNgTh")) == &vals[0], "mixed case");
    ok(pt_hash_find(&t, S("content_length")) == NULL,
       "'_' is not '-' (only letters fold)");
    ok(pt_hash_find(&t, S("content-lengt")) == NULL, "shorter: miss");

    /* '@' and '`' differ from each other only in the bit case folding
     * flips on letters: folding must stop at letters. */
    is_int(pt_hash_add(&t, S("@"), &vals[1], NULL), PT_OK, "add '@'");
    ok(pt_hash_find(&t, S("`")) == NULL, "'`' is not '@'");

    old = NULL;
    is_int(pt_hash_add(&t, S("CONTENT-length"), &vals[2], &old),
           PT_DECLINED, "a key differing in case is a duplicate");
    ok(old == &vals[0], "and reports the first");

    is_int(pt_hash_key(&t, S("Host")) == pt_hash_key(&t, S("hOST")), 1,
           "caseless hashes fold case");
}


/* The running hash gives every prefix's hash in one pass, as the router
 * uses it. */
static void
test_running(pt_pool_t *pool)
{
    int          good;
    size_t       i;
    uint64_t     h;
    pt_hash_t    t, lc;
    const char  *path = "/svc/items/42";

    is_int(pt_hash_init(&t, pool, 4, 0), PT_OK, "init");
    is_int(pt_hash_init(&lc, pool, 4, PT_HASH_CASELESS), PT_OK,
           "init caseless");
    is_int(pt_hash_add(&t, path, 4, &vals[0], NULL), PT_OK, "add /svc");
    is_int(pt_hash_add(&t, path, 10, &vals[1], NULL), PT_OK,
           "add /svc/items");

    good = 1;
    h = pt_hash_start();

    for (i = 0; i <= strlen(path); i++) {
        if (pt_hash_end(h) != pt_hash_key(&t, path, i)
            || pt_hash_end(h) != pt_hash_key(&lc, path, i))
        {
            good = 0;
        }

        if (i < strlen(path)) {
            h = pt_hash_step(h, (unsigned char) path[i]);
        }
    }

    ok(good, "the running hash at each length is pt_hash_key of the prefix");

    h = pt_hash_start();
    for (i = 0; i < 4; i++) {
        h = pt_hash_step(h, (unsigned char) path[i]);
    }

    ok(pt_hash_find_hashed(&t, pt_hash_end(h), path, 4) == &vals[0],
       "find_hashed at length 4");

    for ( /* void */ ; i < 10; i++) {
        h = pt_hash_step(h, (unsigned char) path[i]);
    }

    ok(pt_hash_find_hashed(&t, pt_hash_end(h), path, 10) == &vals[1],
       "find_hashed at length 10");
    ok(pt_hash_find_hashed(&t, pt_hash_end(h), path, 9) == NULL,
       "find_hashed with the right hash but another key misses");
}


/* Many keys: the table grows from its smallest size, every key stays
 * found, and keys that differ in one byte or share the low hash bits
 * (colliding slots) are told apart. */
static void
test_many(pt_pool_t *pool)
{
    int         good, len;
    char        key[32];
    size_t      i, max_probe, run;
    uintptr_t   v;
    pt_hash_t   t;

    is_int(pt_hash_init(&t, pool, 1, 0), PT_OK, "init for one key");

    good = 1;
    for (i = 0; i < MANY; i++) {
        len = snprintf(key, sizeof(key), "/svc%05zu/", i);
        if (pt_hash_add(&t, key, (size_t) len, (void *) (i + 1), NULL)
            != PT_OK)
        {
            good = 0;
        }
    }

    ok(good, "%d keys added", MANY);
    is_int(t.n, MANY, "%d keys held", MANY);
    ok(2 * t.n <= t.mask + 1, "at most half full after growth (%zu slots)",
       t.mask + 1);

    good = 1;
    for (i = 0; i < MANY; i++) {
        len = snprintf(key, sizeof(key), "/svc%05zu/", i);
        v = (uintptr_t) pt_hash_find(&t, key, (size_t) len);
        if (v != i + 1) {
            good = 0;
        }
    }

    ok(good, "every key found with its value");

    good = 1;
    for (i = 0; i < MANY; i++) {
        len = snprintf(key, sizeof(key), "/svc%05zu", i);
        if (pt_hash_find(&t, key, (size_t) len) != NULL) {
            good = 0;
        }
        len = snprintf(key, sizeof(key), "/svc%05zu/", i + MANY);
        if (pt_hash_find(&t, key, (size_t) len) != NULL) {
            good = 0;
        }
    }

    ok(good, "%d near misses all miss", 2 * MANY);

    good = 1;
    for (i = 0; i < MANY; i++) {
        len = snprintf(key, sizeof(key), "/svc%05zu/", i);
        if (pt_hash_add(&t, key, (size_t) len, &vals[0], NULL)
            != PT_DECLINED)
        {
            good = 0;
        }
    }

    ok(good, "every key again is a duplicate");

    /* The finish spreads sequential keys: no long runs of full slots. */
    max_probe = 0;
    run = 0;
    for (i = 0; i <= t.mask; i++) {
        run = t.slots[i].elt ? run + 1 : 0;
        max_probe = pt_max(max_probe, run);
    }

    ok(max_probe < 64, "longest run of full slots %zu", max_probe);
}


/* Keys that all share a slot still work, through probing. */
static void
test_collisions(pt_pool_t *pool)
{
    int         good;
    size_t      i, n;
    char        keys[64][8];
    uint64_t    h0;
    pt_hash_t   t;

    is_int(pt_hash_init(&t, pool, 64, 0), PT_OK, "init for 64 keys");

    /* Find keys whose hashes pick the same first slot. */
    h0 = pt_hash_key(&t, "c0", 2) & t.mask;
    n = 0;

    for (i = 0; i < 1000000 && n < 16; i++) {
        snprintf(keys[n], sizeof(keys[n]), "c%zu", i);
        if ((pt_hash_key(&t, keys[n], strlen(keys[n])) & t.mask) == h0) {
            n++;
        }
    }

    is_int(n, 16, "16 keys found for one slot");

    good = 1;
    for (i = 0; i < n; i++) {
        if (pt_hash_add(&t, keys[i], strlen(keys[i]), &vals[i % 8], NULL)
            != PT_OK)
        {
            good = 0;
        }
    }

    for (i = 0; i < n; i++) {
        if (pt_hash_find(&t, keys[i], strlen(keys[i])) != &vals[i % 8]) {
            good = 0;
        }
    }

    ok(good, "colliding keys are all added and found");
    ok(pt_hash_find(&t, S("c-none")) == NULL, "a miss past the cluster");
}


static void
test_limits(pt_pool_t *pool)
{
    pt_hash_t  t;

    /* A size that cannot be allocated is refused before any malloc. */
    is_int(pt_hash_init(&t, pool, SIZE_MAX / 8, 0), PT_ERROR,
           "an impossible size fails cleanly");
    is_int(pt_hash_init(&t, pool, SIZE_MAX, 0), PT_ERROR,
           "SIZE_MAX keys fail cleanly");
}


int
main(void)
{
    pt_pool_t  *pool;

    tap_plan(60);

    pool = pt_pool_create(PT_POOL_DEFAULT_SIZE);
    if (pool == NULL) {
        printf("Bail out! no memory\n");
        return 1;
    }

    test_basic(pool);
    test_copy_and_binary(pool);
    test_caseless(pool);
    test_running(pool);
    test_many(pool);
    test_collisions(pool);
    test_limits(pool);

    pt_pool_destroy(pool);

    return tap_done();
}
