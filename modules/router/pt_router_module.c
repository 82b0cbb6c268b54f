/*
 * pt_router_module.c: the "router" module: `match:` chooses the route in
 * the ROUTE phase, and `respond:` is an action that answers from config.
 *
 * Matching here covers paths: an exact path ("=/health") beats the
 * longest matching prefix ("/users/"); among equal candidates the one
 * written first wins. The admin listener has its own table of built-in
 * endpoints, matched exactly.
 */

#include "pt_http.h"
#include "pt_string.h"


typedef struct {
    pt_str_t          name;
    pt_template_t    *value;
} pt_router_header_t;

typedef struct {
    pt_yaml_node_t   *match;
    pt_str_t          path;          /* without a leading "=" */
    unsigned          exact:1;
    unsigned          has_path:1;

    unsigned          respond_status;
    pt_template_t    *respond_body;
    pt_array_t        respond_headers;   /* pt_router_header_t */
} pt_router_route_conf_t;


static void *pt_router_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_router_validate(pt_conf_t *cf, void *conf);
static int pt_router_postconfig(pt_conf_t *cf);
static int pt_router_set_match(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_router_set_respond(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_router_route(pt_http_request_t *r);
static int pt_router_respond(pt_http_request_t *r);


static const pt_command_t  pt_router_commands[] = {

    { "match", PT_CONF_ROUTE | PT_CONF_MAP, pt_router_set_match, 0, NULL },

    { "respond", PT_CONF_ROUTE | PT_CONF_MAP, pt_router_set_respond, 0,
      NULL },

    pt_null_command
};


pt_module_t  pt_router_module = {
    "router",
    PT_MODULE_ABI,
    0,
    pt_router_commands,
    NULL,
    pt_router_create_conf,
    NULL,
    pt_router_validate,
    pt_router_postconfig,
    NULL,
    NULL,
    NULL,
    NULL
};


static void *
pt_router_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_router_route_conf_t  *rrcf;

    if (level != PT_CONF_LEVEL_ROUTE) {
        return NULL;
    }

    rrcf = pt_pcalloc(cf->pool, sizeof(pt_router_route_conf_t));
    if (rrcf == NULL) {
        return PT_CONF_ERROR_PTR;
    }

    return rrcf;
}


static int
pt_router_set_match(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                      rc;
    size_t                   i;
    pt_yaml_node_t          *key, *value;
    pt_router_route_conf_t  *rrcf;

    rrcf = conf;
    rrcf->match = node;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key;
        value = node->pairs[i].value;

        if (strcmp(key->scalar.data, "path") != 0) {
            rc = pt_conf_error(cf, key, "unknown key \"%s\" in match",
                               key->scalar.data);
            continue;
        }

        if (pt_conf_expect(cf, value, PT_YAML_SCALAR, "match: path")
            != PT_OK)
        {
            rc = PT_ERROR;
            continue;
        }

        rrcf->path = value->scalar;
        rrcf->has_path = 1;

        if (rrcf->path.len && rrcf->path.data[0] == '=') {
            rrcf->exact = 1;
            rrcf->path.data++;
            rrcf->path.len--;
        }

        if (rrcf->path.len == 0 || rrcf->path.data[0] != '/') {
            rc = pt_conf_error(cf, value, "match: path must start with "
                               "\"/\" (or \"=/\" for an exact path): "
                               "\"%s\"", value->scalar.data);
        }
    }

    return rc;
}


static int
pt_router_set_respond(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                      rc;
    size_t                   i, j;
    int64_t                  status;
    const char              *reason;
    pt_yaml_node_t          *key, *value;
    pt_router_header_t      *h;
    pt_router_route_conf_t  *rrcf;

    rrcf = conf;
    rc = PT_OK;
    rrcf->respond_status = 200;

    if (pt_array_init(&rrcf->respond_headers, cf->pool, 2,
                      sizeof(pt_router_header_t)) != PT_OK)
    {
        return PT_ERROR;
    }

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key;
        value = node->pairs[i].value;

        if (strcmp(key->scalar.data, "status") == 0) {
            if (value->type != PT_YAML_SCALAR
                || pt_parse_int(value->scalar.data, value->scalar.len, 200,
                                599, &status, &reason) != PT_OK)
            {
                rc = pt_conf_error(cf, value, "respond: status must be a "
                                   "number from 200 to 599");
                continue;
            }
            rrcf->respond_status = (unsigned) status;

        } else if (strcmp(key->scalar.data, "body") == 0) {
            rrcf->respond_body = pt_template_compile(cf, value);
            if (rrcf->respond_body == NULL) {
                rc = PT_ERROR;
            }

        } else if (strcmp(key->scalar.data, "headers") == 0) {
            if (pt_conf_expect(cf, value, PT_YAML_MAP, "respond: headers")
                != PT_OK)
            {
                rc = PT_ERROR;
                continue;
            }

            for (j = 0; j < value->n; j++) {
                h = pt_array_push(&rrcf->respond_headers);
                if (h == NULL) {
                    return PT_ERROR;
                }

                h->name = value->pairs[j].key->scalar;

                if (!pt_http_is_token(&h->name)) {
                    rc = pt_conf_error(cf, value->pairs[j].key,
                                       "respond: invalid header name "
                                       "\"%s\"", h->name.data);
                }

                h->value = pt_template_compile(cf, value->pairs[j].value);
                if (h->value == NULL) {
                    rc = PT_ERROR;
                }
            }

        } else {
            rc = pt_conf_error(cf, key, "unknown key \"%s\" in respond "
                               "(status, headers, body)", key->scalar.data);
        }
    }

    if (pt_route_set_content(cf, node, "respond", pt_router_respond)
        != PT_OK)
    {
        rc = PT_ERROR;
    }

    return rc;
}


