/*
 * pt_auth_method.c: the credentials a request may present, each found and
 * checked: an API key (a header or a query parameter), Basic (crypt(3)
 * through libxcrypt), a JWT bearer token, a verified client certificate.
 *
 * Each method returns PT_DECLINED when the request carries none of its
 * credential, so the next method of the route may look; once one finds
 * its credential, its verdict stands (PT_OK or 401).
 */

#include <crypt.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "pt_auth.h"
#include "pt_string.h"
#include "pt_time.h"


/* How long a wrong password is remembered: a client retrying the same
 * bad Basic credential costs a lookup, not a bcrypt run, but a typo
 * fixed a moment later is checked afresh. */
#define PT_AUTH_BAD_TTL    5000

/* Spent on a user name that is not a consumer, so a wrong name costs as
 * much as a wrong password and does not reveal which names exist. */
static const char  pt_auth_dummy_hash[] =
    "$2b$10$.rA8gQedSjVSoba99HQ6ve21nacMXynvvMSsubyPvTpyS4nQNg2FS";


static pt_http_header_t *
pt_auth_header(pt_http_request_t *r, const pt_str_t *name)
{
    return pt_http_header_find(&r->headers_in.headers, name->data,
                               name->len);
}


/* Query parameter name, percent-decoded into the pool; PT_DECLINED when
 * absent. */
static int
pt_auth_query_arg(pt_http_request_t *r, const pt_str_t *name, pt_str_t *v)
{
    int       hi, lo;
    char     *d;
    size_t    i;
    pt_str_t  raw;

    if (pt_http_arg(r, name, &raw) != PT_OK) {
        return PT_DECLINED;
    }

    d = pt_pnalloc(r->pool, raw.len + 1);
    if (d == NULL) {
        return PT_ERROR;
    }

    v->data = d;

    for (i = 0; i < raw.len; i++) {
        if (raw.data[i] == '%' && i + 2 < raw.len
            && (hi = pt_hexval((u_char) raw.data[i + 1])) >= 0
            && (lo = pt_hexval((u_char) raw.data[i + 2])) >= 0)
        {
            *d++ = (char) (hi << 4 | lo);
            i += 2;
        } else {
            *d++ = raw.data[i] == '+' ? ' ' : raw.data[i];
        }
    }

    v->len = (size_t) (d - v->data);

    return PT_OK;
}


int
pt_auth_api_key(pt_http_request_t *r, pt_auth_route_conf_t *acf,
    pt_auth_ctx_t *ctx, const char **reason)
{
    int                   rc;
    u_char                digest[32];
    pt_str_t              key;
    pt_auth_key_t        *k;
    pt_http_header_t     *h;
    pt_auth_main_conf_t  *amcf;

    h = acf->key_header.len ? pt_auth_header(r, &acf->key_header) : NULL;

    if (h) {
        key = h->value;

    } else if (acf->key_query.len) {
        rc = pt_auth_query_arg(r, &acf->key_query, &key);
        if (rc != PT_OK) {
            return rc;
        }

    } else {
        return PT_DECLINED;
    }

    amcf = pt_auth_main_conf();

    if (pt_auth_digest(NULL, key.data, key.len, NULL, 0, digest) != PT_OK) {
        return PT_ERROR;
    }

    /* The table is probed with the digest, not the key, and the digest is
     * compared once more in constant time. */
    k = pt_hash_find(&amcf->key_index, (const char *) digest, 32);

    if (k == NULL || CRYPTO_memcmp(k->digest, digest, 32) != 0) {
        *reason = "unknown API key";
        return 401;
    }

    ctx->consumer = k->consumer;
    return PT_OK;
}


/* "Basic base64(user:pass)" -> user and pass in the pool. */
static int
pt_auth_basic_decode(pt_http_request_t *r, const pt_str_t *b64,
    pt_str_t *user, pt_str_t *pass)
{
    int     n;
    char   *buf, *colon;
    size_t  pad;

    if (b64->len == 0 || b64->len % 4 != 0 || b64->len > 4096) {
        return PT_DECLINED;
    }

    buf = pt_pnalloc(r->pool, b64->len / 4 * 3 + 1);
    if (buf == NULL) {
        return PT_ERROR;
    }

    n = EVP_DecodeBlock((u_char *) buf, (const u_char *) b64->data,
                        (int) b64->len);
    if (n < 0) {
        return PT_DECLINED;
    }

    /* EVP_DecodeBlock counts the padding as zero bytes. */
    pad = (b64->data[b64->len - 1] == '=') + (b64->data[b64->len - 2] == '=');
    n -= (int) pad;
    buf[n] = '\0';

    colon = memchr(buf, ':', (size_t) n);
    if (colon == NULL || memchr(buf, '\0', (size_t) n) != NULL) {
        return PT_DECLINED;
    }

    user->data = buf;
    user->len = (size_t) (colon - buf);
    *colon = '\0';
    pass->data = colon + 1;
    pass->len = (size_t) (buf + n - pass->data);

    return PT_OK;
}


