/*
 * test_jwt.c: JSON Web Tokens and keys (modules/auth/pt_jwt.c, pt_jwk.c).
 *
 * The keys are made here with EVP (RSA 2048 and 1024, two P-256, P-384,
 * Ed25519), the JWKS documents written from their exported parameters,
 * the PEM from the keys and a self-signed certificate, and every token
 * signed here, so that the library is checked against OpenSSL itself and
 * not against its own encoder. Allocation failures are injected through
 * OpenSSL's and jansson's allocator hooks, one allocation at a time.
 */

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <ctype.h>

#include "pt_core.h"
#include "pt_jwt.h"

#include "tap.h"


#define NOW          1700000000LL
#define ALL_ALGS     ((1u << PT_JWT_NALGS) - 1)

#define SIGN_DER     1           /* ECDSA: leave the signature in DER    */
#define SIGN_SALTMAX 2           /* PSS: the longest salt, not the hash's */


typedef struct {
    const char      *kid;
    EVP_PKEY        *pkey;
    const u_char    *secret;
    size_t           secret_len;
} tkey_t;


static tkey_t  hmac_k = { "hmac", NULL, (const u_char *) "0123456789abcdef"
                         "0123456789abcdef0123456789abcdef", 48 };
static tkey_t  rsa_k = { "rsa", NULL, NULL, 0 };
static tkey_t  small_k = { "small", NULL, NULL, 0 };
static tkey_t  p256_k = { "p256", NULL, NULL, 0 };
static tkey_t  p256b_k = { "p256b", NULL, NULL, 0 };
static tkey_t  p384_k = { "p384", NULL, NULL, 0 };
static tkey_t  ed_k = { "ed", NULL, NULL, 0 };

static char  *all_jwks;          /* every usable key above, and some not */
static char  *rsa_pem;           /* rsa_k's public key in PEM            */

static pt_jwt_policy_t  pol_all = { ALL_ALGS, { 0, NULL }, NULL, 0, 0,
                                    16384 };


/* Allocation failures: the allocation numbered fail_at (counted from 0
 * after arming) fails, and failed_in says whose it was. */
enum { IN_NONE = 0, IN_OURS, IN_JANSSON, IN_OPENSSL };

static long  fail_at = -1;
static long  n_allocs;
static int   failed_in;


static int
should_fail(int who)
{
    if (fail_at >= 0 && n_allocs++ == fail_at) {
        failed_in = who;
        return 1;
    }

    return 0;
}


static int
whose(const char *file)
{
    return (file != NULL && strstr(file, "modules/auth/pt_jw") != NULL)
           ? IN_OURS : IN_OPENSSL;
}


/* As CRYPTO_malloc() does, a zero size is NULL without an allocation. */
static void *
t_crypto_malloc(size_t n, const char *file, int line)
{
    if (n == 0 || should_fail(whose(file))) {
        return NULL;
    }

    return malloc(n);
}


static void *
t_crypto_realloc(void *p, size_t n, const char *file, int line)
{
    if (n == 0) {
        free(p);
        return NULL;
    }

    return should_fail(whose(file)) ? NULL : realloc(p, n);
}


static void
t_crypto_free(void *p, const char *file, int line)
{
    free(p);
}


static void *
t_json_malloc(size_t n)
{
    return should_fail(IN_JANSSON) ? NULL : malloc(n);
}


static void
t_json_free(void *p)
{
    free(p);
}


/* Rotating buffers for formatted text, enough for a JWKS document. */
static char *
fmt(const char *f, ...)
{
    static char  bufs[64][16384];
    static int   next;
    char        *b;
    va_list      args;

    b = bufs[next++ % 64];

    va_start(args, f);
    vsnprintf(b, sizeof(bufs[0]), f, args);
    va_end(args);

    return b;
}


static size_t
b64url(char *out, const u_char *in, size_t len)
{
    static const char  abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                               "qrstuvwxyz0123456789-_";
    size_t    i, n;
    uint32_t  v;

    for (i = 0, n = 0; i + 2 < len; i += 3) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        out[n++] = abc[v >> 18];
        out[n++] = abc[(v >> 12) & 63];
        out[n++] = abc[(v >> 6) & 63];
        out[n++] = abc[v & 63];
    }

    if (len - i == 1) {
        out[n++] = abc[in[i] >> 2];
        out[n++] = abc[(in[i] & 3) << 4];

    } else if (len - i == 2) {
        v = (uint32_t) in[i] << 8 | in[i + 1];
        out[n++] = abc[v >> 10];
        out[n++] = abc[(v >> 4) & 63];
        out[n++] = abc[(v << 2) & 63];
    }

    out[n] = '\0';

    return n;
}


/* base64url of a string, in a rotating buffer. */
static char *
b64s(const char *s)
{
    char  *b;

    b = fmt("%s", "");
    b64url(b, (const u_char *) s, strlen(s));

    return b;
}


/* A compact JWS over hdr and pay, signed with k for alg (which need not
 * be what hdr says). The caller frees it. */
static char *
sign(int alg, const tkey_t *k, const char *hdr, const char *pay, int flags)
{
    char                *tok;
    size_t               len, slen, half;
    u_char               sig[1024], raw[132];
    ECDSA_SIG           *es;
    EVP_MD_CTX          *ctx;
    const BIGNUM        *r, *s;
    const u_char        *p;
    EVP_PKEY_CTX        *pctx;
    const char          *md;
    static const char   *mds[] = { "SHA256", "SHA384", "SHA512" };

    md = (alg == PT_JWT_EDDSA) ? NULL
         : alg == PT_JWT_ES256 ? "SHA256"
         : alg == PT_JWT_ES384 ? "SHA384" : mds[alg % 3];

    tok = malloc(16384);
    len = b64url(tok, (const u_char *) hdr, strlen(hdr));
    tok[len++] = '.';
    len += b64url(tok + len, (const u_char *) pay, strlen(pay));

    if (alg <= PT_JWT_HS512) {
        EVP_Q_mac(NULL, "HMAC", NULL, md, NULL, k->secret, k->secret_len,
                  (u_char *) tok, len, sig, sizeof(sig), &slen);
        goto done;
    }

    ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, k->pkey, NULL);

    if (alg >= PT_JWT_PS256 && alg <= PT_JWT_PS512) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, (flags & SIGN_SALTMAX)
                                               ? RSA_PSS_SALTLEN_MAX
                                               : RSA_PSS_SALTLEN_DIGEST);
    }

    slen = sizeof(sig);
    EVP_DigestSign(ctx, sig, &slen, (u_char *) tok, len);
    EVP_MD_CTX_free(ctx);

    if ((alg == PT_JWT_ES256 || alg == PT_JWT_ES384)
        && !(flags & SIGN_DER))
    {
        half = (alg == PT_JWT_ES256) ? 32 : 48;
        p = sig;
        es = d2i_ECDSA_SIG(NULL, &p, slen);
        ECDSA_SIG_get0(es, &r, &s);
        BN_bn2binpad(r, raw, half);
        BN_bn2binpad(s, raw + half, half);
        ECDSA_SIG_free(es);
        memcpy(sig, raw, 2 * half);
        slen = 2 * half;
    }

done:

    tok[len++] = '.';
    b64url(tok + len, sig, slen);

    return tok;
}


static const char *
hdr(int alg, const tkey_t *k)
{
    return fmt("{\"alg\":\"%s\",\"kid\":\"%s\"}", pt_jwt_alg_name(alg),
               k->kid);
}


static const tkey_t *
key_for(int alg)
{
    switch (pt_jwt_alg_key(alg)) {
    case PT_JWK_OCT:
        return &hmac_k;
    case PT_JWK_RSA:
        return &rsa_k;
    case PT_JWK_EC_P256:
        return &p256_k;
    case PT_JWK_EC_P384:
        return &p384_k;
    default:
        return &ed_k;
    }
}


/* Verify tok (freed here) and check the result; on PT_JWT_OK the claims
 * are an object. */
