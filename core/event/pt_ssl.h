/*
 * pt_ssl.h: TLS on connections, with OpenSSL.
 *
 * A context (pt_ssl_ctx_t) is built once per config generation and lives
 * in the cycle pool; a connection gets its own TLS state by an attach call,
 * which swaps c->recv and c->send_chain for the TLS versions, so the HTTP
 * and proxy code keep calling the same two hooks.
 *
 * Everything is non-blocking and edge-triggered aware: an operation that
 * must wait leaves c->read->ready or c->write->ready at 0 for the direction
 * it waits on. When TLS needs the other direction than the caller asked
 * for (a write that must first read a handshake message, a read that must
 * first flush), the connection's handler for that other direction is
 * borrowed until the event comes, and then both of the owner's handlers
 * are called, so neither wakeup is lost. Owners should therefore install
 * their handlers before doing I/O and tolerate a spurious call.
 *
 * The client side serves upstream connections; the server side
 * (pt_ssl_server.c: certificates chosen by SNI, ALPN, client
 * certificates) terminates TLS on listeners, over the same
 * per-connection state and I/O functions. Sessions resume in any worker
 * (pt_ssl_shared.c): ticket keys and a session cache live in
 * shared-memory zones the http layer asks for.
 */

#ifndef PT_SSL_H
#define PT_SSL_H

#include "pt_core.h"
#include "pt_buf.h"
#include "pt_connection.h"
#include "pt_slab.h"


typedef struct pt_ssl_ctx_s  pt_ssl_ctx_t;


/* Largest plaintext handed to one SSL_write: one TLS record. Small chain
 * links are gathered up to this size so that a head and a body piece go
 * out as one record. */
#define PT_SSL_BUFFER_SIZE   16384


/* A client context for connections to upstreams, TLS 1.2 minimum, no
 * renegotiation. verify: check the peer chain against ca_file (PEM, a
 * path already resolved against the prefix; if ca_file is NULL or empty,
 * the system default paths) and the peer's name against the name given
 * at attach time. Errors go through pt_conf_error(cf, node, ...) with
 * OpenSSL's reason. The context is freed with the cycle pool (pool
 * cleanup). */
pt_ssl_ctx_t *pt_ssl_client_ctx(pt_conf_t *cf, pt_yaml_node_t *node,
    const pt_str_t *ca_file, int verify);

/* Make c (a connected or connecting TCP socket) a TLS client: SNI and
 * hostname verification with server_name (an IP literal, "[v6]" allowed,
 * is verified as an IP and sent without SNI; with verify on, an empty
 * name is refused), session reuse from *session if not NULL (the caller
 * keeps its reference). Sets c->ssl, c->recv, c->send_chain. PT_OK, or
 * PT_ERROR with c unchanged and the reason in pt_ssl_error(c). */
int pt_ssl_client_attach(pt_connection_t *c, pt_ssl_ctx_t *ctx,
    const pt_str_t *server_name, void *session);

/* Drive the handshake: PT_OK when done, PT_AGAIN (call again when the
 * read or write event comes, per c->read->ready / c->write->ready being
 * 0), PT_ERROR (c->error set; the reason is in pt_ssl_error()). recv and
 * send_chain also complete the handshake if it was not driven here. */
int pt_ssl_handshake(pt_connection_t *c);

/* A human reason for the last TLS failure on c ("certificate verify
 * failed: unable to get local issuer certificate", ...), never NULL. Read
 * it before closing c: pt_ssl_free() discards it. For a c without TLS
 * state it is the last failure of an attach in this process. */
const char *pt_ssl_error(pt_connection_t *c);

/* The newest resumable session of c (for TLS 1.3 it arrives after the
 * handshake, with the first reads), to resume the next connection to the
 * same target: the caller owns the reference and frees it with
 * pt_ssl_session_free. NULL if there is none. */
void *pt_ssl_session_get(pt_connection_t *c);
void pt_ssl_session_free(void *session);

/* TLS versions of the c->recv and c->send_chain contracts (see
 * pt_connection.h). recv: bytes, 0 at EOF (close_notify, or a close
 * without it: the protocol above decides whether the body was complete),
 * PT_AGAIN or PT_ERROR (errno EPROTO for a TLS failure, reason in
 * pt_ssl_error()); after data, read->ready stays 1 since TLS may hold more
 * than the socket shows; size 0 is PT_ERROR (EINVAL). send_chain: one
 * record at a time, links moved only by what TLS accepted, c->sent counts
 * plaintext bytes; a write that had to wait is retried with the same
 * bytes, which the caller must still pass first (it may overrun limit by
 * less than one record). */
