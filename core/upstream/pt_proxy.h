/*
 * pt_proxy.h: the proxy's request state, shared by pt_proxy.c (the
 * exchange with the upstream) and pt_proxy_ws.c (WebSocket upgrades and
 * tunnels). Internal to core/upstream.
 */

#ifndef PT_PROXY_H
#define PT_PROXY_H

#include "pt_upstream.h"
#include "pt_tunnel.h"


/* The first three are the connection's (pt_upstream_opening()). */
enum {
    PT_PROXY_CONNECTING = PT_UPSTREAM_CONNECTING,
    PT_PROXY_HANDSHAKE = PT_UPSTREAM_HANDSHAKE,
    PT_PROXY_SENDING = PT_UPSTREAM_OPEN,
    PT_PROXY_WAITING,
    PT_PROXY_STREAMING,
    PT_PROXY_SWITCHING,         /* the 101 on its way to the client     */
    PT_PROXY_TUNNEL             /* bytes both ways (p->tunnel)          */
};

/* One request's exchange with the upstream (the module's request ctx). */
typedef struct {
    pt_http_request_t     *r;
    pt_upstream_t         *us;
    pt_upstream_shared_t  *peer;        /* the attempt's peer (stable)     */
    pt_connection_t       *uc;
    uint64_t               tried;       /* peers tried, pt_upstream bits   */
    pt_uint_t              tries;       /* retries made                    */

    pt_buf_t               head;        /* request head for the upstream   */
    pt_buf_t               body;        /* a piece of the request body     */
    pt_buf_t               in;          /* response bytes from upstream    */

    pt_http_head_scan_t    scan;
    pt_http_chunked_t      chunked;
    int64_t                rest;        /* response body bytes still due   */
    uint64_t               start_usec;
    pt_event_t             deadline;    /* the route's timeout             */

    pt_tunnel_t           *tunnel;      /* after a 101                     */
    pt_tunnel_end_t        ends[2];     /* client, upstream                */

    unsigned               state:3;
    unsigned               reused:1;    /* uc came from keep-alive         */
    unsigned               retried:1;   /* a stale keep-alive was replaced */
    unsigned               req_chunked:1;
    unsigned               req_body_done:1;  /* all of it is in `body`    */
    unsigned               req_sent:1;       /* all of it reached upstream */
    unsigned               body_started:1;   /* client body bytes consumed */
    unsigned               resp_chunked:1;
    unsigned               resp_until_close:1;
    unsigned               resp_done:1;
    unsigned               upstream_keepalive:1;
    unsigned               got_response:1;
    unsigned               counted:1;   /* peer inflight incremented       */
    unsigned               group_counted:1;   /* upstream inflight too     */
    unsigned               no_retry:1;
    pt_str_t               ws_key;      /* ours, for an extended CONNECT   */
    unsigned               upgrade:1;   /* a WebSocket upgrade was asked   */
} pt_proxy_t;


/* pt_proxy.c */
void pt__proxy_fail(pt_proxy_t *p, unsigned status, int err,
    const char *what);
/* Give the upstream connection back (or close it) and note the timing. */
void pt__proxy_finish(pt_proxy_t *p);

/* pt_proxy_ws.c */
/* Check a WebSocket upgrade on a route with websocket: true (sets
 * p->upgrade); PT_OK, or the status to answer with. */
int pt__proxy_websocket(pt_proxy_t *p);
/* The upstream answered 101 to an upgrade: PT_DONE, or PT_ERROR after
 * failing. */
int pt__proxy_switch(pt_proxy_t *p, pt_http_status_line_t *sl,
    pt_http_header_t *h, size_t n);
/* The client's write event while the 101 goes out. */
void pt__proxy_switching(pt_proxy_t *p);


#endif /* PT_PROXY_H */
