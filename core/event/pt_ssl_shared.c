/*
 * pt_ssl_shared.c: what lets a TLS session resume in whichever worker
 * takes the next connection (see pt_ssl.h).
 *
 * Ticket keys: the "tls" zone holds the current key and the previous
 * one. The master makes the first key when it creates the zone, before
 * any worker exists, and the next ones when they are due (its loop looks
 * about once a second). A worker that needs a key when it is overdue
 * (a master late by more than PT_SSL_TICKET_GRACE_MS) makes one itself,
 * so a stuck master never stops rotation. A new key is made outside the
 * lock (random bytes may take a syscall) and installed under the zone
 * lock unless another process was quicker; the current key becomes the
 * previous one, still
 * accepted for one more period, so a ticket within the session lifetime
 * always opens. Each process keeps a copy of the keys, tagged with the
 * zone's version, so a handshake reads the zone without the lock.
 *
 * Session cache: for TLS 1.2 clients without tickets. A hash of session
 * ids to their DER form, with an LRU list; when the zone is full, the
 * least recently used sessions make room, and a session that still does
 * not fit is simply not cached. Critical sections copy bytes and follow
 * pointers, nothing more: (de)serializing happens outside the lock.
 */

#include <openssl/rand.h>

#include "pt_ssl_conn.h"
#include "pt_conf.h"
#include "pt_log.h"
#include "pt_palloc.h"
#include "pt_queue.h"
#include "pt_time.h"


#define PT_SSL_TICKETS_LAYOUT   0x50545401
#define PT_SSL_SESSIONS_LAYOUT  0x50545301

/* Sessions pushed out at most per store, to bound the critical section;
 * expired ones taken from the tail on each store. */
#define PT_SSL_EVICT_MAX        16
#define PT_SSL_EXPIRE_MAX       2


typedef struct {
    uint32_t              layout;
    uint32_t              nkeys;        /* 1 or 2                         */
    volatile uint64_t     version;      /* bumped on every rotation       */
    volatile uint64_t     rotate_at;    /* epoch ms: keys[0] is due       */
    pt_ssl_ticket_key_t   keys[2];      /* current, previous              */
    volatile uint64_t     counters[PT_SSL_NSTATS];
} pt_ssl_tickets_root_t;


typedef struct pt_ssl_sess_s  pt_ssl_sess_t;

struct pt_ssl_sess_s {
    pt_queue_t            lru;          /* most recently used first       */
    pt_ssl_sess_t        *next;         /* same bucket                    */
    uint64_t              expires;      /* epoch seconds                  */
    uint32_t              hash;
    uint16_t              len;          /* of der                         */
    uint8_t               id_len;
    unsigned char         id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    unsigned char         der[];
};

typedef struct {
    uint32_t              layout;
    uint32_t              mask;         /* buckets - 1                    */
    pt_ssl_sess_t       **buckets;
    pt_queue_t            lru;
    volatile uint64_t     count;
    volatile uint64_t     evicted;
} pt_ssl_sessions_root_t;


/* This process's copy of the keys. */
static struct {
    pt_ssl_tickets_root_t  *root;
    uint64_t                version;
    unsigned                nkeys;
    pt_ssl_ticket_key_t     keys[2];
} pt_ssl_keys;


static int pt_ssl_key_make(pt_ssl_ticket_key_t *key);
static void pt_ssl_keys_rotate(pt_slab_pool_t *slab,
    pt_ssl_tickets_root_t *root);
static uint32_t pt_ssl_sess_hash(const unsigned char *id, size_t len);
static pt_ssl_sess_t **pt_ssl_sess_find(pt_ssl_sessions_root_t *root,
    const unsigned char *id, size_t len, uint32_t hash);
static void pt_ssl_sess_unlink(pt_slab_pool_t *slab,
    pt_ssl_sessions_root_t *root, pt_ssl_sess_t *s);


pt_ssl_shared_t *
pt_ssl_shared_create(pt_conf_t *cf)
{
    return pt_pcalloc(cf->pool, sizeof(pt_ssl_shared_t));
}


void
pt_ssl_shared_attach(pt_ssl_shared_t *sh, pt_slab_pool_t *tickets,
    pt_slab_pool_t *sessions)
{
    sh->tickets = tickets;
    sh->sessions = sessions;
}


/* ---- Ticket keys --------------------------------------------------- */