/* The Authorization value after "SCHEME ", or PT_DECLINED. */
static int
pt_auth_scheme(pt_http_request_t *r, const char *scheme, pt_str_t *param)
{
    size_t             len;
    pt_str_t           s;
    pt_http_header_t  *h;

    h = pt_http_header_find(&r->headers_in.headers, "authorization", 13);
    if (h == NULL) {
        return PT_DECLINED;
    }

    len = strlen(scheme);
    s.data = h->value.data;
    s.len = pt_min(len, h->value.len);

    if (h->value.len <= len + 1 || !pt_strcaseeq(&s, scheme, len)
        || h->value.data[len] != ' ')
    {
        return PT_DECLINED;
    }

    param->data = h->value.data + len + 1;
    param->len = h->value.len - len - 1;

    while (param->len && param->data[0] == ' ') {
        param->data++;
        param->len--;
    }

    return PT_OK;
}


int
pt_auth_basic(pt_http_request_t *r, pt_auth_route_conf_t *acf,
    pt_auth_ctx_t *ctx, const char **reason)
{
    int                     rc, good;
    u_char                  digest[32];
    char                   *out;
    pt_str_t                param, user, pass;
    const char             *hash;
    pt_auth_consumer_t     *c;
    pt_auth_main_conf_t    *amcf;
    pt_auth_cache_entry_t  *e;

    static struct crypt_data  data;

    rc = pt_auth_scheme(r, "Basic", &param);
    if (rc != PT_OK) {
        return rc;
    }

    rc = pt_auth_basic_decode(r, &param, &user, &pass);
    if (rc == PT_DECLINED) {
        *reason = "malformed Basic credentials";
        return 401;
    }

    if (rc != PT_OK) {
        return rc;
    }

    if (pt_auth_digest("basic", user.data, user.len, pass.data, pass.len,
                       digest) != PT_OK)
    {
        return PT_ERROR;
    }

    e = pt_auth_cache_find(digest);
    if (e) {
        if (!e->ok) {
            *reason = "wrong user name or password";
            return 401;
        }

        ctx->consumer = e->consumer;
        return PT_OK;
    }

    amcf = pt_auth_main_conf();
    c = pt_hash_find(&amcf->by_name, user.data, user.len);
    hash = (c && c->password.len) ? c->password.data : pt_auth_dummy_hash;

    out = crypt_rn(pass.data, hash, &data, sizeof(data));
    good = out != NULL && c != NULL && c->password.len
           && strlen(out) == c->password.len
           && CRYPTO_memcmp(out, hash, c->password.len) == 0;

    e = pt_auth_cache_slot(digest);
    if (e) {
        e->ok = good;
        e->consumer = good ? c : NULL;
        e->expires = pt_current_msec
                     + (good ? amcf->cache_ttl
                             : pt_min(amcf->cache_ttl, PT_AUTH_BAD_TTL));
        if (e->expires == 0 || (good && amcf->cache_ttl == 0)) {
            pt_auth_cache_clear(e);
        }
    }

    if (!good) {
        *reason = "wrong user name or password";
        return 401;
    }

    ctx->consumer = c;
    return PT_OK;
}


/* A string claim's value (NULL when absent or not a string). */
static const char *
pt_auth_claim_string(json_t *claims, const pt_str_t *name, size_t *len)
{
    json_t  *v;

    v = json_object_getn(claims, name->data, name->len);
    if (!json_is_string(v)) {
        return NULL;
    }

    *len = json_string_length(v);
    return json_string_value(v);
}


/* X-Consumer-Groups from a groups claim: an array of strings, or a
 * space-separated string; anything else (or a comma inside a group,
 * which would split it) is ignored. */
