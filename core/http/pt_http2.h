/*
 * pt_http2.h: HTTP/2 to clients (RFC 9113), with libnghttp2.
 *
 * A connection becomes HTTP/2 by its preface on a cleartext listener with
 * `http2: true` (h2c with prior knowledge), or by ALPN "h2" on TLS. The
 * session (framing, HPACK, flow control, most of RFC 9113 8's checks) is
 * nghttp2's; pt_http2.c feeds it the socket and enforces our limits;
 * pt_http2_stream.c turns each stream into a pt_http_request_t that runs
 * the same phases, filters, modules and proxy as an HTTP/1.1 request,
 * through the protocol table of pt_http.h.
 *
 * Each stream's request has a connection of its own (r->connection, in
 * the request's pool, no socket): its read and write events carry the
 * stream's timers (body_timeout, send_timeout) and wake the request when
 * DATA arrives or the client's window opens, and its byte count is the
 * stream's, for the access log. Work started by the session's callbacks
 * is posted, never run inside nghttp2, so a callback never frees what
 * nghttp2 still holds and the session is never re-entered.
 *
 * Memory: a stream buffers at most its receive window of request body
 * (PT_HTTP2_STREAM_WINDOW, one 64 KiB block, taken when DATA first
 * arrives); the window is only reopened (nghttp2_session_consume) as the
 * request reads the body, so an upstream that reads slowly slows the
 * client. Response DATA is produced from r->out only as the client's
 * window allows; the connection keeps one 64 KiB output block while it has
 * bytes to write. So a connection costs at most its open streams (128 by
 * default) times a request's own memory, whatever the sizes.
 */

#ifndef PT_HTTP2_H
#define PT_HTTP2_H

#include <nghttp2/nghttp2.h>

#include "pt_http.h"


#define PT_HTTP2_PREFACE      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PT_HTTP2_PREFACE_LEN  (sizeof(PT_HTTP2_PREFACE) - 1)

/* The receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE) and of
 * the connection: the most request body that can be buffered unread. */
#define PT_HTTP2_STREAM_WINDOW   65535
#define PT_HTTP2_CONN_WINDOW     (1024 * 1024)

/* CONTINUATION frames after a HEADERS frame, at most (nghttp2's check). */
#define PT_HTTP2_MAX_CONTINUATIONS  8

/* Queued SETTINGS and PING acknowledgements before the session is deemed
 * flooded and closed (a client that sends but never reads). */
#define PT_HTTP2_MAX_OUTBOUND_ACK   1000


typedef struct pt_http2_connection_s  pt_http2_connection_t;
typedef struct pt_http2_stream_s      pt_http2_stream_t;


struct pt_http2_stream_s {
    int32_t                  id;
    pt_http2_connection_t   *h2c;
    pt_http_request_t       *request;    /* NULL once it ended           */
    pt_http2_stream_t       *next_free;
    pt_queue_t               link;       /* h2c->streams, while a request */

    /* The request head as it arrives (in the request's pool). */
    pt_array_t               fields;     /* pt_http_header_t             */
    pt_str_t                 method;
    pt_str_t                 path;
    pt_str_t                 authority;
    pt_str_t                 scheme;
    pt_str_t                 protocol;   /* :protocol (RFC 8441)         */
    pt_str_t                 cookie;     /* crumbs joined with "; "      */
    size_t                   header_bytes;   /* RFC 9113 6.5.2 measure  */

    /* Request body: DATA not yet read by the request. */
    char                    *body;       /* a 64 KiB block, or NULL      */
    size_t                   body_pos;
    size_t                   body_last;
    uint64_t                 body_in;    /* bytes received in all        */

    /* A WebSocket tunnel over an extended CONNECT: the bytes the tunnel
     * offers now, which the data provider takes as the window allows. */
    const char              *tun_data;
    size_t                   tun_len;

    /* The response head, until the first flush commits it. */
    nghttp2_nv              *nva;
    size_t                   nvlen;

    unsigned                 status;     /* answer this at start: 400 ...*/

