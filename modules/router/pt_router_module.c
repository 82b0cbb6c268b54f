/*
 * pt_router_module.c: the "router" module: a route's `match`, `rewrite`,
 * `request_headers`, `response_headers`, and the `respond` and `redirect`
 * actions; the ROUTE phase handler.
 *
 *   match:
 *     host: "*.example.com"      exact, or a leading wildcard
 *     path: /users/              prefix; "=/users" exact; "~^/u/(\d+)$" regex
 *     methods: [GET, POST]       GET allows HEAD too
 *     headers: { X-Env: "~^(prod|stage)$", X-Api-Version: "2" }
 *     query: { beta: "1" }
 *
 * Precedence: an exact path beats the longest matching prefix, which
 * beats the regex routes, tried in the order written; among routes with
 * the same path, the one with more constraints (host, methods, each
 * header, each query parameter) wins; then the one written first.
 */

#include "pt_router.h"
#include "pt_string.h"


typedef struct {
    pt_router_table_t  *table;
} pt_router_main_conf_t;


static void *pt_router_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_router_validate(pt_conf_t *cf, void *conf);
static int pt_router_postconfig(pt_conf_t *cf);
static int pt_router_set_match(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_router_set_rewrite(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_router_set_edits(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_router_set_respond(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_router_set_redirect(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_router_route_handler(pt_http_request_t *r);


static const pt_command_t  pt_router_commands[] = {

    { "match", PT_CONF_ROUTE | PT_CONF_MAP, pt_router_set_match, 0, NULL },

    { "rewrite", PT_CONF_ROUTE | PT_CONF_MAP, pt_router_set_rewrite, 0,
      NULL },

    { "request_headers", PT_CONF_ROUTE | PT_CONF_MAP, pt_router_set_edits,
      offsetof(pt_router_conf_t, request_headers), NULL },

    { "response_headers", PT_CONF_ROUTE | PT_CONF_MAP, pt_router_set_edits,
      offsetof(pt_router_conf_t, response_headers), NULL },

    { "respond", PT_CONF_ROUTE | PT_CONF_MAP, pt_router_set_respond, 0,
      NULL },

    { "redirect", PT_CONF_ROUTE | PT_CONF_MAP, pt_router_set_redirect, 0,
      NULL },

    pt_null_command
};


pt_module_t  pt_router_module = {
    .name = "router",
    .abi = PT_MODULE_ABI,
    .commands = pt_router_commands,
    .create_conf = pt_router_create_conf,
    .validate = pt_router_validate,
    .postconfig = pt_router_postconfig,
};


static void *
pt_router_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_router_conf_t       *rcf;
    pt_router_main_conf_t  *rmcf;

    if (level == PT_CONF_LEVEL_GLOBAL) {
        rmcf = pt_pcalloc(cf->pool, sizeof(pt_router_main_conf_t));
        return rmcf ? rmcf : PT_CONF_ERROR_PTR;
    }

    if (level != PT_CONF_LEVEL_ROUTE) {
        return NULL;
    }

    rcf = pt_pcalloc(cf->pool, sizeof(pt_router_conf_t));
    if (rcf == NULL) {
        return PT_CONF_ERROR_PTR;
    }

    /* A route without `match` catches every path. */
    pt_str_set(&rcf->path, "/");

    if (pt_array_init(&rcf->other_methods, cf->pool, 1, sizeof(pt_str_t))
        != PT_OK
        || pt_array_init(&rcf->headers, cf->pool, 1,
                         sizeof(pt_router_cond_t)) != PT_OK
        || pt_array_init(&rcf->query, cf->pool, 1, sizeof(pt_router_cond_t))
           != PT_OK)
    {
        return PT_CONF_ERROR_PTR;
    }

    return rcf;
}


pt_router_table_t *
pt_router_table(pt_cycle_t *cycle)
{
    pt_router_main_conf_t  *rmcf;

    rmcf = cycle->conf[pt_router_module.index];

    return rmcf->table;
}


static int
pt_router_parse_host(pt_conf_t *cf, pt_yaml_node_t *node,
    pt_router_conf_t *rcf)
{
    size_t   i;
    char    *h;
    size_t   len;

    if (pt_conf_expect(cf, node, PT_YAML_SCALAR, "match: host") != PT_OK) {
        return PT_ERROR;
    }

    h = node->scalar.data;
    len = node->scalar.len;
    rcf->host_kind = PT_ROUTER_HOST;

    if (len > 2 && h[0] == '*' && h[1] == '.') {
        /* "*.example.com" is kept as the suffix ".example.com". */
        rcf->host_kind = PT_ROUTER_WILDCARD;
        h++;
        len--;
    }

    if (len == 0 || len > 253) {
        return pt_conf_error(cf, node, "match: host: \"%s\" is not a host name",
                             node->scalar.data);
    }

    /* Requests are matched on the host without its port, so a route with
     * one could never match. */
    if ((h[0] != '[' && memchr(h, ':', len))
        || (h[0] == '[' && h[len - 1] != ']'))
    {
        return pt_conf_error(cf, node,
                             "match: host: \"%s\": give the host without a port (requests are matched on the name alone)",
                             node->scalar.data);
    }

    for (i = 0; i < len; i++) {
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z')
              || (h[i] >= '0' && h[i] <= '9') || h[i] == '-' || h[i] == '.'
              || h[i] == '_' || h[i] == ':' || h[i] == '[' || h[i] == ']'))
        {
            return pt_conf_error(cf, node,
                                 "match: host: \"%s\" is not an exact host or \"*.\" and a domain",
                                 node->scalar.data);
        }
    }

    if (pt_str_dup(cf->pool, &rcf->host, h, len) == NULL) {
        return PT_ERROR;
    }

    pt_strlow(rcf->host.data, rcf->host.data, len);

    /* A trailing dot names the same host as the client sends it. */
    if (rcf->host.len > 1 && rcf->host.data[rcf->host.len - 1] == '.') {
        rcf->host.len--;
    }

    return PT_OK;
}


static int
pt_router_parse_path(pt_conf_t *cf, pt_yaml_node_t *node,
    pt_router_conf_t *rcf)
{
    char    *p;
    size_t   len;

    if (pt_conf_expect(cf, node, PT_YAML_SCALAR, "match: path") != PT_OK) {
        return PT_ERROR;
    }

    p = node->scalar.data;
    len = node->scalar.len;

    if (len && p[0] == '~') {
        rcf->path_kind = PT_ROUTER_REGEX;
        rcf->path.data = p + 1;
        rcf->path.len = len - 1;

        rcf->path_re = pt_regex_compile(cf, node, "match: path", p + 1,
                                        len - 1);

        return rcf->path_re ? PT_OK : PT_ERROR;
    }

    if (len && p[0] == '=') {
        rcf->path_kind = PT_ROUTER_EXACT;
        p++;
        len--;
    } else {
        rcf->path_kind = PT_ROUTER_PREFIX;
    }

    if (len == 0 || p[0] != '/') {
        return pt_conf_error(cf, node,
                             "match: path must start with \"/\" (\"=/\" for an exact path, \"~\" for a regex): \"%s\"",
                             node->scalar.data);
    }

    rcf->path.data = p;
    rcf->path.len = len;

    return PT_OK;
}


/* 1 if s is among the first n strings of a. */
static int
pt_router_str_in(const pt_str_t *a, size_t n, const pt_str_t *s)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (pt_str_equal(&a[i], s)) {
            return 1;
        }
    }

    return 0;
}


