/*
 * pt_lb_health.c: active health checks, run by the helper process.
 *
 * One prober for the whole gateway: every `interval` the helper sends
 * each peer of an upstream "GET path" (over TLS if the upstream uses it)
 * and waits `timeout` for a 2xx or 3xx status line. A peer goes down after
 * `unhealthy` failures in a row and comes back after `healthy` successes
 * in a row (HAProxy's rise and fall); the verdict is a flag in the shared
 * peer entry that every worker's balancer reads.
 */

#include <sys/socket.h>

#include "pt_lb.h"
#include "pt_ssl.h"
#include "pt_string.h"
#include "pt_time.h"


enum {
    PT_LB_PROBE_IDLE = 0,
    PT_LB_PROBE_CONNECTING,
    PT_LB_PROBE_HANDSHAKE,
    PT_LB_PROBE_SENDING,
    PT_LB_PROBE_READING
};

typedef struct pt_lb_checks_s  pt_lb_checks_t;

typedef struct {
    pt_lb_checks_t        *checks;
    pt_upstream_shared_t  *peer;
    pt_connection_t       *c;
    unsigned               state;
    size_t                 sent;
    size_t                 len;
    char                   buf[256];
} pt_lb_probe_t;

struct pt_lb_checks_s {
    pt_upstream_t         *us;
    pt_lb_conf_t          *lcf;
    pt_event_t             timer;
    pt_lb_probe_t        **probes;
    size_t                 nprobes;
    pt_str_t               request;
};


static pt_array_t  pt_lb_all;           /* pt_lb_checks_t * */


static void
pt_lb_probe_close(pt_lb_probe_t *pr)
{
    if (pr->c) {
        pt_close_connection(pr->c);
        pr->c = NULL;
    }

    pr->state = PT_LB_PROBE_IDLE;
}


static void
pt_lb_probe_result(pt_lb_probe_t *pr, int ok, const char *why)
{
    uint32_t               n;
    pt_lb_conf_t          *lcf;
    pt_upstream_shared_t  *s;

    s = pr->peer;
    lcf = pr->checks->lcf;

    pt_lb_probe_close(pr);

    /* Only this process writes these fields: plain stores do. */
    if (ok) {
        s->fall = 0;
        n = ++s->rise;

        if (!s->healthy && n >= lcf->healthy) {
            s->healthy = 1;
            pt_log_error(PT_LOG_NOTICE, NULL, 0,
                         "upstream \"%s\": %s is up (%u/%u probes passed)",
                         pr->checks->us->name.data,
                         s->text, (unsigned) n, (unsigned) lcf->healthy);
        }

        return;
    }

    s->rise = 0;
    n = ++s->fall;

    if (s->healthy && n >= lcf->unhealthy) {
        s->healthy = 0;
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "upstream \"%s\": %s is down (%u/%u probes failed, last: %s)",
                     pr->checks->us->name.data, s->text, (unsigned) n,
                     (unsigned) lcf->unhealthy, why);
    }
}


/* A status line "HTTP/1.x 2xx" or "3xx" means healthy. */
static int
pt_lb_probe_status(pt_lb_probe_t *pr)
{
    char  *p;

    p = memchr(pr->buf, '\n', pr->len);
    if (p == NULL) {
        return PT_AGAIN;
    }

    if (pr->len < 12 || memcmp(pr->buf, "HTTP/1.", 7) != 0
        || pr->buf[8] != ' ')
    {
        return PT_ERROR;
    }

    return (pr->buf[9] == '2' || pr->buf[9] == '3') ? PT_OK : PT_DECLINED;
}


static void
pt_lb_probe_handler(pt_event_t *ev)
{
    int               rc, err;
    ssize_t           n;
    socklen_t         len;
    pt_buf_t          b;
    pt_chain_t        cl, *rest;
    pt_lb_probe_t    *pr;
    pt_connection_t  *c;

    c = ev->data;
    pr = c->data;

    if (ev->timedout) {
        pt_lb_probe_result(pr, 0, "timed out");
        return;
    }

    if (pr->state == PT_LB_PROBE_CONNECTING) {
        if (!c->write->ready) {
            return;
        }

        err = 0;
        len = sizeof(err);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            pt_lb_probe_result(pr, 0, strerror(err ? err : errno));
            return;
        }

        pr->state = c->ssl ? PT_LB_PROBE_HANDSHAKE : PT_LB_PROBE_SENDING;
    }

    if (pr->state == PT_LB_PROBE_HANDSHAKE) {
        rc = pt_ssl_handshake(c);

        if (rc == PT_AGAIN) {
            return;
        }

        if (rc != PT_OK) {
            pt_lb_probe_result(pr, 0, pt_ssl_error(c));
            return;
        }

        pr->state = PT_LB_PROBE_SENDING;
    }

    if (pr->state == PT_LB_PROBE_SENDING) {
        memset(&b, 0, sizeof(b));
        b.start = pr->checks->request.data;
        b.pos = b.start + pr->sent;
        b.last = b.start + pr->checks->request.len;
        b.end = b.last;
        cl.buf = &b;
        cl.next = NULL;

        rest = c->send_chain(c, &cl, 0);

        if (rest == (pt_chain_t *) PT_ERROR) {
            pt_lb_probe_result(pr, 0, "send failed");
            return;
        }

        pr->sent = (size_t) (b.pos - b.start);

        if (rest) {
            return;
        }

        pr->state = PT_LB_PROBE_READING;
    }

    for ( ;; ) {
        if (pr->len == sizeof(pr->buf)) {
            pt_lb_probe_result(pr, 0, "no status line");
            return;
        }

        n = c->recv(c, pr->buf + pr->len, sizeof(pr->buf) - pr->len);

        if (n == PT_AGAIN) {
            return;
        }

        if (n <= 0) {
            pt_lb_probe_result(pr, 0, n ? "recv failed"
                                        : "closed before answering");
            return;
        }

        pr->len += (size_t) n;

        rc = pt_lb_probe_status(pr);

        if (rc == PT_AGAIN) {
            continue;
        }

        pt_lb_probe_result(pr, rc == PT_OK,
                           rc == PT_DECLINED ? "status not 2xx or 3xx"
                                             : "not an HTTP response");
        return;
    }
}


