/*
 * pt_router_table.c: the compiled route table and its lookup.
 *
 * Routes are grouped by host: one group per exact host, one per wildcard
 * suffix, one for routes without a host; groups are found by hashing the
 * request's host. Every exact or prefix path of a group is an entry of the
 * group's hash table. A lookup hashes the request path once, byte by byte
 * (pt_hash's running hash, shared by all tables), and probes each group's
 * table only at the path lengths some route of the group uses, so its cost
 * follows the number of distinct prefix lengths, not the number of routes.
 * Regex routes are kept apart, in the order written, and only tried when
 * no exact or prefix route matched.
 *
 * Candidates are ranked: exact paths first, then prefixes longest first;
 * within the same path, more constraints first, then the order written.
 * The first candidate whose methods, headers and query all match wins.
 */

#include "pt_router.h"
#include "pt_hash.h"
#include "pt_string.h"


#define PT_ROUTER_HASHED_LEN   256     /* prefix hashes kept on the stack */

typedef struct {
    pt_hash_t           paths;       /* path -> pt_router_entry_t       */
    size_t             *lengths;     /* distinct prefix lengths, longest
                                        first                           */
    size_t              nlengths;
    unsigned            has_exact:1;
} pt_router_group_t;

typedef struct {
    pt_array_t          exact;       /* pt_router_conf_t *, ranked      */
    pt_array_t          prefix;      /* pt_router_conf_t *, ranked      */
} pt_router_entry_t;

struct pt_router_table_s {
    pt_hash_t           hosts;       /* exact hosts -> group            */
    pt_hash_t           wildcards;   /* ".example.com" -> group         */
    pt_router_group_t  *any;         /* routes without a host           */
    pt_array_t          regex;       /* pt_router_conf_t *, as written  */
    unsigned            wildcard:1;  /* any wildcard group at all       */
};

typedef struct {
    pt_router_conf_t   *conf;
    unsigned            exact;       /* 1: an exact path match          */
    size_t              len;         /* path length matched             */
} pt_router_cand_t;

enum {
    PT_ROUTER_NO = 0,
    PT_ROUTER_YES,
    PT_ROUTER_METHOD_ONLY            /* all but the method matched      */
};


/* Ranked insertion: more constraints first, then the order written. */
static int
pt_router_list_add(pt_array_t *a, pt_router_conf_t *rcf)
{
    size_t              i;
    pt_router_conf_t  **l;

    if (pt_array_push(a) == NULL) {
        return PT_ERROR;
    }

    l = a->elts;

    for (i = a->nelts - 1; i > 0; i--) {
        if (l[i - 1]->constraints > rcf->constraints
            || (l[i - 1]->constraints == rcf->constraints
                && l[i - 1]->route->index < rcf->route->index))
        {
            break;
        }
        l[i] = l[i - 1];
    }

    l[i] = rcf;

    return PT_OK;
}


static pt_router_group_t *
pt_router_group_new(pt_pool_t *pool)
{
    pt_router_group_t  *g;

    g = pt_pcalloc(pool, sizeof(pt_router_group_t));
    if (g == NULL || pt_hash_init(&g->paths, pool, 1, 0) != PT_OK) {
        return NULL;
    }

    return g;
}


static pt_router_group_t *
pt_router_group_get(pt_pool_t *pool, pt_hash_t *h, pt_str_t *key)
{
    pt_router_group_t  *g;

    g = pt_hash_find(h, key->data, key->len);
    if (g) {
        return g;
    }

    g = pt_router_group_new(pool);
    if (g == NULL || pt_hash_add(h, key->data, key->len, g, NULL) != PT_OK) {
        return NULL;
    }

    return g;
}


