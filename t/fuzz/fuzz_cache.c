/*
 * fuzz_cache.c: the cache module's parsers of untrusted fields
 * (modules/cache/pt_cache_rfc.c): Cache-Control, HTTP dates, freshness,
 * conditional requests and the stored form of a response's fields.
 *
 * The input is text, one field a line ("Name: value", CR LF or LF; a line
 * without a colon is a name with an empty value). An optional first line
 * that starts with a digit is "STATUS [TTL [SWR [SIE]]]" (the last three
 * in seconds, for the route's config; status 200 and a 30 s ttl without
 * it). The fields up to the first empty line are a response's, those
 * after it a request's. Every name and value lives in a malloc block of
 * its own size, so that a read past one is a sanitizer report. Checked
 * promises:
 *
 *   - Cache-Control: the fields of a list read as one give the flags of
 *     each read alone, or'ed, and the numbers of the last that has them;
 *     numbers are -1 (none) or 0..2^31;
 *   - an HTTP-date: -1 for 64 bytes or more; a time from 1970 on comes
 *     back the same when written in each of the three forms (RFC 850 only
 *     up to 2068, its two-digit years) and parsed again;
 *   - freshness, with a config caching a few statuses and one caching all
 *     of them: the first takes a response only when the second does, with
 *     the same meta, and never one of a status it does not list; a
 *     storable response has no Set-Cookie, no no-store, no private, times
 *     that follow its max-age, s-maxage or the ttl, stale windows per the
 *     config and the directives (none with no-cache or must-revalidate),
 *     and something to revalidate with when it is never fresh nor
 *     servable stale; with a request that has no Authorization the answer
 *     is the same, with one it is only narrower, and only when the
 *     response allows sharing;
 *   - the stored head is as long as its size says and reads back as the
 *     fields not skipped, in order, byte for byte (fields never hold a NUL
 *     on the wire: with one, only its memory safety is checked); the input
 *     read as a head parses when its NULs make whole pairs;
 *   - not modified: "*" and the response's own entity-tag satisfy
 *     If-None-Match, no entity-tag satisfies nothing else, and without
 *     If-None-Match the answer is If-Modified-Since against Last-Modified.
 */

#include <time.h>

#include "fuzz.h"
#include "pt_cache.h"
#include "pt_string.h"


#define PT_FUZZ_NOW         1700000000000LL     /* ms */
#define PT_FUZZ_MAX_FIELDS  64
#define PT_FUZZ_DELTA_MAX   2147483648LL


static void   *pt_fuzz_blocks[4 * PT_FUZZ_MAX_FIELDS];
static size_t  pt_fuzz_nblocks;


/* A copy of p[0..len) in a block of exactly len bytes. */
static char *
pt_fuzz_copy(const char *p, size_t len)
{
    char  *b;

    b = malloc(len ? len : 1);
    if (b == NULL) {
        abort();
    }

    memcpy(b, p, len);
    pt_fuzz_blocks[pt_fuzz_nblocks++] = b;

    return b;
}


static void
pt_fuzz_field(pt_array_t *a, const char *p, const char *end)
{
    const char        *colon, *v, *vend;
    pt_http_header_t  *h;

    if (a->nelts >= PT_FUZZ_MAX_FIELDS) {
        return;
    }

    colon = memchr(p, ':', (size_t) (end - p));
    if (colon == NULL) {
        colon = end;
        v = vend = end;
    } else {
        v = colon + 1;
        vend = end;
    }

    while (v < vend && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) {
        vend--;
    }

    h = pt_array_push(a);
    if (h == NULL) {
        abort();
    }

    h->name.len = (size_t) (colon - p);
    h->name.data = pt_fuzz_copy(p, h->name.len);
    h->value.len = (size_t) (vend - v);
    h->value.data = pt_fuzz_copy(v, h->value.len);
}


