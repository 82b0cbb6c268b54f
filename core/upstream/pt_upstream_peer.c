/*
 * pt_upstream_peer.c: peers: their shared state in the "upstream" zone,
 * each worker's view of them, the built-in balancer, passive health, the
 * retry budget, keep-alive pools and connecting.
 *
 * The zone's root lists every peer entry ever made (keyed by
 * "upstream/address", never freed: requests in flight keep pointers to
 * them) and one group per upstream with its current set. Writers (the
 * master at load, the helper after DNS) replace a group's set under the
 * zone lock and bump its version; a worker notices the version on its
 * next pick and copies the set, keeping its own state for peers that
 * stayed.
 */

#include <netinet/tcp.h>
#include <sys/socket.h>

#include "pt_upstream_conf.h"
#include "pt_ssl.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_UPSTREAM_LAYOUT       0x50550002
#define PT_UPSTREAM_IDLE_MSEC    60000
#define PT_UPSTREAM_PEAK_MSEC    10000
#define PT_UPSTREAM_BUDGET_MSEC  10000
#define PT_UPSTREAM_BUDGET_MIN   3        /* retries always allowed    */
#define PT_UPSTREAM_BUDGET_RATIO 5        /* else 1 retry per 5 reqs   */

typedef struct {
    uint32_t                layout;
    pt_upstream_shared_t   *peers;
    pt_upstream_group_t    *groups;
} pt_upstream_root_t;


int
pt_upstream_zone_init(pt_shm_zone_t *zone, void *old_data)
{
    pt_upstream_root_t  *root;

    root = old_data;

    if (root && root->layout == PT_UPSTREAM_LAYOUT) {
        return PT_OK;     /* peers and groups still configured survive */
    }

    root = pt_slab_calloc(zone->slab, sizeof(pt_upstream_root_t));
    if (root == NULL) {
        return PT_ERROR;
    }

    root->layout = PT_UPSTREAM_LAYOUT;
    zone->slab->data = root;

    return PT_OK;
}


/* A generation's group for an upstream; the zone lock is held. Each
 * generation has its own peer set, so a draining generation (its helper
 * still resolving old names) can never overwrite the new one's; what must
 * survive reloads, the peers' state, is keyed by address instead. */
static pt_upstream_group_t *
pt_upstream_group_create(pt_slab_pool_t *slab, pt_upstream_t *us,
    uint64_t generation)
{
    char                  key[512];
    size_t                len;
    pt_upstream_root_t   *root;
    pt_upstream_group_t  *g;

    root = slab->data;

    len = (size_t) snprintf(key, sizeof(key), "%.*s#%llu",
                            (int) us->name.len, us->name.data,
                            (unsigned long long) generation);
    len = pt_min(len, sizeof(key) - 1);

    g = pt_slab_calloc_locked(slab, sizeof(pt_upstream_group_t) + len);
    if (g == NULL) {
        return NULL;
    }

    g->key_len = (uint32_t) len;
    memcpy(g->key, key, len);
    g->next = root->groups;
    root->groups = g;

    return g;
}


/* In the master, when a generation is gone: its groups go with it. */
void
pt_upstream_groups_free(pt_cycle_t *cycle)
{
    size_t                    i;
    pt_upstream_t           **us;
    pt_upstream_root_t       *root;
    pt_upstream_group_t     **gp;
    pt_upstream_main_conf_t  *umcf;

    umcf = pt_upstream_main_conf(cycle);
    if (umcf == NULL || umcf->zone == NULL || umcf->zone->slab == NULL) {
        return;
    }

    us = umcf->upstreams.elts;
    root = umcf->zone->slab->data;

    pt_shmtx_lock(&umcf->zone->slab->mutex);

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        for (gp = &root->groups; *gp; gp = &(*gp)->next) {
            if (*gp == us[i]->group) {
                *gp = us[i]->group->next;
                if (us[i]->group->peers) {
                    pt_slab_free_locked(umcf->zone->slab,
                                        us[i]->group->peers);
                }
                pt_slab_free_locked(umcf->zone->slab, us[i]->group);
                us[i]->group = NULL;
                break;
            }
        }
    }

    pt_shmtx_unlock(&umcf->zone->slab->mutex);
}


