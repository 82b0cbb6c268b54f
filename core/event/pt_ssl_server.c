/*
 * pt_ssl_server.c: TLS on listeners (see pt_ssl.h).
 *
 * A listener's certificates are read at every config load and sorted by
 * the DNS names of their subjectAltName into contexts (SSL_CTX): a name
 * gets, for each key type, the best certificate holding it (the name
 * itself before a "*." wildcard of its parent, then the first written).
 * So RSA and ECDSA certificates for one name sit in one context and
 * OpenSSL picks between them by the client's signature algorithms. The
 * SNI callback switches a connection to its name's context; no SNI, or
 * a name no certificate holds, stays on the default one: the context of
 * the first certificate's first name.
 *
 * Every context of a listener carries the same settings (protocols,
 * Mozilla's intermediate ciphers, ALPN, client certificates, the session
 * context) because OpenSSL reads some of them from the context it began
 * with and some from the one it switched to. Tickets and the session
 * cache are read from the first, through pt_ssl_shared.c.
 */

#include <sys/socket.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "pt_ssl_conn.h"
#include "pt_conf.h"
#include "pt_hash.h"
#include "pt_log.h"
#include "pt_palloc.h"
#include "pt_string.h"


/* Mozilla's "intermediate" configuration (version 5.7): TLS 1.2 suites
 * with forward secrecy and AEAD ciphers only; for TLS 1.3, its three
 * suites (OpenSSL's defaults too). */
#define PT_SSL_CIPHERS                                                      \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"            \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"            \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"            \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"                  \
    "DHE-RSA-CHACHA20-POLY1305"

#define PT_SSL_CIPHERSUITES                                                 \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"                        \
    "TLS_CHACHA20_POLY1305_SHA256"

#define PT_SSL_GROUPS   "X25519:prime256v1:secp384r1"

/* A context holds one certificate per key type. */
enum {
    PT_SSL_KEY_RSA = 0,
    PT_SSL_KEY_RSA_PSS,
    PT_SSL_KEY_EC,
    PT_SSL_KEY_ED25519,
    PT_SSL_KEY_ED448,
    PT_SSL_NKEYS
};


typedef struct {
    X509               *x509;
    EVP_PKEY           *pkey;
    STACK_OF(X509)     *chain;
    unsigned            type;        /* PT_SSL_KEY_*                      */
    pt_str_t            first;       /* its first usable name, "*.d" for a
                                        wildcard; empty: none             */
    unsigned char       digest[32];  /* SHA-256 of the DER                */
} pt_ssl_cert_t;

/* What a name gets: a certificate index per key type, or -1. */
typedef struct {
    int                 idx[PT_SSL_NKEYS];
} pt_ssl_pick_t;

/* While sorting: the certificates that hold a name exactly, and those
 * that hold "*." + the name. */
typedef struct {
    pt_array_t          exact;       /* size_t                            */
    pt_array_t          wild;        /* size_t                            */
} pt_ssl_name_t;


struct pt_ssl_server_s {
    SSL_CTX              *ctx;       /* the default context              */
    pt_array_t            ctxs;      /* SSL_CTX *, ctx among them        */
    pt_hash_t             exact;     /* name -> SSL_CTX *                */
    pt_hash_t             wild;      /* d of "*.d" -> SSL_CTX *          */
    pt_ssl_cert_t        *certs;
    size_t                ncerts;
    unsigned              protocols;
    unsigned              verify;
    pt_str_t              ca_file;
    X509_STORE           *ca_store;
    STACK_OF(X509_NAME)  *ca_names;
    unsigned char        *alpn;      /* wire format                      */
    size_t                alpn_len;
    pt_ssl_shared_t      *shared;
};


static void pt_ssl_server_cleanup(void *data);
static int pt_ssl_cert_load(pt_conf_t *cf, const pt_ssl_cert_conf_t *cc,
    pt_ssl_cert_t *cert);
static int pt_ssl_key_load(pt_conf_t *cf, const pt_ssl_cert_conf_t *cc,
    pt_ssl_cert_t *cert);
static void pt_ssl_cert_check_dates(const pt_ssl_cert_conf_t *cc,
    X509 *x509);
static int pt_ssl_cert_names(pt_conf_t *cf, pt_ssl_server_t *srv,
    size_t i, const pt_ssl_cert_conf_t *cc, pt_hash_t *names);
static int pt_ssl_client_ca_load(pt_conf_t *cf, pt_ssl_server_t *srv,
    const pt_ssl_server_conf_t *conf);
static int pt_ssl_server_sort(pt_conf_t *cf, pt_ssl_server_t *srv,
    pt_hash_t *names, pt_yaml_node_t *node);
static SSL_CTX *pt_ssl_server_ctx_for(pt_conf_t *cf, pt_ssl_server_t *srv,
    pt_hash_t *made, const pt_ssl_pick_t *pick, pt_yaml_node_t *node);
static int pt_ssl_server_ctx_init(pt_conf_t *cf, pt_ssl_server_t *srv,
    SSL_CTX *ctx, pt_yaml_node_t *node);
static int pt_ssl_no_password(char *buf, int size, int rwflag, void *data);
static int pt_ssl_verify_any(int ok, X509_STORE_CTX *store);
static int pt_ssl_servername(SSL *ssl, int *alert, void *arg);
static int pt_ssl_alpn_select(SSL *ssl, const unsigned char **out,
    unsigned char *outlen, const unsigned char *in, unsigned int inlen,
    void *arg);
static int pt_ssl_ticket(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc);
static int pt_ssl_server_new_session(SSL *ssl, SSL_SESSION *sess);
static SSL_SESSION *pt_ssl_server_get_session(SSL *ssl,
    const unsigned char *id, int len, int *copy);
static void pt_ssl_server_remove_session(SSL_CTX *ctx, SSL_SESSION *sess);


