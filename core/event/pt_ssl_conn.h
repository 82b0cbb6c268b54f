/*
 * pt_ssl_conn.h: the TLS state of one connection, shared by the files of
 * the event layer that implement pt_ssl.h (pt_ssl.c: I/O and the client
 * side; pt_ssl_server.c: the server side). Nothing outside core/event
 * includes it.
 */

#ifndef PT_SSL_CONN_H
#define PT_SSL_CONN_H

#include <openssl/ssl.h>

#include "pt_ssl.h"
#include "pt_slab.h"


#define PT_SSL_ERROR_LEN   256


typedef struct {
    SSL                *ssl;
    SSL_SESSION        *session;     /* client: newest resumable, from the
                                        new-session callback              */
    char               *staging;     /* PT_SSL_BUFFER_SIZE, lazily        */

    /* A write that OpenSSL could not finish: it must be retried with the
     * same length, from staging or from the chain's first link. */
    size_t              pending;
    unsigned            pending_staged:1;

    unsigned            handshaked:1;
    unsigned            failed:1;    /* fatal error: no close_notify      */

    /* The owner's handlers while one is borrowed (see pt_ssl.h). */
    pt_event_handler_pt saved_read;
    pt_event_handler_pt saved_write;

    /* Server side: the listener's settings, and the name the client sent
     * (lower case, malloc'd; NULL when it sent none or an invalid one). */
    pt_ssl_server_t    *server;
    char               *sni;
    size_t              sni_len;
    long                verify_error; /* the first failure of an optional
                                         client certificate, or 0        */

    char                error[PT_SSL_ERROR_LEN];
} pt_ssl_conn_t;


/* The cycle's zones, once the master mapped them (NULL before, and
 * under -t). */
struct pt_ssl_shared_s {
    pt_slab_pool_t     *tickets;     /* "tls": keys and counters          */
    pt_slab_pool_t     *sessions;    /* the session cache                 */
};


/* A session ticket key: its name travels in every ticket it sealed. */
typedef struct {
    unsigned char       name[16];
    unsigned char       aes[32];     /* AES-256-CBC                       */
    unsigned char       hmac[32];    /* HMAC-SHA256                       */
} pt_ssl_ticket_key_t;


/* OpenSSL's reasons, oldest first, joined by ": "; empties the queue.
 * Returns the length written (never 0: "unknown TLS error"). */
size_t pt__ssl_queue_reasons(char *buf, size_t size);


/* The ticket keys as this process last saw them: refreshed from the zone
 * when another process changed them, rotated first when the current key
 * is due (pt_current_epoch_msec). Returns how many are valid (0 without
 * a zone): keys[0] seals new tickets, keys[1] (the previous key) still
 * opens old ones. */
int pt__ssl_ticket_keys(pt_slab_pool_t *slab,
    const pt_ssl_ticket_key_t **keys);

/* The shared session cache, keyed by session id (at most 32 bytes);
 * expires is in epoch seconds. store: PT_OK, or PT_DECLINED when the
 * session cannot be kept (too big; nothing left to evict), which never
 * fails a handshake; when full, the least recently used sessions make
 * room. fetch: copies the DER into buf and returns its length, 0 when
 * absent, expired or larger than size. */
int pt__ssl_session_store(pt_slab_pool_t *slab, const unsigned char *id,
    size_t id_len, const unsigned char *der, size_t len, uint64_t expires);
size_t pt__ssl_session_fetch(pt_slab_pool_t *slab, const unsigned char *id,
    size_t id_len, unsigned char *buf, size_t size);
void pt__ssl_session_remove(pt_slab_pool_t *slab, const unsigned char *id,
    size_t id_len);

void pt__ssl_count(pt_ssl_shared_t *sh, unsigned stat);

/* Pure helpers of the server side, exposed for the unit tests. */

/* 1 when b can start what a TLS client sends first: a handshake record
 * (0x16), or an SSLv2-style hello (high bit set), which OpenSSL refuses
 * with a proper failure. Anything else (a letter of an HTTP method) is
 * not TLS. */
int pt__ssl_is_handshake_byte(unsigned char b);

/* A server name as the client sent it (SNI) into out (256 bytes): lower
 * case, one trailing dot dropped; PT_DECLINED when it is empty, longer
 * than 253, or holds anything but letters, digits, '-', '_' and dots
 * between labels. */
int pt__ssl_name_normalize(const char *in, size_t len, char *out,
    size_t *out_len);

/* A DNS name of a certificate's subjectAltName: PT_OK with *wild 0 for
 * an exact name (out: normalized), *wild 1 for "*.domain" (out: the
 * domain, normalized); PT_DECLINED for a name no SNI can match (partial
 * wildcards such as "f*.example.com", "*" alone, invalid characters). */
int pt__ssl_san_pattern(const char *in, size_t len, char *out,
    size_t *out_len, int *wild);

/* ALPN: the first of the server's protocols (wire format: length-prefixed
 * strings) that the client's list also holds; PT_OK with *out pointing
 * into cli, PT_DECLINED when none does, PT_ERROR when cli is malformed. */
int pt__ssl_alpn_pick(const unsigned char *srv, size_t srv_len,
    const unsigned char *cli, size_t cli_len, const unsigned char **out,
    unsigned char *out_len);


#endif /* PT_SSL_CONN_H */
