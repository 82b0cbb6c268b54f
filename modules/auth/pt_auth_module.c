/*
 * pt_auth_module.c: authentication and authorization, in the ACCESS
 * phase.
 *
 * A route's auth lists methods; the first whose credential the request
 * carries decides (401 when it is bad, 401 with the route's challenges
 * when none is there). A known identity then passes allow_groups and
 * require_claims or gets 403. The upstream request gets X-Consumer and
 * X-Consumer-Groups, and loses the credential unless keep_credentials.
 * Copies of X-Consumer* that a client sends are removed on every route,
 * so no backend can be fooled by one, whichever route reached it.
 */

#include "pt_auth.h"
#include "pt_auth_forward.h"
#include "pt_string.h"


static int pt_auth_preconfig(pt_conf_t *cf);
static int pt_auth_postconfig(pt_conf_t *cf);
static int pt_auth_init_conf(pt_conf_t *cf);
static int pt_auth_init_master(pt_cycle_t *cycle);
static int pt_auth_init_worker(pt_cycle_t *cycle);
static void pt_auth_exit_worker(pt_cycle_t *cycle);
static int pt_auth_init_helper(pt_cycle_t *cycle);
static int pt_auth_handler(pt_http_request_t *r);
static int pt_auth_var_claim(pt_http_request_t *r, const pt_str_t *arg,
    pt_str_t *v);


pt_module_t  pt_auth_module = {
    .name = "auth",
    .abi = PT_MODULE_ABI,
    .commands = pt_auth_commands,
    .preconfig = pt_auth_preconfig,
    .create_conf = pt_auth_create_conf,
    .postconfig = pt_auth_postconfig,
    .init_conf = pt_auth_init_conf,
    .init_master = pt_auth_init_master,
    .init_worker = pt_auth_init_worker,
    .exit_worker = pt_auth_exit_worker,
    .init_helper = pt_auth_init_helper,
    .exit_helper = pt_auth_jwks_exit_helper,
};


static const pt_http_var_t  pt_auth_var_claims = {
    "claim.", pt_auth_var_claim, 1
};


pt_auth_main_conf_t *
pt_auth_main_conf(void)
{
    return pt_cycle->conf[pt_auth_module.index];
}


static int
pt_auth_preconfig(pt_conf_t *cf)
{
    return pt_http_var_add(cf, &pt_auth_var_claims);
}


static int
pt_auth_postconfig(pt_conf_t *cf)
{
    if (pt_auth_postconfig_conf(cf) != PT_OK
        || pt_auth_jwks_postconfig(cf, cf->cycle->conf[pt_auth_module.index])
           != PT_OK)
    {
        return PT_ERROR;
    }

    /* 100: after PREACCESS limits by address, as SPEC 3 orders them. */
    return pt_http_phase_add(cf, PT_HTTP_ACCESS_PHASE, pt_auth_handler, 100,
                             &pt_auth_module);
}


static int
pt_auth_init_conf(pt_conf_t *cf)
{
    return pt_auth_jwks_init_conf(cf, cf->cycle->conf[pt_auth_module.index]);
}


static int
pt_auth_init_master(pt_cycle_t *cycle)
{
    return pt_auth_jwks_init_master(cycle,
                                    cycle->conf[pt_auth_module.index]);
}


static int
pt_auth_init_helper(pt_cycle_t *cycle)
{
    return pt_auth_jwks_init_helper(cycle,
                                    cycle->conf[pt_auth_module.index]);
}


static int
pt_auth_init_worker(pt_cycle_t *cycle)
{
    pt_auth_main_conf_t  *amcf;

    amcf = cycle->conf[pt_auth_module.index];

    if (!amcf->used) {
        return PT_OK;
    }

    if (pt_auth_cache_init(amcf->cache_size) != PT_OK) {
        pt_log_error(PT_LOG_ALERT, NULL, errno,
                     "cannot allocate the auth cache of %lu entries",
                     (unsigned long) amcf->cache_size);
        return PT_ERROR;
    }

    return PT_OK;
}


static void
pt_auth_exit_worker(pt_cycle_t *cycle)
{
    pt_auth_cache_free();
    pt_auth_jwks_exit_worker(cycle->conf[pt_auth_module.index]);
}


static void
pt_auth_ctx_cleanup(void *data)
{
    pt_auth_ctx_t  *ctx;

    ctx = data;

    if (ctx->claims) {
        json_decref(ctx->claims);
        ctx->claims = NULL;
    }
}


/* The challenges of a 401 (or the Bearer one of a 403): one per method
 * that has a scheme. A bad bearer token says why (RFC 6750 3.1); a
 * request with no credential at all gets no error code. */
