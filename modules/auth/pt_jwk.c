/*
 * pt_jwk.c: the keys that verify tokens (see pt_jwt.h): JWKS documents
 * (RFC 7517, 7518 6, 8037), PEM public keys and certificates, and HMAC
 * secrets, all turned into pt_jwk_t.
 */

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pt_jwt.h"


/* Larger RSA keys only make every verification slower (OpenSSL refuses
 * them above 16384 bits anyway); SP 800-56B caps e at 256 bits, which
 * also bounds the cost of a hostile exponent. */
#define PT_JWK_RSA_MIN_BITS   2048
#define PT_JWK_RSA_MAX_BITS   16384
#define PT_JWK_RSA_MAX_EBITS  256

#define PT_JWK_WHY_LEN        96


static pt_jwt_keyset_t *pt_jwk_set_new(size_t n, char *err, size_t errlen);
static int pt_jwk_set_add(pt_jwt_keyset_t *ks, size_t *cap);
static int pt_jwk_from_json(pt_jwk_t *k, json_t *obj, char *why);
static int pt_jwk_usable(json_t *obj, int *alg, char *why);
static int pt_jwk_bytes(json_t *obj, const char *name, u_char **p,
    size_t *len, char *why);
static int pt_jwk_oct(pt_jwk_t *k, json_t *obj, char *why);
static int pt_jwk_rsa(pt_jwk_t *k, json_t *obj, char *why);
static int pt_jwk_ec(pt_jwk_t *k, json_t *obj, char *why);
static int pt_jwk_okp(pt_jwk_t *k, json_t *obj, char *why);
static int pt_jwk_fromdata(pt_jwk_t *k, const char *type,
    OSSL_PARAM_BLD *bld, char *why);
static int pt_jwk_pkey_type(pt_jwk_t *k, char *why);
static int pt_jwk_pem_block(pt_jwk_t *k, const char *name,
    const u_char *data, long len, char *why);
static void pt_jwk_clear(pt_jwk_t *k);
static void pt_jwk_error(char *err, size_t errlen, const char *fmt, ...);


pt_jwt_keyset_t *
pt_jwt_keyset_jwks(const char *json, size_t len, char *err, size_t errlen)
{
    int               rc;
    char              why[PT_JWK_WHY_LEN], first[PT_JWK_WHY_LEN + 32];
    size_t            i, n, skipped;
    json_t           *doc, *keys;
    json_error_t      jerr;
    pt_jwt_keyset_t  *ks;

    ERR_clear_error();

    doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        if (pt__jwt_json_nomem(&jerr)) {
            pt_jwk_error(err, errlen, "out of memory");
        } else {
            pt_jwk_error(err, errlen, "JWKS: line %d column %d: %s",
                         jerr.line, jerr.column, jerr.text);
        }

        return NULL;
    }

    ks = NULL;
    keys = json_object_get(doc, "keys");
    n = json_array_size(keys);

    if (!json_is_object(doc) || !json_is_array(keys)) {
        pt_jwk_error(err, errlen, "JWKS: not an object with a \"keys\" array");
        goto done;
    }

    if (n == 0) {
        pt_jwk_error(err, errlen, "JWKS: no keys");
        goto done;
    }

    ks = pt_jwk_set_new(n, err, errlen);
    if (ks == NULL) {
        goto done;
    }

    skipped = 0;
    first[0] = '\0';

    for (i = 0; i < n; i++) {
        rc = pt_jwk_from_json(&ks->keys[ks->n], json_array_get(keys, i), why);

        if (rc == PT_OK) {
            ks->n++;
            continue;
        }

        if (rc == PT_ERROR) {
            pt_jwk_error(err, errlen, "out of memory");
            goto failed;
        }

        if (skipped++ == 0) {
            snprintf(first, sizeof(first), "keys[%zu]: %s", i, why);
        }
    }

    if (ks->n == 0) {
        pt_jwk_error(err, errlen, "JWKS: no usable key (%s)", first);
        goto failed;
    }

    goto done;

failed:

    pt_jwt_keyset_free(ks);
    ks = NULL;

done:

    json_decref(doc);

    return ks;
}