static int
pt_router_entry_add(pt_pool_t *pool, pt_router_group_t *g,
    pt_router_conf_t *rcf)
{
    size_t              k;
    pt_router_entry_t  *e;

    e = pt_hash_find(&g->paths, rcf->path.data, rcf->path.len);

    if (e == NULL) {
        e = pt_pcalloc(pool, sizeof(pt_router_entry_t));
        if (e == NULL
            || pt_array_init(&e->exact, pool, 1, sizeof(void *)) != PT_OK
            || pt_array_init(&e->prefix, pool, 1, sizeof(void *)) != PT_OK
            || pt_hash_add(&g->paths, rcf->path.data, rcf->path.len, e, NULL)
               != PT_OK)
        {
            return PT_ERROR;
        }
    }

    if (rcf->path_kind == PT_ROUTER_EXACT) {
        g->has_exact = 1;
        return pt_router_list_add(&e->exact, rcf);
    }

    /* Record the length, keeping the list longest first. */
    for (k = 0; k < g->nlengths && g->lengths[k] > rcf->path.len; k++) {
        /* void */
    }

    if (k == g->nlengths || g->lengths[k] != rcf->path.len) {
        size_t  *l;

        l = pt_palloc(pool, (g->nlengths + 1) * sizeof(size_t));
        if (l == NULL) {
            return PT_ERROR;
        }

        if (g->nlengths) {
            memcpy(l, g->lengths, k * sizeof(size_t));
            memcpy(l + k + 1, g->lengths + k,
                   (g->nlengths - k) * sizeof(size_t));
        }

        l[k] = rcf->path.len;
        g->lengths = l;
        g->nlengths++;
    }

    return pt_router_list_add(&e->prefix, rcf);
}


pt_router_table_t *
pt_router_table_build(pt_conf_t *cf)
{
    size_t                i, n;
    pt_route_t          **routes;
    pt_router_conf_t     *rcf;
    pt_router_group_t    *g;
    pt_router_table_t    *t;
    pt_http_main_conf_t  *hmcf;

    hmcf = pt_http_main_conf(cf->cycle);
    routes = hmcf->routes.elts;
    n = hmcf->routes.nelts;

    t = pt_pcalloc(cf->pool, sizeof(pt_router_table_t));
    if (t == NULL
        || pt_hash_init(&t->hosts, cf->pool, 0, 0) != PT_OK
        || pt_hash_init(&t->wildcards, cf->pool, 0, 0) != PT_OK
        || pt_array_init(&t->regex, cf->pool, 4, sizeof(pt_router_conf_t *))
           != PT_OK)
    {
        return NULL;
    }

    t->any = pt_router_group_new(cf->pool);
    if (t->any == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        rcf = routes[i]->conf[pt_router_module.index];
        rcf->route = routes[i];

        if (rcf->path_kind == PT_ROUTER_REGEX) {
            if (pt_array_push(&t->regex) == NULL) {
                return NULL;
            }
            ((pt_router_conf_t **) t->regex.elts)[t->regex.nelts - 1] = rcf;
            continue;
        }

        switch (rcf->host_kind) {

        case PT_ROUTER_HOST:
            g = pt_router_group_get(cf->pool, &t->hosts, &rcf->host);
            break;

        case PT_ROUTER_WILDCARD:
            g = pt_router_group_get(cf->pool, &t->wildcards, &rcf->host);
            t->wildcard = 1;
            break;

        default:
            g = t->any;
        }

        if (g == NULL || pt_router_entry_add(cf->pool, g, rcf) != PT_OK) {
            return NULL;
        }
    }

    return t;
}


static int
pt_router_cands_add(pt_array_t *out, pt_array_t *list, unsigned exact,
    size_t len)
{
    size_t              i;
    pt_router_cand_t   *c;
    pt_router_conf_t  **l;

    l = list->elts;

    for (i = 0; i < list->nelts; i++) {
        c = pt_array_push(out);
        if (c == NULL) {
            return PT_ERROR;
        }
        c->conf = l[i];
        c->exact = exact;
        c->len = len;
    }

    return PT_OK;
}


/* The group's exact and prefix routes for the path: one probe for the
 * exact path and one per prefix length the group uses. pref[l] is the
 * running hash of the path's first l bytes, up to PT_ROUTER_HASHED_LEN. */
static void
pt_router_group_collect(pt_router_group_t *g, const pt_str_t *path,
    const uint64_t *pref, pt_array_t *out)
{
    size_t              k, l;
    uint64_t            h;
    pt_router_entry_t  *e;

    if (g->has_exact) {
        h = path->len <= PT_ROUTER_HASHED_LEN
            ? pt_hash_end(pref[path->len])
            : pt_hash_key(&g->paths, path->data, path->len);

        e = pt_hash_find_hashed(&g->paths, h, path->data, path->len);
        if (e && e->exact.nelts) {
            (void) pt_router_cands_add(out, &e->exact, 1, path->len);
        }
    }

    for (k = 0; k < g->nlengths; k++) {
        l = g->lengths[k];

        if (l > path->len) {
            continue;
        }

        h = l <= PT_ROUTER_HASHED_LEN ? pt_hash_end(pref[l])
                                      : pt_hash_key(&g->paths, path->data, l);

        e = pt_hash_find_hashed(&g->paths, h, path->data, l);
        if (e && e->prefix.nelts) {
            (void) pt_router_cands_add(out, &e->prefix, 0, l);
        }
    }
}


