/*
 * pt_auth_jwks.c: a JWT issuer's keys from an https JWKS URL, as identity
 * providers publish them (Keycloak, Auth0, Okta, Entra).
 *
 *   jwt_issuers:
 *     - name: corp
 *       keys: https://idp.example.com/realms/x/protocol/openid-connect/certs
 *       keys_ca: conf/idp-ca.pem   # default: the system's trust store
 *       keys_refresh: 5m           # fetched this often
 *       keys_retry: 10s            # at most one extra fetch this often
 *
 * The document is fetched once for the whole gateway, by the helper
 * process, through an internal upstream ("jwks:corp", TLS verified) with
 * an upstream call: at the helper's start, every keys_refresh, keys_retry
 * after a failure, and when a worker met a token whose kid the keys lack
 * and the last fetch is older than keys_retry. A 200 whose body holds at
 * least one usable key goes into the "auth_jwks" zone with a new version;
 * anything else is logged and the last good document stays.
 *
 * Each worker holds its own key set built from the zone's document, and
 * rebuilds it when the version it has is not the zone's: one atomic load
 * per token that is not in the cache. Verification is synchronous, so no
 * request holds a key set across events and the old one is freed at once.
 *
 * The zone keeps one slot per issuer, named by the SHA-256 of the issuer's
 * name and URL. A reload with as many URL issuers keeps the zone (its size
 * is the same), so the new generation starts with the last good keys even
 * when the provider is down. The zone has room for twice as many slots
 * as issuers, so a reload that renames or re-points an issuer takes a
 * free slot and the running generation keeps its own until it retires (it
 * takes over an unused one only when none is free); a process whose slot
 * was taken over sees another name on it and keeps the keys it has.
 */

#include <ctype.h>

#include <openssl/evp.h>

#include "pt_auth.h"
#include "pt_upstream.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_AUTH_JWKS_MAX        (256 * 1024)  /* a document, bytes      */
#define PT_AUTH_JWKS_HEAD       (16 * 1024)   /* room for the answer's
                                                 head besides            */
#define PT_AUTH_JWKS_TIMEOUT    15000         /* a whole fetch           */
#define PT_AUTH_JWKS_POLL       200           /* how often the helper
                                                 looks for a worker's
                                                 request                 */
#define PT_AUTH_JWKS_REFRESH    (5 * 60 * 1000)
#define PT_AUTH_JWKS_RETRY      10000
#define PT_AUTH_JWKS_LAYOUT     0x6a776b01    /* the zone's root, v1     */


/* One issuer's document, in the zone. */
typedef struct pt_auth_jwks_slot_s  pt_auth_jwks_slot_t;

struct pt_auth_jwks_slot_s {
    pt_auth_jwks_slot_t  *next;
    u_char                key[32];    /* whose: pt_auth_jwks_t.key       */
    volatile uint64_t     version;    /* bumped with each new document   */
    volatile uint64_t     fetched;    /* epoch ms of the last good fetch */
    volatile uint64_t     wanted;     /* epoch ms a worker last asked
                                         for a fetch                     */
    size_t                len;        /* 0: no document                  */
    char                  doc[PT_AUTH_JWKS_MAX];
};

typedef struct {
    uint32_t              layout;
    pt_auth_jwks_slot_t  *slots;
} pt_auth_jwks_root_t;

/* Key, version, len and doc change only under the zone lock; version,
 * fetched and wanted are also read without it (atomics). */

struct pt_auth_jwks_s {
    pt_str_t              url;        /* as written                      */
    pt_str_t              target;     /* path and query: "/certs"        */
    pt_http_header_t      fields[3];  /* Host, Accept, User-Agent        */
    pt_msec_t             refresh;
    pt_msec_t             retry;
    u_char                key[32];    /* SHA-256 of name, NUL, URL       */
    pt_upstream_t        *us;
    pt_shm_zone_t        *zone;
    pt_auth_jwks_slot_t  *slot;       /* set in the master, before fork  */
    uint64_t              version;    /* a worker's: of its is->keys     */
};

/* The helper's state for one issuer. */
typedef struct {
    pt_auth_issuer_t     *is;
    pt_event_t            timer;
    pt_pool_t            *pool;       /* the fetch under way, or NULL    */
    pt_msec_t             next;       /* pt_current_msec of the next
                                         scheduled fetch                 */
    uint64_t              started;    /* epoch ms the last fetch began   */
} pt_auth_jwks_fetch_t;


