/*
 * pt_upstream.h: upstreams, their peers, and the connections to them.
 *
 * An upstream is configured with targets: addresses, host names (resolved
 * at load and again as their TTL runs out) or an SRV name. What those
 * currently resolve to is the upstream's peer set, kept in the "upstream"
 * shm zone so every worker sees the same peers with the same state
 * (requests in flight, health, ejection). A worker keeps a private view
 * of the set (its keep-alive connections, its rotation state), refreshed
 * when the shared set's version changes.
 *
 * Which peer serves a request is the balancer's choice; smooth weighted
 * round robin is built in and the lb module adds others through
 * pt_upstream_balancer_t.
 */

#ifndef PT_UPSTREAM_H
#define PT_UPSTREAM_H

#include <sys/socket.h>

#include "pt_core.h"
#include "pt_http.h"
#include "pt_queue.h"


/* One peer's shared state, in the zone. Entries are never freed while
 * the zone lives, so a pointer taken by a request stays valid even when
 * the peer leaves the set. */
typedef struct pt_upstream_shared_s  pt_upstream_shared_t;

struct pt_upstream_shared_s {
    pt_upstream_shared_t    *next;        /* every peer of the zone      */
    struct sockaddr_storage  sa;
    socklen_t                socklen;
    char                     text[64];    /* "1.2.3.4:80"               */
    volatile int32_t         weight;
    volatile uint32_t        healthy;     /* the active checks' verdict  */
    volatile uint32_t        rise;        /* consecutive probe successes */
    volatile uint32_t        fall;        /* consecutive probe failures  */
    volatile uint32_t        fails;       /* consecutive request failures*/
    volatile uint64_t        ejected_until;   /* epoch ms (passive)      */
    volatile uint64_t        inflight;    /* requests in flight, all
                                             workers                    */
    volatile uint64_t        requests;
    volatile uint64_t        failures;
    uint32_t                 key_len;
    char                     key[];       /* "upstream/address"          */
};

/* An upstream's current peer set and counters, in the zone. */
typedef struct pt_upstream_group_s  pt_upstream_group_t;

struct pt_upstream_group_s {
    pt_upstream_group_t     *next;
    volatile uint64_t        version;     /* bumped when the set changes */
    uint32_t                 npeers;
    uint32_t                 cap;
    pt_upstream_shared_t   **peers;       /* written under the zone lock */
    volatile uint64_t        inflight;    /* all peers, for max_inflight */
    volatile uint64_t        window;      /* retry budget: 10 s windows  */
    volatile uint64_t        requests[2];
    volatile uint64_t        retries[2];
    uint32_t                 key_len;
    char                     key[];       /* the upstream's name         */
};

/* A configured target: an address, or a name to resolve. */
typedef struct {
    pt_addr_t                addr;
    pt_int_t                 weight;
    pt_yaml_node_t          *node;
} pt_upstream_target_t;

/* A worker's view of one peer. */
typedef struct {
    pt_upstream_shared_t    *shared;
    pt_int_t                 current_weight;  /* smooth round robin     */
    pt_queue_t               idle;        /* idle keep-alive connections */
    pt_uint_t                nidle;
    pt_uint_t                busy;        /* connections in use          */
    pt_uint_t                peak;        /* busiest lately (keepalive)  */
    pt_uint_t                peak_prev;
    pt_msec_t                peak_start;
    void                    *ssl_session; /* to resume TLS               */
} pt_upstream_peer_t;


typedef struct pt_upstream_s  pt_upstream_t;

/* How a peer is chosen. pick gets the peers already tried by this request
 * as a bit mask of peer indices (bit 63 stands for every index from 63
 * on) and returns a usable peer not in it, or NULL. r is NULL for a call
 * the gateway makes without a request (pt_upstream_call_t in the helper
 * process): a balancer that needs one (a hash key) makes its default
 * choice then. update runs in a worker when the peer set changed
 * (rebuild a hash ring, say). */
typedef struct {
    const char            *name;
    int                  (*init)(pt_conf_t *cf, pt_upstream_t *us);
    int                  (*update)(pt_upstream_t *us);
    pt_upstream_peer_t  *(*pick)(pt_http_request_t *r, pt_upstream_t *us,
                                 uint64_t tried);
} pt_upstream_balancer_t;