static const struct {
    const char  *name;
    unsigned     bit;
} pt_router_methods[] = {
    { "GET", PT_HTTP_GET }, { "HEAD", PT_HTTP_HEAD },
    { "POST", PT_HTTP_POST }, { "PUT", PT_HTTP_PUT },
    { "DELETE", PT_HTTP_DELETE }, { "OPTIONS", PT_HTTP_OPTIONS },
    { "PATCH", PT_HTTP_PATCH }, { "TRACE", PT_HTTP_TRACE },
    { "CONNECT", PT_HTTP_CONNECT }
};


static int
pt_router_parse_methods(pt_conf_t *cf, pt_yaml_node_t *node,
    pt_router_conf_t *rcf)
{
    size_t            i, j, n;
    pt_str_t         *other;
    pt_yaml_node_t   *m, **items;

    /* methods: GET reads as [GET]. */
    if (node->type == PT_YAML_SCALAR) {
        items = &node;
        n = 1;

    } else if (node->type == PT_YAML_SEQ && node->n > 0) {
        items = node->items;
        n = node->n;

    } else {
        return pt_conf_error(cf, node,
                             "match: methods: expected a list of method names");
    }

    for (i = 0; i < n; i++) {
        m = items[i];

        if (m->type != PT_YAML_SCALAR || !pt_http_is_token(&m->scalar)) {
            return pt_conf_error(cf, m, "match: methods: not a method name");
        }

        for (j = 0; j < pt_nelems(pt_router_methods); j++) {
            if (strcmp(pt_router_methods[j].name, m->scalar.data) == 0) {
                rcf->methods |= pt_router_methods[j].bit;
                break;
            }

            /* Methods are case-sensitive: "get" would never match GET. */
            if (strcasecmp(pt_router_methods[j].name, m->scalar.data) == 0) {
                return pt_conf_error(cf, m,
                                     "match: methods: \"%s\" is not %s (methods are case-sensitive)",
                                     m->scalar.data,
                                     pt_router_methods[j].name);
            }
        }

        if (j == pt_nelems(pt_router_methods)) {
            other = pt_array_push(&rcf->other_methods);
            if (other == NULL) {
                return PT_ERROR;
            }
            *other = m->scalar;
            rcf->methods |= PT_HTTP_OTHER;
        }
    }

    /* A route that serves GET serves HEAD too, as every server does. */
    if (rcf->methods & PT_HTTP_GET) {
        rcf->methods |= PT_HTTP_HEAD;
    }

    return PT_OK;
}


