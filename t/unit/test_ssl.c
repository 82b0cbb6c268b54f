/*
 * test_ssl.c: client-side TLS on real connections and the event loop.
 *
 * A throwaway CA and a certificate for localhost and 127.0.0.1 are made
 * with the openssl command; forked children run plain blocking OpenSSL
 * servers; the parent drives pt_ssl through pt_connection_t, epoll and
 * the handlers, as a worker would.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "pt_core.h"
#include "pt_array.h"
#include "pt_buf.h"
#include "pt_conf.h"
#include "pt_connection.h"
#include "pt_event.h"
#include "pt_palloc.h"
#include "pt_ssl.h"

#include "tap.h"


#define TOTAL        (1024 * 1024)
#define NPIECES      256
#define SEND_LIMIT   50000


/* One exchange on one connection, kept in c->data. */
typedef struct {
    pt_connection_t   *c;
    int                hs_rc;        /* handshake result, PT_AGAIN until  */

    pt_chain_t        *out;          /* what is left to send              */
    size_t             limit;
    int                send_errors;
    int                send_agains;  /* returns that had to wait          */
    int                moved;        /* buffers relocated before a retry  */
    int                over_limit;
    int                writes;       /* calls of the owner's write handler*/
    long               iter;         /* event loop iterations run_job ran */
    long               read_iter;    /* the iteration of the first read   */
    long               write_iter;   /* and of the first write, by the
                                        loop                              */

    size_t             expect;       /* echo mode: bytes to check         */
    size_t             received;
    int                mismatch;
    int                eof;
    int                recv_error;

    char               line[256];    /* line mode: the reply              */
    size_t             line_len;
    int                line_mode;
} job_t;


static char        dir[] = "/tmp/pt-ssl-XXXXXX";
static char        path_ca[256], path_other[256], path_cert[256],
                   path_key[256], path_bad[256];
static pid_t       kids[8];
static int         nkids;


static unsigned char
pattern(size_t i)
{
    return (unsigned char) (i * 7 + i / 251);
}


static long
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static int
sh(const char *fmt, ...)
{
    char     cmd[2048];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, args);
    va_end(args);

    return system(cmd) == 0 ? 0 : -1;
}


/* Copies a file of the test directory to the TAP stream as comments. */
static void
show_file(const char *name)
{
    char   path[512], line[512];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    f = fopen(path, "r");
    if (f == NULL) {
        printf("# (no %s)\n", path);
        return;
    }

    while (fgets(line, sizeof(line), f)) {
        printf("# %s%s", line, strchr(line, '\n') ? "" : "\n");
    }

    fclose(f);
}


static int
make_certs(void)
{
    const char  *ec, *ca_ext;

    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    ca_ext = "-addext basicConstraints=critical,CA:TRUE "
             "-addext keyUsage=critical,keyCertSign,cRLSign";

    snprintf(path_ca, sizeof(path_ca), "%s/ca.pem", dir);
    snprintf(path_other, sizeof(path_other), "%s/other-ca.pem", dir);
    snprintf(path_cert, sizeof(path_cert), "%s/server.pem", dir);
    snprintf(path_key, sizeof(path_key), "%s/server.key", dir);
    snprintf(path_bad, sizeof(path_bad), "%s/not-pem.txt", dir);

    if (sh("cd %s && exec >openssl.log 2>&1"
           " && openssl req -x509 %s -keyout ca.key -out ca.pem -days 2"
           " -subj '/CN=pt test CA' %s"
           " && openssl req -x509 %s -keyout other-ca.key -out other-ca.pem"
           " -days 2 -subj '/CN=pt other CA' %s"
           " && openssl req %s -keyout server.key -out server.csr"
           " -subj /CN=localhost"
           " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n"
           "basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n'"
           " > ext.cnf"
           " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key"
           " -set_serial 2 -days 2 -out server.pem -extfile ext.cnf"
           " && echo 'not a certificate' > not-pem.txt",
           dir, ec, ca_ext, ec, ca_ext, ec) != 0)
    {
        return -1;
    }

    return 0;
}


static int
listen_on(int backlog, int *port)
{
    int                 fd, on;
    socklen_t           len;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sin);

    if (bind(fd, (struct sockaddr *) &sin, len) < 0
        || listen(fd, backlog) < 0
        || getsockname(fd, (struct sockaddr *) &sin, &len) < 0)
    {
        close(fd);
        return -1;
    }

    *port = ntohs(sin.sin_port);

    return fd;
}