static pt_auth_jwks_fetch_t  *pt_auth_jwks_fetches;
static size_t                 pt_auth_jwks_nfetches;


int
pt_auth_jwks_is_url(const pt_str_t *s)
{
    size_t  i;

    /* RFC 3986 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
    for (i = 0; i < s->len; i++) {
        if (!(isalpha((u_char) s->data[i])
              || (i && (isdigit((u_char) s->data[i])
                        || strchr("+-.", s->data[i])))))
        {
            break;
        }
    }

    return i > 0 && s->len - i >= 3 && memcmp(s->data + i, "://", 3) == 0;
}


/* RFC 3986 pchar, '/' and '?': what a path and query may hold. */
static int
pt_auth_jwks_url_char(const char *p, const char *end)
{
    u_char  c;

    c = (u_char) *p;

    if (isalnum(c) || strchr("-._~!$&'()*+,;=:@/?", c) != NULL) {
        return c != '\0';
    }

    return c == '%' && end - p >= 3 && pt_hexval((u_char) p[1]) >= 0
           && pt_hexval((u_char) p[2]) >= 0;
}


/* https://host[:port][/path][?query], strictly: no user information, no
 * fragment, nothing a request target may not hold. */
static int
pt_auth_jwks_parse_url(pt_conf_t *cf, pt_yaml_node_t *node,
    pt_auth_jwks_t *jw, pt_str_t *host, uint16_t *port)
{
    pt_str_t     scheme;
    pt_addr_t    addr;
    const char  *s, *end, *a, *q, *h, *p, *reason;

    s = node->scalar.data;
    end = s + node->scalar.len;

    p = strstr(s, "://");
    scheme.data = (char *) s;
    scheme.len = (size_t) (p - s);

    if (pt_str_caseeq(&scheme, "http")) {
        return pt_conf_error(cf, node,
                             "jwt_issuers: keys from an http:// URL are refused: keys must come over TLS (https://)");
    }

    if (!pt_str_caseeq(&scheme, "https")) {
        return pt_conf_error(cf, node,
                             "jwt_issuers: keys: \"%.*s://\" URLs are not supported (https:// only)",
                             (int) scheme.len, scheme.data);
    }

    a = p + 3;

    for (q = a; q < end && *q != '/' && *q != '?' && *q != '#'; q++) {
        /* void */
    }

    if (memchr(a, '@', (size_t) (q - a)) != NULL) {
        return pt_conf_error(cf, node,
                             "jwt_issuers: keys: user information (\"user@\") in the URL is refused");
    }

    if (q == a) {
        return pt_conf_error(cf, node,
                             "jwt_issuers: keys: the URL has no host");
    }

    /* The host ends at the port's ':' (or a bracketed IPv6 literal's ']'),
     * and is a name or an address as an upstream target's is. */
    if (*a == '[') {
        h = memchr(a, ']', (size_t) (q - a));
        h = h ? h + 1 : q;
    } else {
        h = memchr(a, ':', (size_t) (q - a));
        h = h ? h : q;
    }

    if ((h < q && *h != ':')
        || (*a != '[' && h < q && memchr(h + 1, ':', (size_t) (q - h - 1))))
    {
        return pt_conf_error(cf, node,
                             "jwt_issuers: keys: the URL's host is a name, an IPv4 address or an IPv6 one in brackets, then an optional :port");
    }

    if (pt_parse_addr(a, (size_t) (q - a), 443, &addr, &reason) != PT_OK) {
        return pt_conf_error(cf, node, "jwt_issuers: keys: the URL's host: %s",
                             reason);
    }

    if (addr.host.len == 1 && addr.host.data[0] == '*') {
        return pt_conf_error(cf, node,
                             "jwt_issuers: keys: the URL's host: \"*\" is no host");
    }

    host->data = (char *) a;
    host->len = (size_t) (h - a);
    *port = addr.port;

    for (p = q; p < end; p++) {
        if (*p == '#') {
            return pt_conf_error(cf, node,
                                 "jwt_issuers: keys: a fragment (#...) has no place in a JWKS URL");
        }

        if (!pt_auth_jwks_url_char(p, end)) {
            return pt_conf_error(cf, node,
                                 "jwt_issuers: keys: the URL's path or query holds a character it may not (byte %zu); percent-encode it",
                                 (size_t) (p - s + 1));
        }
    }

    /* "https://host?x" asks for "/?x" (RFC 9110 4.2.3). */
    if (q == end || *q == '?') {
        jw->target.data = pt_pnalloc(cf->pool, (size_t) (end - q) + 2);
        if (jw->target.data == NULL) {
            return PT_ERROR;
        }

        jw->target.data[0] = '/';
        memcpy(jw->target.data + 1, q, (size_t) (end - q));
        jw->target.len = (size_t) (end - q) + 1;
        jw->target.data[jw->target.len] = '\0';

    } else {
        jw->target.data = (char *) q;
        jw->target.len = (size_t) (end - q);
    }

    return PT_OK;
}


/* keys_refresh or keys_retry: at least a second. */
static int
pt_auth_jwks_interval(pt_conf_t *cf, pt_yaml_node_t *issuer,
    const char *name, pt_msec_t *ms)
{
    pt_yaml_node_t  *v;

    v = pt_yaml_map_get(issuer, name);
    if (v == NULL) {
        return PT_OK;
    }

    if (pt_conf_parse_msec(cf, v, ms) != PT_OK) {
        return PT_ERROR;
    }

    if (*ms < 1000) {
        return pt_conf_error(cf, v, "jwt_issuers: %s is at least 1s", name);
    }

    return PT_OK;
}


int
pt_auth_jwks_parse(pt_conf_t *cf, pt_auth_issuer_t *is,
    pt_yaml_node_t *issuer, pt_yaml_node_t *url)
{
    int              rc;
    char            *name;
    size_t           len;
    uint16_t         port;
    pt_str_t         host, ca;
    EVP_MD_CTX      *md;
    pt_yaml_node_t  *v, *at;
    pt_auth_jwks_t  *jw;

    jw = pt_pcalloc(cf->pool, sizeof(pt_auth_jwks_t));
    if (jw == NULL) {
        return PT_ERROR;
    }

    jw->url = url->scalar;
    jw->refresh = PT_AUTH_JWKS_REFRESH;
    jw->retry = PT_AUTH_JWKS_RETRY;

    rc = PT_OK;

    if (pt_auth_jwks_interval(cf, issuer, "keys_refresh", &jw->refresh)
        != PT_OK
        || pt_auth_jwks_interval(cf, issuer, "keys_retry", &jw->retry)
           != PT_OK)
    {
        rc = PT_ERROR;
    }

    if (pt_auth_jwks_parse_url(cf, url, jw, &host, &port) != PT_OK) {
        return PT_ERROR;
    }

    pt_str_null(&ca);
    at = url;

    v = pt_yaml_map_get(issuer, "keys_ca");
    if (v) {
        if (pt_conf_expect(cf, v, PT_YAML_SCALAR, "jwt_issuers: keys_ca")
            != PT_OK
            || pt_conf_full_path(cf, &v->scalar, &ca) != PT_OK)
        {
            return PT_ERROR;
        }

        at = v;
    }

    len = sizeof("jwks:") + is->name.len;
    name = pt_pnalloc(cf->pool, len);
    if (name == NULL) {
        return PT_ERROR;
    }

    snprintf(name, len, "jwks:%.*s", (int) is->name.len, is->name.data);

    /* The URL was checked above: what can fail now is the CA file. */
    jw->us = pt_upstream_add_url(cf, at, name, &host, port, &ca);
    if (jw->us == NULL) {
        return PT_ERROR;
    }

    /* Host names the port unless it is https's own (RFC 9110 7.2). */
    pt_str_set(&jw->fields[0].name, "Host");
    if (port == 443) {
        jw->fields[0].value = host;
    } else {
        jw->fields[0].value.data = pt_psprintf(cf->pool,
                                               &jw->fields[0].value.len,
                                               "%.*s:%u", (int) host.len,
                                               host.data, (unsigned) port);
        if (jw->fields[0].value.data == NULL) {
            return PT_ERROR;
        }
    }

    pt_str_set(&jw->fields[1].name, "Accept");
    pt_str_set(&jw->fields[1].value,
               "application/jwk-set+json, application/json");
    pt_str_set(&jw->fields[2].name, "User-Agent");
    pt_str_set(&jw->fields[2].value, "portico-jwks");

    /* The slot's name: a reload that keeps both keeps the document. */
    md = EVP_MD_CTX_new();
    if (md == NULL
        || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)
        || !EVP_DigestUpdate(md, is->name.data, is->name.len)
        || !EVP_DigestUpdate(md, "", 1)
        || !EVP_DigestUpdate(md, jw->url.data, jw->url.len)
        || !EVP_DigestFinal_ex(md, jw->key, NULL))
    {
        EVP_MD_CTX_free(md);
        return pt_conf_error(cf, url, "jwt_issuers: SHA-256 failed");
    }

    EVP_MD_CTX_free(md);

    is->jwks = jw;

    return rc;
}


