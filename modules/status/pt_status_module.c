/*
 * pt_status_module.c: the "status" module: `handler: status|health` as a
 * route action, and GET /status and /health on the admin listener (and /,
 * the dashboard: pt_status_dashboard.c).
 *
 * /status is JSON built from the shared process table and the upstream
 * zone, so any worker answers for all of them.
 */

#include "pt_http.h"
#include "pt_core_module.h"
#include "pt_process.h"
#include "pt_string.h"
#include "pt_time.h"
#include "pt_upstream.h"
#include "pt_status.h"


static int pt_status_preconfig(pt_conf_t *cf);
static int pt_status_postconfig(pt_conf_t *cf);
static int pt_status_handler(pt_http_request_t *r);
static int pt_health_handler(pt_http_request_t *r);
static int pt_status_init_worker(pt_cycle_t *cycle);


/* The master, as this worker saw it at its start: once it is gone, the
 * kernel gives the worker another parent. */
static pid_t  pt_status_master;


pt_module_t  pt_status_module = {
    .name = "status",
    .abi = PT_MODULE_ABI,
    .preconfig = pt_status_preconfig,
    .postconfig = pt_status_postconfig,
    .init_worker = pt_status_init_worker,
};


/* `handler: status|health` as a route action (the http core owns the
 * key). */