/* ---- the servers (children, plain blocking OpenSSL) -------------------- */


static void
serve_one(SSL *ssl, int greet)
{
    int          n;
    char         buf[4096], info[256];
    const char  *sni;

    if (greet) {
        (void) SSL_write(ssl, "hello\n", 6);
    }

    for ( ;; ) {
        n = SSL_read(ssl, buf, sizeof(buf));
        if (n <= 0) {
            return;
        }

        if (n == 5 && memcmp(buf, "INFO?", 5) == 0) {
            sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
            n = snprintf(info, sizeof(info), "sni=%s reused=%d %s\n",
                         sni ? sni : "-", SSL_session_reused(ssl),
                         SSL_get_version(ssl));
            (void) SSL_write(ssl, info, n);

        } else if (n == 5 && memcmp(buf, "QUIT!", 5) == 0) {
            (void) SSL_shutdown(ssl);
            return;

        } else if (n == 5 && memcmp(buf, "DROP!", 5) == 0) {
            return;         /* closed without close_notify */

        } else if (SSL_write(ssl, buf, n) != n) {
            return;
        }
    }
}


/* Accepts and serves connections one after the other; with wait_fd, only
 * once a byte arrived there. Ends when killed. */
static void
server_main(int ls, int wait_fd, int greet)
{
    int       fd;
    char      ch;
    SSL      *ssl;
    SSL_CTX  *ctx;

    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL
        || SSL_CTX_use_certificate_chain_file(ctx, path_cert) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, path_key, SSL_FILETYPE_PEM) != 1)
    {
        _exit(2);
    }

    if (wait_fd >= 0 && read(wait_fd, &ch, 1) != 1) {
        _exit(2);
    }

    for ( ;; ) {
        fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            continue;
        }

        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);

        if (SSL_accept(ssl) == 1) {
            serve_one(ssl, greet);
        }

        SSL_free(ssl);
        close(fd);
        ERR_clear_error();
    }
}


/* Answers every connection in cleartext, like a backend without TLS, or
 * with answer NULL ends it at once (a FIN, never a reset: the client's
 * bytes are drained until it closes). */
static void
plain_main(int ls, const char *answer)
{
    int   fd;
    char  buf[1024];

    for ( ;; ) {
        fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            continue;
        }

        if (answer) {
            (void) read(fd, buf, sizeof(buf));
            (void) write(fd, answer, strlen(answer));

        } else {
            shutdown(fd, SHUT_WR);
            while (read(fd, buf, sizeof(buf)) > 0) {
                /* void */
            }
        }

        close(fd);
    }
}


/* Forks a server: kind 0 TLS echo, 1 TLS greeting first, 2 cleartext,
 * 3 closing every connection at once.
 * With go, it accepts nothing until a byte is written there. */
static pid_t
server(int kind, int backlog, int *port, int *go)
{
    int    ls, pfd[2];
    pid_t  pid;

    ls = listen_on(backlog, port);
    pfd[0] = -1;

    if (ls < 0 || nkids == (int) pt_nelems(kids) || (go && pipe(pfd) < 0)) {
        return -1;
    }

    pid = fork();

    if (pid == 0) {
        if (kind >= 2) {
            plain_main(ls, kind == 2 ? "HTTP/1.1 400 Bad Request\r\n\r\n"
                                     : NULL);
        }

        server_main(ls, pfd[0], kind == 1);
        _exit(0);
    }

    close(ls);

    if (pid > 0) {
        kids[nkids++] = pid;
    }

    if (go) {
        close(pfd[0]);
        *go = pfd[1];
    }

    return pid;
}


static void
stop_all(void)
{
    int  i, status;

    for (i = 0; i < nkids; i++) {
        kill(kids[i], SIGKILL);
        (void) waitpid(kids[i], &status, 0);
    }
}


/* ---- the client side ---------------------------------------------------- */


static int
job_done(job_t *job)
{
    if (job->hs_rc == PT_AGAIN) {
        return 0;
    }

    if (job->eof || job->recv_error || job->send_errors) {
        return 1;
    }

    if (job->line_mode) {
        return memchr(job->line, '\n', job->line_len) != NULL;
    }

    return job->received >= job->expect;
}


static void
run_job(job_t *job, long ms)
{
    long  deadline;

    deadline = now_ms() + ms;

    while (!job_done(job) && now_ms() < deadline) {
        job->iter++;
        pt_process_events_and_timers();
    }
}