int
pt_auth_jwks_no_url(pt_conf_t *cf, pt_yaml_node_t *issuer)
{
    int           rc;
    size_t        i;
    const char   *key;

    rc = PT_OK;

    for (i = 0; i < issuer->n; i++) {
        key = issuer->pairs[i].key->scalar.data;

        if (strcmp(key, "keys_ca") == 0 || strcmp(key, "keys_refresh") == 0
            || strcmp(key, "keys_retry") == 0)
        {
            rc = pt_conf_error(cf, issuer->pairs[i].key,
                               "jwt_issuers: %s needs keys to be an https URL",
                               key);
        }
    }

    return rc;
}


/* The zone: one slot per URL issuer, twice over (see the top). */
static size_t
pt_auth_jwks_zone_size(pt_uint_t n)
{
    return 32 * 1024 + (size_t) n * (sizeof(pt_auth_jwks_slot_t) + 8192);
}


static int
pt_auth_jwks_zone_init(pt_shm_zone_t *zone, void *old_data)
{
    pt_auth_jwks_root_t  *root;

    root = old_data;

    if (root && root->layout == PT_AUTH_JWKS_LAYOUT) {
        return PT_OK;       /* the documents survive the reload */
    }

    root = pt_slab_calloc(zone->slab, sizeof(pt_auth_jwks_root_t));
    if (root == NULL) {
        return PT_ERROR;
    }

    root->layout = PT_AUTH_JWKS_LAYOUT;
    zone->slab->data = root;

    return PT_OK;
}


