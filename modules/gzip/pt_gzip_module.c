/*
 * pt_gzip_module.c: a route's `compress:` and the decision, per response,
 * to compress it.
 *
 *   compress: { types: [application/json, image/svg+xml], min_size: 1k,
 *               level: 5 }
 *   compress: true            # every default
 *
 * A type may also be a wildcard: a major type, a slash and an asterisk
 * (its every subtype), or an asterisk, a slash and an asterisk (anything).
 *
 * The header filter (priority 300: after the cache at 700 and the
 * router's response_headers at 800 have had their say) compresses a
 * response only when the route asks for it, the request is not HEAD, the
 * status has a body and is not 206, the response is not encoded already,
 * has no Content-Range and no Cache-Control: no-transform, its
 * Content-Type is one of `types`, its length is unknown or at least
 * `min_size`, and the client accepts gzip (Accept-Encoding, RFC 9110
 * 12.5.3). Whenever the response itself qualifies, Vary: Accept-Encoding
 * tells caches that the answer depends on the client. The body filter is
 * pt_gzip_filter.c.
 */

#include "pt_gzip.h"
#include "pt_string.h"


static void *pt_gzip_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_gzip_set(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_gzip_postconfig(pt_conf_t *cf);
static int pt_gzip_header_filter(pt_http_request_t *r);


static const pt_command_t  pt_gzip_commands[] = {

    { "compress", PT_CONF_ROUTE | PT_CONF_SCALAR | PT_CONF_MAP, pt_gzip_set,
      0, NULL },

    pt_null_command
};


pt_module_t  pt_gzip_module = {
    .name = "gzip",
    .abi = PT_MODULE_ABI,
    .commands = pt_gzip_commands,
    .create_conf = pt_gzip_create_conf,
    .postconfig = pt_gzip_postconfig,
};


/* What `compress: true` and a map without `types` compress: text and the
 * structured formats APIs send. Images other than SVG, archives and
 * media are compressed already. */
static pt_gzip_type_t  pt_gzip_default_types[] = {
    { pt_string("text/"), 1 },
    { pt_string("application/json"), 0 },
    { pt_string("application/javascript"), 0 },
    { pt_string("application/xml"), 0 },
    { pt_string("image/svg+xml"), 0 },
};


static void *
pt_gzip_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_gzip_conf_t  *gcf;

    if (level != PT_CONF_LEVEL_ROUTE) {
        return NULL;
    }

    gcf = pt_pcalloc(cf->pool, sizeof(pt_gzip_conf_t));

    return gcf ? gcf : PT_CONF_ERROR_PTR;
}


/* A type as written: TYPE/SUBTYPE or a wildcard (tokens), without
 * parameters, since a parameter never decides whether text compresses. */
static int
pt_gzip_parse_type(pt_conf_t *cf, pt_yaml_node_t *node, pt_gzip_type_t *t)
{
    char      *p, *slash;
    pt_str_t   major, minor;

    if (pt_conf_expect(cf, node, PT_YAML_SCALAR, "compress: a type")
        != PT_OK)
    {
        return PT_ERROR;
    }

    p = node->scalar.data;
    slash = memchr(p, '/', node->scalar.len);

    if (slash) {
        major.data = p;
        major.len = (size_t) (slash - p);
        minor.data = slash + 1;
        minor.len = node->scalar.len - major.len - 1;
    }

    if (slash == NULL || !pt_http_is_token(&major)
        || !pt_http_is_token(&minor)
        || (pt_str_eq(&major, "*") && !pt_str_eq(&minor, "*"))
        || (!pt_str_eq(&minor, "*") && memchr(minor.data, '*', minor.len)))
    {
        return pt_conf_error(cf, node,
                             "compress: \"%s\" is not a media type (TYPE/SUBTYPE, TYPE/* or */*, no parameters)",
                             node->scalar.data);
    }

    /* A wildcard is kept as its prefix: "text/", or "" for any type. */
    if (pt_str_eq(&minor, "*")) {
        t->prefix = 1;
        t->type.len = pt_str_eq(&major, "*") ? 0 : major.len + 1;

    } else {
        t->type.len = node->scalar.len;
    }

    t->type.data = pt_pnalloc(cf->pool, t->type.len + 1);
    if (t->type.data == NULL) {
        return PT_ERROR;
    }

    pt_strlow(t->type.data, p, t->type.len);
    t->type.data[t->type.len] = '\0';

    return PT_OK;
}


