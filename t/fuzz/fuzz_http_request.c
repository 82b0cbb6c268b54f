/*
 * fuzz_http_request.c: one client connection through the whole HTTP/1
 * server (pt_http_request.c and what it calls): head reading, the framing
 * checks against smuggling (Content-Length, Transfer-Encoding, Host,
 * Expect), path normalization, the phases with the router and its
 * respond/redirect actions, templates, header edits, request bodies
 * (length and chunked), keep-alive, pipelining, the JSON error responses,
 * lingering close and the access log.
 *
 * The gateway runs as a worker would, from a fixed configuration (below)
 * loaded in test mode, with its listener never opened and its access log
 * on /dev/null. The client is the other end of a non-blocking socketpair
 * (no network): the first input byte seeds how the rest is cut into
 * writes, each followed by a read event. At the end the client shuts down
 * its side, and when the connection still waits, time jumps ahead so that
 * its timers fire; when the first byte has its high bit set, the client
 * stays silent instead and time jumps first (header, body and idle
 * timeouts). Checked promises: the connection always ends,
 * with no request, head buffer or timer left behind; whatever the gateway
 * wrote starts with a response head that its own strict parser accepts.
 * PT_FUZZ_SHOW=1 prints what the client received.
 */

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include "fuzz.h"
#include "pt_cycle.h"
#include "pt_event.h"
#include "pt_http.h"
#include "pt_module.h"
#include "pt_time.h"


#define PT_FUZZ_ROUNDS   4096       /* event rounds per input, at most */
#define PT_FUZZ_OUT      65536      /* response bytes kept for checks  */


static const char  pt_fuzz_conf[] =
    "error_log: stderr\n"
    "log_level: debug\n"
    "trusted_proxies: [127.0.0.0/8]\n"
    "listen: [ { address: \"127.0.0.1:1\" } ]\n"
    "limits: { max_header_size: 2k, max_headers: 16, max_body_size: 64,\n"
    "          header_timeout: 1s, body_timeout: 1s, idle_timeout: 2s,\n"
    "          send_timeout: 1s }\n"
    "access_log: { path: /dev/null, format: json }\n"
    "routes:\n"
    "  - name: hello\n"
    "    match: { path: \"=/hello\", methods: [GET, POST] }\n"
    "    response_headers: { set: { X-Frame-Options: DENY } }\n"
    "    compress: { types: [\"*/*\"], min_size: 1, level: 1 }\n"
    "    respond: { status: 200, body: \"hello ${remote_addr} ${header.X-A}"
    "\\n\" }\n"
    "  - name: users\n"
    "    match: { host: \"*.example.com\", path: '~^/users/(\\d+)/?(.*)$' }\n"
    "    rewrite: { path: \"/v2/${1}/${2}\" }\n"
    "    respond:\n"
    "      status: 201\n"
    "      headers: { Content-Type: text/plain, X-Path: \"${path}\" }\n"
    "      body: \"${1} ${query.x} ${cookie.s} ${request_id} ${host}\"\n"
    "  - name: beta\n"
    "    match: { path: /q/, headers: { X-Env: \"~^(prod|stage)$\" },\n"
    "             query: { beta: \"1\" } }\n"
    "    access_log: false\n"
    "    redirect: { to: \"https://new.example.com${path}?${query}\","
    " status: 308 }\n"
    "  - name: strip\n"
    "    match: { path: /api/, methods: [PUT, DELETE, PATCH] }\n"
    "    rewrite: { strip_prefix: /api }\n"
    "    respond: { status: 204 }\n";


static pt_cycle_t  *pt_fuzz_cyc;
static char         pt_fuzz_dir[64];
static char         pt_fuzz_file[128];
static char         pt_fuzz_out[PT_FUZZ_OUT];
static pt_uint_t    pt_fuzz_timers;   /* the workers' own (access log) */


static void
pt_fuzz_cleanup(void)
{
    (void) unlink(pt_fuzz_file);
    (void) rmdir(pt_fuzz_dir);
}


static int
pt_fuzz_init(void)
{
    int              fd;
    FILE            *f;
    size_t           i;
    pt_uint_t        m;
    pt_open_file_t  *of;

    pt_fuzz_quiet_log();
    pt_time_update();

    if (pt_modules_init() != PT_OK) {
        return PT_ERROR;
    }

    snprintf(pt_fuzz_dir, sizeof(pt_fuzz_dir), "%s/pt_fuzz_req.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");

    if (mkdtemp(pt_fuzz_dir) == NULL) {
        return PT_ERROR;
    }

    snprintf(pt_fuzz_file, sizeof(pt_fuzz_file), "%s/fuzz.yaml",
             pt_fuzz_dir);
    atexit(pt_fuzz_cleanup);

    f = fopen(pt_fuzz_file, "w");
    if (f == NULL) {
        return PT_ERROR;
    }

    fputs(pt_fuzz_conf, f);

    if (fclose(f) != 0) {
        return PT_ERROR;
    }

    pt_fuzz_cyc = pt_cycle_init(NULL, pt_fuzz_file, "/", 1);
    if (pt_fuzz_cyc == NULL || pt_fuzz_cyc->listening.nelts != 1) {
        fprintf(stderr, "fuzz_http_request: the configuration does not "
                "load\n");
        return PT_ERROR;
    }

    /* What the cycle would open outside test mode: the access log. */
    of = pt_fuzz_cyc->open_files.elts;

    for (i = 0; i < pt_fuzz_cyc->open_files.nelts; i++) {
        fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            return PT_ERROR;
        }
        of[i].fd = fd;
    }

    pt_cycle = pt_fuzz_cyc;
    pt_connections_max = 16;

    if (pt_connections_init(16) != PT_OK || pt_event_init(64) != PT_OK) {
        return PT_ERROR;
    }

    for (m = 0; pt_modules[m]; m++) {
        if (pt_modules[m]->init_worker
            && pt_modules[m]->init_worker(pt_fuzz_cyc) != PT_OK)
        {
            return PT_ERROR;
        }
    }

    pt_fuzz_timers = pt_timer_count();

    return PT_OK;
}


