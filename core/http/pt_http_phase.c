/*
 * pt_http_phase.c: the phase engine: registration, ordering, running.
 *
 * Modules register handlers and filters with explicit priorities in
 * postconfig; once every module has, the registrations are sorted into
 * flat arrays, so running a request is a walk over an index.
 */

#include "pt_http.h"
#include "pt_string.h"


enum {
    PT_HTTP_REG_PHASE = 0,
    PT_HTTP_REG_CONNECT,
    PT_HTTP_REG_HEADER,
    PT_HTTP_REG_BODY
};

typedef struct {
    int              kind;
    int              phase;
    int              prio;
    void           (*fn)(void);
    pt_module_t     *module;
} pt_http_reg_t;

typedef struct {
    pt_http_handler_pt   handler;
    int                  phase;
} pt_http_phase_handler_t;

typedef struct {
    pt_http_phase_handler_t      *handlers;   /* POST_READ .. CONTENT      */
    pt_uint_t                     nhandlers;
    pt_http_handler_pt           *log;
    pt_uint_t                     nlog;
    pt_http_connect_handler_pt   *connect;
    pt_uint_t                     nconnect;
    pt_http_header_filter_pt     *header;
    pt_uint_t                     nheader;
    pt_http_body_filter_pt       *body;
    pt_uint_t                     nbody;
    pt_http_reg_t                *sorted;     /* for -V                    */
    pt_uint_t                     nsorted;
} pt_http_phase_engine_t;


static void pt_http_connect_event(pt_event_t *ev);


static const char  *pt_http_phase_names[] = {
    "POST_READ", "ROUTE", "REWRITE", "PREACCESS", "ACCESS", "LIMIT",
    "PRECONTENT", "CONTENT", "LOG"
};


static int
pt_http_reg_add(pt_conf_t *cf, int kind, int phase, void (*fn)(void),
    int prio, pt_module_t *m)
{
    pt_http_reg_t        *reg;
    pt_http_main_conf_t  *hmcf;

    hmcf = pt_http_main_conf(cf->cycle);

    if (hmcf->regs.elts == NULL
        && pt_array_init(&hmcf->regs, cf->pool, 16, sizeof(pt_http_reg_t))
           != PT_OK)
    {
        return PT_ERROR;
    }

    reg = pt_array_push(&hmcf->regs);
    if (reg == NULL) {
        return PT_ERROR;
    }

    reg->kind = kind;
    reg->phase = phase;
    reg->prio = prio;
    reg->fn = fn;
    reg->module = m;

    return PT_OK;
}


int
pt_http_phase_add(pt_conf_t *cf, pt_http_phase_e phase, pt_http_handler_pt h,
    int prio, pt_module_t *m)
{
    if (phase == PT_HTTP_CONTENT_PHASE) {
        /* The content is the route's action (pt_route_set_content). */
        return pt_conf_error(cf, NULL,
                             "module \"%s\" registered a CONTENT phase handler; use a route action",
                             m->name);
    }

    return pt_http_reg_add(cf, PT_HTTP_REG_PHASE, phase, (void (*)(void)) h,
                           prio, m);
}


int
pt_http_connect_add(pt_conf_t *cf, pt_http_connect_handler_pt h, int prio,
    pt_module_t *m)
{
    return pt_http_reg_add(cf, PT_HTTP_REG_CONNECT, -1, (void (*)(void)) h,
                           prio, m);
}


int
pt_http_header_filter_add(pt_conf_t *cf, pt_http_header_filter_pt f,
    int prio, pt_module_t *m)
{
    return pt_http_reg_add(cf, PT_HTTP_REG_HEADER, -1, (void (*)(void)) f,
                           prio, m);
}


int
pt_http_body_filter_add(pt_conf_t *cf, pt_http_body_filter_pt f, int prio,
    pt_module_t *m)
{
    return pt_http_reg_add(cf, PT_HTTP_REG_BODY, -1, (void (*)(void)) f,
                           prio, m);
}


static int
pt_http_reg_cmp(const void *one, const void *two)
{
    int                   r;
    const pt_http_reg_t  *a = one, *b = two;

    if (a->kind != b->kind) {
        return a->kind - b->kind;
    }

    if (a->phase != b->phase) {
        return a->phase - b->phase;
    }

    /* Handlers: low priority first. Filters: high priority first. */
    if (a->prio != b->prio) {
        if (a->kind == PT_HTTP_REG_HEADER || a->kind == PT_HTTP_REG_BODY) {
            return b->prio - a->prio;
        }
        return a->prio - b->prio;
    }

    r = strcmp(a->module->name, b->module->name);

    return r;
}


