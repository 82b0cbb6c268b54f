/*
 * pt_http.h: HTTP requests, phases, filters and the http core module.
 *
 * A request moves through the phases of SPEC 3 in order. Each phase holds
 * handlers sorted by (priority, module name); a handler returns
 *   PT_CONTINUE (PT_OK)  go on with the next handler,
 *   PT_DONE              a response is being produced; stop the phases,
 *   PT_AGAIN             suspended: it will call pt_http_run_phases(r)
 *                        when its event arrives, which re-runs it,
 *   a status >= 100      answer with that error (JSON body),
 *   PT_ERROR             answer 500 (or abort if headers went out).
 * Whatever happens, the LOG phase runs exactly once per request.
 *
 * Output goes through the header filters (in priority order, the core
 * writes the head last) and the body filters (the core frames chunked and
 * writes last). Memory for a request comes from its pool; output links
 * come from a per-request free list so that streaming a body of any size
 * uses a bounded amount of memory.
 *
 * Body filters. A filter gets the chain handed to pt_http_output() and
 * replaces *chain with what it passes on (NULL: nothing this time). The
 * producer's side of the contract, which the proxy (pt_proxy_stream) and
 * pt_http_send_response keep, on HTTP/1 and HTTP/2 alike: it reuses the
 * memory of the buffers it handed over once pt_http_output() returns
 * PT_OK, and it calls pt_http_output() again only after the previous
 * output has left, i.e. after PT_OK from pt_http_output() or from
 * pt_http_flush() (both mean r->out is empty). So a filter that takes
 * its input whole (copying what it keeps) may free the input links with
 * pt_http_link_free(), and the buffers it passed on in one call are
 * free again at its next call. A link with buf->last_buf ends the body;
 * buf->flush asks for what is held back to go now.
 */

#ifndef PT_HTTP_H
#define PT_HTTP_H

#include "pt_core.h"
#include "pt_array.h"
#include "pt_buf.h"
#include "pt_conf.h"
#include "pt_connection.h"
#include "pt_cycle.h"
#include "pt_http_chunked.h"
#include "pt_http_parse.h"
#include "pt_log.h"
#include "pt_module.h"
#include "pt_ssl.h"
#include "pt_tunnel.h"


typedef enum {
    PT_HTTP_POST_READ_PHASE = 0,
    PT_HTTP_ROUTE_PHASE,
    PT_HTTP_REWRITE_PHASE,
    PT_HTTP_PREACCESS_PHASE,
    PT_HTTP_ACCESS_PHASE,
    PT_HTTP_LIMIT_PHASE,
    PT_HTTP_PRECONTENT_PHASE,
    PT_HTTP_CONTENT_PHASE,
    PT_HTTP_LOG_PHASE,
    PT_HTTP_NPHASES
} pt_http_phase_e;


typedef int  (*pt_http_handler_pt)(pt_http_request_t *r);
/* A CONNECT handler runs once per connection, before any request, in
 * registration order: PT_OK (or PT_DECLINED) goes on with the next one;
 * PT_AGAIN suspends it, and it is called again on the connection's next
 * read or write event, or with c->timedout set when
 * limits.handshake_timeout has run out since the phase began (it must
 * then give up: log, count, return PT_ERROR); anything else closes the
 * connection. */
typedef int  (*pt_http_connect_handler_pt)(pt_connection_t *c);
typedef int  (*pt_http_header_filter_pt)(pt_http_request_t *r);
typedef int  (*pt_http_body_filter_pt)(pt_http_request_t *r,
                                       pt_chain_t **chain);
typedef void (*pt_http_event_handler_pt)(pt_http_request_t *r);


/* A configured listener. */
typedef struct {
    pt_addr_t         addr;
    pt_int_t          backlog;
    void            **ctx;        /* module configs at listen scope     */
    pt_yaml_node_t   *node;
    pt_ssl_server_t  *ssl;        /* `tls:` settings, or NULL            */
    unsigned          admin:1;
    unsigned          http2:1;    /* h2c by preface (h2 by ALPN on TLS) */
} pt_http_listen_t;