int
pt_ssl_tickets_zone_init(pt_slab_pool_t *slab, void *old_data)
{
    pt_ssl_tickets_root_t  *root;

    root = old_data;

    if (root && root->layout == PT_SSL_TICKETS_LAYOUT) {
        return PT_OK;       /* the keys go on: sessions keep resuming */
    }

    root = pt_slab_calloc(slab, sizeof(pt_ssl_tickets_root_t));
    if (root == NULL) {
        return PT_ERROR;
    }

    if (pt_ssl_key_make(&root->keys[0]) != PT_OK) {
        pt_slab_free(slab, root);
        return PT_ERROR;
    }

    root->layout = PT_SSL_TICKETS_LAYOUT;
    root->nkeys = 1;
    root->version = 1;
    root->rotate_at = pt_current_epoch_msec + PT_SSL_TICKET_ROTATE_MS;
    slab->data = root;

    return PT_OK;
}


static int
pt_ssl_key_make(pt_ssl_ticket_key_t *key)
{
    if (RAND_bytes((unsigned char *) key, sizeof(pt_ssl_ticket_key_t)) != 1)
    {
        pt_log_error(PT_LOG_ALERT, NULL, 0,
                     "RAND_bytes() failed: cannot make a TLS ticket key");
        return PT_ERROR;
    }

    return PT_OK;
}


void
pt_ssl_shared_tick(pt_ssl_shared_t *sh)
{
    uint64_t                now, at;
    pt_ssl_tickets_root_t  *root;

    root = (sh && sh->tickets) ? sh->tickets->data : NULL;

    if (root == NULL) {
        return;
    }

    now = pt_current_epoch_msec;
    at = __atomic_load_n(&root->rotate_at, __ATOMIC_ACQUIRE);

    /* Due, or the clock went back by more than a period. */
    if (now >= at || at - now > PT_SSL_TICKET_ROTATE_MS) {
        pt_ssl_keys_rotate(sh->tickets, root);
    }
}


int
pt__ssl_ticket_keys(pt_slab_pool_t *slab, const pt_ssl_ticket_key_t **keys)
{
    uint64_t                now, at, version;
    pt_ssl_tickets_root_t  *root;

    root = slab ? slab->data : NULL;

    if (root == NULL) {
        return 0;
    }

    now = pt_current_epoch_msec;
    at = __atomic_load_n(&root->rotate_at, __ATOMIC_ACQUIRE);

    /* Overdue (the master is late), or the clock went back by more than
     * a period. */
    if ((now >= at && now - at >= PT_SSL_TICKET_GRACE_MS)
        || (now < at && at - now > PT_SSL_TICKET_ROTATE_MS))
    {
        pt_ssl_keys_rotate(slab, root);
    }

    version = __atomic_load_n(&root->version, __ATOMIC_ACQUIRE);

    if (pt_ssl_keys.root != root || pt_ssl_keys.version != version) {
        pt_shmtx_lock(&slab->mutex);

        pt_ssl_keys.root = root;
        pt_ssl_keys.version = root->version;
        pt_ssl_keys.nkeys = root->nkeys;
        memcpy(pt_ssl_keys.keys, root->keys, sizeof(root->keys));

        pt_shmtx_unlock(&slab->mutex);
    }

    *keys = pt_ssl_keys.keys;

    return (int) pt_ssl_keys.nkeys;
}


static void
pt_ssl_keys_rotate(pt_slab_pool_t *slab, pt_ssl_tickets_root_t *root)
{
    uint64_t             now, at;
    pt_ssl_ticket_key_t  fresh;

    if (pt_ssl_key_make(&fresh) != PT_OK) {
        return;             /* the current key serves on */
    }

    pt_shmtx_lock(&slab->mutex);

    now = pt_current_epoch_msec;
    at = root->rotate_at;

    if (now >= at || at - now > PT_SSL_TICKET_ROTATE_MS) {
        /* The current key becomes the previous one, unless it has been
         * due for a whole period already: no ticket was sealed with it
         * since it was due (the first to need a key rotates), so its
         * tickets are older than any session may live. */
        if (now >= at && now - at >= PT_SSL_TICKET_ROTATE_MS) {
            root->nkeys = 1;

        } else {
            root->keys[1] = root->keys[0];
            root->nkeys = 2;
        }

        root->keys[0] = fresh;

        /* A key seals tickets for a whole period from when it is made. */
        __atomic_store_n(&root->rotate_at, now + PT_SSL_TICKET_ROTATE_MS,
                         __ATOMIC_RELEASE);
        __atomic_add_fetch(&root->version, 1, __ATOMIC_RELEASE);
    }

    pt_shmtx_unlock(&slab->mutex);

    OPENSSL_cleanse(&fresh, sizeof(fresh));
}