pt_ssl_server_t *
pt_ssl_server_create(pt_conf_t *cf, const pt_ssl_server_conf_t *conf,
    pt_ssl_shared_t *shared)
{
    int                 rc;
    size_t              i;
    pt_hash_t           names;
    pt_pool_t          *tmp;
    pt_ssl_server_t    *srv;
    pt_pool_cleanup_t  *cln;

    srv = pt_pcalloc(cf->pool, sizeof(pt_ssl_server_t));
    cln = pt_pool_cleanup_add(cf->pool, pt_ssl_server_cleanup, srv);

    if (srv == NULL || cln == NULL || conf->ncerts == 0
        || pt_array_init(&srv->ctxs, cf->pool, 4, sizeof(SSL_CTX *)) != PT_OK)
    {
        (void) pt_conf_error(cf, conf->node, "out of memory");
        return NULL;
    }

    srv->certs = pt_pcalloc(cf->pool, conf->ncerts * sizeof(pt_ssl_cert_t));
    if (srv->certs == NULL) {
        (void) pt_conf_error(cf, conf->node, "out of memory");
        return NULL;
    }

    srv->ncerts = conf->ncerts;
    srv->protocols = conf->protocols;
    srv->verify = conf->client_verify;
    srv->shared = shared;

    /* Every certificate is read even after a failure, so that -t shows
     * every bad file at once. */
    rc = PT_OK;

    for (i = 0; i < conf->ncerts; i++) {
        if (pt_ssl_cert_load(cf, &conf->certs[i], &srv->certs[i]) != PT_OK) {
            rc = PT_ERROR;
        }
    }

    if (conf->client_verify != PT_SSL_VERIFY_OFF
        && pt_ssl_client_ca_load(cf, srv, conf) != PT_OK)
    {
        rc = PT_ERROR;
    }

    if (rc != PT_OK) {
        return NULL;
    }

    tmp = pt_pool_create(PT_POOL_DEFAULT_SIZE);

    if (tmp == NULL || pt_hash_init(&names, tmp, conf->ncerts * 2, 0)
                       != PT_OK
        || pt_hash_init(&srv->exact, cf->pool, conf->ncerts, 0) != PT_OK
        || pt_hash_init(&srv->wild, cf->pool, 4, 0) != PT_OK)
    {
        pt_pool_destroy(tmp);
        (void) pt_conf_error(cf, conf->node, "out of memory");
        return NULL;
    }

    for (i = 0; i < conf->ncerts && rc == PT_OK; i++) {
        rc = pt_ssl_cert_names(cf, srv, i, &conf->certs[i], &names);
    }

    if (rc == PT_OK) {
        rc = pt_ssl_server_sort(cf, srv, &names, conf->node);
    }

    pt_pool_destroy(tmp);

    return rc == PT_OK ? srv : NULL;
}


static void
pt_ssl_server_cleanup(void *data)
{
    size_t            i;
    SSL_CTX         **ctx;
    pt_ssl_server_t  *srv;

    srv = data;

    if (srv == NULL) {
        return;
    }

    ctx = srv->ctxs.elts;

    for (i = 0; ctx && i < srv->ctxs.nelts; i++) {
        SSL_CTX_free(ctx[i]);
    }

    srv->ctxs.nelts = 0;

    for (i = 0; srv->certs && i < srv->ncerts; i++) {
        X509_free(srv->certs[i].x509);
        EVP_PKEY_free(srv->certs[i].pkey);
        sk_X509_pop_free(srv->certs[i].chain, X509_free);
        srv->certs[i].x509 = NULL;
        srv->certs[i].pkey = NULL;
        srv->certs[i].chain = NULL;
    }

    X509_STORE_free(srv->ca_store);
    sk_X509_NAME_pop_free(srv->ca_names, X509_NAME_free);
    srv->ca_store = NULL;
    srv->ca_names = NULL;
}


/* The certificate (then its chain) and its key; the key must match. */
static int
pt_ssl_cert_load(pt_conf_t *cf, const pt_ssl_cert_conf_t *cc,
    pt_ssl_cert_t *cert)
{
    int            asked;
    X509          *x;
    BIO           *bio;
    char           reason[PT_SSL_ERROR_LEN];
    unsigned int   n;
    unsigned long  e;

    ERR_clear_error();

    bio = BIO_new_file(cc->cert.data, "r");
    if (bio == NULL) {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        return pt_conf_error(cf, cc->cert_node,
                             "cannot read certificate \"%s\": %s",
                             cc->cert.data, reason);
    }

    asked = 0;
    cert->x509 = PEM_read_bio_X509_AUX(bio, NULL, pt_ssl_no_password, &asked);

    if (cert->x509 == NULL) {
        BIO_free(bio);
        pt__ssl_queue_reasons(reason, sizeof(reason));
        return pt_conf_error(cf, cc->cert_node,
                             "no PEM certificate in \"%s\": %s",
                             cc->cert.data, reason);
    }

    cert->chain = sk_X509_new_null();
    if (cert->chain == NULL) {
        BIO_free(bio);
        return pt_conf_error(cf, cc->cert_node, "out of memory");
    }

    while ((x = PEM_read_bio_X509(bio, NULL, pt_ssl_no_password, &asked))
           != NULL)
    {
        if (!sk_X509_push(cert->chain, x)) {
            X509_free(x);
            BIO_free(bio);
            return pt_conf_error(cf, cc->cert_node, "out of memory");
        }
    }

    BIO_free(bio);

    /* The chain ends where no PEM block starts; anything else is a
     * broken block. */
    e = ERR_peek_last_error();

    if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM
                    && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
    {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        return pt_conf_error(cf, cc->cert_node,
                             "bad certificate after the first in \"%s\": %s",
                             cc->cert.data, reason);
    }

    ERR_clear_error();

    if (!X509_digest(cert->x509, EVP_sha256(), cert->digest, &n)) {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        return pt_conf_error(cf, cc->cert_node, "X509_digest() failed: %s",
                             reason);
    }

    if (pt_ssl_key_load(cf, cc, cert) != PT_OK) {
        return PT_ERROR;
    }

    pt_ssl_cert_check_dates(cc, cert->x509);

    return PT_OK;
}