/* A route: one entry of `routes:` (or a built-in admin endpoint). */
typedef struct {
    pt_str_t            name;
    pt_uint_t           index;
    pt_yaml_node_t     *node;
    void              **conf;          /* module configs at route scope   */
    pt_http_handler_pt  content;       /* the route's one action          */
    const char         *content_key;   /* which key set it, for errors    */
    pt_yaml_node_t     *content_node;
    unsigned            admin:1;
    unsigned            tunnels:1;     /* its action takes WebSocket
                                          tunnels (set by the module that
                                          owns the action)               */
} pt_route_t;


/* limits.underscore_headers: request fields whose name holds '_' are
 * dropped (logged at info), kept, or answered with 400. Many backends read
 * '_' and '-' alike, so X_Forwarded_For could pose as X-Forwarded-For. */
#define PT_HTTP_UNDERSCORE_DROP     0
#define PT_HTTP_UNDERSCORE_ALLOW    1
#define PT_HTTP_UNDERSCORE_REJECT   2


/* Settings of the http core at global scope (limits, listeners, routes)
 * and the phase engine built from every module's registrations. */
typedef struct {
    pt_int_t           max_connections;
    pt_msec_t          header_timeout;
    pt_msec_t          body_timeout;
    pt_msec_t          idle_timeout;
    pt_msec_t          send_timeout;
    pt_msec_t          graceful_timeout;
    pt_msec_t          handshake_timeout;    /* the CONNECT phase         */
    pt_msec_t          websocket_idle_timeout;   /* a tunnel's silence   */
    size_t             max_header_size;
    size_t             max_body_size;
    pt_int_t           max_headers;
    pt_uint_t          underscore_headers;   /* PT_HTTP_UNDERSCORE_*      */

    /* HTTP/2 (pt_http2.c). */
    pt_int_t           http2_max_concurrent_streams;
    size_t             http2_max_header_list_size;
    pt_rate_t          http2_reset_rate;     /* stream resets per conn.   */
    pt_rate_t          http2_control_rate;   /* PING, SETTINGS, PRIORITY,
                                                empty DATA per conn.      */

    pt_array_t         listens;        /* pt_http_listen_t *              */
    pt_array_t         routes;         /* pt_route_t *                    */
    pt_array_t         admin_routes;   /* pt_route_t * (built-in)         */
    pt_array_t         trusted;        /* pt_cidr_t                       */
    pt_yaml_node_t    *admin_node;
    void              *tls;            /* pt_http_tls.c's, when a listener
                                          has tls:                       */

    /* Phase engine. */
    pt_array_t         regs;           /* registrations, unsorted         */
    void              *engine;         /* pt_http_phase_engine_t          */
} pt_http_main_conf_t;

typedef struct {
    pt_msec_t          timeout;        /* whole-request deadline, 0: none */
} pt_http_route_conf_t;


typedef struct {
    pt_array_t          headers;       /* pt_http_header_t                */
    pt_http_header_t   *host;
    pt_http_header_t   *content_length;
    pt_http_header_t   *transfer_encoding;
    pt_http_header_t   *connection;
    pt_http_header_t   *expect;
    pt_http_header_t   *upgrade;
    pt_http_header_t   *te;
    pt_http_header_t   *x_request_id;
    pt_http_header_t   *x_forwarded_for;
    pt_http_header_t   *user_agent;
    pt_http_header_t   *referer;
    int64_t             content_length_n;   /* -1: none                   */
    unsigned            chunked:1;
    unsigned            conn_close:1;       /* any Connection says so     */
    unsigned            conn_keepalive:1;
} pt_http_headers_in_t;

typedef struct {
    unsigned            status;
    pt_array_t          headers;       /* pt_http_header_t                */
    int64_t             content_length_n;   /* -1: unknown                */
} pt_http_headers_out_t;


typedef struct pt_http_connection_s  pt_http_connection_t;

struct pt_http_connection_s {
    pt_http_listen_t    *listen;
    pt_buf_t            *buf;          /* head buffer (from the cache)    */
    pt_http_request_t   *request;      /* the current one, if any         */
    pt_buf_t             buf_desc;
    pt_msec_t            head_start;   /* when the current head began     */
    pt_uint_t            connect_index;  /* the CONNECT handler running   */
};


/*
 * The protocol seam. Everything a request does with its client that
 * depends on the wire goes through r->proto: HTTP/1 (pt_http_request.c,
 * pt_http_output.c, pt_http_body.c) and HTTP/2 (pt_http2*.c) each supply
 * one table. The phases, filters, modules and the proxy only use the
 * pt_http_* functions below, which are the same for both.
 */