static size_t
pt_fuzz_piece(uint32_t *state)
{
    uint32_t  x;

    x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;

    return (x & 3) ? 1 + (x >> 8) % 64 : 1 + (x >> 8) % 8192;
}


/* Take what the gateway wrote; keep the start of it. */
static void
pt_fuzz_drain(int fd, size_t *out)
{
    char     buf[16384];
    ssize_t  n;
    size_t   k;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        k = pt_min((size_t) n, PT_FUZZ_OUT - *out);
        memcpy(pt_fuzz_out + *out, buf, k);
        *out += k;
    }
}


static void
pt_fuzz_check_response(size_t len)
{
    size_t                  n;
    pt_http_header_t        headers[64];
    pt_http_head_scan_t     s;
    pt_http_status_line_t   sl;

    if (len == 0) {
        return;
    }

    memset(&s, 0, sizeof(pt_http_head_scan_t));
    pt_fuzz_check(pt_http_scan_head(&s, pt_fuzz_out, len) == PT_OK);

    n = pt_nelems(headers);
    pt_fuzz_check(pt_http_parse_response_head(pt_fuzz_out, &s, &sl, headers,
                                              &n) == PT_OK);
    pt_fuzz_check(sl.status >= 100 && sl.status <= 599);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  sv[2], hold;
    size_t               pos, out, piece, rounds, idle;
    ssize_t              n;
    uint32_t             seed;
    pt_connection_t     *c;
    struct sockaddr_in  *sin;

    static int  ready;

    if (ready == 0) {
        if (pt_fuzz_init() != PT_OK) {
            fprintf(stderr, "fuzz_http_request: cannot set up\n");
            abort();
        }
        ready = 1;
    }

    if (size < 1) {
        return 0;
    }

    seed = 0x2545f491u ^ data[0];
    hold = data[0] & 0x80;
    data++;
    size--;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   sv) != 0)
    {
        abort();
    }

    pt_time_update();

    /* What accepting a client does (pt_listen.c). */
    c = pt_get_connection(sv[0]);
    pt_fuzz_check(c != NULL);

    c->pool = pt_pool_create(1024);
    pt_fuzz_check(c->pool != NULL);

    c->client = 1;
    c->write->ready = 1;
    pt_connections_active++;

    sin = (struct sockaddr_in *) &c->sockaddr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(40000);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->socklen = sizeof(struct sockaddr_in);
    pt_str_set(&c->addr_text, "127.0.0.1");
    c->listening = pt_fuzz_cyc->listening.elts;

    pt_http_init_connection(c);

    pos = 0;
    out = 0;
    idle = 0;

    for (rounds = 0; c->fd != -1 && rounds < PT_FUZZ_ROUNDS; rounds++) {

        if (pos < size) {
            piece = pt_fuzz_piece(&seed);      /* pt_min() evaluates twice */
            piece = pt_min(piece, size - pos);
            n = write(sv[1], data + pos, piece);
            if (n > 0) {
                pos += (size_t) n;
            }

        } else if (idle == (hold ? 2 : 0)) {
            (void) shutdown(sv[1], SHUT_WR);
            idle++;

        } else {
            /* Nothing more will come: let the timers run out. */
            pt_current_msec += 3600 * 1000;
            pt_timer_expire();
            idle++;
        }

        if (c->fd != -1) {
            c->read->ready = 1;
            c->read->handler(c->read);
        }

        pt_event_process_posted();
        pt_fuzz_drain(sv[1], &out);

        if (c->fd != -1) {
            c->write->ready = 1;
            c->write->handler(c->write);
            pt_event_process_posted();
            pt_fuzz_drain(sv[1], &out);
        }
    }

    /* Every state ends: by the client's close or by a timer. */
    pt_fuzz_check(c->fd == -1);
    pt_fuzz_check(pt_connections_active == 0);
    pt_fuzz_check(pt_http_head_blocks.nused == 0);
    pt_fuzz_check(pt_timer_count() == pt_fuzz_timers);

    close(sv[1]);

    /* PT_FUZZ_SHOW=1 replay_http_request FILE shows what a client got. */
    if (getenv("PT_FUZZ_SHOW")) {
        fwrite(pt_fuzz_out, 1, out, stdout);
        printf("\n---- %zu bytes, %zu rounds\n", out, rounds);
    }

    pt_fuzz_check_response(out);

    return 0;
}
