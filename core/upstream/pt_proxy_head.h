/*
 * pt_proxy_head.h: the heads a proxy writes and copies, apart from any
 * socket: the request head for an upstream, the hop-by-hop filter, the
 * interim (1xx) responses passed to the client, and the copy of an
 * upstream's response head into the client's response.
 *
 * They take a request and give bytes or fields, so the HTTP/1 proxy, and
 * later HTTP/2, gRPC and aggregation legs, share one set of rules: what is
 * forwarded, what is ours to set, and which framing is trusted.
 * Everything is allocated from r->pool (or the pool given); nothing here
 * reads r->connection.
 */

#ifndef PT_PROXY_HEAD_H
#define PT_PROXY_HEAD_H

#include "pt_core.h"
#include "pt_buf.h"
#include "pt_http.h"


/* How the request body travels to the upstream. */
typedef enum {
    PT_PROXY_BODY_NONE = 0,    /* no body and no framing field            */
    PT_PROXY_BODY_LENGTH,      /* Content-Length: headers_in's length     */
    PT_PROXY_BODY_CHUNKED      /* decoded from the client, sent re-chunked */
} pt_proxy_body_e;


/* What the request head needs besides the request itself. */
typedef struct {
    pt_str_t          peer;     /* the upstream's address text: the Host
                                   of a request that has none            */
    pt_str_t          client;   /* the client's address, appended to
                                   X-Forwarded-For                       */
    pt_str_t          scheme;   /* X-Forwarded-Proto; empty means "http" */
    pt_proxy_body_e   body;     /* pt_proxy_body_framing(r), as a rule   */
    unsigned          close:1;  /* no keep-alive: send Connection: close */
    unsigned          upgrade:1;/* a checked WebSocket upgrade: send
                                   Upgrade: websocket, Connection: upgrade
                                   (and never close)                     */
    pt_str_t          ws_key;   /* with upgrade: a Sec-WebSocket-Key of
                                   ours (extended CONNECT), or empty     */
} pt_proxy_head_conf_t;


/* What an upstream's response head says about its message. */
typedef struct {
    unsigned          status;
    int64_t           content_length;   /* -1: none (or chunked)          */
    unsigned          chunked:1;        /* Transfer-Encoding: chunked     */
    unsigned          keepalive:1;      /* the connection may be reused   */
    const char       *error;            /* why the head was refused       */
} pt_proxy_response_t;


/* The framing of the request body for an upstream: chunked when the
 * client's body is chunked, a length when it declared one (0 included),
 * else none. */
pt_proxy_body_e pt_proxy_body_framing(pt_http_request_t *r);

/* Write the HTTP/1.1 request head for an upstream into out (a new buffer
 * from r->pool; out->pos..out->last holds the head):
 *   the method, r->path and r->query (after rewrites);
 *   Host as the client sent it (else r->host, else conf->peer);
 *   every client field except hop-by-hop ones, any field a Connection
 *   field names, Expect (100-continue is ours to answer), Content-Length
 *   (framing is ours to set) and the fields below, which are ours;
 *   X-Forwarded-For: the client's values (all its lines, in order) with
 *   conf->client appended; X-Forwarded-Proto; X-Forwarded-Host when the
 *   client sent a Host; X-Request-ID: r->request_id;
 *   Content-Length or Transfer-Encoding: chunked per conf->body;
 *   Upgrade: websocket and Connection: upgrade when conf->upgrade (the
 *   client's own Upgrade and Connection are hop-by-hop, and dropped);
 *   else Connection: close when conf->close.
 * Fields removed by an edit (an empty name) are skipped. PT_OK, or
 * PT_ERROR when memory is exhausted. */
int pt_proxy_request_head(pt_http_request_t *r,
    const pt_proxy_head_conf_t *conf, pt_buf_t *out);

/* 1 for the fields the request head writes itself, whatever the client
 * sent: Host, Expect, Content-Length, X-Request-ID, X-Forwarded-For,
 * -Host and -Proto. */
int pt_proxy_is_ours(const pt_str_t *name);

/* X-Forwarded-For's value as the request head sends it: the client's
 * values (all its lines, in order, each followed by ", ") and then client.
 * pt_proxy_forwarded_for() writes it at b, which has room for
 * pt_proxy_forwarded_for_len() bytes, and returns its end. */
size_t pt_proxy_forwarded_for_len(pt_http_request_t *r,
    const pt_str_t *client);
char *pt_proxy_forwarded_for(pt_http_request_t *r, const pt_str_t *client,
    char *b);

/* 1 when name is hop-by-hop (RFC 9110 7.6.1) or is named by one of the
 * Connection fields among fields[0..n), which belong to the same message;
 * such a field never crosses the proxy. */
int pt_proxy_hop_by_hop(const pt_str_t *name, const pt_http_header_t *fields,
    size_t n);

/* Write an upstream's interim response (status 100-199 but 101) as an
 * HTTP/1.1 head for the client into out (from r->pool), without its
 * hop-by-hop fields. PT_OK or PT_ERROR (memory). Whether it is sent at
 * all is the caller's choice: see pt_proxy_interim_passes(). */
int pt_proxy_interim_head(pt_http_request_t *r,
    const pt_http_status_line_t *sl, const pt_http_header_t *fields,
    size_t n, pt_buf_t *out);

/* 1 when an interim status is passed to this client: not 100 (we answer
 * Expect ourselves and never forward it), not 101 (a switch this route
 * did not ask for), and only to HTTP/1.1 clients (RFC 9110 15.2). */
int pt_proxy_interim_passes(pt_http_request_t *r, unsigned status);

/* Copy an upstream's final response head into r->headers_out: the status
 * and every field but the hop-by-hop ones and the framing, which is
 * returned in resp (a chunked coding wins over a length, RFC 9112 6.3).
 * Names and values are copied into r->pool, since the caller's buffer is
 * reused for the body. version is the upstream's HTTP version (10, 11)
 * for the keep-alive decision. Returns PT_OK; 502 with resp->error set
 * when the framing cannot be trusted (an invalid or a second, different
 * Content-Length; a coding other than chunked); PT_ERROR for memory. */
int pt_proxy_response_head(pt_http_request_t *r, unsigned version,
    unsigned status, const pt_http_header_t *fields, size_t n,
    pt_proxy_response_t *resp);

/* The same for a response that is not a client's: the fields are copied
 * into pool and pushed onto out (pt_http_header_t), and the status and
 * the length stay in resp. The upstream calls the gateway makes itself
 * (pt_upstream_call.c) read their answers with it. */
int pt_proxy_response_fields(pt_pool_t *pool, pt_array_t *out,
    unsigned version, unsigned status, const pt_http_header_t *fields,
    size_t n, pt_proxy_response_t *resp);


#endif /* PT_PROXY_HEAD_H */