typedef struct {
    const char  *name;          /* "HTTP/1.1", "HTTP/2"                 */

    /* Write the response head once the header filters ran (status,
     * headers_out and the request's flags are final). HTTP/1 queues the
     * serialized head in r->out; HTTP/2 keeps it until the first flush. */
    int   (*send_header)(pt_http_request_t *r);

    /* Move r->out towards the client as far as it takes it now: PT_OK
     * when every link left the request (their buffers may be reused),
     * PT_AGAIN (r->write_event_handler runs on progress or on
     * send_timeout, with r->connection->write->timedout set), PT_ERROR
     * when the client is gone. */
    int   (*flush)(pt_http_request_t *r);

    /* Forget a head that was queued but not committed to the wire. */
    void  (*output_reset)(pt_http_request_t *r);

    /* 1 once any byte of the response is committed to the client. */
    int   (*output_started)(pt_http_request_t *r);

    /* See pt_http_read_body(). */
    int   (*read_body)(pt_http_request_t *r, char *dst, size_t size,
                       size_t *n);

    /* The default read handler while a response is produced: notice a
     * client that went away. */
    void  (*block_reading)(pt_http_request_t *r);

    /* The request is over and logged: the response went out whole (done)
     * or it was aborted (terminate). Each frees the request and keeps the
     * connection for more, or closes it. */
    void  (*done)(pt_http_request_t *r);
    void  (*terminate)(pt_http_request_t *r);

    /* See pt_http_tunnel_end(). */
    int   (*tunnel_end)(pt_http_request_t *r, pt_tunnel_end_t *e);
} pt_http_proto_t;


/* Request body reader state (pt_http_body.c). */
typedef struct {
    int64_t             rest;          /* Content-Length bytes still due  */
    uint64_t            received;      /* decoded bytes so far            */
    pt_http_chunked_t   chunked;
    pt_str_t            chunked_pending; /* decoded, not yet copied out   */
    pt_buf_t           *raw;           /* chunked: raw bytes read         */
    unsigned            started:1;
    unsigned            done:1;
    unsigned            discarding:1;
} pt_http_body_t;


struct pt_http_request_s {
    pt_connection_t          *connection;  /* the client's; an HTTP/2
                                              stream's own (its events,
                                              timers and byte count)    */
    pt_http_connection_t     *hc;
    const pt_http_proto_t    *proto;
    void                     *stream;      /* pt_http2_stream_t, or NULL */
    pt_pool_t                *pool;
    pt_http_main_conf_t      *hmcf;

    pt_http_request_line_t    line;     /* as parsed: method, target, ... */
    unsigned                  method;   /* PT_HTTP_GET, ...               */
    pt_str_t                  method_name;
    pt_str_t                  path;     /* normalized; rewrites change it */
    pt_str_t                  query;
    unsigned                  has_query:1;
    pt_str_t                  host;     /* lower-cased, without port      */
    pt_str_t                  request_id;
    pt_str_t                  consumer; /* set by auth                    */
    pt_str_t                  trace_id; /* W3C, 32 hex (pt_http_trace.c)  */

    pt_http_headers_in_t      headers_in;
    pt_http_headers_out_t     headers_out;

    pt_route_t               *route;
    pt_http_handler_pt        content_handler;   /* the route's, unless a
                                                    PRECONTENT handler
                                                    replaced it          */
    int                       captures[20];   /* regex path captures      */
    pt_uint_t                 ncaptures;
    pt_str_t                  captures_subject;

    pt_uint_t                 phase_index;
    void                    **ctx;       /* per-module request state      */

    pt_http_event_handler_pt  read_event_handler;
    pt_http_event_handler_pt  write_event_handler;

    pt_http_body_t            body;

    pt_chain_t               *out;       /* written, not yet sent         */
    pt_chain_t               *free_links;

    /* For the log. */
    pt_msec_t                 start_msec;
    uint64_t                  start_usec;
    uint64_t                  bytes_sent_start;  /* c->sent at the start  */
    unsigned                  status;     /* what the client got          */
    pt_str_t                  upstream_name;
    pt_str_t                  upstream_addr;
    int64_t                   upstream_usec;     /* -1: no upstream       */
    pt_str_t                  cache_status;  /* X-Cache's value, set by the
                                                cache module; empty: none */