/* The group the last generation had for this upstream, to start from
 * its peers when a name cannot be resolved at load. */
static pt_upstream_group_t *
pt_upstream_group_prev(pt_slab_pool_t *slab, pt_upstream_t *us,
    pt_upstream_group_t *skip)
{
    pt_upstream_root_t   *root;
    pt_upstream_group_t  *g;

    root = slab->data;

    for (g = root->groups; g; g = g->next) {
        if (g != skip && g->key_len > us->name.len
            && g->key[us->name.len] == '#'
            && memcmp(g->key, us->name.data, us->name.len) == 0)
        {
            return g;
        }
    }

    return NULL;
}


/* In the master: every upstream gets a group of this generation, starting
 * with the peers the previous generation had (if the zone was kept). */
int
pt_upstream_groups_attach(pt_cycle_t *cycle)
{
    size_t                    i;
    pt_slab_pool_t           *slab;
    pt_upstream_group_t      *g, *prev;
    pt_upstream_t           **us;
    pt_upstream_main_conf_t  *umcf;

    umcf = pt_upstream_main_conf(cycle);
    slab = umcf->zone->slab;
    us = umcf->upstreams.elts;

    pt_shmtx_lock(&slab->mutex);

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        us[i]->group = pt_upstream_group_create(slab, us[i],
                                                cycle->generation);
        us[i]->slab = slab;

        if (us[i]->group == NULL) {
            pt_shmtx_unlock(&slab->mutex);
            pt_log_error(pt_cycle_fatal_level, NULL, 0,
                         "upstream zone is full: no room for upstream \"%s\"",
                         us[i]->name.data);
            return PT_ERROR;
        }

        prev = pt_upstream_group_prev(slab, us[i], us[i]->group);

        if (prev && prev->npeers) {
            g = us[i]->group;
            g->peers = pt_slab_alloc_locked(slab,
                                            prev->npeers * sizeof(void *));
            if (g->peers) {
                memcpy(g->peers, prev->peers, prev->npeers * sizeof(void *));
                g->npeers = prev->npeers;
                g->cap = prev->npeers;
            }
        }
    }

    pt_shmtx_unlock(&slab->mutex);

    return PT_OK;
}


/* The entry for an address of an upstream, made if needed (lock held). */
static pt_upstream_shared_t *
pt_upstream_peer_entry(pt_slab_pool_t *slab, pt_upstream_t *us,
    const struct sockaddr_storage *sa, socklen_t len)
{
    char                   text[64], key[512];
    size_t                 klen;
    pt_upstream_root_t    *root;
    pt_upstream_shared_t  *s;

    (void) pt_sock_ntop((const struct sockaddr *) sa, text, sizeof(text), 1);

    klen = (size_t) snprintf(key, sizeof(key), "%.*s/%s",
                             (int) us->name.len, us->name.data, text);
    klen = pt_min(klen, sizeof(key) - 1);

    root = slab->data;

    for (s = root->peers; s; s = s->next) {
        if (s->key_len == klen && memcmp(s->key, key, klen) == 0) {
            return s;
        }
    }

    s = pt_slab_calloc_locked(slab, sizeof(pt_upstream_shared_t) + klen);
    if (s == NULL) {
        return NULL;
    }

    memcpy(&s->sa, sa, len);
    s->socklen = len;
    memcpy(s->text, text, sizeof(text));
    s->healthy = 1;
    s->key_len = (uint32_t) klen;
    memcpy(s->key, key, klen);
    s->next = root->peers;
    root->peers = s;

    return s;
}


