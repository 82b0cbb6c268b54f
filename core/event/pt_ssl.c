/*
 * pt_ssl.c: TLS on connections with OpenSSL (see pt_ssl.h).
 */

#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "pt_ssl_conn.h"
#include "pt_conf.h"
#include "pt_palloc.h"


struct pt_ssl_ctx_s {
    SSL_CTX            *ctx;
    unsigned            verify:1;    /* peer chain and name are checked   */
};


static void pt_ssl_ctx_cleanup(void *data);
static int pt_ssl_new_session(SSL *ssl, SSL_SESSION *sess);
static int pt_ssl_set_name(pt_ssl_conn_t *sc, pt_ssl_ctx_t *ctx,
    const pt_str_t *name);
static void pt_ssl_failed(pt_ssl_conn_t *sc, pt_connection_t *c, int sslerr);
static void pt_ssl_wait_read(pt_connection_t *c, pt_ssl_conn_t *sc);
static void pt_ssl_wait_write(pt_connection_t *c, pt_ssl_conn_t *sc);
static void pt_ssl_read_handler(pt_event_t *ev);
static void pt_ssl_write_handler(pt_event_t *ev);
static int pt_ssl_next_write(pt_ssl_conn_t *sc, pt_chain_t *in,
    size_t budget, const char **data, size_t *len);


/* The last attach failure, for pt_ssl_error() on a c without TLS state. */
static char  pt_ssl_last_error[PT_SSL_ERROR_LEN] = "no TLS error";


/* SSL_get_error() needs an empty queue before each I/O call. Peeking is
 * a few loads; clearing walks all 16 slots, which showed in profiles of
 * every SSL_read and SSL_write. */
static inline void
pt_ssl_clear_errors(void)
{
    if (ERR_peek_error() != 0) {
        ERR_clear_error();
    }
}