/* headers: and query: maps of name to "value" or "~regex". */
static int
pt_router_parse_conds(pt_conf_t *cf, pt_yaml_node_t *node, pt_array_t *a,
    const char *what)
{
    size_t             i;
    pt_str_t          *v;
    pt_yaml_node_t    *value;
    pt_router_cond_t  *c;

    if (pt_conf_expect(cf, node, PT_YAML_MAP, what) != PT_OK) {
        return PT_ERROR;
    }

    for (i = 0; i < node->n; i++) {
        value = node->pairs[i].value;

        if (pt_conf_expect(cf, value, PT_YAML_SCALAR, what) != PT_OK) {
            return PT_ERROR;
        }

        c = pt_array_push(a);
        if (c == NULL) {
            return PT_ERROR;
        }

        memset(c, 0, sizeof(pt_router_cond_t));
        c->name = node->pairs[i].key->scalar;
        v = &value->scalar;

        if (c->name.len == 0) {
            return pt_conf_error(cf, node->pairs[i].key, "%s: empty name",
                                 what);
        }

        if (v->len && v->data[0] == '~') {
            c->re = pt_regex_compile(cf, value, what, v->data + 1,
                                     v->len - 1);
            if (c->re == NULL) {
                return PT_ERROR;
            }
        } else {
            c->value = *v;
        }
    }

    return PT_OK;
}


