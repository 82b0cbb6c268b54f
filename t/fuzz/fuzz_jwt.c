/*
 * fuzz_jwt.c: JWT verification and key sets (modules/auth/pt_jwt.c and
 * pt_jwk.c).
 *
 * The input is tried three ways: as a token against a fixed key set (an
 * HMAC secret, a P-256 key and an RSA key, the JWKS below) under a
 * permissive policy and a strict one, as a JWKS document, and as a PEM
 * file. When it holds a NUL byte, what comes before it is also a JWKS
 * and what follows a token checked against that key set, so that keys the
 * fuzzer makes meet tokens it makes. Checked promises:
 *
 *   - the same token gives the same result, exp and claims twice over;
 *   - PT_JWT_OK comes with claims that are an object, and nothing else
 *     does; the header of an accepted token decodes to an object whose
 *     "alg" is the name of out->alg (so never "none"), an algorithm the
 *     policy takes, and its exp, nbf and iat hold at the time given;
 *   - a token the strict policy accepts, the permissive one accepts too,
 *     and its "iss" and "aud" are the strict policy's;
 *   - a key set is NULL with a reason, or holds at least one key, each
 *     whole: an oct key has its secret, any other its EVP_PKEY, a pinned
 *     alg belongs to the key's type; PEM keys have no kid and no pin.
 *
 * The seeds in t/fuzz/corpus/jwt were signed with the private halves of
 * these keys, which are not kept: no signature can be forged from here.
 */

#include "fuzz.h"
#include "pt_jwt.h"


#define PT_FUZZ_NOW  1700000000


static const char  pt_fuzz_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"oct\",\"kid\":\"hs\","
    "\"k\":\"cG9ydGljby1mdXp6LWhtYWMtc2VjcmV0LTAxMjM0NTY3ODk\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\","
    "\"x\":\"SaObcPeH54zAsy1PToIHgPgo4uixz9Q5EHCCVCLPjso\","
    "\"y\":\"w1J4zzHtL_c1RiEUGRdDJhuRj30Cfs00Du7QxjYiOqc\"},"
    "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"e\":\"AQAB\",\"n\":\""
    "tBWQUMMFFHLUArCVww1zK7d716QI4r1-iv3r7VJLuoKa0jB2PIbYj6QqocRBNQc7"
    "155XDsywBzbIEiGKgsJwgrwKpSd5GkTZwkoWrMPZU3iWSzWt6L4hv_Mu9OXMqAUR"
    "On7uRGIyB756kmmu-8e6-ErG7-L98qrVErriP2f6fdIbceoxrKdvK3fqGLvLBuIr"
    "_WVFmyTFVDaPMnlt72uwjRclTytWht_RhbtXCwVJ47Xt2C8Gxnu-6A7xc9I5qFeu"
    "8GtC8ZeNUA6VBMcVCsea1W1NleuoLp8aBXLYBt36Jb34ul2cr-sZU7dCevu8HVcg"
    "-vMotZBk0ZzlC7E0C1252w\"}"
    "]}";

static pt_str_t  pt_fuzz_auds[] = { pt_string("api"), pt_string("web") };

static const pt_jwt_policy_t  pt_fuzz_loose = {
    (1u << PT_JWT_NALGS) - 1, pt_null_string, NULL, 0, 300, 0
};

static const pt_jwt_policy_t  pt_fuzz_strict = {
    PT_JWT_ALG_BIT(PT_JWT_HS256) | PT_JWT_ALG_BIT(PT_JWT_RS256)
    | PT_JWT_ALG_BIT(PT_JWT_PS256) | PT_JWT_ALG_BIT(PT_JWT_ES256)
    | PT_JWT_ALG_BIT(PT_JWT_EDDSA),
    pt_string("https://idp.example"), pt_fuzz_auds, 2, 0, 2048
};


/* The "alg" of the token's header, decoded here without the library's
 * parser: 1 when it is a string equal to name. */
static int
pt_fuzz_header_alg(const char *tok, size_t len, const char *name)
{
    int            ok;
    u_char        *buf;
    json_t        *hdr, *alg;
    ssize_t        n;
    const char    *dot;
    json_error_t   err;

    dot = memchr(tok, '.', len);
    pt_fuzz_check(dot != NULL);

    buf = malloc((dot - tok) / 4 * 3 + 3);
    if (buf == NULL) {
        return 1;
    }

    n = pt_jwt_base64url_decode(buf, tok, dot - tok);
    pt_fuzz_check(n > 0);

    hdr = json_loadb((const char *) buf, n, 0, &err);
    free(buf);

    pt_fuzz_check(json_is_object(hdr));

    alg = json_object_get(hdr, "alg");
    ok = json_is_string(alg) && strcmp(json_string_value(alg), name) == 0;
    json_decref(hdr);

    return ok;
}


/* The NumericDate claim name holds at now within the leeway. */
static int
pt_fuzz_date_ok(json_t *claims, const char *name, int64_t leeway)
{
    json_t  *v;
    double   d;

    v = json_object_get(claims, name);
    if (v == NULL) {
        return 1;
    }

    pt_fuzz_check(json_is_number(v));

    d = json_number_value(v);

    if (strcmp(name, "exp") == 0) {
        return (double) PT_FUZZ_NOW <= d + (double) leeway;
    }

    return d <= (double) PT_FUZZ_NOW + (double) leeway;
}