pt_ssl_ctx_t *
pt_ssl_client_ctx(pt_conf_t *cf, pt_yaml_node_t *node,
    const pt_str_t *ca_file, int verify)
{
    int                 ok;
    char               *path, reason[PT_SSL_ERROR_LEN];
    SSL_CTX            *ctx;
    pt_ssl_ctx_t       *sctx;
    pt_pool_cleanup_t  *cln;

    sctx = pt_pcalloc(cf->pool, sizeof(pt_ssl_ctx_t));
    cln = pt_pool_cleanup_add(cf->pool, pt_ssl_ctx_cleanup, sctx);

    if (sctx == NULL || cln == NULL) {
        pt_conf_error(cf, node, "out of memory");
        return NULL;
    }

    ERR_clear_error();

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        pt_conf_error(cf, node, "SSL_CTX_new() failed: %s", reason);
        return NULL;
    }

    sctx->ctx = ctx;
    sctx->verify = verify ? 1 : 0;

    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        pt_conf_error(cf, node, "cannot require TLS 1.2: %s", reason);
        return NULL;
    }

    /* A peer that closes without close_notify reads as a plain EOF: the
     * HTTP framing above tells a complete response from a cut one, as it
     * does for cleartext. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION
                        | SSL_OP_IGNORE_UNEXPECTED_EOF);

    /* Partial writes give one record per SSL_write; the chain's buffers
     * may be different memory when a write is retried; idle keep-alive
     * connections give their record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                     | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                     | SSL_MODE_RELEASE_BUFFERS);

    /* Sessions are kept by the caller per target, not in OpenSSL's cache;
     * the callback is how a TLS 1.3 ticket that arrives after the
     * handshake is caught. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT
                                   | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, pt_ssl_new_session);

    if (!verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return sctx;
    }

    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

    if (ca_file == NULL || ca_file->len == 0) {
        if (!SSL_CTX_set_default_verify_paths(ctx)) {
            pt__ssl_queue_reasons(reason, sizeof(reason));
            pt_conf_error(cf, node,
                          "cannot load the system CA certificates: %s", reason);
            return NULL;
        }

        return sctx;
    }

    if (memchr(ca_file->data, '\0', ca_file->len) != NULL) {
        pt_conf_error(cf, node, "CA file name contains a NUL byte");
        return NULL;
    }

    path = pt_pstrndup(cf->pool, ca_file->data, ca_file->len);
    if (path == NULL) {
        pt_conf_error(cf, node, "out of memory");
        return NULL;
    }

    ok = SSL_CTX_load_verify_locations(ctx, path, NULL);

    if (!ok) {
        pt__ssl_queue_reasons(reason, sizeof(reason));
        pt_conf_error(cf, node, "cannot load CA certificates from \"%s\": %s",
                      path, reason);
        return NULL;
    }

    return sctx;
}


static void
pt_ssl_ctx_cleanup(void *data)
{
    pt_ssl_ctx_t  *sctx;

    sctx = data;

    if (sctx != NULL && sctx->ctx != NULL) {
        SSL_CTX_free(sctx->ctx);
        sctx->ctx = NULL;
    }
}


int
pt_ssl_client_attach(pt_connection_t *c, pt_ssl_ctx_t *ctx,
    const pt_str_t *server_name, void *session)
{
    pt_ssl_conn_t  *sc;

    if (c->ssl != NULL) {
        snprintf(pt_ssl_last_error, sizeof(pt_ssl_last_error),
                 "connection already has TLS");
        return PT_ERROR;
    }

    ERR_clear_error();

    sc = calloc(1, sizeof(pt_ssl_conn_t));
    if (sc == NULL) {
        snprintf(pt_ssl_last_error, sizeof(pt_ssl_last_error),
                 "out of memory");
        return PT_ERROR;
    }

    sc->ssl = SSL_new(ctx->ctx);
    if (sc->ssl == NULL) {
        goto openssl_failed;
    }

    if (!SSL_set_fd(sc->ssl, c->fd)) {
        goto openssl_failed;
    }

    SSL_set_connect_state(sc->ssl);
    SSL_set_app_data(sc->ssl, sc);

    if (pt_ssl_set_name(sc, ctx, server_name) != PT_OK) {
        goto free_sc;
    }

    if (session != NULL && !SSL_set_session(sc->ssl, session)) {
        goto openssl_failed;
    }

    snprintf(sc->error, sizeof(sc->error), "no TLS error");

    c->ssl = sc;
    c->recv = pt_ssl_recv;
    c->send_chain = pt_ssl_send_chain;

    return PT_OK;

openssl_failed:

    pt__ssl_queue_reasons(sc->error, sizeof(sc->error));

free_sc:

    snprintf(pt_ssl_last_error, sizeof(pt_ssl_last_error), "%s", sc->error);

    if (sc->ssl != NULL) {
        SSL_free(sc->ssl);
    }

    free(sc);
    ERR_clear_error();

    return PT_ERROR;
}


/* SNI and the name to verify. An IP literal is never sent as SNI (RFC
 * 6066) and is checked against the certificate's IP addresses. */
