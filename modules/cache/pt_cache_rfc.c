/*
 * pt_cache_rfc.c: the rules of RFC 9111 the cache follows: Cache-Control
 * directives, HTTP dates, whether and for how long a response is fresh,
 * and conditional requests (RFC 9110 13). Also the stored form of a
 * response's fields.
 *
 * Every byte here comes from a client or an upstream: values are parsed
 * strictly, and what does not parse is treated the safe way (an invalid
 * max-age or Expires means already stale, RFC 9111 4.2.1 and 5.3).
 */

#include "pt_cache.h"
#include "pt_string.h"

#include <time.h>


/* delta-seconds: digits only; a value too large for us is "a very long
 * time" (RFC 9111 1.2.2 caps it at 2^31). */
static int64_t
pt_cache_delta(const char *p, const char *end)
{
    int64_t  n;

    if (p < end && *p == '"' && end - p >= 2 && end[-1] == '"') {
        p++;        /* tolerate the quoted form some servers send */
        end--;
    }

    if (p == end) {
        return 0;
    }

    for (n = 0; p < end; p++) {
        if (*p < '0' || *p > '9') {
            return 0;           /* invalid: stale (RFC 9111 4.2.1) */
        }
        if (n < 2147483648LL) {
            n = n * 10 + (*p - '0');
        }
    }

    return n > 2147483648LL ? 2147483648LL : n;
}


static int
pt_cache_name_is(const char *p, size_t len, const char *name)
{
    return strlen(name) == len && strncasecmp(p, name, len) == 0;
}


static void
pt_cache_directive(pt_cache_control_t *cc, const char *n, size_t nlen,
    const char *v, const char *vend, int has_value)
{
    if (pt_cache_name_is(n, nlen, "no-store")) {
        cc->no_store = 1;
    } else if (pt_cache_name_is(n, nlen, "no-cache")) {
        /* With field names it limits what may be reused; we take the
         * stricter reading and revalidate the whole response. */
        cc->no_cache = 1;
    } else if (pt_cache_name_is(n, nlen, "private")) {
        cc->private_ = 1;
    } else if (pt_cache_name_is(n, nlen, "public")) {
        cc->public_ = 1;
    } else if (pt_cache_name_is(n, nlen, "must-revalidate")
               || pt_cache_name_is(n, nlen, "proxy-revalidate"))
    {
        cc->must_revalidate = 1;
    } else if (pt_cache_name_is(n, nlen, "no-transform")) {
        cc->no_transform = 1;
    } else if (pt_cache_name_is(n, nlen, "only-if-cached")) {
        cc->only_if_cached = 1;
    } else if (pt_cache_name_is(n, nlen, "max-age")) {
        cc->max_age = has_value ? pt_cache_delta(v, vend) : 0;
    } else if (pt_cache_name_is(n, nlen, "s-maxage")) {
        cc->s_maxage = has_value ? pt_cache_delta(v, vend) : 0;
    } else if (pt_cache_name_is(n, nlen, "stale-while-revalidate")) {
        cc->stale_while_revalidate = has_value ? pt_cache_delta(v, vend) : 0;
    } else if (pt_cache_name_is(n, nlen, "stale-if-error")) {
        cc->stale_if_error = has_value ? pt_cache_delta(v, vend) : 0;
    }
}


/* One field value: directive [ "=" ( token / quoted-string ) ], comma
 * separated. A directive given twice keeps its last value, except that
 * the flags only ever turn on. */
static void
pt_cache_control_value(const pt_str_t *value, pt_cache_control_t *cc)
{
    int          has_value;
    const char  *p, *end, *n, *nend, *v, *vend;

    p = value->data;
    end = p + value->len;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        n = p;
        while (p < end && pt_http_is_tchar((unsigned char) *p)) {
            p++;
        }
        nend = p;

        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        has_value = 0;
        v = vend = p;

        if (p < end && *p == '=') {
            p++;
            while (p < end && (*p == ' ' || *p == '\t')) {
                p++;
            }

            has_value = 1;
            v = p;

            if (p < end && *p == '"') {
                for (p++; p < end && *p != '"'; p++) {
                    if (*p == '\\' && p + 1 < end) {
                        p++;
                    }
                }
                if (p < end) {
                    p++;
                }
            } else {
                while (p < end && *p != ',' && *p != ' ' && *p != '\t') {
                    p++;
                }
            }
            vend = p;
        }

        if (nend > n) {
            pt_cache_directive(cc, n, (size_t) (nend - n), v, vend,
                               has_value);
        }

        /* Skip whatever is left of a malformed element. */
        while (p < end && *p != ',') {
            p++;
        }
    }
}


void
pt_cache_control(pt_array_t *headers, pt_cache_control_t *cc)
{
    size_t             i;
    pt_http_header_t  *h;

    memset(cc, 0, sizeof(*cc));
    cc->max_age = -1;
    cc->s_maxage = -1;
    cc->stale_while_revalidate = -1;
    cc->stale_if_error = -1;

    h = headers->elts;

    for (i = 0; i < headers->nelts; i++) {
        if (pt_str_caseeq(&h[i].name, "cache-control")) {
            pt_cache_control_value(&h[i].value, cc);
        }
    }
}


