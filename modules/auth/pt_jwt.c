/*
 * pt_jwt.c: compact JWS tokens (see pt_jwt.h): the form, the header, the
 * signature and the registered claims. Keys are built in pt_jwk.c.
 */

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "pt_jwt.h"


typedef struct {
    const char      *name;
    const char      *md;        /* digest; NULL for EdDSA (none)         */
    pt_jwk_type_e    key;
    unsigned         pss:1;
    size_t           ec_len;    /* JOSE R||S length for ECDSA, else 0    */
} pt_jwt_alg_t;


/* Indexed by pt_jwt_alg_e. */
static const pt_jwt_alg_t  pt_jwt_algs[PT_JWT_NALGS] = {
    { "HS256", "SHA256", PT_JWK_OCT, 0, 0 },
    { "HS384", "SHA384", PT_JWK_OCT, 0, 0 },
    { "HS512", "SHA512", PT_JWK_OCT, 0, 0 },
    { "RS256", "SHA256", PT_JWK_RSA, 0, 0 },
    { "RS384", "SHA384", PT_JWK_RSA, 0, 0 },
    { "RS512", "SHA512", PT_JWK_RSA, 0, 0 },
    { "PS256", "SHA256", PT_JWK_RSA, 1, 0 },
    { "PS384", "SHA384", PT_JWK_RSA, 1, 0 },
    { "PS512", "SHA512", PT_JWK_RSA, 1, 0 },
    { "ES256", "SHA256", PT_JWK_EC_P256, 0, 64 },
    { "ES384", "SHA384", PT_JWK_EC_P384, 0, 96 },
    { "EdDSA", NULL, PT_JWK_ED25519, 0, 0 },
};


static const char  *pt_jwt_errors[] = {
    "ok",
    "token too large",
    "malformed token",
    "algorithm not allowed",
    "unknown key id",
    "no key for the algorithm",
    "bad signature",
    "token expired",
    "token not yet valid",
    "wrong issuer",
    "wrong audience",
    "out of memory",
};


/* NumericDates and the leeway are clamped to this, so that adding the
 * leeway to any of them cannot overflow (RFC 7519 2 allows any JSON
 * number; a date beyond it is as good as never). */
#define PT_JWT_DATE_MAX    ((int64_t) 1 << 61)


static pt_jwt_rc_e pt_jwt_json(const u_char *p, size_t len, json_t **out);
static pt_jwt_rc_e pt_jwt_header(json_t *hdr, const pt_jwt_policy_t *pol,
    int *alg, const char **kid, size_t *kid_len);
static pt_jwt_rc_e pt_jwt_signature(const pt_jwt_keyset_t *ks, int alg,
    const char *kid, size_t kid_len, const char *in, size_t in_len,
    const u_char *sig, size_t sig_len);
static pt_jwt_rc_e pt_jwt_hmac(const pt_jwk_t *k, const pt_jwt_alg_t *a,
    const char *in, size_t in_len, const u_char *sig, size_t sig_len);
static pt_jwt_rc_e pt_jwt_pkey(const pt_jwk_t *k, const pt_jwt_alg_t *a,
    const char *in, size_t in_len, const u_char *sig, size_t sig_len);
static size_t pt_jwt_der_int(u_char *p, const u_char *v, size_t n);
static pt_jwt_rc_e pt_jwt_claims(json_t *claims, const pt_jwt_policy_t *pol,
    int64_t now, int64_t *exp);
static int pt_jwt_date(json_t *claims, const char *name, int up,
    int64_t *date);
static int pt_jwt_audience(json_t *aud, const pt_jwt_policy_t *pol);
static int pt_jwt_str_eq(json_t *v, const pt_str_t *s);
static int64_t pt_jwt_clamp(int64_t v, int64_t lo, int64_t hi);


int
pt_jwt_alg_parse(const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < PT_JWT_NALGS; i++) {
        if (strlen(pt_jwt_algs[i].name) == len
            && memcmp(pt_jwt_algs[i].name, name, len) == 0)
        {
            return (int) i;
        }
    }

    return -1;
}