int
pt_auth_jwks_postconfig(pt_conf_t *cf, pt_auth_main_conf_t *amcf)
{
    size_t              i;
    pt_auth_issuer_t  **ip;

    ip = amcf->issuers.elts;
    amcf->njwks = 0;

    for (i = 0; i < amcf->issuers.nelts; i++) {
        amcf->njwks += ip[i]->jwks != NULL;
    }

    if (amcf->njwks == 0) {
        return PT_OK;
    }

    /* One fetcher for the whole gateway. */
    pt_cycle_request_helper(cf);

    amcf->jwks_zone = pt_shm_zone_add(cf, "auth_jwks",
                                      pt_auth_jwks_zone_size(2 * amcf->njwks),
                                      0, &pt_auth_module,
                                      pt_auth_jwks_zone_init);
    if (amcf->jwks_zone == NULL) {
        return PT_ERROR;
    }

    for (i = 0; i < amcf->issuers.nelts; i++) {
        if (ip[i]->jwks) {
            ip[i]->jwks->zone = amcf->jwks_zone;
        }
    }

    return PT_OK;
}


/* A zone sized by `shm:` must hold a slot per issuer at least. */
int
pt_auth_jwks_init_conf(pt_conf_t *cf, pt_auth_main_conf_t *amcf)
{
    size_t  need;

    if (amcf->jwks_zone == NULL) {
        return PT_OK;
    }

    need = pt_auth_jwks_zone_size(amcf->njwks);

    if (amcf->jwks_zone->size < need) {
        return pt_conf_error(cf, amcf->jwks_zone->node,
                             "shm: auth_jwks needs at least %zu bytes for %u JWKS URLs",
                             need, (unsigned) amcf->njwks);
    }

    return PT_OK;
}


/* In the master, once the zone is mapped: each URL issuer's slot. Called
 * with the lock held. */