static void
expect(char *tok, const pt_jwt_keyset_t *ks, const pt_jwt_policy_t *pol,
    int64_t now, pt_jwt_rc_e want, const char *what)
{
    pt_jwt_t     t;
    pt_jwt_rc_e  rc;

    memset(&t, 0x5a, sizeof(t));
    rc = pt_jwt_verify(tok, strlen(tok), ks, pol, now, &t);

    ok(rc == want && (rc == PT_JWT_OK ? json_is_object(t.claims)
                                      : t.claims == NULL),
       "%s: %s", what, pt_jwt_strerror(want));

    if (rc != want) {
        printf("#   got %s\n", pt_jwt_strerror(rc));
    }

    if (rc == PT_JWT_OK) {
        json_decref(t.claims);
    }

    free(tok);
}


/* A token with the claims pay, signed by hmac_k, checked by ks_hmac. */
static void
expect_claims(const pt_jwt_keyset_t *ks, const pt_jwt_policy_t *pol,
    int64_t now, const char *pay, pt_jwt_rc_e want, const char *what)
{
    expect(sign(PT_JWT_HS256, &hmac_k, hdr(PT_JWT_HS256, &hmac_k), pay, 0),
           ks, pol, now, want, what);
}


static EVP_PKEY *
keygen(const char *type, const char *curve, size_t bits)
{
    EVP_PKEY  *k;

    if (strcmp(type, "RSA") == 0) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    } else if (curve != NULL) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    } else {
        k = EVP_PKEY_Q_keygen(NULL, NULL, type);
    }

    if (k == NULL) {
        printf("Bail out! cannot make a %s key\n", type);
        exit(1);
    }

    return k;
}


static char *
bn_b64(EVP_PKEY *k, const char *param)
{
    int      n;
    char    *b;
    u_char   bin[2048];
    BIGNUM  *bn;

    bn = NULL;
    EVP_PKEY_get_bn_param(k, param, &bn);
    n = BN_bn2bin(bn, bin);
    BN_free(bn);

    b = fmt("%s", "");
    b64url(b, bin, n);

    return b;
}


/* The JWK of k, with extra members (",\"use\":\"sig\"..."). */
static char *
jwk(const tkey_t *k, const char *extra)
{
    char    x[128], y[128];
    u_char  pub[200];
    size_t  len, half;

    if (k->pkey == NULL) {
        b64url(x, k->secret, k->secret_len);
        return fmt("{\"kty\":\"oct\",\"kid\":\"%s\",\"k\":\"%s\"%s}", k->kid,
                   x, extra);
    }

    if (EVP_PKEY_is_a(k->pkey, "RSA")) {
        return fmt("{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\","
                   "\"e\":\"%s\"%s}", k->kid,
                   bn_b64(k->pkey, OSSL_PKEY_PARAM_RSA_N),
                   bn_b64(k->pkey, OSSL_PKEY_PARAM_RSA_E), extra);
    }

    EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                    sizeof(pub), &len);

    if (EVP_PKEY_is_a(k->pkey, "ED25519")) {
        b64url(x, pub, len);
        return fmt("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"%s\","
                   "\"x\":\"%s\"%s}", k->kid, x, extra);
    }

    /* An uncompressed point: 0x04 || x || y. */
    half = (len - 1) / 2;
    b64url(x, pub + 1, half);
    b64url(y, pub + 1 + half, half);

    return fmt("{\"kty\":\"EC\",\"crv\":\"%s\",\"kid\":\"%s\",\"x\":\"%s\","
               "\"y\":\"%s\"%s}", half == 32 ? "P-256" : "P-384", k->kid, x,
               y, extra);
}


static pt_jwt_keyset_t *
jwks(const char *doc)
{
    char              err[256];
    pt_jwt_keyset_t  *ks;

    ks = pt_jwt_keyset_jwks(doc, strlen(doc), err, sizeof(err));
    if (ks == NULL) {
        printf("# JWKS refused: %s\n", err);
    }

    return ks;
}


/* n bytes that a memory BIO holds, NUL-terminated (strndup() would look
 * for a NUL past them). */
static char *
copy(const char *p, size_t n)
{
    char  *s;

    s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';

    return s;
}


/* The PEM of k's public key; with cert, of a self-signed certificate. */
static char *
pem_of(EVP_PKEY *k, int cert)
{
    BIO        *bio;
    X509       *x;
    char       *p, *out;
    long        n;
    X509_NAME  *name;

    bio = BIO_new(BIO_s_mem());

    if (cert) {
        x = X509_new();
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, k);
        name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const u_char *) "jwt test", -1, -1, 0);
        X509_set_issuer_name(x, name);
        X509_sign(x, k, EVP_sha256());
        PEM_write_bio_X509(bio, x);
        X509_free(x);

    } else {
        PEM_write_bio_PUBKEY(bio, k);
    }

    n = BIO_get_mem_data(bio, &p);
    out = copy(p, n);
    BIO_free(bio);

    return out;
}


static void
test_base64url(void)
{
    u_char   in[70], out[80];
    char     enc[100];
    size_t   len, i, bad;
    ssize_t  n;

    is_int(pt_jwt_base64url_decode(out, "", 0), 0, "b64: empty");
    n = pt_jwt_base64url_decode(out, "QQ", 2);
    ok(n == 1 && out[0] == 'A', "b64: two characters, one byte");
    n = pt_jwt_base64url_decode(out, "QUI", 3);
    ok(n == 2 && memcmp(out, "AB", 2) == 0, "b64: three, two bytes");
    n = pt_jwt_base64url_decode(out, "QUJD", 4);
    ok(n == 3 && memcmp(out, "ABC", 3) == 0, "b64: four, three bytes");
    n = pt_jwt_base64url_decode(out, "-_-_", 4);
    ok(n == 3 && memcmp(out, "\xfb\xff\xbf", 3) == 0, "b64: '-' and '_'");

    is_int(pt_jwt_base64url_decode(out, "QQ==", 4), -1, "b64: padding");
    is_int(pt_jwt_base64url_decode(out, "QQ=", 3), -1, "b64: one pad");
    is_int(pt_jwt_base64url_decode(out, "+/+/", 4), -1, "b64: '+' '/'");
    is_int(pt_jwt_base64url_decode(out, "QU+D", 4), -1, "b64: a '+'");
    is_int(pt_jwt_base64url_decode(out, "QUJDR", 5), -1,
           "b64: impossible length (4n + 1)");
    is_int(pt_jwt_base64url_decode(out, "Q", 1), -1, "b64: one character");
    is_int(pt_jwt_base64url_decode(out, "QR", 2), -1,
           "b64: non-zero unused bits");
    n = pt_jwt_base64url_decode(out, "QUE", 3);
    ok(n == 2 && memcmp(out, "AA", 2) == 0, "b64: zero unused bits");
    is_int(pt_jwt_base64url_decode(out, "QUJ", 3), -1,
           "b64: non-zero unused bits after two bytes");
    is_int(pt_jwt_base64url_decode(out, "QU D", 4), -1, "b64: a space");
    is_int(pt_jwt_base64url_decode(out, "QU\0D", 4), -1, "b64: a NUL");
    is_int(pt_jwt_base64url_decode(out, "QUJD\n", 5), -1, "b64: newline");
    is_int(pt_jwt_base64url_decode(out, "QUJ\xc3", 4), -1,
           "b64: a high byte");

    /* Round trips of every length and byte value. */
    bad = 0;

    for (len = 0; len < sizeof(in); len++) {
        for (i = 0; i < len; i++) {
            in[i] = (u_char) (len * 37 + i * 101 + 255 * (i & 1));
        }

        b64url(enc, in, len);
        memset(out, 0xee, sizeof(out));
        n = pt_jwt_base64url_decode(out, enc, strlen(enc));

        if (n != (ssize_t) len || memcmp(in, out, len) != 0
            || out[len] != 0xee)
        {
            bad++;
        }
    }

    is_int(bad, 0, "b64: 70 round trips, nothing written past the end");
}