static pt_connection_t *
tcp_connect(int port, int bufsize)
{
    int                 fd, rc;
    pt_connection_t    *c;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return NULL;
    }

    if (bufsize) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    }

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) port);

    rc = connect(fd, (struct sockaddr *) &sin, sizeof(sin));
    if (rc < 0 && errno != EINPROGRESS) {
        close(fd);
        return NULL;
    }

    c = pt_get_connection(fd);
    if (c == NULL) {
        close(fd);
        return NULL;
    }

    if (pt_event_add_conn(c) != PT_OK) {
        pt_close_connection(c);
        return NULL;
    }

    if (rc == 0) {
        c->write->ready = 1;
    }

    return c;
}


static void
hs_handler(pt_event_t *ev)
{
    job_t            *job;
    pt_connection_t  *c;

    c = ev->data;
    job = c->data;

    if (job->hs_rc == PT_AGAIN) {
        job->hs_rc = pt_ssl_handshake(c);
    }
}


/* Connect, attach and hand-shake; job->hs_rc tells how it went
 * (PT_DECLINED: the attach failed). NULL if there is no socket. */
static pt_connection_t *
tls_connect(job_t *job, int port, pt_ssl_ctx_t *ctx, const char *name,
    void *session, int bufsize)
{
    pt_str_t          sn;
    pt_connection_t  *c;

    memset(job, 0, sizeof(job_t));
    job->hs_rc = PT_AGAIN;

    c = tcp_connect(port, bufsize);
    if (c == NULL) {
        job->hs_rc = PT_ERROR;
        return NULL;
    }

    job->c = c;
    c->data = job;
    c->read->handler = hs_handler;
    c->write->handler = hs_handler;

    sn.data = (char *) name;
    sn.len = strlen(name);

    if (pt_ssl_client_attach(c, ctx, &sn, session) != PT_OK) {
        job->hs_rc = PT_DECLINED;
        return c;
    }

    /* Right after connect(): the socket may still be connecting. */
    hs_handler(c->write);
    run_job(job, 10000);

    return c;
}


/* Moves the unsent bytes of b to fresh memory and frees the old: a retry
 * must cope (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), and valgrind sees any
 * read of the old block. */
static void
move_buf(pt_buf_t *b)
{
    char    *p;
    size_t   size;

    size = pt_buf_size(b);
    p = malloc(size ? size : 1);
    if (p == NULL) {
        return;
    }

    memcpy(p, b->pos, size);
    free(b->start);
    b->start = p;
    b->pos = p;
    b->last = p + size;
    b->end = p + size;
}


static void
writer(pt_event_t *ev)
{
    int               move;
    size_t            before;
    job_t            *job;
    pt_chain_t       *rest;
    pt_connection_t  *c;

    c = ev->data;
    job = c->data;
    job->writes++;
    move = !job->line_mode;

    if (job->iter && !job->write_iter) {
        job->write_iter = job->iter;
    }

    while (job->out && c->write->ready) {
        before = c->sent;
        rest = c->send_chain(c, job->out, job->limit);

        if (rest == (pt_chain_t *) PT_ERROR) {
            job->send_errors++;
            job->out = NULL;
            return;
        }

        if (job->limit && c->sent - before > job->limit + PT_SSL_BUFFER_SIZE)
        {
            job->over_limit++;
        }

        job->out = rest;

        if (rest && !c->write->ready) {
            job->send_agains++;

            if (move) {
                move_buf(rest->buf);
                job->moved++;
            }
        }
    }
}


static void
reader(pt_event_t *ev)
{
    size_t            i, size;
    ssize_t           n;
    job_t            *job;
    pt_connection_t  *c;
    static char       buf[8192];

    c = ev->data;
    job = c->data;

    if (job->iter && !job->read_iter) {
        job->read_iter = job->iter;
    }

    /* Like the proxy: no read without ready, so a TLS layer that clears
     * it while it still holds data would stall this loop. */
    while (c->read->ready) {
        if (job->line_mode) {
            size = sizeof(job->line) - 1 - job->line_len;

        } else {
            /* Small reads leave records inside OpenSSL: they must still
             * be delivered although no epoll edge announces them. */
            size = job->received % 3 ? 1000 : sizeof(buf);
        }

        if (size == 0) {
            job->recv_error = 1;
            return;
        }

        n = c->recv(c, buf, size);

        if (n == PT_AGAIN) {
            return;
        }

        if (n == 0) {
            job->eof = 1;
            return;
        }

        if (n < 0) {
            job->recv_error = 1;
            return;
        }

        if (job->line_mode) {
            memcpy(job->line + job->line_len, buf, (size_t) n);
            job->line_len += (size_t) n;
            continue;
        }

        for (i = 0; i < (size_t) n; i++) {
            if ((unsigned char) buf[i] != pattern(job->received + i)) {
                job->mismatch++;
            }
        }

        job->received += (size_t) n;
    }
}