static int
pt_ssl_key_load(pt_conf_t *cf, const pt_ssl_cert_conf_t *cc,
    pt_ssl_cert_t *cert)
{
    int            asked;
    BIO           *bio, *mem;
    char           reason[PT_SSL_ERROR_LEN];
    long           len;
    char          *data;

    ERR_clear_error();

    bio = BIO_new_file(cc->key.data, "r");
    if (bio == NULL) {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        return pt_conf_error(cf, cc->key_node,
                             "cannot read private key \"%s\": %s",
                             cc->key.data, reason);
    }

    /* Read whole, to tell "no PEM at all" from a PEM block OpenSSL
     * cannot decode (its decoders say "unsupported" for both). */
    mem = BIO_new(BIO_s_mem());

    while (mem != NULL) {
        char  buf[4096];
        int   n;

        n = BIO_read(bio, buf, sizeof(buf));
        if (n <= 0) {
            break;
        }

        if (BIO_write(mem, buf, n) != n || BIO_pending(mem) > 1024 * 1024) {
            BIO_free(mem);
            mem = NULL;
        }
    }

    BIO_free(bio);

    if (mem == NULL) {
        ERR_clear_error();
        return pt_conf_error(cf, cc->key_node,
                             "cannot read private key \"%s\": too big, or out of memory",
                             cc->key.data);
    }

    len = BIO_get_mem_data(mem, &data);

    if (len <= 0 || memmem(data, (size_t) len, "-----BEGIN ", 11) == NULL) {
        BIO_free(mem);
        ERR_clear_error();
        return pt_conf_error(cf, cc->key_node,
                             "no PEM private key in \"%s\"", cc->key.data);
    }

    asked = 0;
    cert->pkey = PEM_read_bio_PrivateKey(mem, NULL, pt_ssl_no_password,
                                         &asked);
    BIO_free(mem);

    if (cert->pkey == NULL) {
        if (asked) {
            ERR_clear_error();
            return pt_conf_error(cf, cc->key_node,
                                 "private key \"%s\" is encrypted: keys must be stored without a passphrase",
                                 cc->key.data);
        }

        pt__ssl_queue_reasons(reason, sizeof(reason));
        return pt_conf_error(cf, cc->key_node,
                             "cannot read private key \"%s\": %s",
                             cc->key.data, reason);
    }

    switch (EVP_PKEY_get_base_id(cert->pkey)) {

    case EVP_PKEY_RSA:
        cert->type = PT_SSL_KEY_RSA;
        break;

    case EVP_PKEY_RSA_PSS:
        cert->type = PT_SSL_KEY_RSA_PSS;
        break;

    case EVP_PKEY_EC:
        cert->type = PT_SSL_KEY_EC;
        break;

    case EVP_PKEY_ED25519:
        cert->type = PT_SSL_KEY_ED25519;
        break;

    case EVP_PKEY_ED448:
        cert->type = PT_SSL_KEY_ED448;
        break;

    default:
        return pt_conf_error(cf, cc->key_node,
                             "private key \"%s\": unsupported key type (RSA, RSA-PSS, ECDSA, Ed25519, Ed448)",
                             cc->key.data);
    }

    if (!X509_check_private_key(cert->x509, cert->pkey)) {
        ERR_clear_error();
        return pt_conf_error(cf, cc->cert_node,
                             "certificate \"%s\" does not match the private key \"%s\"",
                             cc->cert.data, cc->key.data);
    }

    return PT_OK;
}


/* Nothing prompts: an encrypted key is an error, never a wait on a
 * terminal. */
static int
pt_ssl_no_password(char *buf, int size, int rwflag, void *data)
{
    int  *asked;

    asked = data;
    if (asked) {
        *asked = 1;
    }

    return -1;
}


/* An expired certificate still loads (replacing it is the cure, and a
 * gateway that refused to start would serve nobody): it warns. */
static void
pt_ssl_cert_check_dates(const pt_ssl_cert_conf_t *cc, X509 *x509)
{
    int               late, early;
    BIO              *bio;
    long              len;
    char             *text;
    const ASN1_TIME  *t;

    late = X509_cmp_current_time(X509_get0_notAfter(x509)) < 0;
    early = X509_cmp_current_time(X509_get0_notBefore(x509)) > 0;

    if (!late && !early) {
        return;
    }

    t = late ? X509_get0_notAfter(x509) : X509_get0_notBefore(x509);
    text = NULL;
    len = 0;

    bio = BIO_new(BIO_s_mem());
    if (bio && ASN1_TIME_print(bio, t)) {
        len = BIO_get_mem_data(bio, &text);
    }

    pt_log_error(PT_LOG_WARN, NULL, 0, "%s:%u:%u: certificate \"%s\" %s %.*s",
                 cc->cert_node->file, cc->cert_node->line,
                 cc->cert_node->col, cc->cert.data,
                 late ? "expired on" : "is not valid before",
                 text ? (int) len : 1, text ? text : "?");

    BIO_free(bio);
    ERR_clear_error();
}


/* The certificate's DNS names, into the names table. */
static int
pt_ssl_cert_names(pt_conf_t *cf, pt_ssl_server_t *srv, size_t i,
    const pt_ssl_cert_conf_t *cc, pt_hash_t *names)
{
    int                   n, k, wild, rc;
    char                  name[256], shown[64];
    void                 *old;
    size_t                len, j;
    size_t               *slot;
    pt_ssl_name_t        *entry;
    pt_ssl_cert_t        *cert;
    GENERAL_NAME         *gen;
    GENERAL_NAMES        *gens;
    const unsigned char  *data;

    cert = &srv->certs[i];
    rc = PT_OK;

    gens = X509_get_ext_d2i(cert->x509, NID_subject_alt_name, NULL, NULL);
    n = gens ? sk_GENERAL_NAME_num(gens) : 0;

    for (k = 0; k < n; k++) {
        gen = sk_GENERAL_NAME_value(gens, k);

        if (gen->type != GEN_DNS) {
            continue;
        }

        data = ASN1_STRING_get0_data(gen->d.dNSName);
        len = (size_t) ASN1_STRING_length(gen->d.dNSName);

        if (pt__ssl_san_pattern((const char *) data, len, name, &len, &wild)
            != PT_OK)
        {
            for (j = 0; j < sizeof(shown) - 1
                        && j < (size_t) ASN1_STRING_length(gen->d.dNSName);
                 j++)
            {
                shown[j] = (data[j] >= 0x20 && data[j] < 0x7f) ? data[j] : '?';
            }
            shown[j] = '\0';

            pt_log_error(PT_LOG_WARN, NULL, 0,
                         "%s:%u:%u: certificate \"%s\": subjectAltName \"%s\" can match no server name; ignored",
                         cc->cert_node->file, cc->cert_node->line,
                         cc->cert_node->col, cc->cert.data, shown);
            continue;
        }

        if (cert->first.len == 0) {
            cert->first.data = pt_psprintf(cf->pool, &cert->first.len,
                                           "%s%.*s", wild ? "*." : "",
                                           (int) len, name);
            if (cert->first.data == NULL) {
                rc = PT_ERROR;
                break;
            }
        }

        entry = pt_hash_find(names, name, len);

        if (entry == NULL) {
            entry = pt_pcalloc(names->pool, sizeof(pt_ssl_name_t));

            if (entry == NULL
                || pt_array_init(&entry->exact, names->pool, 2,
                                 sizeof(size_t)) != PT_OK
                || pt_array_init(&entry->wild, names->pool, 2,
                                 sizeof(size_t)) != PT_OK
                || pt_hash_add(names, name, len, entry, &old) != PT_OK)
            {
                rc = PT_ERROR;
                break;
            }
        }

        slot = pt_array_push(wild ? &entry->wild : &entry->exact);
        if (slot == NULL) {
            rc = PT_ERROR;
            break;
        }

        *slot = i;
    }

    GENERAL_NAMES_free(gens);

    if (rc != PT_OK) {
        return pt_conf_error(cf, cc->cert_node, "out of memory");
    }

    if (cert->first.len == 0 && i > 0) {
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "%s:%u:%u: certificate \"%s\" has no DNS name in its subjectAltName: no server name selects it",
                     cc->cert_node->file, cc->cert_node->line,
                     cc->cert_node->col, cc->cert.data);
    }

    return PT_OK;
}


