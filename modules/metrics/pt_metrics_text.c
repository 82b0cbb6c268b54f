/*
 * pt_metrics_text.c: the Prometheus text exposition format (0.0.4) of
 * the "metrics" zone and of the gauges the core keeps: upstream target
 * health, connections in the process table, reloads, shm usage.
 *
 * Every family is printed whole, HELP and TYPE first, even when it has
 * no sample yet, so a scraper sees the same families from the start.
 * Each histogram's count is the sum of its buckets as read, so the
 * series of one histogram always agree with each other while workers
 * keep counting.
 */

#include "pt_metrics.h"
#include "pt_core_module.h"
#include "pt_string.h"
#include "pt_time.h"
#include "pt_upstream.h"


size_t
pt_metrics_escape(char *dst, const char *s, size_t len)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        switch (s[i]) {

        case '\\':
        case '"':
            if (dst) {
                dst[n] = '\\';
                dst[n + 1] = s[i];
            }
            n += 2;
            break;

        case '\n':
            if (dst) {
                dst[n] = '\\';
                dst[n + 1] = 'n';
            }
            n += 2;
            break;

        default:
            if (dst) {
                dst[n] = s[i];
            }
            n++;
        }
    }

    return n;
}


/* name="value", the value escaped. */
static void
pt_metrics_label(pt_text_t *o, const char *name, const char *s,
    size_t len)
{
    size_t  n;

    pt_text_printf(o, "%s=\"", name);

    n = pt_metrics_escape(NULL, s, len);
    if (pt_text_reserve(o, n) != PT_OK) {
        return;
    }

    o->len += pt_metrics_escape(o->data + o->len, s, len);

    pt_text_printf(o, "\"");
}


static void
pt_metrics_family(pt_text_t *o, const char *name, const char *type,
    const char *help)
{
    pt_text_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                      type);
}


/* The ready slots of one kind, in table order. */
static pt_metrics_slot_t *
pt_metrics_next(pt_metrics_root_t *root, pt_metrics_kind_e kind,
    uint64_t *i)
{
    pt_metrics_slot_t  *s;

    for ( /* void */ ; *i < root->nslots; (*i)++) {
        s = &root->slots[*i];

        if (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE)
            && s->kind == (uint8_t) kind)
        {
            (*i)++;
            return s;
        }
    }

    return NULL;
}


static void
pt_metrics_counters(pt_text_t *o, pt_metrics_root_t *root,
    pt_metrics_kind_e kind, const char *name, const char *label)
{
    uint64_t            i;
    pt_metrics_slot_t  *s;

    for (i = 0; (s = pt_metrics_next(root, kind, &i)) != NULL; /* void */) {
        pt_text_printf(o, "%s{", name);
        pt_metrics_label(o, "route", s->name, s->name_len);

        if (kind == PT_METRICS_REQUESTS) {
            pt_text_printf(o, ",");
            pt_metrics_label(o, "method", s->label, strlen(s->label));
            pt_text_printf(o, ",status=\"%u\"", (unsigned) s->status);

        } else if (label) {
            pt_text_printf(o, ",");
            pt_metrics_label(o, label, s->label, strlen(s->label));
        }

        pt_text_printf(o, "} %llu\n", (unsigned long long)
                          __atomic_load_n(&s->v[0], __ATOMIC_RELAXED));
    }
}


static void
pt_metrics_histograms(pt_text_t *o, pt_metrics_root_t *root,
    pt_metrics_kind_e kind, const char *name, const char *label)
{
    size_t              b;
    uint64_t            i, count, sum;
    pt_metrics_slot_t  *s;

    for (i = 0; (s = pt_metrics_next(root, kind, &i)) != NULL; /* void */) {
        count = 0;

        for (b = 0; b < PT_METRICS_NBUCKETS; b++) {
            count += __atomic_load_n(&s->v[b], __ATOMIC_RELAXED);

            pt_text_printf(o, "%s_bucket{", name);
            pt_metrics_label(o, label, s->name, s->name_len);
            pt_text_printf(o, ",le=\"%s\"} %llu\n",
                              pt_metrics_bounds_text[b],
                              (unsigned long long) count);
        }

        sum = __atomic_load_n(&s->v[PT_METRICS_SUM], __ATOMIC_RELAXED);

        pt_text_printf(o, "%s_sum{", name);
        pt_metrics_label(o, label, s->name, s->name_len);
        pt_text_printf(o, "} %llu.%06llu\n%s_count{",
                          (unsigned long long) (sum / 1000000),
                          (unsigned long long) (sum % 1000000), name);
        pt_metrics_label(o, label, s->name, s->name_len);
        pt_text_printf(o, "} %llu\n", (unsigned long long) count);
    }
}


/* Up is the target's health as the health checks and the passive
 * checks left it, which /status shows as "healthy". */