    unsigned                  version:8;      /* 10, 11 or 20             */
    unsigned                  keepalive:1;
    unsigned                  header_sent:1;  /* the head reached output  */
    unsigned                  response_done:1;/* last buffer handed off   */
    unsigned                  logged:1;
    unsigned                  expect_continue:1;
    unsigned                  continue_sent:1;
    unsigned                  chunked_out:1;  /* body framed chunked      */
    unsigned                  no_body:1;      /* HEAD, 204, 304           */
    unsigned                  error:1;        /* aborted                  */
    unsigned                  client_aborted:1;
    unsigned                  finalizing:1;
    unsigned                  counted:1;      /* in the process's count   */
    unsigned                  limited:1;      /* a rate or concurrency
                                                 limit refused it (for the
                                                 log and metrics)         */
    unsigned                  ext_connect:1;  /* an HTTP/2 extended CONNECT
                                                 for websocket (RFC 8441),
                                                 routed as the GET Upgrade
                                                 it stands for            */
};


/* The http core module and access to its config. */
extern pt_module_t  pt_http_module;

#define pt_http_main_conf(cycle) \
    ((pt_http_main_conf_t *) (cycle)->conf[pt_http_module.index])

#define pt_http_get_module_ctx(r, m)     ((r)->ctx[(m).index])
#define pt_http_set_module_ctx(r, c, m)  ((r)->ctx[(m).index] = (c))
#define pt_http_route_conf(r, m) \
    ((r)->route ? (r)->route->conf[(m).index] : NULL)


/* Registration, in postconfig. Lower priority numbers run first within a
 * phase; ties go by module name. Filters run from the highest priority
 * to the lowest, so a filter at 900 sees what the upstream sent and one
 * at 100 sees the final form (nginx's order, made explicit). */
int pt_http_phase_add(pt_conf_t *cf, pt_http_phase_e phase,
    pt_http_handler_pt h, int prio, pt_module_t *m);
int pt_http_connect_add(pt_conf_t *cf, pt_http_connect_handler_pt h,
    int prio, pt_module_t *m);
int pt_http_header_filter_add(pt_conf_t *cf, pt_http_header_filter_pt f,
    int prio, pt_module_t *m);
int pt_http_body_filter_add(pt_conf_t *cf, pt_http_body_filter_pt f,
    int prio, pt_module_t *m);

/* Sort the registrations into the engine (the http module's init_conf,
 * after every module's postconfig). */
int pt_http_build_engine(pt_conf_t *cf);

/* Print the phase table (portico -V). */
void pt_http_print_phases(pt_cycle_t *cycle, FILE *out);

/* Make a route's action; two actions on one route are an error. */
int pt_route_set_content(pt_conf_t *cf, pt_yaml_node_t *node,
    const char *key, pt_http_handler_pt h);

/* Register a named route action, `handler: NAME` (in a module's
 * preconfig, before routes are parsed). The http core owns the route key
 * `handler` and refuses names nobody registered. */
int pt_http_named_handler_add(pt_conf_t *cf, const char *name,
    pt_http_handler_pt h);

/* Register a built-in endpoint of the admin listener (exact path). */
pt_route_t *pt_http_admin_route_add(pt_conf_t *cf, const char *path,
    pt_http_handler_pt h);


/* Request lifecycle (pt_http_request.c). */
void pt_http_init_connection(pt_connection_t *c);
/* A request on connection c with its own pool, as both protocols start
 * one, with `extra` zeroed bytes right after it for the protocol's own
 * state; NULL when out of memory. */
pt_http_request_t *pt_http_alloc_request(pt_connection_t *c,
    pt_http_connection_t *hc, const pt_http_proto_t *proto, size_t extra);
void pt_http_run_phases(pt_http_request_t *r);
void pt_http_finalize(pt_http_request_t *r, int rc);
void pt_http_request_handler_read(pt_event_t *ev);
void pt_http_request_handler_write(pt_event_t *ev);
void pt_http_block_reading(pt_http_request_t *r);
void pt_http_log_request(pt_http_request_t *r, int level, const char *fmt,
    ...) PT_PRINTF(3, 4);

