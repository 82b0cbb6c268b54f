/*
 * pt_resolver.h: non-blocking DNS lookups (A/AAAA and SRV) on c-ares.
 *
 * A worker or the helper process creates one resolver; its sockets live in
 * connection slots of the event loop and c-ares's retransmission clock is
 * one timer, so nothing ever blocks. Results are never delivered from
 * inside pt_resolver_resolve() or from inside c-ares: they are posted, and
 * the handler runs from the event loop, where it may start new lookups,
 * cancel others or destroy the resolver.
 *
 * The master, which has no event loop, uses pt_resolver_resolve_sync() at
 * configuration load; it blocks for at most the timeout it is given.
 *
 * Upstream names are looked up as written: with servers configured, no
 * search domains and no /etc/hosts (nginx's resolver semantics); without,
 * /etc/resolv.conf applies as it would to getaddrinfo(3). Each try waits
 * 1 s, doubled per round over the servers, 3 rounds: a lookup that gets
 * no answer at all fails after about 7 s with one server.
 */

#ifndef PT_RESOLVER_H
#define PT_RESOLVER_H

#include <sys/socket.h>

#include "pt_core.h"
#include "pt_array.h"
#include "pt_conf_value.h"


/* Lookups in flight per resolver (cancelled ones count until c-ares lets
 * go of them); pt_resolver_resolve() returns NULL beyond it. */
#define PT_RESOLVER_MAX_QUERIES   1024

/* Addresses kept per answer, and SRV targets followed per answer: the
 * rest is dropped (and logged), so a hostile answer costs bounded memory. */
#define PT_RESOLVER_MAX_ADDRS     256
#define PT_RESOLVER_MAX_TARGETS   64

/* Sockets c-ares may hold open at once (one UDP and one TCP per server). */
#define PT_RESOLVER_MAX_SOCKETS   32

/* The TTL reported for a name that is an IP address ("10.0.0.1",
 * "::1"): answered without a query, it never changes. */
#define PT_RESOLVER_TTL_LITERAL   86400

/* The longest name accepted, with an optional final dot. */
#define PT_RESOLVER_NAME_MAX      254


typedef struct {
    pt_array_t   servers;   /* pt_addr_t (core/pt_conf_value.h), IP
                               addresses with a port, at most
                               PT_RESOLVER_MAX_SOCKETS / 2; empty: use
                               /etc/resolv.conf                          */
    pt_msec_t    valid;     /* 0: use the TTLs answered; else re-resolve
                               after this long whatever the TTL (applied
                               by the caller, not here)                  */
} pt_resolver_conf_t;

typedef struct {
    struct sockaddr_storage  sa;       /* with the port set              */
    socklen_t                socklen;
    uint16_t                 weight;   /* SRV weight (1 for A/AAAA)      */
    uint16_t                 priority; /* SRV priority (0 for A/AAAA)    */
    char                     text[64]; /* "1.2.3.4:80", "[::1]:80"       */
} pt_resolved_t;

/* status PT_OK with n >= 1 addresses, or PT_ERROR (NXDOMAIN, no data,
 * timeout, refused...) with n == 0 and addrs NULL; ttl is the smallest TTL
 * of the answer (for SRV: of the SRV records and the addresses of their
 * targets), in seconds, at least 1 (1 on PT_ERROR). The array is valid
 * during the callback only. */
typedef void (*pt_resolver_handler_pt)(void *data, int status,
    const pt_resolved_t *addrs, size_t n, uint32_t ttl);

typedef struct pt_resolver_s        pt_resolver_t;
typedef struct pt_resolver_query_s  pt_resolver_query_t;


/* In a process running the event loop (after pt_event_init and
 * pt_connections_init). Reads /etc/resolv.conf once, here. NULL on error
 * (logged): a server that is a name, c-ares failing to initialise. */
pt_resolver_t *pt_resolver_create(const pt_resolver_conf_t *conf);

/* Cancels every lookup (no handler runs afterwards), closes the sockets
 * and frees the resolver. Allowed from inside a handler. */
void pt_resolver_destroy(pt_resolver_t *res);

/* Start a lookup: srv == 0: A and AAAA for name, each address with
 * `port`; srv == 1: the SRV records of name (lowest priority group only,
 * RFC 2782; port is unused), each target resolved to A/AAAA with the SRV
 * port and weight (an SRV weight of 0 becomes 1). The handler runs later
 * from the event loop, exactly once, unless the lookup is cancelled.
 * Returns a handle for cancelling, or NULL on immediate failure (a name
 * that is empty or too long, too many lookups in flight, no memory). */
pt_resolver_query_t *pt_resolver_resolve(pt_resolver_t *res,
    const char *name, uint16_t port, int srv,
    pt_resolver_handler_pt handler, void *data);

/* The handler will not run. Only for a lookup whose handler has not run
 * yet: the handle is invalid once it has. */
void pt_resolver_cancel(pt_resolver_query_t *q);

/* The same, synchronously, bounded by timeout (for config load in the
 * master): fills *addrs (malloc'ed, caller frees) and *n, *ttl; PT_OK or
 * PT_ERROR (then *addrs is NULL and *n 0). */
int pt_resolver_resolve_sync(const pt_resolver_conf_t *conf,
    const char *name, uint16_t port, int srv, pt_resolved_t **addrs,
    size_t *n, uint32_t *ttl, pt_msec_t timeout);


#endif /* PT_RESOLVER_H */
