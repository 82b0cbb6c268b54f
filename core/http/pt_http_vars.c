/*
 * pt_http_vars.c: request variables and ${...} templates.
 *
 * A template is compiled once, at config load, into literal pieces and
 * variable lookups; evaluating it per request is one pass to measure and
 * one to copy, with no parsing. Unknown variables are config errors.
 */

#include <arpa/inet.h>

#include "pt_http.h"
#include "pt_random.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_HTTP_MAX_VARS   128

enum {
    PT_TPL_LITERAL = 0,
    PT_TPL_VAR,
    PT_TPL_CAPTURE
};

typedef struct {
    unsigned              kind;
    unsigned              capture;   /* 1..9                           */
    pt_str_t              text;      /* literal text, or the var's arg */
    const pt_http_var_t  *var;
} pt_template_seg_t;

struct pt_template_s {
    pt_template_seg_t    *segs;
    size_t                n;
    pt_str_t              source;
    pt_yaml_node_t       *node;      /* where it was written */
};


static const pt_http_var_t  *pt_http_vars[PT_HTTP_MAX_VARS];
static pt_uint_t             pt_http_nvars;


int
pt_http_var_add(pt_conf_t *cf, const pt_http_var_t *var)
{
    pt_uint_t  i;

    for (i = 0; i < pt_http_nvars; i++) {
        if (strcmp(pt_http_vars[i]->name, var->name) == 0) {
            if (pt_http_vars[i] == var) {
                return PT_OK;       /* registered at an earlier load */
            }
            return pt_conf_error(cf, NULL, "variable \"%s\" is defined twice",
                                 var->name);
        }
    }

    if (pt_http_nvars == PT_HTTP_MAX_VARS) {
        return pt_conf_error(cf, NULL, "too many variables");
    }

    pt_http_vars[pt_http_nvars++] = var;

    return PT_OK;
}


static const pt_http_var_t *
pt_http_var_find(const char *name, size_t len, pt_str_t *arg)
{
    size_t     n;
    pt_uint_t  i;

    for (i = 0; i < pt_http_nvars; i++) {
        n = strlen(pt_http_vars[i]->name);

        if (pt_http_vars[i]->prefix) {
            if (len > n && memcmp(pt_http_vars[i]->name, name, n) == 0) {
                arg->data = (char *) name + n;
                arg->len = len - n;
                return pt_http_vars[i];
            }
            continue;
        }

        if (n == len && memcmp(pt_http_vars[i]->name, name, len) == 0) {
            arg->data = NULL;
            arg->len = 0;
            return pt_http_vars[i];
        }
    }

    return NULL;
}


pt_template_t *
pt_template_compile(pt_conf_t *cf, pt_yaml_node_t *node)
{
    char               *s, *end, *p, *close;
    size_t              n;
    pt_str_t            arg;
    pt_template_t      *t;
    pt_template_seg_t  *seg;

    if (node->type != PT_YAML_SCALAR) {
        (void) pt_conf_error(cf, node, "expected a string template, got a %s",
                             pt_yaml_type_name(node));
        return NULL;
    }

    s = node->scalar.data;
    end = s + node->scalar.len;

    /* At most one segment per "${" plus one literal around each. */
    for (n = 1, p = s; p + 1 < end; p++) {
        if (p[0] == '$' && p[1] == '{') {
            n += 2;
        }
    }

    t = pt_pcalloc(cf->pool, sizeof(pt_template_t));
    if (t == NULL) {
        return NULL;
    }

    t->segs = pt_pcalloc(cf->pool, n * sizeof(pt_template_seg_t));
    if (t->segs == NULL) {
        return NULL;
    }

    t->source = node->scalar;
    t->node = node;

    for (p = s; p < end; /* void */ ) {
        seg = &t->segs[t->n];

        if (p + 1 < end && p[0] == '$' && p[1] == '{') {
            close = memchr(p + 2, '}', (size_t) (end - p - 2));

            if (close == NULL) {
                (void) pt_conf_error(cf, node,
                                     "unterminated \"${\" in template \"%s\"",
                                     s);
                return NULL;
            }

            if (close - p - 2 == 1 && p[2] >= '1' && p[2] <= '9') {
                seg->kind = PT_TPL_CAPTURE;
                seg->capture = (unsigned) (p[2] - '0');

            } else {
                seg->var = pt_http_var_find(p + 2, (size_t) (close - p - 2),
                                            &arg);
                if (seg->var == NULL || (seg->var->prefix && arg.len == 0)) {
                    (void) pt_conf_error(cf, node,
                                         "unknown variable \"${%.*s}\" in template \"%s\"",
                                         (int) (close - p - 2), p + 2, s);
                    return NULL;
                }

                seg->kind = PT_TPL_VAR;
                seg->text = arg;
            }

            t->n++;
            p = close + 1;
            continue;
        }

        /* A literal run up to the next "${". */
        seg->kind = PT_TPL_LITERAL;
        seg->text.data = p;

        while (p < end && !(p + 1 < end && p[0] == '$' && p[1] == '{')) {
            p++;
        }

        seg->text.len = (size_t) (p - seg->text.data);
        t->n++;
    }

    return t;
}