static int
pt_ssl_client_ca_load(pt_conf_t *cf, pt_ssl_server_t *srv,
    const pt_ssl_server_conf_t *conf)
{
    char  reason[PT_SSL_ERROR_LEN];

    ERR_clear_error();

    srv->ca_file = conf->client_ca;
    srv->ca_store = X509_STORE_new();

    if (srv->ca_store == NULL) {
        return pt_conf_error(cf, conf->client_ca_node, "out of memory");
    }

    if (!X509_STORE_load_file(srv->ca_store, conf->client_ca.data)) {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        return pt_conf_error(cf, conf->client_ca_node,
                             "cannot load client CA certificates from \"%s\": %s",
                             conf->client_ca.data, reason);
    }

    /* The names sent in the CertificateRequest, so that a client with
     * several certificates knows which one to send. */
    srv->ca_names = SSL_load_client_CA_file(conf->client_ca.data);

    if (srv->ca_names == NULL) {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        return pt_conf_error(cf, conf->client_ca_node,
                             "no CA certificate in \"%s\": %s",
                             conf->client_ca.data, reason);
    }

    return PT_OK;
}


/* Contexts for every name: exact names, wildcard domains, the default. */
static int
pt_ssl_server_sort(pt_conf_t *cf, pt_ssl_server_t *srv, pt_hash_t *names,
    pt_yaml_node_t *node)
{
    int              wild;
    char            *dot;
    void            *found;
    size_t           i, k, len;
    SSL_CTX         *ctx;
    pt_hash_t        made;
    pt_ssl_name_t   *entry, *parent;
    pt_ssl_pick_t    pick;
    pt_hash_elt_t   *e;
    size_t          *idx;

    if (pt_hash_init(&made, names->pool, 8, 0) != PT_OK) {
        return pt_conf_error(cf, node, "out of memory");
    }

    for (i = 0; i <= names->mask; i++) {
        e = names->slots[i].elt;

        if (e == NULL) {
            continue;
        }

        entry = e->value;

        /* The name itself: its own certificates first, then those with a
         * wildcard of its parent domain. */
        if (entry->exact.nelts) {
            memset(&pick, 0xff, sizeof(pick));

            idx = entry->exact.elts;
            for (k = 0; k < entry->exact.nelts; k++) {
                if (pick.idx[srv->certs[idx[k]].type] < 0) {
                    pick.idx[srv->certs[idx[k]].type] = (int) idx[k];
                }
            }

            dot = memchr(e->key, '.', e->len);
            parent = dot ? pt_hash_find(names, dot + 1,
                                        e->len - (size_t) (dot + 1 - e->key))
                         : NULL;

            if (parent) {
                idx = parent->wild.elts;
                for (k = 0; k < parent->wild.nelts; k++) {
                    if (pick.idx[srv->certs[idx[k]].type] < 0) {
                        pick.idx[srv->certs[idx[k]].type] = (int) idx[k];
                    }
                }
            }

            ctx = pt_ssl_server_ctx_for(cf, srv, &made, &pick, node);
            if (ctx == NULL
                || pt_hash_add(&srv->exact, e->key, e->len, ctx, NULL)
                   == PT_ERROR)
            {
                return PT_ERROR;
            }
        }

        if (entry->wild.nelts) {
            memset(&pick, 0xff, sizeof(pick));

            idx = entry->wild.elts;
            for (k = 0; k < entry->wild.nelts; k++) {
                if (pick.idx[srv->certs[idx[k]].type] < 0) {
                    pick.idx[srv->certs[idx[k]].type] = (int) idx[k];
                }
            }

            ctx = pt_ssl_server_ctx_for(cf, srv, &made, &pick, node);
            if (ctx == NULL
                || pt_hash_add(&srv->wild, e->key, e->len, ctx, NULL)
                   == PT_ERROR)
            {
                return PT_ERROR;
            }
        }
    }

    /* The default: what the first certificate's first name gets, so an
     * RSA twin of an ECDSA default serves clients without SNI too. */
    found = NULL;

    if (srv->certs[0].first.len) {
        wild = srv->certs[0].first.data[0] == '*';
        len = srv->certs[0].first.len - (wild ? 2 : 0);
        found = pt_hash_find(wild ? &srv->wild : &srv->exact,
                             srv->certs[0].first.data + (wild ? 2 : 0), len);
    }

    if (found == NULL) {
        memset(&pick, 0xff, sizeof(pick));
        pick.idx[srv->certs[0].type] = 0;

        found = pt_ssl_server_ctx_for(cf, srv, &made, &pick, node);
        if (found == NULL) {
            return PT_ERROR;
        }
    }

    srv->ctx = found;

    return PT_OK;
}