pt_jwt_keyset_t *
pt_jwt_keyset_pem(const char *pem, size_t len, char *err, size_t errlen)
{
    int               rc;
    BIO              *bio;
    long              data_len;
    char              why[PT_JWK_WHY_LEN], first[PT_JWK_WHY_LEN];
    char             *name, *header;
    size_t            cap, block;
    u_char           *data;
    unsigned long     e;
    pt_jwt_keyset_t  *ks;

    if (len > INT_MAX) {
        pt_jwk_error(err, errlen, "PEM: too large");
        return NULL;
    }

    cap = 4;
    ks = pt_jwk_set_new(cap, err, errlen);
    if (ks == NULL) {
        return NULL;
    }

    ERR_clear_error();

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        pt_jwk_error(err, errlen, "out of memory");
        goto failed;
    }

    first[0] = '\0';
    block = 0;

    /* One generic read per block rather than PEM_read_bio_PUBKEY() and
     * PEM_read_bio_X509() in turn: each of those passes over the other's
     * blocks to find its own, so a file that mixes them would lose
     * some. */
    for ( ;; ) {
        if (!PEM_read_bio(bio, &name, &header, &data, &data_len)) {
            e = ERR_peek_last_error();

            if (ERR_GET_LIB(e) == ERR_LIB_PEM
                && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
            {
                ERR_clear_error();
                break;
            }

            if (pt__jwt_ossl_nomem()) {
                pt_jwk_error(err, errlen, "out of memory");
            } else {
                pt_jwk_error(err, errlen, "PEM: block %zu is damaged",
                             block + 1);
            }

            goto failed;
        }

        block++;
        rc = pt_jwk_set_add(ks, &cap);

        if (rc == PT_OK) {
            rc = pt_jwk_pem_block(&ks->keys[ks->n], name, data, data_len,
                                  why);
        } else {
            snprintf(why, sizeof(why), "out of memory");
        }

        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);

        if (rc == PT_OK) {
            ks->n++;

        } else if (rc == PT_DECLINED) {
            if (first[0] == '\0') {
                snprintf(first, sizeof(first), "%s", why);
            }

        } else {
            pt_jwk_error(err, errlen, "%s", why);
            goto failed;
        }
    }

    BIO_free(bio);

    if (ks->n == 0) {
        pt_jwk_error(err, errlen, "PEM: no usable public key%s%s%s",
                     first[0] ? " (" : "", first, first[0] ? ")" : "");
        pt_jwt_keyset_free(ks);
        return NULL;
    }

    return ks;

failed:

    BIO_free(bio);
    pt_jwt_keyset_free(ks);

    return NULL;
}


pt_jwt_keyset_t *
pt_jwt_keyset_secret(const u_char *secret, size_t len, char *err,
    size_t errlen)
{
    pt_jwk_t         *k;
    pt_jwt_keyset_t  *ks;

    if (len == 0) {
        pt_jwk_error(err, errlen, "the secret is empty");
        return NULL;
    }

    ks = pt_jwk_set_new(1, err, errlen);
    if (ks == NULL) {
        return NULL;
    }

    k = &ks->keys[0];
    k->alg = -1;
    k->secret = OPENSSL_memdup(secret, len);

    if (k->secret == NULL) {
        pt_jwk_error(err, errlen, "out of memory");
        pt_jwt_keyset_free(ks);
        return NULL;
    }

    k->secret_len = len;
    ks->n = 1;

    return ks;
}


void
pt_jwt_keyset_free(pt_jwt_keyset_t *ks)
{
    size_t  i;

    if (ks == NULL) {
        return;
    }

    for (i = 0; i < ks->n; i++) {
        pt_jwk_clear(&ks->keys[i]);
    }

    OPENSSL_free(ks->keys);
    OPENSSL_free(ks);
}


/* A set with room for n keys, none of them counted yet. */
static pt_jwt_keyset_t *
pt_jwk_set_new(size_t n, char *err, size_t errlen)
{
    pt_jwt_keyset_t  *ks;

    ks = OPENSSL_zalloc(sizeof(pt_jwt_keyset_t));

    if (ks != NULL) {
        ks->keys = OPENSSL_zalloc(n * sizeof(pt_jwk_t));

        if (ks->keys != NULL) {
            return ks;
        }

        OPENSSL_free(ks);
    }

    pt_jwk_error(err, errlen, "out of memory");

    return NULL;
}


