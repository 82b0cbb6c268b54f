/*
 * test_resolver.c: the c-ares resolver against a private dnsmasq.
 *
 * dnsmasq serves a hosts file and SRV records on 127.0.0.1 and a free
 * port; the lookups run through the real event loop (epoll, connection
 * slots, timers), and the synchronous variant is checked for answers and
 * for its time bound against a server that swallows every query.
 */

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "pt_core.h"
#include "pt_conf_value.h"
#include "pt_connection.h"
#include "pt_event.h"
#include "pt_log.h"
#include "pt_resolver.h"
#include "pt_time.h"

#include "tap.h"


#define DNSMASQ   "/usr/sbin/dnsmasq"
#define NADDRS    8
#define BIG       300


typedef struct {
    int              calls;
    int              status;
    int              addrs_null;
    size_t           n;
    uint32_t         ttl;
    pt_resolved_t    addrs[NADDRS];
    pt_resolver_t  **destroy;      /* destroyed from inside the handler */
    pt_resolver_query_t  **cancel; /* cancelled from inside the handler */
    pt_resolver_t   *chain_res;    /* a lookup started from the handler */
    void            *chain_data;
} result_t;


static pid_t     dnsmasq_pid = -1;
static char      tmpdir[64];
static char      hosts_path[128];
static char      log_path[128];
static char      out_path[128];   /* dnsmasq's stdout and stderr */
static uint16_t  dns_port;
static uint16_t  hole_port;       /* swallows every query sent to it */


static void
on_result(void *data, int status, const pt_resolved_t *addrs, size_t n,
    uint32_t ttl)
{
    result_t  *r;

    r = data;
    r->calls++;
    r->status = status;
    r->n = n;
    r->ttl = ttl;
    r->addrs_null = (addrs == NULL);

    if (addrs != NULL) {
        memcpy(r->addrs, addrs, pt_min(n, NADDRS) * sizeof(pt_resolved_t));
    }

    if (r->chain_res != NULL) {
        (void) pt_resolver_resolve(r->chain_res, "b.test", 90, 0, on_result,
                                   r->chain_data);
    }

    if (r->destroy != NULL && *r->destroy != NULL) {
        pt_resolver_destroy(*r->destroy);
        *r->destroy = NULL;
    }

    if (r->cancel != NULL && *r->cancel != NULL) {
        pt_resolver_cancel(*r->cancel);
        *r->cancel = NULL;
    }
}


static void
sleep_ms(long ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000;

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        /* void */
    }
}


static void
wake_handler(pt_event_t *ev)
{
    (void) ev;
}


/* Run the event loop until r's handler ran (r may be NULL) or ms passed;
 * a timer wakes the loop at the deadline. */
static void
run_until(result_t *r, pt_msec_t ms)
{
    pt_msec_t   deadline;
    pt_event_t  wake;

    memset(&wake, 0, sizeof(wake));
    wake.handler = wake_handler;
    pt_time_update();
    pt_timer_add(&wake, ms);

    deadline = pt_monotonic_msec() + ms;

    while ((r == NULL || r->calls == 0) && pt_monotonic_msec() < deadline) {
        pt_process_events_and_timers();
    }

    pt_timer_del(&wake);
}


static void
spin(pt_msec_t ms)
{
    run_until(NULL, ms);
}


/* The entry of r with this port, or NULL. */
static const pt_resolved_t *
by_port(const result_t *r, uint16_t port)
{
    size_t                     i;
    const struct sockaddr_in  *sin;

    for (i = 0; i < pt_min(r->n, NADDRS); i++) {
        sin = (const struct sockaddr_in *) &r->addrs[i].sa;
        if (ntohs(sin->sin_port) == port) {
            return &r->addrs[i];
        }
    }

    return NULL;
}


static int
write_hosts(const char *a_addr)
{
    int    i;
    FILE  *f;
    char   tmp[160];

    snprintf(tmp, sizeof(tmp), "%s.new", hosts_path);

    f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }

    fprintf(f, "%s a.test\n"
               "127.0.0.3 b.test\n"
               "127.0.0.4 c.test\n"
               "127.0.0.5 dual.test\n"
               "fd00::5 dual.test\n"
               "fd00::6 v6.test\n", a_addr);

    /* An answer too big for UDP (c-ares retries over TCP) and over the
     * address limit. */
    for (i = 0; i < BIG; i++) {
        fprintf(f, "10.1.%d.%d big.test\n", i / 250, i % 250 + 1);
    }

    if (fclose(f) != 0) {
        return -1;
    }

    return rename(tmp, hosts_path);
}