/* The context holding exactly the certificates of pick, made once. */
static SSL_CTX *
pt_ssl_server_ctx_for(pt_conf_t *cf, pt_ssl_server_t *srv, pt_hash_t *made,
    const pt_ssl_pick_t *pick, pt_yaml_node_t *node)
{
    int             t;
    char            reason[PT_SSL_ERROR_LEN];
    SSL_CTX        *ctx, **slot;
    pt_ssl_cert_t  *cert;

    ctx = pt_hash_find(made, (const char *) pick, sizeof(pt_ssl_pick_t));
    if (ctx) {
        return ctx;
    }

    ERR_clear_error();

    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        (void) pt_conf_error(cf, node, "SSL_CTX_new() failed: %s", reason);
        return NULL;
    }

    slot = pt_array_push(&srv->ctxs);
    if (slot == NULL) {
        SSL_CTX_free(ctx);
        (void) pt_conf_error(cf, node, "out of memory");
        return NULL;
    }

    *slot = ctx;         /* freed with the server from here on */

    if (pt_ssl_server_ctx_init(cf, srv, ctx, node) != PT_OK) {
        return NULL;
    }

    for (t = 0; t < PT_SSL_NKEYS; t++) {
        if (pick->idx[t] < 0) {
            continue;
        }

        cert = &srv->certs[pick->idx[t]];

        if (!SSL_CTX_use_cert_and_key(ctx, cert->x509, cert->pkey,
                                      cert->chain, 1))
        {
            pt__ssl_queue_reasons(reason, sizeof(reason));
            (void) pt_conf_error(cf, node,
                                 "cannot use certificate %d: %s",
                                 pick->idx[t] + 1, reason);
            return NULL;
        }
    }

    if (pt_hash_add(made, (const char *) pick, sizeof(pt_ssl_pick_t), ctx,
                    NULL) == PT_ERROR)
    {
        (void) pt_conf_error(cf, node, "out of memory");
        return NULL;
    }

    return ctx;
}


static int
pt_ssl_server_ctx_init(pt_conf_t *cf, pt_ssl_server_t *srv, SSL_CTX *ctx,
    pt_yaml_node_t *node)
{
    int                   min, max, mode;
    char                  reason[PT_SSL_ERROR_LEN];
    STACK_OF(X509_NAME)  *ca_names;

    min = (srv->protocols & PT_SSL_TLSv1_2) ? TLS1_2_VERSION : TLS1_3_VERSION;
    max = (srv->protocols & PT_SSL_TLSv1_3) ? TLS1_3_VERSION : TLS1_2_VERSION;

    if (!SSL_CTX_set_min_proto_version(ctx, min)
        || !SSL_CTX_set_max_proto_version(ctx, max)
        || !SSL_CTX_set_cipher_list(ctx, PT_SSL_CIPHERS)
        || !SSL_CTX_set_ciphersuites(ctx, PT_SSL_CIPHERSUITES)
        || !SSL_CTX_set1_groups_list(ctx, PT_SSL_GROUPS)
        || !SSL_CTX_set_dh_auto(ctx, 1))
    {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        return pt_conf_error(cf, node, "cannot set up TLS: %s", reason);
    }

    /* A client that closes without close_notify reads as an EOF, as on
     * cleartext: HTTP framing tells a complete request from a cut one.
     * The client picks among the ciphers (Mozilla's advice: they are
     * all strong, and it knows whether it has AES hardware). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION
                        | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);

    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                     | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                     | SSL_MODE_RELEASE_BUFFERS);

    /* One read(2) takes whatever the socket holds (a record's header
     * and body, pipelined requests) instead of two per record; readers
     * never rely on the socket's readiness after data (pt_ssl_recv). */
    SSL_CTX_set_read_ahead(ctx, 1);

    SSL_CTX_set_app_data(ctx, srv);
    SSL_CTX_set_tlsext_servername_callback(ctx, pt_ssl_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, srv);
    SSL_CTX_set_alpn_select_cb(ctx, pt_ssl_alpn_select, srv);

    /* Sessions: only the shared cache, never OpenSSL's per-process one,
     * which another worker cannot see. */
    SSL_CTX_set_timeout(ctx, PT_SSL_SESSION_TIMEOUT);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER
                                   | SSL_SESS_CACHE_NO_INTERNAL
                                   | SSL_SESS_CACHE_NO_AUTO_CLEAR);
    SSL_CTX_sess_set_new_cb(ctx, pt_ssl_server_new_session);
    SSL_CTX_sess_set_get_cb(ctx, pt_ssl_server_get_session);
    SSL_CTX_sess_set_remove_cb(ctx, pt_ssl_server_remove_session);

    if (!SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, pt_ssl_ticket)) {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        return pt_conf_error(cf, node, "cannot set up TLS tickets: %s",
                             reason);
    }

    if (srv->verify == PT_SSL_VERIFY_OFF) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return PT_OK;
    }

    ca_names = SSL_dup_CA_list(srv->ca_names);
    if (ca_names == NULL) {
        return pt_conf_error(cf, node, "out of memory");
    }

    SSL_CTX_set_client_CA_list(ctx, ca_names);
    SSL_CTX_set1_cert_store(ctx, srv->ca_store);

    if (srv->verify == PT_SSL_VERIFY_REQUIRED) {
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);

    } else {
        /* Optional: a certificate that does not verify still gets in,
         * without an identity; the result stays in the session for
         * pt_ssl_client_verified(). */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, pt_ssl_verify_any);
    }

    return PT_OK;
}


/* client_verify: optional: anything gets in; the first failure is kept
 * (OpenSSL keeps the last, "unable to verify the first certificate",
 * which says less). */
static int
pt_ssl_verify_any(int ok, X509_STORE_CTX *store)
{
    SSL            *ssl;
    pt_ssl_conn_t  *sc;

    if (ok) {
        return 1;
    }

    ssl = X509_STORE_CTX_get_ex_data(store,
                                     SSL_get_ex_data_X509_STORE_CTX_idx());
    sc = ssl ? SSL_get_app_data(ssl) : NULL;

    if (sc && sc->verify_error == 0) {
        sc->verify_error = X509_STORE_CTX_get_error(store);
    }

    return 1;
}


