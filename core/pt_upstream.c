/*
 * pt_upstream.c: the "upstream" module: `upstreams:` and a route's
 * `upstream:` action, target state in shared memory, the default balancer
 * and the per-worker keep-alive pools.
 */

#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "pt_upstream.h"
#include "pt_process.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_UPSTREAM_IDLE_MSEC    60000
#define PT_UPSTREAM_PEAK_MSEC    10000

typedef struct {
    pt_array_t          upstreams;     /* pt_upstream_t *                 */
    pt_shm_zone_t      *zone;
} pt_upstream_main_conf_t;

typedef struct {
    pt_yaml_node_t     *node;          /* the route's `upstream:` value   */
    pt_upstream_t      *upstream;
} pt_upstream_route_conf_t;


static void *pt_upstream_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_upstream_validate(pt_conf_t *cf, void *conf);
static int pt_upstream_postconfig(pt_conf_t *cf);
static int pt_upstream_init_master(pt_cycle_t *cycle);
static void pt_upstream_exit_worker(pt_cycle_t *cycle);
static int pt_upstream_set_upstreams(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_targets(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_timeouts(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_keepalive(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_set_route(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_upstream_zone_init(pt_shm_zone_t *zone, void *old_data);

extern int pt_proxy_handler(pt_http_request_t *r);


static const pt_command_t  pt_upstream_commands[] = {

    { "upstreams", PT_CONF_GLOBAL | PT_CONF_MAP, pt_upstream_set_upstreams,
      0, NULL },

    { "targets", PT_CONF_UPSTREAM | PT_CONF_SEQ, pt_upstream_set_targets,
      0, NULL },

    { "timeouts", PT_CONF_UPSTREAM | PT_CONF_MAP, pt_upstream_set_timeouts,
      0, NULL },

    { "keepalive", PT_CONF_UPSTREAM | PT_CONF_SCALAR,
      pt_upstream_set_keepalive, 0, NULL },

    { "upstream", PT_CONF_ROUTE | PT_CONF_SCALAR, pt_upstream_set_route,
      0, NULL },

    pt_null_command
};


pt_module_t  pt_upstream_module = {
    .name = "upstream",
    .abi = PT_MODULE_ABI,
    .commands = pt_upstream_commands,
    .create_conf = pt_upstream_create_conf,
    .validate = pt_upstream_validate,
    .postconfig = pt_upstream_postconfig,
    .init_master = pt_upstream_init_master,
    .exit_worker = pt_upstream_exit_worker,
};


static pt_upstream_target_t *pt_upstream_pick_rr(pt_http_request_t *r,
    pt_upstream_t *us);

static const pt_upstream_balancer_t  pt_upstream_round_robin = {
    "round_robin", NULL, pt_upstream_pick_rr
};


static void *
pt_upstream_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_upstream_main_conf_t   *umcf;
    pt_upstream_route_conf_t  *urcf;

    if (level == PT_CONF_LEVEL_ROUTE) {
        urcf = pt_pcalloc(cf->pool, sizeof(pt_upstream_route_conf_t));
        return urcf ? urcf : PT_CONF_ERROR_PTR;
    }

    if (level != PT_CONF_LEVEL_GLOBAL) {
        return NULL;
    }

    umcf = pt_pcalloc(cf->pool, sizeof(pt_upstream_main_conf_t));
    if (umcf == NULL
        || pt_array_init(&umcf->upstreams, cf->pool, 4, sizeof(void *))
           != PT_OK)
    {
        return PT_CONF_ERROR_PTR;
    }

    return umcf;
}


pt_array_t *
pt_upstreams(pt_cycle_t *cycle)
{
    pt_upstream_main_conf_t  *umcf;

    umcf = cycle->conf[pt_upstream_module.index];

    return &umcf->upstreams;
}


pt_upstream_t *
pt_upstream_of_route(pt_route_t *route)
{
    pt_upstream_route_conf_t  *urcf;

    urcf = route->conf[pt_upstream_module.index];

    return urcf ? urcf->upstream : NULL;
}


static pt_upstream_t *
pt_upstream_find(pt_cycle_t *cycle, const pt_str_t *name)
{
    size_t           i;
    pt_array_t      *a;
    pt_upstream_t  **us;

    a = pt_upstreams(cycle);
    us = a->elts;

    for (i = 0; i < a->nelts; i++) {
        if (pt_str_equal(&us[i]->name, name)) {
            return us[i];
        }
    }

    return NULL;
}


static int
pt_upstream_set_upstreams(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                       rc;
    size_t                    i;
    pt_conf_t                 save;
    pt_upstream_t            *us, **slot;
    pt_yaml_node_t           *key, *value;
    pt_upstream_main_conf_t  *umcf;

    umcf = conf;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key;
        value = node->pairs[i].value;

        if (pt_conf_expect(cf, value, PT_YAML_MAP, "upstreams") != PT_OK) {
            rc = PT_ERROR;
            continue;
        }

        us = pt_pcalloc(cf->pool, sizeof(pt_upstream_t));
        if (us == NULL) {
            return PT_ERROR;
        }

        us->name = key->scalar;
        us->node = key;
        us->connect_timeout = PT_CONF_UNSET_MSEC;
        us->read_timeout = PT_CONF_UNSET_MSEC;
        us->write_timeout = PT_CONF_UNSET_MSEC;
        us->keepalive = PT_UPSTREAM_KEEPALIVE_AUTO;
        us->balancer = &pt_upstream_round_robin;

        if (pt_array_init(&us->targets, cf->pool, 4,
                          sizeof(pt_upstream_target_t)) != PT_OK)
        {
            return PT_ERROR;
        }

        us->conf = pt_conf_create_level(cf, PT_CONF_LEVEL_UPSTREAM);
        if (us->conf == NULL) {
            return PT_ERROR;
        }

        slot = pt_array_push(&umcf->upstreams);
        if (slot == NULL) {
            return PT_ERROR;
        }
        *slot = us;

        if (pt_conf_scope_add(cf, PT_CONF_LEVEL_UPSTREAM, us, us->conf)
            != PT_OK)
        {
            return PT_ERROR;
        }

        save = *cf;
        cf->level = PT_CONF_LEVEL_UPSTREAM;
        cf->scope = us;
        cf->ctx = us->conf;

        if (pt_conf_dispatch(cf, value, NULL) != PT_OK) {
            rc = PT_ERROR;
        }

        cf->level = save.level;
        cf->scope = save.scope;
        cf->ctx = save.ctx;

        if (us->targets.nelts == 0) {
            rc = pt_conf_error(cf, key, "upstream \"%s\" has no targets",
                               key->scalar.data);
        }

        if (us->connect_timeout == PT_CONF_UNSET_MSEC) {
            us->connect_timeout = 2000;
        }
        if (us->read_timeout == PT_CONF_UNSET_MSEC) {
            us->read_timeout = 30000;
        }
        if (us->write_timeout == PT_CONF_UNSET_MSEC) {
            us->write_timeout = 30000;
        }
    }

    return rc;
}


/* Host names are resolved here, once per load, in the master (as nginx
 * does); following DNS changes at run time is the resolver's job. */
static int
pt_upstream_resolve(pt_conf_t *cf, pt_yaml_node_t *node, pt_addr_t *addr)
{
    int               rc;
    char              port[8], host[256];
    struct addrinfo   hints, *res;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;

    snprintf(port, sizeof(port), "%u", (unsigned) addr->port);
    snprintf(host, sizeof(host), "%.*s", (int) addr->host.len,
             addr->host.data);

    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        return pt_conf_error(cf, node, "cannot resolve \"%s\": %s", host,
                             gai_strerror(rc));
    }

    memcpy(&addr->sa, res->ai_addr, res->ai_addrlen);
    addr->socklen = res->ai_addrlen;
    freeaddrinfo(res);

    return PT_OK;
}


static int
pt_upstream_set_targets(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                    rc;
    size_t                 i, j;
    int64_t                w;
    const char            *reason;
    pt_upstream_t         *us;
    pt_yaml_node_t        *item, *addr, *key;
    pt_upstream_target_t  *t;

    us = cf->scope;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        item = node->items[i];
        addr = item;
        w = 1;

        if (item->type == PT_YAML_MAP) {
            addr = NULL;

            for (j = 0; j < item->n; j++) {
                key = item->pairs[j].key;

                if (strcmp(key->scalar.data, "address") == 0) {
                    addr = item->pairs[j].value;

                } else if (strcmp(key->scalar.data, "weight") == 0) {
                    if (item->pairs[j].value->type != PT_YAML_SCALAR
                        || pt_parse_int(item->pairs[j].value->scalar.data,
                                        item->pairs[j].value->scalar.len, 1,
                                        1000, &w, &reason) != PT_OK)
                    {
                        rc = pt_conf_error(cf, item->pairs[j].value,
                                           "weight: a number from 1 to "
                                           "1000");
                    }

                } else {
                    rc = pt_conf_error(cf, key, "unknown key \"%s\" in a "
                                       "target", key->scalar.data);
                }
            }

            if (addr == NULL) {
                rc = pt_conf_error(cf, item, "target has no address");
                continue;
            }
        }

        if (addr->type != PT_YAML_SCALAR) {
            rc = pt_conf_error(cf, addr, "target address: expected a "
                               "scalar, got a %s", pt_yaml_type_name(addr));
            continue;
        }

        t = pt_array_push(&us->targets);
        if (t == NULL) {
            return PT_ERROR;
        }

        memset(t, 0, sizeof(pt_upstream_target_t));
        t->node = addr;
        t->weight = (pt_int_t) w;

        if (pt_parse_addr(addr->scalar.data, addr->scalar.len, 0, &t->addr,
                          &reason) != PT_OK)
        {
            rc = pt_conf_error(cf, addr, "target address: %s: \"%s\"",
                               reason, addr->scalar.data);
            continue;
        }

        if (t->addr.is_name && pt_upstream_resolve(cf, addr, &t->addr)
                               != PT_OK)
        {
            rc = PT_ERROR;
        }
    }

    return rc;
}


static int
pt_upstream_set_timeouts(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int              rc;
    size_t           i;
    pt_msec_t       *ms;
    pt_upstream_t   *us;
    pt_yaml_node_t  *key;

    us = cf->scope;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key;

        if (strcmp(key->scalar.data, "connect") == 0) {
            ms = &us->connect_timeout;
        } else if (strcmp(key->scalar.data, "read") == 0) {
            ms = &us->read_timeout;
        } else if (strcmp(key->scalar.data, "write") == 0) {
            ms = &us->write_timeout;
        } else {
            rc = pt_conf_error(cf, key, "unknown key \"%s\" in timeouts "
                               "(connect, read, write)", key->scalar.data);
            continue;
        }

        if (pt_conf_parse_msec(cf, node->pairs[i].value, ms) != PT_OK) {
            rc = PT_ERROR;
        } else if (*ms == 0) {
            rc = pt_conf_error(cf, node->pairs[i].value, "timeouts: must "
                               "be above 0");
        }
    }

    return rc;
}