static void
test_names(void)
{
    int  i, bad;

    is_int(pt_jwt_alg_parse("RS256", 5), PT_JWT_RS256, "alg RS256");
    is_int(pt_jwt_alg_parse("EdDSA", 5), PT_JWT_EDDSA, "alg EdDSA");
    is_int(pt_jwt_alg_parse("none", 4), -1, "alg none is no algorithm");
    is_int(pt_jwt_alg_parse("NONE", 4), -1, "alg NONE neither");
    is_int(pt_jwt_alg_parse("rs256", 5), -1, "names are case-sensitive");
    is_int(pt_jwt_alg_parse("RS2560", 6), -1, "a longer name");
    is_int(pt_jwt_alg_parse("RS25", 4), -1, "a prefix");
    is_int(pt_jwt_alg_parse("ES512", 5), -1, "ES512 is not supported");

    bad = 0;

    for (i = 0; i < PT_JWT_NALGS; i++) {
        if (pt_jwt_alg_parse(pt_jwt_alg_name(i), strlen(pt_jwt_alg_name(i)))
            != i)
        {
            bad++;
        }
    }

    is_int(bad, 0, "every name parses back to its algorithm");
    is_int(pt_jwt_alg_key(PT_JWT_HS384), PT_JWK_OCT, "HS384 needs oct");
    is_int(pt_jwt_alg_key(PT_JWT_PS512), PT_JWK_RSA, "PS512 needs RSA");
    is_int(pt_jwt_alg_key(PT_JWT_ES384), PT_JWK_EC_P384, "ES384 P-384");
    is_int(pt_jwt_alg_key(PT_JWT_EDDSA), PT_JWK_ED25519, "EdDSA Ed25519");

    bad = 0;

    for (i = 0; i <= PT_JWT_NOMEM; i++) {
        if (strlen(pt_jwt_strerror(i)) == 0
            || (i > 0 && strcmp(pt_jwt_strerror(i), pt_jwt_strerror(i - 1))
                         == 0))
        {
            bad++;
        }
    }

    is_int(bad, 0, "every result has a reason of its own");
    ok(strlen(pt_jwt_strerror(99)) > 0, "and an unknown one too");
}


static void
test_algorithms(pt_jwt_keyset_t *ks)
{
    int           alg;
    char         *tok, *p;
    pt_jwt_t      t;
    pt_jwt_rc_e   rc;

    for (alg = 0; alg < PT_JWT_NALGS; alg++) {
        tok = sign(alg, key_for(alg), hdr(alg, key_for(alg)),
                   "{\"sub\":\"u1\",\"exp\":1700000100}", 0);
        rc = pt_jwt_verify(tok, strlen(tok), ks, &pol_all, NOW, &t);

        ok(rc == PT_JWT_OK && t.alg == (pt_jwt_alg_e) alg
           && t.exp == 1700000100
           && strcmp(json_string_value(json_object_get(t.claims, "sub")),
                     "u1") == 0,
           "%s verifies, with its claims", pt_jwt_alg_name(alg));

        if (rc != PT_JWT_OK) {
            printf("#   got %s\n", pt_jwt_strerror(rc));
        }

        json_decref(t.claims);

        /* One letter of the signed text in the other case, away from
         * the ends of the parts (whose last character has rules). */
        for (p = tok + strlen(tok) / 3; !isalpha((u_char) p[0])
                                        || !isalnum((u_char) p[1]); p++)
        {
            /* void */
        }

        *p ^= 0x20;
        expect(tok, ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
               fmt("%s, one bit flipped", pt_jwt_alg_name(alg)));
    }
}


static void
test_signatures(pt_jwt_keyset_t *ks)
{
    char  *tok, *dot;
    char   cut[16384];

    expect(sign(PT_JWT_ES256, &p256_k, hdr(PT_JWT_ES256, &p256_k), "{}",
                SIGN_DER), ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "ES256 with a DER signature");
    expect(sign(PT_JWT_ES384, &p384_k, hdr(PT_JWT_ES384, &p384_k), "{}",
                SIGN_DER), ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "ES384 with a DER signature");

    /* R||S one byte short: the last 4 characters hold 3 bytes. */
    tok = sign(PT_JWT_ES256, &p256_k, hdr(PT_JWT_ES256, &p256_k), "{}", 0);
    snprintf(cut, sizeof(cut), "%.*s", (int) strlen(tok) - 2, tok);
    expect(strdup(cut), ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "ES256 with a 63-byte signature");
    snprintf(cut, sizeof(cut), "%sA", tok);
    expect(strdup(cut), ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "ES256 with a 65-byte signature");

    /* 86 'A's: 64 zero bytes. */
    dot = strrchr(tok, '.');
    memset(dot + 1, 'A', 86);
    dot[87] = '\0';
    expect(tok, ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "ES256 with r = s = 0");
    expect(strdup(cut), ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "ES256 with r = s = 0");

    expect(sign(PT_JWT_PS256, &rsa_k, hdr(PT_JWT_PS256, &rsa_k), "{}",
                SIGN_SALTMAX), ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "PS256 with a salt longer than the hash");
    expect(sign(PT_JWT_RS256, &rsa_k, hdr(PT_JWT_PS256, &rsa_k), "{}", 0),
           ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "an RS256 signature called PS256");
    expect(sign(PT_JWT_RS384, &rsa_k, hdr(PT_JWT_RS256, &rsa_k), "{}", 0),
           ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "an RS384 signature called RS256");
    expect(sign(PT_JWT_HS512, &hmac_k, hdr(PT_JWT_HS256, &hmac_k), "{}", 0),
           ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "an HS512 MAC called HS256");

    /* The signature cut off entirely, then empty. */
    tok = sign(PT_JWT_HS256, &hmac_k, hdr(PT_JWT_HS256, &hmac_k), "{}", 0);
    *(strrchr(tok, '.') + 1) = '\0';
    expect(tok, ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "HS256 with an empty signature");
}


static void
test_kids(pt_jwt_keyset_t *ks)
{
    char  *pay;

    pay = "{\"sub\":\"k\"}";

    expect(sign(PT_JWT_ES256, &p256b_k, "{\"alg\":\"ES256\"}", pay, 0), ks,
           &pol_all, NOW, PT_JWT_OK,
           "no kid: tried against both P-256 keys, the second fits");
    expect(sign(PT_JWT_ES256, &p256_k, "{\"alg\":\"ES256\"}", pay, 0), ks,
           &pol_all, NOW, PT_JWT_OK, "no kid: the first fits too");
    expect(sign(PT_JWT_RS512, &rsa_k, "{\"alg\":\"RS512\"}", pay, 0), ks,
           &pol_all, NOW, PT_JWT_OK, "no kid: RSA");
    expect(sign(PT_JWT_ES256, &p256b_k, hdr(PT_JWT_ES256, &p256b_k), pay, 0),
           ks, &pol_all, NOW, PT_JWT_OK, "kid p256b: its key");
    expect(sign(PT_JWT_ES256, &p256b_k, hdr(PT_JWT_ES256, &p256_k), pay, 0),
           ks, &pol_all, NOW, PT_JWT_BAD_SIGNATURE,
           "kid p256 names one key: the other is not tried");
    expect(sign(PT_JWT_ES256, &p256_k,
                "{\"alg\":\"ES256\",\"kid\":\"nope\"}", pay, 0),
           ks, &pol_all, NOW, PT_JWT_UNKNOWN_KID, "an unknown kid");
    expect(sign(PT_JWT_ES256, &p256_k, "{\"alg\":\"ES256\",\"kid\":\"\"}",
                pay, 0), ks, &pol_all, NOW, PT_JWT_UNKNOWN_KID,
           "an empty kid");
    expect(sign(PT_JWT_ES256, &p256_k,
                "{\"alg\":\"ES256\",\"kid\":\"p256 \"}", pay, 0),
           ks, &pol_all, NOW, PT_JWT_UNKNOWN_KID, "a kid with one more byte");
    expect(sign(PT_JWT_ES256, &p256_k, "{\"alg\":\"ES256\",\"kid\":\"p25\"}",
                pay, 0), ks, &pol_all, NOW, PT_JWT_UNKNOWN_KID,
           "a kid one byte short");
    expect(sign(PT_JWT_ES256, &p256_k, "{\"alg\":\"ES256\",\"kid\":\"rsa\"}",
                pay, 0), ks, &pol_all, NOW, PT_JWT_NO_KEY,
           "the kid of a key of another type");
    expect(sign(PT_JWT_ES256, &p256_k, "{\"alg\":\"ES256\",\"kid\":256}",
                pay, 0), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "a kid that is not a string");
    expect(sign(PT_JWT_ES384, &p384_k, "{\"alg\":\"ES384\"}", pay, 0), NULL,
           &pol_all, NOW, PT_JWT_NO_KEY, "no key set at all");
}