static int
pt_router_set_match(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                rc;
    size_t             i;
    const char        *key;
    pt_yaml_node_t    *value;
    pt_router_conf_t  *rcf;

    rcf = conf;
    rcf->match = node;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key->scalar.data;
        value = node->pairs[i].value;

        if (strcmp(key, "host") == 0) {
            rc |= pt_router_parse_host(cf, value, rcf);

        } else if (strcmp(key, "path") == 0) {
            rc |= pt_router_parse_path(cf, value, rcf);

        } else if (strcmp(key, "methods") == 0) {
            rc |= pt_router_parse_methods(cf, value, rcf);

        } else if (strcmp(key, "headers") == 0) {
            rc |= pt_router_parse_conds(cf, value, &rcf->headers,
                                        "match: headers");

        } else if (strcmp(key, "query") == 0) {
            rc |= pt_router_parse_conds(cf, value, &rcf->query,
                                        "match: query");

        } else {
            rc = pt_conf_error(cf, node->pairs[i].key,
                               "unknown key \"%s\" in match (host, path, methods, headers, query)",
                               key);
        }
    }

    rcf->constraints = (rcf->host_kind != PT_ROUTER_ANY_HOST)
                       + (rcf->methods != 0)
                       + (unsigned) rcf->headers.nelts
                       + (unsigned) rcf->query.nelts;

    return rc ? PT_ERROR : PT_OK;
}


static int
pt_router_set_rewrite(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                rc;
    size_t             i;
    const char        *key;
    pt_yaml_node_t    *value;
    pt_router_conf_t  *rcf;

    rcf = conf;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key->scalar.data;
        value = node->pairs[i].value;

        if (strcmp(key, "strip_prefix") == 0) {
            if (pt_conf_expect(cf, value, PT_YAML_SCALAR,
                               "rewrite: strip_prefix") != PT_OK)
            {
                rc = PT_ERROR;
            } else if (value->scalar.len == 0
                       || value->scalar.data[0] != '/')
            {
                rc = pt_conf_error(cf, value,
                                   "rewrite: strip_prefix must start with \"/\"");
            } else {
                rcf->strip_prefix = value->scalar;
            }

        } else if (strcmp(key, "path") == 0) {
            rcf->rewrite_path = pt_template_compile(cf, value);
            rcf->rewrite_node = value;

            if (rcf->rewrite_path == NULL) {
                rc = PT_ERROR;
            } else if (value->scalar.len == 0
                       || (value->scalar.data[0] != '/'
                           && value->scalar.data[0] != '$'))
            {
                rc = pt_conf_error(cf, value,
                                   "rewrite: path must start with \"/\"");
            }

        } else {
            rc = pt_conf_error(cf, node->pairs[i].key,
                               "unknown key \"%s\" in rewrite (strip_prefix, path)",
                               key);
        }
    }

    return rc;
}


/* Fields the core writes itself (framing, the request id): an edit would
 * be ignored or break the message, so it is refused. */
static int
pt_router_managed(const pt_str_t *name)
{
    static const char  *managed[] = {
        "content-length", "transfer-encoding", "connection", "keep-alive",
        "te", "upgrade", "date", "x-request-id", NULL
    };
    const char        **m;

    for (m = managed; *m; m++) {
        if (pt_strcaseeq(name, *m, strlen(*m))) {
            return 1;
        }
    }

    return 0;
}


static int
pt_router_parse_edit_map(pt_conf_t *cf, pt_yaml_node_t *node, pt_array_t *a,
    const char *what)
{
    size_t             i;
    pt_router_edit_t  *e;

    if (pt_conf_expect(cf, node, PT_YAML_MAP, what) != PT_OK) {
        return PT_ERROR;
    }

    for (i = 0; i < node->n; i++) {
        e = pt_array_push(a);
        if (e == NULL) {
            return PT_ERROR;
        }

        e->name = node->pairs[i].key->scalar;

        if (!pt_http_is_token(&e->name)) {
            return pt_conf_error(cf, node->pairs[i].key,
                                 "%s: invalid header name \"%s\"",
                                 what, e->name.data);
        }

        if (pt_router_managed(&e->name)) {
            return pt_conf_error(cf, node->pairs[i].key,
                                 "%s: \"%s\" is managed by portico and cannot be edited",
                                 what, e->name.data);
        }

        e->value = pt_template_compile(cf, node->pairs[i].value);
        if (e->value == NULL) {
            return PT_ERROR;
        }
    }

    return PT_OK;
}