static int
pt_upstream_set_keepalive(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int64_t         v;
    const char     *reason;
    pt_upstream_t  *us;

    us = cf->scope;

    if (strcmp(node->scalar.data, "auto") == 0) {
        us->keepalive = PT_UPSTREAM_KEEPALIVE_AUTO;
        return PT_OK;
    }

    if (pt_parse_int(node->scalar.data, node->scalar.len, 0,
                     PT_UPSTREAM_KEEPALIVE_MAX, &v, &reason) != PT_OK)
    {
        return pt_conf_error(cf, node, "keepalive: a number from 0 to %d, "
                             "or auto: \"%s\"", PT_UPSTREAM_KEEPALIVE_MAX,
                             node->scalar.data);
    }

    us->keepalive = (pt_int_t) v;

    return PT_OK;
}


static int
pt_upstream_set_route(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    pt_upstream_route_conf_t  *urcf;

    urcf = conf;
    urcf->node = node;

    return pt_route_set_content(cf, node, "upstream", pt_proxy_handler);
}


static int
pt_upstream_validate(pt_conf_t *cf, void *conf)
{
    pt_upstream_route_conf_t  *urcf;

    if (cf->level != PT_CONF_LEVEL_ROUTE) {
        return PT_OK;
    }

    urcf = conf;

    if (urcf->node == NULL) {
        return PT_OK;
    }

    urcf->upstream = pt_upstream_find(cf->cycle, &urcf->node->scalar);

    if (urcf->upstream == NULL) {
        return pt_conf_error(cf, urcf->node, "unknown upstream \"%s\"",
                             urcf->node->scalar.data);
    }

    return PT_OK;
}