/* A port free for both UDP and TCP on 127.0.0.1 (or 0). */
static uint16_t
free_port(void)
{
    int                 u, t, tries;
    uint16_t            port;
    socklen_t           len;
    struct sockaddr_in  sin;

    port = 0;

    /* The UDP port the kernel picks may be taken for TCP (a socket of
     * another test in TIME_WAIT, say): pick again. */
    for (tries = 0; tries < 20 && port == 0; tries++) {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

        u = socket(AF_INET, SOCK_DGRAM, 0);
        t = socket(AF_INET, SOCK_STREAM, 0);

        if (u >= 0 && t >= 0
            && bind(u, (struct sockaddr *) &sin, sizeof(sin)) == 0)
        {
            len = sizeof(sin);
            if (getsockname(u, (struct sockaddr *) &sin, &len) == 0
                && bind(t, (struct sockaddr *) &sin, sizeof(sin)) == 0)
            {
                port = ntohs(sin.sin_port);
            }
        }

        if (u >= 0) {
            close(u);
        }

        if (t >= 0) {
            close(t);
        }
    }

    return port;
}


/* A UDP socket that is bound and never read: every query sent to it is
 * swallowed. */
static int
blackhole(uint16_t *port)
{
    int                 fd;
    socklen_t           len;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sin);

    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || getsockname(fd, (struct sockaddr *) &sin, &len) != 0)
    {
        close(fd);
        return -1;
    }

    *port = ntohs(sin.sin_port);

    return fd;
}


static void
stop_dnsmasq(void)
{
    int  i, status;

    if (dnsmasq_pid > 0) {
        kill(dnsmasq_pid, SIGTERM);

        for (i = 0; i < 100; i++) {
            if (waitpid(dnsmasq_pid, &status, WNOHANG) != 0) {
                break;
            }
            sleep_ms(10);
        }

        if (i == 100) {
            kill(dnsmasq_pid, SIGKILL);
            (void) waitpid(dnsmasq_pid, &status, 0);
        }

        dnsmasq_pid = -1;
    }
}


static void
cleanup(void)
{
    char  tmp[160];

    stop_dnsmasq();

    if (tmpdir[0] != '\0') {
        snprintf(tmp, sizeof(tmp), "%s.new", hosts_path);
        unlink(tmp);
        unlink(hosts_path);
        unlink(log_path);
        unlink(out_path);
        rmdir(tmpdir);
    }
}


/* Copies a file to the TAP stream as comments (it is removed at exit). */
static void
show_file(const char *path)
{
    char   line[512];
    FILE  *f;

    f = fopen(path, "r");
    if (f == NULL) {
        return;
    }

    while (fgets(line, sizeof(line), f)) {
        printf("# %s%s", line, strchr(line, '\n') ? "" : "\n");
    }

    fclose(f);
}


