/*
 * pt_resolver.c: DNS lookups on c-ares, driven by the event loop (see
 * pt_resolver.h).
 *
 * c-ares opens its sockets through our socket functions, so each one gets
 * a connection slot and is closed through pt_close_connection(); the
 * SOCK_STATE callback tells which directions c-ares wants. The event loop
 * is edge-triggered and c-ares reads at most one TCP chunk (and, with
 * socket functions, one datagram) per call, so the socket handler polls
 * the fd and calls ares_process_fd() until nothing c-ares wants is ready:
 * level-triggered behaviour on top of edge-triggered epoll.
 *
 * A lookup counts the c-ares callbacks it still waits for (`pending`).
 * When the count reaches zero the result is complete and its delivery is
 * posted; a cancelled lookup is freed there instead. The synchronous
 * variant runs the same lookup on a private channel with poll().
 */

#include <arpa/inet.h>
#include <ares.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/uio.h>

#include "pt_resolver.h"
#include "pt_connection.h"
#include "pt_event.h"
#include "pt_log.h"
#include "pt_queue.h"
#include "pt_time.h"


/* Per try; c-ares doubles it on each round over the servers, so a server
 * that never answers fails a lookup after 1 + 2 + 4 seconds. */
#define PT_RESOLVER_TRY_MSEC     1000
#define PT_RESOLVER_TRIES        3

#define PT_RESOLVER_MAX_SERVERS  (PT_RESOLVER_MAX_SOCKETS / 2)

/* Rounds of ares_process_fd() per socket event before the rest is left to
 * a posted event, so that a flooded socket cannot starve the loop. */
#define PT_RESOLVER_SOCK_ROUNDS  64

#define PT_DNS_HEADER_LEN        12
#define PT_DNS_CLASS_IN          1
#define PT_DNS_TYPE_SRV          33

#define PT_RESOLVER_TTL_NONE     UINT32_MAX


typedef struct {
    pt_resolver_query_t     *query;
    uint16_t                 port;
    uint16_t                 weight;
    uint16_t                 priority;
} pt_resolver_target_t;


struct pt_resolver_query_s {
    pt_resolver_t           *res;       /* NULL: a synchronous lookup     */
    ares_channel             channel;
    pt_resolver_handler_pt   handler;
    void                    *data;

    pt_event_t               done;      /* posted once complete           */
    pt_queue_t               link;      /* in res->queries                */

    pt_uint_t                pending;   /* c-ares callbacks still due     */
    int                      error;     /* first c-ares failure           */
    uint32_t                 ttl;       /* smallest seen, seconds         */

    pt_resolved_t           *addrs;
    size_t                   naddrs;
    size_t                   nalloc;

    pt_resolver_target_t    *targets;   /* &one, or SRV targets (malloc)  */
    pt_resolver_target_t     one;

    unsigned                 srv:1;
    unsigned                 cancelled:1;
    unsigned                 complete:1;
    unsigned                 truncated:1;

    char                     name[PT_RESOLVER_NAME_MAX + 1];
};


typedef struct {
    pt_resolver_t           *res;
    pt_connection_t         *c;         /* NULL: the entry is free        */
    unsigned                 read:1;    /* what c-ares waits for          */
    unsigned                 write:1;
} pt_resolver_sock_t;


struct pt_resolver_s {
    ares_channel             channel;
    pt_event_t               timer;     /* c-ares's next timeout          */
    pt_queue_t               queries;
    pt_uint_t                nqueries;
    unsigned                 destroying:1;
    pt_resolver_sock_t       socks[PT_RESOLVER_MAX_SOCKETS];
};


static int pt_resolver_channel(ares_channel *channel,
    const pt_resolver_conf_t *conf, pt_resolver_t *res);
static int pt_resolver_name_ok(const char *name);
static void pt_resolver_start(pt_resolver_query_t *q, uint16_t port);
static int pt_resolver_literal(pt_resolver_query_t *q);
static void pt_resolver_release(pt_resolver_query_t *q);
static void pt_resolver_lookup_target(pt_resolver_target_t *t,
    const char *name);
static void pt_resolver_srv_cb(void *arg, int status, int timeouts,
    unsigned char *abuf, int alen);
static void pt_resolver_srv_follow(pt_resolver_query_t *q,
    const unsigned char *abuf, int alen);
static int pt_resolver_srv_usable(const struct ares_srv_reply *r);
static void pt_resolver_addrinfo_cb(void *arg, int status, int timeouts,
    struct ares_addrinfo *ai);
static void pt_resolver_add_addr(pt_resolver_query_t *q,
    const pt_resolver_target_t *t, const struct sockaddr *sa,
    socklen_t len);