int
pt_ssl_server_set_alpn(pt_conf_t *cf, pt_ssl_server_t *srv,
    const pt_str_t *protos, size_t n)
{
    size_t          i, len;
    unsigned char  *p;

    len = 0;

    for (i = 0; i < n; i++) {
        if (protos[i].len == 0 || protos[i].len > 255) {
            return pt_conf_error(cf, NULL, "invalid ALPN protocol name");
        }

        len += 1 + protos[i].len;
    }

    srv->alpn = pt_pnalloc(cf->pool, len ? len : 1);
    if (srv->alpn == NULL) {
        return PT_ERROR;
    }

    p = srv->alpn;

    for (i = 0; i < n; i++) {
        *p++ = (unsigned char) protos[i].len;
        p = (unsigned char *) pt_cpymem(p, protos[i].data, protos[i].len);
    }

    srv->alpn_len = len;

    return PT_OK;
}


int
pt_ssl_server_set_id(pt_conf_t *cf, pt_ssl_server_t *srv, const pt_str_t *id)
{
    size_t          i;
    SSL_CTX       **ctx;
    EVP_MD_CTX     *md;
    unsigned int    n;
    unsigned char   sid[32], flags[2];

    /* What a session may only resume under: the same listener with the
     * same certificates and the same client certificate rules, so a
     * session from a listener without client certificates never opens
     * one that requires them. */
    flags[0] = (unsigned char) srv->verify;
    flags[1] = (unsigned char) srv->protocols;

    md = EVP_MD_CTX_new();

    if (md == NULL
        || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)
        || !EVP_DigestUpdate(md, id->data, id->len)
        || !EVP_DigestUpdate(md, flags, sizeof(flags))
        || (srv->ca_file.len
            && !EVP_DigestUpdate(md, srv->ca_file.data, srv->ca_file.len)))
    {
        EVP_MD_CTX_free(md);
        return pt_conf_error(cf, NULL, "cannot compute a session context");
    }

    for (i = 0; i < srv->ncerts; i++) {
        if (!EVP_DigestUpdate(md, srv->certs[i].digest, 32)) {
            EVP_MD_CTX_free(md);
            return pt_conf_error(cf, NULL,
                                 "cannot compute a session context");
        }
    }

    n = 0;
    if (!EVP_DigestFinal_ex(md, sid, &n) || n != sizeof(sid)) {
        EVP_MD_CTX_free(md);
        return pt_conf_error(cf, NULL, "cannot compute a session context");
    }

    EVP_MD_CTX_free(md);

    ctx = srv->ctxs.elts;

    for (i = 0; i < srv->ctxs.nelts; i++) {
        if (!SSL_CTX_set_session_id_context(ctx[i], sid, sizeof(sid))) {
            return pt_conf_error(cf, NULL, "cannot set a session context");
        }
    }

    return PT_OK;
}


int
pt_ssl_server_accept(pt_connection_t *c, pt_ssl_server_t *srv)
{
    ssize_t          n;
    unsigned char    b;
    pt_ssl_conn_t   *sc;

    if (c->ssl != NULL) {
        return PT_OK;
    }

    for ( ;; ) {
        n = recv(c->fd, &b, 1, MSG_PEEK);

        if (n == 1) {
            break;
        }

        if (n == 0) {
            c->read->ready = 0;
            c->read->eof = 1;
            errno = 0;
            return PT_ERROR;
        }

        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->read->ready = 0;
            return PT_AGAIN;
        }

        if (errno != EINTR) {
            c->read->error = 1;
            c->error = 1;
            return PT_ERROR;
        }
    }

    if (!pt__ssl_is_handshake_byte(b)) {
        return PT_DECLINED;
    }

    ERR_clear_error();

    sc = calloc(1, sizeof(pt_ssl_conn_t));
    if (sc == NULL) {
        errno = ENOMEM;
        return PT_ERROR;
    }

    sc->ssl = SSL_new(srv->ctx);

    if (sc->ssl == NULL || !SSL_set_fd(sc->ssl, c->fd)) {
        if (sc->ssl) {
            SSL_free(sc->ssl);
        }
        free(sc);
        ERR_clear_error();
        errno = ENOMEM;
        return PT_ERROR;
    }

    SSL_set_accept_state(sc->ssl);
    SSL_set_app_data(sc->ssl, sc);
    sc->server = srv;
    snprintf(sc->error, sizeof(sc->error), "no TLS error");

    c->ssl = sc;
    c->recv = pt_ssl_recv;
    c->send_chain = pt_ssl_send_chain;

    return PT_OK;
}


int
pt__ssl_is_handshake_byte(unsigned char b)
{
    return b == 0x16 || (b & 0x80) != 0;
}


/* SNI: switch to the context of the name, if a certificate holds it. */
static int
pt_ssl_servername(SSL *ssl, int *alert, void *arg)
{
    char              name[256], *dot;
    size_t            len;
    SSL_CTX          *ctx;
    const char       *sni;
    pt_ssl_conn_t    *sc;
    pt_ssl_server_t  *srv;

    sc = SSL_get_app_data(ssl);
    srv = arg;
    sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    if (sc == NULL || srv == NULL || sni == NULL) {
        return SSL_TLSEXT_ERR_OK;
    }

    /* A name we cannot match gets the default certificate, as an
     * unknown one does: refusing it would help nobody. */
    if (pt__ssl_name_normalize(sni, strlen(sni), name, &len) != PT_OK) {
        return SSL_TLSEXT_ERR_OK;
    }

    /* A second ClientHello (after HelloRetryRequest) names it again. */
    free(sc->sni);
    sc->sni = malloc(len + 1);
    sc->sni_len = 0;

    if (sc->sni) {
        memcpy(sc->sni, name, len + 1);
        sc->sni_len = len;
    }

    ctx = pt_hash_find(&srv->exact, name, len);

    if (ctx == NULL) {
        dot = memchr(name, '.', len);
        if (dot && dot + 1 < name + len) {
            ctx = pt_hash_find(&srv->wild, dot + 1,
                               len - (size_t) (dot + 1 - name));
        }
    }

    if (ctx && ctx != SSL_get_SSL_CTX(ssl)) {
        if (SSL_set_SSL_CTX(ssl, ctx) == NULL) {
            *alert = SSL_AD_INTERNAL_ERROR;
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        }
    }

    return SSL_TLSEXT_ERR_OK;
}


