/*
 * pt_example_module.c: a complete, small custom module to copy.
 *
 * It owns two route keys. example_header adds a response header through a
 * header filter; example_delay holds each request for a while in the
 * PREACCESS phase, the way a module waiting for Redis or an auth server
 * suspends a request (PT_AGAIN) and resumes it from an event:
 *
 *   routes:
 *     - name: hello
 *       match: { path: /hello }
 *       upstream: app
 *       example_header: { name: X-Hello, value: "route ${route}" }
 *       example_delay: 100ms
 *
 * Build it in:  ./configure --add-module=modules/example && make
 *
 * What a module is made of, top to bottom: its config struct, its keys
 * (pt_command_t), the pt_module_t that declares them and the hooks, the
 * parse and validate functions, and the request-time handler.
 */

#include "pt_http.h"
#include "pt_string.h"


/* The module's config at route scope. */
typedef struct {
    pt_str_t         name;
    pt_template_t   *value;
    pt_msec_t        delay;          /* 0: no delay */
} pt_example_conf_t;

/* Per-request state: the timer that resumes the request. */
typedef struct {
    pt_event_t           timer;
    pt_http_request_t   *r;
    unsigned             done:1;
} pt_example_ctx_t;


static void *pt_example_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_example_set_header(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_example_postconfig(pt_conf_t *cf);
static int pt_example_header_filter(pt_http_request_t *r);
static int pt_example_delay_handler(pt_http_request_t *r);


static const pt_command_t  pt_example_commands[] = {

    { "example_header", PT_CONF_ROUTE | PT_CONF_MAP, pt_example_set_header,
      0, NULL },

    { "example_delay", PT_CONF_ROUTE | PT_CONF_SCALAR, pt_conf_set_msec,
      offsetof(pt_example_conf_t, delay), NULL },

    pt_null_command
};


pt_module_t  pt_example_module = {
    .name = "example",                        /* what -V prints          */
    .abi = PT_MODULE_ABI,                     /* a mismatch is refused   */
    .commands = pt_example_commands,          /* the keys it owns        */
    .create_conf = pt_example_create_conf,    /* its config, per scope   */
    .postconfig = pt_example_postconfig,      /* handler and filter      */

    /* Also there: preconfig (register variables), merge_conf, validate,
     * init_master, init_worker, exit_worker, exit_master, and
     * init_helper/exit_helper for work done once for the whole gateway
     * (core/pt_module.h). */
};


static void *
pt_example_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_example_conf_t  *ecf;

    if (level != PT_CONF_LEVEL_ROUTE) {
        return NULL;                 /* no config at other scopes */
    }

    ecf = pt_pcalloc(cf->pool, sizeof(pt_example_conf_t));

    return ecf ? ecf : PT_CONF_ERROR_PTR;
}


static int
pt_example_set_header(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    size_t              i;
    pt_yaml_node_t     *name, *value;
    pt_example_conf_t  *ecf;

    ecf = conf;
    name = pt_yaml_map_get(node, "name");
    value = pt_yaml_map_get(node, "value");

    for (i = 0; i < node->n; i++) {
        if (node->pairs[i].value != name && node->pairs[i].value != value) {
            return pt_conf_error(cf, node->pairs[i].key,
                                 "unknown key \"%s\" in example_header (name, value)",
                                 node->pairs[i].key->scalar.data);
        }
    }

    if (name == NULL || value == NULL) {
        return pt_conf_error(cf, node, "example_header needs a name and a value"
                             );
    }

    if (pt_conf_expect(cf, name, PT_YAML_SCALAR, "example_header: name")
        != PT_OK)
    {
        return PT_ERROR;
    }

    if (!pt_http_is_token(&name->scalar)) {
        return pt_conf_error(cf, name,
                             "example_header: invalid header name \"%s\"",
                             name->scalar.data);
    }

    ecf->name = name->scalar;

    /* Templates are compiled once here, never parsed per request. */
    ecf->value = pt_template_compile(cf, value);

    return ecf->value ? PT_OK : PT_ERROR;
}


static int
pt_example_postconfig(pt_conf_t *cf)
{
    /* 800: after the upstream's headers are in, before the head is
     * written (the core does that last). */
    if (pt_http_header_filter_add(cf, pt_example_header_filter, 800,
                                  &pt_example_module) != PT_OK)
    {
        return PT_ERROR;
    }

    return pt_http_phase_add(cf, PT_HTTP_PREACCESS_PHASE,
                             pt_example_delay_handler, 500,
                             &pt_example_module);
}


static void
pt_example_resume(pt_event_t *ev)
{
    pt_example_ctx_t  *ctx;

    ctx = ev->data;
    ctx->done = 1;

    /* Runs the phase that suspended again, from the same handler. */
    pt_http_run_phases(ctx->r);
}


/* If the request ends before the timer fires (the client left), the
 * timer must not fire into freed memory. */
static void
pt_example_cleanup(void *data)
{
    pt_example_ctx_t  *ctx;

    ctx = data;
    pt_timer_del(&ctx->timer);
}


static int
pt_example_delay_handler(pt_http_request_t *r)
{
    pt_example_ctx_t   *ctx;
    pt_example_conf_t  *ecf;

    ecf = pt_http_route_conf(r, pt_example_module);

    if (ecf == NULL || ecf->delay == 0) {
        return PT_CONTINUE;
    }

    ctx = pt_http_get_module_ctx(r, pt_example_module);

    if (ctx) {
        /* Resumed: the wait is over. */
        return ctx->done ? PT_CONTINUE : PT_AGAIN;
    }

    ctx = pt_pcalloc(r->pool, sizeof(pt_example_ctx_t));
    if (ctx == NULL
        || pt_pool_cleanup_add(r->pool, pt_example_cleanup, ctx) == NULL)
    {
        return PT_ERROR;
    }

    ctx->r = r;
    ctx->timer.data = ctx;
    ctx->timer.handler = pt_example_resume;
    pt_http_set_module_ctx(r, ctx, pt_example_module);

    pt_timer_add(&ctx->timer, ecf->delay);

    return PT_AGAIN;
}


static int
pt_example_header_filter(pt_http_request_t *r)
{
    pt_str_t            value;
    pt_example_conf_t  *ecf;

    ecf = pt_http_route_conf(r, pt_example_module);

    if (ecf == NULL || ecf->name.len == 0) {
        return PT_OK;
    }

    if (pt_template_eval(r, ecf->value, &value) != PT_OK) {
        return PT_ERROR;
    }

    return pt_http_header_out_set(r, ecf->name.data, ecf->name.len,
                                  value.data, value.len);
}