static int
pt_status_preconfig(pt_conf_t *cf)
{
    if (pt_http_named_handler_add(cf, "status", pt_status_handler) != PT_OK
        || pt_http_named_handler_add(cf, "health", pt_health_handler)
           != PT_OK)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


static int
pt_status_postconfig(pt_conf_t *cf)
{
    if (pt_http_admin_route_add(cf, "/status", pt_status_handler) == NULL
        || pt_http_admin_route_add(cf, "/health", pt_health_handler) == NULL
        || pt_status_dashboard_init(cf) != PT_OK)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


static void
pt_status_json_str(pt_text_t *o, const char *s, size_t len)
{
    char    *e;
    size_t   n;

    n = pt_json_escape_len(s, len);

    e = pt_pnalloc(o->pool, n + 1);
    if (e == NULL) {
        o->failed = 1;
        return;
    }

    pt_json_escape(e, s, len);
    e[n] = '\0';

    pt_text_printf(o, "\"%s\"", e);
}


static void
pt_status_upstreams(pt_text_t *o)
{
    size_t                 i, j;
    pt_array_t            *a;
    pt_upstream_t        **us;
    pt_upstream_shared_t  *p;

    a = pt_upstreams(pt_cycle);
    us = a->elts;

    pt_text_printf(o, "\"upstreams\":{");

    for (i = 0; i < a->nelts; i++) {
        /* This worker's view of the shared peer set, refreshed. */
        pt_upstream_sync(us[i]);

        pt_text_printf(o, "%s", i ? "," : "");
        pt_status_json_str(o, us[i]->name.data, us[i]->name.len);
        pt_text_printf(o, ":{\"inflight\":%llu,\"targets\":[",
                         (unsigned long long) us[i]->group->inflight);

        for (j = 0; j < us[i]->npeers; j++) {
            p = us[i]->peers[j].shared;

            pt_text_printf(o, "%s{\"address\":", j ? "," : "");
            pt_status_json_str(o, p->text, strlen(p->text));
            pt_text_printf(o, ",\"weight\":%d,\"healthy\":%s,"
                             "\"ejected\":%s,\"inflight\":%llu,"
                             "\"requests\":%llu,\"failures\":%llu}",
                             (int) p->weight, p->healthy ? "true" : "false",
                             p->ejected_until > pt_current_epoch_msec
                             ? "true" : "false",
                             (unsigned long long) p->inflight,
                             (unsigned long long) p->requests,
                             (unsigned long long) p->failures);
        }

        pt_text_printf(o, "]}");
    }

    pt_text_printf(o, "},");
}


/* The configured routes in config order, for the dashboard: the name, the
 * key of the action (upstream, respond, redirect, handler) and the
 * upstream it proxies to, or null; and the admin listener's endpoints (the
 * dashboard asks for /metrics only when it is there). */
static void
pt_status_routes(pt_text_t *o)
{
    size_t                i;
    pt_route_t          **rt;
    pt_upstream_t        *us;
    pt_http_main_conf_t  *hmcf;

    hmcf = pt_http_main_conf(pt_cycle);
    rt = hmcf->routes.elts;

    pt_text_printf(o, "\"routes\":[");

    for (i = 0; i < hmcf->routes.nelts; i++) {
        pt_text_printf(o, "%s{\"name\":", i ? "," : "");
        pt_status_json_str(o, rt[i]->name.data, rt[i]->name.len);
        pt_text_printf(o, ",\"action\":\"%s\",\"upstream\":",
                         rt[i]->content_key ? rt[i]->content_key : "");

        us = pt_upstream_of_route(rt[i]);
        if (us) {
            pt_status_json_str(o, us->name.data, us->name.len);
        } else {
            pt_text_printf(o, "null");
        }

        pt_text_printf(o, "}");
    }

    pt_text_printf(o, "],\"endpoints\":[");

    rt = hmcf->admin_routes.elts;

    for (i = 0; i < hmcf->admin_routes.nelts; i++) {
        pt_text_printf(o, "%s", i ? "," : "");
        pt_status_json_str(o, rt[i]->content_key,
                           strlen(rt[i]->content_key));
    }

    pt_text_printf(o, "],");
}


/* Read-only endpoints: anything but GET and HEAD is 405. */
static int
pt_status_method(pt_http_request_t *r)
{
    if (r->method & (PT_HTTP_GET | PT_HTTP_HEAD)) {
        return PT_OK;
    }

    if (pt_http_header_out_set(r, "Allow", 5, "GET, HEAD", 9) != PT_OK) {
        return PT_ERROR;
    }

    return 405;
}


/* The zones of the running generation: what each holds and has left. */
static void
pt_status_zones(pt_text_t *o)
{
    size_t          i, used, free;
    pt_shm_zone_t  *z;

    z = pt_cycle->shm_zones.elts;

    pt_text_printf(o, "\"shm\":{");

    for (i = 0; i < pt_cycle->shm_zones.nelts; i++) {
        used = 0;
        free = 0;

        if (z[i].slab) {
            pt_slab_usage(z[i].slab, &used, &free);
        }

        pt_text_printf(o, "%s", i ? "," : "");
        pt_status_json_str(o, z[i].name.data, z[i].name.len);
        pt_text_printf(o, ":{\"size\":%zu,\"used\":%zu,\"free\":%zu}",
                         z[i].size, used, free);
    }

    pt_text_printf(o, "},");
}


/* TLS termination, summed over every process (when a listener has
 * TLS). */
static void
pt_status_tls(pt_text_t *o)
{
    pt_ssl_stats_t  st;

    if (pt_http_tls_stats(pt_cycle, &st) != PT_OK) {
        return;
    }

    pt_text_printf(o, "\"tls\":{\"handshakes\":%llu,\"resumed\":%llu,"
                     "\"failed\":%llu,\"timed_out\":%llu,"
                     "\"plain_http\":%llu,\"sessions_cached\":%llu,"
                     "\"sessions_evicted\":%llu},",
                     (unsigned long long)
                         st.counters[PT_SSL_STAT_HANDSHAKES],
                     (unsigned long long) st.counters[PT_SSL_STAT_RESUMED],
                     (unsigned long long) st.counters[PT_SSL_STAT_FAILED],
                     (unsigned long long)
                         st.counters[PT_SSL_STAT_TIMED_OUT],
                     (unsigned long long)
                         st.counters[PT_SSL_STAT_PLAIN_HTTP],
                     (unsigned long long) st.sessions,
                     (unsigned long long) st.evicted);
}


static int
pt_status_handler(pt_http_request_t *r)
{
    size_t            i, n;
    uint64_t          active, idle, now;
    pt_proc_shm_t    *p;
    int               rc;
    pid_t             helper;
    pt_text_t   o;

    rc = pt_status_method(r);
    if (rc != PT_OK) {
        return rc;
    }

    if (pt_text_init(&o, r->pool, 4096) != PT_OK) {
        return PT_ERROR;
    }

    now = pt_current_epoch_msec;

    pt_text_printf(&o, "{\"version\":\"%s\",\"pid\":%d,", PT_VERSION,
                     (int) getppid());

    if (pt_core_shm) {
        pt_text_printf(&o, "\"uptime_s\":%llu,\"generation\":%llu,"
                         "\"loaded_at\":%llu.%03llu,",
                         (unsigned long long)
                             ((now - pt_core_shm->master_start_ms) / 1000),
                         (unsigned long long) pt_core_shm->generation,
                         (unsigned long long)
                             (pt_core_shm->loaded_at_ms / 1000),
                         (unsigned long long)
                             (pt_core_shm->loaded_at_ms % 1000));

        pt_text_printf(&o, "\"reloads\":{\"ok\":%llu,\"failed\":%llu},"
                         "\"requests\":%llu,",
                         (unsigned long long) pt_core_shm->reloads_ok,
                         (unsigned long long) pt_core_shm->reloads_failed,
                         (unsigned long long) pt_core_requests_total());
    }

    pt_text_printf(&o, "\"workers\":[");

    active = 0;
    idle = 0;
    n = 0;
    helper = 0;

    for (i = 0; pt_core_shm && i < PT_MAX_PROCESSES; i++) {
        p = &pt_core_shm->procs[i];

        if (p->pid == 0) {
            continue;
        }

        if (p->helper) {
            helper = p->pid;
            continue;
        }

        pt_text_printf(&o, "%s{\"pid\":%d,\"generation\":%u,"
                         "\"connections\":%llu,\"requests\":%llu}",
                         n++ ? "," : "", (int) p->pid,
                         (unsigned) p->generation,
                         (unsigned long long) p->connections,
                         (unsigned long long) p->requests);

        active += p->connections;
        idle += p->idle;
    }

    pt_text_printf(&o, "],\"helper\":%d,"
                     "\"connections\":{\"active\":%llu,\"idle\":%llu},",
                     (int) helper, (unsigned long long) active,
                     (unsigned long long) idle);

    pt_status_routes(&o);
    pt_status_upstreams(&o);
    pt_status_zones(&o);
    pt_status_tls(&o);

    /* The last member closed the object with a comma: drop it. */
    if (o.len && o.data[o.len - 1] == ',') {
        o.len--;
    }

    pt_text_printf(&o, "}\n");

    if (o.failed) {
        return PT_ERROR;
    }

    pt_http_finalize(r, pt_http_send_response(r, 200, "application/json",
                                              o.data, o.len));

    return PT_DONE;
}


static int
pt_status_init_worker(pt_cycle_t *cycle)
{
    pt_status_master = getppid();

    return PT_OK;
}


/*
 * Liveness, as far as the answering worker can tell: its master is still
 * the one that forked it (a master that died leaves its workers to another
 * parent), and the process table holds a live worker of the running
 * generation (the answering one at least, unless the master reaped it
 * already as it drains). Either failing is a 503; fewer workers than
 * configured (one being respawned) is still 200, with the counts.
 */
static int
pt_health_handler(pt_http_request_t *r)
{
    int             rc, master;
    char           *body;
    size_t          i, len;
    pt_uint_t       workers;
    pt_proc_shm_t  *p;

    rc = pt_status_method(r);
    if (rc != PT_OK) {
        return rc;
    }

    master = pt_status_master == 0 || getppid() == pt_status_master;
    workers = 0;

    for (i = 0; pt_core_shm && i < PT_MAX_PROCESSES; i++) {
        p = &pt_core_shm->procs[i];

        if (p->pid == 0 || p->helper
            || p->generation != (uint32_t) pt_core_shm->generation)
        {
            continue;
        }

        if (p->pid == pt_pid || kill(p->pid, 0) == 0 || errno == EPERM) {
            workers++;
        }
    }

    if (pt_core_shm == NULL) {
        workers = 1;    /* no process table: this process serves alone */
    }

    body = pt_psprintf(r->pool, &len,
                       "{\"status\":\"%s\",\"master\":%s,"
                       "\"workers\":%u,\"expected\":%u}\n",
                       master && workers ? "ok" : "fail",
                       master ? "true" : "false", (unsigned) workers,
                       (unsigned) pt_core_workers(pt_cycle));
    if (body == NULL) {
        return PT_ERROR;
    }

    if (!master || workers == 0) {
        if (pt_http_header_out_set(r, "Retry-After", 11, "1", 1) != PT_OK) {
            return PT_ERROR;
        }
    }

    pt_http_finalize(r, pt_http_send_response(r, master && workers
                                              ? 200 : 503,
                                              "application/json", body,
                                              len));

    return PT_DONE;
}
