/*
 * fuzz_template.c: the ${...} template engine (pt_http_vars.c).
 *
 * The input is a template, a NUL byte, then a request head. The template
 * is compiled as the config loader compiles one (YAML scalars never hold
 * a NUL, hence the separator); the head is parsed with the real parser
 * into a request on a fake connection from 127.0.0.1, with 127.0.0.0/8
 * and 10.0.0.0/8 as trusted proxies so X-Forwarded-For is walked, and
 * with the captures a regex path route would leave. Every variable a
 * template can name is then evaluated against it: the request line and
 * headers, header.NAME, query.NAME, cookie.NAME, the captures, the
 * request id. Checked promises: a compiled template evaluates, its result
 * is NUL-terminated at its length and holds no NUL before it, and a
 * template that says it is literal evaluates to its text. The result is
 * then escaped as a rewritten path is.
 */

#include <arpa/inet.h>

#include "fuzz.h"
#include "pt_http.h"
#include "pt_http_path.h"
#include "pt_module.h"
#include "pt_regex.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_FUZZ_MAX_HEADERS  100


static pt_pool_t            *pt_fuzz_pool;
static pt_cycle_t            pt_fuzz_cycle;
static pt_regex_t           *pt_fuzz_re;
static pt_http_main_conf_t   pt_fuzz_hmcf;
static pt_connection_t       pt_fuzz_conn;
static pt_http_header_t      pt_fuzz_headers[PT_FUZZ_MAX_HEADERS];


static int
pt_fuzz_init(void)
{
    size_t               i;
    pt_conf_t            cf;
    pt_cidr_t           *cidr;
    const char          *reason;
    pt_yaml_node_t       node;
    struct sockaddr_in  *sin;

    static const char  *trusted[] = { "127.0.0.0/8", "10.0.0.0/8",
                                      "::1" };
    static const char   re[] = "^/([^/]*)(?:/([^/]*))?(?:/(x)|/(.*))?$";

    pt_fuzz_quiet_log();
    pt_time_update();

    if (pt_modules_init() != PT_OK) {
        return PT_ERROR;
    }

    pt_fuzz_pool = pt_pool_create(4096);
    if (pt_fuzz_pool == NULL) {
        return PT_ERROR;
    }

    pt_str_set(&pt_fuzz_cycle.conf_file, "fuzz.yaml");

    memset(&cf, 0, sizeof(pt_conf_t));
    cf.cycle = &pt_fuzz_cycle;
    cf.pool = pt_fuzz_pool;

    if (pt_array_init(&cf.errors, pt_fuzz_pool, 4, sizeof(pt_str_t))
        != PT_OK
        || pt_http_vars_preconfig(&cf) != PT_OK)
    {
        return PT_ERROR;
    }

    memset(&node, 0, sizeof(pt_yaml_node_t));
    node.file = "fuzz.yaml";

    pt_fuzz_re = pt_regex_compile(&cf, &node, "path", re, sizeof(re) - 1);
    if (pt_fuzz_re == NULL) {
        return PT_ERROR;
    }

    if (pt_array_init(&pt_fuzz_hmcf.trusted, pt_fuzz_pool, 4,
                      sizeof(pt_cidr_t)) != PT_OK)
    {
        return PT_ERROR;
    }

    for (i = 0; i < pt_nelems(trusted); i++) {
        cidr = pt_array_push(&pt_fuzz_hmcf.trusted);
        if (cidr == NULL
            || pt_parse_cidr(trusted[i], strlen(trusted[i]), cidr, &reason)
               != PT_OK)
        {
            return PT_ERROR;
        }
    }

    sin = (struct sockaddr_in *) &pt_fuzz_conn.sockaddr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(40000);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pt_fuzz_conn.socklen = sizeof(struct sockaddr_in);
    pt_str_set(&pt_fuzz_conn.addr_text, "127.0.0.1");
    pt_fuzz_conn.fd = -1;

    return PT_OK;
}


/* Fill r from head[0..len) the way the request reader does, as far as
 * the head parses; a head that does not parse leaves an empty request. */