static int
pt_gzip_set_types(pt_conf_t *cf, pt_yaml_node_t *node, pt_gzip_conf_t *gcf)
{
    int      rc;
    size_t   i;

    if (pt_conf_expect(cf, node, PT_YAML_SEQ, "compress: types") != PT_OK) {
        return PT_ERROR;
    }

    if (node->n == 0) {
        return pt_conf_error(cf, node, "compress: types is an empty list");
    }

    gcf->types = pt_pcalloc(cf->pool, node->n * sizeof(pt_gzip_type_t));
    if (gcf->types == NULL) {
        return PT_ERROR;
    }

    gcf->ntypes = node->n;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        if (pt_gzip_parse_type(cf, node->items[i], &gcf->types[i]) != PT_OK)
        {
            rc = PT_ERROR;
        }
    }

    return rc;
}


static int
pt_gzip_set(pt_conf_t *cf, const pt_command_t *cmd, pt_yaml_node_t *node,
    void *conf)
{
    int              rc, flag;
    size_t           i;
    int64_t          n;
    const char      *k;
    pt_yaml_node_t  *v;
    pt_gzip_conf_t  *gcf;

    gcf = conf;

    gcf->types = pt_gzip_default_types;
    gcf->ntypes = pt_nelems(pt_gzip_default_types);
    gcf->min_size = 1024;
    gcf->level = 5;

    if (node->type == PT_YAML_SCALAR) {
        if (pt_conf_parse_flag(cf, node, &flag) != PT_OK) {
            return PT_ERROR;
        }

        gcf->on = flag ? 1 : 0;
        return PT_OK;
    }

    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        k = node->pairs[i].key->scalar.data;
        v = node->pairs[i].value;

        if (strcmp(k, "types") == 0) {
            if (pt_gzip_set_types(cf, v, gcf) != PT_OK) {
                rc = PT_ERROR;
            }

        } else if (strcmp(k, "min_size") == 0) {
            if (pt_conf_parse_size(cf, v, &gcf->min_size) != PT_OK) {
                rc = PT_ERROR;
            }

        } else if (strcmp(k, "level") == 0) {
            if (pt_conf_parse_int(cf, v, "compress: level", 1, 9, &n)
                != PT_OK)
            {
                rc = PT_ERROR;
                continue;
            }
            gcf->level = (int) n;

        } else {
            rc = pt_conf_error(cf, node->pairs[i].key,
                               "unknown key \"%s\" in compress (types, min_size, level)",
                               k);
        }
    }

    gcf->on = (rc == PT_OK);

    return rc;
}


static int
pt_gzip_postconfig(pt_conf_t *cf)
{
    /* 300 both: below the cache (700), which stores and replays what the
     * upstream sent, and the router's header edits (800); above chunked
     * framing (200), which must frame the compressed bytes. */
    if (pt_http_header_filter_add(cf, pt_gzip_header_filter, 300,
                                  &pt_gzip_module) != PT_OK)
    {
        return PT_ERROR;
    }

    return pt_http_body_filter_add(cf, pt_gzip_body_filter, 300,
                                   &pt_gzip_module);
}


/* A qvalue (RFC 9110 12.4.2) in thousandths: "0" ["." 0*3DIGIT] or "1"
 * ["." 0*3"0"]; -1 when it is anything else. */
static int
pt_gzip_qvalue(const char *p, size_t len)
{
    int      q, scale;
    size_t   i;

    if (len == 0 || (p[0] != '0' && p[0] != '1')) {
        return -1;
    }

    q = (p[0] - '0') * 1000;

    if (len == 1) {
        return q;
    }

    if (p[1] != '.' || len > 5) {
        return -1;
    }

    for (i = 2, scale = 100; i < len; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9' || (q == 1000 && p[i] != '0')) {
            return -1;
        }
        q += (p[i] - '0') * scale;
    }

    return q;
}


static int
pt_gzip_is_ows(char c)
{
    return c == ' ' || c == '\t';
}


static void
pt_gzip_trim(pt_str_t *s)
{
    while (s->len && pt_gzip_is_ows(s->data[0])) {
        s->data++;
        s->len--;
    }

    while (s->len && pt_gzip_is_ows(s->data[s->len - 1])) {
        s->len--;
    }
}


/* One element of Accept-Encoding, "coding *( OWS ; OWS param )": its
 * coding and weight; PT_DECLINED when it is empty or malformed (a bad
 * q-value included), which leaves it out of the list. */