/* The CONTENT phase runs the request's content handler. */
static int
pt_http_content_phase(pt_http_request_t *r)
{
    if (r->content_handler == NULL) {
        return 404;
    }

    /* A 2xx to an extended CONNECT says "tunnel open": only an action
     * that makes one may answer it. */
    if (r->ext_connect && !r->route->tunnels) {
        return 501;
    }

    return r->content_handler(r);
}


int
pt_http_build_engine(pt_conf_t *cf)
{
    pt_uint_t                 i, n;
    pt_http_reg_t            *regs;
    pt_http_main_conf_t      *hmcf;
    pt_http_phase_engine_t   *e;

    hmcf = pt_http_main_conf(cf->cycle);
    regs = hmcf->regs.elts;
    n = hmcf->regs.nelts;

    if (regs == NULL) {
        n = 0;
    }

    if (n) {
        qsort(regs, n, sizeof(pt_http_reg_t), pt_http_reg_cmp);
    }

    e = pt_pcalloc(cf->pool, sizeof(pt_http_phase_engine_t));
    if (e == NULL) {
        return PT_ERROR;
    }

    e->handlers = pt_pcalloc(cf->pool, (n + 1)
                             * sizeof(pt_http_phase_handler_t));
    e->log = pt_pcalloc(cf->pool, (n + 1) * sizeof(pt_http_handler_pt));
    e->connect = pt_pcalloc(cf->pool,
                            (n + 1) * sizeof(pt_http_connect_handler_pt));
    e->header = pt_pcalloc(cf->pool,
                           (n + 1) * sizeof(pt_http_header_filter_pt));
    e->body = pt_pcalloc(cf->pool, (n + 1) * sizeof(pt_http_body_filter_pt));

    if (e->handlers == NULL || e->log == NULL || e->connect == NULL
        || e->header == NULL || e->body == NULL)
    {
        return PT_ERROR;
    }

    for (i = 0; i < n; i++) {
        switch (regs[i].kind) {

        case PT_HTTP_REG_PHASE:
            if (regs[i].phase == PT_HTTP_LOG_PHASE) {
                e->log[e->nlog++] = (pt_http_handler_pt) regs[i].fn;
                break;
            }

            /* Sorted by phase, so CONTENT goes in after PRECONTENT. */
            e->handlers[e->nhandlers].handler =
                (pt_http_handler_pt) regs[i].fn;
            e->handlers[e->nhandlers].phase = regs[i].phase;
            e->nhandlers++;
            break;

        case PT_HTTP_REG_CONNECT:
            e->connect[e->nconnect++] =
                (pt_http_connect_handler_pt) regs[i].fn;
            break;

        case PT_HTTP_REG_HEADER:
            e->header[e->nheader++] = (pt_http_header_filter_pt) regs[i].fn;
            break;

        case PT_HTTP_REG_BODY:
            e->body[e->nbody++] = (pt_http_body_filter_pt) regs[i].fn;
            break;
        }
    }

    e->handlers[e->nhandlers].handler = pt_http_content_phase;
    e->handlers[e->nhandlers].phase = PT_HTTP_CONTENT_PHASE;
    e->nhandlers++;

    e->sorted = regs;
    e->nsorted = n;
    hmcf->engine = e;

    return PT_OK;
}


void
pt_http_run_phases(pt_http_request_t *r)
{
    int                       rc;
    pt_http_phase_engine_t   *e;

    e = r->hmcf->engine;

    while (r->phase_index < e->nhandlers) {
        rc = e->handlers[r->phase_index].handler(r);

        if (rc == PT_OK || rc == PT_DECLINED) {
            r->phase_index++;
            continue;
        }

        if (rc == PT_AGAIN || rc == PT_DONE) {
            return;
        }

        /* A status, or PT_ERROR. */
        pt_http_finalize(r, rc);
        return;
    }
}


/* The CONNECT phase, resumable: a handler that returns PT_AGAIN is
 * called again on the connection's next event, and the whole phase is
 * bounded by limits.handshake_timeout (a read timer, which the header
 * timeout replaces once it is over). */