static int
pt_upstream_postconfig(pt_conf_t *cf)
{
    size_t                    i, j;
    pt_upstream_t           **us;
    pt_upstream_target_t     *t;
    pt_upstream_main_conf_t  *umcf;

    umcf = cf->cycle->conf[pt_upstream_module.index];
    us = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        t = us[i]->targets.elts;

        for (j = 0; j < us[i]->targets.nelts; j++) {
            pt_queue_init(&t[j].idle);
            t[j].local.healthy = 1;
            t[j].shared = &t[j].local;
        }

        if (us[i]->balancer->init
            && us[i]->balancer->init(cf, us[i]) != PT_OK)
        {
            return PT_ERROR;
        }
    }

    umcf->zone = pt_shm_zone_add(cf, "upstream", 128 * 1024, 1,
                                 &pt_upstream_module, pt_upstream_zone_init);

    return umcf->zone ? PT_OK : PT_ERROR;
}


typedef struct {
    uint32_t                layout;
    pt_upstream_shared_t   *head;
} pt_upstream_zone_root_t;

#define PT_UPSTREAM_ZONE_LAYOUT   0x50550001


static int
pt_upstream_zone_init(pt_shm_zone_t *zone, void *old_data)
{
    pt_upstream_zone_root_t  *root;

    root = old_data;

    if (root && root->layout == PT_UPSTREAM_ZONE_LAYOUT) {
        return PT_OK;     /* state of targets still configured survives */
    }

    root = pt_slab_calloc(zone->slab, sizeof(pt_upstream_zone_root_t));
    if (root == NULL) {
        return PT_ERROR;
    }

    root->layout = PT_UPSTREAM_ZONE_LAYOUT;
    zone->slab->data = root;

    return PT_OK;
}