static int
pt_auth_claim_groups(json_t *claims, const pt_str_t *name, pt_str_t *out)
{
    char        *p;
    size_t       i, len, total;
    json_t      *v, *g;
    const char  *s;

    v = json_object_getn(claims, name->data, name->len);

    if (json_is_string(v)) {
        s = json_string_value(v);
        len = json_string_length(v);
        if (memchr(s, ',', len) || memchr(s, '\0', len)) {
            return PT_OK;
        }

        out->data = malloc(len + 1);
        if (out->data == NULL) {
            return PT_ERROR;
        }

        for (i = 0; i < len; i++) {
            out->data[i] = s[i] == ' ' ? ',' : s[i];
        }
        out->data[len] = '\0';
        out->len = len;
        return PT_OK;
    }

    if (!json_is_array(v)) {
        return PT_OK;
    }

    total = 0;
    json_array_foreach(v, i, g) {
        if (!json_is_string(g)
            || memchr(json_string_value(g), ',', json_string_length(g))
            || memchr(json_string_value(g), '\0', json_string_length(g)))
        {
            return PT_OK;
        }
        total += json_string_length(g) + 1;
    }

    out->data = malloc(total + 1);
    if (out->data == NULL) {
        return PT_ERROR;
    }

    p = out->data;
    json_array_foreach(v, i, g) {
        if (i) {
            *p++ = ',';
        }
        p = pt_cpymem(p, json_string_value(g), json_string_length(g));
    }
    *p = '\0';
    out->len = (size_t) (p - out->data);

    return PT_OK;
}


int
pt_auth_jwt(pt_http_request_t *r, pt_auth_route_conf_t *acf,
    pt_auth_ctx_t *ctx, const char **reason)
{
    int                     rc;
    u_char                  digest[32];
    size_t                  len;
    int64_t                 now, ttl;
    pt_jwt_t                jwt;
    pt_str_t                token;
    const char             *name;
    pt_jwt_rc_e             jrc;
    const pt_jwt_keyset_t  *ks;
    pt_auth_issuer_t       *is;
    pt_auth_consumer_t     *c;
    pt_auth_main_conf_t    *amcf;
    pt_auth_cache_entry_t  *e;

    rc = pt_auth_scheme(r, "Bearer", &token);
    if (rc != PT_OK) {
        return rc;
    }

    is = acf->issuer;

    if (token.len > is->max_token) {
        *reason = pt_jwt_strerror(PT_JWT_TOO_LARGE);
        return 401;
    }

    /* The issuer is part of the key: a token good for one issuer's
     * routes proves nothing on another's. */
    if (pt_auth_digest("jwt", is->name.data, is->name.len, token.data,
                       token.len, digest) != PT_OK)
    {
        return PT_ERROR;
    }

    e = pt_auth_cache_find(digest);
    if (e == NULL) {
        ks = is->jwks ? pt_auth_jwks_keys(is) : is->keys;
        if (ks == NULL) {
            *reason = "no keys from the issuer yet";
            return 401;
        }

        now = (int64_t) (pt_current_epoch_msec / 1000);
        jrc = pt_jwt_verify(token.data, token.len, ks, &is->policy, now,
                            &jwt);

        if (jrc == PT_JWT_NOMEM) {
            return PT_ERROR;
        }

        /* The provider may have a key we have not fetched yet (a
         * rotation); a later request finds it. */
        if (jrc == PT_JWT_UNKNOWN_KID && is->jwks) {
            pt_auth_jwks_want(is);
        }

        if (jrc != PT_JWT_OK) {
            *reason = pt_jwt_strerror(jrc);
            return 401;
        }

        name = pt_auth_claim_string(jwt.claims, &is->consumer_claim, &len);
        if (name == NULL || len == 0 || memchr(name, '\0', len)) {
            json_decref(jwt.claims);
            *reason = "the token names no consumer";
            return 401;
        }

        e = pt_auth_cache_slot(digest);
        if (e == NULL) {
            return PT_ERROR;
        }

        amcf = pt_auth_main_conf();
        e->ok = 1;
        e->claims = jwt.claims;
        e->consumer = pt_hash_find(&amcf->by_name, name, len);
        e->name.data = strndup(name, len);
        e->name.len = len;

        if (e->name.data == NULL
            || (is->groups_claim.len
                && pt_auth_claim_groups(jwt.claims, &is->groups_claim,
                                        &e->groups) != PT_OK))
        {
            pt_auth_cache_clear(e);
            return PT_ERROR;
        }

        /* Until the token expires (exp, with the leeway it was checked
         * with), and at most a day without exp. */
        ttl = jwt.exp ? (jwt.exp + is->leeway - now) * 1000
                      : 86400 * 1000;
        if (ttl <= 0) {
            ttl = 1;
        }
        e->expires = pt_current_msec + (pt_msec_t) ttl;
    }

    c = e->consumer;
    ctx->consumer = c;
    ctx->name = e->name;
    ctx->claims = json_incref(e->claims);

    if (e->groups.len) {
        ctx->groups = e->groups;
    } else if (c) {
        ctx->groups = c->groups_text;
    }

    return PT_OK;
}