/* After a 101 went out (r->out empty), the client's side of r as a
 * tunnel end: on HTTP/1.1 the connection, bytes the client sent right
 * after its head first; on HTTP/2 the stream of an extended CONNECT (its
 * DATA both ways, END_STREAM as the half-close; the 101 went out as 200).
 * The request lives on (keep-alive off, timers off) until its owner
 * finalizes it when the tunnel ends, which writes its one access-log
 * line; meanwhile r's read and write event handlers, which stay the
 * owner's, must call pt_tunnel_run(). PT_OK or PT_ERROR. */
int pt_http_tunnel_end(pt_http_request_t *r, pt_tunnel_end_t *e);

/* Headers. */
pt_http_header_t *pt_http_header_find(pt_array_t *headers, const char *name,
    size_t len);
int pt_http_header_out_add(pt_http_request_t *r, const char *name,
    size_t nlen, const char *value, size_t vlen);
int pt_http_header_out_set(pt_http_request_t *r, const char *name,
    size_t nlen, const char *value, size_t vlen);
void pt_http_header_out_remove(pt_http_request_t *r, const char *name,
    size_t nlen);
/* Edit the request fields that go upstream: headers_in's pointers to the
 * fields the core knows follow (to a field added under a known name when
 * there was none, to NULL when theirs is removed). Removed fields keep
 * their slot with an empty name, which nothing forwards. name and value
 * must live as long as r; add returns NULL when out of memory. */
void pt_http_header_in_remove(pt_http_request_t *r, const char *name,
    size_t nlen);
pt_http_header_t *pt_http_header_in_add(pt_http_request_t *r,
    const pt_str_t *name, const pt_str_t *value);
/* 1 for hop-by-hop fields (RFC 9110 7.6.1), plus any named in the
 * message's Connection header. */
int pt_http_is_hop_by_hop(const pt_str_t *name, const pt_str_t *connection);

/* Output (pt_http_output.c). */
int pt_http_send_header(pt_http_request_t *r);
int pt_http_output(pt_http_request_t *r, pt_chain_t *in);
int pt_http_flush(pt_http_request_t *r);
/* Forget a response that was queued but not one byte of it sent, so an
 * error status can replace it. */
void pt_http_output_reset(pt_http_request_t *r);
/* 1 once some byte of the response is committed to the client. */
int pt_http_output_started(pt_http_request_t *r);
pt_chain_t *pt_http_link_get(pt_http_request_t *r);
void pt_http_link_free(pt_http_request_t *r, pt_chain_t *cl);
/* A link over len bytes at p, which must stay until the link is sent. */
pt_chain_t *pt_http_link_bytes(pt_http_request_t *r, const char *p,
    size_t len);
/* A complete small response: status, content type and body. */
int pt_http_send_response(pt_http_request_t *r, unsigned status,
    const char *type, const char *body, size_t len);
/* The JSON error response of SPEC 5. */
int pt_http_send_error(pt_http_request_t *r, unsigned status);

/* Request body (pt_http_body.c). Decodes into dst; returns PT_OK with
 * *n > 0, PT_AGAIN (r->read_event_handler is called when more arrives),
 * PT_DONE at the end of the body, an HTTP status (400 413 408), or
 * PT_ERROR when the client went away. */
int pt_http_read_body(pt_http_request_t *r, char *dst, size_t size,
    size_t *n);
int pt_http_has_body(pt_http_request_t *r);
/* Read and drop the rest of the body so the connection can be reused;
 * PT_OK when done, PT_AGAIN, or PT_ERROR (close it). */
int pt_http_discard_body(pt_http_request_t *r);


/* Variables and templates (pt_http_vars.c). */
typedef int (*pt_http_var_get_pt)(pt_http_request_t *r, const pt_str_t *arg,
    pt_str_t *value);

typedef struct {
    const char           *name;       /* "host", or "header." for a family */
    pt_http_var_get_pt    get;
    unsigned              prefix:1;   /* name is a family: header.NAME     */
} pt_http_var_t;

/* Register variables, in a module's preconfig (before any template is
 * compiled). The core's own are added by pt_http_vars_preconfig(). */
int pt_http_vars_preconfig(pt_conf_t *cf);

int pt_http_var_add(pt_conf_t *cf, const pt_http_var_t *var);

