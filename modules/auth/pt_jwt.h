/*
 * pt_jwt.h: JSON Web Tokens (compact JWS, RFC 7515/7519) and the keys that
 * verify them (JWK, RFC 7517/7518/8037), for the auth module.
 *
 * JSON is parsed with jansson, signatures are checked with OpenSSL EVP.
 * Nothing here touches a request, the event loop or a pool: a key set is
 * built from bytes (a JWKS document, a PEM file or a secret) and freed by
 * its owner, and a verification is one synchronous call, so the same code
 * serves the workers, the helper process, the unit tests and the fuzzer.
 */

#ifndef PT_JWT_H
#define PT_JWT_H

#include <jansson.h>
#include <openssl/evp.h>

#include "pt_core.h"


typedef enum {
    PT_JWT_HS256 = 0,
    PT_JWT_HS384,
    PT_JWT_HS512,
    PT_JWT_RS256,
    PT_JWT_RS384,
    PT_JWT_RS512,
    PT_JWT_PS256,
    PT_JWT_PS384,
    PT_JWT_PS512,
    PT_JWT_ES256,
    PT_JWT_ES384,
    PT_JWT_EDDSA,               /* Ed25519 only                          */
    PT_JWT_NALGS
} pt_jwt_alg_e;

#define PT_JWT_ALG_BIT(a)    (1u << (a))

/* "RS256" -> PT_JWT_RS256; -1 for a name not in the list ("none" too).
 * Names are case-sensitive, as RFC 7515 4.1.1 says. */
int pt_jwt_alg_parse(const char *name, size_t len);
const char *pt_jwt_alg_name(pt_jwt_alg_e alg);


typedef enum {
    PT_JWK_OCT = 0,             /* HMAC secret                          */
    PT_JWK_RSA,
    PT_JWK_EC_P256,
    PT_JWK_EC_P384,
    PT_JWK_ED25519
} pt_jwk_type_e;

/* The one key type that verifies alg (HS* oct, RS* and PS* RSA, ...). */
pt_jwk_type_e pt_jwt_alg_key(pt_jwt_alg_e alg);

typedef struct {
    char            *kid;       /* NUL-terminated copy; NULL: none       */
    pt_jwk_type_e    type;
    int              alg;       /* the JWK's "alg" pin, or -1            */
    EVP_PKEY        *pkey;      /* public key (all but PT_JWK_OCT)       */
    u_char          *secret;    /* PT_JWK_OCT                            */
    size_t           secret_len;
} pt_jwk_t;

typedef struct {
    pt_jwk_t        *keys;
    size_t           n;
} pt_jwt_keyset_t;

/* Build a key set. On failure NULL, with the reason in err (always
 * NUL-terminated when errlen > 0; "out of memory" when that was it). A
 * JWKS document must be an object with a "keys" array; keys that cannot
 * verify signatures ("use" other than "sig", "key_ops" without "verify",
 * an unknown "kty", curve or "alg", an "alg" of another key type, RSA
 * under 2048 bits, a malformed member) are skipped, and a document with
 * no usable key is an error; private members ("d"...) are ignored. A PEM
 * file holds one or more public keys ("PUBLIC KEY") or X.509 certificates
 * ("CERTIFICATE": their public keys are used, nothing else of them is
 * checked), in any order; other blocks are skipped, a malformed one is an
 * error. PEM keys have no kid and no alg pin. A secret is one oct key
 * without a kid; an empty one is an error. */
pt_jwt_keyset_t *pt_jwt_keyset_jwks(const char *json, size_t len,
    char *err, size_t errlen);
pt_jwt_keyset_t *pt_jwt_keyset_pem(const char *pem, size_t len,
    char *err, size_t errlen);
pt_jwt_keyset_t *pt_jwt_keyset_secret(const u_char *secret, size_t len,
    char *err, size_t errlen);
void pt_jwt_keyset_free(pt_jwt_keyset_t *ks);


/* What a token must satisfy besides its signature. */
typedef struct {
    uint32_t         algs;       /* PT_JWT_ALG_BIT()s accepted            */
    pt_str_t         issuer;     /* "iss" must equal it; len 0: any       */
    const pt_str_t  *audiences;  /* "aud" (a string or an array) must
                                    hold one of them; n 0: not checked    */
    size_t           naudiences;
    int64_t          leeway;     /* seconds, for exp, nbf and iat         */
    size_t           max_len;    /* longest token accepted, in bytes; 0:
                                    no limit                              */
} pt_jwt_policy_t;

/* A verified token. */
typedef struct {
    json_t          *claims;     /* the payload object; the caller owns a
                                    reference (json_decref)              */
    int64_t          exp;        /* "exp", or 0 when absent               */
    pt_jwt_alg_e     alg;
} pt_jwt_t;

typedef enum {
    PT_JWT_OK = 0,
    PT_JWT_TOO_LARGE,           /* over policy max_len                   */
    PT_JWT_MALFORMED,           /* not three base64url parts, bad JSON,
                                   duplicate keys, a claim of the wrong
                                   type, "crit" present                  */
    PT_JWT_BAD_ALG,             /* "none", unknown, or not in policy     */
    PT_JWT_UNKNOWN_KID,         /* no key with the token's "kid"         */
    PT_JWT_NO_KEY,              /* no key fits the algorithm (an HMAC
                                   token against asymmetric keys, ...)   */
    PT_JWT_BAD_SIGNATURE,
    PT_JWT_EXPIRED,
    PT_JWT_NOT_YET_VALID,       /* nbf, or iat in the future             */
    PT_JWT_BAD_ISSUER,
    PT_JWT_BAD_AUDIENCE,
    PT_JWT_NOMEM
} pt_jwt_rc_e;

/* Verify a compact JWS against ks and pol at time now (seconds since the
 * epoch). On PT_JWT_OK, out holds the claims (one reference for the
 * caller); on anything else out->claims is NULL. The token's key is the
 * one whose kid matches the header's "kid" (several keys with that kid are
 * each tried; a key without a kid, as PEM keys and secrets are, takes any
 * kid); a token without "kid" is tried against every key of the right
 * type. A key only ever verifies the algorithms of its type (HMAC needs an
 * oct key: no algorithm confusion), and a JWK's "alg" pin must match.
 * Keys named by the header ("jwk", "jku", "x5c", "x5u") are never used.
 * The checks run in this order: size, form and header, signature, then
 * the payload and its claims (exp, nbf, iat, iss, aud), so that nothing
 * of an unsigned payload is looked at beyond its base64url. A NumericDate
 * may be an integer or a real. */
pt_jwt_rc_e pt_jwt_verify(const char *token, size_t len,
    const pt_jwt_keyset_t *ks, const pt_jwt_policy_t *pol, int64_t now,
    pt_jwt_t *out);

/* A short reason, for logs and RFC 6750 error_description. */
const char *pt_jwt_strerror(pt_jwt_rc_e rc);

/* base64url without padding (RFC 7515 2), strict: any other character,
 * padding or impossible length is an error. dst holds at least
 * len * 3 / 4 + 1 bytes. Returns the decoded length or -1. */
ssize_t pt_jwt_base64url_decode(u_char *dst, const char *src, size_t len);


/* Shared by pt_jwt.c and pt_jwk.c, not for callers. */

/* Empties OpenSSL's error queue; 1 when it told of a failed allocation. */
int pt__jwt_ossl_nomem(void);

/* 1 when json_loadb() failed for want of memory rather than bad input. */
int pt__jwt_json_nomem(const json_error_t *err);


#endif /* PT_JWT_H */