static pid_t
spawn_dnsmasq(uint16_t port)
{
    int             fd, n;
    char            a_port[32], a_hosts[192], a_log[192], a_user[64],
                    a_group[64], a_slow[64];
    char           *argv[32];
    pid_t           pid;
    struct group   *gr;
    struct passwd  *pw;

    pw = getpwuid(getuid());
    gr = getgrgid(getgid());

    snprintf(a_port, sizeof(a_port), "--port=%u", port);
    snprintf(a_slow, sizeof(a_slow), "--server=/slow.test/127.0.0.1#%u",
             hole_port);
    snprintf(a_hosts, sizeof(a_hosts), "--addn-hosts=%s", hosts_path);
    snprintf(a_log, sizeof(a_log), "--log-facility=%s", log_path);
    snprintf(a_user, sizeof(a_user), "--user=%s", pw ? pw->pw_name : "root");
    snprintf(a_group, sizeof(a_group), "--group=%s",
             gr ? gr->gr_name : "root");

    n = 0;
    argv[n++] = DNSMASQ;
    argv[n++] = "--no-daemon";
    argv[n++] = "--no-resolv";
    argv[n++] = "--no-hosts";
    argv[n++] = a_hosts;
    argv[n++] = "--local-ttl=7";
    argv[n++] = "--bind-interfaces";
    argv[n++] = "--listen-address=127.0.0.1";
    argv[n++] = a_port;
    argv[n++] = "--pid-file=";
    argv[n++] = "--conf-file=/dev/null";
    /* Names under .test that the hosts file lacks are NXDOMAIN at once,
     * not REFUSED for want of an upstream server. */
    argv[n++] = "--local=/test/";
    argv[n++] = "--srv-host=_http._tcp.svc.test,a.test,8081,0,5";
    argv[n++] = "--srv-host=_http._tcp.svc.test,b.test,8082,0,10";
    /* A backup group: must not be used while the first one exists. */
    argv[n++] = "--srv-host=_http._tcp.svc.test,c.test,8083,1,50";
    argv[n++] = "--srv-host=_zero._tcp.svc.test,b.test,9000,0,0";
    argv[n++] = "--srv-host=_none._tcp.svc.test";
    argv[n++] = "--cname=alias.test,a.test";
    /* Names under slow.test are forwarded to the silent server: their
     * lookups stay in flight for seconds. */
    argv[n++] = a_slow;
    argv[n++] = "--srv-host=_slow._tcp.svc.test,x.slow.test,8090,0,1";
    argv[n++] = a_user;
    argv[n++] = a_group;
    argv[n++] = a_log;
    argv[n] = NULL;

    pid = fork();
    if (pid != 0) {
        return pid;
    }

    /* Never outlive the test, even when it crashes. */
    (void) prctl(PR_SET_PDEATHSIG, SIGKILL);

    fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
    }

    /* Whatever dnsmasq prints goes to a file: on our stdout or stderr it
     * would mix into the TAP stream (00unit.t reads both as one), and a
     * line of it could land in the middle of an "ok N" line. */
    fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        _exit(127);
    }

    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);

    execv(DNSMASQ, argv);
    _exit(127);
}


static pt_resolver_conf_t
conf_for(pt_addr_t *addr, uint16_t port)
{
    char                 text[32];
    const char          *reason;
    pt_resolver_conf_t   conf;

    memset(&conf, 0, sizeof(conf));

    snprintf(text, sizeof(text), "127.0.0.1:%u", port);

    if (pt_parse_addr(text, strlen(text), 0, addr, &reason) != PT_OK) {
        printf("# pt_parse_addr(%s): %s\n", text, reason);
        return conf;
    }

    conf.servers.elts = addr;
    conf.servers.nelts = 1;
    conf.servers.size = sizeof(pt_addr_t);
    conf.servers.nalloc = 1;

    return conf;
}


/* Start dnsmasq on a free port and wait until it answers. */
static int
start_dnsmasq(void)
{
    int                  attempt, i, status, rc;
    size_t               n;
    uint32_t             ttl;
    pt_addr_t            addr;
    pt_resolved_t       *addrs;
    pt_resolver_conf_t   conf;

    for (attempt = 0; attempt < 5; attempt++) {
        dns_port = free_port();
        if (dns_port == 0) {
            continue;
        }

        dnsmasq_pid = spawn_dnsmasq(dns_port);
        if (dnsmasq_pid < 0) {
            return -1;
        }

        conf = conf_for(&addr, dns_port);

        for (i = 0; i < 50; i++) {
            if (waitpid(dnsmasq_pid, &status, WNOHANG) != 0) {
                dnsmasq_pid = -1;   /* it died: the port was taken? */
                break;
            }

            rc = pt_resolver_resolve_sync(&conf, "a.test", 1, 0, &addrs, &n,
                                          &ttl, 200);
            if (rc == PT_OK) {
                free(addrs);
                return 0;
            }

            sleep_ms(20);
        }

        stop_dnsmasq();
    }

    return -1;
}


