/*
 * pt_auth_forward.c: forward auth (see pt_auth_forward.h).
 *
 * The question to the service is a pt_upstream_call_t, so it goes the
 * way proxied requests go: the upstream's balancer, keep-alive pools,
 * TLS, timeouts and passive health. It lives in the request's pool: a
 * client that leaves while the service thinks cancels it with the rest.
 *
 * What the service learns: `GET path`, the request's chosen fields as
 * the client sent them, and where the request was going: X-Forwarded-
 * Method, -Uri (path and query as received, before any rewrite), -Host,
 * -Proto, -For (as the proxy writes it) and X-Request-ID.
 */

#include "pt_auth_forward.h"
#include "pt_upstream.h"
#include "pt_proxy_head.h"
#include "pt_string.h"


#define PT_AUTH_FORWARD_TIMEOUT   2000
#define PT_AUTH_FORWARD_MAX       (64 * 1024)   /* the service's answer */

struct pt_auth_forward_s {
    pt_yaml_node_t     *node;          /* `forward:`                      */
    pt_yaml_node_t     *upstream_node;
    pt_upstream_t      *us;
    pt_str_t            path;
    pt_array_t          headers;       /* pt_str_t: passed on             */
    pt_array_t          copy;          /* pt_str_t: copied back           */
    pt_msec_t           timeout;
};

/* One request's question, in its pool. */
typedef struct {
    pt_upstream_call_t   call;
    pt_http_request_t   *r;
    unsigned             answered:1;
} pt_auth_forward_ctx_t;


/* A list of field names; fields the gateway writes itself (or that are
 * hop-by-hop) would only fight with its own, so they are refused. */
static int
pt_auth_forward_names(pt_conf_t *cf, pt_yaml_node_t *node, pt_array_t *a,
    const char *what)
{
    size_t           i;
    pt_str_t        *name;
    pt_yaml_node_t  *item;

    if (pt_conf_expect(cf, node, PT_YAML_SEQ, what) != PT_OK) {
        return PT_ERROR;
    }

    a->nelts = 0;

    for (i = 0; i < node->n; i++) {
        item = node->items[i];

        if (item->type != PT_YAML_SCALAR || !pt_http_is_token(&item->scalar))
        {
            return pt_conf_error(cf, item, "forward: %s: not a header name",
                                 what);
        }

        if (pt_proxy_is_ours(&item->scalar)
            || pt_proxy_hop_by_hop(&item->scalar, NULL, 0))
        {
            return pt_conf_error(cf, item,
                                 "forward: %s: \"%s\" is managed by portico",
                                 what, item->scalar.data);
        }

        name = pt_array_push(a);
        if (name == NULL) {
            return PT_ERROR;
        }

        *name = item->scalar;
    }

    return PT_OK;
}


/* An origin-form target: "/", then printable ASCII but '#'. */
static int
pt_auth_forward_path(pt_conf_t *cf, pt_yaml_node_t *node, pt_str_t *path)
{
    size_t  i;

    if (pt_conf_expect(cf, node, PT_YAML_SCALAR, "forward: path") != PT_OK) {
        return PT_ERROR;
    }

    for (i = 0; i < node->scalar.len; i++) {
        if ((unsigned char) node->scalar.data[i] <= 0x20
            || (unsigned char) node->scalar.data[i] >= 0x7f
            || node->scalar.data[i] == '#')
        {
            break;
        }
    }

    if (node->scalar.len == 0 || node->scalar.data[0] != '/'
        || i != node->scalar.len)
    {
        return pt_conf_error(cf, node,
                             "forward: path: a path (and query) starting with /: \"%s\"",
                             node->scalar.data);
    }

    *path = node->scalar;

    return PT_OK;
}


pt_auth_forward_t *
pt_auth_forward_parse(pt_conf_t *cf, pt_yaml_node_t *node)
{
    int                 rc;
    size_t              i;
    pt_str_t           *name;
    const char         *key;
    pt_yaml_node_t     *value;
    pt_auth_forward_t  *fw;

    if (pt_conf_expect(cf, node, PT_YAML_MAP, "forward") != PT_OK) {
        return NULL;
    }

    fw = pt_pcalloc(cf->pool, sizeof(pt_auth_forward_t));
    if (fw == NULL
        || pt_array_init(&fw->headers, cf->pool, 4, sizeof(pt_str_t))
           != PT_OK
        || pt_array_init(&fw->copy, cf->pool, 4, sizeof(pt_str_t)) != PT_OK)
    {
        return NULL;
    }

    fw->node = node;
    pt_str_set(&fw->path, "/");
    fw->timeout = PT_AUTH_FORWARD_TIMEOUT;

    /* What a service needs to tell who is asking, unless told. */
    name = pt_array_push_n(&fw->headers, 2);
    if (name == NULL) {
        return NULL;
    }

    pt_str_set(&name[0], "Authorization");
    pt_str_set(&name[1], "Cookie");

    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key->scalar.data;
        value = node->pairs[i].value;

        if (strcmp(key, "upstream") == 0) {
            if (pt_conf_expect(cf, value, PT_YAML_SCALAR, "forward: upstream")
                != PT_OK)
            {
                rc = PT_ERROR;
                continue;
            }

            fw->upstream_node = value;

        } else if (strcmp(key, "path") == 0) {
            rc |= pt_auth_forward_path(cf, value, &fw->path);

        } else if (strcmp(key, "headers") == 0) {
            rc |= pt_auth_forward_names(cf, value, &fw->headers, "headers");

        } else if (strcmp(key, "copy_headers") == 0) {
            rc |= pt_auth_forward_names(cf, value, &fw->copy,
                                        "copy_headers");

        } else if (strcmp(key, "timeout") == 0) {
            if (pt_conf_parse_msec(cf, value, &fw->timeout) != PT_OK) {
                rc = PT_ERROR;

            } else if (fw->timeout == 0) {
                rc = pt_conf_error(cf, value,
                                   "forward: timeout: must be above 0");
            }

        } else {
            rc = pt_conf_error(cf, node->pairs[i].key,
                               "unknown key \"%s\" in forward (upstream, path, headers, copy_headers, timeout)",
                               key);
        }
    }

    if (fw->upstream_node == NULL && rc == PT_OK) {
        rc = pt_conf_error(cf, node, "forward: upstream is required");
    }

    return rc == PT_OK ? fw : NULL;
}