static void
pt_lb_probe_start(pt_lb_probe_t *pr)
{
    int                  rc;
    pt_upstream_t       *us;
    pt_connection_t     *c;
    pt_upstream_peer_t  *peer;

    us = pr->checks->us;

    peer = pt_upstream_peer_of(us, pr->peer);
    if (peer == NULL) {
        return;
    }

    rc = pt_upstream_connect(peer, &c);

    /* The probe is not a request: it leaves the peer's counters alone. */
    pt_upstream_track_busy(peer, -1);

    if (rc == PT_ERROR) {
        pt_lb_probe_result(pr, 0, strerror(errno));
        return;
    }

    pr->c = c;
    pr->sent = 0;
    pr->len = 0;
    pr->state = (rc == PT_AGAIN) ? PT_LB_PROBE_CONNECTING
                                 : PT_LB_PROBE_SENDING;

    c->data = pr;
    c->read->handler = pt_lb_probe_handler;
    c->write->handler = pt_lb_probe_handler;

    if (us->ssl) {
        if (pt_ssl_client_attach(c, us->ssl, &us->server_name, NULL)
            != PT_OK)
        {
            pt_lb_probe_result(pr, 0, "TLS set-up failed");
            return;
        }

        if (rc == PT_OK) {
            pr->state = PT_LB_PROBE_HANDSHAKE;
        }
    }

    pt_timer_add(c->write, pr->checks->lcf->timeout);

    if (rc == PT_OK) {
        pt_lb_probe_handler(c->write);
    }
}


static pt_lb_probe_t *
pt_lb_probe_for(pt_lb_checks_t *ck, pt_upstream_shared_t *s)
{
    size_t           i;
    pt_lb_probe_t   *pr, **probes;

    for (i = 0; i < ck->nprobes; i++) {
        if (ck->probes[i]->peer == s) {
            return ck->probes[i];
        }
    }

    pr = calloc(1, sizeof(pt_lb_probe_t));
    probes = realloc(ck->probes, (ck->nprobes + 1) * sizeof(void *));

    if (pr == NULL || probes == NULL) {
        free(pr);
        if (probes) {
            ck->probes = probes;
        }
        return NULL;
    }

    pr->checks = ck;
    pr->peer = s;
    ck->probes = probes;
    ck->probes[ck->nprobes++] = pr;

    return pr;
}


static void
pt_lb_checks_round(pt_event_t *ev)
{
    size_t           i;
    pt_lb_probe_t   *pr;
    pt_lb_checks_t  *ck;

    ck = ev->data;

    pt_upstream_sync(ck->us);

    for (i = 0; i < ck->us->npeers; i++) {
        pr = pt_lb_probe_for(ck, ck->us->peers[i].shared);

        /* A probe still running (a slow peer) is not doubled. */
        if (pr && pr->state == PT_LB_PROBE_IDLE) {
            pt_lb_probe_start(pr);
        }
    }

    pt_timer_add(&ck->timer, ck->lcf->interval);
}


int
pt_lb_health_init_helper(pt_cycle_t *cycle)
{
    size_t            i;
    pt_str_t          host;
    pt_array_t       *a;
    pt_lb_conf_t     *lcf;
    pt_upstream_t   **us;
    pt_lb_checks_t   *ck, **slot;

    a = pt_upstreams(cycle);
    us = a->elts;

    if (pt_array_init(&pt_lb_all, cycle->pool, 4, sizeof(void *)) != PT_OK) {
        return PT_ERROR;
    }

    for (i = 0; i < a->nelts; i++) {
        lcf = pt_lb_conf(us[i]);

        if (!lcf->active) {
            continue;
        }

        ck = pt_pcalloc(cycle->pool, sizeof(pt_lb_checks_t));
        slot = pt_array_push(&pt_lb_all);
        if (ck == NULL || slot == NULL) {
            return PT_ERROR;
        }

        *slot = ck;
        ck->us = us[i];
        ck->lcf = lcf;

        host = us[i]->server_name;
        if (host.len == 0) {
            pt_str_set(&host, "localhost");
        }

        ck->request.data = pt_psprintf(cycle->pool, &ck->request.len,
                                       "GET %s HTTP/1.1\r\nHost: %.*s\r\n"
                                       "User-Agent: portico-health-check\r\n"
                                       "Connection: close\r\n\r\n",
                                       lcf->path.data, (int) host.len,
                                       host.data);
        if (ck->request.data == NULL) {
            return PT_ERROR;
        }

        ck->timer.data = ck;
        ck->timer.handler = pt_lb_checks_round;
        ck->timer.cancelable = 1;

        /* Start at once: a peer that is down at start is found quickly. */
        pt_timer_add(&ck->timer, 10);
    }

    return PT_OK;
}


void
pt_lb_health_exit_helper(pt_cycle_t *cycle)
{
    size_t           i, j;
    pt_lb_checks_t **ck;

    ck = pt_lb_all.elts;

    for (i = 0; ck && i < pt_lb_all.nelts; i++) {
        pt_timer_del(&ck[i]->timer);

        for (j = 0; j < ck[i]->nprobes; j++) {
            pt_lb_probe_close(ck[i]->probes[j]);
            free(ck[i]->probes[j]);
        }

        free(ck[i]->probes);
    }
}
