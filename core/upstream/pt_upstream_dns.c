/*
 * pt_upstream_dns.c: an upstream's peers from its targets: addresses as
 * written, host names and SRV records through the resolver.
 *
 * At load the master resolves every name once, synchronously (bounded),
 * through the `resolver:` servers, so a new generation starts with its
 * peers. Then the helper process looks each dynamic upstream up again
 * when the shortest TTL of its answers runs out (or after `resolver:
 * valid`), and publishes the new set; a lookup that fails keeps the
 * addresses it last gave, and is retried sooner.
 */

#include "pt_upstream_conf.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_UPSTREAM_DNS_LOAD_MSEC    3000    /* at load, per lookup     */
#define PT_UPSTREAM_DNS_RETRY_MSEC   5000    /* after a failed lookup   */
#define PT_UPSTREAM_DNS_MAX_MSEC     3600000

/* What one target (a name, or the SRV name) last resolved to. */
typedef struct {
    pt_resolved_t        *addrs;
    size_t                n;
    unsigned              ok:1;       /* has a good answer            */
} pt_upstream_answer_t;

typedef struct pt_upstream_dns_query_s  pt_upstream_dns_query_t;

/* The helper's state for one dynamic upstream. */
typedef struct {
    pt_upstream_t            *us;
    pt_upstream_answer_t     *answers;   /* per target, or [0] for SRV */
    pt_upstream_dns_query_t  *queries;
    unsigned char            *queries_used;  /* slots that are names    */
    size_t                    nanswers;
    size_t                    pending;
    uint32_t                  min_ttl;
    unsigned                  failed:1;
    pt_event_t                timer;
} pt_upstream_dns_t;

static pt_resolver_t  *pt_upstream_resolver;


/* The peer set from the static targets and the answers, published. */
static int
pt_upstream_publish(pt_upstream_t *us, pt_upstream_answer_t *answers)
{
    int                       rc;
    size_t                    i, j, n;
    int32_t                  *weights;
    socklen_t                *lens;
    pt_upstream_target_t     *t;
    struct sockaddr_storage  *addrs;

    t = us->targets.elts;
    n = 0;

    for (i = 0; i < us->targets.nelts; i++) {
        n += t[i].addr.is_name ? answers[i].n : 1;
    }

    if (us->srv.len) {
        n += answers[0].n;
    }

    addrs = calloc(n ? n : 1, sizeof(struct sockaddr_storage));
    lens = calloc(n ? n : 1, sizeof(socklen_t));
    weights = calloc(n ? n : 1, sizeof(int32_t));

    if (addrs == NULL || lens == NULL || weights == NULL) {
        rc = PT_ERROR;
        goto done;
    }

    n = 0;

    for (i = 0; i < us->targets.nelts; i++) {
        if (!t[i].addr.is_name) {
            addrs[n] = t[i].addr.sa;
            lens[n] = t[i].addr.socklen;
            weights[n++] = (int32_t) t[i].weight;
            continue;
        }

        for (j = 0; j < answers[i].n; j++) {
            addrs[n] = answers[i].addrs[j].sa;
            lens[n] = answers[i].addrs[j].socklen;
            weights[n++] = (int32_t) t[i].weight;
        }
    }

    if (us->srv.len) {
        for (j = 0; j < answers[0].n; j++) {
            addrs[n] = answers[0].addrs[j].sa;
            lens[n] = answers[0].addrs[j].socklen;
            weights[n++] = answers[0].addrs[j].weight;
        }
    }

    rc = pt_upstream_set_peers(us, addrs, lens, weights, n);

done:

    free(addrs);
    free(lens);
    free(weights);

    return rc;
}


static void
pt_upstream_name(pt_upstream_target_t *t, char *buf, size_t size)
{
    snprintf(buf, size, "%.*s", (int) t->addr.host.len, t->addr.host.data);
}