/* Up to 9 digits of p (the rest of the number is skipped). */
static int64_t
pt_fuzz_number(const char **pp, const char *end)
{
    int          i;
    int64_t      n;
    const char  *p;

    p = *pp;

    while (p < end && *p == ' ') {
        p++;
    }

    for (n = 0, i = 0; p < end && *p >= '0' && *p <= '9'; p++, i++) {
        if (i < 9) {
            n = n * 10 + (*p - '0');
        }
    }

    *pp = p;

    return n;
}


static void
pt_fuzz_status_line(const char *p, const char *end, unsigned *status,
    pt_cache_conf_t *conf)
{
    *status = (unsigned) pt_fuzz_number(&p, end);

    if (p < end) {
        conf->ttl = (pt_msec_t) pt_fuzz_number(&p, end) * 1000;
    }
    if (p < end) {
        conf->swr = (pt_msec_t) pt_fuzz_number(&p, end) * 1000;
    }
    if (p < end) {
        conf->sie = (pt_msec_t) pt_fuzz_number(&p, end) * 1000;
    }
}


static void
pt_fuzz_status_set(pt_cache_conf_t *conf, unsigned status)
{
    status -= 100;
    conf->statuses[status / 64] |= (uint64_t) 1 << (status % 64);
}


static int
pt_fuzz_status_has(const pt_cache_conf_t *conf, unsigned status)
{
    if (status < 100 || status > 739) {
        return 0;
    }

    status -= 100;

    return (conf->statuses[status / 64] >> (status % 64)) & 1;
}


static void
pt_fuzz_cc_range(const pt_cache_control_t *cc)
{
    pt_fuzz_check(cc->max_age >= -1 && cc->max_age <= PT_FUZZ_DELTA_MAX);
    pt_fuzz_check(cc->s_maxage >= -1 && cc->s_maxage <= PT_FUZZ_DELTA_MAX);
    pt_fuzz_check(cc->stale_while_revalidate >= -1
                  && cc->stale_while_revalidate <= PT_FUZZ_DELTA_MAX);
    pt_fuzz_check(cc->stale_if_error >= -1
                  && cc->stale_if_error <= PT_FUZZ_DELTA_MAX);
}


/* The list as one against each Cache-Control field alone. */
static void
pt_fuzz_cache_control(pt_pool_t *pool, pt_array_t *fields,
    pt_cache_control_t *all)
{
    size_t              i;
    pt_array_t          one;
    pt_http_header_t   *h, *o;
    pt_cache_control_t  cc, acc;

    pt_cache_control(fields, all);
    pt_fuzz_cc_range(all);

    memset(&acc, 0, sizeof(acc));
    acc.max_age = acc.s_maxage = -1;
    acc.stale_while_revalidate = acc.stale_if_error = -1;

    if (pt_array_init(&one, pool, 1, sizeof(pt_http_header_t)) != PT_OK) {
        abort();
    }

    h = fields->elts;

    for (i = 0; i < fields->nelts; i++) {
        if (!pt_str_caseeq(&h[i].name, "cache-control")) {
            continue;
        }

        one.nelts = 0;
        o = pt_array_push(&one);
        if (o == NULL) {
            abort();
        }
        *o = h[i];

        pt_cache_control(&one, &cc);
        pt_fuzz_cc_range(&cc);

        acc.no_store |= cc.no_store;
        acc.no_cache |= cc.no_cache;
        acc.private_ |= cc.private_;
        acc.public_ |= cc.public_;
        acc.must_revalidate |= cc.must_revalidate;
        acc.no_transform |= cc.no_transform;
        acc.only_if_cached |= cc.only_if_cached;

        if (cc.max_age >= 0) {
            acc.max_age = cc.max_age;
        }
        if (cc.s_maxage >= 0) {
            acc.s_maxage = cc.s_maxage;
        }
        if (cc.stale_while_revalidate >= 0) {
            acc.stale_while_revalidate = cc.stale_while_revalidate;
        }
        if (cc.stale_if_error >= 0) {
            acc.stale_if_error = cc.stale_if_error;
        }
    }

    pt_fuzz_check(all->no_store == acc.no_store);
    pt_fuzz_check(all->no_cache == acc.no_cache);
    pt_fuzz_check(all->private_ == acc.private_);
    pt_fuzz_check(all->public_ == acc.public_);
    pt_fuzz_check(all->must_revalidate == acc.must_revalidate);
    pt_fuzz_check(all->no_transform == acc.no_transform);
    pt_fuzz_check(all->only_if_cached == acc.only_if_cached);
    pt_fuzz_check(all->max_age == acc.max_age);
    pt_fuzz_check(all->s_maxage == acc.s_maxage);
    pt_fuzz_check(all->stale_while_revalidate
                  == acc.stale_while_revalidate);
    pt_fuzz_check(all->stale_if_error == acc.stale_if_error);
}