const char *
pt_jwt_alg_name(pt_jwt_alg_e alg)
{
    return (unsigned) alg < PT_JWT_NALGS ? pt_jwt_algs[alg].name : "?";
}


pt_jwk_type_e
pt_jwt_alg_key(pt_jwt_alg_e alg)
{
    return pt_jwt_algs[alg].key;
}


const char *
pt_jwt_strerror(pt_jwt_rc_e rc)
{
    return (unsigned) rc < pt_nelems(pt_jwt_errors) ? pt_jwt_errors[rc]
                                                    : "unknown error";
}


pt_jwt_rc_e
pt_jwt_verify(const char *token, size_t len, const pt_jwt_keyset_t *ks,
    const pt_jwt_policy_t *pol, int64_t now, pt_jwt_t *out)
{
    int           alg;
    size_t        kid_len;
    u_char       *buf, *hp, *pp, *sp;
    ssize_t       hn, pn, sn;
    json_t       *hdr, *claims;
    int64_t       exp;
    const char   *d1, *d2, *end, *kid;
    pt_jwt_rc_e   rc;

    out->claims = NULL;
    out->exp = 0;
    out->alg = PT_JWT_HS256;

    if (pol->max_len != 0 && len > pol->max_len) {
        return PT_JWT_TOO_LARGE;
    }

    if (len == 0) {
        return PT_JWT_MALFORMED;
    }

    /* Exactly three parts; base64url has no '.', so a fourth part or a
     * JWE's five are caught by the decoding of the third. */
    end = token + len;
    d1 = memchr(token, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', end - d1 - 1) : NULL;

    if (d2 == NULL || d1 == token || d2 == d1 + 1) {
        return PT_JWT_MALFORMED;
    }

    /* One buffer for the three decoded parts, each with room for the
     * decoder's extra byte. */
    buf = OPENSSL_malloc(len / 4 * 3 + 9);
    if (buf == NULL) {
        return PT_JWT_NOMEM;
    }

    hp = buf;
    hn = pt_jwt_base64url_decode(hp, token, d1 - token);
    pp = hp + hn + 1;
    pn = hn < 0 ? -1 : pt_jwt_base64url_decode(pp, d1 + 1, d2 - d1 - 1);
    sp = pp + pn + 1;
    sn = pn < 0 ? -1 : pt_jwt_base64url_decode(sp, d2 + 1, end - d2 - 1);

    if (sn < 0) {
        rc = PT_JWT_MALFORMED;
        goto free_buf;
    }

    rc = pt_jwt_json(hp, hn, &hdr);
    if (rc != PT_JWT_OK) {
        goto free_buf;
    }

    rc = pt_jwt_header(hdr, pol, &alg, &kid, &kid_len);

    if (rc == PT_JWT_OK) {
        rc = pt_jwt_signature(ks, alg, kid, kid_len, token, d2 - token, sp,
                              sn);
    }

    json_decref(hdr);

    if (rc != PT_JWT_OK) {
        goto free_buf;
    }

    rc = pt_jwt_json(pp, pn, &claims);
    if (rc != PT_JWT_OK) {
        goto free_buf;
    }

    rc = pt_jwt_claims(claims, pol, now, &exp);
    if (rc != PT_JWT_OK) {
        json_decref(claims);
        goto free_buf;
    }

    out->claims = claims;
    out->exp = exp;
    out->alg = alg;

free_buf:

    OPENSSL_free(buf);

    return rc;
}


/* A header or a payload: a JSON object, every key once (two "alg" or two
 * "exp" would let two readers of one token see two different ones). */
static pt_jwt_rc_e
pt_jwt_json(const u_char *p, size_t len, json_t **out)
{
    json_t        *v;
    json_error_t   err;

    v = json_loadb((const char *) p, len, JSON_REJECT_DUPLICATES, &err);

    if (v == NULL) {
        return pt__jwt_json_nomem(&err) ? PT_JWT_NOMEM : PT_JWT_MALFORMED;
    }

    if (!json_is_object(v)) {
        json_decref(v);
        return PT_JWT_MALFORMED;
    }

    *out = v;

    return PT_JWT_OK;
}


static pt_jwt_rc_e
pt_jwt_header(json_t *hdr, const pt_jwt_policy_t *pol, int *alg,
    const char **kid, size_t *kid_len)
{
    int      a;
    json_t  *v;

    v = json_object_get(hdr, "alg");
    if (!json_is_string(v)) {
        return v == NULL ? PT_JWT_BAD_ALG : PT_JWT_MALFORMED;
    }

    a = pt_jwt_alg_parse(json_string_value(v), json_string_length(v));
    if (a < 0 || !(pol->algs & PT_JWT_ALG_BIT(a))) {
        return PT_JWT_BAD_ALG;
    }

    /* We understand no extension, so RFC 7515 4.1.11 says reject. */
    if (json_object_get(hdr, "crit") != NULL) {
        return PT_JWT_MALFORMED;
    }

    *kid = NULL;
    *kid_len = 0;

    v = json_object_get(hdr, "kid");
    if (v != NULL) {
        if (!json_is_string(v)) {
            return PT_JWT_MALFORMED;
        }

        *kid = json_string_value(v);
        *kid_len = json_string_length(v);
    }

    *alg = a;

    return PT_JWT_OK;
}


static pt_jwt_rc_e
pt_jwt_signature(const pt_jwt_keyset_t *ks, int alg, const char *kid,
    size_t kid_len, const char *in, size_t in_len, const u_char *sig,
    size_t sig_len)
{
    size_t              i, n;
    unsigned            named, fits;
    const pt_jwk_t     *k;
    pt_jwt_rc_e         rc;
    const pt_jwt_alg_t  *a;

    a = &pt_jwt_algs[alg];
    named = 0;
    fits = 0;
    n = ks ? ks->n : 0;

    for (i = 0; i < n; i++) {
        k = &ks->keys[i];

        /* The parser refuses "\u0000", so a kid has no NUL inside. */
        if (kid != NULL && k->kid != NULL
            && (strlen(k->kid) != kid_len
                || memcmp(k->kid, kid, kid_len) != 0))
        {
            continue;
        }

        named = 1;

        if (k->type != a->key || (k->alg >= 0 && k->alg != alg)) {
            continue;
        }

        fits = 1;

        rc = (a->key == PT_JWK_OCT)
             ? pt_jwt_hmac(k, a, in, in_len, sig, sig_len)
             : pt_jwt_pkey(k, a, in, in_len, sig, sig_len);

        if (rc != PT_JWT_BAD_SIGNATURE) {
            return rc;
        }
    }

    if (!named) {
        return kid != NULL ? PT_JWT_UNKNOWN_KID : PT_JWT_NO_KEY;
    }

    return fits ? PT_JWT_BAD_SIGNATURE : PT_JWT_NO_KEY;
}


static pt_jwt_rc_e
pt_jwt_hmac(const pt_jwk_t *k, const pt_jwt_alg_t *a, const char *in,
    size_t in_len, const u_char *sig, size_t sig_len)
{
    u_char  mac[EVP_MAX_MD_SIZE];
    size_t  mac_len;

    if (EVP_Q_mac(NULL, "HMAC", NULL, a->md, NULL, k->secret, k->secret_len,
                  (const u_char *) in, in_len, mac, sizeof(mac), &mac_len)
        == NULL)
    {
        /* Only resources can fail here: the digest is always there. */
        pt__jwt_ossl_nomem();
        return PT_JWT_NOMEM;
    }

    if (sig_len != mac_len || CRYPTO_memcmp(sig, mac, mac_len) != 0) {
        return PT_JWT_BAD_SIGNATURE;
    }

    return PT_JWT_OK;
}


static pt_jwt_rc_e
pt_jwt_pkey(const pt_jwk_t *k, const pt_jwt_alg_t *a, const char *in,
    size_t in_len, const u_char *sig, size_t sig_len)
{
    int            ok;
    size_t         half, n;
    u_char         der[2 + 2 * (3 + 48)];
    EVP_MD_CTX    *md;
    EVP_PKEY_CTX  *pctx;

    if (a->ec_len) {
        /* JWS carries r and s as fixed-width big-endian halves (RFC 7518
         * 3.4); EVP wants a DER SEQUENCE of two INTEGERs. Any other
         * length is refused, not padded. */
        if (sig_len != a->ec_len) {
            return PT_JWT_BAD_SIGNATURE;
        }

        half = sig_len / 2;
        n = pt_jwt_der_int(der + 2, sig, half);
        n += pt_jwt_der_int(der + 2 + n, sig + half, half);
        der[0] = 0x30;
        der[1] = (u_char) n;
        sig = der;
        sig_len = 2 + n;
    }

    /* Errors left by others would be taken for ours below. */
    if (ERR_peek_error() != 0) {
        ERR_clear_error();
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return PT_JWT_NOMEM;
    }

    ok = EVP_DigestVerifyInit_ex(md, &pctx, a->md, NULL, NULL, k->pkey, NULL);

    if (ok == 1 && a->key == PT_JWK_RSA) {
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, a->pss ? RSA_PKCS1_PSS_PADDING
                                                       : RSA_PKCS1_PADDING);
    }

    /* RFC 7518 3.5: the salt as long as the hash, MGF1 with that hash.
     * The verifier's default would accept any salt length. */
    if (ok == 1 && a->pss) {
        ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);

        if (ok == 1) {
            ok = EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, a->md, NULL);
        }
    }

    if (ok == 1) {
        ok = EVP_DigestVerify(md, sig, sig_len, (const u_char *) in, in_len);
    }

    EVP_MD_CTX_free(md);

    if (ok == 1) {
        return PT_JWT_OK;
    }

    /* A signature that does not verify leaves errors in the queue too;
     * only a failed allocation makes it anything but a bad signature. */
    return pt__jwt_ossl_nomem() ? PT_JWT_NOMEM : PT_JWT_BAD_SIGNATURE;
}


