/*
 * pt_auth_conf.c: the auth module's keys: `consumers`, `jwt_issuers` and
 * `auth_cache` at global scope, a route's `auth:` section.
 *
 * Secrets are checked at load as far as they can be: a password must be
 * a crypt(3) hash that libxcrypt accepts as current (crypt_checksalt), an
 * API key given as "sha256:HEX" must be 64 hex digits, key files must
 * hold at least one usable key, and two consumers may not share a key.
 */

#include <crypt.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "pt_auth.h"
#include "pt_auth_forward.h"
#include "pt_string.h"


#define PT_AUTH_KEY_FILE_MAX   (1024 * 1024)


static int pt_auth_set_consumers(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_auth_set_issuers(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_auth_set_cache(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_auth_set_methods(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_auth_set_issuer_name(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_auth_set_api_key(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_auth_set_list(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_auth_set_claims(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_auth_set_forward(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);


const pt_command_t  pt_auth_commands[] = {

    { "consumers", PT_CONF_GLOBAL | PT_CONF_SEQ, pt_auth_set_consumers,
      0, NULL },

    { "jwt_issuers", PT_CONF_GLOBAL | PT_CONF_SEQ, pt_auth_set_issuers,
      0, NULL },

    { "auth_cache", PT_CONF_GLOBAL | PT_CONF_MAP, pt_auth_set_cache,
      0, NULL },

    { "auth.methods", PT_CONF_ROUTE | PT_CONF_SEQ, pt_auth_set_methods,
      0, NULL },

    { "auth.jwt_issuer", PT_CONF_ROUTE | PT_CONF_SCALAR,
      pt_auth_set_issuer_name, 0, NULL },

    { "auth.api_key", PT_CONF_ROUTE | PT_CONF_MAP, pt_auth_set_api_key,
      0, NULL },

    { "auth.realm", PT_CONF_ROUTE | PT_CONF_SCALAR, pt_conf_set_str,
      offsetof(pt_auth_route_conf_t, realm), NULL },

    { "auth.allow_groups", PT_CONF_ROUTE | PT_CONF_SEQ, pt_auth_set_list,
      offsetof(pt_auth_route_conf_t, allow_groups), NULL },

    { "auth.require_claims", PT_CONF_ROUTE | PT_CONF_MAP, pt_auth_set_claims,
      0, NULL },

    { "auth.keep_credentials", PT_CONF_ROUTE | PT_CONF_SCALAR,
      pt_conf_set_flag, offsetof(pt_auth_route_conf_t, keep_credentials),
      NULL },

    { "auth.forward", PT_CONF_ROUTE | PT_CONF_MAP, pt_auth_set_forward,
      0, NULL },

    pt_null_command
};


static const char  *pt_auth_method_names[PT_AUTH_NMETHODS] = {
    "api_key", "basic", "jwt", "mtls", "forward"
};


void *
pt_auth_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_auth_main_conf_t   *amcf;
    pt_auth_route_conf_t  *acf;

    if (level == PT_CONF_LEVEL_GLOBAL) {
        amcf = pt_pcalloc(cf->pool, sizeof(pt_auth_main_conf_t));
        if (amcf == NULL
            || pt_array_init(&amcf->consumers, cf->pool, 4,
                             sizeof(pt_auth_consumer_t *)) != PT_OK
            || pt_array_init(&amcf->issuers, cf->pool, 2,
                             sizeof(pt_auth_issuer_t *)) != PT_OK
            || pt_array_init(&amcf->keys, cf->pool, 4,
                             sizeof(pt_auth_key_t)) != PT_OK)
        {
            return PT_CONF_ERROR_PTR;
        }

        amcf->cache_ttl = 60000;
        amcf->cache_size = 4096;
        return amcf;
    }

    if (level != PT_CONF_LEVEL_ROUTE) {
        return NULL;
    }

    acf = pt_pcalloc(cf->pool, sizeof(pt_auth_route_conf_t));
    if (acf == NULL) {
        return PT_CONF_ERROR_PTR;
    }

    acf->keep_credentials = PT_CONF_UNSET;
    return acf;
}


/* Check a map's keys against a list; report each unknown one. */
static int
pt_auth_check_keys(pt_conf_t *cf, pt_yaml_node_t *map, const char *what,
    const char *const *names, const char *list)
{
    int          rc;
    size_t       i;
    const char  *const *n;

    rc = PT_OK;

    for (i = 0; i < map->n; i++) {
        for (n = names; *n; n++) {
            if (strcmp(map->pairs[i].key->scalar.data, *n) == 0) {
                break;
            }
        }

        if (*n == NULL) {
            rc = pt_conf_error(cf, map->pairs[i].key,
                               "unknown key \"%s\" in %s (%s)",
                               map->pairs[i].key->scalar.data, what, list);
        }
    }

    return rc;
}


/* A scalar or a sequence of scalars into an array of pt_str_t. */
static int
pt_auth_strings(pt_conf_t *cf, pt_yaml_node_t *node, const char *what,
    pt_array_t *a)
{
    size_t            i, n;
    pt_str_t         *s;
    pt_yaml_node_t  **items, *one;

    if (a->elts == NULL
        && pt_array_init(a, cf->pool, 2, sizeof(pt_str_t)) != PT_OK)
    {
        return PT_ERROR;
    }

    one = node;
    items = &one;
    n = 1;

    if (node->type == PT_YAML_SEQ) {
        items = node->items;
        n = node->n;
    }

    for (i = 0; i < n; i++) {
        if (pt_conf_expect(cf, items[i], PT_YAML_SCALAR, what) != PT_OK) {
            return PT_ERROR;
        }

        if (items[i]->scalar.len == 0) {
            return pt_conf_error(cf, items[i], "%s: an empty value", what);
        }

        s = pt_array_push(a);
        if (s == NULL) {
            return PT_ERROR;
        }

        *s = items[i]->scalar;
    }

    return PT_OK;
}


static int
pt_auth_scalar(pt_conf_t *cf, pt_yaml_node_t *node, const char *what,
    pt_str_t *out)
{
    if (pt_conf_expect(cf, node, PT_YAML_SCALAR, what) != PT_OK) {
        return PT_ERROR;
    }

    *out = node->scalar;
    return PT_OK;
}


/* "sha256:HEX", or the key itself, into its SHA-256. */
static int
pt_auth_key_digest(pt_conf_t *cf, pt_yaml_node_t *node, u_char digest[32])
{
    int          hi, lo;
    size_t       i;
    const char  *hex;

    if (node->scalar.len > 7 && memcmp(node->scalar.data, "sha256:", 7) == 0)
    {
        hex = node->scalar.data + 7;

        if (node->scalar.len - 7 != 64) {
            return pt_conf_error(cf, node,
                                 "api_keys: \"sha256:\" needs 64 hex digits");
        }

        for (i = 0; i < 32; i++) {
            hi = pt_hexval((unsigned char) hex[2 * i]);
            lo = pt_hexval((unsigned char) hex[2 * i + 1]);

            if (hi < 0 || lo < 0) {
                return pt_conf_error(cf, node,
                                     "api_keys: \"sha256:\" needs 64 hex digits");
            }

            digest[i] = (u_char) (hi << 4 | lo);
        }

        return PT_OK;
    }

    if (node->scalar.len < 8) {
        return pt_conf_error(cf, node,
                             "api_keys: a key of fewer than 8 characters is too easy to guess");
    }

    if (!EVP_Digest(node->scalar.data, node->scalar.len, digest, NULL,
                    EVP_sha256(), NULL))
    {
        return pt_conf_error(cf, node, "api_keys: SHA-256 failed");
    }

    return PT_OK;
}


static int
pt_auth_consumer(pt_conf_t *cf, pt_auth_main_conf_t *amcf,
    pt_yaml_node_t *node)
{
    int                   rc;
    char                 *p;
    size_t                i, j, len;
    pt_str_t             *g, fp;
    pt_yaml_node_t       *v, *k;
    pt_auth_key_t        *key, *other;
    pt_auth_consumer_t   *c, **cp;

    static const char  *const names[] = {
        "name", "api_keys", "password", "groups", "cert_subject",
        "cert_fingerprint", NULL
    };

    if (pt_conf_expect(cf, node, PT_YAML_MAP, "a consumer") != PT_OK) {
        return PT_ERROR;
    }

    rc = pt_auth_check_keys(cf, node, "a consumer", names,
                            "name, api_keys, password, groups, "
                            "cert_subject, cert_fingerprint");

    c = pt_pcalloc(cf->pool, sizeof(pt_auth_consumer_t));
    if (c == NULL
        || pt_array_init(&c->groups, cf->pool, 2, sizeof(pt_str_t)) != PT_OK)
    {
        return PT_ERROR;
    }

    c->node = node;

    v = pt_yaml_map_get(node, "name");
    if (v == NULL) {
        return pt_conf_error(cf, node, "a consumer needs a name");
    }

    if (pt_auth_scalar(cf, v, "consumers: name", &c->name) != PT_OK) {
        return PT_ERROR;
    }

    for (i = 0; i < c->name.len; i++) {
        if ((u_char) c->name.data[i] < 0x21 || c->name.data[i] == ','
            || (u_char) c->name.data[i] == 0x7f)
        {
            return pt_conf_error(cf, v,
                                 "consumers: a name is printable, without spaces or commas");
        }
    }

    if (c->name.len == 0) {
        return pt_conf_error(cf, v, "consumers: an empty name");
    }

    cp = amcf->consumers.elts;
    for (i = 0; i < amcf->consumers.nelts; i++) {
        if (pt_str_equal(&cp[i]->name, &c->name)) {
            return pt_conf_error(cf, v,
                                 "consumer \"%s\" is defined twice (first at line %u)",
                                 c->name.data,
                                 cp[i]->node->line);
        }
    }

    v = pt_yaml_map_get(node, "password");
    if (v) {
        if (pt_auth_scalar(cf, v, "consumers: password", &c->password)
            != PT_OK)
        {
            return PT_ERROR;
        }

        if (crypt_checksalt(c->password.data) != CRYPT_SALT_OK) {
            rc = pt_conf_error(cf, v,
                               "consumers: password must be a crypt(3) hash of a current method (bcrypt $2b$, sha512-crypt $6$, yescrypt $y$)");
        }
    }

    v = pt_yaml_map_get(node, "groups");
    if (v && pt_auth_strings(cf, v, "consumers: groups", &c->groups)
             != PT_OK)
    {
        return PT_ERROR;
    }

    /* "a,b" once, for X-Consumer-Groups. */
    g = c->groups.elts;
    len = 0;
    for (i = 0; i < c->groups.nelts; i++) {
        len += g[i].len + 1;
    }

    p = pt_pnalloc(cf->pool, len + 1);
    if (p == NULL) {
        return PT_ERROR;
    }

    c->groups_text.data = p;
    for (i = 0; i < c->groups.nelts; i++) {
        if (i) {
            *p++ = ',';
        }
        p = pt_cpymem(p, g[i].data, g[i].len);
    }
    *p = '\0';
    c->groups_text.len = (size_t) (p - c->groups_text.data);

    v = pt_yaml_map_get(node, "cert_subject");
    if (v && pt_auth_scalar(cf, v, "consumers: cert_subject",
                            &c->cert_subject) != PT_OK)
    {
        return PT_ERROR;
    }

    v = pt_yaml_map_get(node, "cert_fingerprint");
    if (v) {
        if (pt_auth_scalar(cf, v, "consumers: cert_fingerprint", &fp)
            != PT_OK)
        {
            return PT_ERROR;
        }

        /* Accept "AB:CD:..." as openssl prints it; keep "abcd...". */
        p = pt_pnalloc(cf->pool, fp.len + 1);
        if (p == NULL) {
            return PT_ERROR;
        }

        c->cert_fingerprint.data = p;
        for (i = 0; i < fp.len; i++) {
            if (fp.data[i] == ':') {
                continue;
            }
            if (pt_hexval((unsigned char) fp.data[i]) < 0) {
                break;
            }
            *p++ = (char) (fp.data[i] | 0x20);
        }
        *p = '\0';
        c->cert_fingerprint.len = (size_t) (p - c->cert_fingerprint.data);

        if (i != fp.len || c->cert_fingerprint.len != 64) {
            rc = pt_conf_error(cf, v,
                               "consumers: cert_fingerprint is the SHA-256 of the certificate, 64 hex digits");
        }
    }

    v = pt_yaml_map_get(node, "api_keys");
    if (v) {
        if (v->type != PT_YAML_SEQ) {
            return pt_conf_error(cf, v, "consumers: api_keys is a list");
        }

        for (i = 0; i < v->n; i++) {
            k = v->items[i];

            if (pt_conf_expect(cf, k, PT_YAML_SCALAR, "an API key") != PT_OK)
            {
                return PT_ERROR;
            }

            key = pt_array_push(&amcf->keys);
            if (key == NULL) {
                return PT_ERROR;
            }

            key->consumer = c;

            if (pt_auth_key_digest(cf, k, key->digest) != PT_OK) {
                amcf->keys.nelts--;
                rc = PT_ERROR;
                continue;
            }

            other = amcf->keys.elts;
            for (j = 0; j + 1 < amcf->keys.nelts; j++) {
                if (memcmp(other[j].digest, key->digest, 32) == 0) {
                    rc = pt_conf_error(cf, k,
                                       "this API key is also consumer \"%s\"'s",
                                       other[j].consumer->name.data);
                    break;
                }
            }
        }
    }

    cp = pt_array_push(&amcf->consumers);
    if (cp == NULL) {
        return PT_ERROR;
    }

    *cp = c;

    return rc;
}


static int
pt_auth_set_consumers(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int     rc;
    size_t  i;

    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        if (pt_auth_consumer(cf, conf, node->items[i]) != PT_OK) {
            rc = PT_ERROR;
        }
    }

    return rc;
}


static void
pt_auth_keyset_cleanup(void *data)
{
    pt_jwt_keyset_free(data);
}


/* Read a whole key file (bounded) into the pool. */
static int
pt_auth_read_file(pt_conf_t *cf, pt_yaml_node_t *node, const pt_str_t *path,
    pt_str_t *out)
{
    int          fd;
    char        *buf;
    ssize_t      n;
    struct stat  st;

    fd = open(path->data, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return pt_conf_error(cf, node, "cannot open \"%s\": %s", path->data,
                             strerror(errno));
    }

    if (fstat(fd, &st) != 0 || st.st_size > PT_AUTH_KEY_FILE_MAX) {
        close(fd);
        return pt_conf_error(cf, node,
                             "\"%s\": not a readable file of at most 1 MiB",
                             path->data);
    }

    buf = pt_pnalloc(cf->pool, (size_t) st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return PT_ERROR;
    }

    n = read(fd, buf, (size_t) st.st_size);
    close(fd);

    if (n != st.st_size) {
        return pt_conf_error(cf, node, "cannot read \"%s\"", path->data);
    }

    buf[n] = '\0';
    out->data = buf;
    out->len = (size_t) n;

    return PT_OK;
}


static int
pt_auth_issuer_keys(pt_conf_t *cf, pt_auth_issuer_t *is, pt_yaml_node_t *v,
    int secret)
{
    char                 err[256];
    size_t               i;
    pt_str_t             text;
    pt_pool_cleanup_t   *cln;

    err[0] = '\0';
    pt_str_null(&text);

    if (secret) {
        if (v->scalar.len < 32) {
            return pt_conf_error(cf, v,
                                 "jwt_issuers: a secret of fewer than 32 bytes is too weak for HMAC");
        }

        is->keys = pt_jwt_keyset_secret((const u_char *) v->scalar.data,
                                        v->scalar.len, err, sizeof(err));
    } else {
        if (pt_conf_full_path(cf, &v->scalar, &is->keys_path) != PT_OK
            || pt_auth_read_file(cf, v, &is->keys_path, &text) != PT_OK)
        {
            return PT_ERROR;
        }

        for (i = 0; i < text.len && strchr(" \t\r\n", text.data[i]); i++) {
            /* void */
        }

        if (i < text.len && text.data[i] == '{') {
            is->keys = pt_jwt_keyset_jwks(text.data, text.len, err,
                                          sizeof(err));
        } else {
            is->keys = pt_jwt_keyset_pem(text.data, text.len, err,
                                         sizeof(err));
        }
    }

    if (is->keys == NULL) {
        return pt_conf_error(cf, v, "jwt_issuers: %s",
                             err[0] ? err : "no usable key");
    }

    cln = pt_pool_cleanup_add(cf->pool, pt_auth_keyset_cleanup, is->keys);
    if (cln == NULL) {
        pt_jwt_keyset_free(is->keys);
        is->keys = NULL;
        return PT_ERROR;
    }

    return PT_OK;
}


static int
pt_auth_issuer(pt_conf_t *cf, pt_auth_main_conf_t *amcf,
    pt_yaml_node_t *node)
{
    int                  rc, alg;
    size_t               i;
    pt_msec_t            ms;
    pt_array_t           algs;
    pt_str_t            *s;
    pt_yaml_node_t      *v, *keys, *secret;
    pt_auth_issuer_t    *is, **ip;

    static const char  *const names[] = {
        "name", "issuer", "audiences", "keys", "secret", "algorithms",
        "leeway", "consumer_claim", "groups_claim", "max_token_size",
        "keys_ca", "keys_refresh", "keys_retry", NULL
    };

    if (pt_conf_expect(cf, node, PT_YAML_MAP, "a JWT issuer") != PT_OK) {
        return PT_ERROR;
    }

    rc = pt_auth_check_keys(cf, node, "a JWT issuer", names,
                            "name, issuer, audiences, keys, secret, "
                            "algorithms, leeway, consumer_claim, "
                            "groups_claim, max_token_size, keys_ca, "
                            "keys_refresh, keys_retry");

    is = pt_pcalloc(cf->pool, sizeof(pt_auth_issuer_t));
    if (is == NULL) {
        return PT_ERROR;
    }

    is->node = node;
    is->max_token = 8192;
    pt_str_set(&is->consumer_claim, "sub");

    v = pt_yaml_map_get(node, "name");
    if (v == NULL) {
        return pt_conf_error(cf, node, "a JWT issuer needs a name");
    }

    if (pt_auth_scalar(cf, v, "jwt_issuers: name", &is->name) != PT_OK) {
        return PT_ERROR;
    }

    ip = amcf->issuers.elts;
    for (i = 0; i < amcf->issuers.nelts; i++) {
        if (pt_str_equal(&ip[i]->name, &is->name)) {
            return pt_conf_error(cf, v, "JWT issuer \"%s\" is defined twice",
                                 is->name.data);
        }
    }

    v = pt_yaml_map_get(node, "issuer");
    if (v && pt_auth_scalar(cf, v, "jwt_issuers: issuer", &is->issuer)
             != PT_OK)
    {
        return PT_ERROR;
    }

    v = pt_yaml_map_get(node, "audiences");
    if (v && pt_auth_strings(cf, v, "jwt_issuers: audiences",
                             &is->audiences) != PT_OK)
    {
        return PT_ERROR;
    }

    v = pt_yaml_map_get(node, "consumer_claim");
    if (v && pt_auth_scalar(cf, v, "jwt_issuers: consumer_claim",
                            &is->consumer_claim) != PT_OK)
    {
        return PT_ERROR;
    }

    v = pt_yaml_map_get(node, "groups_claim");
    if (v && pt_auth_scalar(cf, v, "jwt_issuers: groups_claim",
                            &is->groups_claim) != PT_OK)
    {
        return PT_ERROR;
    }

    v = pt_yaml_map_get(node, "leeway");
    if (v) {
        if (pt_conf_parse_msec(cf, v, &ms) != PT_OK) {
            return PT_ERROR;
        }
        is->leeway = (int64_t) (ms / 1000);
    }

    v = pt_yaml_map_get(node, "max_token_size");
    if (v) {
        if (pt_conf_parse_size(cf, v, &is->max_token) != PT_OK) {
            return PT_ERROR;
        }
        if (is->max_token < 256 || is->max_token > 65536) {
            rc = pt_conf_error(cf, v,
                               "jwt_issuers: max_token_size is from 256 to 64k");
        }
    }

    keys = pt_yaml_map_get(node, "keys");
    secret = pt_yaml_map_get(node, "secret");

    if ((keys == NULL) == (secret == NULL)) {
        return pt_conf_error(cf, node,
                             "a JWT issuer needs exactly one of keys (a JWKS or PEM file, or an https JWKS URL) and secret");
    }

    v = keys ? keys : secret;
    if (pt_conf_expect(cf, v, PT_YAML_SCALAR, "jwt_issuers: keys") != PT_OK) {
        return PT_ERROR;
    }

    /* A URL's keys come later, from the helper (pt_auth_jwks.c). */
    if (keys && pt_auth_jwks_is_url(&keys->scalar)) {
        if (pt_auth_jwks_parse(cf, is, node, keys) != PT_OK) {
            return PT_ERROR;
        }

    } else if (pt_auth_jwks_no_url(cf, node) != PT_OK
               || pt_auth_issuer_keys(cf, is, v, secret != NULL) != PT_OK)
    {
        return PT_ERROR;
    }

    /* Unless listed, every algorithm the keys can verify: a key only ever
     * verifies the algorithms of its own type (pt_jwt.h). */
    v = pt_yaml_map_get(node, "algorithms");
    if (v) {
        memset(&algs, 0, sizeof(algs));
        if (pt_auth_strings(cf, v, "jwt_issuers: algorithms", &algs)
            != PT_OK)
        {
            return PT_ERROR;
        }

        s = algs.elts;
        for (i = 0; i < algs.nelts; i++) {
            alg = pt_jwt_alg_parse(s[i].data, s[i].len);
            if (alg < 0) {
                rc = pt_conf_error(cf, v,
                                   "jwt_issuers: unknown algorithm \"%s\"",
                                   s[i].data);
                continue;
            }
            is->algs |= PT_JWT_ALG_BIT(alg);

            /* A JWKS URL is public: an HMAC key there is no secret. */
            if (is->jwks && pt_jwt_alg_key(alg) == PT_JWK_OCT) {
                rc = pt_conf_error(cf, v,
                                   "jwt_issuers: %s needs a secret; keys published at a URL are public",
                                   s[i].data);
            }
        }

    } else if (secret) {
        is->algs = PT_JWT_ALG_BIT(PT_JWT_HS256) | PT_JWT_ALG_BIT(PT_JWT_HS384)
                   | PT_JWT_ALG_BIT(PT_JWT_HS512);
    } else {
        for (alg = PT_JWT_RS256; alg < PT_JWT_NALGS; alg++) {
            is->algs |= PT_JWT_ALG_BIT(alg);
        }
    }

    is->policy.algs = is->algs;
    is->policy.issuer = is->issuer;
    is->policy.audiences = is->audiences.elts;
    is->policy.naudiences = is->audiences.nelts;
    is->policy.leeway = is->leeway;
    is->policy.max_len = is->max_token;

    ip = pt_array_push(&amcf->issuers);
    if (ip == NULL) {
        return PT_ERROR;
    }

    *ip = is;

    return rc;
}


static int
pt_auth_set_issuers(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int     rc;
    size_t  i;

    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        if (pt_auth_issuer(cf, conf, node->items[i]) != PT_OK) {
            rc = PT_ERROR;
        }
    }

    return rc;
}


static int
pt_auth_set_cache(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int64_t               n;
    pt_yaml_node_t       *v;
    pt_auth_main_conf_t  *amcf;

    static const char  *const names[] = { "ttl", "size", NULL };

    amcf = conf;

    if (pt_auth_check_keys(cf, node, "auth_cache", names, "ttl, size")
        != PT_OK)
    {
        return PT_ERROR;
    }

    v = pt_yaml_map_get(node, "ttl");
    if (v && pt_conf_parse_msec(cf, v, &amcf->cache_ttl) != PT_OK) {
        return PT_ERROR;
    }

    v = pt_yaml_map_get(node, "size");
    if (v) {
        if (pt_conf_parse_int(cf, v, "auth_cache: size", 16, 1000000, &n)
            != PT_OK)
        {
            return PT_ERROR;
        }
        amcf->cache_size = (pt_uint_t) n;
    }

    return PT_OK;
}


static int
pt_auth_set_methods(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    size_t                 i, j, m;
    pt_yaml_node_t        *v;
    pt_auth_route_conf_t  *acf;

    acf = conf;
    acf->node = node;

    if (node->n == 0) {
        return pt_conf_error(cf, node, "auth: methods is empty");
    }

    for (i = 0; i < node->n; i++) {
        v = node->items[i];

        if (pt_conf_expect(cf, v, PT_YAML_SCALAR, "auth: methods") != PT_OK) {
            return PT_ERROR;
        }

        for (m = 0; m < PT_AUTH_NMETHODS; m++) {
            if (strcmp(v->scalar.data, pt_auth_method_names[m]) == 0) {
                break;
            }
        }

        if (m == PT_AUTH_NMETHODS) {
            return pt_conf_error(cf, v,
                                 "auth: unknown method \"%s\" (jwt, api_key, basic, mtls, forward)",
                                 v->scalar.data);
        }

        for (j = 0; j < acf->nmethods; j++) {
            if (acf->methods[j] == m) {
                return pt_conf_error(cf, v,
                                     "auth: method \"%s\" is listed twice",
                                     v->scalar.data);
            }
        }

        acf->methods[acf->nmethods++] = (unsigned) m;
    }

    return PT_OK;
}


static int
pt_auth_set_issuer_name(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    pt_auth_route_conf_t  *acf;

    acf = conf;
    acf->issuer_name = node->scalar;
    acf->issuer_node = node;

    return PT_OK;
}


static int
pt_auth_set_api_key(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    pt_yaml_node_t        *v;
    pt_auth_route_conf_t  *acf;

    static const char  *const names[] = { "header", "query", NULL };

    acf = conf;

    if (pt_auth_check_keys(cf, node, "auth: api_key", names, "header, query")
        != PT_OK)
    {
        return PT_ERROR;
    }

    v = pt_yaml_map_get(node, "header");
    if (v) {
        if (pt_auth_scalar(cf, v, "api_key: header", &acf->key_header)
            != PT_OK)
        {
            return PT_ERROR;
        }
        if (!pt_http_is_token(&acf->key_header)) {
            return pt_conf_error(cf, v,
                                 "api_key: invalid header name \"%s\"",
                                 acf->key_header.data);
        }
    }

    v = pt_yaml_map_get(node, "query");
    if (v) {
        if (pt_auth_scalar(cf, v, "api_key: query", &acf->key_query)
            != PT_OK)
        {
            return PT_ERROR;
        }
        if (acf->key_query.len == 0
            || strpbrk(acf->key_query.data, "&=#% ") != NULL)
        {
            return pt_conf_error(cf, v,
                                 "api_key: invalid query parameter name \"%s\"",
                                 acf->key_query.data);
        }
    }

    if (acf->key_header.len == 0 && acf->key_query.len == 0) {
        return pt_conf_error(cf, node,
                             "auth: api_key needs a header or a query parameter");
    }

    return PT_OK;
}


static int
pt_auth_set_list(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    return pt_auth_strings(cf, node, cmd->name,
                           (pt_array_t *) ((char *) conf + cmd->offset));
}


static int
pt_auth_set_claims(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    size_t                 i;
    pt_yaml_node_t        *v;
    pt_auth_claim_rule_t  *rule;
    pt_auth_route_conf_t  *acf;

    acf = conf;

    if (pt_array_init(&acf->require_claims, cf->pool, node->n ? node->n : 1,
                      sizeof(pt_auth_claim_rule_t)) != PT_OK)
    {
        return PT_ERROR;
    }

    for (i = 0; i < node->n; i++) {
        v = node->pairs[i].value;

        if (pt_conf_expect(cf, v, PT_YAML_SCALAR, "auth: require_claims")
            != PT_OK)
        {
            return PT_ERROR;
        }

        rule = pt_array_push(&acf->require_claims);
        if (rule == NULL) {
            return PT_ERROR;
        }

        rule->name = node->pairs[i].key->scalar;
        rule->value = v->scalar;
    }

    return PT_OK;
}


static int
pt_auth_set_forward(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    pt_auth_route_conf_t  *acf;

    acf = conf;
    acf->forward = pt_auth_forward_parse(cf, node);

    return acf->forward ? PT_OK : PT_ERROR;
}


int
pt_auth_route_has(pt_auth_route_conf_t *acf, unsigned m)
{
    pt_uint_t  i;

    for (i = 0; i < acf->nmethods; i++) {
        if (acf->methods[i] == m) {
            return 1;
        }
    }

    return 0;
}


/* A route's auth, once every key of the config is read: the methods and
 * what each needs. */
static int
pt_auth_route_check(pt_conf_t *cf, pt_route_t *route,
    pt_auth_main_conf_t *amcf)
{
    size_t                 i;
    pt_yaml_node_t        *at;
    pt_auth_issuer_t     **ip;
    pt_auth_route_conf_t  *acf;

    acf = route->conf[pt_auth_module.index];
    if (acf == NULL) {
        return PT_OK;
    }

    at = acf->node ? acf->node : route->node;

    if (acf->nmethods == 0 && acf->forward) {
        acf->methods[acf->nmethods++] = PT_AUTH_FORWARD;
    }

    if (acf->nmethods == 0) {
        if (acf->issuer_node || acf->key_header.len || acf->key_query.len
            || acf->allow_groups.nelts || acf->require_claims.nelts
            || acf->realm.len || acf->keep_credentials != PT_CONF_UNSET)
        {
            return pt_conf_error(cf, acf->issuer_node ? acf->issuer_node
                                                      : route->node,
                                 "route \"%s\": auth needs methods",
                                 route->name.data);
        }

        return PT_OK;
    }

    acf->set = 1;

    if (acf->keep_credentials == PT_CONF_UNSET) {
        acf->keep_credentials = 0;
    }

    if (acf->realm.len == 0) {
        pt_str_set(&acf->realm, "portico");
    }

    if (acf->forward && pt_auth_forward_resolve(cf, acf->forward) != PT_OK) {
        return PT_ERROR;
    }

    if (pt_auth_route_has(acf, PT_AUTH_FORWARD) && acf->forward == NULL) {
        return pt_conf_error(cf, at,
                             "route \"%s\": auth method forward needs auth: forward",
                             route->name.data);
    }

    if (pt_auth_route_has(acf, PT_AUTH_API_KEY)
        && acf->key_header.len == 0 && acf->key_query.len == 0)
    {
        pt_str_set(&acf->key_header, "X-API-Key");
    }

    if (!pt_auth_route_has(acf, PT_AUTH_JWT)) {
        if (acf->issuer_node) {
            return pt_conf_error(cf, acf->issuer_node,
                                 "route \"%s\": jwt_issuer without the jwt method",
                                 route->name.data);
        }
        return PT_OK;
    }

    ip = amcf->issuers.elts;

    if (acf->issuer_node == NULL) {
        if (amcf->issuers.nelts != 1) {
            return pt_conf_error(cf, at,
                                 "route \"%s\": the jwt method needs jwt_issuer (%s)",
                                 route->name.data,
                                 amcf->issuers.nelts ? "there are several"
                                                     : "none is defined");
        }

        acf->issuer = ip[0];
        return PT_OK;
    }

    for (i = 0; i < amcf->issuers.nelts; i++) {
        if (pt_str_equal(&ip[i]->name, &acf->issuer_name)) {
            acf->issuer = ip[i];
            return PT_OK;
        }
    }

    return pt_conf_error(cf, acf->issuer_node,
                         "route \"%s\": no JWT issuer \"%s\" in jwt_issuers",
                         route->name.data,
                         acf->issuer_name.data);
}


int
pt_auth_postconfig_conf(pt_conf_t *cf)
{
    int                    rc;
    size_t                 i;
    pt_route_t           **routes;
    pt_auth_key_t         *key;
    pt_auth_consumer_t   **cp;
    pt_auth_main_conf_t   *amcf;
    pt_http_main_conf_t   *hmcf;
    pt_auth_route_conf_t  *acf;

    amcf = cf->cycle->conf[pt_auth_module.index];
    hmcf = pt_http_main_conf(cf->cycle);

    rc = PT_OK;
    routes = hmcf->routes.elts;

    for (i = 0; i < hmcf->routes.nelts; i++) {
        if (pt_auth_route_check(cf, routes[i], amcf) != PT_OK) {
            rc = PT_ERROR;
            continue;
        }

        acf = routes[i]->conf[pt_auth_module.index];
        if (acf && acf->set) {
            amcf->used = 1;
        }
    }

    if (pt_hash_init(&amcf->key_index, cf->pool, amcf->keys.nelts, 0)
        != PT_OK
        || pt_hash_init(&amcf->by_name, cf->pool, amcf->consumers.nelts, 0)
           != PT_OK)
    {
        return PT_ERROR;
    }

    key = amcf->keys.elts;
    for (i = 0; i < amcf->keys.nelts; i++) {
        if (pt_hash_add(&amcf->key_index, (const char *) key[i].digest, 32,
                        &key[i], NULL) == PT_ERROR)
        {
            return PT_ERROR;
        }
    }

    cp = amcf->consumers.elts;
    for (i = 0; i < amcf->consumers.nelts; i++) {
        if (pt_hash_add(&amcf->by_name, cp[i]->name.data, cp[i]->name.len,
                        cp[i], NULL) == PT_ERROR)
        {
            return PT_ERROR;
        }
    }

    return rc;
}