int
pt_auth_forward_resolve(pt_conf_t *cf, pt_auth_forward_t *fw)
{
    fw->us = pt_upstream_find(cf->cycle, &fw->upstream_node->scalar);

    if (fw->us == NULL) {
        return pt_conf_error(cf, fw->upstream_node,
                             "forward: unknown upstream \"%s\"",
                             fw->upstream_node->scalar.data);
    }

    return PT_OK;
}


static void
pt_auth_forward_done(pt_upstream_call_t *call)
{
    pt_auth_forward_ctx_t  *ctx;

    ctx = call->data;
    ctx->answered = 1;

    /* The ACCESS handler runs again and reads the verdict. */
    pt_http_run_phases(ctx->r);
}


static pt_http_header_t *
pt_auth_forward_field(pt_array_t *a, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
    pt_http_header_t  *h;

    h = pt_array_push(a);
    if (h) {
        h->name.data = (char *) name;
        h->name.len = nlen;
        h->value.data = (char *) value;
        h->value.len = vlen;
    }

    return h;
}


/* The question's fields: the chosen ones the request has, and where the
 * request was going. */
static int
pt_auth_forward_fields(pt_http_request_t *r, pt_auth_forward_t *fw,
    pt_array_t *out)
{
    char              *p, *uri, *xff;
    size_t             i, j, len;
    pt_str_t           host, scheme, *names;
    pt_http_header_t  *h;

    h = r->headers_in.headers.elts;
    names = fw->headers.elts;

    for (i = 0; i < r->headers_in.headers.nelts; i++) {
        for (j = 0; j < fw->headers.nelts; j++) {
            if (h[i].name.len
                && pt_strcaseeq(&h[i].name, names[j].data, names[j].len))
            {
                if (pt_array_push(out) == NULL) {
                    return PT_ERROR;
                }

                ((pt_http_header_t *) out->elts)[out->nelts - 1] = h[i];
                break;
            }
        }
    }

    /* The path and query as the client sent them: a rewrite is the
     * route's business, not the service's. */
    len = r->line.path.len + 1 + r->line.query.len;
    uri = pt_pnalloc(r->pool, len);
    if (uri == NULL) {
        return PT_ERROR;
    }

    p = pt_cpymem(uri, r->line.path.data, r->line.path.len);
    if (r->line.has_query) {
        *p++ = '?';
        p = pt_cpymem(p, r->line.query.data, r->line.query.len);
    }

    if (r->headers_in.host) {
        host = r->headers_in.host->value;
    } else {
        host = r->host;
    }

    pt_http_scheme(r, &scheme);

    xff = pt_pnalloc(r->pool,
                     pt_proxy_forwarded_for_len(r, &r->connection->addr_text));
    if (xff == NULL) {
        return PT_ERROR;
    }

    len = (size_t) (pt_proxy_forwarded_for(r, &r->connection->addr_text, xff)
                    - xff);

    if (pt_auth_forward_field(out, "X-Forwarded-Method", 18,
                              r->method_name.data, r->method_name.len)
           == NULL
        || pt_auth_forward_field(out, "X-Forwarded-Uri", 15, uri,
                                 (size_t) (p - uri)) == NULL
        || (host.len
            && pt_auth_forward_field(out, "X-Forwarded-Host", 16, host.data,
                                     host.len) == NULL)
        || pt_auth_forward_field(out, "X-Forwarded-Proto", 17, scheme.data,
                                 scheme.len) == NULL
        || pt_auth_forward_field(out, "X-Forwarded-For", 15, xff, len)
           == NULL
        || pt_auth_forward_field(out, "X-Request-ID", 12, r->request_id.data,
                                 r->request_id.len) == NULL)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


/* Ask the service; PT_OK when the question is on its way, PT_ERROR when
 * memory ran out. */
static int
pt_auth_forward_ask(pt_http_request_t *r, pt_auth_forward_t *fw,
    pt_auth_forward_ctx_t *ctx)
{
    pt_array_t           fields;
    pt_upstream_call_t  *call;

    if (pt_array_init(&fields, r->pool, 8, sizeof(pt_http_header_t))
        != PT_OK
        || pt_auth_forward_fields(r, fw, &fields) != PT_OK)
    {
        return PT_ERROR;
    }

    call = &ctx->call;
    call->us = fw->us;
    call->r = r;
    call->pool = r->pool;
    pt_str_set(&call->method, "GET");
    call->target = fw->path;
    call->headers = fields.elts;
    call->nheaders = fields.nelts;
    call->max_response = PT_AUTH_FORWARD_MAX;
    call->timeout = fw->timeout;
    call->done = pt_auth_forward_done;
    call->data = ctx;

    if (pt_upstream_call_start(call) != PT_OK) {
        pt_http_log_request(r, PT_LOG_ERR,
                            "forward auth: upstream \"%s\": %s",
                            fw->us->name.data, call->error);
        return PT_ERROR;
    }

    return PT_OK;
}


/* A 2xx: each copy_headers field of the request is what the service
 * said, or nothing; never what the client sent. */
static int
pt_auth_forward_copy(pt_http_request_t *r, pt_auth_forward_t *fw,
    pt_upstream_call_t *call)
{
    size_t             i, j;
    pt_str_t          *names;
    pt_http_header_t  *h;

    names = fw->copy.elts;
    h = r->headers_in.headers.elts;

    /* All removals first: two spellings of one name must not remove
     * what the other copied. An empty name is a removed field. */
    for (i = 0; i < r->headers_in.headers.nelts; i++) {
        for (j = 0; j < fw->copy.nelts; j++) {
            if (pt_strcaseeq(&h[i].name, names[j].data, names[j].len)) {
                h[i].name.len = 0;
                break;
            }
        }
    }

    h = call->headers_out.elts;

    for (i = 0; i < call->headers_out.nelts; i++) {
        for (j = 0; j < fw->copy.nelts; j++) {
            if (pt_strcaseeq(&h[i].name, names[j].data, names[j].len)) {
                if (pt_http_header_in_add(r, &names[j], &h[i].value) == NULL)
                {
                    return PT_ERROR;
                }

                break;
            }
        }
    }

    return PT_OK;
}


/* A 401 or 403: the client gets it as the service wrote it. */
static int
pt_auth_forward_deny(pt_http_request_t *r, pt_upstream_call_t *call)
{
    size_t             i;
    char              *type;
    pt_http_header_t  *h;

    type = NULL;
    h = call->headers_out.elts;

    for (i = 0; i < call->headers_out.nelts; i++) {
        if (pt_str_caseeq(&h[i].name, "www-authenticate")) {
            if (pt_http_header_out_add(r, "WWW-Authenticate", 16,
                                       h[i].value.data, h[i].value.len)
                != PT_OK)
            {
                return PT_ERROR;
            }

        } else if (pt_str_caseeq(&h[i].name, "content-type")) {
            type = pt_pstrndup(r->pool, h[i].value.data, h[i].value.len);
            if (type == NULL) {
                return PT_ERROR;
            }
        }
    }

    pt_http_finalize(r, pt_http_send_response(r, call->status, type,
                                              call->body.len
                                              ? call->body.data : "",
                                              call->body.len));

    return PT_DONE;
}


static int
pt_auth_forward_verdict(pt_http_request_t *r, pt_auth_forward_t *fw,
    pt_auth_forward_ctx_t *ctx)
{
    pt_upstream_call_t  *call;

    call = &ctx->call;

    if (call->rc != PT_OK) {
        pt_http_log_request(r, PT_LOG_ERR,
                            "forward auth: upstream \"%s\": %s",
                            fw->us->name.data, call->error);
        return 503;
    }

    if (call->status >= 200 && call->status < 300) {
        return pt_auth_forward_copy(r, fw, call);
    }

    if (call->status == 401 || call->status == 403) {
        return pt_auth_forward_deny(r, call);
    }

    pt_http_log_request(r, PT_LOG_ERR,
                        "forward auth: upstream \"%s\" answered %u",
                        fw->us->name.data, call->status);

    return 503;
}


int
pt_auth_forward_check(pt_http_request_t *r, pt_auth_forward_t *fw,
    void **state)
{
    pt_auth_forward_ctx_t  *ctx;

    ctx = *state;

    if (ctx) {
        return ctx->answered ? pt_auth_forward_verdict(r, fw, ctx)
                             : PT_AGAIN;
    }

    ctx = pt_pcalloc(r->pool, sizeof(pt_auth_forward_ctx_t));
    if (ctx == NULL) {
        return PT_ERROR;
    }

    ctx->r = r;
    *state = ctx;

    if (pt_auth_forward_ask(r, fw, ctx) != PT_OK) {
        return PT_ERROR;
    }

    return PT_AGAIN;
}
