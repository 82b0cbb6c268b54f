/*
 * pt_auth_module.c: authentication and authorization (the ACCESS phase).
 *
 * For now a scaffold that owns a route's `auth: { forward: {...} }` and
 * runs forward auth (pt_auth_forward.c) in the ACCESS phase.
 */

#include "pt_http.h"
#include "pt_auth_forward.h"


typedef struct {
    pt_auth_forward_t   *forward;
} pt_auth_conf_t;

/* Per request: the forward check's state. */
typedef struct {
    void                *forward;
} pt_auth_ctx_t;


static void *pt_auth_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_auth_set(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_auth_validate(pt_conf_t *cf, void *conf);
static int pt_auth_postconfig(pt_conf_t *cf);
static int pt_auth_access(pt_http_request_t *r);


static const pt_command_t  pt_auth_commands[] = {

    { "auth", PT_CONF_ROUTE | PT_CONF_MAP, pt_auth_set, 0, NULL },

    pt_null_command
};


pt_module_t  pt_auth_module = {
    .name = "auth",
    .abi = PT_MODULE_ABI,
    .commands = pt_auth_commands,
    .create_conf = pt_auth_create_conf,
    .validate = pt_auth_validate,
    .postconfig = pt_auth_postconfig,
};


static void *
pt_auth_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_auth_conf_t  *acf;

    if (level != PT_CONF_LEVEL_ROUTE) {
        return NULL;
    }

    acf = pt_pcalloc(cf->pool, sizeof(pt_auth_conf_t));

    return acf ? acf : PT_CONF_ERROR_PTR;
}


static int
pt_auth_set(pt_conf_t *cf, const pt_command_t *cmd, pt_yaml_node_t *node,
    void *conf)
{
    size_t           i;
    pt_auth_conf_t  *acf;

    acf = conf;

    for (i = 0; i < node->n; i++) {
        if (strcmp(node->pairs[i].key->scalar.data, "forward") != 0) {
            return pt_conf_error(cf, node->pairs[i].key,
                                 "unknown key \"%s\" in auth (forward)",
                                 node->pairs[i].key->scalar.data);
        }

        acf->forward = pt_auth_forward_parse(cf, node->pairs[i].value);
        if (acf->forward == NULL) {
            return PT_ERROR;
        }
    }

    return PT_OK;
}


/* Every upstream is known by now. */
static int
pt_auth_validate(pt_conf_t *cf, void *conf)
{
    pt_auth_conf_t  *acf;

    acf = conf;

    if (cf->level != PT_CONF_LEVEL_ROUTE || acf->forward == NULL) {
        return PT_OK;
    }

    return pt_auth_forward_resolve(cf, acf->forward);
}


static int
pt_auth_postconfig(pt_conf_t *cf)
{
    return pt_http_phase_add(cf, PT_HTTP_ACCESS_PHASE, pt_auth_access, 100,
                             &pt_auth_module);
}


static int
pt_auth_access(pt_http_request_t *r)
{
    pt_auth_ctx_t   *ctx;
    pt_auth_conf_t  *acf;

    acf = pt_http_route_conf(r, pt_auth_module);

    if (acf == NULL || acf->forward == NULL) {
        return PT_CONTINUE;
    }

    ctx = pt_http_get_module_ctx(r, pt_auth_module);

    if (ctx == NULL) {
        ctx = pt_pcalloc(r->pool, sizeof(pt_auth_ctx_t));
        if (ctx == NULL) {
            return PT_ERROR;
        }

        pt_http_set_module_ctx(r, ctx, pt_auth_module);
    }

    return pt_auth_forward_check(r, acf->forward, &ctx->forward);
}