static void
line_job(job_t *job, pt_chain_t *cl, pt_buf_t *b, const char *msg)
{
    job->out = NULL;
    job->line_mode = 1;
    job->line_len = 0;
    job->eof = 0;
    job->limit = 0;
    memset(job->line, 0, sizeof(job->line));

    if (msg) {
        b->start = (char *) msg;
        b->pos = b->start;
        b->last = b->start + strlen(msg);
        b->end = b->last;
        cl->buf = b;
        cl->next = NULL;
        job->out = cl;
    }

    job->c->read->handler = reader;
    job->c->write->handler = writer;
}


/* Sends msg and waits for one line (or the end) back; the line, or "". */
static const char *
exchange(job_t *job, const char *msg)
{
    pt_buf_t    b;
    pt_chain_t  cl;

    line_job(job, &cl, &b, msg);
    writer(job->c->write);
    run_job(job, 10000);

    return job->line;
}


/* ---- the tests ---------------------------------------------------------- */


static void
test_ctx_errors(pt_conf_t *cf, pt_yaml_node_t *node)
{
    pt_str_t       s;
    pt_str_t      *e;
    pt_ssl_ctx_t  *ctx;

    s.data = "/nonexistent/ca.pem";
    s.len = strlen(s.data);
    ctx = pt_ssl_client_ctx(cf, node, &s, 1);
    ok(ctx == NULL, "ctx: a missing CA file fails");
    e = cf->errors.elts;
    ok(cf->errors.nelts == 1
       && strstr(e[0].data, "test.yaml:3:5: cannot load CA certificates "
                 "from \"/nonexistent/ca.pem\""),
       "ctx: error at the node, naming the file");
    if (cf->errors.nelts == 1) {
        printf("# %s\n", e[0].data);
    }

    s.data = path_bad;
    s.len = strlen(path_bad);
    ctx = pt_ssl_client_ctx(cf, node, &s, 1);
    ok(ctx == NULL && cf->errors.nelts == 2
       && strstr(e[1].data, "not-pem.txt\": ")
       && strlen(strstr(e[1].data, "not-pem.txt\": ")) > 16,
       "ctx: a file without certificates fails with OpenSSL's reason");
    if (cf->errors.nelts == 2) {
        printf("# %s\n", e[1].data);
    }

    /* Only the length counts: a pt_str_t need not be NUL-terminated. */
    s.data = path_ca;
    s.len = strlen(path_ca);
    path_ca[s.len] = 'X';
    ctx = pt_ssl_client_ctx(cf, node, &s, 1);
    path_ca[s.len] = '\0';
    ok(ctx != NULL && cf->errors.nelts == 2, "ctx: a counted path loads");

    ok(pt_ssl_client_ctx(cf, node, NULL, 1) != NULL,
       "ctx: system CA paths when none is given");
}


/* One handshake per case; servers: 0 echo, 1 cleartext, 2 refusing,
 * 3 closing at once.
 * ctx: 0 the right CA, 1 another CA, 2 no verification. */
typedef struct {
    int          server;
    int          ctx;
    const char  *name;
    int          rc;          /* PT_DECLINED: the attach fails         */
    const char  *reason;      /* in pt_ssl_error(), or NULL            */
    const char  *info;        /* the server's answer to INFO?, or NULL */
    const char  *what;
} hs_case_t;