static int
pt_ssl_set_name(pt_ssl_conn_t *sc, pt_ssl_ctx_t *ctx, const pt_str_t *name)
{
    int                  ip;
    char                 host[256];
    size_t               len;
    const char          *p;
    unsigned char        addr[16];
    X509_VERIFY_PARAM   *param;

    len = name ? name->len : 0;
    p = name ? name->data : NULL;

    if (len == 0) {
        if (ctx->verify) {
            snprintf(sc->error, sizeof(sc->error),
                     "no server name to verify the peer against");
            return PT_ERROR;
        }

        return PT_OK;
    }

    if (len >= 2 && p[0] == '[' && p[len - 1] == ']') {
        p++;
        len -= 2;
    }

    if (len == 0 || len >= sizeof(host) || memchr(p, '\0', len) != NULL) {
        snprintf(sc->error, sizeof(sc->error), "invalid server name");
        return PT_ERROR;
    }

    memcpy(host, p, len);
    host[len] = '\0';

    ip = inet_pton(AF_INET, host, addr) == 1
         || inet_pton(AF_INET6, host, addr) == 1;

    if (!ip && !SSL_set_tlsext_host_name(sc->ssl, host)) {
        pt__ssl_queue_reasons(sc->error, sizeof(sc->error));
        return PT_ERROR;
    }

    if (!ctx->verify) {
        return PT_OK;
    }

    param = SSL_get0_param(sc->ssl);

    if (ip) {
        if (!X509_VERIFY_PARAM_set1_ip_asc(param, host)) {
            pt__ssl_queue_reasons(sc->error, sizeof(sc->error));
            return PT_ERROR;
        }

        return PT_OK;
    }

    X509_VERIFY_PARAM_set_hostflags(param,
                                    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);

    if (!SSL_set1_host(sc->ssl, host)) {
        pt__ssl_queue_reasons(sc->error, sizeof(sc->error));
        return PT_ERROR;
    }

    return PT_OK;
}


int
pt_ssl_handshake(pt_connection_t *c)
{
    int             n, sslerr;
    pt_ssl_conn_t  *sc;

    sc = c->ssl;

    if (sc == NULL) {
        errno = EINVAL;
        return PT_ERROR;
    }

    if (sc->handshaked) {
        return PT_OK;
    }

    ERR_clear_error();
    errno = 0;

    n = SSL_do_handshake(sc->ssl);

    if (n == 1) {
        sc->handshaked = 1;

        /* Data that came with the last handshake message may already be
         * in OpenSSL's buffer: no event will announce it. */
        if (SSL_has_pending(sc->ssl)) {
            c->read->ready = 1;
        }

        return PT_OK;
    }

    sslerr = SSL_get_error(sc->ssl, n);

    if (sslerr == SSL_ERROR_WANT_READ) {
        c->read->ready = 0;
        return PT_AGAIN;
    }

    if (sslerr == SSL_ERROR_WANT_WRITE) {
        c->write->ready = 0;
        return PT_AGAIN;
    }

    pt_ssl_failed(sc, c, sslerr);

    return PT_ERROR;
}


const char *
pt_ssl_error(pt_connection_t *c)
{
    pt_ssl_conn_t  *sc;

    sc = c ? c->ssl : NULL;

    return sc ? sc->error : pt_ssl_last_error;
}


/* Records why an operation failed, marks c failed and sets errno for
 * callers that log it. */
static void
pt_ssl_failed(pt_ssl_conn_t *sc, pt_connection_t *c, int sslerr)
{
    int     err;
    long    vr;
    size_t  n;

    err = errno;

    if ((sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN)
        && ERR_peek_error() == 0)
    {
        if (err == 0) {
            snprintf(sc->error, sizeof(sc->error),
                     "peer closed the connection%s",
                     sc->handshaked ? "" : " in the TLS handshake");
            err = ECONNRESET;

        } else {
            snprintf(sc->error, sizeof(sc->error), "%s", strerror(err));
        }

    } else {
        n = pt__ssl_queue_reasons(sc->error, sizeof(sc->error));
        vr = SSL_get_verify_result(sc->ssl);

        /* "certificate verify failed" alone does not say why. */
        if (vr != X509_V_OK && strstr(sc->error, "verify") != NULL) {
            snprintf(sc->error + n, sizeof(sc->error) - n, ": %s",
                     X509_verify_cert_error_string(vr));
        }

        err = EPROTO;
    }

    sc->failed = 1;
    c->error = 1;
    errno = err;
}