static void pt_resolver_ttl_min(pt_resolver_query_t *q, int64_t ttl);
static uint32_t pt_resolver_answer_ttl(const unsigned char *abuf, int alen);
static const unsigned char *pt_resolver_skip_name(const unsigned char *p,
    const unsigned char *end);
static uint32_t pt_resolver_result_ttl(const pt_resolver_query_t *q);
static void pt_resolver_query_free(pt_resolver_query_t *q);
static void pt_resolver_unlink(pt_resolver_query_t *q);
static void pt_resolver_done_handler(pt_event_t *ev);
static void pt_resolver_timer_arm(pt_resolver_t *res);
static void pt_resolver_timer_handler(pt_event_t *ev);
static void pt_resolver_sock_handler(pt_event_t *ev);
static pt_resolver_sock_t *pt_resolver_sock_find(pt_resolver_t *res,
    ares_socket_t fd);
static void pt_resolver_sock_state(void *data, ares_socket_t fd,
    int readable, int writable);
static ares_socket_t pt_resolver_socket(int domain, int type, int protocol,
    void *data);
static int pt_resolver_close(ares_socket_t fd, void *data);
static int pt_resolver_connect(ares_socket_t fd, const struct sockaddr *sa,
    ares_socklen_t len, void *data);
static ares_ssize_t pt_resolver_recvfrom(ares_socket_t fd, void *buf,
    size_t len, int flags, struct sockaddr *from, ares_socklen_t *fromlen,
    void *data);
static ares_ssize_t pt_resolver_sendv(ares_socket_t fd,
    const struct iovec *iov, int iovcnt, void *data);


static const struct ares_socket_functions  pt_resolver_sock_funcs = {
    pt_resolver_socket,
    pt_resolver_close,
    pt_resolver_connect,
    pt_resolver_recvfrom,
    pt_resolver_sendv
};

/* ares_options.lookups is a char *: DNS only, never /etc/hosts. */
static char  pt_resolver_lookups_dns[] = "b";

static int   pt_resolver_library_ready;


pt_resolver_t *
pt_resolver_create(const pt_resolver_conf_t *conf)
{
    pt_uint_t       i;
    pt_resolver_t  *res;

    res = calloc(1, sizeof(pt_resolver_t));
    if (res == NULL) {
        pt_log_error(PT_LOG_ALERT, NULL, errno, "resolver: out of memory");
        return NULL;
    }

    pt_queue_init(&res->queries);

    res->timer.data = res;
    res->timer.handler = pt_resolver_timer_handler;
    res->timer.cancelable = 1;

    for (i = 0; i < PT_RESOLVER_MAX_SOCKETS; i++) {
        res->socks[i].res = res;
    }

    if (pt_resolver_channel(&res->channel, conf, res) != PT_OK) {
        free(res);
        return NULL;
    }

    return res;
}


void
pt_resolver_destroy(pt_resolver_t *res)
{
    pt_uint_t             i;
    pt_queue_t           *qn;
    pt_resolver_query_t  *q;

    if (res == NULL) {
        return;
    }

    /* From here the c-ares callbacks only count down: nothing is posted,
     * followed or freed until ares_destroy() has returned. */
    res->destroying = 1;

    for (qn = pt_queue_head(&res->queries);
         qn != pt_queue_sentinel(&res->queries);
         qn = pt_queue_next(qn))
    {
        q = pt_queue_data(qn, pt_resolver_query_t, link);
        q->cancelled = 1;
        pt_delete_posted_event(&q->done);
    }

    pt_timer_del(&res->timer);

    ares_destroy(res->channel);

    while (!pt_queue_empty(&res->queries)) {
        qn = pt_queue_head(&res->queries);
        q = pt_queue_data(qn, pt_resolver_query_t, link);
        pt_resolver_unlink(q);
        pt_resolver_query_free(q);
    }

    /* c-ares closed its sockets in ares_destroy(); this is a safety net. */
    for (i = 0; i < PT_RESOLVER_MAX_SOCKETS; i++) {
        if (res->socks[i].c != NULL) {
            pt_close_connection(res->socks[i].c);
            res->socks[i].c = NULL;
        }
    }

    free(res);
}


pt_resolver_query_t *
pt_resolver_resolve(pt_resolver_t *res, const char *name, uint16_t port,
    int srv, pt_resolver_handler_pt handler, void *data)
{
    pt_resolver_query_t  *q;

    if (res == NULL || handler == NULL || res->destroying
        || !pt_resolver_name_ok(name))
    {
        return NULL;
    }

    if (res->nqueries >= PT_RESOLVER_MAX_QUERIES) {
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "resolver: %d lookups in flight, \"%s\" refused",
                     PT_RESOLVER_MAX_QUERIES, name);
        return NULL;
    }

    q = calloc(1, sizeof(pt_resolver_query_t));
    if (q == NULL) {
        pt_log_error(PT_LOG_ALERT, NULL, errno, "resolver: out of memory");
        return NULL;
    }

    q->res = res;
    q->channel = res->channel;
    q->handler = handler;
    q->data = data;
    q->srv = srv ? 1 : 0;
    q->done.data = q;
    q->done.handler = pt_resolver_done_handler;
    memcpy(q->name, name, strlen(name) + 1);

    pt_queue_insert_tail(&res->queries, &q->link);
    res->nqueries++;

    /* c-ares may call back right here (a numeric name, a send that fails
     * at once): the result is posted, so the handler still runs later. */
    pt_resolver_start(q, port);
    pt_resolver_timer_arm(res);

    return q;
}


