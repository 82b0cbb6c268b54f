/*
 * pt_tunnel.h: a byte tunnel between two stream ends, with back-pressure.
 *
 * After a WebSocket upgrade the gateway no longer speaks HTTP on either
 * side: it copies bytes both ways until both sides are done. The tunnel
 * knows nothing of the protocols it joins. Each side is an end, a byte
 * stream with recv, send and shutdown: a TCP or TLS connection (the
 * upstream, an HTTP/1 client) or, later, an HTTP/2 stream carrying an
 * extended CONNECT (its recv reads the stream's DATA, its send queues
 * DATA within the flow-control window, its shutdown ends the stream).
 *
 * Back-pressure: at most one buffer per direction, a block of the owner's
 * block cache. A direction reads from its source only while its buffer
 * has room, and the buffer only empties as fast as the destination
 * accepts, so a side that stops reading stops the other side's reads,
 * whatever it sends. A buffer goes back to the cache as soon as it is
 * empty: an idle tunnel holds none, so many quiet WebSockets cost little.
 *
 * Half-close: when a source ends (FIN, END_STREAM), what is buffered is
 * delivered and the end is passed on (shutdown); the tunnel is done when
 * both directions are, or at the first error, or after idle_timeout with
 * no byte moved either way, or when the owner stops it. Then the owner's
 * done() runs once; it closes both ends and may free the tunnel.
 *
 * Events: an end's owner calls pt_tunnel_run() whenever that end may have
 * become readable or writable (for a connection, from its read and write
 * handlers). recv and send report "not now" with PT_AGAIN; the tunnel then
 * waits for the next pt_tunnel_run().
 */

#ifndef PT_TUNNEL_H
#define PT_TUNNEL_H

#include "pt_core.h"
#include "pt_buf.h"
#include "pt_connection.h"
#include "pt_event.h"
#include "pt_queue.h"


typedef struct pt_tunnel_s      pt_tunnel_t;
typedef struct pt_tunnel_end_s  pt_tunnel_end_t;


struct pt_tunnel_end_s {
    /* Set by the end's owner. */
    void             *data;
    /* Bytes read (> 0), 0 at the end of the stream, PT_AGAIN when none
     * are there now, or PT_ERROR. */
    ssize_t         (*recv)(pt_tunnel_end_t *e, char *buf, size_t size);
    /* Bytes taken (> 0), PT_AGAIN when none can be taken now, or
     * PT_ERROR. Bytes taken are the end's to deliver: the tunnel does not
     * offer them again. */
    ssize_t         (*send)(pt_tunnel_end_t *e, char *buf, size_t size);
    /* No more bytes for this end: pass the end of the stream on (a FIN,
     * END_STREAM). PT_OK, PT_DECLINED when the end cannot half-close (it
     * then only learns of the end when the tunnel closes it), PT_ERROR. */
    int             (*shutdown)(pt_tunnel_end_t *e);
    const char       *name;         /* "client", "upstream": for logs   */

    /* The tunnel's. */
    pt_tunnel_t      *tunnel;
    unsigned          eof:1;        /* its stream ended                 */
    unsigned          shut:1;       /* the other's end was passed on    */
};


/* Why a tunnel ended (the argument of done). */
typedef enum {
    PT_TUNNEL_CLOSED = 0,   /* both sides ended their streams            */
    PT_TUNNEL_ERROR,        /* recv, send or shutdown failed on one side */
    PT_TUNNEL_IDLE,         /* no byte either way for idle_timeout       */
    PT_TUNNEL_STOPPED       /* pt_tunnel_close_all (the worker's drain)   */
} pt_tunnel_why_e;


struct pt_tunnel_s {
    /* Set by the owner before pt_tunnel_start(). */
    pt_tunnel_end_t  *end[2];
    pt_block_cache_t *cache;        /* where buffers come from           */
    pt_buf_t          buf[2];       /* buf[i]: read from end[i], for the
                                       other; a block of cache while it
                                       holds bytes (the owner may hand
                                       one over with bytes in it), else
                                       all NULL                          */
    pt_msec_t         idle_timeout;
    void            (*done)(pt_tunnel_t *t, pt_tunnel_why_e why);
    void             *data;

    /* Read-only for the owner. */
    uint64_t          bytes[2];     /* bytes delivered to end[i]         */
    pt_tunnel_end_t  *failed;       /* the end that failed (ERROR), NULL
                                       when a buffer could not be had    */

    /* Internal. */
    pt_msec_t         active;       /* when a byte last moved            */
    pt_event_t        idle;         /* idle_timeout                      */
    pt_event_t        resume;       /* more to do after a turn's budget  */
    pt_queue_t        link;         /* the worker's live tunnels         */
    unsigned          running:1;
    unsigned          finished:1;
};


/* Start moving bytes (end, cache, idle_timeout and done set; buf
 * zeroed or handed over). */
void pt_tunnel_start(pt_tunnel_t *t);

/* An end may have become readable or writable: move what can be moved.
 * May call done (then t must not be used after it returns). */
void pt_tunnel_run(pt_tunnel_t *t);

/* Forget the tunnel without calling done (its owner is going away):
 * timers and posted events are cancelled, buffers go back to the cache. */
void pt_tunnel_stop(pt_tunnel_t *t);

/* End every live tunnel of the process with PT_TUNNEL_STOPPED (a
 * draining worker whose graceful_timeout passed). */
void pt_tunnel_close_all(void);


/* An end over a connection (plain or TLS): recv and send through c->recv
 * and c->send_chain, driven by the connection's ready flags; shutdown
 * sends a FIN on a plain socket and declines on TLS (a close_notify would
 * end the session both ways for many peers). c's handlers stay the
 * owner's. */
void pt_tunnel_conn_end(pt_tunnel_end_t *e, pt_connection_t *c,
    const char *name);

ssize_t pt_tunnel_conn_recv(pt_tunnel_end_t *e, char *buf, size_t size);
ssize_t pt_tunnel_conn_send(pt_tunnel_end_t *e, char *buf, size_t size);
int pt_tunnel_conn_shutdown(pt_tunnel_end_t *e);


#endif /* PT_TUNNEL_H */