    unsigned                 head_pending:1;
    unsigned                 head_submitted:1;
    unsigned                 eof_read:1;     /* END_STREAM given to DATA */
    unsigned                 end_sent:1;     /* our END_STREAM is out    */
    unsigned                 in_closed:1;    /* the client's END_STREAM  */
    unsigned                 closed:1;       /* nghttp2 closed it        */
    unsigned                 deferred:1;     /* data provider waits      */
    unsigned                 started:1;      /* phases started           */
    unsigned                 aborted:1;      /* reset by the client      */
    unsigned                 reset:1;        /* we reset it              */
    unsigned                 malformed:1;    /* closed for its errors    */
    unsigned                 trailers:1;     /* a trailer block arrives  */
    unsigned                 too_large:1;    /* header list over limit   */
    unsigned                 connect:1;      /* extended CONNECT         */
    unsigned                 tunnel:1;       /* its 200 went: DATA is the
                                                tunnel's both ways       */
    unsigned                 tun_eof:1;      /* tunnel ended our side    */
    unsigned                 tun_sending:1;  /* inside the tunnel's send */
};


struct pt_http2_connection_s {
    pt_connection_t         *c;
    pt_http_connection_t    *hc;
    nghttp2_session         *session;
    pt_http_main_conf_t     *hmcf;

    pt_buf_t                 out;        /* frames for the socket        */
    pt_http2_stream_t       *free_streams;
    pt_queue_t               streams;    /* streams with a request       */
    pt_uint_t                nrequests;

    /* Abuse counters, each over a fixed window of its rate's period. */
    pt_msec_t                resets_since;
    uint64_t                 resets;
    pt_msec_t                control_since;
    uint64_t                 control;

    unsigned                 in_session:1;   /* inside nghttp2 now       */
    unsigned                 goaway:1;       /* our GOAWAY is submitted  */
    unsigned                 calm:1;         /* ended for abuse          */
    unsigned                 header_block:1; /* a header block is open   */
    unsigned                 closing:1;
};


/* Take over connection c, whose first `len` bytes (the preface, maybe
 * more) were already read into data. */
void pt_http2_init(pt_connection_t *c, const char *data, size_t len);

/* Internal to the HTTP/2 code. */
extern const pt_http_proto_t  pt_http2_proto;
extern const nghttp2_session_callbacks  *pt__http2_callbacks;

int pt__http2_callbacks_init(void);
pt_http2_stream_t *pt__http2_stream_open(pt_http2_connection_t *h2c,
    int32_t id);
int pt__http2_stream_header(pt_http2_stream_t *st, const uint8_t *name,
    size_t nlen, const uint8_t *value, size_t vlen);
void pt__http2_stream_headers_done(pt_http2_stream_t *st);
int pt__http2_stream_data(pt_http2_stream_t *st, const uint8_t *data,
    size_t len);
void pt__http2_stream_in_closed(pt_http2_stream_t *st);
void pt__http2_stream_closed(pt_http2_stream_t *st, uint32_t error);
void pt__http2_stream_end_sent(pt_http2_stream_t *st);
void pt__http2_stream_abort(pt_http2_stream_t *st);
void pt__http2_stream_release(pt_http2_stream_t *st);
ssize_t pt__http2_data_read(nghttp2_session *session, int32_t id,
    uint8_t *buf, size_t length, uint32_t *flags,
    nghttp2_data_source *source, void *user_data);

/* Copy up to size bytes of the stream's received DATA to dst and reopen
 * the client's window by as much (the block goes back once empty); 0
 * when none is buffered. */
size_t pt__http2_body_take(pt_http2_stream_t *st, char *dst, size_t size);

/* WebSocket over an extended CONNECT (pt_http2_tunnel.c): the stream as
 * a tunnel end, and the data provider's part for a tunnel. */
int pt__http2_tunnel_end(pt_http_request_t *r, pt_tunnel_end_t *e);
ssize_t pt__http2_tunnel_data(pt_http2_stream_t *st, uint8_t *buf,
    size_t length, uint32_t *flags);

/* Send what the session has (frames into the output block) and post the
 * connection's write event to put them on the wire. */
void pt__http2_send(pt_http2_connection_t *h2c);
/* The stream was reset by us for a client error: counted as a reset. */
void pt__http2_count_reset(pt_http2_connection_t *h2c);


#endif /* PT_HTTP2_H */