void
pt_resolver_cancel(pt_resolver_query_t *q)
{
    if (q == NULL || q->cancelled) {
        return;
    }

    q->cancelled = 1;

    if (q->complete) {
        /* Its delivery is waiting in the posted queue. */
        pt_delete_posted_event(&q->done);
        pt_resolver_unlink(q);
        pt_resolver_query_free(q);
    }

    /* Otherwise c-ares still holds pointers to it: the last callback
     * frees it (pt_resolver_release). */
}


int
pt_resolver_resolve_sync(const pt_resolver_conf_t *conf, const char *name,
    uint16_t port, int srv, pt_resolved_t **addrs, size_t *n, uint32_t *ttl,
    pt_msec_t timeout)
{
    int                   i, nfds, rc, bits, ms, status;
    short                 events;
    pt_msec_t             now, deadline, left;
    ares_channel          channel;
    struct pollfd         pfds[ARES_GETSOCK_MAXNUM];
    struct timeval        maxtv, tv, *tvp;
    ares_socket_t         socks[ARES_GETSOCK_MAXNUM], rfd, wfd;
    pt_resolver_query_t  *q;

    *addrs = NULL;
    *n = 0;
    *ttl = 1;

    if (!pt_resolver_name_ok(name)) {
        return PT_ERROR;
    }

    if (pt_resolver_channel(&channel, conf, NULL) != PT_OK) {
        return PT_ERROR;
    }

    q = calloc(1, sizeof(pt_resolver_query_t));
    if (q == NULL) {
        pt_log_error(PT_LOG_ALERT, NULL, errno, "resolver: out of memory");
        ares_destroy(channel);
        return PT_ERROR;
    }

    q->channel = channel;
    q->srv = srv ? 1 : 0;
    memcpy(q->name, name, strlen(name) + 1);

    deadline = pt_monotonic_msec() + timeout;

    pt_resolver_start(q, port);

    while (!q->complete) {
        now = pt_monotonic_msec();
        if (now >= deadline) {
            break;
        }

        /* c-ares's own timeouts are seconds: a minute bounds one wait
         * and keeps the ms in an int. */
        left = pt_min(deadline - now, 60000);
        maxtv.tv_sec = (time_t) (left / 1000);
        maxtv.tv_usec = (suseconds_t) (left % 1000) * 1000;

        tvp = ares_timeout(channel, &maxtv, &tv);
        ms = (int) (tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);

        bits = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
        nfds = 0;

        /* ARES_GETSOCK_WRITABLE() shifts an int into its sign bit for
         * the last socket: read the bits unsigned. */
        for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            events = 0;

            if (((unsigned) bits >> i) & 1) {
                events |= POLLIN;
            }

            if (((unsigned) bits >> (i + ARES_GETSOCK_MAXNUM)) & 1) {
                events |= POLLOUT;
            }

            if (events == 0) {
                continue;
            }

            pfds[nfds].fd = socks[i];
            pfds[nfds].events = events;
            pfds[nfds].revents = 0;
            nfds++;
        }

        rc = poll(pfds, (nfds_t) nfds, ms);

        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }

            pt_log_error(PT_LOG_ALERT, NULL, errno, "resolver: poll() failed");
            break;
        }

        if (rc == 0) {
            ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            continue;
        }

        for (i = 0; i < nfds && !q->complete; i++) {
            rfd = ARES_SOCKET_BAD;
            wfd = ARES_SOCKET_BAD;

            if ((pfds[i].events & POLLIN)
                && (pfds[i].revents & (POLLIN | POLLERR | POLLHUP)))
            {
                rfd = pfds[i].fd;
            }

            if ((pfds[i].events & POLLOUT)
                && (pfds[i].revents & (POLLOUT | POLLERR | POLLHUP)))
            {
                wfd = pfds[i].fd;
            }

            if (rfd != ARES_SOCKET_BAD || wfd != ARES_SOCKET_BAD) {
                ares_process_fd(channel, rfd, wfd);
            }
        }
    }

    status = PT_ERROR;

    if (q->complete && q->naddrs > 0) {
        *addrs = q->addrs;
        *n = q->naddrs;
        *ttl = pt_resolver_result_ttl(q);
        q->addrs = NULL;
        status = PT_OK;

    } else if (q->complete) {
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "resolver: \"%s\" could not be resolved (%s)", q->name,
                     ares_strerror(q->error ? q->error : ARES_ENODATA));

    } else {
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "resolver: \"%s\" could not be resolved (timed out after %lums)",
                     q->name, (unsigned long) timeout);
    }

    /* Callbacks that ares_destroy() still makes only count down. */
    q->cancelled = 1;
    ares_destroy(channel);
    pt_resolver_query_free(q);

    return status;
}