void
pt__ssl_count(pt_ssl_shared_t *sh, unsigned stat)
{
    pt_ssl_tickets_root_t  *root;

    root = (sh && sh->tickets) ? sh->tickets->data : NULL;

    if (root == NULL || stat >= PT_SSL_NSTATS) {
        return;
    }

    __atomic_add_fetch(&root->counters[stat], 1, __ATOMIC_RELAXED);
}


void
pt_ssl_shared_stats(pt_ssl_shared_t *sh, pt_ssl_stats_t *st)
{
    unsigned                 i;
    pt_ssl_tickets_root_t   *root;
    pt_ssl_sessions_root_t  *sroot;

    memset(st, 0, sizeof(pt_ssl_stats_t));

    root = (sh && sh->tickets) ? sh->tickets->data : NULL;
    sroot = (sh && sh->sessions) ? sh->sessions->data : NULL;

    if (root) {
        for (i = 0; i < PT_SSL_NSTATS; i++) {
            st->counters[i] = __atomic_load_n(&root->counters[i],
                                              __ATOMIC_RELAXED);
        }
    }

    if (sroot) {
        st->sessions = __atomic_load_n(&sroot->count, __ATOMIC_RELAXED);
        st->evicted = __atomic_load_n(&sroot->evicted, __ATOMIC_RELAXED);
    }
}


/* ---- Session cache ------------------------------------------------- */

int
pt_ssl_sessions_zone_init(pt_slab_pool_t *slab, void *old_data)
{
    size_t                   n, cap;
    pt_ssl_sessions_root_t  *root;

    root = old_data;

    if (root && root->layout == PT_SSL_SESSIONS_LAYOUT) {
        return PT_OK;
    }

    root = pt_slab_calloc(slab, sizeof(pt_ssl_sessions_root_t));
    if (root == NULL) {
        return PT_ERROR;
    }

    /* About one bucket per two sessions of a typical 200-300 bytes. */
    cap = (size_t) (slab->end - slab->start) / 512;

    for (n = 64; n < cap && n < ((size_t) 1 << 20); n <<= 1) {
        /* void */
    }

    root->buckets = pt_slab_calloc(slab, n * sizeof(pt_ssl_sess_t *));
    if (root->buckets == NULL) {
        pt_slab_free(slab, root);
        return PT_ERROR;
    }

    root->layout = PT_SSL_SESSIONS_LAYOUT;
    root->mask = (uint32_t) (n - 1);
    pt_queue_init(&root->lru);
    slab->data = root;

    return PT_OK;
}


/* Session ids are random bytes the server made, but a client may ask
 * for any id: FNV-1a keeps a chosen id from picking its bucket cheaply
 * (lookups only walk what is there; inserts use our own ids). */
static uint32_t
pt_ssl_sess_hash(const unsigned char *id, size_t len)
{
    size_t    i;
    uint32_t  h;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h = (h ^ id[i]) * 16777619u;
    }

    return h;
}


static pt_ssl_sess_t **
pt_ssl_sess_find(pt_ssl_sessions_root_t *root, const unsigned char *id,
    size_t len, uint32_t hash)
{
    pt_ssl_sess_t  **link;

    for (link = &root->buckets[hash & root->mask]; *link;
         link = &(*link)->next)
    {
        if ((*link)->hash == hash && (*link)->id_len == len
            && memcmp((*link)->id, id, len) == 0)
        {
            return link;
        }
    }

    return NULL;
}


/* Takes s out of its bucket and the LRU list and frees it; the lock is
 * held. */
static void
pt_ssl_sess_unlink(pt_slab_pool_t *slab, pt_ssl_sessions_root_t *root,
    pt_ssl_sess_t *s)
{
    pt_ssl_sess_t  **link;

    for (link = &root->buckets[s->hash & root->mask]; *link;
         link = &(*link)->next)
    {
        if (*link == s) {
            *link = s->next;
            break;
        }
    }

    pt_queue_remove(&s->lru);
    pt_slab_free_locked(slab, s);
    root->count--;
}