/* Rank: exact before prefix, longer prefix first, more constraints
 * first, the order written last. */
static int
pt_router_cand_before(const pt_router_cand_t *a, const pt_router_cand_t *b)
{
    if (a->exact != b->exact) {
        return a->exact > b->exact;
    }

    if (a->len != b->len) {
        return a->len > b->len;
    }

    if (a->conf->constraints != b->conf->constraints) {
        return a->conf->constraints > b->conf->constraints;
    }

    return a->conf->route->index < b->conf->route->index;
}


static void
pt_router_cand_sort(pt_router_cand_t *c, size_t n)
{
    size_t            i, j;
    pt_router_cand_t  x;

    /* Few candidates, mostly in order already: insertion sort. */
    for (i = 1; i < n; i++) {
        x = c[i];
        for (j = i; j > 0 && pt_router_cand_before(&x, &c[j - 1]); j--) {
            c[j] = c[j - 1];
        }
        c[j] = x;
    }
}


static int
pt_router_value_match(pt_router_cond_t *cond, const pt_str_t *v)
{
    int  caps[2];

    if (cond->re) {
        return pt_regex_exec(cond->re, v->data, v->len, caps, 1) > 0;
    }

    return pt_str_equal(&cond->value, v);
}


static int
pt_router_headers_match(pt_router_conf_t *rcf, pt_http_request_t *r)
{
    size_t             i, j;
    pt_http_header_t  *h;
    pt_router_cond_t  *cond;

    cond = rcf->headers.elts;
    h = r->headers_in.headers.elts;

    for (i = 0; i < rcf->headers.nelts; i++) {
        /* Any field of that name may satisfy the condition. */
        for (j = 0; j < r->headers_in.headers.nelts; j++) {
            if (pt_strcaseeq(&h[j].name, cond[i].name.data, cond[i].name.len)
                && pt_router_value_match(&cond[i], &h[j].value))
            {
                break;
            }
        }

        if (j == r->headers_in.headers.nelts) {
            return 0;
        }
    }

    return 1;
}


/* Query parameters are compared as sent (not percent-decoded); any
 * occurrence of the name may satisfy the condition. */
static int
pt_router_query_match(pt_router_conf_t *rcf, pt_http_request_t *r)
{
    int                ok;
    size_t             i;
    char              *p, *end, *amp, *eq;
    pt_str_t           name, value;
    pt_router_cond_t  *cond;

    cond = rcf->query.elts;

    for (i = 0; i < rcf->query.nelts; i++) {
        ok = 0;
        p = r->query.data;
        end = p + r->query.len;

        while (p && p < end && !ok) {
            amp = memchr(p, '&', (size_t) (end - p));
            if (amp == NULL) {
                amp = end;
            }

            eq = memchr(p, '=', (size_t) (amp - p));
            name.data = p;
            name.len = (size_t) ((eq ? eq : amp) - p);
            value.data = eq ? eq + 1 : amp;
            value.len = eq ? (size_t) (amp - eq - 1) : 0;

            ok = pt_str_equal(&name, &cond[i].name)
                 && pt_router_value_match(&cond[i], &value);

            p = amp + 1;
        }

        if (!ok) {
            return 0;
        }
    }

    return 1;
}


static int
pt_router_method_match(pt_router_conf_t *rcf, pt_http_request_t *r)
{
    size_t     i;
    pt_str_t  *other;

    if (rcf->methods == 0 || (rcf->methods & r->method & ~PT_HTTP_OTHER)) {
        return 1;
    }

    if (r->method == PT_HTTP_OTHER) {
        other = rcf->other_methods.elts;
        for (i = 0; i < rcf->other_methods.nelts; i++) {
            if (pt_str_equal(&other[i], &r->method_name)) {
                return 1;
            }
        }
    }

    return 0;
}