static void
test_async(pt_resolver_t *res)
{
    char                  longname[300];
    pt_msec_t             start;
    result_t              r;
    const pt_resolved_t  *a, *b;
    pt_resolver_query_t  *q;

    /* A */
    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "a.test", 8080, 0, on_result, &r);
    ok(q != NULL, "A: lookup started");
    is_int(r.calls, 0, "A: handler not run from inside resolve()");
    run_until(&r, 2000);
    spin(20);
    is_int(r.calls, 1, "A: handler ran exactly once");
    is_int(r.status, PT_OK, "A: PT_OK");
    is_int(r.n, 1, "A: one address");
    is_str(r.addrs[0].text, strlen(r.addrs[0].text), "127.0.0.2:8080",
           "A: address with the port");
    is_int(r.addrs[0].sa.ss_family, AF_INET, "A: AF_INET");
    is_int(r.addrs[0].socklen, sizeof(struct sockaddr_in), "A: socklen");
    is_int(ntohs(((struct sockaddr_in *) &r.addrs[0].sa)->sin_port), 8080,
           "A: port in the sockaddr");
    is_int(r.addrs[0].weight, 1, "A: weight 1");
    is_int(r.addrs[0].priority, 0, "A: priority 0");
    is_int(r.ttl, 7, "A: ttl from the answer");

    /* AAAA */
    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "v6.test", 443, 0, on_result, &r);
    run_until(&r, 2000);
    is_int(r.status, PT_OK, "AAAA: PT_OK");
    is_int(r.n, 1, "AAAA: one address");
    is_str(r.addrs[0].text, strlen(r.addrs[0].text), "[fd00::6]:443",
           "AAAA: address with the port");
    is_int(r.addrs[0].sa.ss_family, AF_INET6, "AAAA: AF_INET6");
    is_int(r.addrs[0].socklen, sizeof(struct sockaddr_in6), "AAAA: socklen");
    is_int(r.ttl, 7, "AAAA: ttl");

    /* both families */
    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "dual.test", 80, 0, on_result, &r);
    run_until(&r, 2000);
    is_int(r.n, 2, "A+AAAA: two addresses");
    ok(r.n == 2 && r.addrs[0].sa.ss_family != r.addrs[1].sa.ss_family,
       "A+AAAA: one of each family");

    /* CNAME */
    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "alias.test", 80, 0, on_result, &r);
    run_until(&r, 2000);
    is_int(r.n, 1, "CNAME: one address");
    is_str(r.addrs[0].text, strlen(r.addrs[0].text), "127.0.0.2:80",
           "CNAME: the target's address");
    is_int(r.ttl, 7, "CNAME: ttl");

    /* Over TCP, and more addresses than kept. */
    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "big.test", 80, 0, on_result, &r);
    run_until(&r, 3000);
    is_int(r.status, PT_OK, "big answer: PT_OK");
    is_int(r.n, PT_RESOLVER_MAX_ADDRS, "big answer: capped at the limit");

    /* NXDOMAIN */
    memset(&r, 0, sizeof(r));
    start = pt_monotonic_msec();
    q = pt_resolver_resolve(res, "nope.test", 80, 0, on_result, &r);
    ok(q != NULL, "unknown: lookup started");
    run_until(&r, 3000);
    is_int(r.calls, 1, "unknown: handler ran");
    is_int(r.status, PT_ERROR, "unknown: PT_ERROR");
    is_int(r.n, 0, "unknown: no addresses");
    ok(r.addrs_null, "unknown: addrs NULL");
    /* Upper bounds only rule out a hang: the machine may be busy. */
    ok(pt_monotonic_msec() - start < 3000, "unknown: answered, no hang");

    /* SRV */
    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "_http._tcp.svc.test", 0, 1, on_result, &r);
    ok(q != NULL, "SRV: lookup started");
    run_until(&r, 2000);
    is_int(r.status, PT_OK, "SRV: PT_OK");
    is_int(r.n, 2, "SRV: two addresses, the backup group left out");
    a = by_port(&r, 8081);
    b = by_port(&r, 8082);
    ok(a != NULL && strcmp(a->text, "127.0.0.2:8081") == 0,
       "SRV: a.test with port 8081");
    ok(b != NULL && strcmp(b->text, "127.0.0.3:8082") == 0,
       "SRV: b.test with port 8082");
    ok(a != NULL && a->weight == 5, "SRV: weight 5");
    ok(b != NULL && b->weight == 10, "SRV: weight 10");
    ok(by_port(&r, 8083) == NULL, "SRV: priority 1 not used");
    is_int(r.ttl, 7, "SRV: ttl");

    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "_zero._tcp.svc.test", 0, 1, on_result, &r);
    run_until(&r, 2000);
    is_int(r.n, 1, "SRV weight 0: one address");
    is_int(r.addrs[0].weight, 1, "SRV weight 0 becomes 1");

    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "_none._tcp.svc.test", 0, 1, on_result, &r);
    run_until(&r, 2000);
    is_int(r.status, PT_ERROR, "SRV without records: PT_ERROR");

    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "_nope._tcp.svc.test", 0, 1, on_result, &r);
    run_until(&r, 2000);
    is_int(r.status, PT_ERROR, "SRV of an unknown name: PT_ERROR");
    is_int(r.n, 0, "SRV of an unknown name: no addresses");

    /* An address as the name is answered at once, but still posted. */
    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "127.0.0.9", 81, 0, on_result, &r);
    is_int(r.calls, 0, "numeric: not delivered from inside resolve()");
    run_until(&r, 1000);
    is_int(r.status, PT_OK, "numeric: PT_OK");
    is_str(r.addrs[0].text, strlen(r.addrs[0].text), "127.0.0.9:81",
           "numeric: the address");
    is_int(r.ttl, PT_RESOLVER_TTL_LITERAL, "numeric: fixed ttl");

    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "::1", 82, 0, on_result, &r);
    run_until(&r, 1000);
    is_str(r.addrs[0].text, strlen(r.addrs[0].text), "[::1]:82",
           "numeric IPv6: the address");

    /* Bad names fail at once. */
    ok(pt_resolver_resolve(res, "", 80, 0, on_result, &r) == NULL,
       "empty name refused");

    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ok(pt_resolver_resolve(res, longname, 80, 0, on_result, &r) == NULL,
       "name over 254 bytes refused");
}