static int
pt_router_validate(pt_conf_t *cf, void *conf)
{
    pt_route_t              *route;
    pt_router_route_conf_t  *rrcf;

    rrcf = conf;
    route = cf->scope;

    if (cf->level != PT_CONF_LEVEL_ROUTE || route == NULL || route->admin) {
        return PT_OK;
    }

    if (!rrcf->has_path) {
        return pt_conf_error(cf, rrcf->match ? rrcf->match : route->node,
                             "route \"%s\" has no match: path",
                             route->name.data);
    }

    return PT_OK;
}


static int
pt_router_postconfig(pt_conf_t *cf)
{
    return pt_http_phase_add(cf, PT_HTTP_ROUTE_PHASE, pt_router_route, 100,
                             &pt_router_module);
}


/* The best route for r->path: an exact match, else the longest prefix;
 * the first written wins a tie. */
static pt_route_t *
pt_router_find(pt_http_request_t *r)
{
    size_t                   i, best_len;
    pt_route_t             **routes, *best;
    pt_router_route_conf_t  *rrcf;

    routes = r->hmcf->routes.elts;
    best = NULL;
    best_len = 0;

    for (i = 0; i < r->hmcf->routes.nelts; i++) {
        rrcf = routes[i]->conf[pt_router_module.index];

        if (rrcf->exact) {
            if (pt_str_equal(&rrcf->path, &r->path)) {
                return routes[i];
            }
            continue;
        }

        if (rrcf->path.len <= r->path.len
            && memcmp(rrcf->path.data, r->path.data, rrcf->path.len) == 0
            && (best == NULL || rrcf->path.len > best_len))
        {
            best = routes[i];
            best_len = rrcf->path.len;
        }
    }

    return best;
}


static int
pt_router_route(pt_http_request_t *r)
{
    size_t        i;
    pt_route_t  **admin;

    if (r->hc->listen->admin) {
        admin = r->hmcf->admin_routes.elts;

        for (i = 0; i < r->hmcf->admin_routes.nelts; i++) {
            if (strlen(admin[i]->content_key) == r->path.len
                && memcmp(admin[i]->content_key, r->path.data, r->path.len)
                   == 0)
            {
                r->route = admin[i];
                r->content_handler = admin[i]->content;
                return PT_CONTINUE;
            }
        }

        return 404;
    }

    r->route = pt_router_find(r);

    if (r->route == NULL) {
        return 404;
    }

    r->content_handler = r->route->content;

    return PT_CONTINUE;
}


static int
pt_router_respond(pt_http_request_t *r)
{
    size_t                   i;
    pt_str_t                 body, value;
    pt_router_header_t      *h;
    pt_router_route_conf_t  *rrcf;

    rrcf = r->route->conf[pt_router_module.index];

    body.len = 0;
    body.data = "";

    if (rrcf->respond_body
        && pt_template_eval(r, rrcf->respond_body, &body) != PT_OK)
    {
        return PT_ERROR;
    }

    h = rrcf->respond_headers.elts;

    for (i = 0; i < rrcf->respond_headers.nelts; i++) {
        if (pt_template_eval(r, h[i].value, &value) != PT_OK
            || pt_http_header_out_add(r, h[i].name.data, h[i].name.len,
                                      value.data, value.len) != PT_OK)
        {
            return PT_ERROR;
        }
    }

    if (pt_http_header_find(&r->headers_out.headers, "Content-Type", 12)
        == NULL
        && pt_http_header_out_add(r, "Content-Type", 12,
                                  "text/plain; charset=utf-8", 25) != PT_OK)
    {
        return PT_ERROR;
    }

    pt_http_finalize(r, pt_http_send_response(r, rrcf->respond_status, NULL,
                                              body.data, body.len));

    return PT_DONE;
}