/* request_headers / response_headers: { set: {..}, add: {..}, remove: [..] } */
static int
pt_router_set_edits(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                 rc;
    size_t              i, j;
    const char         *key;
    pt_yaml_node_t     *value, *item;
    pt_router_conf_t   *rcf;
    pt_router_edit_t   *e;
    pt_router_edits_t  *ed;

    rcf = conf;
    ed = (pt_router_edits_t *) ((char *) conf + cmd->offset);
    rc = PT_OK;

    if (pt_array_init(&ed->set, cf->pool, 2, sizeof(pt_router_edit_t))
        != PT_OK
        || pt_array_init(&ed->add, cf->pool, 2, sizeof(pt_router_edit_t))
           != PT_OK
        || pt_array_init(&ed->remove, cf->pool, 2, sizeof(pt_router_edit_t))
           != PT_OK)
    {
        return PT_ERROR;
    }

    rcf->edits = 1;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key->scalar.data;
        value = node->pairs[i].value;

        if (strcmp(key, "set") == 0) {
            rc |= pt_router_parse_edit_map(cf, value, &ed->set, cmd->name);

        } else if (strcmp(key, "add") == 0) {
            rc |= pt_router_parse_edit_map(cf, value, &ed->add, cmd->name);

        } else if (strcmp(key, "remove") == 0) {
            if (pt_conf_expect(cf, value, PT_YAML_SEQ, cmd->name) != PT_OK) {
                rc = PT_ERROR;
                continue;
            }

            for (j = 0; j < value->n; j++) {
                item = value->items[j];

                if (item->type != PT_YAML_SCALAR
                    || !pt_http_is_token(&item->scalar))
                {
                    rc = pt_conf_error(cf, item,
                                       "%s: remove: not a header name",
                                       cmd->name);
                    continue;
                }

                if (pt_router_managed(&item->scalar)) {
                    rc = pt_conf_error(cf, item,
                                       "%s: \"%s\" is managed by portico and cannot be edited",
                                       cmd->name, item->scalar.data);
                    continue;
                }

                e = pt_array_push(&ed->remove);
                if (e == NULL) {
                    return PT_ERROR;
                }

                e->name = item->scalar;
                e->value = NULL;
            }

        } else {
            rc = pt_conf_error(cf, node->pairs[i].key,
                               "unknown key \"%s\" in %s (set, add, remove)",
                               key, cmd->name);
        }
    }

    return rc ? PT_ERROR : PT_OK;
}


static int
pt_router_set_respond(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                rc;
    size_t             i;
    int64_t            status;
    const char        *key, *reason;
    pt_yaml_node_t    *value;
    pt_router_conf_t  *rcf;

    rcf = conf;
    rc = PT_OK;
    rcf->respond_status = 200;

    if (pt_array_init(&rcf->respond_headers, cf->pool, 2,
                      sizeof(pt_router_edit_t)) != PT_OK)
    {
        return PT_ERROR;
    }

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key->scalar.data;
        value = node->pairs[i].value;

        if (strcmp(key, "status") == 0) {
            if (value->type != PT_YAML_SCALAR
                || pt_parse_int(value->scalar.data, value->scalar.len, 200,
                                599, &status, &reason) != PT_OK)
            {
                rc = pt_conf_error(cf, value,
                                   "respond: status must be a number from 200 to 599");
                continue;
            }
            rcf->respond_status = (unsigned) status;

        } else if (strcmp(key, "body") == 0) {
            rcf->respond_body = pt_template_compile(cf, value);
            if (rcf->respond_body == NULL) {
                rc = PT_ERROR;
            }

        } else if (strcmp(key, "headers") == 0) {
            rc |= pt_router_parse_edit_map(cf, value, &rcf->respond_headers,
                                           "respond: headers");

        } else {
            rc = pt_conf_error(cf, node->pairs[i].key,
                               "unknown key \"%s\" in respond (status, headers, body)",
                               key);
        }
    }

    rc |= pt_route_set_content(cf, node, "respond", pt_router_respond);

    return rc ? PT_ERROR : PT_OK;
}