/* A DER INTEGER of the unsigned big-endian v[0..n) at p: minimal, with a
 * zero byte in front when the top bit is set. Returns its length. */
static size_t
pt_jwt_der_int(u_char *p, const u_char *v, size_t n)
{
    size_t  pad;

    while (n > 1 && v[0] == 0) {
        v++;
        n--;
    }

    pad = (v[0] & 0x80) ? 1 : 0;

    p[0] = 0x02;
    p[1] = (u_char) (n + pad);
    p[2] = 0;
    memcpy(p + 2 + pad, v, n);

    return 2 + pad + n;
}


static pt_jwt_rc_e
pt_jwt_claims(json_t *claims, const pt_jwt_policy_t *pol, int64_t now,
    int64_t *exp)
{
    int64_t  nbf, iat, leeway;
    json_t  *iss;

    /* Every type first, so that a bad "nbf" is not hidden by "exp". */
    if (pt_jwt_date(claims, "exp", 0, exp) != PT_OK
        || pt_jwt_date(claims, "nbf", 1, &nbf) != PT_OK
        || pt_jwt_date(claims, "iat", 1, &iat) != PT_OK)
    {
        return PT_JWT_MALFORMED;
    }

    now = pt_jwt_clamp(now, -PT_JWT_DATE_MAX, PT_JWT_DATE_MAX);
    leeway = pt_jwt_clamp(pol->leeway, 0, PT_JWT_DATE_MAX);

    if (json_object_get(claims, "exp") != NULL && now > *exp + leeway) {
        return PT_JWT_EXPIRED;
    }

    if (json_object_get(claims, "nbf") != NULL && now + leeway < nbf) {
        return PT_JWT_NOT_YET_VALID;
    }

    if (json_object_get(claims, "iat") != NULL && iat > now + leeway) {
        return PT_JWT_NOT_YET_VALID;
    }

    if (pol->issuer.len != 0) {
        iss = json_object_get(claims, "iss");

        if (!pt_jwt_str_eq(iss, &pol->issuer)) {
            return PT_JWT_BAD_ISSUER;
        }
    }

    if (pol->naudiences != 0
        && !pt_jwt_audience(json_object_get(claims, "aud"), pol))
    {
        return PT_JWT_BAD_AUDIENCE;
    }

    return PT_JWT_OK;
}