int
pt__http_run_connect(pt_connection_t *c)
{
    int                       rc;
    pt_http_connection_t     *hc;
    pt_http_main_conf_t      *hmcf;
    pt_http_phase_engine_t   *e;

    hc = c->data;
    hmcf = pt_http_main_conf(pt_cycle);
    e = hmcf->engine;

    while (hc->connect_index < e->nconnect) {
        rc = e->connect[hc->connect_index](c);

        if (rc == PT_OK || rc == PT_DECLINED) {
            hc->connect_index++;
            continue;
        }

        if (rc == PT_AGAIN && !c->timedout) {
            c->read->handler = pt_http_connect_event;
            c->write->handler = pt_http_connect_event;

            if (!c->read->timer_set) {
                pt_timer_add(c->read, hmcf->handshake_timeout);
            }

            return PT_AGAIN;
        }

        return PT_ERROR;
    }

    return PT_OK;
}


static void
pt_http_connect_event(pt_event_t *ev)
{
    int               rc;
    pt_connection_t  *c;

    c = ev->data;

    if (ev->timedout) {
        c->timedout = 1;
    }

    rc = pt__http_run_connect(c);

    if (rc != PT_AGAIN) {
        pt__http_connect_done(c, rc);
    }
}


void
pt__http_run_log(pt_http_request_t *r)
{
    pt_uint_t                 i;
    pt_http_phase_engine_t   *e;

    if (r->logged) {
        return;
    }

    r->logged = 1;
    e = r->hmcf->engine;

    for (i = 0; i < e->nlog; i++) {
        (void) e->log[i](r);
    }
}


int
pt__http_run_header_filters(pt_http_request_t *r)
{
    int                       rc;
    pt_uint_t                 i;
    pt_http_phase_engine_t   *e;

    e = r->hmcf->engine;

    for (i = 0; i < e->nheader; i++) {
        rc = e->header[i](r);
        if (rc != PT_OK) {
            return rc;
        }
    }

    return PT_OK;
}


int
pt__http_run_body_filters(pt_http_request_t *r, pt_chain_t **chain)
{
    int                       rc;
    pt_uint_t                 i;
    pt_http_phase_engine_t   *e;

    e = r->hmcf->engine;

    for (i = 0; i < e->nbody; i++) {
        rc = e->body[i](r, chain);
        if (rc != PT_OK) {
            return rc;
        }
    }

    return PT_OK;
}


void
pt_http_print_phases(pt_cycle_t *cycle, FILE *out)
{
    pt_uint_t                 i;
    pt_http_reg_t            *reg;
    pt_http_phase_engine_t   *e;
    static const char        *kinds[] = { "", "CONNECT", "HEADER_FILTER",
                                          "BODY_FILTER" };

    e = pt_http_main_conf(cycle)->engine;
    if (e == NULL) {
        return;
    }

    fprintf(out, "phases:\n");

    for (i = 0; i < e->nsorted; i++) {
        reg = &e->sorted[i];

        if (reg->kind == PT_HTTP_REG_PHASE && reg->phase
                                              > PT_HTTP_PRECONTENT_PHASE)
        {
            continue;
        }

        fprintf(out, "  %-13s %-10s %d\n",
                reg->kind == PT_HTTP_REG_PHASE
                    ? pt_http_phase_names[reg->phase] : kinds[reg->kind],
                reg->module->name, reg->prio);

        /* The CONTENT slot sits between the phases and the filters. */
        if (reg->kind == PT_HTTP_REG_PHASE
            && (i + 1 == e->nsorted
                || e->sorted[i + 1].kind != PT_HTTP_REG_PHASE
                || e->sorted[i + 1].phase > PT_HTTP_PRECONTENT_PHASE))
        {
            fprintf(out, "  %-13s %-10s %s\n", "CONTENT", "(route)",
                     "the route's action");
        }
    }

    for (i = 0; i < e->nsorted; i++) {
        reg = &e->sorted[i];
        if (reg->kind == PT_HTTP_REG_PHASE
            && reg->phase == PT_HTTP_LOG_PHASE)
        {
            fprintf(out, "  %-13s %-10s %d\n", "LOG", reg->module->name,
                    reg->prio);
        }
    }
}