static int
pt_auth_challenge(pt_http_request_t *r, pt_auth_route_conf_t *acf,
    unsigned status, unsigned method, const char *reason)
{
    char        *v;
    size_t       len;
    const char  *error;

    if (pt_auth_route_has(acf, PT_AUTH_JWT)) {
        error = NULL;

        if (status == 403) {
            error = "insufficient_scope";
        } else if (method == PT_AUTH_JWT && reason) {
            error = "invalid_token";
        }

        if (error) {
            v = pt_psprintf(r->pool, &len,
                            "Bearer realm=\"%s\", error=\"%s\", "
                            "error_description=\"%s\"",
                            acf->realm.data,
                            error, reason ? reason : "permission denied");
        } else {
            v = pt_psprintf(r->pool, &len, "Bearer realm=\"%s\"",
                            acf->realm.data);
        }

        if (v == NULL
            || pt_http_header_out_add(r, "WWW-Authenticate", 16, v, len)
               != PT_OK)
        {
            return PT_ERROR;
        }
    }

    if (status == 401 && pt_auth_route_has(acf, PT_AUTH_BASIC)) {
        v = pt_psprintf(r->pool, &len, "Basic realm=\"%s\", charset=\"UTF-8\"",
                        acf->realm.data);

        if (v == NULL
            || pt_http_header_out_add(r, "WWW-Authenticate", 16, v, len)
               != PT_OK)
        {
            return PT_ERROR;
        }
    }

    return status;
}


/* A claim rule holds when the claim equals the value, or holds it as one
 * of its space-separated words (scope), or as an array element. */