int
pt_upstream_set_peers(pt_upstream_t *us, const struct sockaddr_storage *addrs,
    const socklen_t *lens, const int32_t *weights, size_t n)
{
    size_t                  i, j;
    pt_slab_pool_t         *slab;
    pt_upstream_group_t    *g;
    pt_upstream_shared_t  **peers, *s;

    slab = us->slab;
    g = us->group;

    pt_shmtx_lock(&slab->mutex);

    /* An unchanged set keeps its version: workers have nothing to do. */
    if (g->npeers == n) {
        for (i = 0; i < n; i++) {
            if (g->peers[i]->socklen != lens[i]
                || memcmp(&g->peers[i]->sa, &addrs[i], lens[i]) != 0
                || g->peers[i]->weight != weights[i])
            {
                break;
            }
        }

        if (i == n) {
            pt_shmtx_unlock(&slab->mutex);
            return PT_OK;
        }
    }

    if (n > g->cap) {
        peers = pt_slab_alloc_locked(slab, n * sizeof(void *));
        if (peers == NULL) {
            pt_shmtx_unlock(&slab->mutex);
            return PT_ERROR;
        }

        if (g->peers) {
            /* Readers copy under the lock, so the old array can go. */
            pt_slab_free_locked(slab, g->peers);
        }

        g->peers = peers;
        g->cap = (uint32_t) n;
    }

    for (i = 0, j = 0; i < n; i++) {
        s = pt_upstream_peer_entry(slab, us, &addrs[i], lens[i]);
        if (s == NULL) {
            continue;       /* zone full: serve with the peers that fit */
        }

        s->weight = weights[i];
        g->peers[j++] = s;
    }

    g->npeers = (uint32_t) j;
    __atomic_add_fetch(&g->version, 1, __ATOMIC_RELEASE);

    pt_shmtx_unlock(&slab->mutex);

    return j == n ? PT_OK : PT_ERROR;
}


void
pt_upstream_health_reset(pt_upstream_t *us)
{
    uint32_t  i;

    pt_shmtx_lock(&us->slab->mutex);

    for (i = 0; i < us->group->npeers; i++) {
        us->group->peers[i]->healthy = 1;
        us->group->peers[i]->rise = 0;
        us->group->peers[i]->fall = 0;
    }

    pt_shmtx_unlock(&us->slab->mutex);
}


static void pt_upstream_idle_close(pt_connection_t *c);


/* Drop a peer from a worker's view: its idle connections close. */
static void
pt_upstream_peer_drop(pt_upstream_peer_t *p)
{
    pt_queue_t  *q;

    while (!pt_queue_empty(&p->idle)) {
        q = pt_queue_head(&p->idle);
        pt_upstream_idle_close(pt_queue_data(q, pt_connection_t, queue));
    }

    if (p->ssl_session) {
        pt_ssl_session_free(p->ssl_session);
        p->ssl_session = NULL;
    }
}


void
pt_upstream_sync(pt_upstream_t *us)
{
    size_t                  i, j, n;
    uint64_t                version;
    pt_slab_pool_t         *slab;
    pt_upstream_peer_t     *peers, *old;
    pt_upstream_shared_t  **copy;

    version = __atomic_load_n(&us->group->version, __ATOMIC_ACQUIRE);

    if (version == us->version && us->peers) {
        return;
    }

    slab = us->slab;

    pt_shmtx_lock(&slab->mutex);

    n = us->group->npeers;
    copy = malloc((n ? n : 1) * sizeof(void *));
    if (copy) {
        memcpy(copy, us->group->peers, n * sizeof(void *));
    }
    version = us->group->version;

    pt_shmtx_unlock(&slab->mutex);

    peers = calloc(n ? n : 1, sizeof(pt_upstream_peer_t));

    if (copy == NULL || peers == NULL) {
        free(copy);
        free(peers);
        return;             /* keep the old view; try again next time */
    }

    old = us->peers;

    for (i = 0; i < n; i++) {
        peers[i].shared = copy[i];
        pt_queue_init(&peers[i].idle);

        /* A peer that stays keeps its connections and rotation state. */
        for (j = 0; old && j < us->npeers; j++) {
            if (old[j].shared == copy[i]) {
                peers[i] = old[j];
                pt_queue_init(&peers[i].idle);

                while (!pt_queue_empty(&old[j].idle)) {
                    pt_queue_t  *q = pt_queue_head(&old[j].idle);

                    pt_queue_remove(q);
                    pt_queue_insert_tail(&peers[i].idle, q);
                    pt_queue_data(q, pt_connection_t, queue)->data =
                        &peers[i];
                }

                old[j].shared = NULL;
                break;
            }
        }
    }

    for (j = 0; old && j < us->npeers; j++) {
        if (old[j].shared) {
            pt_upstream_peer_drop(&old[j]);
        }
    }

    free(old);
    free(copy);

    us->peers = peers;
    us->npeers = n;
    us->version = version;

    if (us->balancer->update) {
        (void) us->balancer->update(us);
    }
}