static const hs_case_t  hs_cases[] = {
    { 0, 0, "localhost", PT_OK, NULL, "sni=localhost reused=0 TLSv1.3\n",
      "right CA and name: SNI sent, TLS 1.3" },
    { 0, 1, "localhost", PT_ERROR, "certificate verify failed: unable to "
      "get local issuer certificate", NULL, "wrong CA" },
    { 0, 0, "example.com", PT_ERROR, "certificate verify failed: hostname "
      "mismatch", NULL, "wrong name" },
    { 0, 0, "127.0.0.1", PT_OK, NULL, "sni=- reused=0 TLSv1.3\n",
      "an IP literal is verified as an IP and not sent as SNI" },
    { 0, 0, "127.0.0.2", PT_ERROR, "IP address mismatch", NULL,
      "another IP" },
    { 0, 0, "[::1]", PT_ERROR, "IP address mismatch", NULL,
      "a bracketed IPv6 literal is an IP" },
    { 0, 2, "example.com", PT_OK, NULL,
      "sni=example.com reused=0 TLSv1.3\n",
      "verify off: any CA and name, SNI still sent" },
    { 0, 0, "", PT_DECLINED, "no server name", NULL,
      "verify on: an empty name is refused at attach" },
    { 1, 0, "localhost", PT_ERROR, "wrong version number", NULL,
      "a cleartext server" },
    { 2, 0, "localhost", PT_ERROR, "Connection refused", NULL,
      "a refused connect" },
    { 3, 0, "localhost", PT_ERROR, "peer closed the connection in the TLS "
      "handshake", NULL, "a server that closes at once" },
};


static void
test_handshakes(int *ports, pt_ssl_ctx_t **ctxs)
{
    int                good;
    size_t             i;
    job_t              job;
    const char        *reason;
    pt_connection_t   *c;
    const hs_case_t   *t;

    for (i = 0; i < pt_nelems(hs_cases); i++) {
        t = &hs_cases[i];
        c = tls_connect(&job, ports[t->server], ctxs[t->ctx], t->name, NULL,
                        0);
        reason = pt_ssl_error(c);

        good = c != NULL && job.hs_rc == t->rc
               && (t->reason == NULL || strstr(reason, t->reason));

        /* What each outcome must leave behind on the connection. */
        if (good && t->rc == PT_OK) {
            good = c->recv == pt_ssl_recv
                   && c->send_chain == pt_ssl_send_chain
                   && strcmp(exchange(&job, "INFO?"), t->info) == 0;

        } else if (good && t->rc == PT_ERROR) {
            good = c->error && c->ssl != NULL;

        } else if (good) {
            good = c->ssl == NULL && c->recv == pt_unix_recv;
        }

        ok(good, "%s%s%s%s", t->what, t->rc == PT_OK ? "" : " (",
           t->rc == PT_OK ? "" : reason, t->rc == PT_OK ? "" : ")");

        if (c) {
            pt_close_connection(c);
        }
    }
}


static void
test_close(int port, pt_ssl_ctx_t *ctx)
{
    job_t             job;
    pt_connection_t  *c;

    c = tls_connect(&job, port, ctx, "localhost", NULL, 0);
    if (c) {
        exchange(&job, "QUIT!");
        ok(job.eof && !job.recv_error && job.line_len == 0
           && c->read->eof, "close_notify reads as EOF");
        pt_close_connection(c);
    }

    c = tls_connect(&job, port, ctx, "localhost", NULL, 0);
    if (c) {
        exchange(&job, "DROP!");
        ok(job.eof && !job.recv_error,
           "a close without close_notify reads as EOF too");
        pt_close_connection(c);
    }
}


/* 1 MiB in pieces of awkward sizes (some gathered into one record, some
 * split over several), under a send limit, over small socket buffers so
 * that writes must wait and are retried from moved buffers; the echo is
 * read in small pieces and compared byte for byte. */