static int
pt_gzip_element(pt_str_t *el, pt_str_t *coding, int *q)
{
    char      *semi;
    pt_str_t   param, name, value;

    pt_gzip_trim(el);

    semi = memchr(el->data, ';', el->len);
    coding->data = el->data;
    coding->len = semi ? (size_t) (semi - el->data) : el->len;
    pt_gzip_trim(coding);

    if (!pt_http_is_token(coding)) {
        return PT_DECLINED;
    }

    *q = 1000;

    while (semi) {
        param.data = semi + 1;
        param.len = (size_t) (el->data + el->len - param.data);
        semi = memchr(param.data, ';', param.len);

        if (semi) {
            param.len = (size_t) (semi - param.data);
        }

        pt_gzip_trim(&param);

        name.data = param.data;
        value.data = memchr(param.data, '=', param.len);

        if (value.data == NULL) {
            return PT_DECLINED;
        }

        name.len = (size_t) (value.data - param.data);
        value.data++;
        value.len = param.len - name.len - 1;

        if (pt_str_caseeq(&name, "q")) {
            *q = pt_gzip_qvalue(value.data, value.len);
            if (*q < 0) {
                return PT_DECLINED;
            }
        }
    }

    return PT_OK;
}


/* 1 when the request's Accept-Encoding (all its fields, as one list)
 * lets us answer with gzip: "gzip" or "x-gzip" with q > 0, or, when
 * neither is named, "*" with q > 0. No field at all asks for identity. */
static int
pt_gzip_accepted(pt_http_request_t *r)
{
    int                q, gzip_q, star_q;
    char              *comma, *end;
    size_t             i;
    pt_str_t           el, coding;
    pt_http_header_t  *h;

    gzip_q = -1;
    star_q = -1;
    h = r->headers_in.headers.elts;

    for (i = 0; i < r->headers_in.headers.nelts; i++) {
        if (!pt_str_caseeq(&h[i].name, "accept-encoding")) {
            continue;
        }

        el.data = h[i].value.data;
        end = h[i].value.data + h[i].value.len;

        for ( ;; ) {
            comma = memchr(el.data, ',', (size_t) (end - el.data));
            el.len = (size_t) ((comma ? comma : end) - el.data);

            if (pt_gzip_element(&el, &coding, &q) == PT_OK) {
                if (pt_str_caseeq(&coding, "gzip")
                    || pt_str_caseeq(&coding, "x-gzip"))
                {
                    gzip_q = pt_max(gzip_q, q);

                } else if (pt_str_eq(&coding, "*")) {
                    star_q = pt_max(star_q, q);
                }
            }

            if (comma == NULL) {
                break;
            }

            el.data = comma + 1;
        }
    }

    return gzip_q >= 0 ? gzip_q > 0 : star_q > 0;
}


/* The response's media type (before any parameter), against `types`. */
static int
pt_gzip_type_matches(pt_http_request_t *r, pt_gzip_conf_t *gcf)
{
    char              *semi;
    size_t             i;
    pt_str_t           type;
    pt_gzip_type_t    *t;
    pt_http_header_t  *h;

    h = pt_http_header_find(&r->headers_out.headers, "Content-Type", 12);
    if (h == NULL) {
        return 0;
    }

    type = h->value;
    semi = memchr(type.data, ';', type.len);
    if (semi) {
        type.len = (size_t) (semi - type.data);
    }
    pt_gzip_trim(&type);

    for (i = 0; i < gcf->ntypes; i++) {
        t = &gcf->types[i];

        if (t->prefix) {
            if (type.len > t->type.len
                && pt_strcaseeq(&(pt_str_t) { t->type.len, type.data },
                                t->type.data, t->type.len))
            {
                return 1;
            }

        } else if (pt_strcaseeq(&type, t->type.data, t->type.len)) {
            return 1;
        }
    }

    return 0;
}


/* Whether this response may be compressed at all, whoever asks. */
static int
pt_gzip_response_qualifies(pt_http_request_t *r, pt_gzip_conf_t *gcf)
{
    size_t             i;
    unsigned           status;
    pt_http_header_t  *h;

    status = r->headers_out.status;

    if (status < 200 || status == 204 || status == 206 || status == 304) {
        return 0;
    }

    if (r->headers_out.content_length_n >= 0
        && (uint64_t) r->headers_out.content_length_n < gcf->min_size)
    {
        return 0;
    }

    h = r->headers_out.headers.elts;

    for (i = 0; i < r->headers_out.headers.nelts; i++) {
        if (pt_str_caseeq(&h[i].name, "content-encoding")) {
            /* Encoded already (or gzip twice would be a client's puzzle);
             * "identity" is no encoding. */
            if (h[i].value.len && !pt_str_caseeq(&h[i].value, "identity")) {
                return 0;
            }

        } else if (pt_str_caseeq(&h[i].name, "content-range")) {
            return 0;

        } else if (pt_str_caseeq(&h[i].name, "cache-control")
                   && pt_http_list_has(&h[i].value, "no-transform", 12))
        {
            return 0;
        }
    }

    return pt_gzip_type_matches(r, gcf);
}


/* Vary: Accept-Encoding, joined to a Vary there is unless it names it
 * already or is "*". */