/* The NumericDate claims[name] as whole seconds, rounded down (up) for a
 * fraction, so that the integer comparisons with now give what the exact
 * ones would; 0 when absent. PT_ERROR when it is not a number. */
static int
pt_jwt_date(json_t *claims, const char *name, int up, int64_t *date)
{
    double    d;
    int64_t   t;
    json_t   *v;

    *date = 0;

    v = json_object_get(claims, name);
    if (v == NULL) {
        return PT_OK;
    }

    if (json_is_integer(v)) {
        t = json_integer_value(v);
        *date = pt_jwt_clamp(t, -PT_JWT_DATE_MAX, PT_JWT_DATE_MAX);
        return PT_OK;
    }

    if (!json_is_real(v)) {
        return PT_ERROR;
    }

    /* jansson refuses NaN and infinities, so the range check is enough
     * for the conversion to be defined. */
    d = json_real_value(v);

    if (d >= (double) PT_JWT_DATE_MAX) {
        t = PT_JWT_DATE_MAX;
    } else if (d <= (double) -PT_JWT_DATE_MAX) {
        t = -PT_JWT_DATE_MAX;
    } else {
        t = (int64_t) d;

        if (up && (double) t < d) {
            t++;
        } else if (!up && (double) t > d) {
            t--;
        }
    }

    *date = t;

    return PT_OK;
}