/* Compile "${name}" templates once at load; NULL after pt_conf_error. */
pt_template_t *pt_template_compile(pt_conf_t *cf, pt_yaml_node_t *node);
int pt_template_eval(pt_http_request_t *r, const pt_template_t *t,
    pt_str_t *out);
/* Where the template was written, for errors found after compiling. */
pt_yaml_node_t *pt_template_node(const pt_template_t *t);
/* The highest ${N} capture the template uses (0: none). */
unsigned pt_template_max_capture(const pt_template_t *t);
/* True when the template is plain text (no variables). */
int pt_template_is_literal(const pt_template_t *t, pt_str_t *text);
int pt_conf_set_template(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);

/* The value of the first query parameter called arg, as sent (not
 * percent-decoded); PT_DECLINED when there is none. */
int pt_http_arg(pt_http_request_t *r, const pt_str_t *arg, pt_str_t *v);

/* ${scheme}: "https" on a TLS connection, else "http"; also what
 * X-Forwarded-Proto says upstream. */
void pt_http_scheme(pt_http_request_t *r, pt_str_t *scheme);

/* ${remote_addr}: the client, or the first untrusted hop of
 * X-Forwarded-For when the peer is in trusted_proxies. */
int pt_http_remote_addr(pt_http_request_t *r, pt_str_t *addr);

/* TLS termination (pt_http_tls.c): the listen key `tls`, its handlers
 * and zones (from the http module's postconfig and init_master), ticket
 * key rotation (its tick_master), and the counters for /status
 * (PT_DECLINED when no listener has TLS). */
int pt_http_tls_set(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
int pt_http_tls_postconfig(pt_conf_t *cf);
int pt_http_tls_init_master(pt_cycle_t *cycle);
void pt_http_tls_tick_master(pt_cycle_t *cycle);
int pt_http_tls_stats(pt_cycle_t *cycle, pt_ssl_stats_t *st);

/* Internal to the http core: the parts of request set-up both protocols
 * share (pt_http_request.c). */
int pt__http_index_headers(pt_http_request_t *r);
int pt__http_host_valid(const char *h, size_t len, pt_str_t *host,
    pt_pool_t *pool);
size_t pt__http_copy_fields(pt_http_request_t *r,
    const pt_http_header_t *from, size_t n);
int pt__http_underscores(pt_http_request_t *r, const pt_http_header_t *from,
    size_t n);
void pt__http_set_idle(pt_connection_t *c, int idle);
/* Close after our last byte without losing it to a RST: shut the write
 * side, read and drop for up to 5 s (2 s idle), then close. */
void pt__http_lingering_close(pt_connection_t *c);
/* Run LOG once and count the request (both protocols' ends). */
void pt__http_request_end(pt_http_request_t *r);

/* Internal to the http core: run a kind of registered handler. The
 * CONNECT phase (resumable) ends in pt__http_connect_done(c, rc):
 * PT_OK serves requests, anything else closes. */
int pt__http_run_connect(pt_connection_t *c);
void pt__http_connect_done(pt_connection_t *c, int rc);
void pt__http_run_log(pt_http_request_t *r);
int pt__http_run_header_filters(pt_http_request_t *r);
int pt__http_run_body_filters(pt_http_request_t *r, pt_chain_t **chain);

/* The HTTP/1 side of the seam (pt_http_output.c, pt_http_body.c). */
int pt_http1_send_header(pt_http_request_t *r);
int pt_http1_flush(pt_http_request_t *r);
void pt_http1_output_reset(pt_http_request_t *r);
int pt_http1_read_body(pt_http_request_t *r, char *dst, size_t size,
    size_t *n);

/* Handlers the http core registers itself. */
int pt_http_request_id(pt_http_request_t *r);
/* POST_READ, after the request id: W3C traceparent continued (a child
 * span for the upstream) or started, r->trace_id set (pt_http_trace.c). */
int pt_http_trace(pt_http_request_t *r);
int pt_http_chunked_filter(pt_http_request_t *r, pt_chain_t **chain);

/* Per-worker block caches for head and body buffers. */
extern pt_block_cache_t  pt_http_head_blocks;
extern pt_block_cache_t  pt_http_body_blocks;

#define PT_HTTP_BODY_BUFFER   (64 * 1024)


#endif /* PT_HTTP_H */