size_t
pt__ssl_queue_reasons(char *buf, size_t size)
{
    int            n;
    size_t         len;
    const char    *reason;
    unsigned long  e;
    char           tmp[PT_SSL_ERROR_LEN];

    len = 0;
    buf[0] = '\0';

    while ((e = ERR_get_error()) != 0) {
        if (len + 3 >= size) {
            continue;     /* keep draining the queue */
        }

        if (ERR_SYSTEM_ERROR(e)) {
            reason = strerror(ERR_GET_REASON(e));

        } else if (ERR_GET_REASON(e) == ERR_R_SYS_LIB) {
            continue;     /* "system lib": the errno entry said it */

        } else {
            reason = ERR_reason_error_string(e);
        }

        if (reason == NULL) {
            ERR_error_string_n(e, tmp, sizeof(tmp));
            reason = tmp;
        }

        n = snprintf(buf + len, size - len, "%s%s", len ? ": " : "", reason);
        if (n > 0) {
            len = pt_min(len + (size_t) n, size - 1);
        }
    }

    if (len == 0) {
        len = (size_t) snprintf(buf, size, "unknown TLS error");
    }

    return len;
}


ssize_t
pt_ssl_recv(pt_connection_t *c, char *buf, size_t size)
{
    int             n, sslerr;
    pt_event_t     *rev;
    pt_ssl_conn_t  *sc;

    sc = c->ssl;
    rev = c->read;

    if (sc == NULL || size == 0) {
        errno = EINVAL;
        return PT_ERROR;
    }

    pt_ssl_clear_errors();
    errno = 0;

    n = SSL_read(sc->ssl, buf, (int) pt_min(size, (size_t) INT_MAX));

    if (n > 0) {
        /* Unlike a plain socket, a short read does not mean "empty":
         * OpenSSL or the socket may hold further records, and no edge
         * would report them. ready stays 1 until WANT_READ. */
        sc->handshaked = 1;
        return n;
    }

    sslerr = SSL_get_error(sc->ssl, n);

    switch (sslerr) {

    case SSL_ERROR_WANT_READ:
        rev->ready = 0;
        return PT_AGAIN;

    case SSL_ERROR_WANT_WRITE:
        /* It must flush (a handshake or key update message) before it can
         * read: the write event will call the read handler. */
        rev->ready = 0;
        pt_ssl_wait_write(c, sc);
        return PT_AGAIN;

    case SSL_ERROR_ZERO_RETURN:
        rev->ready = 0;
        rev->eof = 1;
        return 0;

    default:
        pt_ssl_failed(sc, c, sslerr);
        rev->ready = 0;
        rev->error = 1;
        return PT_ERROR;
    }
}


pt_chain_t *
pt_ssl_send_chain(pt_connection_t *c, pt_chain_t *in, size_t limit)
{
    int             n, sslerr;
    size_t          total, len, budget, sent, size;
    pt_buf_t       *b;
    pt_chain_t     *cl;
    const char     *data;
    pt_ssl_conn_t  *sc;

    sc = c->ssl;

    if (sc == NULL) {
        errno = EINVAL;
        return (pt_chain_t *) PT_ERROR;
    }

    total = 0;

    for ( ;; ) {
        while (in && in->buf->pos == in->buf->last) {
            in = in->next;
        }

        if (in == NULL) {
            break;
        }

        if (limit && total >= limit) {
            break;
        }

        budget = limit ? limit - total : (size_t) -1;

        if (pt_ssl_next_write(sc, in, budget, &data, &len) != PT_OK) {
            snprintf(sc->error, sizeof(sc->error), "a TLS write was "
                     "retried with fewer bytes than it was given");
            sc->failed = 1;
            c->error = 1;
            c->write->error = 1;
            errno = EINVAL;
            return (pt_chain_t *) PT_ERROR;
        }

        pt_ssl_clear_errors();
        errno = 0;

        n = SSL_write(sc->ssl, data, (int) len);

        if (n <= 0) {
            sslerr = SSL_get_error(sc->ssl, n);

            if (sslerr == SSL_ERROR_WANT_WRITE) {
                c->write->ready = 0;
                break;
            }

            if (sslerr == SSL_ERROR_WANT_READ) {
                /* A handshake message must arrive first: the read event
                 * will call the write handler. */
                c->write->ready = 0;
                pt_ssl_wait_read(c, sc);
                break;
            }

            pt_ssl_failed(sc, c, sslerr);
            c->write->error = 1;
            return (pt_chain_t *) PT_ERROR;
        }

        sc->handshaked = 1;
        sc->pending = 0;
        sent = (size_t) n;
        total += sent;
        c->sent += sent;

        for (cl = in; cl && sent; cl = cl->next) {
            b = cl->buf;
            size = pt_buf_size(b);

            if (sent >= size) {
                b->pos = b->last;
                sent -= size;

            } else {
                b->pos += sent;
                sent = 0;
            }
        }
    }

    while (in && in->buf->pos == in->buf->last) {
        in = in->next;
    }

    return in;
}