int
pt_upstream_resolve_all(pt_cycle_t *cycle)
{
    int                       rc;
    char                      name[256];
    size_t                    i, j, k, n;
    uint32_t                  ttl;
    pt_upstream_t           **us;
    pt_resolved_t            *addrs;
    pt_upstream_target_t     *t;
    pt_upstream_answer_t     *answers;
    pt_upstream_main_conf_t  *umcf;

    umcf = pt_upstream_main_conf(cycle);
    us = umcf->upstreams.elts;
    rc = PT_OK;

    for (i = 0; i < umcf->upstreams.nelts && rc == PT_OK; i++) {
        t = us[i]->targets.elts;
        n = pt_max(us[i]->targets.nelts, (size_t) 1);

        answers = calloc(n, sizeof(pt_upstream_answer_t));
        if (answers == NULL) {
            return PT_ERROR;
        }

        for (j = 0; j < n && rc == PT_OK; j++) {
            if (us[i]->srv.len) {
                snprintf(name, sizeof(name), "%.*s", (int) us[i]->srv.len,
                         us[i]->srv.data);
            } else if (t[j].addr.is_name) {
                pt_upstream_name(&t[j], name, sizeof(name));
            } else {
                continue;
            }

            if (pt_resolver_resolve_sync(&umcf->resolver, name,
                                         us[i]->srv.len ? 0 : t[j].addr.port,
                                         us[i]->srv.len != 0, &addrs,
                                         &answers[j].n, &ttl,
                                         PT_UPSTREAM_DNS_LOAD_MSEC)
                == PT_OK)
            {
                answers[j].addrs = addrs;
                answers[j].ok = 1;
                continue;
            }

            /* A name that does not resolve: keep what the last generation
             * had, or refuse to start without it (as nginx does). */
            if (us[i]->group->npeers) {
                pt_log_error(PT_LOG_WARN, NULL, 0,
                             "upstream \"%s\": cannot resolve \"%s\", keeping its current peers",
                             us[i]->name.data, name);
                rc = PT_DECLINED;

            } else {
                pt_log_error(pt_cycle_fatal_level, NULL, 0,
                             "upstream \"%s\": cannot resolve \"%s\"",
                             us[i]->name.data, name);
                rc = PT_ERROR;
            }
        }

        if (rc == PT_OK) {
            if (pt_upstream_publish(us[i], answers) != PT_OK) {
                pt_log_error(PT_LOG_WARN, NULL, 0,
                             "upstream \"%s\": the upstream zone is full, some peers left out",
                             us[i]->name.data);
            }
        }

        if (rc == PT_DECLINED) {
            rc = PT_OK;
        }

        for (k = 0; k < n; k++) {
            free(answers[k].addrs);
        }

        free(answers);
    }

    return rc;
}


/* One lookup of a helper round: which upstream, which answer slot. */
struct pt_upstream_dns_query_s {
    pt_upstream_dns_t    *dns;
    size_t                index;
};


static void
pt_upstream_dns_schedule(pt_upstream_dns_t *d)
{
    pt_msec_t                 next;
    pt_upstream_main_conf_t  *umcf;

    umcf = pt_upstream_main_conf(pt_cycle);

    if (d->failed) {
        /* Retry soon, but not in a tight loop while DNS is down. */
        next = PT_UPSTREAM_DNS_RETRY_MSEC;
        if (d->min_ttl != UINT32_MAX) {
            next = pt_min(next, (pt_msec_t) d->min_ttl * 1000);
        }
    } else if (umcf->resolver.valid) {
        next = umcf->resolver.valid;
    } else {
        next = (pt_msec_t) d->min_ttl * 1000;
    }

    next = pt_max(next, (pt_msec_t) 1000);
    next = pt_min(next, (pt_msec_t) PT_UPSTREAM_DNS_MAX_MSEC);

    pt_timer_add(&d->timer, next);
}


static void
pt_upstream_dns_done(void *data, int status, const pt_resolved_t *addrs,
    size_t n, uint32_t ttl)
{
    size_t                    i;
    pt_resolved_t            *copy;
    pt_upstream_dns_t        *d;
    pt_upstream_answer_t     *a;
    pt_upstream_dns_query_t  *q;

    q = data;
    d = q->dns;
    a = &d->answers[q->index];

    if (status == PT_OK && n > 0) {
        /* Only real answers set the pace; a failure says TTL 1. */
        d->min_ttl = pt_min(d->min_ttl, pt_max(ttl, (uint32_t) 1));
        copy = malloc(n * sizeof(pt_resolved_t));

        if (copy) {
            memcpy(copy, addrs, n * sizeof(pt_resolved_t));
            free(a->addrs);
            a->addrs = copy;
            a->n = n;
            a->ok = 1;
        }

    } else {
        /* The last good answer stays; only retry sooner. */
        d->failed = 1;
    }

    if (--d->pending > 0) {
        return;
    }

    for (i = 0; i < d->nanswers; i++) {
        if (d->queries_used[i] && !d->answers[i].ok) {
            break;
        }
    }

    /* Publish once every name has answered at least once; until then the
     * master's set from load stands. */
    if (i == d->nanswers && pt_upstream_publish(d->us, d->answers) != PT_OK)
    {
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "upstream \"%s\": the upstream zone is full, some peers left out",
                     d->us->name.data);
    }

    if (d->failed) {
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "upstream \"%s\": a lookup failed, keeping the last addresses it gave",
                     d->us->name.data);
    }

    pt_upstream_dns_schedule(d);
}