pt_yaml_node_t *
pt_template_node(const pt_template_t *t)
{
    return t->node;
}


unsigned
pt_template_max_capture(const pt_template_t *t)
{
    size_t    i;
    unsigned  max;

    for (i = 0, max = 0; i < t->n; i++) {
        if (t->segs[i].kind == PT_TPL_CAPTURE && t->segs[i].capture > max) {
            max = t->segs[i].capture;
        }
    }

    return max;
}


int
pt_template_is_literal(const pt_template_t *t, pt_str_t *text)
{
    if (t->n == 0) {
        text->data = "";
        text->len = 0;
        return 1;
    }

    if (t->n == 1 && t->segs[0].kind == PT_TPL_LITERAL) {
        *text = t->segs[0].text;
        return 1;
    }

    return 0;
}


static void
pt_template_capture(pt_http_request_t *r, unsigned n, pt_str_t *out)
{
    int  start, end;

    out->data = NULL;
    out->len = 0;

    if (n >= r->ncaptures) {
        return;
    }

    start = r->captures[2 * n];
    end = r->captures[2 * n + 1];

    if (start < 0 || end < start
        || (size_t) end > r->captures_subject.len)
    {
        return;
    }

    out->data = r->captures_subject.data + start;
    out->len = (size_t) (end - start);
}


int
pt_template_eval(pt_http_request_t *r, const pt_template_t *t, pt_str_t *out)
{
    char       *p;
    size_t      i, len;
    pt_str_t    small[16], *vals;

    if (t->n == 1 && t->segs[0].kind == PT_TPL_LITERAL) {
        *out = t->segs[0].text;
        return PT_OK;
    }

    vals = small;

    if (t->n > pt_nelems(small)) {
        vals = pt_palloc(r->pool, t->n * sizeof(pt_str_t));
        if (vals == NULL) {
            return PT_ERROR;
        }
    }

    len = 0;

    for (i = 0; i < t->n; i++) {
        switch (t->segs[i].kind) {

        case PT_TPL_LITERAL:
            vals[i] = t->segs[i].text;
            break;

        case PT_TPL_CAPTURE:
            pt_template_capture(r, t->segs[i].capture, &vals[i]);
            break;

        default:
            if (t->segs[i].var->get(r, &t->segs[i].text, &vals[i])
                != PT_OK)
            {
                vals[i].len = 0;
                vals[i].data = NULL;
            }
        }

        len += vals[i].len;
    }

    p = pt_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return PT_ERROR;
    }

    out->data = p;
    out->len = len;

    for (i = 0; i < t->n; i++) {
        if (vals[i].len) {
            p = pt_cpymem(p, vals[i].data, vals[i].len);
        }
    }

    *p = '\0';

    return PT_OK;
}


int
pt_conf_set_template(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    pt_template_t  *t;

    t = pt_template_compile(cf, node);
    if (t == NULL) {
        return PT_ERROR;
    }

    *(pt_template_t **) ((char *) conf + cmd->offset) = t;

    return PT_OK;
}