int
pt_upstream_peer_usable(pt_upstream_peer_t *peer)
{
    pt_upstream_shared_t  *s;

    s = peer->shared;

    return s->healthy && s->ejected_until <= pt_current_epoch_msec;
}


uint64_t
pt_upstream_peer_bit(pt_upstream_t *us, pt_upstream_peer_t *peer)
{
    size_t  i;

    i = (size_t) (peer - us->peers);

    return (uint64_t) 1 << pt_min(i, (size_t) 63);
}


pt_upstream_peer_t *
pt_upstream_pick(pt_http_request_t *r, pt_upstream_t *us, uint64_t tried)
{
    pt_upstream_sync(us);

    if (us->npeers == 0) {
        return NULL;
    }

    return us->balancer->pick(r, us, tried);
}


/* Smooth weighted round robin: every pick adds each peer's weight to its
 * current weight and takes the largest, which then pays back the total;
 * weights 5,1,1 give a,a,b,a,c,a,a rather than a,a,a,a,a,b,c. */
static pt_upstream_peer_t *
pt_upstream_pick_rr(pt_http_request_t *r, pt_upstream_t *us, uint64_t tried)
{
    size_t               i;
    pt_int_t             total;
    pt_upstream_peer_t  *p, *best;

    best = NULL;
    total = 0;

    for (i = 0; i < us->npeers; i++) {
        p = &us->peers[i];

        if (!pt_upstream_peer_usable(p)
            || (tried & pt_upstream_peer_bit(us, p)))
        {
            continue;
        }

        p->current_weight += p->shared->weight;
        total += p->shared->weight;

        if (best == NULL || p->current_weight > best->current_weight) {
            best = p;
        }
    }

    if (best) {
        best->current_weight -= total;
    }

    return best;
}


const pt_upstream_balancer_t  pt_upstream_round_robin = {
    "round_robin", NULL, NULL, pt_upstream_pick_rr
};


pt_upstream_peer_t *
pt_upstream_peer_of(pt_upstream_t *us, pt_upstream_shared_t *s)
{
    size_t  i;

    for (i = 0; i < us->npeers; i++) {
        if (us->peers[i].shared == s) {
            return &us->peers[i];
        }
    }

    return NULL;
}


void
pt_upstream_peer_failed(pt_upstream_t *us, pt_upstream_shared_t *s,
    pt_upstream_fail_e kind)
{
    uint32_t  fails;

    __atomic_add_fetch(&s->failures, 1, __ATOMIC_RELAXED);

    if (us->max_fails == 0) {
        return;
    }

    /* The default: a peer that refuses connections is skipped for a while
     * instead of costing every request a retry, unless it is the only
     * one (then ejecting it would only turn errors into 503s). */
    if (!us->passive_set
        && (kind != PT_UPSTREAM_FAIL_CONNECT || us->group->npeers < 2))
    {
        return;
    }

    fails = __atomic_add_fetch(&s->fails, 1, __ATOMIC_RELAXED);

    if (fails >= us->max_fails) {
        /* Ejected for the cooldown; the count starts again after it. */
        s->ejected_until = pt_current_epoch_msec + us->fail_timeout;
        __atomic_store_n(&s->fails, 0, __ATOMIC_RELAXED);

        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "upstream \"%s\": %s failed %u times in a row, ejected for %lu ms",
                     us->name.data,
                     s->text, fails, (unsigned long) us->fail_timeout);
    }
}


void
pt_upstream_peer_ok(pt_upstream_t *us, pt_upstream_shared_t *s)
{
    if (s->fails) {
        __atomic_store_n(&s->fails, 0, __ATOMIC_RELAXED);
    }
}


/* The budget counts first attempts and retries in two 10 s windows
 * shared by every worker: a retry is allowed while retries stay under a
 * fifth of the requests (at least a few), so a failing backend sees a
 * bounded extra load, not a retry storm. */