static pt_auth_jwks_slot_t *
pt_auth_jwks_slot(pt_slab_pool_t *slab, pt_auth_main_conf_t *amcf,
    pt_auth_jwks_t *jw)
{
    size_t                i;
    pt_auth_jwks_slot_t  *s, *spare;
    pt_auth_jwks_root_t  *root;
    pt_auth_issuer_t    **ip;

    root = slab->data;
    ip = amcf->issuers.elts;
    spare = NULL;

    for (s = root->slots; s; s = s->next) {
        if (memcmp(s->key, jw->key, 32) == 0) {
            return s;
        }

        /* One no issuer of this generation names: another's, or free. */
        for (i = 0; i < amcf->issuers.nelts; i++) {
            if (ip[i]->jwks && memcmp(s->key, ip[i]->jwks->key, 32) == 0) {
                break;
            }
        }

        if (i == amcf->issuers.nelts) {
            spare = s;
        }
    }

    s = pt_slab_calloc_locked(slab, sizeof(pt_auth_jwks_slot_t));

    if (s) {
        s->next = root->slots;
        root->slots = s;

    } else if (spare) {
        s = spare;

    } else {
        return NULL;
    }

    memcpy(s->key, jw->key, 32);
    s->len = 0;
    s->fetched = 0;
    s->wanted = 0;
    __atomic_add_fetch(&s->version, 1, __ATOMIC_RELEASE);

    return s;
}


int
pt_auth_jwks_init_master(pt_cycle_t *cycle, pt_auth_main_conf_t *amcf)
{
    size_t              i;
    pt_slab_pool_t     *slab;
    pt_auth_issuer_t  **ip;

    if (amcf->jwks_zone == NULL) {
        return PT_OK;
    }

    slab = amcf->jwks_zone->slab;
    ip = amcf->issuers.elts;

    pt_shmtx_lock(&slab->mutex);

    for (i = 0; i < amcf->issuers.nelts; i++) {
        if (ip[i]->jwks == NULL) {
            continue;
        }

        ip[i]->jwks->slot = pt_auth_jwks_slot(slab, amcf, ip[i]->jwks);

        if (ip[i]->jwks->slot == NULL) {
            pt_shmtx_unlock(&slab->mutex);
            pt_log_error(pt_cycle_fatal_level, NULL, 0,
                         "shm zone \"auth_jwks\" is full: no room for the keys of JWT issuer \"%s\"",
                         ip[i]->name.data);
            return PT_ERROR;
        }
    }

    pt_shmtx_unlock(&slab->mutex);

    return PT_OK;
}


/*
 * The helper: fetching.
 */

static void pt_auth_jwks_tick(pt_event_t *ev);


/* Into the zone, unless a newer generation took the slot over. The
 * version moves only when the document changed, so a refresh that finds
 * the same keys costs the workers nothing. Returns 1 when it changed, 0
 * when not, -1 when the slot is another issuer's now. */
static int
pt_auth_jwks_publish(pt_auth_jwks_t *jw, const pt_str_t *doc)
{
    int                   rc;
    pt_slab_pool_t       *slab;
    pt_auth_jwks_slot_t  *s;

    slab = jw->zone->slab;
    s = jw->slot;

    pt_shmtx_lock(&slab->mutex);

    if (memcmp(s->key, jw->key, 32) != 0) {
        rc = -1;

    } else if (s->len == doc->len && memcmp(s->doc, doc->data, doc->len) == 0)
    {
        rc = 0;

    } else {
        memcpy(s->doc, doc->data, doc->len);
        s->len = doc->len;
        __atomic_add_fetch(&s->version, 1, __ATOMIC_RELEASE);
        rc = 1;
    }

    if (rc >= 0) {
        __atomic_store_n(&s->fetched, (uint64_t) pt_current_epoch_msec,
                         __ATOMIC_RELAXED);
    }

    pt_shmtx_unlock(&slab->mutex);

    return rc;
}