/* What the next SSL_write gets: the pending write again, else one record's
 * worth, straight from the first link when it holds that much (or all
 * there is), else gathered from the links into staging. */
static int
pt_ssl_next_write(pt_ssl_conn_t *sc, pt_chain_t *in, size_t budget,
    const char **data, size_t *len)
{
    char        *p;
    size_t       want, avail, first, n;
    pt_chain_t  *cl;

    first = pt_buf_size(in->buf);
    want = sc->pending ? sc->pending
                       : pt_min(budget, (size_t) PT_SSL_BUFFER_SIZE);
    avail = 0;

    for (cl = in; cl && avail < want; cl = cl->next) {
        avail += pt_buf_size(cl->buf);
    }

    if (sc->pending) {
        /* The caller must still hold the bytes OpenSSL took (and, for a
         * direct write, in the same link), or the retry is not the same
         * write. */
        if (avail < want || (!sc->pending_staged && first < want)) {
            return PT_ERROR;
        }

        *data = sc->pending_staged ? sc->staging : in->buf->pos;
        *len = want;
        return PT_OK;
    }

    want = pt_min(want, avail);

    if (first < want && sc->staging == NULL) {
        sc->staging = malloc(PT_SSL_BUFFER_SIZE);

        if (sc->staging == NULL) {
            want = first;       /* no memory: one link at a time works */
        }
    }

    if (first >= want) {
        *data = in->buf->pos;
        *len = want;
        sc->pending = want;
        sc->pending_staged = 0;
        return PT_OK;
    }

    p = sc->staging;

    for (cl = in; cl && p < sc->staging + want; cl = cl->next) {
        n = pt_min(pt_buf_size(cl->buf), (size_t) (sc->staging + want - p));
        p = pt_cpymem(p, cl->buf->pos, n);
    }

    *data = sc->staging;
    *len = want;
    sc->pending = want;
    sc->pending_staged = 1;

    return PT_OK;
}


/* The operation waits for the read event although its caller waits for
 * the write event: borrow the read handler until then. */
static void
pt_ssl_wait_read(pt_connection_t *c, pt_ssl_conn_t *sc)
{
    c->read->ready = 0;

    if (c->read->handler != pt_ssl_read_handler) {
        sc->saved_read = c->read->handler;
        c->read->handler = pt_ssl_read_handler;
    }
}


static void
pt_ssl_wait_write(pt_connection_t *c, pt_ssl_conn_t *sc)
{
    c->write->ready = 0;

    if (c->write->handler != pt_ssl_write_handler) {
        sc->saved_write = c->write->handler;
        c->write->handler = pt_ssl_write_handler;
    }
}


/* The read event a write waited for: give the handler back, then wake
 * the writer, and the reader too if it still can read (it may have been
 * waiting for this very event). A timeout is the owner's alone. */
static void
pt_ssl_read_handler(pt_event_t *ev)
{
    uint64_t          number;
    pt_ssl_conn_t    *sc;
    pt_connection_t  *c;

    c = ev->data;
    sc = c->ssl;

    ev->handler = sc->saved_read;

    if (ev->timedout) {
        ev->handler(ev);
        return;
    }

    number = c->number;
    c->write->ready = 1;
    c->write->handler(c->write);

    if (c->fd != -1 && c->number == number && c->ssl == sc
        && ev->ready && ev->handler != pt_ssl_read_handler)
    {
        ev->handler(ev);
    }
}