static void
test_cancel(pt_resolver_t *res, pt_resolver_conf_t *conf,
    pt_resolver_conf_t *hole)
{
    int                   i, k, nulls, cancelled, called;
    result_t              r, r2, r3;
    pt_resolver_t        *res2;
    pt_event_t            wake;
    pt_resolver_query_t  *q, *q2;

    /* Cancelled at once, and while c-ares is still waiting for the
     * answer. */
    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "a.test", 80, 0, on_result, &r);
    pt_resolver_cancel(q);
    spin(100);
    is_int(r.calls, 0, "cancel at once: handler never called");

    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "x.slow.test", 80, 0, on_result, &r);
    spin(100);
    pt_resolver_cancel(q);
    spin(50);
    is_int(r.calls, 0, "cancel in flight: handler never called");

    /* The SRV answer is in, its target is still being looked up. */
    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "_slow._tcp.svc.test", 0, 1, on_result, &r);
    spin(100);
    pt_resolver_cancel(q);
    spin(50);
    is_int(r.calls, 0, "cancel SRV while its targets resolve: handler "
           "never called");

    /* Cancelled when complete, its delivery posted: by the handler of a
     * lookup posted before it. */
    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    q2 = NULL;
    r.cancel = &q2;
    q = pt_resolver_resolve(res, "127.0.0.7", 80, 0, on_result, &r);
    q2 = pt_resolver_resolve(res, "127.0.0.8", 80, 0, on_result, &r2);
    spin(50);
    is_int(r.calls, 1, "cancel before delivery: the first handler ran");
    is_int(r2.calls, 0, "cancel before delivery: handler never called");

    /* The same with twin lookups, whose answers come in the same
     * packets: complete or in flight, whichever happens. */
    called = 0;

    for (k = 0; k < 5; k++) {
        memset(&r, 0, sizeof(r));
        memset(&r2, 0, sizeof(r2));
        q2 = NULL;
        r.cancel = &q2;
        r2.cancel = &q;
        q = pt_resolver_resolve(res, "a.test", 80, 0, on_result, &r);
        q2 = pt_resolver_resolve(res, "a.test", 80, 0, on_result, &r2);
        run_until(&r, 1000);
        run_until(&r2, 100);
        called += r.calls + r2.calls;
    }

    is_int(called, 5, "cancel from a twin's handler: that twin never "
           "called");

    /* SRV lookups cancelled after 0, 1, 2... turns of the loop: before
     * the SRV answer, while the targets are resolved, and so on. */
    memset(&wake, 0, sizeof(wake));
    wake.handler = wake_handler;
    cancelled = 0;
    called = 0;

    for (k = 0; k < 6; k++) {
        memset(&r, 0, sizeof(r));
        q = pt_resolver_resolve(res, "_http._tcp.svc.test", 0, 1, on_result,
                                &r);

        /* One turn per event; the timer only bounds a turn that would
         * otherwise wait for c-ares's retransmission. */
        pt_timer_add(&wake, 200);

        for (i = 0; i < k && r.calls == 0; i++) {
            pt_process_events_and_timers();
        }

        pt_timer_del(&wake);

        if (r.calls == 0) {
            pt_resolver_cancel(q);
            cancelled++;
            spin(50);
            called += r.calls;
        }
    }

    ok(called == 0, "cancel SRV after 0-5 turns of the loop: handler "
       "never called (%d cancelled)", cancelled);

    /* The resolver still works afterwards. */
    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res, "b.test", 80, 0, on_result, &r);
    run_until(&r, 2000);
    is_int(r.status, PT_OK, "after cancels: lookups still work");

    /* A handler may start a lookup, and may destroy its resolver. */
    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    r.chain_res = res;
    r.chain_data = &r2;
    q = pt_resolver_resolve(res, "a.test", 80, 0, on_result, &r);
    run_until(&r2, 2000);
    is_int(r2.status, PT_OK, "lookup started from a handler completes");
    is_str(r2.addrs[0].text, strlen(r2.addrs[0].text), "127.0.0.3:90",
           "lookup started from a handler: its answer");

    /* A handler destroys the resolver: a delivery already posted and a
     * lookup in flight are dropped. */
    res2 = pt_resolver_create(conf);
    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    memset(&r3, 0, sizeof(r3));
    r.destroy = &res2;
    r2.destroy = &res2;
    r3.destroy = &res2;
    q = pt_resolver_resolve(res2, "127.0.0.8", 80, 0, on_result, &r);
    q2 = pt_resolver_resolve(res2, "127.0.0.9", 81, 0, on_result, &r2);
    (void) pt_resolver_resolve(res2, "_slow._tcp.svc.test", 0, 1,
                               on_result, &r3);
    ok(q != NULL && q2 != NULL, "destroy from a handler: lookups started");
    spin(100);
    ok(res2 == NULL, "destroy from a handler: destroyed");
    is_int(r.calls, 1, "destroy from a handler: that handler ran");
    is_int(r2.calls + r3.calls, 0, "destroy from a handler: no other "
           "handler ran");

    /* Whichever of several real lookups comes first destroys it. */
    res2 = pt_resolver_create(conf);
    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    memset(&r3, 0, sizeof(r3));
    r.destroy = &res2;
    r2.destroy = &res2;
    r3.destroy = &res2;
    (void) pt_resolver_resolve(res2, "a.test", 80, 0, on_result, &r);
    (void) pt_resolver_resolve(res2, "a.test", 81, 0, on_result, &r2);
    (void) pt_resolver_resolve(res2, "_http._tcp.svc.test", 0, 1,
                               on_result, &r3);
    spin(200);
    ok(res2 == NULL && r.calls + r2.calls + r3.calls == 1,
       "destroy from the first of three handlers: no other ran");

    /* Destroyed with lookups in flight: no handler. */
    res2 = pt_resolver_create(conf);
    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    q = pt_resolver_resolve(res2, "x.slow.test", 80, 0, on_result, &r);
    q2 = pt_resolver_resolve(res2, "_slow._tcp.svc.test", 0, 1, on_result,
                             &r2);
    spin(100);
    pt_resolver_destroy(res2);
    spin(50);
    ok(q != NULL && q2 != NULL && r.calls + r2.calls == 0,
       "destroy with lookups in flight: no handler");

    res2 = pt_resolver_create(hole);
    ok(res2 != NULL, "resolver on a silent server");
    memset(&r, 0, sizeof(r));
    q = pt_resolver_resolve(res2, "a.test", 80, 1, on_result, &r);
    spin(50);
    pt_resolver_destroy(res2);
    spin(50);
    is_int(r.calls, 0, "destroy, silent server: no handler");

    /* The number of lookups in flight is bounded. */
    res2 = pt_resolver_create(hole);
    memset(&r, 0, sizeof(r));
    nulls = 0;

    for (i = 0; i < PT_RESOLVER_MAX_QUERIES; i++) {
        if (pt_resolver_resolve(res2, "a.test", 80, 0, on_result, &r)
            == NULL)
        {
            nulls++;
        }
    }

    is_int(nulls, 0, "lookups up to the limit start");
    ok(pt_resolver_resolve(res2, "a.test", 80, 0, on_result, &r) == NULL,
       "one lookup over the limit is refused");
    pt_resolver_destroy(res2);
    spin(20);
    is_int(r.calls, 0, "destroy: none of those handlers ran");
}