static void
pt_auth_jwks_done(pt_upstream_call_t *call)
{
    int                    changed;
    char                   err[256];
    size_t                 nkeys;
    const char            *why;
    pt_jwt_keyset_t       *ks;
    pt_auth_issuer_t      *is;
    pt_auth_jwks_t        *jw;
    pt_auth_jwks_fetch_t  *f;

    f = call->data;
    is = f->is;
    jw = is->jwks;
    why = err;
    nkeys = 0;
    changed = 0;
    snprintf(err, sizeof(err), "no usable key");

    if (call->rc != PT_OK) {
        why = call->error;

    } else if (call->status != 200) {
        snprintf(err, sizeof(err), "status %u", call->status);

    } else if (call->body.len > PT_AUTH_JWKS_MAX) {
        snprintf(err, sizeof(err), "a document of %zu bytes, over 256 KiB",
                 call->body.len);

    } else {
        ks = pt_jwt_keyset_jwks(call->body.data, call->body.len, err,
                                sizeof(err));
        if (ks) {
            nkeys = ks->n;
            pt_jwt_keyset_free(ks);
            why = NULL;
            changed = pt_auth_jwks_publish(jw, &call->body);
        }
    }

    if (why) {
        pt_log_error(PT_LOG_ERR, NULL, 0,
                     "jwks fetch for issuer \"%s\" failed: %s, url: %s",
                     is->name.data, why, jw->url.data);

    } else if (changed >= 0) {
        pt_log_error(changed ? PT_LOG_INFO : PT_LOG_DEBUG, NULL, 0,
                     "jwks for issuer \"%s\": %zu key(s) from %s%s",
                     is->name.data, nkeys, jw->url.data,
                     changed ? "" : " (unchanged)");
    }

    /* (changed < 0: a newer generation gave the slot to another issuer;
     * this generation is retiring, and says nothing.) */

    f->next = pt_current_msec + (why ? jw->retry : jw->refresh);

    /* done() is the last use of the call: its pool can go. */
    pt_pool_destroy(f->pool);
    f->pool = NULL;
}


static void
pt_auth_jwks_fetch(pt_auth_jwks_fetch_t *f)
{
    pt_pool_t           *pool;
    pt_auth_jwks_t      *jw;
    pt_upstream_call_t  *call;

    jw = f->is->jwks;
    f->started = pt_current_epoch_msec;

    pool = pt_pool_create(4096);
    call = pool ? pt_pcalloc(pool, sizeof(pt_upstream_call_t)) : NULL;

    if (call == NULL) {
        pt_log_error(PT_LOG_ERR, NULL, 0,
                     "jwks fetch for issuer \"%s\" failed: out of memory",
                     f->is->name.data);
        goto failed;
    }

    call->us = jw->us;
    call->pool = pool;
    call->target = jw->target;
    call->host = jw->fields[0].value;
    call->headers = &jw->fields[1];
    call->nheaders = 2;
    call->max_response = PT_AUTH_JWKS_MAX + PT_AUTH_JWKS_HEAD;
    call->timeout = PT_AUTH_JWKS_TIMEOUT;
    call->done = pt_auth_jwks_done;
    call->data = f;

    f->pool = pool;

    if (pt_upstream_call_start(call) != PT_OK) {
        pt_log_error(PT_LOG_ERR, NULL, 0,
                     "jwks fetch for issuer \"%s\" failed: %s, url: %s",
                     f->is->name.data, call->error, jw->url.data);
        f->pool = NULL;
        goto failed;
    }

    return;

failed:

    if (pool) {
        pt_pool_destroy(pool);
    }

    f->next = pt_current_msec + jw->retry;
}


/* Every PT_AUTH_JWKS_POLL: a fetch when one is due, or when a worker
 * asked since the last one began and that was keys_retry ago. */
static void
pt_auth_jwks_tick(pt_event_t *ev)
{
    uint64_t               wanted;
    pt_auth_jwks_t        *jw;
    pt_auth_jwks_fetch_t  *f;

    f = ev->data;
    jw = f->is->jwks;

    if (f->pool == NULL) {
        wanted = __atomic_load_n(&jw->slot->wanted, __ATOMIC_RELAXED);

        if (pt_current_msec >= f->next
            || (wanted > f->started
                && pt_current_epoch_msec - f->started >= jw->retry))
        {
            pt_auth_jwks_fetch(f);
        }
    }

    pt_timer_add(&f->timer, PT_AUTH_JWKS_POLL);
}