int
pt__ssl_session_store(pt_slab_pool_t *slab, const unsigned char *id,
    size_t id_len, const unsigned char *der, size_t len, uint64_t expires)
{
    uint32_t                 hash;
    uint64_t                 now;
    pt_uint_t                i;
    pt_queue_t              *q;
    pt_ssl_sess_t           *s, **link;
    pt_ssl_sessions_root_t  *root;

    root = slab ? slab->data : NULL;

    if (root == NULL || id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH
        || len == 0 || len > PT_SSL_SESSION_MAX)
    {
        return PT_DECLINED;
    }

    hash = pt_ssl_sess_hash(id, id_len);
    now = pt_current_epoch_msec / 1000;

    pt_shmtx_lock(&slab->mutex);

    /* Expired sessions go first, a few per store, oldest first. */
    for (i = 0; i < PT_SSL_EXPIRE_MAX && !pt_queue_empty(&root->lru); i++) {
        q = pt_queue_last(&root->lru);
        s = pt_queue_data(q, pt_ssl_sess_t, lru);

        if (s->expires > now) {
            break;
        }

        pt_ssl_sess_unlink(slab, root, s);
    }

    link = pt_ssl_sess_find(root, id, id_len, hash);
    if (link) {
        pt_ssl_sess_unlink(slab, root, *link);
    }

    s = pt_slab_alloc_locked(slab, sizeof(pt_ssl_sess_t) + len);

    for (i = 0; s == NULL && i < PT_SSL_EVICT_MAX
                && !pt_queue_empty(&root->lru); i++)
    {
        q = pt_queue_last(&root->lru);
        pt_ssl_sess_unlink(slab, root, pt_queue_data(q, pt_ssl_sess_t, lru));
        root->evicted++;

        s = pt_slab_alloc_locked(slab, sizeof(pt_ssl_sess_t) + len);
    }

    if (s == NULL) {
        pt_shmtx_unlock(&slab->mutex);
        return PT_DECLINED;
    }

    s->expires = expires;
    s->hash = hash;
    s->len = (uint16_t) len;
    s->id_len = (uint8_t) id_len;
    memcpy(s->id, id, id_len);
    memcpy(s->der, der, len);

    s->next = root->buckets[hash & root->mask];
    root->buckets[hash & root->mask] = s;
    pt_queue_insert_head(&root->lru, &s->lru);
    root->count++;

    pt_shmtx_unlock(&slab->mutex);

    return PT_OK;
}


size_t
pt__ssl_session_fetch(pt_slab_pool_t *slab, const unsigned char *id,
    size_t id_len, unsigned char *buf, size_t size)
{
    size_t                   n;
    uint32_t                 hash;
    pt_ssl_sess_t          **link, *s;
    pt_ssl_sessions_root_t  *root;

    root = slab ? slab->data : NULL;

    if (root == NULL || id_len == 0
        || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH)
    {
        return 0;
    }

    hash = pt_ssl_sess_hash(id, id_len);
    n = 0;

    pt_shmtx_lock(&slab->mutex);

    link = pt_ssl_sess_find(root, id, id_len, hash);

    if (link) {
        s = *link;

        if (s->expires <= pt_current_epoch_msec / 1000) {
            pt_ssl_sess_unlink(slab, root, s);

        } else if (s->len <= size) {
            n = s->len;
            memcpy(buf, s->der, n);
            pt_queue_remove(&s->lru);
            pt_queue_insert_head(&root->lru, &s->lru);
        }
    }

    pt_shmtx_unlock(&slab->mutex);

    return n;
}


void
pt__ssl_session_remove(pt_slab_pool_t *slab, const unsigned char *id,
    size_t id_len)
{
    uint32_t                 hash;
    pt_ssl_sess_t          **link;
    pt_ssl_sessions_root_t  *root;

    root = slab ? slab->data : NULL;

    if (root == NULL || id_len == 0
        || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH)
    {
        return;
    }

    hash = pt_ssl_sess_hash(id, id_len);

    pt_shmtx_lock(&slab->mutex);

    link = pt_ssl_sess_find(root, id, id_len, hash);
    if (link) {
        pt_ssl_sess_unlink(slab, root, *link);
    }

    pt_shmtx_unlock(&slab->mutex);
}