/* t written with strftime format fmt parses back to t. */
static void
pt_fuzz_date_form(int64_t t, const struct tm *tm, const char *fmt)
{
    char      buf[80];
    size_t    n;
    pt_str_t  s;

    n = strftime(buf, sizeof(buf), fmt, tm);
    pt_fuzz_check(n > 0);

    s.data = malloc(n);
    if (s.data == NULL) {
        abort();
    }
    memcpy(s.data, buf, n);
    s.len = n;

    if (pt_cache_http_date(&s) != t) {
        fprintf(stderr, "fuzz_cache: \"%s\" is not %lld\n", buf,
                (long long) t);
        abort();
    }

    free(s.data);
}


static void
pt_fuzz_date(const pt_str_t *v)
{
    int64_t    t;
    time_t     tt;
    struct tm  tm;

    t = pt_cache_http_date(v);

    if (v->len == 0 || v->len >= 64) {
        pt_fuzz_check(t == -1);
        return;
    }

    if (t < 0) {
        return;
    }

    tt = (time_t) t;
    if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 > 9999) {
        return;
    }

    pt_fuzz_date_form(t, &tm, "%a, %d %b %Y %H:%M:%S GMT");
    pt_fuzz_date_form(t, &tm, "%a %b %e %H:%M:%S %Y");

    if (tm.tm_year + 1900 <= 2068) {
        pt_fuzz_date_form(t, &tm, "%A, %d-%b-%y %H:%M:%S GMT");
    }
}