struct pt_upstream_s {
    pt_str_t                       name;
    pt_yaml_node_t                *node;
    void                         **conf;      /* module configs (scope)  */
    pt_array_t                     targets;   /* pt_upstream_target_t    */
    pt_str_t                       srv;       /* discovery.dns_srv       */
    pt_msec_t                      connect_timeout;
    pt_msec_t                      read_timeout;
    pt_msec_t                      write_timeout;
    pt_int_t                       keepalive; /* -1: auto                */
    pt_int_t                       retries;
    pt_int_t                       max_inflight;   /* 0: no limit        */
    /* Passive health (health.passive): max_fails failures in a row eject
     * a peer for fail_timeout. Unless configured, only connect failures
     * count, one is enough, and a lone peer is never ejected (nginx's
     * max_fails=1 fail_timeout=10s); configured, every failure counts. */
    pt_uint_t                      max_fails;      /* 0: off             */
    pt_msec_t                      fail_timeout;
    unsigned                       passive_set:1;  /* configured         */
    unsigned                       dynamic:1; /* names or SRV: re-resolve*/
    unsigned                       internal:1;    /* the gateway's own
                                                  (pt_upstream_add_url)  */

    /* TLS to the peers (tls: on the upstream). */
    void                          *ssl;       /* pt_ssl_ctx_t            */
    pt_str_t                       server_name;

    const pt_upstream_balancer_t  *balancer;
    void                          *balancer_data;

    pt_upstream_group_t           *group;     /* in the zone             */
    pt_slab_pool_t                *slab;      /* the zone's allocator    */

    /* Per worker: the view of the group. */
    uint64_t                       version;
    pt_upstream_peer_t            *peers;
    pt_uint_t                      npeers;
    pt_uint_t                      rr_next;   /* tie breaking            */
};


#define PT_UPSTREAM_KEEPALIVE_AUTO   -1
#define PT_UPSTREAM_KEEPALIVE_MAX    1024


extern pt_module_t  pt_upstream_module;

/* All upstreams of a cycle (pt_upstream_t *), internal ones included, in
 * the order they were read. */
pt_array_t *pt_upstreams(pt_cycle_t *cycle);
/* A configured upstream by name; internal ones are not found (no route
 * or forward auth can name them). */
pt_upstream_t *pt_upstream_find(pt_cycle_t *cycle, const pt_str_t *name);

/* An internal upstream for requests the gateway makes itself to a URL's
 * server (a JWKS document), made at config time: one target host:port (a
 * host name is resolved at load and followed as its TTL runs out, as any
 * target's is), TLS with verification against ca (a resolved path; NULL
 * or empty: the system's trust store) and host as server_name (sent as
 * SNI unless an IP literal), one kept-alive connection, one retry on
 * another address after a connect failure. host is as in a URL: a name,
 * an IPv4 literal or an IPv6 one in brackets. name must hold a ':', which
 * `upstreams:` names may not, so it never clashes with a user's
 * ("jwks:corp"); it shows in /status under that name. Errors go to
 * pt_conf_error() at node; NULL then. */
pt_upstream_t *pt_upstream_add_url(pt_conf_t *cf, pt_yaml_node_t *node,
    const char *name, const pt_str_t *host, uint16_t port,
    const pt_str_t *ca);

/* The upstream a route proxies to, or NULL. */
pt_upstream_t *pt_upstream_of_route(pt_route_t *route);

/* 1 when the route has `websocket: true`: a WebSocket upgrade request is
 * checked and tunnelled to the upstream (pt_proxy.c). */
int pt_upstream_route_websocket(pt_route_t *route);

/* Refresh the worker's view if the shared set changed. */
void pt_upstream_sync(pt_upstream_t *us);

/* 1 when the peer may take requests now: healthy, not ejected. */
int pt_upstream_peer_usable(pt_upstream_peer_t *peer);

/* Choose a peer for r, not among `tried`; NULL when none can take it. */
pt_upstream_peer_t *pt_upstream_pick(pt_http_request_t *r,
    pt_upstream_t *us, uint64_t tried);

/* The bit of a peer in a `tried` mask. */
uint64_t pt_upstream_peer_bit(pt_upstream_t *us, pt_upstream_peer_t *peer);

/* The worker's peer for a shared entry, or NULL if it left the set (a
 * request keeps the shared pointer, which stays valid, not the peer). */
pt_upstream_peer_t *pt_upstream_peer_of(pt_upstream_t *us,
    pt_upstream_shared_t *s);