static int
pt_router_host_match(pt_router_conf_t *rcf, pt_http_request_t *r)
{
    switch (rcf->host_kind) {

    case PT_ROUTER_HOST:
        return pt_str_equal(&rcf->host, &r->host);

    case PT_ROUTER_WILDCARD:
        return r->host.len > rcf->host.len
               && memcmp(r->host.data + r->host.len - rcf->host.len,
                         rcf->host.data, rcf->host.len) == 0;
    }

    return 1;
}


/* Everything but host and path, which the caller has checked. */
static int
pt_router_rest_match(pt_router_conf_t *rcf, pt_http_request_t *r)
{
    if (!pt_router_headers_match(rcf, r) || !pt_router_query_match(rcf, r)) {
        return PT_ROUTER_NO;
    }

    return pt_router_method_match(rcf, r) ? PT_ROUTER_YES
                                          : PT_ROUTER_METHOD_ONLY;
}


static void
pt_router_groups(pt_router_table_t *t, pt_http_request_t *r,
    pt_array_t *cands)
{
    size_t              i, n;
    uint64_t            pref[PT_ROUTER_HASHED_LEN + 1], h;
    pt_router_group_t  *g;

    /* The running hash of every path prefix, computed once. */
    n = pt_min(r->path.len, (size_t) PT_ROUTER_HASHED_LEN);
    h = pt_hash_start();
    pref[0] = h;

    for (i = 0; i < n; i++) {
        h = pt_hash_step(h, (unsigned char) r->path.data[i]);
        pref[i + 1] = h;
    }

    pt_router_group_collect(t->any, &r->path, pref, cands);

    if (r->host.len == 0) {
        return;
    }

    g = pt_hash_find(&t->hosts, r->host.data, r->host.len);
    if (g) {
        pt_router_group_collect(g, &r->path, pref, cands);
    }

    if (!t->wildcard) {
        return;
    }

    /* Every suffix starting at a dot: "a.b.example.com" tries
     * ".b.example.com", ".example.com" and ".com". */
    for (i = 1; i < r->host.len; i++) {
        if (r->host.data[i] != '.') {
            continue;
        }

        g = pt_hash_find(&t->wildcards, r->host.data + i, r->host.len - i);
        if (g) {
            pt_router_group_collect(g, &r->path, pref, cands);
        }
    }
}


static void
pt_router_allow_add(pt_router_allow_t *allow, pt_router_conf_t *rcf)
{
    allow->methods |= rcf->methods;

    if (rcf->other_methods.nelts && allow->n < pt_nelems(allow->confs)) {
        allow->confs[allow->n++] = rcf;
    }
}


int
pt_router_lookup(pt_router_table_t *t, pt_http_request_t *r,
    pt_router_conf_t **found, pt_router_allow_t *allow)
{
    int                 rc, n;
    size_t              i;
    pt_array_t          cands;
    pt_router_cand_t   *c, small[32];
    pt_router_conf_t  **re;

    allow->methods = 0;
    allow->n = 0;

    /* Candidates live on the stack unless a path has more than a few. */
    cands.elts = small;
    cands.nelts = 0;
    cands.size = sizeof(pt_router_cand_t);
    cands.nalloc = pt_nelems(small);
    cands.pool = r->pool;

    pt_router_groups(t, r, &cands);

    c = cands.elts;
    pt_router_cand_sort(c, cands.nelts);

    for (i = 0; i < cands.nelts; i++) {
        rc = pt_router_rest_match(c[i].conf, r);

        if (rc == PT_ROUTER_YES) {
            *found = c[i].conf;
            return PT_OK;
        }

        if (rc == PT_ROUTER_METHOD_ONLY) {
            pt_router_allow_add(allow, c[i].conf);
        }
    }

    re = t->regex.elts;

    for (i = 0; i < t->regex.nelts; i++) {
        if (!pt_router_host_match(re[i], r)) {
            continue;
        }

        rc = pt_router_rest_match(re[i], r);
        if (rc == PT_ROUTER_NO) {
            continue;
        }

        n = pt_regex_exec(re[i]->path_re, r->path.data, r->path.len,
                          r->captures, pt_nelems(r->captures) / 2);
        if (n <= 0) {
            continue;
        }

        if (rc == PT_ROUTER_METHOD_ONLY) {
            pt_router_allow_add(allow, re[i]);
            continue;
        }

        r->ncaptures = (pt_uint_t) n;
        r->captures_subject = r->path;
        *found = re[i];

        return PT_OK;
    }

    return allow->methods ? 405 : 404;
}