/* Room for one more key at ks->keys[ks->n], cleared (no alg pin). */
static int
pt_jwk_set_add(pt_jwt_keyset_t *ks, size_t *cap)
{
    pt_jwk_t  *keys;

    if (ks->n == *cap) {
        keys = OPENSSL_realloc(ks->keys, 2 * *cap * sizeof(pt_jwk_t));
        if (keys == NULL) {
            return PT_ERROR;
        }

        ks->keys = keys;
        *cap *= 2;
    }

    memset(&ks->keys[ks->n], 0, sizeof(pt_jwk_t));
    ks->keys[ks->n].alg = -1;

    return PT_OK;
}


/* One member of "keys": PT_OK with k filled in, PT_DECLINED with the
 * reason in why (PT_JWK_WHY_LEN bytes) for a key we cannot or may not
 * use, PT_ERROR when memory ran out. k is left cleared unless PT_OK. */
static int
pt_jwk_from_json(pt_jwk_t *k, json_t *obj, char *why)
{
    int          rc, alg;
    json_t      *kid, *kty;
    const char  *t;

    memset(k, 0, sizeof(pt_jwk_t));
    k->alg = -1;

    if (!json_is_object(obj)) {
        snprintf(why, PT_JWK_WHY_LEN, "not an object");
        return PT_DECLINED;
    }

    rc = pt_jwk_usable(obj, &alg, why);
    if (rc != PT_OK) {
        return rc;
    }

    kid = json_object_get(obj, "kid");
    if (kid != NULL && !json_is_string(kid)) {
        snprintf(why, PT_JWK_WHY_LEN, "\"kid\" is not a string");
        return PT_DECLINED;
    }

    kty = json_object_get(obj, "kty");
    t = json_string_value(kty);

    if (t == NULL) {
        snprintf(why, PT_JWK_WHY_LEN, "no \"kty\"");
        return PT_DECLINED;
    }

    if (strcmp(t, "oct") == 0) {
        rc = pt_jwk_oct(k, obj, why);

    } else if (strcmp(t, "RSA") == 0) {
        rc = pt_jwk_rsa(k, obj, why);

    } else if (strcmp(t, "EC") == 0) {
        rc = pt_jwk_ec(k, obj, why);

    } else if (strcmp(t, "OKP") == 0) {
        rc = pt_jwk_okp(k, obj, why);

    } else {
        snprintf(why, PT_JWK_WHY_LEN, "unsupported \"kty\"");
        return PT_DECLINED;
    }

    if (rc != PT_OK) {
        goto failed;
    }

    if (alg >= 0 && pt_jwt_alg_key(alg) != k->type) {
        snprintf(why, PT_JWK_WHY_LEN, "\"alg\" %s is not for this key",
                 pt_jwt_alg_name(alg));
        rc = PT_DECLINED;
        goto failed;
    }

    k->alg = alg;

    if (kid != NULL) {
        k->kid = OPENSSL_strndup(json_string_value(kid),
                                 json_string_length(kid));
        if (k->kid == NULL) {
            rc = PT_ERROR;
            goto failed;
        }
    }

    return PT_OK;

failed:

    pt_jwk_clear(k);

    return rc;
}


/* "use", "key_ops" and "alg": whether the JWK may verify signatures, and
 * with which algorithm (-1: any of its type). */
