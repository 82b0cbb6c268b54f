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
 * The client side serves upstream connections; the server side (SNI,
 * ALPN, tickets shared across workers) will add its own context and
 * attach calls over the same per-connection state and I/O functions.
 */

#ifndef PT_SSL_H
#define PT_SSL_H

#include "pt_core.h"
#include "pt_buf.h"
#include "pt_connection.h"


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

/* Free the TLS state of c: one non-blocking close_notify attempt after a
 * clean handshake, never a wait. Called by pt_close_connection before the
 * fd is closed; c->ssl is NULL afterwards. */
void pt_ssl_free(pt_connection_t *c);


#endif /* PT_SSL_H */