int64_t
pt_cache_http_date(const pt_str_t *v)
{
    char         buf[64];
    struct tm    tm;
    const char  *end;
    static const char  *forms[] = {
        "%a, %d %b %Y %H:%M:%S GMT",    /* IMF-fixdate               */
        "%A, %d-%b-%y %H:%M:%S GMT",    /* obsolete RFC 850 form     */
        "%a %b %e %H:%M:%S %Y",         /* obsolete asctime() form   */
        NULL
    };
    const char  **f;

    if (v->len == 0 || v->len >= sizeof(buf)) {
        return -1;
    }

    memcpy(buf, v->data, v->len);
    buf[v->len] = '\0';

    for (f = forms; *f; f++) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(buf, *f, &tm);

        if (end && *end == '\0') {
            return (int64_t) timegm(&tm);
        }
    }

    return -1;
}


static pt_str_t *
pt_cache_field(pt_array_t *headers, const char *name)
{
    pt_http_header_t  *h;

    h = pt_http_header_find(headers, name, strlen(name));

    return h ? &h->value : NULL;
}


int
pt_cache_freshness(pt_http_request_t *r, pt_cache_conf_t *conf,
    unsigned status, pt_array_t *headers, int64_t now, pt_cache_meta_t *m)
{
    size_t              i;
    int64_t             lifetime, date, expires, age, swr, sie;
    pt_str_t           *v;
    pt_http_header_t   *h;
    pt_cache_control_t  cc;

    if (status < 100 || status > 739
        || !(conf->statuses[(status - 100) / 64]
             & ((uint64_t) 1 << ((status - 100) % 64))))
    {
        return 0;
    }

    pt_cache_control(headers, &cc);

    if (cc.no_store || cc.private_) {
        return 0;
    }

    /* A response that sets a cookie is somebody's own (nginx's rule). */
    if (pt_cache_field(headers, "set-cookie")) {
        return 0;
    }

    /* RFC 9111 4.1: a Vary with "*" in any of its fields never matches. */
    h = headers->elts;

    for (i = 0; i < headers->nelts; i++) {
        if (pt_str_caseeq(&h[i].name, "vary")
            && pt_http_list_has(&h[i].value, "*", 1))
        {
            return 0;
        }
    }

    /* RFC 9111 3.5: an authenticated request's response is shared only
     * when the upstream says it may be. */
    if (r && pt_http_header_find(&r->headers_in.headers, "Authorization", 13)
        && !cc.public_ && cc.s_maxage < 0 && !cc.must_revalidate)
    {
        return 0;
    }

    v = pt_cache_field(headers, "age");
    age = v ? pt_cache_delta(v->data, v->data + v->len) : 0;

    if (cc.s_maxage >= 0) {
        lifetime = cc.s_maxage * 1000;

    } else if (cc.max_age >= 0) {
        lifetime = cc.max_age * 1000;

    } else if ((v = pt_cache_field(headers, "expires")) != NULL) {
        expires = pt_cache_http_date(v);
        v = pt_cache_field(headers, "date");
        date = v ? pt_cache_http_date(v) : -1;

        if (expires < 0) {
            lifetime = 0;
        } else if (date >= 0) {
            lifetime = (expires - date) * 1000;
            /* RFC 9111 4.2.3: the older of Age and what Date says. */
            age = pt_max(age, (now / 1000 - date));
        } else {
            lifetime = expires * 1000 - now;
            age = 0;    /* measured from now: no age to take off */
        }

    } else {
        lifetime = (int64_t) conf->ttl;
    }

    lifetime -= age * 1000;

    if (lifetime < 0 || cc.no_cache) {
        lifetime = 0;
    }

    memset(m, 0, sizeof(*m));
    m->status = (uint16_t) status;
    m->stored = now;
    m->age = (uint32_t) age;
    m->fresh_until = now + lifetime;

    if (cc.no_cache || cc.must_revalidate) {
        m->flags |= PT_CACHE_F_NO_STALE;
    }

    swr = pt_max((int64_t) conf->swr, cc.stale_while_revalidate * 1000);
    sie = pt_max((int64_t) conf->sie, cc.stale_if_error * 1000);

    if (m->flags & PT_CACHE_F_NO_STALE) {
        swr = sie = 0;
    }

    m->swr_until = m->fresh_until + swr;
    m->sie_until = m->fresh_until + sie;

    /* Never fresh, never servable stale, nothing to revalidate with:
     * keeping it would only cost a fetch of it every time. */
    if (lifetime == 0 && swr == 0 && sie == 0
        && pt_cache_field(headers, "etag") == NULL
        && pt_cache_field(headers, "last-modified") == NULL)
    {
        return 0;
    }

    return 1;
}