static int
pt_jwk_usable(json_t *obj, int *alg, char *why)
{
    size_t   i;
    json_t  *v, *op;

    v = json_object_get(obj, "use");
    if (v != NULL
        && (!json_is_string(v) || strcmp(json_string_value(v), "sig") != 0))
    {
        snprintf(why, PT_JWK_WHY_LEN, "\"use\" is not \"sig\"");
        return PT_DECLINED;
    }

    v = json_object_get(obj, "key_ops");
    if (v != NULL) {
        json_array_foreach(v, i, op) {
            if (json_is_string(op)
                && strcmp(json_string_value(op), "verify") == 0)
            {
                break;
            }
        }

        if (!json_is_array(v) || i == json_array_size(v)) {
            snprintf(why, PT_JWK_WHY_LEN, "\"key_ops\" without \"verify\"");
            return PT_DECLINED;
        }
    }

    *alg = -1;

    v = json_object_get(obj, "alg");
    if (v != NULL) {
        *alg = json_is_string(v) ? pt_jwt_alg_parse(json_string_value(v),
                                                    json_string_length(v))
                                 : -1;
        if (*alg < 0) {
            snprintf(why, PT_JWK_WHY_LEN, "unsupported \"alg\"");
            return PT_DECLINED;
        }
    }

    return PT_OK;
}


/* The base64url member obj[name], decoded into a new buffer (*p, *len);
 * PT_DECLINED when it is missing, empty or not base64url. */
static int
pt_jwk_bytes(json_t *obj, const char *name, u_char **p, size_t *len,
    char *why)
{
    json_t   *v;
    size_t    n;
    ssize_t   got;

    v = json_object_get(obj, name);
    n = json_string_length(v);

    if (!json_is_string(v) || n == 0) {
        snprintf(why, PT_JWK_WHY_LEN, "no \"%s\"", name);
        return PT_DECLINED;
    }

    *p = OPENSSL_malloc(n / 4 * 3 + 3);
    if (*p == NULL) {
        return PT_ERROR;
    }

    got = pt_jwt_base64url_decode(*p, json_string_value(v), n);

    if (got <= 0) {
        OPENSSL_free(*p);
        *p = NULL;
        snprintf(why, PT_JWK_WHY_LEN, "\"%s\" is not base64url", name);
        return PT_DECLINED;
    }

    *len = got;

    return PT_OK;
}


static int
pt_jwk_oct(pt_jwk_t *k, json_t *obj, char *why)
{
    k->type = PT_JWK_OCT;

    return pt_jwk_bytes(obj, "k", &k->secret, &k->secret_len, why);
}


static int
pt_jwk_rsa(pt_jwk_t *k, json_t *obj, char *why)
{
    int              rc;
    BIGNUM          *n, *e;
    u_char          *nb, *eb;
    size_t           nlen, elen;
    OSSL_PARAM_BLD  *bld;

    k->type = PT_JWK_RSA;
    nb = NULL;
    eb = NULL;
    n = NULL;
    e = NULL;
    bld = NULL;

    rc = pt_jwk_bytes(obj, "n", &nb, &nlen, why);
    if (rc == PT_OK) {
        rc = pt_jwk_bytes(obj, "e", &eb, &elen, why);
    }

    if (rc != PT_OK) {
        goto done;
    }

    n = BN_bin2bn(nb, (int) pt_min(nlen, INT_MAX), NULL);
    e = BN_bin2bn(eb, (int) pt_min(elen, INT_MAX), NULL);
    bld = OSSL_PARAM_BLD_new();

    if (n == NULL || e == NULL || bld == NULL) {
        rc = PT_ERROR;
        goto done;
    }

    /* EVP_PKEY_fromdata() takes any numbers; these are the checks of
     * SP 800-56B's partial public key validation that matter here. */
    if (BN_num_bits(n) < PT_JWK_RSA_MIN_BITS
        || BN_num_bits(n) > PT_JWK_RSA_MAX_BITS || !BN_is_odd(n))
    {
        snprintf(why, PT_JWK_WHY_LEN, "RSA key of %d bits refused",
                 BN_num_bits(n));
        rc = PT_DECLINED;
        goto done;
    }

    if (!BN_is_odd(e) || BN_is_one(e)
        || BN_num_bits(e) > PT_JWK_RSA_MAX_EBITS)
    {
        snprintf(why, PT_JWK_WHY_LEN, "RSA exponent refused");
        rc = PT_DECLINED;
        goto done;
    }

    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
    {
        rc = PT_ERROR;
        goto done;
    }

    rc = pt_jwk_fromdata(k, "RSA", bld, why);

done:

    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    OPENSSL_free(nb);
    OPENSSL_free(eb);

    return rc;
}