static int
pt_router_set_redirect(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                rc;
    size_t             i;
    int64_t            status;
    const char        *key, *reason;
    pt_yaml_node_t    *value;
    pt_router_conf_t  *rcf;

    rcf = conf;
    rc = PT_OK;
    rcf->redirect_status = 301;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key->scalar.data;
        value = node->pairs[i].value;

        if (strcmp(key, "to") == 0) {
            rcf->redirect_to = pt_template_compile(cf, value);
            if (rcf->redirect_to == NULL) {
                rc = PT_ERROR;
            }

        } else if (strcmp(key, "status") == 0) {
            if (value->type != PT_YAML_SCALAR
                || pt_parse_int(value->scalar.data, value->scalar.len, 301,
                                308, &status, &reason) != PT_OK
                || (status != 301 && status != 302 && status != 307
                    && status != 308))
            {
                rc = pt_conf_error(cf, value,
                                   "redirect: status must be 301, 302, 307 or 308");
                continue;
            }
            rcf->redirect_status = (unsigned) status;

        } else {
            rc = pt_conf_error(cf, node->pairs[i].key,
                               "unknown key \"%s\" in redirect (to, status)",
                               key);
        }
    }

    if (rcf->redirect_to == NULL && rc == PT_OK) {
        rc = pt_conf_error(cf, node, "redirect: \"to\" is required");
    }

    rc |= pt_route_set_content(cf, node, "redirect", pt_router_redirect);

    return rc ? PT_ERROR : PT_OK;
}


/* ${N} in a template of the route needs the path regex to have group N. */
static int
pt_router_check_captures(pt_conf_t *cf, pt_router_conf_t *rcf,
    const pt_template_t *t, pt_yaml_node_t *node)
{
    unsigned  n, have;

    if (t == NULL || (n = pt_template_max_capture(t)) == 0) {
        return PT_OK;
    }

    have = rcf->path_re ? pt_regex_captures(rcf->path_re) : 0;

    if (node == NULL) {
        node = pt_template_node(t);
    }

    if (n > have) {
        return pt_conf_error(cf, node ? node : rcf->route->node,
                             "${%u} refers to capture %u, but the route's path %s",
                             n, n,
                             rcf->path_re ? "regex has fewer groups"
                                          : "is not a regex");
    }

    return PT_OK;
}


static int
pt_router_check_edits(pt_conf_t *cf, pt_router_conf_t *rcf, pt_array_t *a)
{
    size_t             i;
    pt_router_edit_t  *e;

    e = a->elts;

    for (i = 0; i < a->nelts; i++) {
        if (pt_router_check_captures(cf, rcf, e[i].value, NULL) != PT_OK) {
            return PT_ERROR;
        }
    }

    return PT_OK;
}


static int
pt_router_validate(pt_conf_t *cf, void *conf)
{
    int                rc;
    pt_router_conf_t  *rcf;

    if (cf->level != PT_CONF_LEVEL_ROUTE) {
        return PT_OK;
    }

    rcf = conf;
    rcf->route = cf->scope;
    rc = PT_OK;

    rc |= pt_router_check_captures(cf, rcf, rcf->rewrite_path,
                                   rcf->rewrite_node);
    rc |= pt_router_check_captures(cf, rcf, rcf->respond_body, NULL);
    rc |= pt_router_check_captures(cf, rcf, rcf->redirect_to, NULL);

    if (rcf->respond_headers.elts) {
        rc |= pt_router_check_edits(cf, rcf, &rcf->respond_headers);
    }

    if (rcf->request_headers.set.elts) {
        rc |= pt_router_check_edits(cf, rcf, &rcf->request_headers.set);
        rc |= pt_router_check_edits(cf, rcf, &rcf->request_headers.add);
    }

    if (rcf->response_headers.set.elts) {
        rc |= pt_router_check_edits(cf, rcf, &rcf->response_headers.set);
        rc |= pt_router_check_edits(cf, rcf, &rcf->response_headers.add);
    }

    return rc ? PT_ERROR : PT_OK;
}