static pt_uint_t
pt_upstream_budget_slot(pt_upstream_group_t *g)
{
    uint64_t  w, now;

    now = pt_current_msec / PT_UPSTREAM_BUDGET_MSEC;
    w = __atomic_load_n(&g->window, __ATOMIC_RELAXED);

    if (now != w
        && __atomic_compare_exchange_n(&g->window, &w, now, 0,
                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    {
        /* The slot of the window before last is reused: clear it. */
        __atomic_store_n(&g->requests[now & 1], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&g->retries[now & 1], 0, __ATOMIC_RELAXED);
    }

    return (pt_uint_t) (now & 1);
}


void
pt_upstream_count_request(pt_upstream_t *us)
{
    pt_uint_t  slot;

    slot = pt_upstream_budget_slot(us->group);
    __atomic_add_fetch(&us->group->requests[slot], 1, __ATOMIC_RELAXED);
}


int
pt_upstream_retry_allowed(pt_upstream_t *us)
{
    uint64_t              requests, retries;
    pt_uint_t             slot;
    pt_upstream_group_t  *g;

    g = us->group;
    slot = pt_upstream_budget_slot(g);

    requests = g->requests[0] + g->requests[1];
    retries = g->retries[0] + g->retries[1];

    if (retries >= PT_UPSTREAM_BUDGET_MIN
        && retries * PT_UPSTREAM_BUDGET_RATIO >= requests)
    {
        return 0;
    }

    __atomic_add_fetch(&g->retries[slot], 1, __ATOMIC_RELAXED);

    return 1;
}


pt_upstream_shared_t *
pt_upstream_use(pt_upstream_t *us, pt_upstream_peer_t *peer, uint64_t *tried)
{
    *tried |= pt_upstream_peer_bit(us, peer);

    __atomic_add_fetch(&peer->shared->inflight, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&peer->shared->requests, 1, __ATOMIC_RELAXED);

    return peer->shared;
}


static void pt_upstream_log(pt_http_request_t *r, int level,
    const char *fmt, ...) PT_PRINTF(3, 4);


/* A request's own line when there is one, so that its id is in it. */
static void
pt_upstream_log(pt_http_request_t *r, int level, const char *fmt, ...)
{
    char     msg[512];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    if (r) {
        pt_http_log_request(r, level, "%s", msg);
    } else {
        pt_log_error(level, NULL, 0, "%s", msg);
    }
}


pt_upstream_peer_t *
pt_upstream_retry_peer(pt_http_request_t *r, pt_upstream_t *us,
    uint64_t tried, pt_uint_t tries, const pt_upstream_shared_t *from)
{
    pt_upstream_peer_t  *next;

    if (tries >= (pt_uint_t) us->retries) {
        return NULL;
    }

    /* Is there anyone else to ask? Nothing changes if not. */
    next = pt_upstream_pick(r, us, tried);
    if (next == NULL) {
        return NULL;
    }

    if (!pt_upstream_retry_allowed(us)) {
        pt_upstream_log(r, PT_LOG_WARN,
                        "upstream \"%s\": retry budget spent, not retrying",
                        us->name.data);
        return NULL;
    }

    pt_upstream_log(r, PT_LOG_INFO,
                    "retrying on %s after %s (retry %lu of %ld)",
                    next->shared->text, from->text,
                    (unsigned long) tries + 1, (long) us->retries);

    return next;
}


static void
pt_upstream_idle_close(pt_connection_t *c)
{
    pt_upstream_peer_t  *p;

    p = c->data;

    pt_queue_remove(&c->queue);
    p->nidle--;
    pt_close_connection(c);     /* takes it off the reusable list too */
}


/* An idle connection that becomes readable was closed by the backend (or
 * sent junk): either way it cannot carry another request. */
static void
pt_upstream_idle_handler(pt_event_t *ev)
{
    char              buf[1];
    ssize_t           n;
    pt_connection_t  *c;

    c = ev->data;

    if (ev->write) {
        return;
    }

    /* c->close: the worker drains or needs the slot (the reusable list). */
    if (!ev->timedout && !c->close) {
        /* Over TLS, a record that carries no data (a late session
         * ticket) is consumed and the connection stays. */
        n = c->ssl ? c->recv(c, buf, 1) : recv(c->fd, buf, 1, MSG_PEEK);

        if (n == PT_AGAIN || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        {
            return;
        }
    }

    pt_upstream_idle_close(c);
}


pt_connection_t *
pt_upstream_keepalive_get(pt_upstream_peer_t *peer)
{
    pt_queue_t       *q;
    pt_connection_t  *c;

    if (pt_queue_empty(&peer->idle)) {
        return NULL;
    }

    /* Most recently used first: its socket is the least likely to have
     * been closed by the backend's idle timer. */
    q = pt_queue_head(&peer->idle);
    c = pt_queue_data(q, pt_connection_t, queue);
    pt_queue_remove(q);
    peer->nidle--;

    pt_timer_del(c->read);
    pt_reusable_connection(c, 0);
    pt_upstream_track_busy(peer, 1);

    return c;
}


static pt_uint_t
pt_upstream_keepalive_limit(pt_upstream_t *us, pt_upstream_peer_t *p)
{
    if (us->keepalive != PT_UPSTREAM_KEEPALIVE_AUTO) {
        return (pt_uint_t) us->keepalive;
    }

    /* As many as were busy at the recent peak: a burst that comes back
     * finds its connections still open. */
    return pt_min(pt_max(pt_max(p->peak, p->peak_prev), (pt_uint_t) 1),
                  (pt_uint_t) PT_UPSTREAM_KEEPALIVE_MAX);
}


void
pt_upstream_track_busy(pt_upstream_peer_t *p, int delta)
{
    if (delta > 0) {
        p->busy++;
    } else if (p->busy) {
        p->busy--;
    }

    if (pt_current_msec - p->peak_start > PT_UPSTREAM_PEAK_MSEC) {
        p->peak_prev = p->peak;
        p->peak = p->busy;
        p->peak_start = pt_current_msec;
    }

    if (p->busy > p->peak) {
        p->peak = p->busy;
    }
}


void
pt_upstream_release(pt_upstream_t *us, pt_upstream_shared_t *s,
    pt_connection_t *c, int reusable)
{
    pt_queue_t          *q;
    pt_connection_t     *old;
    pt_upstream_peer_t  *peer;

    /* The peer may have left the set while the request ran. */
    peer = pt_upstream_peer_of(us, s);

    if (peer == NULL) {
        pt_close_connection(c);
        return;
    }

    pt_upstream_track_busy(peer, -1);

    if (!reusable || pt_exiting || c->read->eof || c->error
        || pt_upstream_keepalive_limit(us, peer) == 0)
    {
        pt_close_connection(c);
        return;
    }

    if (peer->nidle >= pt_upstream_keepalive_limit(us, peer)) {
        /* Full: the least recently used one makes room. */
        q = pt_queue_last(&peer->idle);
        old = pt_queue_data(q, pt_connection_t, queue);
        pt_upstream_idle_close(old);
    }

    pt_timer_del(c->read);
    pt_timer_del(c->write);

    c->data = peer;
    c->read->handler = pt_upstream_idle_handler;
    c->write->handler = pt_upstream_idle_handler;
    c->read->timedout = 0;

    pt_queue_insert_head(&peer->idle, &c->queue);
    peer->nidle++;
    pt_reusable_connection(c, 1);

    pt_timer_add(c->read, PT_UPSTREAM_IDLE_MSEC);

    if (c->read->ready) {
        pt_upstream_idle_handler(c->read);
    }
}


int
pt_upstream_connect(pt_upstream_peer_t *peer, pt_connection_t **cp)
{
    int                    fd, on, rc, err;
    pt_connection_t       *c;
    pt_upstream_shared_t  *s;

    s = peer->shared;

    fd = socket(s->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0) {
        return PT_ERROR;
    }

    on = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));

    c = pt_get_connection(fd);
    if (c == NULL) {
        close(fd);
        errno = ENOBUFS;
        return PT_ERROR;
    }

    memcpy(&c->sockaddr, &s->sa, s->socklen);
    c->socklen = s->socklen;

    rc = connect(fd, (struct sockaddr *) &s->sa, s->socklen);
    err = errno;

    if (rc < 0 && err != EINPROGRESS) {
        pt_close_connection(c);
        errno = err;
        return PT_ERROR;
    }

    if (pt_event_add_conn(c) != PT_OK) {
        pt_close_connection(c);
        errno = EIO;
        return PT_ERROR;
    }

    *cp = c;

    if (rc == 0) {
        c->write->ready = 1;
    }

    pt_upstream_track_busy(peer, 1);

    return rc == 0 ? PT_OK : PT_AGAIN;
}


int
pt_upstream_open(pt_upstream_t *us, pt_upstream_peer_t *peer, int fresh,
    pt_connection_t **cp, int *reused, int *err, const char **what)
{
    int               rc;
    pt_connection_t  *c;

    c = fresh ? NULL : pt_upstream_keepalive_get(peer);

    if (c) {
        *cp = c;
        *reused = 1;
        return PT_UPSTREAM_OPEN;
    }

    *reused = 0;

    rc = pt_upstream_connect(peer, &c);

    if (rc == PT_ERROR) {
        *err = errno;
        *what = "connect() failed";
        return PT_ERROR;
    }

    if (us->ssl
        && pt_ssl_client_attach(c, us->ssl, &us->server_name,
                                peer->ssl_session) != PT_OK)
    {
        pt_upstream_release(us, peer->shared, c, 0);

        /* A failed attach leaves c without TLS state: its reason is the
         * process's, and outlives c. */
        *err = 0;
        *what = pt_ssl_error(NULL);
        return PT_ERROR;
    }

    *cp = c;

    if (rc == PT_OK && c->ssl == NULL) {
        return PT_UPSTREAM_OPEN;
    }

    pt_timer_add(c->write, us->connect_timeout);

    return rc == PT_AGAIN ? PT_UPSTREAM_CONNECTING : PT_UPSTREAM_HANDSHAKE;
}


int
pt_upstream_opening(pt_upstream_t *us, pt_connection_t *c, int state,
    int *err, const char **what)
{
    int        rc;
    socklen_t  len;

    *err = 0;

    if (state == PT_UPSTREAM_CONNECTING) {
        if (c->write->timedout) {
            *what = "upstream timed out while connecting";
            return PT_ERROR;
        }

        if (!c->write->ready) {
            return PT_UPSTREAM_CONNECTING;
        }

        len = sizeof(*err);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, err, &len) < 0) {
            *err = errno;
        }

        if (*err) {
            *what = "connect() failed";
            return PT_ERROR;
        }

        pt_timer_del(c->write);

        if (c->ssl == NULL) {
            return PT_UPSTREAM_OPEN;
        }

        pt_timer_add(c->write, us->connect_timeout);
        state = PT_UPSTREAM_HANDSHAKE;
    }

    if (state == PT_UPSTREAM_HANDSHAKE) {
        if (c->read->timedout || c->write->timedout) {
            *what = "upstream timed out in the TLS handshake";
            return PT_ERROR;
        }

        rc = pt_ssl_handshake(c);

        if (rc == PT_AGAIN) {
            return PT_UPSTREAM_HANDSHAKE;
        }

        if (rc != PT_OK) {
            *what = pt_ssl_error(c);
            return PT_ERROR;
        }

        pt_timer_del(c->write);
        pt_timer_del(c->read);
    }

    return PT_UPSTREAM_OPEN;
}


/* With TLS 1.3 the ticket comes after the handshake, with the first
 * response, so this runs when an exchange ends, and only a real session
 * replaces the one kept. */
void
pt_upstream_keep_session(pt_upstream_t *us, pt_upstream_shared_t *s,
    pt_connection_t *c)
{
    void                *session;
    pt_upstream_peer_t  *peer;

    if (c->ssl == NULL) {
        return;
    }

    peer = pt_upstream_peer_of(us, s);
    if (peer == NULL) {
        return;
    }

    session = pt_ssl_session_get(c);
    if (session == NULL) {
        return;
    }

    if (peer->ssl_session) {
        pt_ssl_session_free(peer->ssl_session);
    }

    peer->ssl_session = session;
}


/* At exit every idle connection closes (a drain closed them already, but
 * a worker told to stop at once did not drain). */
void
pt_upstream_exit_worker(pt_cycle_t *cycle)
{
    size_t           i, j;
    pt_array_t      *a;
    pt_upstream_t  **us;

    a = pt_upstreams(cycle);
    us = a->elts;

    for (i = 0; i < a->nelts; i++) {
        for (j = 0; j < us[i]->npeers; j++) {
            pt_upstream_peer_drop(&us[i]->peers[j]);
        }
    }
}