static void
pt_upstream_dns_start(pt_event_t *ev)
{
    char                   name[256];
    size_t                 j;
    uint16_t               port;
    pt_upstream_t         *us;
    pt_upstream_dns_t     *d;
    pt_upstream_target_t  *t;

    d = ev->data;
    us = d->us;
    t = us->targets.elts;

    d->pending = 0;
    d->failed = 0;
    d->min_ttl = UINT32_MAX;

    for (j = 0; j < d->nanswers; j++) {
        if (!d->queries_used[j]) {
            continue;
        }

        if (us->srv.len) {
            snprintf(name, sizeof(name), "%.*s", (int) us->srv.len,
                     us->srv.data);
            port = 0;
        } else {
            pt_upstream_name(&t[j], name, sizeof(name));
            port = t[j].addr.port;
        }

        if (pt_resolver_resolve(pt_upstream_resolver, name, port,
                                us->srv.len != 0, pt_upstream_dns_done,
                                &d->queries[j]) == NULL)
        {
            d->failed = 1;
            continue;
        }

        d->pending++;
    }

    if (d->pending == 0) {
        d->failed = 1;
        pt_upstream_dns_schedule(d);
    }
}


int
pt_upstream_init_helper(pt_cycle_t *cycle)
{
    size_t                    i, j, n;
    pt_upstream_t           **us;
    pt_upstream_dns_t        *d;
    pt_upstream_target_t     *t;
    pt_upstream_main_conf_t  *umcf;

    umcf = pt_upstream_main_conf(cycle);
    us = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (!us[i]->dynamic) {
            continue;
        }

        if (pt_upstream_resolver == NULL) {
            pt_upstream_resolver = pt_resolver_create(&umcf->resolver);
            if (pt_upstream_resolver == NULL) {
                return PT_ERROR;
            }
        }

        n = pt_max(us[i]->targets.nelts, (size_t) 1);

        d = pt_pcalloc(cycle->pool, sizeof(pt_upstream_dns_t));
        if (d == NULL) {
            return PT_ERROR;
        }

        d->us = us[i];
        d->nanswers = n;
        d->answers = pt_pcalloc(cycle->pool,
                                n * sizeof(pt_upstream_answer_t));
        d->queries = pt_pcalloc(cycle->pool,
                                n * sizeof(pt_upstream_dns_query_t));
        d->queries_used = pt_pcalloc(cycle->pool, n);

        if (d->answers == NULL || d->queries == NULL
            || d->queries_used == NULL)
        {
            return PT_ERROR;
        }

        t = us[i]->targets.elts;

        for (j = 0; j < n; j++) {
            d->queries[j].dns = d;
            d->queries[j].index = j;
            d->queries_used[j] = us[i]->srv.len ? (j == 0)
                                                : t[j].addr.is_name;
        }

        d->timer.data = d;
        d->timer.handler = pt_upstream_dns_start;
        d->timer.cancelable = 1;

        /* The master resolved at load: the first round waits a moment
         * rather than asking again at once. */
        pt_timer_add(&d->timer, 1000);
    }

    return PT_OK;
}


void
pt_upstream_exit_helper(pt_cycle_t *cycle)
{
    /* The helper's own calls (a JWKS document) keep connections alive
     * too: they close as a worker's do. */
    pt_upstream_exit_worker(cycle);

    if (pt_upstream_resolver) {
        pt_resolver_destroy(pt_upstream_resolver);
        pt_upstream_resolver = NULL;
    }
}