static void
test_confusion(pt_jwt_keyset_t *ks)
{
    char              err[256];
    tkey_t             pem_secret;
    pt_jwt_keyset_t  *pem_ks, *secret_ks;

    pem_secret.kid = "rsa";
    pem_secret.pkey = NULL;
    pem_secret.secret = (const u_char *) rsa_pem;
    pem_secret.secret_len = strlen(rsa_pem);

    pem_ks = pt_jwt_keyset_pem(rsa_pem, strlen(rsa_pem), err, sizeof(err));
    secret_ks = pt_jwt_keyset_secret((const u_char *) rsa_pem,
                                     strlen(rsa_pem), err, sizeof(err));

    ok(pem_ks != NULL && secret_ks != NULL, "PEM and secret key sets");

    expect(sign(PT_JWT_HS256, &pem_secret, hdr(PT_JWT_HS256, &rsa_k), "{}",
                0), ks, &pol_all, NOW, PT_JWT_NO_KEY,
           "HS256 keyed with the RSA key's PEM, against the JWKS");
    expect(sign(PT_JWT_HS256, &pem_secret, "{\"alg\":\"HS256\"}", "{}", 0),
           pem_ks, &pol_all, NOW, PT_JWT_NO_KEY,
           "HS256 keyed with the PEM, against the PEM key");
    expect(sign(PT_JWT_HS512, &pem_secret, "{\"alg\":\"HS512\"}", "{}", 0),
           pem_ks, &pol_all, NOW, PT_JWT_NO_KEY, "HS512 the same");
    expect(sign(PT_JWT_RS256, &rsa_k, "{\"alg\":\"RS256\"}", "{}", 0),
           secret_ks, &pol_all, NOW, PT_JWT_NO_KEY,
           "RS256 against a secret that is the PEM text");
    expect(sign(PT_JWT_RS256, &rsa_k, "{\"alg\":\"RS256\"}", "{}", 0),
           pem_ks, &pol_all, NOW, PT_JWT_OK, "while the PEM key verifies it");
    expect(sign(PT_JWT_ES256, &p256_k, hdr(PT_JWT_ES256, &hmac_k), "{}", 0),
           ks, &pol_all, NOW, PT_JWT_NO_KEY,
           "ES256 naming the HMAC key");
    expect(sign(PT_JWT_EDDSA, &ed_k, hdr(PT_JWT_EDDSA, &p256_k), "{}", 0),
           ks, &pol_all, NOW, PT_JWT_NO_KEY, "EdDSA naming a P-256 key");
    expect(sign(PT_JWT_ES384, &p384_k, hdr(PT_JWT_ES384, &p256_k), "{}", 0),
           ks, &pol_all, NOW, PT_JWT_NO_KEY, "ES384 naming a P-256 key");

    pt_jwt_keyset_free(pem_ks);
    pt_jwt_keyset_free(secret_ks);
}


