/*
 * pt_connection.h: connections, listeners and socket I/O.
 *
 * A worker preallocates its connection structures (and their two events)
 * once, so accepting never allocates for the structure itself and a stale
 * epoll event for a reused slot is recognised by its instance bit. The I/O
 * goes through c->recv and c->send_chain so that TLS can slot in later
 * without the HTTP code knowing.
 */

#ifndef PT_CONNECTION_H
#define PT_CONNECTION_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "pt_core.h"
#include "pt_buf.h"
#include "pt_event.h"
#include "pt_queue.h"
#include "pt_conf_value.h"


typedef struct pt_listening_s  pt_listening_t;

typedef void (*pt_connection_handler_pt)(pt_connection_t *c);


struct pt_listening_s {
    int                        fd;
    pt_addr_t                  addr;
    int                        backlog;
    pt_connection_handler_pt   handler;   /* set on accept                  */
    void                      *conf;      /* the listener's protocol config */
    pt_connection_t           *connection;/* its event slot, in a worker    */
    int                        defer_accept;  /* TCP_DEFER_ACCEPT seconds:
                                             accept once the client spoke
                                             (0: at once)                   */
    unsigned                   reused:1;  /* fd taken over from the previous
                                             generation                     */
    unsigned                   admin:1;   /* operator endpoints only        */
};


struct pt_connection_s {
    void               *data;       /* the protocol state that owns it   */
    pt_event_t         *read;
    pt_event_t         *write;
    int                 fd;

    pt_pool_t          *pool;       /* lives as long as the connection   */
    pt_listening_t     *listening;  /* NULL for upstream connections     */

    struct sockaddr_storage  sockaddr;
    socklen_t           socklen;
    pt_str_t            addr_text;  /* peer address without port         */
    char                addr_buf[64];

    pt_buf_t           *buffer;     /* read buffer (protocol decides)    */

    pt_queue_t          queue;      /* the owner's list (an upstream
                                       peer's keep-alive pool)            */
    pt_queue_t          reuse;      /* the reusable list, while reusable  */
    uint64_t            number;     /* serial, for logs                  */
    uint64_t            requests;
    uint64_t            sent;       /* bytes written                     */

    void               *ssl;        /* TLS state (pt_ssl.c), NULL when
                                       cleartext; freed on close          */

    ssize_t           (*recv)(pt_connection_t *c, char *buf, size_t size);
    pt_chain_t       *(*send_chain)(pt_connection_t *c, pt_chain_t *in,
                                    size_t limit);

    unsigned            reusable:1; /* idle: may be closed to free a slot */
    unsigned            close:1;    /* close as soon as it is idle        */
    unsigned            destroyed:1;
    unsigned            timedout:1;
    unsigned            error:1;
    unsigned            client:1;   /* counted against max_connections    */
    unsigned            idle:1;     /* between requests, counted as idle   */
};


/* Prepare n connection slots for this process. */
int pt_connections_init(pt_uint_t n);

/* A free slot for fd, or NULL (logged) when none is left. */
pt_connection_t *pt_get_connection(int fd);

/* Close the socket, cancel its timers and posted events, free the slot.
 * The pool is the owner's to destroy. */
void pt_close_connection(pt_connection_t *c);

/* Mark a connection idle-and-closable (a client between requests, an
 * upstream connection in a keep-alive pool): when slots run out, or when
 * the process drains, such connections are closed, oldest first, through
 * their read handler with c->close set. max 0 closes them all. */
void pt_reusable_connection(pt_connection_t *c, int reusable);
void pt_close_idle_connections(pt_uint_t max);

#define PT_REUSE_BATCH  1024

/* Plain socket I/O: recv returns bytes, 0 at EOF, PT_AGAIN or PT_ERROR and
 * keeps read->ready/eof/error up to date. send_chain writes up to limit
 * bytes (0 = no limit) and returns the first unsent link, NULL when all
 * went, or (pt_chain_t *) PT_ERROR. */
ssize_t pt_unix_recv(pt_connection_t *c, char *buf, size_t size);
pt_chain_t *pt_unix_send_chain(pt_connection_t *c, pt_chain_t *in,
    size_t limit);

/* Format a socket address ("1.2.3.4", "::1"), with ":port" if port. */
size_t pt_sock_ntop(const struct sockaddr *sa, char *text, size_t len,
    int port);


/* Listening sockets (pt_listen.c). */
/* Errors are logged at `level`: fatal at start, not on a reload. */
int pt_open_listening_socket(pt_listening_t *ls, int level);
/* Options that follow the config, set on new and inherited sockets. */
void pt_listening_options(pt_listening_t *ls);
void pt_close_listening_socket(pt_listening_t *ls);
/* In a worker: take event slots for the cycle's listeners and start (or
 * stop) accepting on them. */
int pt_listening_attach(pt_listening_t *ls, pt_uint_t n);
void pt_accept_enable(void);
void pt_accept_disable(void);
void pt_accept_close(void);   /* draining: never accept again */
void pt_event_accept(pt_event_t *ev);


/* Per-process counters, shown by /status. */
extern pt_uint_t  pt_connections_active;   /* client connections open     */
extern pt_uint_t  pt_connections_idle;     /* of those, between requests  */
extern pt_uint_t  pt_connections_max;      /* limits.max_connections      */

/* The process drains (QUIT, or an old generation after a reload): no new
 * connections, no keep-alive, idle connections closed. */
extern unsigned   pt_exiting;


#endif /* PT_CONNECTION_H */
