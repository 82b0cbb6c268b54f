/*
 * pt_auth_cache.c: what a worker already checked, by credential digest.
 *
 * A bcrypt check costs tens of milliseconds and an RS256 verification
 * tens of microseconds; a repeated credential should cost a lookup. The
 * cache is a fixed array of 4-way sets, so its memory is bounded by
 * auth_cache.size and a lookup never allocates: a digest picks its set,
 * a miss replaces the set's free, expired or soonest-expiring entry. The
 * key is the SHA-256 of the credential with a tag, never the credential
 * itself.
 */

#include <openssl/evp.h>

#include "pt_auth.h"
#include "pt_time.h"


#define PT_AUTH_WAYS  4


static pt_auth_cache_entry_t  *pt_auth_entries;
static size_t                  pt_auth_sets_mask;


int
pt_auth_cache_init(pt_uint_t size)
{
    size_t  sets;

    for (sets = 1; sets * PT_AUTH_WAYS < size; sets <<= 1) {
        /* void */
    }

    pt_auth_entries = calloc(sets * PT_AUTH_WAYS,
                             sizeof(pt_auth_cache_entry_t));
    if (pt_auth_entries == NULL) {
        return PT_ERROR;
    }

    pt_auth_sets_mask = sets - 1;

    return PT_OK;
}


void
pt_auth_cache_clear(pt_auth_cache_entry_t *e)
{
    if (e->claims) {
        json_decref(e->claims);
    }

    free(e->name.data);
    free(e->groups.data);
    memset(e, 0, sizeof(*e));
}


void
pt_auth_cache_free(void)
{
    size_t  i;

    if (pt_auth_entries == NULL) {
        return;
    }

    for (i = 0; i < (pt_auth_sets_mask + 1) * PT_AUTH_WAYS; i++) {
        pt_auth_cache_clear(&pt_auth_entries[i]);
    }

    free(pt_auth_entries);
    pt_auth_entries = NULL;
}


static pt_auth_cache_entry_t *
pt_auth_cache_set(const u_char digest[32])
{
    uint64_t  h;

    memcpy(&h, digest, sizeof(h));

    return &pt_auth_entries[(h & pt_auth_sets_mask) * PT_AUTH_WAYS];
}


pt_auth_cache_entry_t *
pt_auth_cache_find(const u_char digest[32])
{
    pt_uint_t               i;
    pt_auth_cache_entry_t  *set;

    if (pt_auth_entries == NULL) {
        return NULL;
    }

    set = pt_auth_cache_set(digest);

    for (i = 0; i < PT_AUTH_WAYS; i++) {
        if (set[i].expires == 0 || memcmp(set[i].digest, digest, 32) != 0) {
            continue;
        }

        if (set[i].expires <= pt_current_msec) {
            pt_auth_cache_clear(&set[i]);
            return NULL;
        }

        return &set[i];
    }

    return NULL;
}


pt_auth_cache_entry_t *
pt_auth_cache_slot(const u_char digest[32])
{
    pt_uint_t               i;
    pt_auth_cache_entry_t  *set, *victim;

    if (pt_auth_entries == NULL) {
        return NULL;
    }

    set = pt_auth_cache_set(digest);
    victim = &set[0];

    for (i = 0; i < PT_AUTH_WAYS; i++) {
        if (set[i].expires == 0 || set[i].expires <= pt_current_msec
            || memcmp(set[i].digest, digest, 32) == 0)
        {
            victim = &set[i];
            break;
        }

        if (set[i].expires < victim->expires) {
            victim = &set[i];
        }
    }

    pt_auth_cache_clear(victim);
    memcpy(victim->digest, digest, 32);

    return victim;
}


/* SHA-256 is fetched once per process and its context reused: OpenSSL 3
 * would otherwise look the algorithm up and allocate a context on every
 * request. */
static EVP_MD_CTX *
pt_auth_sha256_ctx(void)
{
    static EVP_MD      *md;
    static EVP_MD_CTX  *ctx;

    if (md == NULL) {
        md = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (md == NULL) {
            return NULL;
        }
    }

    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL) {
            return NULL;
        }
    }

    return EVP_DigestInit_ex2(ctx, md, NULL) ? ctx : NULL;
}


int
pt_auth_digest(const char *tag, const void *a, size_t alen, const void *b,
    size_t blen, u_char digest[32])
{
    EVP_MD_CTX  *md;

    md = pt_auth_sha256_ctx();
    if (md == NULL) {
        return PT_ERROR;
    }

    /* The NUL after the tag and the length of `a` keep the fields apart:
     * ("ab", "c") and ("a", "bc") must not meet. A NULL tag hashes `a`
     * alone (an API key, as the config stores it). */
    if (tag != NULL
        && (!EVP_DigestUpdate(md, tag, strlen(tag) + 1)
            || !EVP_DigestUpdate(md, &alen, sizeof(alen))))
    {
        return PT_ERROR;
    }

    if ((alen && !EVP_DigestUpdate(md, a, alen))
        || (blen && !EVP_DigestUpdate(md, b, blen))
        || !EVP_DigestFinal_ex(md, digest, NULL))
    {
        return PT_ERROR;
    }

    return PT_OK;
}