static int
pt_jwk_ec(pt_jwk_t *k, json_t *obj, char *why)
{
    int              rc;
    u_char          *x, *y, point[1 + 2 * 48];
    size_t           xlen, ylen, flen;
    const char      *crv;
    OSSL_PARAM_BLD  *bld;

    crv = json_string_value(json_object_get(obj, "crv"));

    if (crv != NULL && strcmp(crv, "P-256") == 0) {
        k->type = PT_JWK_EC_P256;
        flen = 32;

    } else if (crv != NULL && strcmp(crv, "P-384") == 0) {
        k->type = PT_JWK_EC_P384;
        flen = 48;

    } else {
        snprintf(why, PT_JWK_WHY_LEN, "unsupported EC \"crv\"");
        return PT_DECLINED;
    }

    x = NULL;
    y = NULL;
    bld = NULL;

    rc = pt_jwk_bytes(obj, "x", &x, &xlen, why);
    if (rc == PT_OK) {
        rc = pt_jwk_bytes(obj, "y", &y, &ylen, why);
    }

    if (rc != PT_OK) {
        goto done;
    }

    /* RFC 7518 6.2.1.2: the coordinates are full width, never shortened. */
    if (xlen != flen || ylen != flen) {
        snprintf(why, PT_JWK_WHY_LEN, "EC coordinates of the wrong length");
        rc = PT_DECLINED;
        goto done;
    }

    point[0] = 0x04;
    memcpy(point + 1, x, flen);
    memcpy(point + 1 + flen, y, flen);

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                            flen == 32 ? "prime256v1"
                                                       : "secp384r1", 0)
        || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                             point, 1 + 2 * flen))
    {
        rc = PT_ERROR;
        goto done;
    }

    rc = pt_jwk_fromdata(k, "EC", bld, why);

done:

    OSSL_PARAM_BLD_free(bld);
    OPENSSL_free(x);
    OPENSSL_free(y);

    return rc;
}


static int
pt_jwk_okp(pt_jwk_t *k, json_t *obj, char *why)
{
    int              rc;
    u_char          *x;
    size_t           xlen;
    const char      *crv;
    OSSL_PARAM_BLD  *bld;

    crv = json_string_value(json_object_get(obj, "crv"));

    if (crv == NULL || strcmp(crv, "Ed25519") != 0) {
        snprintf(why, PT_JWK_WHY_LEN, "unsupported OKP \"crv\"");
        return PT_DECLINED;
    }

    k->type = PT_JWK_ED25519;
    bld = NULL;

    rc = pt_jwk_bytes(obj, "x", &x, &xlen, why);
    if (rc != PT_OK) {
        return rc;
    }

    if (xlen != 32) {
        snprintf(why, PT_JWK_WHY_LEN, "Ed25519 \"x\" of the wrong length");
        rc = PT_DECLINED;
        goto done;
    }

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, x,
                                             xlen))
    {
        rc = PT_ERROR;
        goto done;
    }

    rc = pt_jwk_fromdata(k, "ED25519", bld, why);

done:

    OSSL_PARAM_BLD_free(bld);
    OPENSSL_free(x);

    return rc;
}


/* k->pkey from the parameters in bld, a public key of that type; then the
 * same checks as a PEM key gets. */
static int
pt_jwk_fromdata(pt_jwk_t *k, const char *type, OSSL_PARAM_BLD *bld,
    char *why)
{
    int            rc;
    OSSL_PARAM    *params;
    EVP_PKEY_CTX  *ctx;

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (params == NULL || ctx == NULL) {
        rc = PT_ERROR;
        goto done;
    }

    if (EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &k->pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        k->pkey = NULL;

        if (pt__jwt_ossl_nomem()) {
            rc = PT_ERROR;
            goto done;
        }

        snprintf(why, PT_JWK_WHY_LEN, "OpenSSL refused the %s key", type);
        rc = PT_DECLINED;
        goto done;
    }

    rc = pt_jwk_pkey_type(k, why);

done:

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);

    return rc;
}


/* k->type from k->pkey, and whether we take it: RSA of a sane size, EC
 * on P-256 or P-384 with a point on the curve, Ed25519. */