static int
pt_auth_claim_holds(json_t *claims, pt_auth_claim_rule_t *rule)
{
    size_t       i, len;
    json_t      *v, *e;
    const char  *s, *p, *end, *sp;

    v = claims ? json_object_getn(claims, rule->name.data, rule->name.len)
               : NULL;

    if (json_is_string(v)) {
        s = json_string_value(v);
        len = json_string_length(v);
        end = s + len;

        for (p = s; p < end; p = sp + 1) {
            sp = memchr(p, ' ', (size_t) (end - p));
            if (sp == NULL) {
                sp = end;
            }

            if ((size_t) (sp - p) == rule->value.len
                && memcmp(p, rule->value.data, rule->value.len) == 0)
            {
                return 1;
            }
        }

        return 0;
    }

    if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            if (json_is_string(e) && json_string_length(e) == rule->value.len
                && memcmp(json_string_value(e), rule->value.data,
                          rule->value.len) == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}


/* allow_groups and require_claims: 403 names what was missing. */
static const char *
pt_auth_denied(pt_auth_route_conf_t *acf, pt_auth_ctx_t *ctx)
{
    size_t                 i;
    pt_str_t              *g;
    const char            *p, *end, *comma;
    pt_auth_claim_rule_t  *rule;

    if (acf->allow_groups.nelts) {
        g = acf->allow_groups.elts;
        end = ctx->groups.data + ctx->groups.len;

        for (i = 0; i < acf->allow_groups.nelts; i++) {
            for (p = ctx->groups.data; p && p < end; p = comma + 1) {
                comma = memchr(p, ',', (size_t) (end - p));
                if (comma == NULL) {
                    comma = end;
                }

                if ((size_t) (comma - p) == g[i].len
                    && memcmp(p, g[i].data, g[i].len) == 0)
                {
                    goto groups_ok;
                }
            }
        }

        return "not in an allowed group";
    }

groups_ok:

    rule = acf->require_claims.elts;
    for (i = 0; i < acf->require_claims.nelts; i++) {
        if (!pt_auth_claim_holds(ctx->claims, &rule[i])) {
            return "a required claim is missing";
        }
    }

    return NULL;
}


/* The identity goes upstream; the credential does not. */
static int
pt_auth_pass(pt_http_request_t *r, pt_auth_route_conf_t *acf,
    pt_auth_ctx_t *ctx)
{
    pt_uint_t        i;
    static pt_str_t  consumer = pt_string("X-Consumer");
    static pt_str_t  groups = pt_string("X-Consumer-Groups");

    if (ctx->consumer && ctx->name.len == 0) {
        ctx->name = ctx->consumer->name;
        ctx->groups = ctx->consumer->groups_text;
    }

    r->consumer = ctx->name;

    if (ctx->name.len
        && pt_http_header_in_add(r, &consumer, &ctx->name) == NULL)
    {
        return PT_ERROR;
    }

    if (ctx->groups.len
        && pt_http_header_in_add(r, &groups, &ctx->groups) == NULL)
    {
        return PT_ERROR;
    }

    if (!acf->keep_credentials) {
        for (i = 0; i < acf->nmethods; i++) {
            if (pt_auth_strip_credentials(r, acf, acf->methods[i]) != PT_OK)
            {
                return PT_ERROR;
            }
        }
    }

    return PT_CONTINUE;
}


static int
pt_auth_handler(pt_http_request_t *r)
{
    int                    rc;
    pt_uint_t              i;
    const char            *reason, *denied;
    pt_auth_ctx_t         *ctx;
    pt_pool_cleanup_t     *cln;
    pt_auth_route_conf_t  *acf;

    ctx = pt_http_get_module_ctx(r, pt_auth_module);

    if (ctx == NULL) {
        pt_http_header_in_remove(r, "X-Consumer", 10);
        pt_http_header_in_remove(r, "X-Consumer-Groups", 17);

        acf = pt_http_route_conf(r, pt_auth_module);
        if (acf == NULL || !acf->set) {
            return PT_CONTINUE;
        }

        ctx = pt_pcalloc(r->pool, sizeof(pt_auth_ctx_t));
        cln = ctx ? pt_pool_cleanup_add(r->pool, pt_auth_ctx_cleanup, ctx)
                  : NULL;
        if (cln == NULL) {
            return PT_ERROR;
        }

        pt_http_set_module_ctx(r, ctx, pt_auth_module);
    }

    acf = pt_http_route_conf(r, pt_auth_module);
    reason = NULL;
    rc = PT_DECLINED;

    for (i = ctx->method; i < acf->nmethods; i++) {
        ctx->method = i;

        switch (acf->methods[i]) {
        case PT_AUTH_API_KEY:
            rc = pt_auth_api_key(r, acf, ctx, &reason);
            break;
        case PT_AUTH_BASIC:
            rc = pt_auth_basic(r, acf, ctx, &reason);
            break;
        case PT_AUTH_JWT:
            rc = pt_auth_jwt(r, acf, ctx, &reason);
            break;
        case PT_AUTH_MTLS:
            rc = pt_auth_mtls(r, acf, ctx, &reason);
            break;
        default:
            rc = pt_auth_forward_check(r, acf->forward, &ctx->forward);
            if (rc == PT_AGAIN || rc == PT_DONE) {
                return rc;
            }
            break;
        }

        if (rc != PT_DECLINED) {
            break;
        }
    }

    if (rc == PT_DECLINED) {
        pt_http_log_request(r, PT_LOG_INFO,
                            "auth: no credentials, route \"%s\"",
                            r->route->name.data);
        return pt_auth_challenge(r, acf, 401, PT_AUTH_NMETHODS, NULL);
    }

    if (rc == 401) {
        pt_http_log_request(r, PT_LOG_INFO, "auth: %s, route \"%s\"",
                            reason ? reason : "rejected",
                            r->route->name.data);
        return pt_auth_challenge(r, acf, 401, acf->methods[ctx->method],
                                 reason);
    }

    if (rc != PT_OK) {
        return rc;
    }

    if (ctx->consumer && ctx->name.len == 0) {
        ctx->name = ctx->consumer->name;
        ctx->groups = ctx->consumer->groups_text;
    }

    denied = pt_auth_denied(acf, ctx);
    if (denied) {
        pt_http_log_request(r, PT_LOG_INFO,
                            "auth: consumer \"%.*s\" %s, route \"%s\"",
                            (int) ctx->name.len,
                            ctx->name.data, denied, r->route->name.data);
        return pt_auth_challenge(r, acf, 403, acf->methods[ctx->method],
                                 denied);
    }

    return pt_auth_pass(r, acf, ctx);
}


/* ${claim.NAME}: a verified token's claim as text (strings as they are,
 * numbers and booleans as JSON writes them, arrays of strings joined by
 * spaces); empty without a token or such a claim. */
static int
pt_auth_var_claim(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    char           *p, *text;
    size_t          i, len;
    json_t         *c, *e;
    pt_auth_ctx_t  *ctx;

    ctx = pt_http_get_module_ctx(r, pt_auth_module);
    if (ctx == NULL || ctx->claims == NULL) {
        return PT_DECLINED;
    }

    c = json_object_getn(ctx->claims, arg->data, arg->len);

    if (json_is_string(c)) {
        v->data = (char *) json_string_value(c);
        v->len = json_string_length(c);
        return PT_OK;
    }

    if (json_is_number(c) || json_is_boolean(c)) {
        text = json_dumps(c, JSON_ENCODE_ANY | JSON_COMPACT);
        if (text == NULL) {
            return PT_ERROR;
        }

        v->data = pt_pstrndup(r->pool, text, strlen(text));
        v->len = v->data ? strlen(text) : 0;
        free(text);
        return v->data ? PT_OK : PT_ERROR;
    }

    if (!json_is_array(c)) {
        return PT_DECLINED;
    }

    len = 0;
    json_array_foreach(c, i, e) {
        if (!json_is_string(e)) {
            return PT_DECLINED;
        }
        len += json_string_length(e) + 1;
    }

    p = pt_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return PT_ERROR;
    }

    v->data = p;
    json_array_foreach(c, i, e) {
        if (i) {
            *p++ = ' ';
        }
        p = pt_cpymem(p, json_string_value(e), json_string_length(e));
    }
    *p = '\0';
    v->len = (size_t) (p - v->data);

    return PT_OK;
}