static void
test_sync(pt_resolver_conf_t *conf, pt_resolver_conf_t *hole)
{
    int                  rc, nc;
    size_t               n;
    uint16_t             port;
    uint32_t             ttl;
    pt_addr_t            addr;
    pt_msec_t            start, took;
    const char          *reason;
    pt_resolved_t       *addrs;
    pt_resolver_conf_t   closed;

    rc = pt_resolver_resolve_sync(conf, "a.test", 8080, 0, &addrs, &n, &ttl,
                                  2000);
    is_int(rc, PT_OK, "sync A: PT_OK");
    is_int(n, 1, "sync A: one address");
    ok(n == 1 && strcmp(addrs[0].text, "127.0.0.2:8080") == 0,
       "sync A: the address with the port");
    is_int(ttl, 7, "sync A: ttl");
    free(addrs);

    rc = pt_resolver_resolve_sync(conf, "_http._tcp.svc.test", 0, 1, &addrs,
                                  &n, &ttl, 2000);
    is_int(rc, PT_OK, "sync SRV: PT_OK");
    is_int(n, 2, "sync SRV: two addresses");
    free(addrs);

    rc = pt_resolver_resolve_sync(conf, "nope.test", 80, 0, &addrs, &n,
                                  &ttl, 2000);
    is_int(rc, PT_ERROR, "sync unknown: PT_ERROR");
    ok(addrs == NULL && n == 0, "sync unknown: no addresses");

    /* A server that swallows queries: the timeout bounds the wait. */
    start = pt_monotonic_msec();
    rc = pt_resolver_resolve_sync(hole, "a.test", 80, 0, &addrs, &n, &ttl,
                                  500);
    took = pt_monotonic_msec() - start;
    is_int(rc, PT_ERROR, "sync silent server: PT_ERROR");
    ok(addrs == NULL && n == 0, "sync silent server: no addresses");
    ok(took >= 450 && took <= 3000, "sync silent server: gave up after "
       "the timeout (%lu ms)", (unsigned long) took);

    /* Nothing listens on the port at all. */
    port = free_port();
    closed = conf_for(&addr, port);
    start = pt_monotonic_msec();
    rc = pt_resolver_resolve_sync(&closed, "a.test", 80, 0, &addrs, &n, &ttl,
                                  500);
    took = pt_monotonic_msec() - start;
    is_int(rc, PT_ERROR, "sync closed port: PT_ERROR");
    ok(took <= 3000, "sync closed port: no hang (%lu ms)",
       (unsigned long) took);

    /* A server given as a name is a configuration error. */
    nc = pt_parse_addr("dns.example:53", 14, 0, &addr, &reason);
    closed.servers.elts = &addr;
    rc = pt_resolver_resolve_sync(&closed, "a.test", 80, 0, &addrs, &n,
                                  &ttl, 500);
    ok(nc == PT_OK && rc == PT_ERROR, "a server that is a name: error");
    ok(pt_resolver_create(&closed) == NULL,
       "a server that is a name: no resolver");
}