static void *
test_echo(int port, pt_ssl_ctx_t *ctx)
{
    int                   i, n;
    void                 *session;
    size_t                off, size, j;
    job_t                 job;
    pt_buf_t              bufs[NPIECES];
    pt_chain_t            links[NPIECES];
    pt_connection_t      *c;
    static const size_t   sizes[] = { 1, 5, 100, 700, 3000, 16384, 20000,
                                      65536, 9, 40000, 2, 16383, 16385 };

    c = tls_connect(&job, port, ctx, "localhost", NULL, 4096);
    is_int(job.hs_rc, PT_OK, "echo: handshake");
    if (c == NULL || job.hs_rc != PT_OK) {
        return NULL;
    }

    off = 0;

    for (i = 0; off < TOTAL && i < NPIECES; i++) {
        size = pt_min(sizes[i % pt_nelems(sizes)], (size_t) TOTAL - off);
        bufs[i].start = malloc(size);
        if (bufs[i].start == NULL) {
            break;
        }

        for (j = 0; j < size; j++) {
            bufs[i].start[j] = (char) pattern(off + j);
        }

        bufs[i].pos = bufs[i].start;
        bufs[i].last = bufs[i].start + size;
        bufs[i].end = bufs[i].last;
        links[i].buf = &bufs[i];
        links[i].next = NULL;
        off += size;

        if (i > 0) {
            links[i - 1].next = &links[i];
        }
    }

    n = i;

    job.out = &links[0];
    job.limit = SEND_LIMIT;
    job.expect = off;
    c->read->handler = reader;
    c->write->handler = writer;

    writer(c->write);
    run_job(&job, 30000);

    is_int(off, TOTAL, "echo: 1 MiB queued");
    is_int(job.received, TOTAL, "echo: 1 MiB came back");
    is_int(job.mismatch, 0, "echo: byte for byte");
    ok(job.out == NULL && job.send_errors == 0, "echo: the chain was sent");
    is_int(c->sent, TOTAL, "echo: c->sent counts plaintext bytes");
    ok(job.send_agains > 0, "echo: writes had to wait (%d times)",
       job.send_agains);
    ok(job.moved > 0, "echo: retried from moved buffers (%d times)",
       job.moved);
    is_int(job.over_limit, 0, "echo: the send limit held");
    is_int(job.recv_error + job.eof, 0, "echo: no read error or EOF");

    for (i = 0; i < n; i++) {
        free(bufs[i].start);
    }

    exchange(&job, "INFO?");
    is_str(job.line, job.line_len,
           "sni=localhost reused=0 TLSv1.3\n", "echo: a new session");

    /* The TLS 1.3 tickets came with the reads above. */
    session = pt_ssl_session_get(c);
    ok(session != NULL, "a resumable session after the exchange");

    pt_close_connection(c);
    ok(c->ssl == NULL && c->fd == -1, "close frees the TLS state");

    return session;
}


static void
test_resume(int port, pt_ssl_ctx_t *ctx, void *session)
{
    job_t             job;
    pt_connection_t  *c;

    c = tls_connect(&job, port, ctx, "localhost", session, 0);
    is_int(job.hs_rc, PT_OK, "resume: handshake");
    if (c) {
        exchange(&job, "INFO?");
        is_str(job.line, job.line_len,
               "sni=localhost reused=1 TLSv1.3\n",
               "resume: the server reused the session");
        pt_close_connection(c);
    }

    pt_ssl_session_free(session);
}


/* A write before the handshake: SSL_write must read the server's answer,
 * so the read event has to wake the writer. */
static void
test_write_needs_read(pt_ssl_ctx_t *ctx)
{
    int               connected, port, go;
    job_t             job;
    pt_str_t          sn = pt_string("localhost");
    pt_buf_t          b;
    pt_chain_t        cl;
    pt_connection_t  *c;

    /* The server answers only when told, so the write surely waits. */
    if (server(0, 16, &port, &go) < 0) {
        ok(0, "write before handshake: set up");
        return;
    }

    memset(&job, 0, sizeof(job_t));
    c = tcp_connect(port, 0);
    if (c == NULL) {
        ok(0, "write before handshake: connect");
        return;
    }

    job.c = c;
    c->data = &job;
    connected = 0;

    while (!c->write->ready && connected++ < 100) {
        pt_process_events_and_timers();
    }

    ok(pt_ssl_client_attach(c, ctx, &sn, NULL) == PT_OK && c->write->ready,
       "write before handshake: attached to a connected socket");

    line_job(&job, &cl, &b, "INFO?");
    writer(c->write);

    ok(job.out != NULL && !c->write->ready && c->read->handler != reader,
       "a write that must read first borrows the read handler");

    if (write(go, "g", 1) != 1) {
        ok(0, "write before handshake: release the server");
    }

    close(go);
    run_job(&job, 10000);

    is_str(job.line, job.line_len, "sni=localhost reused=0 TLSv1.3\n",
           "the read event woke the writer, then the reader");
    ok(c->read->handler == reader, "the read handler was given back");

    pt_close_connection(c);
}


/* A read on a socket whose SYN the full backlog dropped: SSL_read must
 * first send the ClientHello, so the write event has to wake the reader,
 * and the owner's write handler too. */