static void
pt_fuzz_freshness(pt_array_t *fields, pt_http_request_t *r,
    pt_cache_conf_t *some, pt_cache_conf_t *all, unsigned status,
    const pt_cache_control_t *cc)
{
    int              rc, rc_all, rc_r;
    int64_t          life, swr, sie;
    pt_cache_meta_t  m, m_all, m_r;

    memset(&m, 0, sizeof(m));
    memset(&m_all, 0, sizeof(m_all));
    memset(&m_r, 0, sizeof(m_r));

    rc = pt_cache_freshness(NULL, some, status, fields, PT_FUZZ_NOW, &m);
    rc_all = pt_cache_freshness(NULL, all, status, fields, PT_FUZZ_NOW,
                                &m_all);

    pt_fuzz_check(rc == 0 || rc == 1);
    pt_fuzz_check(rc_all == 0 || rc_all == 1);
    pt_fuzz_check(!pt_fuzz_status_has(some, status) ? rc == 0
                                                    : rc == rc_all);
    pt_fuzz_check(pt_fuzz_status_has(all, status) || rc_all == 0);

    if (rc) {
        pt_fuzz_check(memcmp(&m, &m_all, sizeof(m)) == 0);
    }

    /* With a request: the same without Authorization, else narrower. */
    rc_r = pt_cache_freshness(r, all, status, fields, PT_FUZZ_NOW, &m_r);

    if (pt_http_header_find(&r->headers_in.headers, "Authorization", 13)
        == NULL)
    {
        pt_fuzz_check(rc_r == rc_all);
    } else {
        pt_fuzz_check(rc_r == 0 || rc_all == 1);
        pt_fuzz_check(rc_r == 0 || cc->public_ || cc->s_maxage >= 0
                      || cc->must_revalidate);
    }

    if (rc_r) {
        pt_fuzz_check(memcmp(&m_r, &m_all, sizeof(m)) == 0);
    }

    if (!rc_all) {
        return;
    }

    m = m_all;

    pt_fuzz_check(status >= 100 && status <= 739);
    pt_fuzz_check(!cc->no_store && !cc->private_);
    pt_fuzz_check(pt_http_header_find(fields, "set-cookie", 10) == NULL);

    /* A Vary naming "*" in any of its fields is never stored. */
    {
        size_t             i;
        pt_http_header_t  *h = fields->elts;

        for (i = 0; i < fields->nelts; i++) {
            pt_fuzz_check(!pt_str_caseeq(&h[i].name, "vary")
                          || !pt_http_list_has(&h[i].value, "*", 1));
        }
    }

    pt_fuzz_check(m.status == status && m.stored == PT_FUZZ_NOW);
    pt_fuzz_check(m.age <= PT_FUZZ_DELTA_MAX);
    pt_fuzz_check(m.fresh_until >= PT_FUZZ_NOW);
    pt_fuzz_check(m.swr_until >= m.fresh_until);
    pt_fuzz_check(m.sie_until >= m.fresh_until);

    life = m.fresh_until - PT_FUZZ_NOW;
    swr = m.swr_until - m.fresh_until;
    sie = m.sie_until - m.fresh_until;

    pt_fuzz_check(((m.flags & PT_CACHE_F_NO_STALE) != 0)
                  == (cc->no_cache || cc->must_revalidate));

    if (cc->no_cache) {
        pt_fuzz_check(life == 0);

    } else if (cc->s_maxage >= 0) {
        pt_fuzz_check(life == pt_max(0, (cc->s_maxage - (int64_t) m.age)
                                        * 1000));

    } else if (cc->max_age >= 0) {
        pt_fuzz_check(life == pt_max(0, (cc->max_age - (int64_t) m.age)
                                        * 1000));

    } else if (pt_http_header_find(fields, "expires", 7) != NULL) {
        /* Measured from Date (its age counted, RFC 9111 4.2.3), or from
         * now without one (no age to take off). */
        pt_fuzz_check(life >= 0);
        if (pt_http_header_find(fields, "date", 4) == NULL) {
            pt_fuzz_check(m.age == 0);
        }

    } else {
        pt_fuzz_check(life == pt_max(0, (int64_t) all->ttl
                                        - (int64_t) m.age * 1000));
    }

    if (m.flags & PT_CACHE_F_NO_STALE) {
        pt_fuzz_check(swr == 0 && sie == 0);

    } else {
        pt_fuzz_check(swr == pt_max((int64_t) all->swr,
                                    cc->stale_while_revalidate * 1000));
        pt_fuzz_check(sie == pt_max((int64_t) all->sie,
                                    cc->stale_if_error * 1000));
    }

    if (life == 0 && swr == 0 && sie == 0) {
        pt_fuzz_check(pt_http_header_find(fields, "etag", 4) != NULL
                      || pt_http_header_find(fields, "last-modified", 13)
                         != NULL);
    }
}


static int
pt_fuzz_has_nul(const pt_str_t *s)
{
    return memchr(s->data, '\0', s->len) != NULL;
}