/* Request ids: accepted from the client when sane, else 128 random bits
 * in hex, like a W3C trace id. */
int
pt_http_request_id(pt_http_request_t *r)
{
    char               *p;
    size_t              i;
    uint64_t            a, b;
    pt_http_header_t   *h;
    static const char   hex[] = "0123456789abcdef";

    if (r->request_id.len) {
        return PT_OK;
    }

    h = r->headers_in.x_request_id;

    if (h && h->value.len > 0 && h->value.len <= 128) {
        for (i = 0; i < h->value.len; i++) {
            char  c = h->value.data[i];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '-' || c == '_'
                  || c == '.' || c == ':' || c == '+' || c == '/'
                  || c == '=' || c == '@'))
            {
                break;
            }
        }

        if (i == h->value.len) {
            r->request_id = h->value;
            return PT_OK;
        }
    }

    p = pt_pnalloc(r->pool, 33);
    if (p == NULL) {
        return PT_ERROR;
    }

    a = pt_random_u64();
    b = pt_random_u64();

    for (i = 0; i < 16; i++) {
        p[i] = hex[(a >> (60 - 4 * i)) & 0xf];
        p[16 + i] = hex[(b >> (60 - 4 * i)) & 0xf];
    }

    p[32] = '\0';
    r->request_id.data = p;
    r->request_id.len = 32;

    return PT_OK;
}


static int
pt_http_addr_trusted(pt_http_request_t *r, const struct sockaddr *sa)
{
    size_t      i;
    pt_cidr_t  *cidr;

    cidr = r->hmcf->trusted.elts;

    for (i = 0; i < r->hmcf->trusted.nelts; i++) {
        if (pt_cidr_match(&cidr[i], sa)) {
            return 1;
        }
    }

    return 0;
}


int
pt_http_remote_addr(pt_http_request_t *r, pt_str_t *addr)
{
    char                     ip[64];
    char                    *p, *start, *end;
    size_t                   len;
    pt_http_header_t        *xff;
    pt_connection_t         *c;
    struct sockaddr_in6      sin6;
    struct sockaddr_in       sin;

    c = r->connection;
    *addr = c->addr_text;

    xff = r->headers_in.x_forwarded_for;

    if (xff == NULL || r->hmcf->trusted.nelts == 0
        || !pt_http_addr_trusted(r, (struct sockaddr *) &c->sockaddr))
    {
        return PT_OK;
    }

    /* Right to left: the first hop we do not trust is the client. */
    end = xff->value.data + xff->value.len;

    while (end > xff->value.data) {
        p = end;
        while (p > xff->value.data && p[-1] != ',') {
            p--;
        }

        start = p;
        while (start < end && (*start == ' ' || *start == '\t')) {
            start++;
        }

        len = (size_t) (end - start);
        while (len && (start[len - 1] == ' ' || start[len - 1] == '\t')) {
            len--;
        }

        if (len == 0 || len >= sizeof(ip)) {
            return PT_OK;
        }

        memcpy(ip, start, len);
        ip[len] = '\0';

        memset(&sin, 0, sizeof(sin));
        memset(&sin6, 0, sizeof(sin6));

        if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1) {
            sin.sin_family = AF_INET;
            if (!pt_http_addr_trusted(r, (struct sockaddr *) &sin)) {
                addr->data = start;
                addr->len = len;
                return PT_OK;
            }

        } else if (inet_pton(AF_INET6, ip, &sin6.sin6_addr) == 1) {
            sin6.sin6_family = AF_INET6;
            if (!pt_http_addr_trusted(r, (struct sockaddr *) &sin6)) {
                addr->data = start;
                addr->len = len;
                return PT_OK;
            }

        } else {
            /* Garbage in the chain: stop at the last hop we could check. */
            return PT_OK;
        }

        *addr = (pt_str_t) { len, start };
        end = p > xff->value.data ? p - 1 : p;
    }

    return PT_OK;
}