int
pt_auth_mtls(pt_http_request_t *r, pt_auth_route_conf_t *acf,
    pt_auth_ctx_t *ctx, const char **reason)
{
    size_t                i;
    pt_str_t              fp, subject;
    pt_auth_consumer_t  **cp;
    pt_auth_main_conf_t  *amcf;

    if (r->connection->ssl == NULL
        || pt_ssl_client_verified(r->connection, NULL) != PT_OK)
    {
        return PT_DECLINED;
    }

    if (pt_ssl_client_fingerprint(r->connection, r->pool, &fp) != PT_OK
        || pt_ssl_client_subject(r->connection, r->pool, &subject) != PT_OK)
    {
        return PT_ERROR;
    }

    amcf = pt_auth_main_conf();
    cp = amcf->consumers.elts;

    /* The fingerprint names one certificate; the subject any certificate
     * the CA issued with that name: the fingerprint goes first. */
    for (i = 0; i < amcf->consumers.nelts; i++) {
        if (cp[i]->cert_fingerprint.len
            && pt_str_equal(&cp[i]->cert_fingerprint, &fp))
        {
            ctx->consumer = cp[i];
            return PT_OK;
        }
    }

    for (i = 0; i < amcf->consumers.nelts; i++) {
        if (cp[i]->cert_subject.len
            && pt_str_equal(&cp[i]->cert_subject, &subject))
        {
            ctx->consumer = cp[i];
            return PT_OK;
        }
    }

    *reason = "the client certificate is no consumer's";
    return 401;
}


/* A copy of query q without the parameters called name, in the pool; q is
 * left alone (it may share the head buffer with the request line). */
static int
pt_auth_query_without(pt_pool_t *pool, pt_str_t *q, const pt_str_t *name)
{
    char  *p, *end, *amp, *w, *start;

    start = pt_pnalloc(pool, q->len + 1);
    if (start == NULL) {
        return PT_ERROR;
    }

    p = q->data;
    end = p + q->len;
    w = start;

    while (p < end) {
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }

        if (!((size_t) (amp - p) >= name->len
              && memcmp(p, name->data, name->len) == 0
              && (p + name->len == amp || p[name->len] == '=')))
        {
            if (w != start) {
                *w++ = '&';
            }
            w = pt_cpymem(w, p, (size_t) (amp - p));
        }

        p = amp + 1;
    }

    *w = '\0';
    q->data = start;
    q->len = (size_t) (w - start);

    return PT_OK;
}


/* The key parameter leaves the upstream's query and, so that no log
 * shows it, the request line as logged (${request_uri}, combined). */
static int
pt_auth_strip_query(pt_http_request_t *r, const pt_str_t *name)
{
    char      *q, *p;
    pt_str_t   query;

    if (pt_auth_query_without(r->pool, &r->query, name) != PT_OK) {
        return PT_ERROR;
    }

    q = memchr(r->line.target.data, '?', r->line.target.len);
    if (q == NULL) {
        return PT_OK;
    }

    query.data = q + 1;
    query.len = (size_t) (r->line.target.data + r->line.target.len - q - 1);

    if (pt_auth_query_without(r->pool, &query, name) != PT_OK) {
        return PT_ERROR;
    }

    p = pt_pnalloc(r->pool, (size_t) (q - r->line.target.data) + 1
                            + query.len + 1);
    if (p == NULL) {
        return PT_ERROR;
    }

    r->line.target.len = (size_t) (q - r->line.target.data);
    memcpy(p, r->line.target.data, r->line.target.len);
    r->line.target.data = p;

    if (query.len) {
        p[r->line.target.len++] = '?';
        memcpy(p + r->line.target.len, query.data, query.len);
        r->line.target.len += query.len;
    }

    p[r->line.target.len] = '\0';

    return PT_OK;
}


int
pt_auth_strip_credentials(pt_http_request_t *r, pt_auth_route_conf_t *acf,
    unsigned method)
{
    switch (method) {

    case PT_AUTH_API_KEY:
        if (acf->key_header.len) {
            pt_http_header_in_remove(r, acf->key_header.data,
                                     acf->key_header.len);
        }

        if (acf->key_query.len && r->query.len) {
            return pt_auth_strip_query(r, &acf->key_query);
        }
        break;

    case PT_AUTH_BASIC:
    case PT_AUTH_JWT:
        pt_http_header_in_remove(r, "Authorization", 13);
        break;

    default:
        break;
    }

    return PT_OK;
}