static int
pt_resolver_channel(ares_channel *channel, const pt_resolver_conf_t *conf,
    pt_resolver_t *res)
{
    int                   rc, mask;
    char                  csv[PT_RESOLVER_MAX_SERVERS * 64], *p;
    size_t                len;
    pt_uint_t             i;
    pt_addr_t            *addr;
    struct ares_options   opts;

    if (!pt_resolver_library_ready) {
        rc = ares_library_init(ARES_LIB_INIT_ALL);
        if (rc != ARES_SUCCESS) {
            pt_log_error(PT_LOG_ALERT, NULL, 0,
                         "resolver: ares_library_init() failed: %s",
                         ares_strerror(rc));
            return PT_ERROR;
        }
        pt_resolver_library_ready = 1;
    }

    memset(&opts, 0, sizeof(opts));

    opts.timeout = PT_RESOLVER_TRY_MSEC;
    opts.tries = PT_RESOLVER_TRIES;
    mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;

    if (res != NULL) {
        opts.sock_state_cb = pt_resolver_sock_state;
        opts.sock_state_cb_data = res;
        mask |= ARES_OPT_SOCK_STATE_CB;
    }

    csv[0] = '\0';
    p = csv;

    if (conf != NULL && conf->servers.nelts > 0) {
        if (conf->servers.nelts > PT_RESOLVER_MAX_SERVERS) {
            pt_log_error(PT_LOG_ERR, NULL, 0,
                         "resolver: at most %d servers",
                         PT_RESOLVER_MAX_SERVERS);
            return PT_ERROR;
        }

        addr = conf->servers.elts;

        for (i = 0; i < conf->servers.nelts; i++) {
            if (addr[i].is_name || addr[i].socklen == 0) {
                pt_log_error(PT_LOG_ERR, NULL, 0,
                             "resolver: server \"%s\" is not an IP address",
                             addr[i].text);
                return PT_ERROR;
            }

            if (i > 0) {
                *p++ = ',';
            }

            /* At most "[v6]:port" (54 bytes) per server in 64. */
            len = pt_sock_ntop((struct sockaddr *) &addr[i].sa, p, 63, 1);
            p += len;
        }

        *p = '\0';

        /* The servers are named: names are looked up as written. */
        opts.ndomains = 0;
        opts.domains = NULL;
        opts.lookups = pt_resolver_lookups_dns;
        mask |= ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS;
    }

    rc = ares_init_options(channel, &opts, mask);
    if (rc != ARES_SUCCESS) {
        pt_log_error(PT_LOG_ERR, NULL, 0,
                     "resolver: ares_init_options() failed: %s",
                     ares_strerror(rc));
        return PT_ERROR;
    }

    if (res != NULL) {
        ares_set_socket_functions(*channel, &pt_resolver_sock_funcs, res);
    }

    if (csv[0] != '\0') {
        rc = ares_set_servers_ports_csv(*channel, csv);
        if (rc != ARES_SUCCESS) {
            pt_log_error(PT_LOG_ERR, NULL, 0,
                         "resolver: servers \"%s\" refused: %s", csv,
                         ares_strerror(rc));
            ares_destroy(*channel);
            return PT_ERROR;
        }
    }

    return PT_OK;
}


static int
pt_resolver_name_ok(const char *name)
{
    size_t  len;

    if (name == NULL) {
        return 0;
    }

    len = strnlen(name, PT_RESOLVER_NAME_MAX + 1);

    return len > 0 && len <= PT_RESOLVER_NAME_MAX;
}


static void
pt_resolver_start(pt_resolver_query_t *q, uint16_t port)
{
    q->ttl = PT_RESOLVER_TTL_NONE;

    /* Held while starting, so that a callback made at once cannot see
     * the count reach zero before every lookup has been started. */
    q->pending = 1;

    if (q->srv) {
        q->pending++;
        ares_query(q->channel, q->name, PT_DNS_CLASS_IN, PT_DNS_TYPE_SRV,
                   pt_resolver_srv_cb, q);

    } else {
        q->one.query = q;
        q->one.port = port;
        q->one.weight = 1;
        q->one.priority = 0;
        q->targets = &q->one;

        if (!pt_resolver_literal(q)) {
            pt_resolver_lookup_target(&q->one, q->name);
        }
    }

    pt_resolver_release(q);
}