int
pt__ssl_name_normalize(const char *in, size_t len, char *out,
    size_t *out_len)
{
    size_t         i;
    unsigned char  ch;

    if (len > 0 && in[len - 1] == '.') {
        len--;
    }

    if (len == 0 || len > 253 || in[0] == '.' || in[len - 1] == '.') {
        return PT_DECLINED;
    }

    for (i = 0; i < len; i++) {
        ch = (unsigned char) in[i];

        if (ch >= 'A' && ch <= 'Z') {
            ch = (unsigned char) (ch | 0x20);

        } else if (ch == '.') {
            if (in[i - 1] == '.') {
                return PT_DECLINED;     /* an empty label */
            }

        } else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
                     || ch == '-' || ch == '_'))
        {
            return PT_DECLINED;
        }

        out[i] = (char) ch;
    }

    out[len] = '\0';
    *out_len = len;

    return PT_OK;
}


int
pt__ssl_san_pattern(const char *in, size_t len, char *out, size_t *out_len,
    int *wild)
{
    *wild = 0;

    if (len >= 2 && in[0] == '*' && in[1] == '.') {
        *wild = 1;
        in += 2;
        len -= 2;
    }

    /* Any other '*' (partial wildcards, "*" alone) fails here. */
    return pt__ssl_name_normalize(in, len, out, out_len);
}


static int
pt_ssl_alpn_select(SSL *ssl, const unsigned char **out,
    unsigned char *outlen, const unsigned char *in, unsigned int inlen,
    void *arg)
{
    pt_ssl_server_t  *srv;

    srv = arg;

    if (srv == NULL || srv->alpn_len == 0) {
        return SSL_TLSEXT_ERR_NOACK;
    }

    if (pt__ssl_alpn_pick(srv->alpn, srv->alpn_len, in, inlen, out, outlen)
        == PT_OK)
    {
        return SSL_TLSEXT_ERR_OK;
    }

    /* RFC 7301 3.2: no protocol in common is a no_application_protocol
     * alert (OpenSSL sends it for ALERT_FATAL here). */
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}


int
pt__ssl_alpn_pick(const unsigned char *srv, size_t srv_len,
    const unsigned char *cli, size_t cli_len, const unsigned char **out,
    unsigned char *out_len)
{
    size_t  i, j, n, m;

    /* The client's list must be well formed before any of it is used. */
    for (j = 0; j < cli_len; j += 1 + m) {
        m = cli[j];
        if (m == 0 || j + 1 + m > cli_len) {
            return PT_ERROR;
        }
    }

    for (i = 0; i < srv_len; i += 1 + n) {
        n = srv[i];

        if (n == 0 || i + 1 + n > srv_len) {
            return PT_ERROR;
        }

        for (j = 0; j < cli_len; j += 1 + m) {
            m = cli[j];

            if (m == n && memcmp(&cli[j + 1], &srv[i + 1], n) == 0) {
                *out = &cli[j + 1];
                *out_len = (unsigned char) m;
                return PT_OK;
            }
        }
    }

    return PT_DECLINED;
}


/* Tickets: sealed with the current shared key, opened with the current
 * or the previous one (which asks OpenSSL for a fresh ticket). A TLS 1.3
 * resumption always gets one fresh ticket: clients use a TLS 1.3 ticket
 * once (RFC 8446 C.4), and OpenSSL would otherwise send none, so every
 * other connection of such a client would be a full handshake. */
static int
pt_ssl_ticket(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    int                         i, n;
    OSSL_PARAM                  params[3];
    pt_ssl_conn_t              *sc;
    const EVP_CIPHER           *cipher;
    const pt_ssl_ticket_key_t  *keys, *key;
    static char                 digest[] = "SHA256";
    static EVP_CIPHER          *fetched;

    /* Fetched once per process: OpenSSL 3 would look the legacy
     * EVP_aes_256_cbc() up in its provider store on every ticket. */
    if (fetched == NULL) {
        fetched = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    }

    cipher = fetched ? fetched : EVP_aes_256_cbc();

    sc = SSL_get_app_data(ssl);

    if (sc == NULL || sc->server == NULL || sc->server->shared == NULL) {
        return 0;
    }

    n = pt__ssl_ticket_keys(sc->server->shared->tickets, &keys);

    if (n == 0) {
        return 0;           /* no ticket; or, opening: a full handshake */
    }

    if (enc) {
        key = &keys[0];

        if (RAND_bytes(iv, 16) != 1) {
            return -1;
        }

        memcpy(name, key->name, 16);
        i = 0;

    } else {
        for (i = 0; i < n; i++) {
            if (memcmp(name, keys[i].name, 16) == 0) {
                break;
            }
        }

        if (i == n) {
            return 0;       /* unknown or retired key: a full handshake */
        }

        key = &keys[i];
    }

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                                  (void *) key->hmac, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 digest, 0);
    params[2] = OSSL_PARAM_construct_end();

    if (!EVP_MAC_CTX_set_params(hctx, params)) {
        return -1;
    }

    if (enc) {
        return EVP_EncryptInit_ex(ectx, cipher, NULL, key->aes, iv) ? 1 : -1;
    }

    if (!EVP_DecryptInit_ex(ectx, cipher, NULL, key->aes, iv)) {
        return -1;
    }

    if (SSL_version(ssl) == TLS1_3_VERSION) {
        (void) SSL_set_num_tickets(ssl, 1);
        return 2;
    }

    return i == 0 ? 1 : 2;
}


/* The shared cache keeps TLS 1.2 sessions (and TLS 1.3 ones only if
 * tickets were off, which Portico never does: a TLS 1.3 ticket is the
 * whole session). OpenSSL keeps its own reference. */
static int
pt_ssl_server_new_session(SSL *ssl, SSL_SESSION *sess)
{
    int                   len;
    pt_ssl_conn_t        *sc;
    unsigned int          id_len;
    unsigned char         der[PT_SSL_SESSION_MAX], *p;
    const unsigned char  *id;

    sc = SSL_get_app_data(ssl);

    if (sc == NULL || sc->server == NULL || sc->server->shared == NULL
        || sc->server->shared->sessions == NULL)
    {
        return 0;
    }

    if (SSL_version(ssl) == TLS1_3_VERSION
        && !(SSL_get_options(ssl) & SSL_OP_NO_TICKET))
    {
        return 0;
    }

    len = i2d_SSL_SESSION(sess, NULL);
    if (len <= 0 || len > (int) sizeof(der)) {
        return 0;
    }

    p = der;
    if (i2d_SSL_SESSION(sess, &p) != len) {
        return 0;
    }

    id = SSL_SESSION_get_id(sess, &id_len);

    (void) pt__ssl_session_store(sc->server->shared->sessions, id, id_len,
                                 der, (size_t) len,
                                 (uint64_t) SSL_SESSION_get_time(sess)
                                 + (uint64_t) SSL_SESSION_get_timeout(sess));

    return 0;
}