static void
pt_fuzz_head(pt_pool_t *pool, pt_array_t *fields)
{
    int                clean;
    char              *buf, *end;
    size_t             i, j, size;
    pt_str_t          *names;
    pt_array_t         back, vary;
    pt_http_header_t  *h, *b;

    size = pt_cache_head_size(fields);

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        abort();
    }

    end = pt_cache_head_write(fields, buf);
    pt_fuzz_check(end == buf + size);

    if (pt_array_init(&back, pool, 4, sizeof(pt_http_header_t)) != PT_OK
        || pt_array_init(&vary, pool, 4, sizeof(pt_str_t)) != PT_OK)
    {
        abort();
    }

    h = fields->elts;
    clean = 1;

    for (i = 0; i < fields->nelts; i++) {
        if (pt_fuzz_has_nul(&h[i].name) || pt_fuzz_has_nul(&h[i].value)) {
            clean = 0;
        }
    }

    if (pt_cache_head_read(pool, buf, size, &back) != PT_OK) {
        pt_fuzz_check(!clean);
        free(buf);
        return;
    }

    if (clean) {
        b = back.elts;

        for (i = 0, j = 0; i < fields->nelts; i++) {
            if (pt_cache_field_skipped(&h[i].name)) {
                continue;
            }

            pt_fuzz_check(j < back.nelts);
            pt_fuzz_check(b[j].name.len == h[i].name.len
                          && memcmp(b[j].name.data, h[i].name.data,
                                    h[i].name.len) == 0);
            pt_fuzz_check(b[j].value.len == h[i].value.len
                          && memcmp(b[j].value.data, h[i].value.data,
                                    h[i].value.len) == 0);
            j++;
        }

        pt_fuzz_check(j == back.nelts);

        /* A vary record: the same blob read as names alone. */
        pt_fuzz_check(pt_cache_head_read(pool, buf, size, &vary) == PT_OK);
        pt_fuzz_check(vary.nelts == 2 * back.nelts);

        names = vary.elts;
        for (i = 0; i < back.nelts; i++) {
            pt_fuzz_check(names[2 * i].data == b[i].name.data
                          && names[2 * i].len == b[i].name.len);
        }
    }

    b = back.elts;
    for (i = 0; i < back.nelts; i++) {
        pt_fuzz_check(!pt_cache_field_skipped(&b[i].name)
                      || !clean);
    }

    free(buf);
}


/* The raw input as a stored head: whole pairs parse, anything else not. */
static void
pt_fuzz_raw_head(pt_pool_t *pool, const uint8_t *data, size_t size)
{
    int           rc;
    char         *buf;
    size_t        i, nuls;
    pt_array_t    fields, names;

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        abort();
    }
    memcpy(buf, data, size);

    for (i = 0, nuls = 0; i < size; i++) {
        nuls += (buf[i] == '\0');
    }

    if (pt_array_init(&fields, pool, 4, sizeof(pt_http_header_t)) != PT_OK
        || pt_array_init(&names, pool, 4, sizeof(pt_str_t)) != PT_OK)
    {
        abort();
    }

    rc = pt_cache_head_read(pool, buf, size, &fields);
    pt_fuzz_check((rc == PT_OK)
                  == (size == 0 || (buf[size - 1] == '\0' && nuls % 2 == 0)));

    if (rc == PT_OK) {
        pt_fuzz_check(fields.nelts == nuls / 2);
    }

    rc = pt_cache_head_read(pool, buf, size, &names);
    pt_fuzz_check((rc == PT_OK) == (size == 0 || buf[size - 1] == '\0'));

    if (rc == PT_OK) {
        pt_fuzz_check(names.nelts == nuls);
    }

    free(buf);
}


/* An entity-tag as RFC 9110 8.8.3 writes it: [W/] DQUOTE etagc* DQUOTE. */
static int
pt_fuzz_etag_ok(const pt_str_t *e, pt_str_t *opaque)
{
    size_t  i;

    *opaque = *e;

    if (opaque->len >= 2 && opaque->data[0] == 'W' && opaque->data[1] == '/') {
        opaque->data += 2;
        opaque->len -= 2;
    }

    if (opaque->len < 2 || opaque->data[0] != '"'
        || opaque->data[opaque->len - 1] != '"')
    {
        return 0;
    }

    for (i = 1; i < opaque->len - 1; i++) {
        if (opaque->data[i] == '"') {
            return 0;
        }
    }

    return 1;
}