static void
pt_metrics_targets(pt_text_t *o)
{
    size_t                 i, j;
    pt_array_t            *a;
    pt_upstream_t        **us;
    pt_upstream_shared_t  *p;

    a = pt_upstreams(pt_cycle);
    us = a->elts;

    for (i = 0; i < a->nelts; i++) {
        pt_upstream_sync(us[i]);

        for (j = 0; j < us[i]->npeers; j++) {
            p = us[i]->peers[j].shared;

            pt_text_printf(o, "portico_upstream_target_up{");
            pt_metrics_label(o, "upstream", us[i]->name.data,
                             us[i]->name.len);
            pt_text_printf(o, ",");
            pt_metrics_label(o, "target", p->text, strlen(p->text));
            pt_text_printf(o, "} %d\n", p->healthy ? 1 : 0);
        }
    }
}


/* Summed over the process table, as /status does. */
static void
pt_metrics_connections(pt_text_t *o)
{
    size_t          i;
    uint64_t        active, idle;
    pt_proc_shm_t  *p;

    active = 0;
    idle = 0;

    for (i = 0; pt_core_shm && i < PT_MAX_PROCESSES; i++) {
        p = &pt_core_shm->procs[i];

        if (p->pid == 0 || p->helper) {
            continue;
        }

        active += p->connections;
        idle += p->idle;
    }

    pt_text_printf(o, "portico_connections{state=\"active\"} %llu\n"
                      "portico_connections{state=\"idle\"} %llu\n",
                      (unsigned long long) active,
                      (unsigned long long) idle);
}


static void
pt_metrics_shm(pt_text_t *o)
{
    size_t          i, used, free, u, f;
    pt_shm_zone_t  *z;

    z = pt_cycle->shm_zones.elts;
    used = 0;
    free = 0;

    for (i = 0; i < pt_cycle->shm_zones.nelts; i++) {
        if (z[i].slab) {
            pt_slab_usage(z[i].slab, &u, &f);
            used += u;
            free += f;
        }
    }

    pt_text_printf(o, "portico_shm_bytes{state=\"used\"} %zu\n"
                      "portico_shm_bytes{state=\"free\"} %zu\n", used, free);
}


char *
pt_metrics_text(pt_http_request_t *r, pt_metrics_root_t *root, size_t *len)
{
    pt_text_t  o;

    if (pt_text_init(&o, r->pool, 16384) != PT_OK) {
        return NULL;
    }

    pt_metrics_family(&o, "portico_requests_total", "counter",
                      "Requests finished, by route, method and status.");
    pt_metrics_counters(&o, root, PT_METRICS_REQUESTS,
                        "portico_requests_total", NULL);

    pt_metrics_family(&o, "portico_request_duration_seconds", "histogram",
                      "Request time, first byte to end, by route.");
    pt_metrics_histograms(&o, root, PT_METRICS_ROUTE_DURATION,
                          "portico_request_duration_seconds", "route");

    pt_metrics_family(&o, "portico_upstream_duration_seconds", "histogram",
                      "Time spent on the upstream, by upstream.");
    pt_metrics_histograms(&o, root, PT_METRICS_UPSTREAM_DURATION,
                          "portico_upstream_duration_seconds", "upstream");

    pt_metrics_family(&o, "portico_upstream_target_up", "gauge",
                      "1 if the upstream target is healthy, else 0.");
    pt_metrics_targets(&o);

    pt_metrics_family(&o, "portico_connections", "gauge",
                      "Client connections open (active), idle of those.");
    pt_metrics_connections(&o);

    pt_metrics_family(&o, "portico_ratelimit_rejected_total", "counter",
                      "Requests a limit refused, by route.");
    pt_metrics_counters(&o, root, PT_METRICS_REJECTED,
                        "portico_ratelimit_rejected_total", NULL);

    pt_metrics_family(&o, "portico_cache_requests_total", "counter",
                      "Cache lookups, by route and result.");
    pt_metrics_counters(&o, root, PT_METRICS_CACHE,
                        "portico_cache_requests_total", "result");

    pt_metrics_family(&o, "portico_config_reloads_total", "counter",
                      "Configuration reloads, by result.");
    pt_text_printf(&o, "portico_config_reloads_total{result=\"ok\"} %llu\n"
                      "portico_config_reloads_total{result=\"failed\"} %llu\n",
                      (unsigned long long)
                          (pt_core_shm ? pt_core_shm->reloads_ok : 0),
                      (unsigned long long)
                          (pt_core_shm ? pt_core_shm->reloads_failed : 0));

    pt_metrics_family(&o, "portico_shm_bytes", "gauge",
                      "Shared memory of all zones, used and free.");
    pt_metrics_shm(&o);

    pt_metrics_family(&o, "portico_metrics_dropped_total", "counter",
                      "Updates lost to a full metrics zone.");
    pt_text_printf(&o, "portico_metrics_dropped_total %llu\n",
                      (unsigned long long)
                          __atomic_load_n(&root->dropped, __ATOMIC_RELAXED));

    if (o.failed) {
        return NULL;
    }

    *len = o.len;

    return o.data;
}