/* The first server swallows the query: c-ares's retransmission timer,
 * run by the event loop, moves it to the second. */
static void
test_failover(void)
{
    pt_msec_t            start, took;
    pt_addr_t            addrs[2];
    result_t             r;
    pt_resolver_t       *res;
    pt_resolver_conf_t   conf;

    conf = conf_for(&addrs[0], hole_port);
    (void) conf_for(&addrs[1], dns_port);
    conf.servers.nelts = 2;
    conf.servers.nalloc = 2;

    res = pt_resolver_create(&conf);
    ok(res != NULL, "failover: resolver with two servers");
    if (res == NULL) {
        return;
    }

    memset(&r, 0, sizeof(r));
    start = pt_monotonic_msec();
    (void) pt_resolver_resolve(res, "b.test", 80, 0, on_result, &r);
    run_until(&r, 6000);
    took = pt_monotonic_msec() - start;

    is_int(r.status, PT_OK, "failover: answered by the second server");
    ok(took >= 900 && took < 6000, "failover: after the first try timed "
       "out (%lu ms)", (unsigned long) took);

    pt_resolver_destroy(res);
}


static void
test_reload(pt_resolver_t *res)
{
    int        i;
    result_t   r;

    ok(write_hosts("127.0.0.20") == 0, "hosts file rewritten");
    ok(kill(dnsmasq_pid, SIGHUP) == 0, "dnsmasq sent SIGHUP");

    /* dnsmasq rereads the file when it gets to the signal. */
    for (i = 0; i < 40; i++) {
        memset(&r, 0, sizeof(r));
        (void) pt_resolver_resolve(res, "a.test", 80, 0, on_result, &r);
        run_until(&r, 1000);

        if (r.n == 1 && strcmp(r.addrs[0].text, "127.0.0.20:80") == 0) {
            break;
        }

        spin(25);
    }

    is_int(r.status, PT_OK, "after SIGHUP: PT_OK");
    is_str(r.addrs[0].text, strlen(r.addrs[0].text), "127.0.0.20:80",
           "after SIGHUP: the new address");
}


