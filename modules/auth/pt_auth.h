/*
 * pt_auth.h: the auth module's shared types (internal to modules/auth).
 *
 * Configuration lives in the cycle pool: consumers and JWT issuers at
 * global scope, a route's `auth:` at route scope. A request's verdict
 * (consumer, groups, claims) lives in its ctx, in the request pool. The
 * per-worker cache of checked credentials (pt_auth_cache.c) is malloc'd
 * by each worker, which serves one generation only, so a cached verdict
 * always refers to the config it was made with.
 */

#ifndef PT_AUTH_H
#define PT_AUTH_H

#include "pt_http.h"
#include "pt_hash.h"
#include "pt_jwt.h"


extern pt_module_t  pt_auth_module;

#define PT_AUTH_API_KEY     0
#define PT_AUTH_BASIC       1
#define PT_AUTH_JWT         2
#define PT_AUTH_MTLS        3
#define PT_AUTH_FORWARD     4
#define PT_AUTH_NMETHODS    5

/* An issuer's JWKS URL (pt_auth_jwks.c). */
typedef struct pt_auth_jwks_s  pt_auth_jwks_t;

typedef struct {
    pt_str_t             name;
    pt_array_t           api_keys;      /* pt_auth_key_t                  */
    pt_str_t             password;      /* crypt(3) hash; len 0: none     */
    pt_array_t           groups;        /* pt_str_t                       */
    pt_str_t             groups_text;   /* "a,b" for X-Consumer-Groups    */
    pt_str_t             cert_subject;
    pt_str_t             cert_fingerprint;   /* lower-case hex, no colons */
    pt_yaml_node_t      *node;
} pt_auth_consumer_t;

/* An API key as configured: the key itself, or the SHA-256 of it. */
typedef struct {
    u_char               digest[32];    /* SHA-256 of the key             */
    pt_auth_consumer_t  *consumer;
} pt_auth_key_t;

typedef struct {
    pt_str_t             name;
    pt_str_t             issuer;
    pt_array_t           audiences;     /* pt_str_t                       */
    uint32_t             algs;          /* PT_JWT_ALG_BIT()s              */
    int64_t              leeway;        /* seconds                        */
    pt_str_t             consumer_claim;
    pt_str_t             groups_claim;  /* len 0: groups of a consumer
                                           of that name only             */
    size_t               max_token;     /* bytes                          */
    pt_str_t             keys_path;     /* a JWKS or PEM file             */
    pt_jwt_keyset_t     *keys;          /* a file's or secret's: freed
                                           with the cycle pool; a URL's:
                                           each worker's own, NULL until
                                           the helper fetched some        */
    pt_auth_jwks_t      *jwks;          /* keys: an https URL, or NULL    */
    pt_jwt_policy_t      policy;
    pt_yaml_node_t      *node;
} pt_auth_issuer_t;

/* Global scope. */
typedef struct {
    pt_array_t           consumers;     /* pt_auth_consumer_t *           */
    pt_array_t           issuers;       /* pt_auth_issuer_t *             */
    pt_array_t           keys;          /* pt_auth_key_t, all consumers   */
    pt_hash_t            key_index;     /* digest -> pt_auth_key_t *      */
    pt_hash_t            by_name;       /* name -> pt_auth_consumer_t *   */
    pt_msec_t            cache_ttl;     /* Basic and API key verdicts     */
    pt_uint_t            cache_size;    /* entries per worker             */
    pt_uint_t            njwks;         /* issuers with a JWKS URL        */
    pt_shm_zone_t       *jwks_zone;     /* their documents ("auth_jwks")  */
    unsigned             used:1;        /* some route has auth            */
} pt_auth_main_conf_t;

/* A route's auth:. */
typedef struct {
    unsigned             methods[PT_AUTH_NMETHODS];  /* in order          */
    pt_uint_t            nmethods;
    pt_auth_issuer_t    *issuer;
    pt_yaml_node_t      *issuer_node;
    pt_str_t             issuer_name;
    pt_str_t             key_header;    /* API key: a request field ...   */
    pt_str_t             key_query;     /* ... or a query parameter       */
    pt_str_t             realm;
    pt_array_t           allow_groups;  /* pt_str_t                       */
    pt_array_t           require_claims;   /* pt_auth_claim_rule_t        */
    int                  keep_credentials;
    void                *forward;       /* pt_auth_forward_t              */
    pt_yaml_node_t      *node;
    unsigned             set:1;
} pt_auth_route_conf_t;

typedef struct {
    pt_str_t             name;
    pt_str_t             value;
} pt_auth_claim_rule_t;

/* A request's verdict. */
typedef struct {
    pt_auth_consumer_t  *consumer;      /* configured consumer, if any    */
    pt_str_t             name;          /* what ${consumer} says          */
    pt_str_t             groups;        /* "a,b"                          */
    json_t              *claims;        /* a verified JWT's; a reference  */
    void                *forward;       /* pt_auth_forward.c's state      */
    unsigned             method;        /* which one decided              */
    unsigned             done:1;
} pt_auth_ctx_t;