static void
test_algs_refused(pt_jwt_keyset_t *ks)
{
    static const char  *nones[] = { "none", "None", "NONE", "nOnE" };
    size_t              i;
    pt_jwt_policy_t     pol;
    char               *tok;

    for (i = 0; i < pt_nelems(nones); i++) {
        tok = strdup(fmt("%s.%s.", b64s(fmt("{\"alg\":\"%s\"}", nones[i])),
                         b64s("{\"sub\":\"admin\"}")));
        expect(tok, ks, &pol_all, NOW, PT_JWT_BAD_ALG,
               fmt("alg \"%s\", no signature", nones[i]));
    }

    expect(sign(PT_JWT_HS256, &hmac_k, "{\"alg\":\"none\",\"kid\":\"hmac\"}",
                "{}", 0), ks, &pol_all, NOW, PT_JWT_BAD_ALG,
           "alg none with an HS256 signature");
    expect(sign(PT_JWT_HS256, &hmac_k, "{\"alg\":\"hs256\"}", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_BAD_ALG, "alg in lower case");
    expect(sign(PT_JWT_HS256, &hmac_k, "{\"alg\":\"HS1\"}", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_BAD_ALG, "an unknown alg");
    expect(sign(PT_JWT_HS256, &hmac_k, "{\"kid\":\"hmac\"}", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_BAD_ALG, "no alg");
    expect(sign(PT_JWT_HS256, &hmac_k, "{\"alg\":256}", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_MALFORMED, "an alg that is not a string");
    expect(sign(PT_JWT_HS256, &hmac_k, "{\"alg\":\"HS256\\u0000\"}", "{}",
                0), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "an alg with a NUL in it");

    pol = pol_all;
    pol.algs = PT_JWT_ALG_BIT(PT_JWT_RS256) | PT_JWT_ALG_BIT(PT_JWT_ES384);

    expect(sign(PT_JWT_ES256, &p256_k, hdr(PT_JWT_ES256, &p256_k), "{}", 0),
           ks, &pol, NOW, PT_JWT_BAD_ALG, "ES256 outside the policy");
    expect(sign(PT_JWT_HS256, &hmac_k, hdr(PT_JWT_HS256, &hmac_k), "{}", 0),
           ks, &pol, NOW, PT_JWT_BAD_ALG, "HS256 outside the policy");
    expect(sign(PT_JWT_ES384, &p384_k, hdr(PT_JWT_ES384, &p384_k), "{}", 0),
           ks, &pol, NOW, PT_JWT_OK, "ES384 inside it");

    pol.algs = 0;
    expect(sign(PT_JWT_ES384, &p384_k, hdr(PT_JWT_ES384, &p384_k), "{}", 0),
           ks, &pol, NOW, PT_JWT_BAD_ALG, "an empty policy takes nothing");
}


static void
test_pins(void)
{
    pt_jwt_keyset_t  *ks;

    ks = jwks(fmt("{\"keys\":[%s,%s]}", jwk(&rsa_k, ",\"alg\":\"PS384\""),
                  jwk(&hmac_k, ",\"alg\":\"HS512\"")));

    ok(ks != NULL && ks->n == 2 && ks->keys[0].alg == PT_JWT_PS384
       && ks->keys[1].alg == PT_JWT_HS512, "keys pinned by \"alg\"");

    expect(sign(PT_JWT_PS384, &rsa_k, hdr(PT_JWT_PS384, &rsa_k), "{}", 0),
           ks, &pol_all, NOW, PT_JWT_OK, "PS384 with the PS384 key");
    expect(sign(PT_JWT_RS384, &rsa_k, hdr(PT_JWT_RS384, &rsa_k), "{}", 0),
           ks, &pol_all, NOW, PT_JWT_NO_KEY, "RS384 with the PS384 key");
    expect(sign(PT_JWT_PS256, &rsa_k, "{\"alg\":\"PS256\"}", "{}", 0),
           ks, &pol_all, NOW, PT_JWT_NO_KEY, "PS256 without kid: no key");
    expect(sign(PT_JWT_HS256, &hmac_k, hdr(PT_JWT_HS256, &hmac_k), "{}", 0),
           ks, &pol_all, NOW, PT_JWT_NO_KEY, "HS256 with the HS512 key");
    expect(sign(PT_JWT_HS512, &hmac_k, hdr(PT_JWT_HS512, &hmac_k), "{}", 0),
           ks, &pol_all, NOW, PT_JWT_OK, "HS512 with it");

    pt_jwt_keyset_free(ks);
}


static char *
raw(const char *h, const char *p, const char *s)
{
    return strdup(fmt("%s.%s.%s", h, p, s));
}


static void
test_malformed(pt_jwt_keyset_t *ks)
{
    char             *good, *h, *p, *s, *dot;
    char              big[20000];
    size_t            len;
    pt_jwt_policy_t   pol;

    good = sign(PT_JWT_HS256, &hmac_k, hdr(PT_JWT_HS256, &hmac_k), "{}", 0);
    h = strdup(good);
    dot = strchr(h, '.');
    *dot = '\0';
    p = dot + 1;
    dot = strchr(p, '.');
    *dot = '\0';
    s = dot + 1;

    expect(strdup(good), ks, &pol_all, NOW, PT_JWT_OK, "the good token");
    expect(strdup(fmt("%s.%s", h, p)), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "two parts");
    expect(strdup(fmt("%s.%s.%s.%s", h, p, s, s)), ks, &pol_all, NOW,
           PT_JWT_MALFORMED, "four parts");
    expect(strdup(fmt("%s.%s.%s.%s.%s", h, p, s, s, s)), ks, &pol_all, NOW,
           PT_JWT_MALFORMED, "five parts (a JWE)");
    expect(raw("", p, s), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "an empty header");
    expect(raw(h, "", s), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "an empty payload");
    expect(strdup(""), ks, &pol_all, NOW, PT_JWT_MALFORMED, "nothing");
    expect(strdup(".."), ks, &pol_all, NOW, PT_JWT_MALFORMED, "two dots");
    expect(strdup(fmt("%s=.%s.%s", h, p, s)), ks, &pol_all, NOW,
           PT_JWT_MALFORMED, "a padded header");
    expect(strdup(fmt("%s.%s.%s=", h, p, s)), ks, &pol_all, NOW,
           PT_JWT_MALFORMED, "a padded signature");
    expect(strdup(fmt("%s.%s.+%s", h, p, s + 1)), ks, &pol_all, NOW,
           PT_JWT_MALFORMED, "a '+' in the signature");
    expect(strdup(fmt("%s./%s.%s", h, p + 1, s)), ks, &pol_all, NOW,
           PT_JWT_MALFORMED, "a '/' in the payload");
    expect(strdup(fmt("%s.%s.%sAA", h, p, s)), ks, &pol_all, NOW,
           PT_JWT_MALFORMED, "an impossible signature length");
    expect(strdup(fmt(" %s.%s.%s", h, p, s)), ks, &pol_all, NOW,
           PT_JWT_MALFORMED, "a leading space");
    expect(strdup(fmt("%s.%s.%s\n", h, p, s)), ks, &pol_all, NOW,
           PT_JWT_MALFORMED, "a trailing newline");

    expect(sign(PT_JWT_HS256, &hmac_k, "{\"alg\":\"HS256\"", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_MALFORMED, "a header that is not JSON");
    expect(sign(PT_JWT_HS256, &hmac_k, "[\"HS256\"]", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_MALFORMED, "a header that is an array");
    expect(sign(PT_JWT_HS256, &hmac_k, "\"HS256\"", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_MALFORMED, "a header that is a string");
    expect(sign(PT_JWT_HS256, &hmac_k, "{\"alg\":\"HS256\"} {}", "{}", 0),
           ks, &pol_all, NOW, PT_JWT_MALFORMED, "a header with more after");
    expect(sign(PT_JWT_HS256, &hmac_k, "{\"alg\":\"HS256\",\"alg\":\"none\"}",
                "{}", 0), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "duplicate \"alg\" in the header");
    expect(sign(PT_JWT_HS256, &hmac_k,
                "{\"alg\":\"HS256\",\"kid\":\"x\",\"kid\":\"hmac\"}", "{}",
                0), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "duplicate \"kid\" in the header");
    expect(sign(PT_JWT_HS256, &hmac_k,
                "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", "{}", 0),
           ks, &pol_all, NOW, PT_JWT_MALFORMED, "a \"crit\" header");
    expect(sign(PT_JWT_HS256, &hmac_k, "{\"alg\":\"HS256\",\"crit\":[]}",
                "{}", 0), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "even an empty \"crit\"");
    expect(sign(PT_JWT_HS256, &hmac_k,
                "{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}", "{}",
                0), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "an unencoded payload (RFC 7797)");
    expect(sign(PT_JWT_HS256, &hmac_k,
                "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"jku\":\"http://x\"}",
                "{}", 0), ks, &pol_all, NOW, PT_JWT_OK,
           "unknown and unused header members are fine");
    expect(sign(PT_JWT_HS256, &hmac_k, "\xef\xbb\xbf{\"alg\":\"HS256\"}",
                "{}", 0), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "a header with a byte order mark");
    expect(sign(PT_JWT_HS256, &hmac_k, "{\"alg\":\"HS256\",\"x\":\"\xff\"}",
                "{}", 0), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "a header that is not UTF-8");

    expect(sign(PT_JWT_HS256, &hmac_k, hdr(PT_JWT_HS256, &hmac_k), "[]", 0),
           ks, &pol_all, NOW, PT_JWT_MALFORMED, "a payload that is an array");
    expect(sign(PT_JWT_HS256, &hmac_k, hdr(PT_JWT_HS256, &hmac_k), "17", 0),
           ks, &pol_all, NOW, PT_JWT_MALFORMED, "a payload that is a number");
    expect(sign(PT_JWT_HS256, &hmac_k, hdr(PT_JWT_HS256, &hmac_k), "{\"a\"",
                0), ks, &pol_all, NOW, PT_JWT_MALFORMED,
           "a payload that is not JSON");
    expect(sign(PT_JWT_HS256, &hmac_k, hdr(PT_JWT_HS256, &hmac_k),
                "{\"sub\":\"a\",\"sub\":\"b\"}", 0), ks, &pol_all, NOW,
           PT_JWT_MALFORMED, "duplicate claims");

    /* The policy's size limit, at its edge. */
    len = strlen(good);
    pol = pol_all;
    pol.max_len = len;
    expect(strdup(good), ks, &pol, NOW, PT_JWT_OK, "exactly max_len");
    pol.max_len = len - 1;
    expect(strdup(good), ks, &pol, NOW, PT_JWT_TOO_LARGE,
           "one byte over max_len");
    pol.max_len = 0;
    expect(strdup(good), ks, &pol, NOW, PT_JWT_OK, "max_len 0: no limit");
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect(strdup(big), ks, &pol_all, NOW, PT_JWT_TOO_LARGE,
           "20000 bytes of anything");

    free(good);
    free(h);
}


static void
test_claims(void)
{
    pt_jwt_t          t;
    pt_jwt_keyset_t  *ks;
    pt_jwt_policy_t   pol;
    char             *tok;
    pt_jwt_rc_e       rc;
    static pt_str_t   auds[] = { pt_string("api"), pt_string("web") };

    ks = pt_jwt_keyset_secret(hmac_k.secret, hmac_k.secret_len, NULL, 0);
    pol = pol_all;

    expect_claims(ks, &pol, NOW, "{\"exp\":1700000000}", PT_JWT_OK,
                  "exp = now");
    expect_claims(ks, &pol, NOW, "{\"exp\":1699999999}", PT_JWT_EXPIRED,
                  "exp = now - 1");
    expect_claims(ks, &pol, NOW, "{\"exp\":1699999999.5}", PT_JWT_EXPIRED,
                  "exp = now - 0.5");
    expect_claims(ks, &pol, NOW, "{\"exp\":1700000000.5}", PT_JWT_OK,
                  "exp = now + 0.5");
    expect_claims(ks, &pol, NOW, "{\"nbf\":1700000000}", PT_JWT_OK,
                  "nbf = now");
    expect_claims(ks, &pol, NOW, "{\"nbf\":1700000001}", PT_JWT_NOT_YET_VALID,
                  "nbf = now + 1");
    expect_claims(ks, &pol, NOW, "{\"nbf\":1700000000.25}",
                  PT_JWT_NOT_YET_VALID, "nbf = now + 0.25");
    expect_claims(ks, &pol, NOW, "{\"nbf\":1699999999.75}", PT_JWT_OK,
                  "nbf = now - 0.25");
    expect_claims(ks, &pol, NOW, "{\"iat\":1700000000}", PT_JWT_OK,
                  "iat = now");
    expect_claims(ks, &pol, NOW, "{\"iat\":1700000001}", PT_JWT_NOT_YET_VALID,
                  "iat = now + 1");
    expect_claims(ks, &pol, NOW, "{\"iat\":1e3}", PT_JWT_OK,
                  "iat long ago, as a real");

    pol.leeway = 60;
    expect_claims(ks, &pol, NOW, "{\"exp\":1699999940}", PT_JWT_OK,
                  "leeway 60: exp = now - 60");
    expect_claims(ks, &pol, NOW, "{\"exp\":1699999939}", PT_JWT_EXPIRED,
                  "leeway 60: exp = now - 61");
    expect_claims(ks, &pol, NOW, "{\"nbf\":1700000060}", PT_JWT_OK,
                  "leeway 60: nbf = now + 60");
    expect_claims(ks, &pol, NOW, "{\"nbf\":1700000061}", PT_JWT_NOT_YET_VALID,
                  "leeway 60: nbf = now + 61");
    expect_claims(ks, &pol, NOW, "{\"iat\":1700000060}", PT_JWT_OK,
                  "leeway 60: iat = now + 60");
    expect_claims(ks, &pol, NOW, "{\"iat\":1700000061}", PT_JWT_NOT_YET_VALID,
                  "leeway 60: iat = now + 61");

    /* Extremes must not overflow (UBSan in the ASan build). */
    pol.leeway = INT64_MAX;
    expect_claims(ks, &pol, INT64_MAX, "{\"exp\":9223372036854775807,"
                  "\"nbf\":-9223372036854775808}", PT_JWT_OK,
                  "extreme dates and leeway");
    pol.leeway = INT64_MIN;
    expect_claims(ks, &pol, INT64_MIN, "{\"exp\":-9223372036854775808}",
                  PT_JWT_OK, "a negative leeway counts as none");
    expect_claims(ks, &pol, NOW, "{\"exp\":-9223372036854775808}",
                  PT_JWT_EXPIRED, "the smallest exp");
    expect_claims(ks, &pol, NOW, "{\"exp\":1e300,\"nbf\":-1e300}", PT_JWT_OK,
                  "real dates far out");
    expect_claims(ks, &pol, NOW, "{\"nbf\":1e300}", PT_JWT_NOT_YET_VALID,
                  "nbf far in the future");
    pol.leeway = 0;

    expect_claims(ks, &pol, NOW, "{\"exp\":\"1800000000\"}", PT_JWT_MALFORMED,
                  "exp as a string");
    expect_claims(ks, &pol, NOW, "{\"nbf\":true}", PT_JWT_MALFORMED,
                  "nbf as a boolean");
    expect_claims(ks, &pol, NOW, "{\"iat\":null}", PT_JWT_MALFORMED,
                  "iat null");
    expect_claims(ks, &pol, NOW, "{\"exp\":1,\"iat\":[1]}", PT_JWT_MALFORMED,
                  "a bad iat is reported before an expired exp");

    tok = sign(PT_JWT_HS256, &hmac_k, "{\"alg\":\"HS256\"}",
               "{\"exp\":1800000000.9}", 0);
    rc = pt_jwt_verify(tok, strlen(tok), ks, &pol, NOW, &t);
    ok(rc == PT_JWT_OK && t.exp == 1800000000, "out->exp, rounded down");
    json_decref(t.claims);
    free(tok);

    tok = sign(PT_JWT_HS256, &hmac_k, "{\"alg\":\"HS256\"}", "{}", 0);
    rc = pt_jwt_verify(tok, strlen(tok), ks, &pol, NOW, &t);
    ok(rc == PT_JWT_OK && t.exp == 0, "out->exp 0 without exp");
    json_decref(t.claims);
    free(tok);

    pol.issuer = (pt_str_t) pt_string("https://idp.example");
    expect_claims(ks, &pol, NOW, "{\"iss\":\"https://idp.example\"}",
                  PT_JWT_OK, "the issuer");
    expect_claims(ks, &pol, NOW, "{\"iss\":\"https://idp.example/\"}",
                  PT_JWT_BAD_ISSUER, "another issuer");
    expect_claims(ks, &pol, NOW, "{\"iss\":\"https://idp.exampl\"}",
                  PT_JWT_BAD_ISSUER, "a prefix of the issuer");
    expect_claims(ks, &pol, NOW, "{\"sub\":\"x\"}", PT_JWT_BAD_ISSUER,
                  "no issuer");
    expect_claims(ks, &pol, NOW, "{\"iss\":[\"https://idp.example\"]}",
                  PT_JWT_BAD_ISSUER, "an issuer in an array");
    pol.issuer = (pt_str_t) pt_null_string;
    expect_claims(ks, &pol, NOW, "{\"iss\":42}", PT_JWT_OK,
                  "iss not checked without a policy issuer");

    pol.audiences = auds;
    pol.naudiences = 2;
    expect_claims(ks, &pol, NOW, "{\"aud\":\"web\"}", PT_JWT_OK,
                  "aud a string, the second audience");
    expect_claims(ks, &pol, NOW, "{\"aud\":[\"x\",\"api\"]}", PT_JWT_OK,
                  "aud an array holding the first");
    expect_claims(ks, &pol, NOW, "{\"aud\":[1,{},\"web\"]}", PT_JWT_OK,
                  "non-strings in the array are passed over");
    expect_claims(ks, &pol, NOW, "{\"aud\":\"apis\"}", PT_JWT_BAD_AUDIENCE,
                  "aud longer than an audience");
    expect_claims(ks, &pol, NOW, "{\"aud\":\"ap\"}", PT_JWT_BAD_AUDIENCE,
                  "aud shorter");
    expect_claims(ks, &pol, NOW, "{\"aud\":\"API\"}", PT_JWT_BAD_AUDIENCE,
                  "aud in another case");
    expect_claims(ks, &pol, NOW, "{\"aud\":[]}", PT_JWT_BAD_AUDIENCE,
                  "aud an empty array");
    expect_claims(ks, &pol, NOW, "{\"aud\":[\"x\",[\"api\"]]}",
                  PT_JWT_BAD_AUDIENCE, "aud nested one level deeper");
    expect_claims(ks, &pol, NOW, "{\"aud\":7}", PT_JWT_BAD_AUDIENCE,
                  "aud a number");
    expect_claims(ks, &pol, NOW, "{\"sub\":\"x\"}", PT_JWT_BAD_AUDIENCE,
                  "no aud");
    pol.naudiences = 0;
    expect_claims(ks, &pol, NOW, "{\"aud\":7}", PT_JWT_OK,
                  "aud not checked without audiences");

    pt_jwt_keyset_free(ks);
}


static void
test_jwks(void)
{
    char              err[256], small[8];
    pt_jwt_keyset_t  *ks;
    const char       *p521;

    p521 = "{\"kty\":\"EC\",\"crv\":\"P-521\",\"kid\":\"p521\",\"x\":\"AA\","
           "\"y\":\"AA\"}";

    ks = jwks(fmt("{\"keys\":[%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s]}",
                  jwk(&rsa_k, ",\"use\":\"enc\""),
                  jwk(&p256_k, ",\"key_ops\":[\"encrypt\"]"),
                  jwk(&p384_k, ",\"key_ops\":\"verify\""),
                  jwk(&small_k, ""),
                  p521,
                  "{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AA\"}",
                  "{\"kty\":\"RSA-PSS\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
                  jwk(&p256b_k, ",\"alg\":\"RS256\""),
                  jwk(&hmac_k, ",\"alg\":\"HS999\""),
                  "17",
                  jwk(&ed_k, ",\"use\":\"sig\",\"key_ops\":[\"sign\","
                      "\"verify\"],\"alg\":\"EdDSA\""),
                  jwk(&rsa_k, ",\"d\":\"ignored\"")));

    ok(ks != NULL && ks->n == 2, "only two of twelve keys are usable");

    if (ks != NULL && ks->n == 2) {
        ok(ks->keys[0].type == PT_JWK_ED25519 && ks->keys[0].alg
           == PT_JWT_EDDSA && strcmp(ks->keys[0].kid, "ed") == 0,
           "the Ed25519 key, pinned, with its kid");
        ok(ks->keys[1].type == PT_JWK_RSA && ks->keys[1].alg == -1
           && strcmp(ks->keys[1].kid, "rsa") == 0 && ks->keys[1].pkey,
           "the RSA key, its private member ignored");
    } else {
        ok(0, "the Ed25519 key");
        ok(0, "the RSA key");
    }

    pt_jwt_keyset_free(ks);

    ks = pt_jwt_keyset_jwks(fmt("{\"keys\":[%s,%s]}", jwk(&small_k, ""),
                                jwk(&rsa_k, ",\"use\":\"enc\"")), 0, err,
                            sizeof(err));
    ok(ks == NULL, "an empty document");

    /* The reason names the first key skipped. */
    ks = pt_jwt_keyset_jwks(fmt("{\"keys\":[%s,%s]}", jwk(&small_k, ""),
                                jwk(&rsa_k, ",\"use\":\"enc\"")),
                            strlen(fmt("{\"keys\":[%s,%s]}",
                                       jwk(&small_k, ""),
                                       jwk(&rsa_k, ",\"use\":\"enc\""))),
                            err, sizeof(err));
    ok(ks == NULL && strstr(err, "no usable key") != NULL
       && strstr(err, "keys[0]: RSA key of 1024 bits") != NULL,
       "no usable key, and why: %s", err);

#define REFUSED(doc, what)                                                   \
    do {                                                                     \
        ks = pt_jwt_keyset_jwks(doc, strlen(doc), err, sizeof(err));         \
        ok(ks == NULL && err[0] != '\0', "JWKS refused: %s (%s)", what,     \
           err);                                                             \
        pt_jwt_keyset_free(ks);                                              \
    } while (0)

    REFUSED("", "empty");
    REFUSED("{\"keys\":[", "cut short");
    REFUSED("{\"keys\":[]}", "no keys");
    REFUSED("{\"keys\":{}}", "keys an object");
    REFUSED("[]", "an array");
    REFUSED("{}", "no \"keys\"");
    REFUSED(fmt("{\"keys\":[%s],\"keys\":[]}", jwk(&rsa_k, "")),
            "\"keys\" twice");
    REFUSED(fmt("{\"keys\":[%s]} x", jwk(&rsa_k, "")), "text after it");
    REFUSED("{\"keys\":[{\"kty\":\"oct\",\"k\":\"\"}]}", "an empty secret");
    REFUSED("{\"keys\":[{\"kty\":\"oct\",\"k\":\"QQ==\"}]}",
            "a padded secret");
    REFUSED("{\"keys\":[{\"kty\":\"oct\",\"k\":\"QQ\",\"kty\":\"oct\"}]}",
            "a duplicate member in a key");
    REFUSED("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\","
            "\"y\":\"AA\"}]}", "EC coordinates too short");
    REFUSED("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}]}",
            "an Ed25519 key too short");
    REFUSED("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\"}]}", "no e");
    REFUSED("{\"keys\":[{\"k\":\"QQ\"}]}", "no kty");
    REFUSED(fmt("{\"keys\":[%s]}", jwk(&hmac_k, ",\"kid\":7")),
            "a kid twice, once a number");
    REFUSED("{\"keys\":[{\"kty\":\"oct\",\"k\":\"QQ\",\"kid\":7}]}",
            "a kid that is not a string");

    /* An EC point off the curve: y + 1. */
    {
        char   *doc, *y;

        doc = strdup(fmt("{\"keys\":[%s]}", jwk(&p256_k, "")));
        y = strstr(doc, "\"y\":\"") + 5;
        y[0] = (y[0] == 'A') ? 'B' : 'A';
        REFUSED(doc, "a point not on the curve");
        free(doc);
    }

    ks = pt_jwt_keyset_jwks("[", 1, small, sizeof(small));
    ok(ks == NULL && strlen(small) == sizeof(small) - 1,
       "a short err buffer is cut and NUL-terminated");
    ks = pt_jwt_keyset_jwks("[", 1, NULL, 0);
    ok(ks == NULL, "no err buffer at all");

    ks = jwks(all_jwks);
    ok(ks != NULL && ks->n == 6, "the full JWKS: six usable keys of eight");
    pt_jwt_keyset_free(ks);
    pt_jwt_keyset_free(NULL);
}


static void
test_pem(void)
{
    char             *pem, *cert, *priv, *small, *ed, *doc, err[256];
    BIO              *bio;
    long              n;
    pt_jwt_keyset_t  *ks;

    pem = pem_of(rsa_k.pkey, 0);
    cert = pem_of(p256_k.pkey, 1);
    small = pem_of(small_k.pkey, 0);
    ed = pem_of(ed_k.pkey, 0);

    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, p384_k.pkey, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(bio, &priv);
    priv = copy(priv, n);
    BIO_free(bio);

    doc = strdup(fmt("some text first\n%s%s\nbetween\n%s%s%s", small, pem,
                     priv, cert, ed));
    ks = pt_jwt_keyset_pem(doc, strlen(doc), err, sizeof(err));

    ok(ks != NULL && ks->n == 3 && ks->keys[0].type == PT_JWK_RSA
       && ks->keys[1].type == PT_JWK_EC_P256
       && ks->keys[2].type == PT_JWK_ED25519 && ks->keys[0].kid == NULL
       && ks->keys[0].alg == -1,
       "PEM: a key, a certificate and a key, in order, the rest skipped");

    expect(sign(PT_JWT_RS256, &rsa_k, "{\"alg\":\"RS256\"}", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_OK, "RS256 with the PEM key");
    expect(sign(PT_JWT_ES256, &p256_k, "{\"alg\":\"ES256\"}", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_OK, "ES256 with the certificate's key");
    expect(sign(PT_JWT_ES256, &p256_k,
                "{\"alg\":\"ES256\",\"kid\":\"anything\"}", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_OK, "a key without kid takes any kid");
    expect(sign(PT_JWT_EDDSA, &ed_k, "{\"alg\":\"EdDSA\"}", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_OK, "EdDSA with the PEM key");
    expect(sign(PT_JWT_ES256, &p256b_k, "{\"alg\":\"ES256\"}", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_BAD_SIGNATURE, "another P-256 key");
    expect(sign(PT_JWT_ES384, &p384_k, "{\"alg\":\"ES384\"}", "{}", 0), ks,
           &pol_all, NOW, PT_JWT_NO_KEY, "a private key block is no key");
    pt_jwt_keyset_free(ks);

    ks = pt_jwt_keyset_pem(small, strlen(small), err, sizeof(err));
    ok(ks == NULL && strstr(err, "1024") != NULL,
       "PEM: only an RSA 1024 key (%s)", err);
    ks = pt_jwt_keyset_pem(priv, strlen(priv), err, sizeof(err));
    ok(ks == NULL, "PEM: only a private key (%s)", err);
    ks = pt_jwt_keyset_pem("", 0, err, sizeof(err));
    ok(ks == NULL, "PEM: empty (%s)", err);
    ks = pt_jwt_keyset_pem("hello", 5, err, sizeof(err));
    ok(ks == NULL, "PEM: no block (%s)", err);

    /* Damage: a base64 character changed inside the key's DER, then a
     * block cut off. */
    free(doc);
    doc = strdup(pem);
    doc[40] = '$';
    ks = pt_jwt_keyset_pem(doc, strlen(doc), err, sizeof(err));
    ok(ks == NULL, "PEM: a character not base64 (%s)", err);
    doc[40] = (pem[40] == 'B') ? 'C' : 'B';
    ks = pt_jwt_keyset_pem(doc, strlen(doc), err, sizeof(err));
    ok(ks == NULL, "PEM: a key that is not DER (%s)", err);
    free(doc);
    doc = strdup(fmt("%s%.*s", cert, (int) strlen(pem) - 30, pem));
    ks = pt_jwt_keyset_pem(doc, strlen(doc), err, sizeof(err));
    ok(ks == NULL, "PEM: a block without its end (%s)", err);

    free(doc);
    free(pem);
    free(cert);
    free(priv);
    free(small);
    free(ed);
}


static void
test_secret(void)
{
    int               alg;
    char              err[64];
    pt_jwt_keyset_t  *ks;

    ks = pt_jwt_keyset_secret((const u_char *) "", 0, err, sizeof(err));
    ok(ks == NULL, "an empty secret (%s)", err);

    ks = pt_jwt_keyset_secret(hmac_k.secret, hmac_k.secret_len, err,
                              sizeof(err));
    ok(ks != NULL && ks->n == 1 && ks->keys[0].type == PT_JWK_OCT
       && ks->keys[0].kid == NULL && ks->keys[0].secret_len == 48
       && ks->keys[0].secret != hmac_k.secret,
       "a secret: one oct key, a copy");

    for (alg = PT_JWT_HS256; alg <= PT_JWT_HS512; alg++) {
        expect(sign(alg, &hmac_k, hdr(alg, &hmac_k), "{}", 0), ks, &pol_all,
               NOW, PT_JWT_OK, fmt("%s with a secret, any kid",
                                   pt_jwt_alg_name(alg)));
    }

    pt_jwt_keyset_free(ks);
}


/* Verification under failing allocations: one run per allocation the
 * good path makes, that one failing. Our own failures must give
 * PT_JWT_NOMEM; jansson's NOMEM or MALFORMED (some of them look like bad
 * syntax to it); OpenSSL's anything but a wrong OK: NOMEM, a bad
 * signature, or OK when the allocation was one it could do without. */
static void
test_nomem_verify(pt_jwt_keyset_t *ks)
{
    int               alg, bad, runs;
    char             *tok;
    pt_jwt_t          t;
    pt_jwt_rc_e       rc;
    pt_jwt_policy_t   pol;
    static pt_str_t   auds[] = { pt_string("api"), pt_string("web") };

    pol = pol_all;
    pol.issuer = (pt_str_t) pt_string("idp");
    pol.audiences = auds;
    pol.naudiences = 2;

    bad = 0;
    runs = 0;

    for (alg = 0; alg < PT_JWT_NALGS; alg++) {
        tok = sign(alg, key_for(alg), hdr(alg, key_for(alg)),
                   "{\"iss\":\"idp\",\"aud\":[\"x\",\"web\"],\"exp\":"
                   "1700000001,\"ext\":{\"a\":[1,2.5,\"three\",null]}}", 0);

        for (fail_at = 0; ; fail_at++) {
            n_allocs = 0;
            failed_in = IN_NONE;
            rc = pt_jwt_verify(tok, strlen(tok), ks, &pol, NOW, &t);
            runs++;

            if (failed_in == IN_NONE) {
                bad += (rc != PT_JWT_OK);
                json_decref(t.claims);
                break;
            }

            if ((rc == PT_JWT_OK) != (t.claims != NULL)
                || (failed_in == IN_OURS && rc != PT_JWT_NOMEM)
                || (failed_in == IN_JANSSON && rc != PT_JWT_NOMEM
                    && rc != PT_JWT_MALFORMED)
                || (failed_in == IN_OPENSSL && rc != PT_JWT_NOMEM
                    && rc != PT_JWT_BAD_SIGNATURE && rc != PT_JWT_OK))
            {
                if (bad++ == 0) {
                    printf("# %s, allocation %ld failing (%d): %s\n",
                           pt_jwt_alg_name(alg), fail_at, failed_in,
                           pt_jwt_strerror(rc));
                }
            }

            json_decref(t.claims);
        }

        fail_at = -1;
        free(tok);
    }

    ok(bad == 0 && runs > 3 * PT_JWT_NALGS,
       "verification with each allocation failing in turn (%d runs)", runs);
}


typedef pt_jwt_keyset_t *(*keyset_pt)(const char *, size_t, char *, size_t);


static pt_jwt_keyset_t *
keyset_secret(const char *s, size_t len, char *err, size_t errlen)
{
    return pt_jwt_keyset_secret((const u_char *) s, len, err, errlen);
}


/* The same for building key sets: our failures give NULL and "out of
 * memory"; the others NULL, or a set without the key that failed. */
static void
test_nomem_keyset(const char *what, keyset_pt build, const char *doc,
    size_t want)
{
    int               bad, runs;
    char              err[256];
    pt_jwt_keyset_t  *ks;

    bad = 0;
    runs = 0;

    for (fail_at = 0; ; fail_at++) {
        n_allocs = 0;
        failed_in = IN_NONE;
        err[0] = '\0';
        ks = build(doc, strlen(doc), err, sizeof(err));
        runs++;

        if (failed_in == IN_NONE) {
            bad += (ks == NULL || ks->n != want);
            pt_jwt_keyset_free(ks);
            break;
        }

        if ((ks == NULL && err[0] == '\0')
            || (ks != NULL && ks->n > want)
            || (failed_in == IN_OURS
                && (ks != NULL || strcmp(err, "out of memory") != 0)))
        {
            if (bad++ == 0) {
                printf("# %s, allocation %ld failing (%d): %s\n", what,
                       fail_at, failed_in, ks ? "a key set" : err);
            }
        }

        pt_jwt_keyset_free(ks);
    }

    fail_at = -1;

    ok(bad == 0 && runs > 2, "%s with each allocation failing in turn "
       "(%d runs)", what, runs);
}


int
main(void)
{
    char             *cert, *ed, *pem_all;
    pt_jwt_keyset_t  *ks;

    /* Before OpenSSL or jansson allocate anything. */
    if (!CRYPTO_set_mem_functions(t_crypto_malloc, t_crypto_realloc,
                                  t_crypto_free))
    {
        printf("Bail out! CRYPTO_set_mem_functions() came too late\n");
        return 1;
    }

    json_set_alloc_funcs(t_json_malloc, t_json_free);

    tap_plan(239);

    rsa_k.pkey = keygen("RSA", NULL, 2048);
    small_k.pkey = keygen("RSA", NULL, 1024);
    p256_k.pkey = keygen("EC", "P-256", 0);
    p256b_k.pkey = keygen("EC", "P-256", 0);
    p384_k.pkey = keygen("EC", "P-384", 0);
    ed_k.pkey = keygen("ED25519", NULL, 0);

    rsa_pem = pem_of(rsa_k.pkey, 0);
    all_jwks = strdup(fmt("{\"keys\":[%s,%s,%s,%s,%s,%s,%s,%s]}",
                          jwk(&hmac_k, ""), jwk(&small_k, ""),
                          jwk(&rsa_k, ",\"use\":\"sig\""), jwk(&p256_k, ""),
                          jwk(&p256b_k, ",\"key_ops\":[\"verify\"]"),
                          jwk(&p384_k, ""), jwk(&ed_k, ",\"alg\":\"EdDSA\""),
                          "{\"kty\":\"EC\",\"crv\":\"P-521\"}"));

    test_base64url();
    test_names();

    ks = jwks(all_jwks);
    if (ks == NULL) {
        printf("Bail out! the JWKS of every key is refused\n");
        return 1;
    }

    test_algorithms(ks);
    test_signatures(ks);
    test_kids(ks);
    test_confusion(ks);
    test_algs_refused(ks);
    test_pins();
    test_malformed(ks);
    test_claims();
    test_jwks();
    test_pem();
    test_secret();

    /* Everything OpenSSL sets up once has been set up by now. */
    test_nomem_verify(ks);

    cert = pem_of(p256_k.pkey, 1);
    ed = pem_of(ed_k.pkey, 0);
    pem_all = strdup(fmt("%s%s%s", rsa_pem, cert, ed));

    test_nomem_keyset("a JWKS", pt_jwt_keyset_jwks, all_jwks, 6);
    test_nomem_keyset("a PEM file", pt_jwt_keyset_pem, pem_all, 3);
    test_nomem_keyset("a secret", keyset_secret, "0123456789", 1);

    free(cert);
    free(ed);
    free(pem_all);
    pt_jwt_keyset_free(ks);
    free(all_jwks);
    free(rsa_pem);
    EVP_PKEY_free(rsa_k.pkey);
    EVP_PKEY_free(small_k.pkey);
    EVP_PKEY_free(p256_k.pkey);
    EVP_PKEY_free(p256b_k.pkey);
    EVP_PKEY_free(p384_k.pkey);
    EVP_PKEY_free(ed_k.pkey);

    return tap_done();
}