static void
pt_fuzz_request(pt_http_request_t *r, char *head, size_t len)
{
    int                   n;
    char                 *path;
    size_t                i, nh, plen;
    pt_http_header_t     *h;
    pt_http_head_scan_t   s;

    memset(&s, 0, sizeof(pt_http_head_scan_t));

    if (pt_http_scan_head(&s, head, len) != PT_OK) {
        return;
    }

    nh = PT_FUZZ_MAX_HEADERS;

    if (pt_http_parse_request_head(head, &s, &r->line, pt_fuzz_headers, &nh)
        != PT_OK)
    {
        memset(&r->line, 0, sizeof(pt_http_request_line_t));
        return;
    }

    r->version = r->line.version;
    r->method = r->line.method;
    r->method_name = r->line.method_name;
    r->query = r->line.query;
    r->has_query = r->line.has_query;

    if (pt_array_init(&r->headers_in.headers, r->pool, nh ? nh : 1,
                      sizeof(pt_http_header_t)) != PT_OK)
    {
        return;
    }

    memcpy(r->headers_in.headers.elts, pt_fuzz_headers,
           nh * sizeof(pt_http_header_t));
    r->headers_in.headers.nelts = nh;

    h = r->headers_in.headers.elts;

    for (i = 0; i < nh; i++) {
        if (h[i].name.len == 4 && strncasecmp(h[i].name.data, "host", 4) == 0)
        {
            r->host.data = pt_pnalloc(r->pool, h[i].value.len + 1);
            if (r->host.data) {
                pt_strlow(r->host.data, h[i].value.data, h[i].value.len);
                r->host.data[h[i].value.len] = '\0';
                r->host.len = h[i].value.len;
            }

        } else if (h[i].name.len == 15
                   && strncasecmp(h[i].name.data, "x-forwarded-for", 15)
                      == 0)
        {
            r->headers_in.x_forwarded_for = &h[i];

        } else if (h[i].name.len == 12
                   && strncasecmp(h[i].name.data, "x-request-id", 12) == 0)
        {
            r->headers_in.x_request_id = &h[i];
        }
    }

    plen = r->line.path.len;
    path = pt_pnalloc(r->pool, plen + 1);

    if (path == NULL
        || (r->line.form != PT_HTTP_FORM_ORIGIN
            && r->line.form != PT_HTTP_FORM_ABSOLUTE)
        || pt_http_normalize_path(r->line.path.data, plen, path, &plen)
           != PT_OK)
    {
        return;
    }

    path[plen] = '\0';
    r->path.data = path;
    r->path.len = plen;

    n = pt_regex_exec(pt_fuzz_re, r->path.data, r->path.len, r->captures,
                      pt_nelems(r->captures) / 2);
    if (n > 0) {
        r->ncaptures = (pt_uint_t) n;
        r->captures_subject = r->path;
    }
}


static void
pt_fuzz_eval(pt_http_request_t *r, pt_template_t *t)
{
    char      *esc;
    size_t     n;
    pt_str_t   out, text;

    pt_fuzz_check(pt_template_max_capture(t) <= 9);

    pt_fuzz_check(pt_template_eval(r, t, &out) == PT_OK);
    pt_fuzz_check(out.len == 0 || out.data != NULL);

    if (pt_template_is_literal(t, &text)) {
        pt_fuzz_check(text.len == out.len
                      && (out.len == 0
                          || memcmp(text.data, out.data, out.len) == 0));
        return;
    }

    pt_fuzz_check(out.data[out.len] == '\0'
                  && strlen(out.data) == out.len);

    esc = pt_pnalloc(r->pool, 3 * out.len + 1);
    if (esc) {
        n = pt_http_escape_path(out.data, out.len, esc);
        pt_fuzz_check(n <= 3 * out.len);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                *tpl, *head;
    size_t               tlen, hlen;
    pt_conf_t            cf;
    pt_pool_t           *pool;
    const uint8_t       *nul;
    pt_template_t       *t;
    pt_yaml_node_t      *node;
    pt_http_request_t   *r;

    static int  ready;

    if (ready == 0) {
        if (pt_fuzz_init() != PT_OK) {
            fprintf(stderr, "fuzz_template: cannot set up\n");
            abort();
        }
        ready = 1;
    }

    nul = memchr(data, '\0', size);
    tlen = nul ? (size_t) (nul - data) : size;
    hlen = nul ? size - tlen - 1 : 0;

    pool = pt_pool_create(4096);
    if (pool == NULL) {
        return 0;
    }

    /* The template as the YAML loader leaves a scalar: NUL-terminated. */
    tpl = pt_pnalloc(pool, tlen + 1);
    node = pt_pcalloc(pool, sizeof(pt_yaml_node_t));
    r = pt_pcalloc(pool, sizeof(pt_http_request_t));

    /* The head in its own exact-size block, so ASan sees overreads. */
    head = malloc(hlen ? hlen : 1);

    if (tpl == NULL || node == NULL || r == NULL || head == NULL) {
        goto done;
    }

    memcpy(tpl, data, tlen);
    tpl[tlen] = '\0';

    if (hlen) {
        memcpy(head, nul + 1, hlen);
    }

    node->type = PT_YAML_SCALAR;
    node->file = "fuzz.yaml";
    node->line = 1;
    node->col = 1;
    node->scalar.data = tpl;
    node->scalar.len = tlen;

    memset(&cf, 0, sizeof(pt_conf_t));
    cf.cycle = &pt_fuzz_cycle;
    cf.pool = pool;

    if (pt_array_init(&cf.errors, pool, 4, sizeof(pt_str_t)) != PT_OK) {
        goto done;
    }

    t = pt_template_compile(&cf, node);

    if (t == NULL) {
        pt_fuzz_check(cf.errors.nelts > 0);
        goto done;
    }

    pt_fuzz_check(cf.errors.nelts == 0 && pt_template_node(t) == node);

    r->pool = pool;
    r->connection = &pt_fuzz_conn;
    r->hmcf = &pt_fuzz_hmcf;
    r->headers_in.content_length_n = -1;
    r->start_usec = pt_monotonic_usec();
    r->status = 200;

    if (pt_array_init(&r->headers_in.headers, pool, 1,
                      sizeof(pt_http_header_t)) != PT_OK)
    {
        goto done;
    }

    pt_fuzz_request(r, head, hlen);

    pt_fuzz_eval(r, t);

done:

    free(head);
    pt_pool_destroy(pool);

    return 0;
}