/* pt_auth_conf.c: the keys. */
extern const pt_command_t  pt_auth_commands[];
void *pt_auth_create_conf(pt_conf_t *cf, pt_conf_level_e level);
int pt_auth_postconfig_conf(pt_conf_t *cf);
/* 1 when the route's auth lists method m. */
int pt_auth_route_has(pt_auth_route_conf_t *acf, unsigned m);

/* pt_auth_cache.c: per-worker verdicts by credential digest. */
typedef struct {
    u_char               digest[32];    /* of the credential, salted      */
    pt_msec_t            expires;       /* pt_current_msec clock; 0: free */
    unsigned             ok:1;          /* 0: a known-bad credential      */
    pt_auth_consumer_t  *consumer;
    pt_str_t             name;          /* malloc'd copy (JWT consumers)  */
    pt_str_t             groups;        /* malloc'd copy                  */
    json_t              *claims;        /* a reference, or NULL           */
} pt_auth_cache_entry_t;

int pt_auth_cache_init(pt_uint_t size);
void pt_auth_cache_free(void);
/* The live entry for digest, or NULL. */
pt_auth_cache_entry_t *pt_auth_cache_find(const u_char digest[32]);
/* A slot for digest, emptied (the oldest of its set when all are live):
 * fill it in and set expires. NULL only when the cache is off. */
pt_auth_cache_entry_t *pt_auth_cache_slot(const u_char digest[32]);
/* Give a slot's contents back (when filling it failed). */
void pt_auth_cache_clear(pt_auth_cache_entry_t *e);
/* SHA-256 over a tag and the credential: the cache key (tag NULL: the
 * SHA-256 of `a` alone). */
int pt_auth_digest(const char *tag, const void *a, size_t alen,
    const void *b, size_t blen, u_char digest[32]);

/* pt_auth_method.c: each method finds its credential (PT_DECLINED when
 * the request has none), then checks it: PT_OK with ctx filled, 401, or
 * PT_ERROR. *reason says why a 401 (for the log and error_description). */
int pt_auth_api_key(pt_http_request_t *r, pt_auth_route_conf_t *acf,
    pt_auth_ctx_t *ctx, const char **reason);
int pt_auth_basic(pt_http_request_t *r, pt_auth_route_conf_t *acf,
    pt_auth_ctx_t *ctx, const char **reason);
int pt_auth_jwt(pt_http_request_t *r, pt_auth_route_conf_t *acf,
    pt_auth_ctx_t *ctx, const char **reason);
int pt_auth_mtls(pt_http_request_t *r, pt_auth_route_conf_t *acf,
    pt_auth_ctx_t *ctx, const char **reason);
/* Remove what carried the credential from the upstream request. */
int pt_auth_strip_credentials(pt_http_request_t *r,
    pt_auth_route_conf_t *acf, unsigned method);

pt_auth_main_conf_t *pt_auth_main_conf(void);

/* pt_auth_jwks.c: keys from an https JWKS URL, fetched by the helper
 * process into the "auth_jwks" zone, taken from there by each worker. */

/* 1 when a `keys:` value is a URL ("scheme://..."). */
int pt_auth_jwks_is_url(const pt_str_t *s);
/* is->jwks from the URL (https only, parsed strictly) and the issuer's
 * keys_ca, keys_refresh and keys_retry, with its internal upstream. PT_OK,
 * or PT_ERROR after pt_conf_error(). */
int pt_auth_jwks_parse(pt_conf_t *cf, pt_auth_issuer_t *is,
    pt_yaml_node_t *issuer, pt_yaml_node_t *url);
/* An issuer whose keys are no URL: each keys_* key is an error. */
int pt_auth_jwks_no_url(pt_conf_t *cf, pt_yaml_node_t *issuer);
/* postconfig: the zone and the helper, when an issuer has a URL. */
int pt_auth_jwks_postconfig(pt_conf_t *cf, pt_auth_main_conf_t *amcf);
/* init_conf: the zone's size, once known, holds the documents. */
int pt_auth_jwks_init_conf(pt_conf_t *cf, pt_auth_main_conf_t *amcf);
/* init_master: each URL issuer's slot in the zone. */
int pt_auth_jwks_init_master(pt_cycle_t *cycle, pt_auth_main_conf_t *amcf);
int pt_auth_jwks_init_helper(pt_cycle_t *cycle, pt_auth_main_conf_t *amcf);
void pt_auth_jwks_exit_helper(pt_cycle_t *cycle);
void pt_auth_jwks_exit_worker(pt_auth_main_conf_t *amcf);
/* In a worker: a URL issuer's keys, rebuilt first if the zone has a new
 * document; NULL when there are none yet. Valid until the next call. */
const pt_jwt_keyset_t *pt_auth_jwks_keys(pt_auth_issuer_t *is);
/* A token named a kid the keys lack: the helper fetches the document
 * again, at most once every keys_retry. */
void pt_auth_jwks_want(pt_auth_issuer_t *is);


#endif /* PT_AUTH_H */