/* Weak comparison (RFC 9110 8.8.3.2): the opaque tags alone. */
static int
pt_cache_etag_match(const char *p, const char *end, const pt_str_t *etag)
{
    const char  *t, *tend, *q;

    t = etag->data;
    tend = t + etag->len;

    if (tend - t >= 2 && t[0] == 'W' && t[1] == '/') {
        t += 2;
    }

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        if (p == end) {
            break;
        }

        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            p += 2;
        }

        q = p;
        if (p < end && *p == '"') {
            for (p++; p < end && *p != '"'; p++) { /* void */ }
            if (p < end) {
                p++;
            }
        } else {
            while (p < end && *p != ',') {
                p++;
            }
        }

        if ((size_t) (p - q) == (size_t) (tend - t)
            && memcmp(q, t, (size_t) (p - q)) == 0)
        {
            return 1;
        }

        while (p < end && *p != ',') {
            p++;
        }
    }

    return 0;
}


int
pt_cache_not_modified(pt_http_request_t *r, pt_array_t *headers)
{
    size_t             i;
    int64_t            since, modified;
    pt_str_t          *v, *etag;
    pt_http_header_t  *h;

    h = r->headers_in.headers.elts;
    etag = pt_cache_field(headers, "etag");

    /* If-None-Match, when present, decides alone (RFC 9110 13.2.2). */
    v = pt_cache_field(&r->headers_in.headers, "if-none-match");

    if (v) {
        for (i = 0; i < r->headers_in.headers.nelts; i++) {
            if (!pt_str_caseeq(&h[i].name, "if-none-match")) {
                continue;
            }

            if (h[i].value.len == 1 && h[i].value.data[0] == '*') {
                return 1;
            }

            if (etag && pt_cache_etag_match(h[i].value.data,
                                            h[i].value.data + h[i].value.len,
                                            etag))
            {
                return 1;
            }
        }

        return 0;
    }

    v = pt_cache_field(&r->headers_in.headers, "if-modified-since");
    if (v == NULL) {
        return 0;
    }

    since = pt_cache_http_date(v);
    v = pt_cache_field(headers, "last-modified");
    modified = v ? pt_cache_http_date(v) : -1;

    return since >= 0 && modified >= 0 && modified <= since;
}


int
pt_cache_field_skipped(const pt_str_t *name)
{
    static const char  *skip[] = {
        "connection", "keep-alive", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "content-length", "date",
        "x-request-id", "age", "x-cache", "set-cookie", NULL
    };
    const char        **s;

    if (name->len == 0) {
        return 1;
    }

    for (s = skip; *s; s++) {
        if (pt_strcaseeq(name, *s, strlen(*s))) {
            return 1;
        }
    }

    return 0;
}


size_t
pt_cache_head_size(pt_array_t *headers)
{
    size_t             i, n;
    pt_http_header_t  *h;

    h = headers->elts;

    for (i = 0, n = 0; i < headers->nelts; i++) {
        if (!pt_cache_field_skipped(&h[i].name)) {
            n += h[i].name.len + 1 + h[i].value.len + 1;
        }
    }

    return n;
}


char *
pt_cache_head_write(pt_array_t *headers, char *p)
{
    size_t             i;
    pt_http_header_t  *h;

    h = headers->elts;

    for (i = 0; i < headers->nelts; i++) {
        if (pt_cache_field_skipped(&h[i].name)) {
            continue;
        }

        p = pt_cpymem(p, h[i].name.data, h[i].name.len);
        *p++ = '\0';
        p = pt_cpymem(p, h[i].value.data, h[i].value.len);
        *p++ = '\0';
    }

    return p;
}


/* The fields point into head (the zone), which the caller's reference
 * keeps. A vary record's head is names alone, each NUL-terminated: they
 * come back as pt_str_t items when out holds pt_str_t. */
int
pt_cache_head_read(pt_pool_t *pool, const char *head, size_t len,
    pt_array_t *out)
{
    const char        *p, *end, *z;
    pt_str_t          *s;
    pt_http_header_t  *h;

    (void) pool;

    p = head;
    end = head + len;

    while (p < end) {
        z = memchr(p, '\0', (size_t) (end - p));
        if (z == NULL) {
            return PT_ERROR;
        }

        if (out->size == sizeof(pt_str_t)) {
            s = pt_array_push(out);
            if (s == NULL) {
                return PT_ERROR;
            }
            s->data = (char *) p;
            s->len = (size_t) (z - p);
            p = z + 1;
            continue;
        }

        h = pt_array_push(out);
        if (h == NULL) {
            return PT_ERROR;
        }

        h->name.data = (char *) p;
        h->name.len = (size_t) (z - p);
        p = z + 1;

        z = memchr(p, '\0', (size_t) (end - p));
        if (z == NULL) {
            return PT_ERROR;
        }

        h->value.data = (char *) p;
        h->value.len = (size_t) (z - p);
        p = z + 1;
    }

    return PT_OK;
}