static int
pt_var_remote_addr(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    return pt_http_remote_addr(r, v);
}


static int
pt_var_host(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    *v = r->host;
    return PT_OK;
}


static int
pt_var_method(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    *v = r->method_name;
    return PT_OK;
}


static int
pt_var_path(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    *v = r->path;
    return PT_OK;
}


static int
pt_var_query(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    *v = r->query;
    return PT_OK;
}


static int
pt_var_request_uri(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    *v = r->line.target;
    return PT_OK;
}


static int
pt_var_request_id(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    if (r->request_id.len == 0) {
        (void) pt_http_request_id(r);
    }

    *v = r->request_id;
    return PT_OK;
}


static int
pt_var_route(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    if (r->route == NULL) {
        return PT_DECLINED;
    }

    *v = r->route->name;
    return PT_OK;
}


static int
pt_var_consumer(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    *v = r->consumer;
    return PT_OK;
}


void
pt_http_scheme(pt_http_request_t *r, pt_str_t *scheme)
{
    if (r->connection->ssl) {
        pt_str_set(scheme, "https");
    } else {
        pt_str_set(scheme, "http");
    }
}


static int
pt_var_scheme(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    pt_http_scheme(r, v);
    return PT_OK;
}


/* ${tls.*}: what the client's TLS handshake settled; empty in
 * cleartext. The client's identity is there only when its certificate
 * was verified. */
static int
pt_var_tls_sni(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    pt_ssl_sni(r->connection, v);
    return PT_OK;
}


static int
pt_var_tls_protocol(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    pt_ssl_protocol(r->connection, v);
    return PT_OK;
}


static int
pt_var_tls_cipher(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    pt_ssl_cipher(r->connection, v);
    return PT_OK;
}


static int
pt_var_tls_client_subject(pt_http_request_t *r, const pt_str_t *arg,
    pt_str_t *v)
{
    return pt_ssl_client_subject(r->connection, r->pool, v);
}


static int
pt_var_tls_client_fingerprint(pt_http_request_t *r, const pt_str_t *arg,
    pt_str_t *v)
{
    return pt_ssl_client_fingerprint(r->connection, r->pool, v);
}


static int
pt_var_status(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    v->data = pt_psprintf(r->pool, &v->len, "%u", r->status);
    return v->data ? PT_OK : PT_ERROR;
}


static int
pt_var_bytes_sent(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    v->data = pt_psprintf(r->pool, &v->len, "%llu", (unsigned long long)
                          (r->connection->sent - r->bytes_sent_start));
    return v->data ? PT_OK : PT_ERROR;
}


/* Microseconds as milliseconds with three decimals: "12.345". */
static int
pt_var_ms(pt_http_request_t *r, uint64_t us, pt_str_t *v)
{
    v->data = pt_psprintf(r->pool, &v->len, "%llu.%03llu",
                          (unsigned long long) (us / 1000),
                          (unsigned long long) (us % 1000));
    return v->data ? PT_OK : PT_ERROR;
}


static int
pt_var_duration_ms(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    return pt_var_ms(r, pt_monotonic_usec() - r->start_usec, v);
}


static int
pt_var_upstream(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    *v = r->upstream_name;
    return PT_OK;
}


static int
pt_var_upstream_addr(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    *v = r->upstream_addr;
    return PT_OK;
}


/* Empty when the request never reached an upstream. */
static int
pt_var_upstream_ms(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    if (r->upstream_usec < 0) {
        v->len = 0;
        v->data = "";
        return PT_OK;
    }

    return pt_var_ms(r, (uint64_t) r->upstream_usec, v);
}


static int
pt_var_cache_status(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    *v = r->cache_status;
    return PT_OK;
}


static int
pt_var_trace_id(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    *v = r->trace_id;
    return PT_OK;
}


static int
pt_var_time(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    v->data = pt_pstrndup(r->pool, pt_cached_iso8601_time,
                          strlen(pt_cached_iso8601_time));
    v->len = v->data ? strlen(v->data) : 0;
    return v->data ? PT_OK : PT_ERROR;
}