/* c-ares 1.18 sends an IP address written as a name to the servers
 * before it gives up and parses it: answer it here, without a query. */
static int
pt_resolver_literal(pt_resolver_query_t *q)
{
    struct sockaddr_in   sin;
    struct sockaddr_in6  sin6;

    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));

    if (inet_pton(AF_INET, q->name, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        pt_resolver_add_addr(q, &q->one, (struct sockaddr *) &sin,
                             sizeof(sin));

    } else if (inet_pton(AF_INET6, q->name, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        pt_resolver_add_addr(q, &q->one, (struct sockaddr *) &sin6,
                             sizeof(sin6));

    } else {
        return 0;
    }

    q->ttl = PT_RESOLVER_TTL_LITERAL;

    return 1;
}


static void
pt_resolver_release(pt_resolver_query_t *q)
{
    pt_resolver_t  *res;

    if (q->pending == 0) {
        /* c-ares called back twice: nothing left to count. */
        pt_log_error(PT_LOG_ALERT, NULL, 0,
                     "resolver: unexpected callback for \"%s\"", q->name);
        return;
    }

    if (--q->pending > 0) {
        return;
    }

    q->complete = 1;
    res = q->res;

    if (res == NULL || res->destroying) {
        return;     /* the synchronous loop, or destroy, takes it from here */
    }

    if (q->cancelled) {
        pt_resolver_unlink(q);
        pt_resolver_query_free(q);
        return;
    }

    pt_post_event(&q->done);
}


static void
pt_resolver_lookup_target(pt_resolver_target_t *t, const char *name)
{
    struct ares_addrinfo_hints  hints;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    /* Every address becomes a target: RFC 6724 ordering (which opens a
     * socket per address to find the source) would buy nothing. */
    hints.ai_flags = ARES_AI_NOSORT;

    t->query->pending++;
    ares_getaddrinfo(t->query->channel, name, NULL, &hints,
                     pt_resolver_addrinfo_cb, t);
}


static void
pt_resolver_srv_cb(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
    pt_resolver_query_t  *q;

    q = arg;

    if (status != ARES_SUCCESS) {
        if (q->error == 0) {
            q->error = status;
        }

    } else if (!q->cancelled && !(q->res != NULL && q->res->destroying)) {
        pt_resolver_srv_follow(q, abuf, alen);
    }

    pt_resolver_release(q);
}


static void
pt_resolver_srv_follow(pt_resolver_query_t *q, const unsigned char *abuf,
    int alen)
{
    int                     rc, found;
    char                    target[PT_RESOLVER_NAME_MAX + 2];
    size_t                  n, i, len;
    uint16_t                lowest;
    pt_resolver_target_t   *t;
    struct ares_srv_reply  *srv, *r;

    rc = ares_parse_srv_reply(abuf, alen, &srv);
    if (rc != ARES_SUCCESS) {
        q->error = rc;
        return;
    }

    /* ares_parse_srv_reply() drops the TTLs: read them from the answer. */
    pt_resolver_ttl_min(q, pt_resolver_answer_ttl(abuf, alen));

    lowest = 0;
    found = 0;
    n = 0;

    for (r = srv; r != NULL; r = r->next) {
        if (!pt_resolver_srv_usable(r)) {
            continue;
        }

        if (!found || r->priority < lowest) {
            lowest = r->priority;
            found = 1;
        }
    }

    for (r = srv; r != NULL && found; r = r->next) {
        if (pt_resolver_srv_usable(r) && r->priority == lowest) {
            n++;
        }
    }

    if (n == 0) {
        q->error = ARES_ENODATA;
        goto done;
    }

    if (n > PT_RESOLVER_MAX_TARGETS) {
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "resolver: \"%s\" has %lu SRV targets, only the first %d are used",
                     q->name, (unsigned long) n,
                     PT_RESOLVER_MAX_TARGETS);
        n = PT_RESOLVER_MAX_TARGETS;
    }

    q->targets = calloc(n, sizeof(pt_resolver_target_t));
    if (q->targets == NULL) {
        q->error = ARES_ENOMEM;
        goto done;
    }

    i = 0;

    for (r = srv; r != NULL && i < n; r = r->next) {
        if (!pt_resolver_srv_usable(r) || r->priority != lowest) {
            continue;
        }

        len = strlen(r->host);
        if (len > PT_RESOLVER_NAME_MAX - 1) {
            continue;
        }

        t = &q->targets[i++];
        t->query = q;
        t->port = r->port;
        t->weight = r->weight ? r->weight : 1;
        t->priority = r->priority;

        /* Targets are absolute names: the final dot keeps search domains
         * from being tried on them. */
        memcpy(target, r->host, len);
        if (target[len - 1] != '.') {
            target[len++] = '.';
        }
        target[len] = '\0';

        pt_resolver_lookup_target(t, target);
    }

done:

    ares_free_data(srv);
}