static void
pt_fuzz_not_modified(pt_http_request_t *r, pt_array_t *fields)
{
    int                rc, expect;
    size_t             i;
    int64_t            since, modified;
    pt_str_t           opaque, v;
    pt_http_header_t  *h, *etag, *ims, *lm;

    rc = pt_cache_not_modified(r, fields);
    pt_fuzz_check(rc == 0 || rc == 1);

    etag = pt_http_header_find(fields, "etag", 4);

    if (pt_http_header_find(&r->headers_in.headers, "if-none-match", 13)) {
        h = r->headers_in.headers.elts;
        expect = 0;

        for (i = 0; i < r->headers_in.headers.nelts; i++) {
            if (!pt_str_caseeq(&h[i].name, "if-none-match")) {
                continue;
            }

            if (h[i].value.len == 1 && h[i].value.data[0] == '*') {
                expect = 1;
            }

            v = h[i].value;
            if (v.len >= 2 && v.data[0] == 'W' && v.data[1] == '/') {
                v.data += 2;
                v.len -= 2;
            }

            if (etag && pt_fuzz_etag_ok(&etag->value, &opaque)
                && v.len == opaque.len
                && memcmp(v.data, opaque.data, v.len) == 0)
            {
                expect = 1;
            }
        }

        if (expect) {
            pt_fuzz_check(rc == 1);
        }

        if (etag == NULL && !expect) {
            pt_fuzz_check(rc == 0);
        }

        return;
    }

    ims = pt_http_header_find(&r->headers_in.headers, "if-modified-since",
                              17);
    if (ims == NULL) {
        pt_fuzz_check(rc == 0);
        return;
    }

    lm = pt_http_header_find(fields, "last-modified", 13);

    since = pt_cache_http_date(&ims->value);
    modified = lm ? pt_cache_http_date(&lm->value) : -1;

    pt_fuzz_check(rc == (since >= 0 && modified >= 0 && modified <= since));
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t               i;
    unsigned             status;
    pt_pool_t           *pool;
    pt_array_t           fields, *a;
    const char          *p, *end, *eol, *lend;
    pt_http_header_t    *h;
    pt_cache_conf_t      some, all;
    pt_http_request_t    r;
    pt_cache_control_t   cc, rcc;
    static const unsigned  statuses[] = { 100, 200, 203, 204, 301, 404,
                                          739 };

    pool = pt_pool_create(4096);
    if (pool == NULL
        || pt_array_init(&fields, pool, 8, sizeof(pt_http_header_t))
           != PT_OK)
    {
        abort();
    }

    memset(&r, 0, sizeof(r));
    r.pool = pool;

    if (pt_array_init(&r.headers_in.headers, pool, 8,
                      sizeof(pt_http_header_t)) != PT_OK)
    {
        abort();
    }

    memset(&some, 0, sizeof(some));
    some.ttl = 30000;
    some.max_object = 1024 * 1024;
    status = 200;

    p = (const char *) data;
    end = p + size;
    a = &fields;

    pt_fuzz_nblocks = 0;

    for (i = 0; p < end; i++, p = eol < end ? eol + 1 : end) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }

        lend = eol;
        if (lend > p && lend[-1] == '\r') {
            lend--;
        }

        if (i == 0 && lend > p && *p >= '0' && *p <= '9') {
            pt_fuzz_status_line(p, lend, &status, &some);
            continue;
        }

        if (lend == p) {
            a = &r.headers_in.headers;
            continue;
        }

        pt_fuzz_field(a, p, lend);
    }

    for (i = 0; i < pt_nelems(statuses); i++) {
        pt_fuzz_status_set(&some, statuses[i]);
    }

    all = some;
    memset(all.statuses, 0xff, sizeof(all.statuses));

    pt_fuzz_cache_control(pool, &fields, &cc);
    pt_fuzz_cache_control(pool, &r.headers_in.headers, &rcc);

    h = fields.elts;
    for (i = 0; i < fields.nelts; i++) {
        pt_fuzz_date(&h[i].value);
        (void) pt_cache_field_skipped(&h[i].name);
    }

    h = r.headers_in.headers.elts;
    for (i = 0; i < r.headers_in.headers.nelts; i++) {
        pt_fuzz_date(&h[i].value);
    }

    pt_fuzz_freshness(&fields, &r, &some, &all, status, &cc);
    pt_fuzz_head(pool, &fields);
    pt_fuzz_raw_head(pool, data, size);
    pt_fuzz_not_modified(&r, &fields);

    for (i = 0; i < pt_fuzz_nblocks; i++) {
        free(pt_fuzz_blocks[i]);
    }

    pt_pool_destroy(pool);

    return 0;
}