ssize_t pt_ssl_recv(pt_connection_t *c, char *buf, size_t size);
pt_chain_t *pt_ssl_send_chain(pt_connection_t *c, pt_chain_t *in,
    size_t limit);

/* ---- Server side (pt_ssl_server.c) ---------------------------------- */

typedef struct pt_ssl_server_s  pt_ssl_server_t;
typedef struct pt_ssl_shared_s  pt_ssl_shared_t;

/* Protocol versions a listener accepts (pt_ssl_server_conf_t). */
#define PT_SSL_TLSv1_2            0x01
#define PT_SSL_TLSv1_3            0x02

/* Client certificates. */
#define PT_SSL_VERIFY_OFF         0   /* not asked for                     */
#define PT_SSL_VERIFY_REQUIRED    1   /* no valid one: the handshake fails */
#define PT_SSL_VERIFY_OPTIONAL    2   /* asked for; none or an invalid one
                                         still gets in, unidentified       */

/* How long a session may be resumed, and how often the ticket key
 * changes (the previous key is still accepted for as long again, so a
 * session within its lifetime always resumes). */
#define PT_SSL_SESSION_TIMEOUT    (12 * 3600)               /* seconds */
#define PT_SSL_TICKET_ROTATE_MS   ((uint64_t) 12 * 3600 * 1000)
/* How late the master may be with a rotation before a worker does it. */
#define PT_SSL_TICKET_GRACE_MS    ((uint64_t) 60 * 1000)

/* Largest DER form of a session the shared cache keeps (a TLS 1.2
 * session with a client certificate chain may be bigger: it is then not
 * cached and resumes by ticket only). */
#define PT_SSL_SESSION_MAX        4096

typedef struct {
    pt_str_t           cert;       /* PEM: the certificate, then its chain;
                                      resolved, NUL-terminated            */
    pt_str_t           key;        /* PEM private key, unencrypted        */
    pt_yaml_node_t    *cert_node;  /* where errors about each are put     */
    pt_yaml_node_t    *key_node;
} pt_ssl_cert_conf_t;

typedef struct {
    pt_ssl_cert_conf_t  *certs;    /* the first is the default            */
    size_t               ncerts;
    unsigned             protocols;      /* PT_SSL_TLSv1_* bits, not 0    */
    pt_str_t             client_ca;      /* PEM CAs; empty: no client
                                            certificates                  */
    pt_yaml_node_t      *client_ca_node;
    unsigned             client_verify;  /* PT_SSL_VERIFY_*               */
    pt_yaml_node_t      *node;           /* the whole tls map             */
} pt_ssl_server_conf_t;

/* A listener's TLS settings, built at every config load: each
 * certificate and key is read, checked (PEM, key matching the
 * certificate, a supported key type) and sorted by the DNS names of its
 * subjectAltName; errors go to pt_conf_error at the cert or key node
 * (an expired certificate only warns). Mozilla's "intermediate" ciphers,
 * the protocols asked for, tickets and the shared cache of `shared`
 * (which may stay unattached, as under -t). Freed with the cycle pool. */
pt_ssl_server_t *pt_ssl_server_create(pt_conf_t *cf,
    const pt_ssl_server_conf_t *conf, pt_ssl_shared_t *shared);

/* The ALPN protocols the listener offers, most preferred first; a client
 * that offers ALPN but none of these fails the handshake (RFC 7301). */
int pt_ssl_server_set_alpn(pt_conf_t *cf, pt_ssl_server_t *srv,
    const pt_str_t *protos, size_t n);

/* The session context: a session resumes only on a listener with the
 * same id (its address), certificates and client certificate settings.
 * Call once, after the certificates are in (postconfig). */
int pt_ssl_server_set_id(pt_conf_t *cf, pt_ssl_server_t *srv,
    const pt_str_t *id);

/* Start the server side on c, an accepted socket, by peeking at its
 * first byte. PT_OK: c now speaks TLS (drive pt_ssl_handshake());
 * PT_DECLINED: the first byte cannot begin a TLS record (plain HTTP on a
 * TLS port), c is unchanged and that byte still unread; PT_AGAIN:
 * nothing arrived yet (read->ready is 0); PT_ERROR: the peer closed
 * (errno 0) or the socket failed, or memory ran out. */