static void
test_read_needs_write(pt_ssl_ctx_t *ctx)
{
    int                 port, filler, go;
    job_t               job;
    pt_str_t            sn = pt_string("localhost");
    ssize_t             n;
    struct pollfd       p;
    pt_connection_t    *c;
    struct sockaddr_in  sin;

    if (server(1, 0, &port, &go) < 0) {
        ok(0, "read before handshake: set up");
        return;
    }

    /* backlog 0 queues one connection: the filler takes the place */
    filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) port);
    (void) connect(filler, (struct sockaddr *) &sin, sizeof(sin));

    c = tcp_connect(port, 0);
    if (c == NULL) {
        ok(0, "read before handshake: connect");
        return;
    }

    p.fd = c->fd;
    p.events = POLLOUT;
    ok(poll(&p, 1, 100) == 0, "the second SYN waits for the backlog");

    memset(&job, 0, sizeof(job_t));
    job.c = c;
    c->data = &job;

    ok(pt_ssl_client_attach(c, ctx, &sn, NULL) == PT_OK,
       "read before handshake: attached to a connecting socket");

    line_job(&job, NULL, NULL, NULL);
    n = c->recv(c, job.line, sizeof(job.line) - 1);

    ok(n == PT_AGAIN && !c->read->ready && !c->write->ready
       && c->write->handler != writer,
       "a read that must write first borrows the write handler");

    if (write(go, "g", 1) != 1) {
        ok(0, "read before handshake: release the server");
    }

    close(go);
    close(filler);
    run_job(&job, 10000);

    is_str(job.line, job.line_len, "hello\n",
           "the write event woke the reader");
    ok(c->write->handler == writer, "the write handler was given back");
    ok(job.read_iter != 0 && job.write_iter == job.read_iter,
       "the owner's write handler was called in the same event");

    pt_close_connection(c);
}


int
main(void)
{
    int              ls, ports[4];
    void            *session;
    pt_str_t         ca, other;
    pt_conf_t        cf;
    pt_pool_t       *pool;
    pt_ssl_ctx_t    *ctxs[3];
    pt_yaml_node_t   node;

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IONBF, 0);

    /* The openssl command is a test dependency (scripts/deps installs
     * it): without certificates every check below would be lost, so that
     * is a failure, not a skip. */
    if (mkdtemp(dir) == NULL || make_certs() != 0) {
        tap_plan(1);
        ok(0, "test certificates made with the openssl command in %s", dir);
        show_file("openssl.log");
        return 1;
    }

    tap_plan(46);

    ok(server(0, 64, &ports[0], NULL) > 0
       && server(2, 64, &ports[1], NULL) > 0, "servers started");

    /* a port nobody listens on */
    ls = listen_on(1, &ports[2]);
    close(ls);

    ok(server(3, 64, &ports[3], NULL) > 0, "closing server started");

    pool = pt_pool_create(4096);
    memset(&cf, 0, sizeof(cf));
    memset(&node, 0, sizeof(node));
    cf.pool = pool;
    node.file = "test.yaml";
    node.line = 3;
    node.col = 5;

    if (pool == NULL
        || pt_array_init(&cf.errors, pool, 4, sizeof(pt_str_t)) != PT_OK
        || pt_connections_init(64) != PT_OK
        || pt_event_init(64) != PT_OK)
    {
        ok(0, "set up");
        stop_all();
        return 1;
    }

    test_ctx_errors(&cf, &node);

    ca.data = path_ca;
    ca.len = strlen(path_ca);
    other.data = path_other;
    other.len = strlen(path_other);

    ctxs[0] = pt_ssl_client_ctx(&cf, &node, &ca, 1);
    ctxs[1] = pt_ssl_client_ctx(&cf, &node, &other, 1);
    ctxs[2] = pt_ssl_client_ctx(&cf, &node, &other, 0);

    ok(ctxs[0] && ctxs[1] && ctxs[2], "contexts made");

    if (ctxs[0] && ctxs[1] && ctxs[2]) {
        test_handshakes(ports, ctxs);
        test_close(ports[0], ctxs[0]);

        session = test_echo(ports[0], ctxs[0]);
        if (session) {
            test_resume(ports[0], ctxs[0], session);
        }

        test_write_needs_read(ctxs[0]);
        test_read_needs_write(ctxs[0]);
    }

    stop_all();

    /* the contexts go with the pool, as with a cycle */
    pt_pool_destroy(pool);
    pt_event_done();

    if (sh("rm -rf %s", dir) != 0) {
        printf("# could not remove %s\n", dir);
    }

    return tap_done();
}