/* "aud" is one string or an array of them (RFC 7519 4.1.3); any of the
 * policy's audiences in it will do. Other members of an array are not
 * audiences and are passed over. */
static int
pt_jwt_audience(json_t *aud, const pt_jwt_policy_t *pol)
{
    size_t   i, j;
    json_t  *v;

    for (i = 0; i < pol->naudiences; i++) {
        if (json_is_string(aud)) {
            if (pt_jwt_str_eq(aud, &pol->audiences[i])) {
                return 1;
            }

            continue;
        }

        json_array_foreach(aud, j, v) {
            if (pt_jwt_str_eq(v, &pol->audiences[i])) {
                return 1;
            }
        }
    }

    return 0;
}


static int
pt_jwt_str_eq(json_t *v, const pt_str_t *s)
{
    return json_is_string(v) && json_string_length(v) == s->len
           && memcmp(json_string_value(v), s->data, s->len) == 0;
}


static int64_t
pt_jwt_clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}


static int
pt_jwt_b64_value(u_char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    return c == '-' ? 62 : (c == '_' ? 63 : -1);
}


ssize_t
pt_jwt_base64url_decode(u_char *dst, const char *src, size_t len)
{
    int        v;
    size_t     i, bits;
    uint32_t   acc;
    u_char    *p;

    /* One character left over carries 6 bits: not even one byte. */
    if (len % 4 == 1) {
        return -1;
    }

    p = dst;
    acc = 0;
    bits = 0;

    for (i = 0; i < len; i++) {
        v = pt_jwt_b64_value((u_char) src[i]);
        if (v < 0) {
            return -1;
        }

        acc = (acc << 6) | (uint32_t) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            *p++ = (u_char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }

    /* The unused low bits of the last character must be zero: otherwise
     * several texts decode to the same bytes, and a token could be
     * altered without touching its signature. */
    if (acc != 0) {
        return -1;
    }

    return p - dst;
}


int
pt__jwt_ossl_nomem(void)
{
    int            nomem;
    unsigned long  e;

    nomem = 0;

    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) {
            nomem = 1;
        }
    }

    return nomem;
}


/* jansson reports most failed allocations by leaving the error text
 * empty, not with json_error_out_of_memory; any real syntax error has a
 * text. */
int
pt__jwt_json_nomem(const json_error_t *err)
{
    return json_error_code(err) == json_error_out_of_memory
           || err->text[0] == '\0';
}