int pt_ssl_server_accept(pt_connection_t *c, pt_ssl_server_t *srv);

/* What a completed handshake settled, for logs and variables; each
 * gives an empty string for a c without TLS. The strings live as long
 * as c (protocol and cipher: for ever). */
void pt_ssl_protocol(pt_connection_t *c, pt_str_t *out);  /* "TLSv1.3" */
void pt_ssl_cipher(pt_connection_t *c, pt_str_t *out);    /* OpenSSL's */
void pt_ssl_sni(pt_connection_t *c, pt_str_t *out);       /* lower case */
void pt_ssl_alpn(pt_connection_t *c, pt_str_t *out);
/* 1 when the session was resumed (ticket or cache). */
int pt_ssl_session_reused(pt_connection_t *c);

/* The client certificate: PT_OK when one was presented and verified;
 * PT_DECLINED when none was presented; PT_ERROR when one was presented
 * and did not verify (client_verify: optional), with *reason set. */
int pt_ssl_client_verified(pt_connection_t *c, const char **reason);

/* The verified client certificate's subject (RFC 2253, printable ASCII)
 * and SHA-256 fingerprint (64 lower-case hex digits), in pool; empty
 * when pt_ssl_client_verified() is not PT_OK. PT_ERROR: no memory. */
int pt_ssl_client_subject(pt_connection_t *c, pt_pool_t *pool,
    pt_str_t *out);
int pt_ssl_client_fingerprint(pt_connection_t *c, pt_pool_t *pool,
    pt_str_t *out);

/* Counters of the shared zone (failed and timed-out handshakes are the
 * caller's to report: it decides what a failure is). */
enum {
    PT_SSL_STAT_HANDSHAKES = 0,   /* completed                          */
    PT_SSL_STAT_RESUMED,          /* of which resumed                   */
    PT_SSL_STAT_FAILED,           /* failed (alert, bad record, closed) */
    PT_SSL_STAT_TIMED_OUT,        /* not done within the timeout        */
    PT_SSL_STAT_PLAIN_HTTP,       /* plain HTTP sent to a TLS port      */
    PT_SSL_NSTATS
};

typedef struct {
    uint64_t           counters[PT_SSL_NSTATS];
    uint64_t           sessions;        /* in the shared cache now      */
    uint64_t           evicted;         /* sessions pushed out for room */
} pt_ssl_stats_t;

void pt_ssl_server_count(pt_ssl_server_t *srv, unsigned stat);


/* ---- Sessions shared by the workers (pt_ssl_shared.c) ---------------- */

/* The handle a cycle's listeners share; attached to its zones by the
 * master once they are mapped. In cf->pool. */
pt_ssl_shared_t *pt_ssl_shared_create(pt_conf_t *cf);

/* Zone roots: the "tls" zone holds the ticket keys and the counters, the
 * sessions zone the cache. Called by the zone's init in the master before
 * the workers are forked: a fresh zone gets a first ticket key (random,
 * from the master); old_data of the same layout (a reload that kept the
 * zone) is adopted as it is, so sessions keep resuming across HUP. */
int pt_ssl_tickets_zone_init(pt_slab_pool_t *slab, void *old_data);
int pt_ssl_sessions_zone_init(pt_slab_pool_t *slab, void *old_data);

void pt_ssl_shared_attach(pt_ssl_shared_t *sh, pt_slab_pool_t *tickets,
    pt_slab_pool_t *sessions);

/* The counters and the cache's fill, summed over every process. */
void pt_ssl_shared_stats(pt_ssl_shared_t *sh, pt_ssl_stats_t *st);
/* The master's periodic call: a new ticket key when the current one is
 * due (workers only do it if the master is late). */
void pt_ssl_shared_tick(pt_ssl_shared_t *sh);


/* Half-close a TLS connection: a close_notify (TLS 1.3 lets the peer
 * go on sending; reads keep working until its own close_notify), then
 * the TCP FIN. PT_OK; PT_DECLINED when the alert cannot go out at once
 * (the socket is full, the handshake is not over: the caller then ends
 * the stream by closing); PT_ERROR when the connection failed. */
int pt_ssl_shutdown_write(pt_connection_t *c);

/* Free the TLS state of c: one non-blocking close_notify attempt after a
 * clean handshake, never a wait. Called by pt_close_connection before the
 * fd is closed; c->ssl is NULL afterwards. */
void pt_ssl_free(pt_connection_t *c);


#endif /* PT_SSL_H */