static void
pt_fuzz_token(const pt_jwt_keyset_t *ks, const char *tok, size_t len)
{
    json_t       *aud;
    pt_jwt_t      t, again, strict;
    pt_jwt_rc_e   rc, rc2, rc3;

    rc = pt_jwt_verify(tok, len, ks, &pt_fuzz_loose, PT_FUZZ_NOW, &t);
    rc2 = pt_jwt_verify(tok, len, ks, &pt_fuzz_loose, PT_FUZZ_NOW, &again);

    pt_fuzz_check(rc >= PT_JWT_OK && rc <= PT_JWT_NOMEM);
    pt_fuzz_check(rc2 == rc);
    pt_fuzz_check(strlen(pt_jwt_strerror(rc)) > 0);
    pt_fuzz_check((rc == PT_JWT_OK) == (t.claims != NULL));
    pt_fuzz_check((rc2 == PT_JWT_OK) == (again.claims != NULL));

    if (rc == PT_JWT_OK) {
        pt_fuzz_check(json_is_object(t.claims));
        pt_fuzz_check(json_equal(t.claims, again.claims));
        pt_fuzz_check(t.exp == again.exp && t.alg == again.alg);
        pt_fuzz_check((unsigned) t.alg < PT_JWT_NALGS);
        pt_fuzz_check(pt_fuzz_header_alg(tok, len, pt_jwt_alg_name(t.alg)));
        pt_fuzz_check(pt_fuzz_date_ok(t.claims, "exp", 300)
                      && pt_fuzz_date_ok(t.claims, "nbf", 300)
                      && pt_fuzz_date_ok(t.claims, "iat", 300));
    }

    rc3 = pt_jwt_verify(tok, len, ks, &pt_fuzz_strict, PT_FUZZ_NOW, &strict);

    pt_fuzz_check((rc3 == PT_JWT_OK) == (strict.claims != NULL));
    pt_fuzz_check(len <= pt_fuzz_strict.max_len || rc3 == PT_JWT_TOO_LARGE);

    if (rc3 == PT_JWT_OK) {
        pt_fuzz_check(rc == PT_JWT_OK);
        pt_fuzz_check(pt_fuzz_strict.algs & PT_JWT_ALG_BIT(strict.alg));
        pt_fuzz_check(strcmp(json_string_value(json_object_get(strict.claims,
                                                               "iss")),
                             "https://idp.example") == 0);

        aud = json_object_get(strict.claims, "aud");
        pt_fuzz_check(json_is_string(aud) || json_array_size(aud) > 0);
        pt_fuzz_check(pt_fuzz_date_ok(strict.claims, "exp", 0)
                      && pt_fuzz_date_ok(strict.claims, "nbf", 0)
                      && pt_fuzz_date_ok(strict.claims, "iat", 0));
    }

    json_decref(t.claims);
    json_decref(again.claims);
    json_decref(strict.claims);
}


static void
pt_fuzz_keyset(pt_jwt_keyset_t *ks, const char *err, int pem)
{
    size_t           i;
    const pt_jwk_t  *k;

    if (ks == NULL) {
        pt_fuzz_check(err[0] != '\0');
        return;
    }

    pt_fuzz_check(ks->n > 0 && ks->keys != NULL);

    for (i = 0; i < ks->n; i++) {
        k = &ks->keys[i];

        pt_fuzz_check(k->type <= PT_JWK_ED25519);
        pt_fuzz_check(k->kid == NULL || strlen(k->kid) < 1 << 20);
        pt_fuzz_check(k->alg == -1
                      || (k->alg >= 0 && k->alg < PT_JWT_NALGS
                          && pt_jwt_alg_key(k->alg) == k->type));

        if (k->type == PT_JWK_OCT) {
            pt_fuzz_check(k->secret != NULL && k->secret_len > 0
                          && k->pkey == NULL && !pem);
        } else {
            pt_fuzz_check(k->pkey != NULL && k->secret == NULL);
        }

        if (pem) {
            pt_fuzz_check(k->kid == NULL && k->alg == -1);
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                    err[256];
    size_t                  jlen;
    const char             *in, *nul;
    pt_jwt_keyset_t        *ks;
    static pt_jwt_keyset_t  *fixed;

    if (fixed == NULL) {
        fixed = pt_jwt_keyset_jwks(pt_fuzz_jwks, sizeof(pt_fuzz_jwks) - 1,
                                   err, sizeof(err));
        if (fixed == NULL || fixed->n != 3) {
            fprintf(stderr, "fuzz_jwt: the fixed key set: %s\n",
                    fixed ? "not three keys" : err);
            abort();
        }
    }

    in = (const char *) data;

    pt_fuzz_token(fixed, in, size);

    err[0] = '\0';
    ks = pt_jwt_keyset_jwks(in, size, err, sizeof(err));
    pt_fuzz_keyset(ks, err, 0);
    pt_jwt_keyset_free(ks);

    err[0] = '\0';
    ks = pt_jwt_keyset_pem(in, size, err, sizeof(err));
    pt_fuzz_keyset(ks, err, 1);
    pt_jwt_keyset_free(ks);

    nul = memchr(in, '\0', size);

    if (nul != NULL) {
        jlen = nul - in;
        err[0] = '\0';
        ks = pt_jwt_keyset_jwks(in, jlen, err, sizeof(err));
        pt_fuzz_keyset(ks, err, 0);

        if (ks != NULL) {
            pt_fuzz_token(ks, nul + 1, size - jlen - 1);
        }

        pt_jwt_keyset_free(ks);
    }

    return 0;
}