int
pt_auth_jwks_init_helper(pt_cycle_t *cycle, pt_auth_main_conf_t *amcf)
{
    size_t                 i, n;
    pt_auth_issuer_t     **ip;
    pt_auth_jwks_fetch_t  *f;

    if (amcf->njwks == 0) {
        return PT_OK;
    }

    pt_auth_jwks_fetches = pt_pcalloc(cycle->pool,
                                      amcf->njwks
                                      * sizeof(pt_auth_jwks_fetch_t));
    if (pt_auth_jwks_fetches == NULL) {
        return PT_ERROR;
    }

    ip = amcf->issuers.elts;
    n = 0;

    for (i = 0; i < amcf->issuers.nelts; i++) {
        if (ip[i]->jwks == NULL) {
            continue;
        }

        f = &pt_auth_jwks_fetches[n++];
        f->is = ip[i];
        f->next = pt_current_msec;
        f->timer.data = f;
        f->timer.handler = pt_auth_jwks_tick;
        f->timer.cancelable = 1;

        /* At once: a new generation (or a restart) wants fresh keys. */
        pt_timer_add(&f->timer, 1);
    }

    pt_auth_jwks_nfetches = n;

    return PT_OK;
}


void
pt_auth_jwks_exit_helper(pt_cycle_t *cycle)
{
    size_t                 i;
    pt_auth_jwks_fetch_t  *f;

    for (i = 0; i < pt_auth_jwks_nfetches; i++) {
        f = &pt_auth_jwks_fetches[i];

        pt_timer_del(&f->timer);

        /* The pool's cleanup cancels the call under way. */
        if (f->pool) {
            pt_pool_destroy(f->pool);
            f->pool = NULL;
        }
    }

    pt_auth_jwks_nfetches = 0;
}


/*
 * The workers: keys.
 */

const pt_jwt_keyset_t *
pt_auth_jwks_keys(pt_auth_issuer_t *is)
{
    char                  err[128], *doc;
    size_t                len;
    uint64_t              version;
    pt_slab_pool_t       *slab;
    pt_auth_jwks_t       *jw;
    pt_jwt_keyset_t      *ks;
    pt_auth_jwks_slot_t  *s;

    jw = is->jwks;
    s = jw->slot;

    version = __atomic_load_n(&s->version, __ATOMIC_ACQUIRE);
    if (version == jw->version) {
        return is->keys;
    }

    slab = jw->zone->slab;
    doc = NULL;

    pt_shmtx_lock(&slab->mutex);

    version = s->version;
    len = s->len;

    /* A newer generation took the slot over: keep what we have. */
    if (memcmp(s->key, jw->key, 32) != 0) {
        pt_shmtx_unlock(&slab->mutex);
        jw->version = version;
        return is->keys;
    }

    if (len) {
        doc = malloc(len);
        if (doc) {
            memcpy(doc, s->doc, len);
        }
    }

    pt_shmtx_unlock(&slab->mutex);

    if (len && doc == NULL) {
        return is->keys;        /* out of memory: the next token tries */
    }

    ks = NULL;

    if (len) {
        ks = pt_jwt_keyset_jwks(doc, len, err, sizeof(err));
        free(doc);

        if (ks == NULL) {
            /* The helper checked it: only memory can be short here. */
            pt_log_error(PT_LOG_ERR, NULL, 0,
                         "jwks for issuer \"%s\": %s", is->name.data, err);
            return is->keys;
        }
    }

    pt_jwt_keyset_free(is->keys);
    is->keys = ks;
    jw->version = version;

    return ks;
}


void
pt_auth_jwks_want(pt_auth_issuer_t *is)
{
    uint64_t              now;
    pt_auth_jwks_slot_t  *s;

    s = is->jwks->slot;
    now = pt_current_epoch_msec;

    /* The helper compares it with when its last fetch began, and holds
     * the pace to keys_retry whatever the workers ask. */
    if (__atomic_load_n(&s->wanted, __ATOMIC_RELAXED) != now) {
        __atomic_store_n(&s->wanted, now, __ATOMIC_RELAXED);
    }
}


void
pt_auth_jwks_exit_worker(pt_auth_main_conf_t *amcf)
{
    size_t              i;
    pt_auth_issuer_t  **ip;

    ip = amcf->issuers.elts;

    for (i = 0; i < amcf->issuers.nelts; i++) {
        if (ip[i]->jwks && ip[i]->keys) {
            pt_jwt_keyset_free(ip[i]->keys);
            ip[i]->keys = NULL;
            ip[i]->jwks->version = 0;
        }
    }
}