/* Passive health: a request to the peer failed, or succeeded. */
typedef enum {
    PT_UPSTREAM_FAIL_CONNECT = 0,   /* refused, unreachable, connect or
                                       TLS handshake timed out          */
    PT_UPSTREAM_FAIL_RESPONSE       /* timed out, invalid, 502 503 504  */
} pt_upstream_fail_e;

void pt_upstream_peer_failed(pt_upstream_t *us, pt_upstream_shared_t *s,
    pt_upstream_fail_e kind);
void pt_upstream_peer_ok(pt_upstream_t *us, pt_upstream_shared_t *s);

/* The retry budget: count a first attempt; may a retry go out now? */
void pt_upstream_count_request(pt_upstream_t *us);
int pt_upstream_retry_allowed(pt_upstream_t *us);

/* An attempt of an exchange on peer: counted in the peer's requests and
 * in flight (the exchange takes that back when it ends), and marked in
 * *tried. Returns the shared entry, which the exchange keeps. */
pt_upstream_shared_t *pt_upstream_use(pt_upstream_t *us,
    pt_upstream_peer_t *peer, uint64_t *tried);

/* The peer for another attempt after one on `from` failed: one not in
 * tried, while fewer than `retries` retries were made (tries) and the
 * retry budget allows one; logged either way, with r's request id when
 * r is not NULL. NULL: no retry. */
pt_upstream_peer_t *pt_upstream_retry_peer(pt_http_request_t *r,
    pt_upstream_t *us, uint64_t tried, pt_uint_t tries,
    const pt_upstream_shared_t *from);

/* Replace an upstream's peer set (master at load, helper after DNS), by
 * address; entries are reused by key. Takes the zone lock. */
int pt_upstream_set_peers(pt_upstream_t *us,
    const struct sockaddr_storage *addrs, const socklen_t *lens,
    const int32_t *weights, size_t n);

/* Every peer healthy again (an upstream whose active checks were
 * removed by a reload must not stay down). */
void pt_upstream_health_reset(pt_upstream_t *us);

/* Keep-alive pools and connections (pt_upstream_peer.c). */
pt_connection_t *pt_upstream_keepalive_get(pt_upstream_peer_t *peer);
void pt_upstream_release(pt_upstream_t *us, pt_upstream_shared_t *s,
    pt_connection_t *c, int reusable);
int pt_upstream_connect(pt_upstream_peer_t *peer, pt_connection_t **cp);
void pt_upstream_track_busy(pt_upstream_peer_t *peer, int delta);

/* How far a connection for an exchange is (pt_upstream_open(),
 * pt_upstream_opening()); an exchange's own states go on from these. */
enum {
    PT_UPSTREAM_CONNECTING = 0,     /* connect() under way               */
    PT_UPSTREAM_HANDSHAKE,          /* the TLS handshake under way       */
    PT_UPSTREAM_OPEN                /* ready for the request             */
};

/* A connection to the peer for an exchange: an idle kept-alive one
 * unless fresh is set (*reused = 1; it is PT_UPSTREAM_OPEN), else a new
 * one, made a TLS client when the upstream has tls:. Returns how far it
 * is, with the connect timeout running until it is open; or PT_ERROR,
 * nothing to release, the reason in *what and *err (an errno, or 0). */
int pt_upstream_open(pt_upstream_t *us, pt_upstream_peer_t *peer,
    int fresh, pt_connection_t **cp, int *reused, int *err,
    const char **what);

/* Move a connection of pt_upstream_open() on from `state`, from either of
 * its events (the write event ends connect(), the handshake takes both):
 * returns the state reached (PT_UPSTREAM_OPEN: its timers are off), or
 * PT_ERROR with the reason in *what and *err; the connect timeout ran out
 * if c->read->timedout or c->write->timedout. */
int pt_upstream_opening(pt_upstream_t *us, pt_connection_t *c, int state,
    int *err, const char **what);

/* Keep c's TLS session (if any) to resume the next connection to the
 * peer; call it when an exchange over c got its response. */
void pt_upstream_keep_session(pt_upstream_t *us, pt_upstream_shared_t *s,
    pt_connection_t *c);

/* Smooth weighted round robin: every upstream's balancer unless the lb
 * module's `balance:` names another. */
extern const pt_upstream_balancer_t  pt_upstream_round_robin;