/* In the master, after the zones exist: attach each target to its shared
 * state, adopting what an earlier generation left for the same key. */
static int
pt_upstream_init_master(pt_cycle_t *cycle)
{
    char                      key[512];
    size_t                    i, j, len;
    pt_slab_pool_t           *slab;
    pt_upstream_t           **us;
    pt_upstream_shared_t     *s;
    pt_upstream_target_t     *t;
    pt_upstream_zone_root_t  *root;
    pt_upstream_main_conf_t  *umcf;

    umcf = cycle->conf[pt_upstream_module.index];
    slab = umcf->zone->slab;
    root = slab->data;
    us = umcf->upstreams.elts;

    pt_shmtx_lock(&slab->mutex);

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        t = us[i]->targets.elts;

        for (j = 0; j < us[i]->targets.nelts; j++) {
            len = (size_t) snprintf(key, sizeof(key), "%s/%s",
                                    us[i]->name.data, t[j].addr.text);
            len = pt_min(len, sizeof(key) - 1);

            for (s = root->head; s; s = s->next) {
                if (s->key_len == len && memcmp(s->key, key, len) == 0) {
                    break;
                }
            }

            if (s == NULL) {
                s = pt_slab_calloc_locked(slab, sizeof(pt_upstream_shared_t)
                                                + len);
                if (s == NULL) {
                    /* Counters stay per worker; nothing fails for it. */
                    pt_log_error(PT_LOG_WARN, NULL, 0, "upstream zone full: "
                                 "\"%s\" keeps per-worker counters", key);
                    continue;
                }

                s->healthy = 1;
                s->key_len = (uint32_t) len;
                memcpy(s->key, key, len);
                s->next = root->head;
                root->head = s;
            }

            t[j].shared = s;
        }
    }

    pt_shmtx_unlock(&slab->mutex);

    return PT_OK;
}


/* Smooth weighted round robin: every pick adds each target's weight to
 * its current weight and takes the largest, which then pays back the
 * total; weights 5,1,1 give a,a,b,a,c,a,a rather than a,a,a,a,a,b,c. */
static pt_upstream_target_t *
pt_upstream_pick_rr(pt_http_request_t *r, pt_upstream_t *us)
{
    size_t                 i;
    pt_int_t               total;
    pt_upstream_target_t  *t, *best;

    t = us->targets.elts;
    best = NULL;
    total = 0;

    for (i = 0; i < us->targets.nelts; i++) {
        if (!t[i].shared->healthy) {
            continue;
        }

        t[i].current_weight += t[i].weight;
        total += t[i].weight;

        if (best == NULL || t[i].current_weight > best->current_weight) {
            best = &t[i];
        }
    }

    if (best) {
        best->current_weight -= total;
    }

    return best;
}


pt_upstream_target_t *
pt_upstream_pick(pt_http_request_t *r, pt_upstream_t *us)
{
    return us->balancer->pick(r, us);
}