/* The target "." means "no such service here" (RFC 2782). */
static int
pt_resolver_srv_usable(const struct ares_srv_reply *r)
{
    return r->host != NULL && r->host[0] != '\0' && strcmp(r->host, ".") != 0;
}


static void
pt_resolver_addrinfo_cb(void *arg, int status, int timeouts,
    struct ares_addrinfo *ai)
{
    pt_resolver_query_t         *q;
    pt_resolver_target_t        *t;
    struct ares_addrinfo_node   *node;
    struct ares_addrinfo_cname  *cname;

    t = arg;
    q = t->query;

    if (status != ARES_SUCCESS) {
        if (q->error == 0) {
            q->error = status;
        }

    } else if (ai != NULL && !q->cancelled) {
        for (cname = ai->cnames; cname != NULL; cname = cname->next) {
            pt_resolver_ttl_min(q, cname->ttl);
        }

        for (node = ai->nodes; node != NULL; node = node->ai_next) {
            if (node->ai_addr == NULL) {
                continue;
            }

            pt_resolver_ttl_min(q, node->ai_ttl);
            pt_resolver_add_addr(q, t, node->ai_addr, node->ai_addrlen);
        }
    }

    if (ai != NULL) {
        ares_freeaddrinfo(ai);
    }

    pt_resolver_release(q);
}