int
main(void)
{
    int                  hole_fd;
    pt_addr_t            addr, hole_addr;
    pt_resolver_t       *res;
    pt_resolver_conf_t   conf, hole;

    /* scripts/deps installs it: its absence is a broken set-up, not a
     * reason to pass without testing. */
    if (access(DNSMASQ, X_OK) != 0) {
        printf("1..1\nnot ok 1 - %s is missing (apt-get install "
               "dnsmasq-base)\n", DNSMASQ);
        return 1;
    }

    tap_plan(97);

    signal(SIGPIPE, SIG_IGN);

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/pt_resolver_XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        tmpdir[0] = '\0';
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }

    snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", tmpdir);
    snprintf(log_path, sizeof(log_path), "%s/dnsmasq.log", tmpdir);
    snprintf(out_path, sizeof(out_path), "%s/dnsmasq.out", tmpdir);
    atexit(cleanup);

    if (write_hosts("127.0.0.2") != 0) {
        printf("Bail out! cannot write %s\n", hosts_path);
        return 1;
    }

    if (pt_event_init(64) != PT_OK || pt_connections_init(64) != PT_OK) {
        printf("Bail out! event loop set-up failed\n");
        return 1;
    }

    hole_fd = blackhole(&hole_port);
    if (hole_fd < 0) {
        printf("Bail out! no UDP socket\n");
        return 1;
    }

    if (start_dnsmasq() != 0) {
        show_file(log_path);
        show_file(out_path);
        printf("Bail out! dnsmasq did not start\n");
        return 1;
    }

    conf = conf_for(&addr, dns_port);

    hole = conf_for(&hole_addr, hole_port);

    res = pt_resolver_create(&conf);
    ok(res != NULL, "resolver created");
    if (res == NULL) {
        return tap_done();
    }

    test_async(res);
    test_cancel(res, &conf, &hole);
    test_sync(&conf, &hole);
    test_failover();
    test_reload(res);

    pt_resolver_destroy(res);
    spin(10);
    is_int(pt_timer_count(), 0, "no timer left after destroy");

    close(hole_fd);
    pt_event_done();

    return tap_done();
}