static SSL_SESSION *
pt_ssl_server_get_session(SSL *ssl, const unsigned char *id, int len,
    int *copy)
{
    size_t                n;
    pt_ssl_conn_t        *sc;
    unsigned char         der[PT_SSL_SESSION_MAX];
    const unsigned char  *p;

    *copy = 0;
    sc = SSL_get_app_data(ssl);

    if (sc == NULL || sc->server == NULL || sc->server->shared == NULL
        || len <= 0)
    {
        return NULL;
    }

    n = pt__ssl_session_fetch(sc->server->shared->sessions, id, (size_t) len,
                              der, sizeof(der));
    if (n == 0) {
        return NULL;
    }

    p = der;

    return d2i_SSL_SESSION(NULL, &p, (long) n);
}


static void
pt_ssl_server_remove_session(SSL_CTX *ctx, SSL_SESSION *sess)
{
    unsigned int          id_len;
    pt_ssl_server_t      *srv;
    const unsigned char  *id;

    srv = SSL_CTX_get_app_data(ctx);

    if (srv == NULL || srv->shared == NULL) {
        return;
    }

    id = SSL_SESSION_get_id(sess, &id_len);

    pt__ssl_session_remove(srv->shared->sessions, id, id_len);
}


void
pt_ssl_server_count(pt_ssl_server_t *srv, unsigned stat)
{
    pt__ssl_count(srv ? srv->shared : NULL, stat);
}


/* ---- What the handshake settled ----------------------------------- */

void
pt_ssl_protocol(pt_connection_t *c, pt_str_t *out)
{
    pt_ssl_conn_t  *sc;

    sc = c ? c->ssl : NULL;
    out->data = sc ? (char *) SSL_get_version(sc->ssl) : NULL;
    out->len = out->data ? strlen(out->data) : 0;
}


void
pt_ssl_cipher(pt_connection_t *c, pt_str_t *out)
{
    pt_ssl_conn_t  *sc;

    sc = c ? c->ssl : NULL;
    out->data = sc ? (char *) SSL_get_cipher_name(sc->ssl) : NULL;

    if (out->data && strcmp(out->data, "(NONE)") == 0) {
        out->data = NULL;
    }

    out->len = out->data ? strlen(out->data) : 0;
}


void
pt_ssl_sni(pt_connection_t *c, pt_str_t *out)
{
    pt_ssl_conn_t  *sc;

    sc = c ? c->ssl : NULL;
    out->data = sc ? sc->sni : NULL;
    out->len = out->data ? sc->sni_len : 0;
}


void
pt_ssl_alpn(pt_connection_t *c, pt_str_t *out)
{
    unsigned int          len;
    pt_ssl_conn_t        *sc;
    const unsigned char  *p;

    sc = c ? c->ssl : NULL;
    p = NULL;
    len = 0;

    if (sc) {
        SSL_get0_alpn_selected(sc->ssl, &p, &len);
    }

    out->data = (char *) p;
    out->len = p ? len : 0;
}


int
pt_ssl_session_reused(pt_connection_t *c)
{
    pt_ssl_conn_t  *sc;

    sc = c ? c->ssl : NULL;

    return sc ? SSL_session_reused(sc->ssl) : 0;
}


int
pt_ssl_client_verified(pt_connection_t *c, const char **reason)
{
    long            vr;
    pt_ssl_conn_t  *sc;

    sc = c ? c->ssl : NULL;

    if (sc == NULL || sc->server == NULL
        || SSL_get0_peer_certificate(sc->ssl) == NULL)
    {
        return PT_DECLINED;
    }

    vr = SSL_get_verify_result(sc->ssl);

    if (vr != X509_V_OK) {
        if (reason) {
            *reason = X509_verify_cert_error_string(sc->verify_error
                                                    ? sc->verify_error : vr);
        }
        return PT_ERROR;
    }

    return PT_OK;
}


int
pt_ssl_client_subject(pt_connection_t *c, pt_pool_t *pool, pt_str_t *out)
{
    int             rc;
    BIO            *bio;
    long            len;
    char           *text;
    X509           *x;
    pt_ssl_conn_t  *sc;

    pt_str_null(out);

    if (pt_ssl_client_verified(c, NULL) != PT_OK) {
        return PT_OK;
    }

    sc = c->ssl;
    x = SSL_get0_peer_certificate(sc->ssl);

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return PT_ERROR;
    }

    rc = PT_ERROR;

    if (X509_NAME_print_ex(bio, X509_get_subject_name(x), 0,
                           XN_FLAG_RFC2253) >= 0)
    {
        text = NULL;
        len = BIO_get_mem_data(bio, &text);

        if (len >= 0) {
            out->data = pt_pstrndup(pool, text ? text : "", (size_t) len);
            out->len = out->data ? (size_t) len : 0;
            rc = out->data ? PT_OK : PT_ERROR;
        }
    }

    BIO_free(bio);
    ERR_clear_error();

    return rc;
}


int
pt_ssl_client_fingerprint(pt_connection_t *c, pt_pool_t *pool,
    pt_str_t *out)
{
    char               *p;
    X509               *x;
    unsigned int        i, n;
    pt_ssl_conn_t      *sc;
    unsigned char       md[EVP_MAX_MD_SIZE];
    static const char   hex[] = "0123456789abcdef";

    pt_str_null(out);

    if (pt_ssl_client_verified(c, NULL) != PT_OK) {
        return PT_OK;
    }

    sc = c->ssl;
    x = SSL_get0_peer_certificate(sc->ssl);

    if (!X509_digest(x, EVP_sha256(), md, &n)) {
        ERR_clear_error();
        return PT_ERROR;
    }

    p = pt_pnalloc(pool, 2 * n + 1);
    if (p == NULL) {
        return PT_ERROR;
    }

    for (i = 0; i < n; i++) {
        p[2 * i] = hex[md[i] >> 4];
        p[2 * i + 1] = hex[md[i] & 0xf];
    }

    p[2 * n] = '\0';
    out->data = p;
    out->len = 2 * n;

    return PT_OK;
}