static void
pt_upstream_idle_close(pt_connection_t *c)
{
    pt_upstream_target_t  *t;

    t = c->data;

    pt_queue_remove(&c->queue);
    t->nidle--;
    pt_close_connection(c);
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

    if (!ev->timedout) {
        n = recv(c->fd, buf, 1, MSG_PEEK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
    }

    pt_upstream_idle_close(c);
}


pt_connection_t *
pt_upstream_keepalive_get(pt_upstream_target_t *t)
{
    pt_queue_t       *q;
    pt_connection_t  *c;

    if (pt_queue_empty(&t->idle)) {
        return NULL;
    }

    /* Most recently used first: its socket is the least likely to have
     * been closed by the backend's idle timer. */
    q = pt_queue_head(&t->idle);
    c = pt_queue_data(q, pt_connection_t, queue);
    pt_queue_remove(q);
    t->nidle--;

    pt_timer_del(c->read);
    pt_upstream_track_busy(t, 1);

    return c;
}


static pt_uint_t
pt_upstream_keepalive_limit(pt_upstream_t *us, pt_upstream_target_t *t)
{
    if (us->keepalive != PT_UPSTREAM_KEEPALIVE_AUTO) {
        return (pt_uint_t) us->keepalive;
    }

    /* As many as were busy at the recent peak: a burst that comes back
     * finds its connections still open. */
    return pt_min(pt_max(pt_max(t->peak, t->peak_prev), (pt_uint_t) 1),
                  (pt_uint_t) PT_UPSTREAM_KEEPALIVE_MAX);
}


void
pt_upstream_track_busy(pt_upstream_target_t *t, int delta)
{
    if (delta > 0) {
        t->busy++;
    } else if (t->busy) {
        t->busy--;
    }

    if (pt_current_msec - t->peak_start > PT_UPSTREAM_PEAK_MSEC) {
        t->peak_prev = t->peak;
        t->peak = t->busy;
        t->peak_start = pt_current_msec;
    }

    if (t->busy > t->peak) {
        t->peak = t->busy;
    }
}


void
pt_upstream_release(pt_upstream_t *us, pt_upstream_target_t *t,
    pt_connection_t *c, int reusable)
{
    pt_queue_t       *q;
    pt_connection_t  *old;

    pt_upstream_track_busy(t, -1);

    if (!reusable || pt_worker_exiting || c->read->eof || c->error
        || pt_upstream_keepalive_limit(us, t) == 0)
    {
        pt_close_connection(c);
        return;
    }

    if (t->nidle >= pt_upstream_keepalive_limit(us, t)) {
        /* Full: the least recently used one makes room. */
        q = pt_queue_last(&t->idle);
        old = pt_queue_data(q, pt_connection_t, queue);
        pt_upstream_idle_close(old);
    }

    pt_timer_del(c->read);
    pt_timer_del(c->write);

    c->data = t;
    c->read->handler = pt_upstream_idle_handler;
    c->write->handler = pt_upstream_idle_handler;
    c->read->timedout = 0;

    pt_queue_insert_head(&t->idle, &c->queue);
    t->nidle++;

    pt_timer_add(c->read, PT_UPSTREAM_IDLE_MSEC);

    if (c->read->ready) {
        pt_upstream_idle_handler(c->read);
    }
}


int
pt_upstream_connect(pt_upstream_target_t *t, pt_connection_t **cp)
{
    int               fd, on, rc, err;
    pt_connection_t  *c;

    fd = socket(t->addr.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK
                | SOCK_CLOEXEC, 0);
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

    memcpy(&c->sockaddr, &t->addr.sa, t->addr.socklen);
    c->socklen = t->addr.socklen;

    rc = connect(fd, (struct sockaddr *) &t->addr.sa, t->addr.socklen);
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

    pt_upstream_track_busy(t, 1);

    return rc == 0 ? PT_OK : PT_AGAIN;
}


void
pt_upstream_close_idle(pt_cycle_t *cycle)
{
    size_t                 i, j;
    pt_array_t            *a;
    pt_queue_t            *q;
    pt_upstream_t        **us;
    pt_upstream_target_t  *t;

    a = pt_upstreams(cycle);
    us = a->elts;

    for (i = 0; i < a->nelts; i++) {
        t = us[i]->targets.elts;

        for (j = 0; j < us[i]->targets.nelts; j++) {
            while (!pt_queue_empty(&t[j].idle)) {
                q = pt_queue_head(&t[j].idle);
                pt_upstream_idle_close(pt_queue_data(q, pt_connection_t,
                                                     queue));
            }
        }
    }
}


static void
pt_upstream_exit_worker(pt_cycle_t *cycle)
{
    pt_upstream_close_idle(cycle);
}