/*
 * A request the gateway makes itself to an upstream (pt_upstream_call.c):
 * forward auth, a JWKS document fetched by the helper process, the legs
 * of an aggregation. It goes the way a proxied request goes: the
 * upstream's balancer, its keep-alive pools, TLS with verification and
 * session reuse, its connect, read and write timeouts, passive health,
 * requests in flight and max_inflight, and another peer after a connect
 * failure (within `retries` and the retry budget) or a fresh connection
 * after a stale keep-alive one. The answer is read whole into memory, at
 * most max_response bytes of head and body, and handed to done().
 *
 * It never blocks, and it lives in `pool`: a cleanup there cancels it, so
 * a request that ends while its call is out (the client left) leaves no
 * connection and no timer behind. The connection goes back to the
 * keep-alive pool only after a whole answer that allows it.
 */

typedef struct pt_upstream_call_s  pt_upstream_call_t;

typedef void (*pt_upstream_call_done_pt)(pt_upstream_call_t *call);

struct pt_upstream_call_s {
    /* In: set before pt_upstream_call_start(); zero what is not used. */
    pt_upstream_t             *us;
    pt_http_request_t         *r;         /* the request it serves (the
                                             balancer's key, logs), or
                                             NULL (the helper process)   */
    pt_pool_t                 *pool;      /* its lifetime                */
    pt_str_t                   method;    /* "GET"; empty: GET           */
    pt_str_t                   target;    /* "/check?x=1"; empty: "/"    */
    pt_str_t                   host;      /* Host; empty: the upstream's
                                             tls server_name, else the
                                             peer's address              */
    const pt_http_header_t    *headers;   /* more request fields, as they
                                             are (no body is sent)       */
    size_t                     nheaders;
    size_t                     max_response;  /* head + body bytes; 0:
                                             PT_UPSTREAM_CALL_MAX        */
    pt_msec_t                  timeout;   /* the whole call; 0: only the
                                             upstream's timeouts         */
    pt_upstream_call_done_pt   done;      /* called once, never from
                                             inside _start(), never after
                                             _cancel()                   */
    void                      *data;

    /* Out, for done(). */
    int                        rc;        /* PT_OK: a whole response, of
                                             any status; PT_ERROR        */
    unsigned                   status;
    pt_array_t                 headers_out;   /* pt_http_header_t: all
                                             but hop-by-hop and framing
                                             fields                      */
    pt_str_t                   body;      /* decoded (chunked), whole    */
    char                       error[160];    /* why rc is PT_ERROR      */

    /* Private. */
    pt_upstream_shared_t      *peer;      /* the attempt's peer (stable) */
    pt_connection_t           *uc;
    uint64_t                   tried;
    pt_uint_t                  tries;     /* retries made                */
    pt_buf_t                   out;       /* the request head            */
    char                      *in;        /* what was read: the head,
                                             then the body, decoded in
                                             place                       */
    size_t                     in_size;
    size_t                     in_len;
    size_t                     parsed;    /* in[0..parsed) is understood */
    size_t                     body_start;
    size_t                     body_len;  /* decoded so far              */
    int64_t                    rest;      /* Content-Length; -1: none    */
    pt_http_head_scan_t        scan;
    pt_http_chunked_t          chunked;
    pt_event_t                 deadline;  /* timeout                     */
    pt_event_t                 post;      /* done() after _start()       */
    unsigned                   state:3;
    unsigned                   starting:1;
    unsigned                   finished:1;
    unsigned                   reused:1;  /* uc came from keep-alive     */
    unsigned                   retried:1; /* a stale one was replaced    */
    unsigned                   got_response:1;
    unsigned                   head_done:1;
    unsigned                   resp_chunked:1;
    unsigned                   resp_until_close:1;
    unsigned                   keepalive:1;
    unsigned                   counted:1;
    unsigned                   group_counted:1;
};

#define PT_UPSTREAM_CALL_MAX   (64 * 1024)

/* Start the call. PT_OK: done() will be called (from the event loop,
 * even when the call fails at once: no usable peer, max_inflight), unless
 * the call is cancelled first. PT_ERROR: out of memory, or a call without
 * us, pool or done; done() is never called, error says why. */
int pt_upstream_call_start(pt_upstream_call_t *call);

/* Give up: the connection is closed, the timers stopped, done() is not
 * called. Idempotent, and harmless after done(); the pool's cleanup
 * calls it. */
void pt_upstream_call_cancel(pt_upstream_call_t *call);


#endif /* PT_UPSTREAM_H */