static int
pt_gzip_vary(pt_http_request_t *r)
{
    char              *p;
    size_t             i;
    pt_str_t           star;
    pt_http_header_t  *h, *first;

    first = NULL;
    h = r->headers_out.headers.elts;
    star = (pt_str_t) pt_string("*");

    for (i = 0; i < r->headers_out.headers.nelts; i++) {
        if (!pt_str_caseeq(&h[i].name, "vary")) {
            continue;
        }

        if (pt_http_list_has(&h[i].value, "accept-encoding", 15)
            || pt_http_list_has(&h[i].value, star.data, star.len))
        {
            return PT_OK;
        }

        if (first == NULL) {
            first = &h[i];
        }
    }

    if (first == NULL || first->value.len == 0) {
        return pt_http_header_out_set(r, "Vary", 4, "Accept-Encoding", 15);
    }

    p = pt_pnalloc(r->pool, first->value.len + sizeof(", Accept-Encoding"));
    if (p == NULL) {
        return PT_ERROR;
    }

    memcpy(p, first->value.data, first->value.len);
    memcpy(p + first->value.len, ", Accept-Encoding",
           sizeof(", Accept-Encoding"));

    first->value.data = p;
    first->value.len += sizeof(", Accept-Encoding") - 1;

    return PT_OK;
}


/* The head of a compressed response: encoded, of unknown length (the
 * core frames it chunked on HTTP/1.1, by END_STREAM on HTTP/2), its
 * ETag weak (the bytes differ from the upstream's), no ranges. */
static int
pt_gzip_encode_head(pt_http_request_t *r)
{
    char              *p;
    pt_http_header_t  *etag;

    r->headers_out.content_length_n = -1;
    pt_http_header_out_remove(r, "Content-Length", 14);
    pt_http_header_out_remove(r, "Accept-Ranges", 13);

    etag = pt_http_header_find(&r->headers_out.headers, "ETag", 4);

    if (etag && etag->value.len && etag->value.data[0] == '"') {
        p = pt_pnalloc(r->pool, etag->value.len + 2);
        if (p == NULL) {
            return PT_ERROR;
        }

        p[0] = 'W';
        p[1] = '/';
        memcpy(p + 2, etag->value.data, etag->value.len);
        etag->value.data = p;
        etag->value.len += 2;
    }

    return pt_http_header_out_set(r, "Content-Encoding", 16, "gzip", 4);
}


static int
pt_gzip_no_memory(pt_http_request_t *r)
{
    pt_http_log_request(r, PT_LOG_ERR, "gzip: out of memory for the head");

    return PT_ERROR;
}


static int
pt_gzip_header_filter(pt_http_request_t *r)
{
    int              wbits, memlevel;
    int64_t          len;
    pt_gzip_ctx_t   *ctx;
    pt_gzip_conf_t  *gcf;

    ctx = pt_http_get_module_ctx(r, pt_gzip_module);

    if (ctx) {
        /* An error replaces a response that was never sent: that one's
         * stream is dropped, this one is decided afresh. */
        pt_gzip_end(ctx);
        ctx->active = 0;
        pt_http_set_module_ctx(r, NULL, pt_gzip_module);
    }

    gcf = pt_http_route_conf(r, pt_gzip_module);

    if (gcf == NULL || !gcf->on || !pt_gzip_response_qualifies(r, gcf)) {
        return PT_OK;
    }

    if (pt_gzip_vary(r) != PT_OK) {
        return pt_gzip_no_memory(r);
    }

    /* HEAD gets the head an identity GET would get: what a gzip GET
     * would be is not known without compressing the body. */
    if (r->method == PT_HTTP_HEAD || !pt_gzip_accepted(r)) {
        return PT_OK;
    }

    ctx = pt_pcalloc(r->pool, sizeof(pt_gzip_ctx_t));
    if (ctx == NULL) {
        return pt_gzip_no_memory(r);
    }

    /* A small body needs no 32 KiB window: as nginx does, halve the
     * window (and the hash) while the body fits in half of it. */
    wbits = MAX_WBITS;
    memlevel = 8;
    len = r->headers_out.content_length_n;

    if (len > 0) {
        while (wbits > 9 && len < ((int64_t) 1 << (wbits - 1)) - 262) {
            wbits--;
            memlevel--;
        }

        memlevel = pt_max(memlevel, 1);
    }

    ctx->level = gcf->level;
    ctx->wbits = wbits;
    ctx->memlevel = memlevel;
    ctx->active = 1;

    if (pt_gzip_encode_head(r) != PT_OK) {
        return pt_gzip_no_memory(r);
    }

    pt_http_set_module_ctx(r, ctx, pt_gzip_module);

    return PT_OK;
}