static void
pt_ssl_write_handler(pt_event_t *ev)
{
    uint64_t          number;
    pt_ssl_conn_t    *sc;
    pt_connection_t  *c;

    c = ev->data;
    sc = c->ssl;

    ev->handler = sc->saved_write;

    if (ev->timedout) {
        ev->handler(ev);
        return;
    }

    number = c->number;
    c->read->ready = 1;
    c->read->handler(c->read);

    if (c->fd != -1 && c->number == number && c->ssl == sc
        && ev->ready && ev->handler != pt_ssl_write_handler)
    {
        ev->handler(ev);
    }
}


static int
pt_ssl_new_session(SSL *ssl, SSL_SESSION *sess)
{
    pt_ssl_conn_t  *sc;

    sc = SSL_get_app_data(ssl);

    if (sc == NULL || !SSL_SESSION_is_resumable(sess)) {
        return 0;
    }

    if (sc->session != NULL) {
        SSL_SESSION_free(sc->session);
    }

    sc->session = sess;

    return 1;       /* we keep the reference OpenSSL gave us */
}


void *
pt_ssl_session_get(pt_connection_t *c)
{
    pt_ssl_conn_t  *sc;

    sc = c->ssl;

    if (sc == NULL || sc->session == NULL
        || !SSL_SESSION_is_resumable(sc->session))
    {
        return NULL;
    }

    /* A copy: OpenSSL marks the connection's own session object not
     * resumable when the connection is freed without a close_notify sent
     * (a peer that closed first, say), which would spoil the one kept. */
    return SSL_SESSION_dup(sc->session);
}


void
pt_ssl_session_free(void *session)
{
    if (session != NULL) {
        SSL_SESSION_free(session);
    }
}


int
pt_ssl_shutdown_write(pt_connection_t *c)
{
    int             n, sslerr;
    pt_ssl_conn_t  *sc;

    sc = c->ssl;

    if (sc == NULL || !sc->handshaked || sc->failed
        || !SSL_is_init_finished(sc->ssl))
    {
        return PT_DECLINED;
    }

    ERR_clear_error();
    errno = 0;

    n = SSL_shutdown(sc->ssl);

    if (n < 0) {
        sslerr = SSL_get_error(sc->ssl, n);

        if (sslerr == SSL_ERROR_WANT_WRITE || sslerr == SSL_ERROR_WANT_READ)
        {
            ERR_clear_error();
            return PT_DECLINED;
        }

        pt_ssl_failed(sc, c, sslerr);
        return PT_ERROR;
    }

    if (shutdown(c->fd, SHUT_WR) == -1) {
        c->error = 1;
        return PT_ERROR;
    }

    return PT_OK;
}


void
pt_ssl_free(pt_connection_t *c)
{
    pt_ssl_conn_t  *sc;

    sc = c->ssl;

    if (sc == NULL) {
        return;
    }

    /* A borrowed handler goes back to its owner, so a slot reused
     * without a fresh handler never calls into freed state. */
    if (c->read->handler == pt_ssl_read_handler) {
        c->read->handler = sc->saved_read;
    }

    if (c->write->handler == pt_ssl_write_handler) {
        c->write->handler = sc->saved_write;
    }

    ERR_clear_error();

    if (sc->handshaked && !sc->failed && !c->error && !c->read->eof
        && SSL_is_init_finished(sc->ssl))
    {
        /* One try, never a wait; whatever it returns, we close. */
        (void) SSL_shutdown(sc->ssl);
    }

    SSL_set_app_data(sc->ssl, NULL);
    SSL_free(sc->ssl);

    if (sc->session != NULL) {
        SSL_SESSION_free(sc->session);
    }

    free(sc->sni);
    free(sc->staging);
    free(sc);

    ERR_clear_error();

    c->ssl = NULL;
}