static int
pt_jwk_pkey_type(pt_jwk_t *k, char *why)
{
    int            ok;
    char           group[32];
    EVP_PKEY_CTX  *ctx;

    if (EVP_PKEY_is_a(k->pkey, "RSA")) {
        k->type = PT_JWK_RSA;

        if (EVP_PKEY_get_bits(k->pkey) < PT_JWK_RSA_MIN_BITS
            || EVP_PKEY_get_bits(k->pkey) > PT_JWK_RSA_MAX_BITS)
        {
            snprintf(why, PT_JWK_WHY_LEN, "RSA key of %d bits refused",
                     EVP_PKEY_get_bits(k->pkey));
            return PT_DECLINED;
        }

        return PT_OK;
    }

    if (EVP_PKEY_is_a(k->pkey, "ED25519")) {
        k->type = PT_JWK_ED25519;
        return PT_OK;
    }

    if (!EVP_PKEY_is_a(k->pkey, "EC")) {
        snprintf(why, PT_JWK_WHY_LEN, "unsupported key type");
        return PT_DECLINED;
    }

    if (EVP_PKEY_get_group_name(k->pkey, group, sizeof(group), NULL) != 1) {
        group[0] = '\0';
    }

    if (strcmp(group, "prime256v1") == 0) {
        k->type = PT_JWK_EC_P256;

    } else if (strcmp(group, "secp384r1") == 0) {
        k->type = PT_JWK_EC_P384;

    } else {
        snprintf(why, PT_JWK_WHY_LEN, "unsupported EC curve");
        return PT_DECLINED;
    }

    /* Decoding a point already puts it on the curve; this says so
     * whatever the path the key came by. */
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (ctx == NULL) {
        return PT_ERROR;
    }

    ok = EVP_PKEY_public_check(ctx);
    EVP_PKEY_CTX_free(ctx);

    if (ok != 1) {
        if (pt__jwt_ossl_nomem()) {
            return PT_ERROR;
        }

        snprintf(why, PT_JWK_WHY_LEN, "EC point not on the curve");
        return PT_DECLINED;
    }

    return PT_OK;
}


/* One PEM block as a key: PT_OK, PT_DECLINED for a block that holds no
 * usable key (another kind of block, or a key of a kind we refuse),
 * PT_ERROR for a damaged block or memory, with the reason in why. */
static int
pt_jwk_pem_block(pt_jwk_t *k, const char *name, const u_char *data,
    long len, char *why)
{
    int             rc;
    X509           *x;
    const u_char   *p;

    p = data;

    if (strcmp(name, "PUBLIC KEY") == 0) {
        k->pkey = d2i_PUBKEY(NULL, &p, len);

    } else if (strcmp(name, "CERTIFICATE") == 0) {
        x = d2i_X509(NULL, &p, len);

        if (x != NULL) {
            k->pkey = X509_get0_pubkey(x);

            if (k->pkey != NULL && !EVP_PKEY_up_ref(k->pkey)) {
                k->pkey = NULL;
            }

            X509_free(x);
        }

    } else {
        snprintf(why, PT_JWK_WHY_LEN, "a \"%.40s\" block is not a key", name);
        return PT_DECLINED;
    }

    if (k->pkey == NULL || p != data + len) {
        snprintf(why, PT_JWK_WHY_LEN, "%s",
                 pt__jwt_ossl_nomem() ? "out of memory"
                                      : "PEM: a damaged key or certificate");
        pt_jwk_clear(k);
        return PT_ERROR;
    }

    rc = pt_jwk_pkey_type(k, why);

    if (rc != PT_OK) {
        if (rc == PT_ERROR) {
            snprintf(why, PT_JWK_WHY_LEN, "out of memory");
        }

        pt_jwk_clear(k);
    }

    return rc;
}


static void
pt_jwk_clear(pt_jwk_t *k)
{
    EVP_PKEY_free(k->pkey);
    OPENSSL_clear_free(k->secret, k->secret_len);
    OPENSSL_free(k->kid);

    memset(k, 0, sizeof(pt_jwk_t));
    k->alg = -1;
}


static void
pt_jwk_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  args;

    if (errlen == 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
}