static void
pt_resolver_add_addr(pt_resolver_query_t *q, const pt_resolver_target_t *t,
    const struct sockaddr *sa, socklen_t len)
{
    size_t                  i, n;
    pt_resolved_t          *a, *addrs;
    struct sockaddr_in     *sin;
    struct sockaddr_in6    *sin6;

    if (!((sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
          || (sa->sa_family == AF_INET6
              && len >= sizeof(struct sockaddr_in6))))
    {
        return;
    }

    len = (sa->sa_family == AF_INET) ? sizeof(struct sockaddr_in)
                                     : sizeof(struct sockaddr_in6);

    if (q->naddrs == q->nalloc) {
        if (q->nalloc == PT_RESOLVER_MAX_ADDRS) {
            if (!q->truncated) {
                q->truncated = 1;
                pt_log_error(PT_LOG_WARN, NULL, 0,
                             "resolver: \"%s\" has more than %d addresses, the rest are dropped",
                             q->name,
                             PT_RESOLVER_MAX_ADDRS);
            }
            return;
        }

        n = q->nalloc ? pt_min(q->nalloc * 2, PT_RESOLVER_MAX_ADDRS) : 4;

        addrs = realloc(q->addrs, n * sizeof(pt_resolved_t));
        if (addrs == NULL) {
            pt_log_error(PT_LOG_ALERT, NULL, errno,
                         "resolver: out of memory");
            return;
        }

        q->addrs = addrs;
        q->nalloc = n;
    }

    a = &q->addrs[q->naddrs];
    memset(a, 0, sizeof(pt_resolved_t));
    memcpy(&a->sa, sa, len);
    a->socklen = len;

    if (sa->sa_family == AF_INET) {
        sin = (struct sockaddr_in *) &a->sa;
        sin->sin_port = htons(t->port);

    } else {
        sin6 = (struct sockaddr_in6 *) &a->sa;
        sin6->sin6_port = htons(t->port);
        sin6->sin6_flowinfo = 0;
    }

    /* The same address and port twice (two SRV records, a repeated
     * record) would count twice in the balancer: keep the first. */
    for (i = 0; i < q->naddrs; i++) {
        if (q->addrs[i].socklen == len
            && memcmp(&q->addrs[i].sa, &a->sa, len) == 0)
        {
            return;
        }
    }

    a->weight = t->weight;
    a->priority = t->priority;
    pt_sock_ntop((struct sockaddr *) &a->sa, a->text, sizeof(a->text), 1);

    q->naddrs++;
}


static void
pt_resolver_ttl_min(pt_resolver_query_t *q, int64_t ttl)
{
    uint32_t  t;

    /* RFC 2181 8: a TTL with the top bit set means zero. */
    t = (ttl < 0 || ttl > INT32_MAX) ? 0 : (uint32_t) ttl;

    if (t < q->ttl) {
        q->ttl = t;
    }
}


/* The smallest TTL of the answer section, or PT_RESOLVER_TTL_NONE.
 * Only TTLs are read here; c-ares has parsed and checked the records. */
static uint32_t
pt_resolver_answer_ttl(const unsigned char *abuf, int alen)
{
    uint32_t              ttl, min;
    unsigned              qdcount, ancount, i;
    size_t                rdlen;
    const unsigned char  *p, *end;

    min = PT_RESOLVER_TTL_NONE;

    if (abuf == NULL || alen < PT_DNS_HEADER_LEN) {
        return min;
    }

    end = abuf + alen;
    qdcount = (unsigned) abuf[4] << 8 | abuf[5];
    ancount = (unsigned) abuf[6] << 8 | abuf[7];
    p = abuf + PT_DNS_HEADER_LEN;

    for (i = 0; i < qdcount; i++) {
        p = pt_resolver_skip_name(p, end);
        if (p == NULL || end - p < 4) {
            return min;
        }
        p += 4;                                 /* type, class */
    }

    for (i = 0; i < ancount; i++) {
        p = pt_resolver_skip_name(p, end);
        if (p == NULL || end - p < 10) {
            return min;
        }

        ttl = (uint32_t) p[4] << 24 | (uint32_t) p[5] << 16
              | (uint32_t) p[6] << 8 | p[7];
        rdlen = (size_t) p[8] << 8 | p[9];
        p += 10;

        if ((size_t) (end - p) < rdlen) {
            return min;
        }
        p += rdlen;

        if (ttl > INT32_MAX) {
            ttl = 0;
        }

        if (ttl < min) {
            min = ttl;
        }
    }

    return min;
}


static const unsigned char *
pt_resolver_skip_name(const unsigned char *p, const unsigned char *end)
{
    size_t  len;

    while (p < end) {
        len = *p;

        if ((len & 0xc0) == 0xc0) {             /* compression pointer */
            return (end - p >= 2) ? p + 2 : NULL;
        }

        if (len & 0xc0) {
            return NULL;                        /* reserved label types */
        }

        p++;

        if (len == 0) {
            return p;
        }

        if ((size_t) (end - p) < len) {
            return NULL;
        }

        p += len;
    }

    return NULL;
}


static uint32_t
pt_resolver_result_ttl(const pt_resolver_query_t *q)
{
    if (q->naddrs == 0 || q->ttl == PT_RESOLVER_TTL_NONE || q->ttl == 0) {
        return 1;
    }

    return q->ttl;
}


static void
pt_resolver_query_free(pt_resolver_query_t *q)
{
    free(q->addrs);

    if (q->targets != &q->one) {
        free(q->targets);
    }

    free(q);
}


static void
pt_resolver_unlink(pt_resolver_query_t *q)
{
    pt_queue_remove(&q->link);
    q->res->nqueries--;
}


static void
pt_resolver_done_handler(pt_event_t *ev)
{
    void                    *data;
    pt_resolver_query_t     *q;
    pt_resolver_handler_pt   handler;

    q = ev->data;
    handler = q->handler;
    data = q->data;

    /* Unlinked first: the handler may destroy the resolver. Marked
     * cancelled, so that cancelling this handle from its own handler is
     * harmless. */
    pt_resolver_unlink(q);
    q->cancelled = 1;

    if (q->naddrs > 0) {
        handler(data, PT_OK, q->addrs, q->naddrs, pt_resolver_result_ttl(q));

    } else {
        pt_log_error(PT_LOG_WARN, NULL, 0,
                     "resolver: \"%s\" could not be resolved (%s)", q->name,
                     ares_strerror(q->error ? q->error : ARES_ENODATA));
        handler(data, PT_ERROR, NULL, 0, 1);
    }

    pt_resolver_query_free(q);
}


static void
pt_resolver_timer_arm(pt_resolver_t *res)
{
    pt_msec_t        ms;
    struct timeval   tv, *tvp;

    tvp = ares_timeout(res->channel, NULL, &tv);

    if (tvp == NULL) {
        pt_timer_del(&res->timer);
        return;
    }

    ms = (pt_msec_t) tvp->tv_sec * 1000 + (pt_msec_t) (tvp->tv_usec + 999)
         / 1000;

    /* At least 1 ms, or a timeout c-ares rounds down would spin. */
    pt_timer_add(&res->timer, ms ? ms : 1);
}


static void
pt_resolver_timer_handler(pt_event_t *ev)
{
    pt_resolver_t  *res;

    res = ev->data;

    ares_process_fd(res->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    pt_resolver_timer_arm(res);
}


static void
pt_resolver_sock_handler(pt_event_t *ev)
{
    int                  fd, n, rounds;
    uint64_t             number;
    struct pollfd        pfd;
    pt_resolver_t       *res;
    ares_socket_t        rfd, wfd;
    pt_connection_t     *c;
    pt_resolver_sock_t  *s;

    c = ev->data;
    s = c->data;
    res = s->res;
    fd = c->fd;
    number = c->number;

    for (rounds = 0; rounds < PT_RESOLVER_SOCK_ROUNDS; rounds++) {

        /* c-ares may have closed the socket, and the slot may even hold
         * a new one: the serial number tells. */
        if (s->c != c || c->fd != fd || c->number != number) {
            break;
        }

        pfd.fd = fd;
        pfd.events = (s->read ? POLLIN : 0) | (s->write ? POLLOUT : 0);
        pfd.revents = 0;

        if (pfd.events == 0) {
            break;
        }

        n = poll(&pfd, 1, 0);

        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            break;
        }

        rfd = (s->read && (pfd.revents & (POLLIN | POLLERR | POLLHUP)))
              ? fd : ARES_SOCKET_BAD;
        wfd = (s->write && (pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
              ? fd : ARES_SOCKET_BAD;

        if (rfd == ARES_SOCKET_BAD && wfd == ARES_SOCKET_BAD) {
            break;
        }

        ares_process_fd(res->channel, rfd, wfd);
    }

    if (rounds == PT_RESOLVER_SOCK_ROUNDS && s->c == c && c->fd == fd
        && c->number == number)
    {
        pt_post_event(ev);
    }

    pt_resolver_timer_arm(res);
}


static pt_resolver_sock_t *
pt_resolver_sock_find(pt_resolver_t *res, ares_socket_t fd)
{
    pt_uint_t  i;

    for (i = 0; i < PT_RESOLVER_MAX_SOCKETS; i++) {
        if (res->socks[i].c != NULL && res->socks[i].c->fd == fd) {
            return &res->socks[i];
        }
    }

    return NULL;
}


static void
pt_resolver_sock_state(void *data, ares_socket_t fd, int readable,
    int writable)
{
    unsigned             was_writing;
    pt_resolver_sock_t  *s;

    s = pt_resolver_sock_find(data, fd);
    if (s == NULL) {
        return;
    }

    was_writing = s->write;
    s->read = readable ? 1 : 0;
    s->write = writable ? 1 : 0;

    /* Edge-triggered epoll reports writability only on a change: a TCP
     * socket that is already connected would never say so again. */
    if (s->write && !was_writing) {
        pt_post_event(s->c->write);
    }
}


static ares_socket_t
pt_resolver_socket(int domain, int type, int protocol, void *data)
{
    int                  fd, on;
    pt_uint_t            i;
    pt_resolver_t       *res;
    pt_connection_t     *c;
    pt_resolver_sock_t  *s;

    res = data;
    s = NULL;

    for (i = 0; i < PT_RESOLVER_MAX_SOCKETS; i++) {
        if (res->socks[i].c == NULL) {
            s = &res->socks[i];
            break;
        }
    }

    if (s == NULL) {
        pt_log_error(PT_LOG_ALERT, NULL, 0,
                     "resolver: more than %d sockets",
                     PT_RESOLVER_MAX_SOCKETS);
        errno = EMFILE;
        return ARES_SOCKET_BAD;
    }

    /* With socket functions set, c-ares configures nothing itself. */
    fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd < 0) {
        pt_log_error(PT_LOG_ALERT, NULL, errno, "resolver: socket() failed");
        return ARES_SOCKET_BAD;
    }

    if (type == SOCK_STREAM) {
        on = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    }

    c = pt_get_connection(fd);
    if (c == NULL) {
        close(fd);
        errno = ENFILE;
        return ARES_SOCKET_BAD;
    }

    c->data = s;
    c->read->handler = pt_resolver_sock_handler;
    c->write->handler = pt_resolver_sock_handler;

    if (pt_event_add_conn(c) != PT_OK) {
        pt_close_connection(c);
        errno = EIO;
        return ARES_SOCKET_BAD;
    }

    s->c = c;
    s->read = 0;
    s->write = 0;

    return fd;
}


static int
pt_resolver_close(ares_socket_t fd, void *data)
{
    pt_connection_t     *c;
    pt_resolver_sock_t  *s;

    s = pt_resolver_sock_find(data, fd);

    if (s == NULL) {
        return close(fd);
    }

    c = s->c;
    s->c = NULL;
    s->read = 0;
    s->write = 0;

    pt_close_connection(c);

    return 0;
}


static int
pt_resolver_connect(ares_socket_t fd, const struct sockaddr *sa,
    ares_socklen_t len, void *data)
{
    return connect(fd, sa, len);
}


static ares_ssize_t
pt_resolver_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags,
    struct sockaddr *from, ares_socklen_t *fromlen, void *data)
{
    return recvfrom(fd, buf, len, flags, from, fromlen);
}


static ares_ssize_t
pt_resolver_sendv(ares_socket_t fd, const struct iovec *iov, int iovcnt,
    void *data)
{
    struct msghdr  msg;

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = (struct iovec *) iov;
    msg.msg_iovlen = (size_t) iovcnt;

    /* A TCP server that went away must not SIGPIPE the worker. */
    return sendmsg(fd, &msg, MSG_NOSIGNAL);
}