static int
pt_router_postconfig(pt_conf_t *cf)
{
    pt_router_main_conf_t  *rmcf;

    rmcf = cf->cycle->conf[pt_router_module.index];

    rmcf->table = pt_router_table_build(cf);
    if (rmcf->table == NULL) {
        return PT_ERROR;
    }

    if (pt_http_phase_add(cf, PT_HTTP_ROUTE_PHASE, pt_router_route_handler,
                          100, &pt_router_module) != PT_OK
        || pt_http_phase_add(cf, PT_HTTP_REWRITE_PHASE,
                             pt_router_rewrite_handler, 100,
                             &pt_router_module) != PT_OK
        || pt_http_phase_add(cf, PT_HTTP_PRECONTENT_PHASE,
                             pt_router_headers_handler, 10,
                             &pt_router_module) != PT_OK
        || pt_http_header_filter_add(cf, pt_router_header_filter, 800,
                                     &pt_router_module) != PT_OK)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


int
pt_router_allow_text(pt_http_request_t *r, pt_router_allow_t *allow,
    pt_str_t *text)
{
    char       *p, *end;
    size_t      i, j, k, len;
    pt_str_t   *other, *seen;

    len = 128;
    for (i = 0; i < allow->n; i++) {
        other = allow->confs[i]->other_methods.elts;
        for (j = 0; j < allow->confs[i]->other_methods.nelts; j++) {
            len += other[j].len + 2;
        }
    }

    p = pt_pnalloc(r->pool, len);
    if (p == NULL) {
        return PT_ERROR;
    }

    text->data = p;
    end = p + len;

    for (i = 0; i < pt_nelems(pt_router_methods); i++) {
        if (allow->methods & pt_router_methods[i].bit) {
            p += snprintf(p, (size_t) (end - p), "%s%s",
                          p == text->data ? "" : ", ",
                          pt_router_methods[i].name);
        }
    }

    /* Extension methods by name, each once. */
    for (i = 0; i < allow->n; i++) {
        other = allow->confs[i]->other_methods.elts;

        for (j = 0; j < allow->confs[i]->other_methods.nelts; j++) {
            for (k = 0; k < i; k++) {
                seen = allow->confs[k]->other_methods.elts;
                if (pt_router_str_in(seen,
                                      allow->confs[k]->other_methods.nelts,
                                      &other[j]))
                {
                    break;
                }
            }

            if (k < i || pt_router_str_in(other, j, &other[j])) {
                continue;
            }

            p += snprintf(p, (size_t) (end - p), "%s%.*s",
                          p == text->data ? "" : ", ", (int) other[j].len,
                          other[j].data);
        }
    }

    text->len = (size_t) (p - text->data);

    return PT_OK;
}


static int
pt_router_route_handler(pt_http_request_t *r)
{
    int                  rc;
    size_t               i;
    pt_str_t             text;
    pt_route_t         **admin;
    pt_router_conf_t    *found;
    pt_router_allow_t    allow;

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

    rc = pt_router_lookup(pt_router_table(pt_cycle), r, &found, &allow);

    if (rc == 405) {
        if (pt_router_allow_text(r, &allow, &text) != PT_OK
            || pt_http_header_out_set(r, "Allow", 5, text.data, text.len)
               != PT_OK)
        {
            return PT_ERROR;
        }

        return 405;
    }

    if (rc != PT_OK) {
        return rc;
    }

    r->route = found->route;
    r->content_handler = found->route->content;

    return PT_CONTINUE;
}