static int
pt_var_header(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    pt_http_header_t  *h;

    h = pt_http_header_find(&r->headers_in.headers, arg->data, arg->len);
    if (h == NULL) {
        return PT_DECLINED;
    }

    *v = h->value;
    return PT_OK;
}


/* ${query.NAME}: the raw value of a query parameter. */
static int
pt_var_query_arg(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    return pt_http_arg(r, arg, v);
}


int
pt_http_arg(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    char  *p, *end, *amp, *eq;

    /* No query at all: a request whose head did not parse has no data
     * pointer, and NULL + 0 is undefined. */
    if (r->query.len == 0) {
        return PT_DECLINED;
    }

    p = r->query.data;
    end = p + r->query.len;

    while (p < end) {
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', (size_t) (amp - p));

        if ((size_t) ((eq ? eq : amp) - p) == arg->len
            && memcmp(p, arg->data, arg->len) == 0)
        {
            v->data = eq ? eq + 1 : amp;
            v->len = eq ? (size_t) (amp - eq - 1) : 0;
            return PT_OK;
        }

        p = amp + 1;
    }

    return PT_DECLINED;
}


static int
pt_var_cookie(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v)
{
    char              *p, *end, *semi, *eq;
    size_t             i;
    pt_http_header_t  *h;

    h = r->headers_in.headers.elts;

    for (i = 0; i < r->headers_in.headers.nelts; i++) {
        if (!pt_str_caseeq(&h[i].name, "cookie")) {
            continue;
        }

        p = h[i].value.data;
        end = p + h[i].value.len;

        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t')) {
                p++;
            }

            semi = memchr(p, ';', (size_t) (end - p));
            if (semi == NULL) {
                semi = end;
            }

            eq = memchr(p, '=', (size_t) (semi - p));

            if (eq && (size_t) (eq - p) == arg->len
                && memcmp(p, arg->data, arg->len) == 0)
            {
                v->data = eq + 1;
                v->len = (size_t) (semi - eq - 1);
                return PT_OK;
            }

            p = semi + 1;
        }
    }

    return PT_DECLINED;
}


static const pt_http_var_t  pt_http_core_vars[] = {
    { "remote_addr", pt_var_remote_addr, 0 },
    { "host", pt_var_host, 0 },
    { "method", pt_var_method, 0 },
    { "path", pt_var_path, 0 },
    { "query", pt_var_query, 0 },
    { "request_uri", pt_var_request_uri, 0 },
    { "request_id", pt_var_request_id, 0 },
    { "route", pt_var_route, 0 },
    { "consumer", pt_var_consumer, 0 },
    { "scheme", pt_var_scheme, 0 },
    { "status", pt_var_status, 0 },
    { "bytes_sent", pt_var_bytes_sent, 0 },
    { "duration_ms", pt_var_duration_ms, 0 },
    { "upstream", pt_var_upstream, 0 },
    { "upstream_addr", pt_var_upstream_addr, 0 },
    { "upstream_ms", pt_var_upstream_ms, 0 },
    { "cache_status", pt_var_cache_status, 0 },
    { "trace_id", pt_var_trace_id, 0 },
    { "time_iso8601", pt_var_time, 0 },
    { "tls.sni", pt_var_tls_sni, 0 },
    { "tls.protocol", pt_var_tls_protocol, 0 },
    { "tls.cipher", pt_var_tls_cipher, 0 },
    { "tls.client_subject", pt_var_tls_client_subject, 0 },
    { "tls.client_fingerprint", pt_var_tls_client_fingerprint, 0 },
    { "header.", pt_var_header, 1 },
    { "query.", pt_var_query_arg, 1 },
    { "cookie.", pt_var_cookie, 1 },
};


int
pt_http_vars_preconfig(pt_conf_t *cf)
{
    size_t  i;

    for (i = 0; i < pt_nelems(pt_http_core_vars); i++) {
        if (pt_http_var_add(cf, &pt_http_core_vars[i]) != PT_OK) {
            return PT_ERROR;
        }
    }

    return PT_OK;
}
