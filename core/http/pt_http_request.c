/*
 * pt_http_request.c: the life of an HTTP/1.1 connection and its requests:
 * read and check the head, run the phases, finish, keep alive or close.
 *
 * Framing rules that guard against request smuggling live here, not in
 * the tokenizer: both Content-Length and Transfer-Encoding, conflicting
 * lengths, a final coding other than chunked, or a missing Host all end
 * with 400 and a closed connection.
 */

#include <sys/socket.h>

#include "pt_http.h"
#include "pt_http2.h"
#include "pt_http_path.h"
#include "pt_core_module.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_HTTP_REQUEST_POOL    4096
#define PT_LINGERING_MSEC       5000
#define PT_LINGERING_IDLE_MSEC  2000

pt_block_cache_t  pt_http_head_blocks;
pt_block_cache_t  pt_http_body_blocks;

static pt_http_header_t  *pt_http_scratch_headers;
static size_t             pt_http_scratch_n;

static void pt_http_conn_read(pt_event_t *rev);
static void pt_http_conn_write(pt_event_t *wev);
static void pt_http_wait_request(pt_connection_t *c);
static int pt_http_preface(pt_connection_t *c);
static pt_http_request_t *pt_http_create_request(pt_connection_t *c);
static void pt_http_read_head(pt_http_request_t *r);
static int pt_http_process_head(pt_http_request_t *r, size_t head_end);
static int pt_http_process_headers(pt_http_request_t *r);
static void pt_http_writer(pt_http_request_t *r);
static void pt_http_request_done(pt_http_request_t *r);
static void pt_http1_block_reading(pt_http_request_t *r);
static int pt_http1_output_started(pt_http_request_t *r);
static void pt_http1_done(pt_http_request_t *r);
static void pt_http1_terminate(pt_http_request_t *r);
static int pt_http1_tunnel_end(pt_http_request_t *r, pt_tunnel_end_t *e);
static void pt_http_discarding(pt_http_request_t *r);
static void pt_http_keepalive(pt_http_request_t *r);
static void pt_http_terminate(pt_http_request_t *r);
static void pt_http_free_request(pt_http_request_t *r);
static void pt_http_close_connection(pt_connection_t *c);
static void pt_http_lingering_handler(pt_event_t *rev);


typedef struct {
    pt_http_head_scan_t   scan;
    unsigned              line_checked:1;
} pt_http_head_state_t;


static const pt_http_proto_t  pt_http1_proto = {
    .name = "HTTP/1.1",
    .send_header = pt_http1_send_header,
    .flush = pt_http1_flush,
    .output_reset = pt_http1_output_reset,
    .output_started = pt_http1_output_started,
    .read_body = pt_http1_read_body,
    .block_reading = pt_http1_block_reading,
    .done = pt_http1_done,
    .terminate = pt_http1_terminate,
    .tunnel_end = pt_http1_tunnel_end,
};


/* Per worker: the buffer caches and the scratch array headers are parsed
 * into before the exact number is copied to the request pool. */
static int
pt_http_worker_buffers(void)
{
    pt_http_main_conf_t  *hmcf;

    if (pt_http_scratch_headers) {
        return PT_OK;
    }

    hmcf = pt_http_main_conf(pt_cycle);

    pt_block_cache_init(&pt_http_head_blocks, hmcf->max_header_size, 256);
    pt_block_cache_init(&pt_http_body_blocks, PT_HTTP_BODY_BUFFER, 64);

    pt_http_scratch_n = (size_t) hmcf->max_headers;
    pt_http_scratch_headers = calloc(pt_http_scratch_n,
                                     sizeof(pt_http_header_t));

    return pt_http_scratch_headers ? PT_OK : PT_ERROR;
}


void
pt_http_init_connection(pt_connection_t *c)
{
    int                    rc;
    pt_http_connection_t  *hc;

    if (pt_http_worker_buffers() != PT_OK) {
        pt_http_close_connection(c);
        return;
    }

    hc = pt_pcalloc(c->pool, sizeof(pt_http_connection_t));
    if (hc == NULL) {
        pt_http_close_connection(c);
        return;
    }

    hc->listen = c->listening->conf;
    c->data = hc;

    if (pt_event_add_conn(c) != PT_OK) {
        pt_http_close_connection(c);
        return;
    }

    rc = pt__http_run_connect(c);

    if (rc != PT_AGAIN) {
        pt__http_connect_done(c, rc);
    }
}


/* The CONNECT phase is over (a TLS handshake, say): wait for requests. */
void
pt__http_connect_done(pt_connection_t *c, int rc)
{
    pt_str_t               alpn;
    pt_http_connection_t  *hc;
    pt_http_main_conf_t   *hmcf;

    if (rc != PT_OK) {
        pt_http_close_connection(c);
        return;
    }

    hc = c->data;
    hmcf = pt_http_main_conf(pt_cycle);

    /* h2 chosen by ALPN: the session starts with the client preface. */
    if (c->ssl && hc->listen->http2) {
        pt_ssl_alpn(c, &alpn);

        if (alpn.len == 2 && memcmp(alpn.data, "h2", 2) == 0) {
            pt_http2_init(c, NULL, 0);
            return;
        }
    }

    c->read->handler = pt_http_conn_read;
    c->write->handler = pt_http_conn_write;

    pt__http_set_idle(c, 1);
    hc->head_start = pt_current_msec;
    pt_timer_add(c->read, hmcf->header_timeout);

    /* The first request may be in already (TLS: read along with the
     * handshake; the edge that announced it is spent). */
    if (c->read->ready) {
        pt_http_wait_request(c);
    }
}


void
pt__http_set_idle(pt_connection_t *c, int idle)
{
    if (c->idle == (unsigned) idle) {
        return;
    }

    c->idle = idle ? 1 : 0;

    if (idle) {
        pt_connections_idle++;
    } else {
        pt_connections_idle--;
    }
}


static void
pt_http_conn_read(pt_event_t *rev)
{
    pt_connection_t       *c;
    pt_http_connection_t  *hc;

    c = rev->data;
    hc = c->data;

    if (hc->request) {
        hc->request->read_event_handler(hc->request);
        return;
    }

    pt_http_wait_request(c);
}


static void
pt_http_conn_write(pt_event_t *wev)
{
    pt_connection_t       *c;
    pt_http_connection_t  *hc;

    c = wev->data;
    hc = c->data;

    if (hc->request) {
        hc->request->write_event_handler(hc->request);
    }
}


static int
pt_http_get_head_buffer(pt_connection_t *c)
{
    char                  *mem;
    pt_http_connection_t  *hc;

    hc = c->data;

    if (hc->buf) {
        return PT_OK;
    }

    mem = pt_block_get(&pt_http_head_blocks);
    if (mem == NULL) {
        return PT_ERROR;
    }

    hc->buf = &hc->buf_desc;
    pt_buf_init(hc->buf, mem, pt_http_head_blocks.size);

    return PT_OK;
}


static void
pt_http_put_head_buffer(pt_connection_t *c)
{
    pt_http_connection_t  *hc;

    hc = c->data;

    if (hc->buf) {
        pt_block_put(&pt_http_head_blocks, hc->buf->start);
        hc->buf = NULL;
    }
}


/* Waiting for the first byte of a request: fresh or kept-alive. */
static void
pt_http_wait_request(pt_connection_t *c)
{
    ssize_t                n;
    pt_event_t            *rev;
    pt_http_request_t     *r;
    pt_http_connection_t  *hc;
    pt_http_main_conf_t   *hmcf;

    rev = c->read;
    hc = c->data;

    if (rev->timedout) {
        /* Nothing was sent: a silent close, as for any idle client. */
        pt_http_close_connection(c);
        return;
    }

    if (hc->buf == NULL || hc->buf->last == hc->buf->pos) {
        /* Draining or short of slots (c->close): an idle keep-alive
         * connection is closed unless its next request is already
         * here, so look even without a readiness event. */
        if (!rev->ready && !c->close) {
            return;
        }

        if (pt_http_get_head_buffer(c) != PT_OK) {
            pt_http_close_connection(c);
            return;
        }

        n = c->recv(c, hc->buf->last, (size_t) (hc->buf->end
                                                 - hc->buf->last));

        if (n == PT_AGAIN) {
            /* An idle connection holds no buffer. */
            pt_http_put_head_buffer(c);

            if (c->close) {
                pt_http_close_connection(c);
            }
            return;
        }

        if (n == 0 || n == PT_ERROR) {
            pt_http_close_connection(c);
            return;
        }

        hc->buf->last += n;
    }

    /* h2c with prior knowledge: the first bytes of the connection tell. */
    if (c->requests == 0 && hc->listen->http2 && pt_http_preface(c)) {
        return;
    }

    /* A request starts: its head must now arrive within header_timeout. */
    if (c->requests > 0) {
        hmcf = pt_http_main_conf(pt_cycle);
        hc->head_start = pt_current_msec;
        pt_timer_add(rev, hmcf->header_timeout);
    }

    pt__http_set_idle(c, 0);
    pt_reusable_connection(c, 0);

    r = pt_http_create_request(c);
    if (r == NULL) {
        pt_http_close_connection(c);
        return;
    }

    pt_http_read_head(r);
}


pt_http_request_t *
pt_http_alloc_request(pt_connection_t *c, pt_http_connection_t *hc,
    const pt_http_proto_t *proto, size_t extra)
{
    pt_pool_t          *pool;
    pt_http_request_t  *r;

    pool = pt_pool_create(PT_HTTP_REQUEST_POOL);
    if (pool == NULL) {
        return NULL;
    }

    r = pt_pcalloc(pool, sizeof(pt_http_request_t) + extra);
    if (r == NULL) {
        goto failed;
    }

    r->pool = pool;
    r->connection = c;
    r->hc = hc;
    r->proto = proto;
    r->hmcf = pt_http_main_conf(pt_cycle);

    r->ctx = pt_pcalloc(pool, pt_modules_n * sizeof(void *));
    if (r->ctx == NULL) {
        goto failed;
    }

    if (pt_array_init(&r->headers_out.headers, pool, 8,
                      sizeof(pt_http_header_t)) != PT_OK)
    {
        goto failed;
    }

    r->headers_in.content_length_n = -1;
    r->headers_out.content_length_n = -1;
    r->upstream_usec = -1;
    r->version = 11;
    r->start_msec = pt_current_msec;
    r->start_usec = pt_monotonic_usec();
    r->bytes_sent_start = c->sent;
    r->read_event_handler = pt_http_block_reading;
    r->write_event_handler = pt_http_block_reading;

    c->requests++;

    return r;

failed:

    pt_pool_destroy(pool);
    return NULL;
}


/* 1 when the connection is (or may still turn out to be) HTTP/2: the
 * bytes so far are the client preface or its start. The head buffer goes
 * back to the cache before HTTP/2 takes over (it may close c). */
static int
pt_http_preface(pt_connection_t *c)
{
    char                  *mem;
    size_t                 len;
    ssize_t                n;
    pt_buf_t              *b;
    pt_http_connection_t  *hc;

    hc = c->data;
    b = hc->buf;

    for ( ;; ) {
        len = (size_t) (b->last - b->pos);

        if (memcmp(b->pos, PT_HTTP2_PREFACE,
                   pt_min(len, PT_HTTP2_PREFACE_LEN)) != 0)
        {
            return 0;
        }

        if (len >= PT_HTTP2_PREFACE_LEN) {
            break;
        }

        if (!c->read->ready) {
            return 1;           /* the rest comes within header_timeout */
        }

        n = c->recv(c, b->last, (size_t) (b->end - b->last));

        if (n == PT_AGAIN) {
            return 1;
        }

        if (n == 0 || n == PT_ERROR) {
            pt_http_close_connection(c);
            return 1;
        }

        b->last += n;
    }

    mem = b->start;
    hc->buf = NULL;

    pt_http2_init(c, b->pos, len);

    pt_block_put(&pt_http_head_blocks, mem);

    return 1;
}


static pt_http_request_t *
pt_http_create_request(pt_connection_t *c)
{
    pt_http_request_t     *r;
    pt_http_connection_t  *hc;

    hc = c->data;

    r = pt_http_alloc_request(c, hc, &pt_http1_proto,
                              sizeof(pt_http_head_state_t));
    if (r == NULL) {
        return NULL;
    }

    r->read_event_handler = pt_http_read_head;
    hc->request = r;

    return r;
}


/* Read until the whole head is in the buffer, then check it. */
static void
pt_http_read_head(pt_http_request_t *r)
{
    int                    rc;
    ssize_t                n;
    pt_buf_t              *b;
    pt_event_t            *rev;
    pt_connection_t       *c;
    pt_http_head_state_t  *hs;

    c = r->connection;
    rev = c->read;
    b = r->hc->buf;
    hs = (pt_http_head_state_t *) (r + 1);

    if (rev->timedout) {
        r->keepalive = 0;
        pt_http_finalize(r, 408);
        return;
    }

    for ( ;; ) {
        rc = pt_http_scan_head(&hs->scan, b->pos, (size_t) (b->last - b->pos));

        if (rc == PT_OK) {
            break;
        }

        /* A request line that can never be valid (HTTP/0.9's "GET /",
         * say) is answered now: its client waits for us, and would
         * otherwise hold the connection until header_timeout. */
        if (hs->scan.line_end && !hs->line_checked) {
            hs->line_checked = 1;
            rc = pt_http_check_request_line(b->pos, &hs->scan);

            if (rc != PT_OK) {
                pt_timer_del(rev);
                r->keepalive = 0;
                pt_http_finalize(r, rc);
                return;
            }
        }

        if (b->last == b->end) {
            r->keepalive = 0;
            pt_http_finalize(r, hs->scan.line_end == 0 ? 414 : 431);
            return;
        }

        if (!rev->ready) {
            return;
        }

        n = c->recv(c, b->last, (size_t) (b->end - b->last));

        if (n == PT_AGAIN) {
            return;
        }

        if (n == 0 || n == PT_ERROR) {
            /* The client gave up half-way through its head. */
            r->client_aborted = 1;
            pt_http_terminate(r);
            return;
        }

        b->last += n;
    }

    pt_timer_del(rev);

    rc = pt_http_process_head(r, hs->scan.head_end);

    if (rc != PT_OK) {
        r->keepalive = 0;
        pt_http_finalize(r, rc);
        return;
    }

    r->read_event_handler = pt_http_block_reading;
    r->write_event_handler = pt_http_block_reading;

    pt_http_run_phases(r);
}


static int
pt_http_process_head(pt_http_request_t *r, size_t head_end)
{
    int                    rc;
    size_t                 n, len, under;
    char                  *path;
    pt_buf_t              *b;
    pt_http_head_state_t  *hs;

    b = r->hc->buf;
    hs = (pt_http_head_state_t *) (r + 1);

    n = pt_http_scratch_n;

    rc = pt_http_parse_request_head(b->pos, &hs->scan, &r->line,
                                    pt_http_scratch_headers, &n);

    /* Whatever the outcome, the head is consumed: pipelined bytes and the
     * body start right after it. */
    b->pos += head_end;

    if (rc != PT_OK) {
        return rc;
    }

    r->version = r->line.version;
    r->method = r->line.method;
    r->method_name = r->line.method_name;
    r->query = r->line.query;
    r->has_query = r->line.has_query;

    if (pt_array_init(&r->headers_in.headers, r->pool, n ? n : 1,
                      sizeof(pt_http_header_t)) != PT_OK)
    {
        return PT_ERROR;
    }

    /* Fields with '_' go before anything (routing included) sees them;
     * the scratch array keeps their names for the log below. */
    under = pt__http_copy_fields(r, pt_http_scratch_headers, n);

    if (r->line.form == PT_HTTP_FORM_ORIGIN
        || r->line.form == PT_HTTP_FORM_ABSOLUTE)
    {
        len = r->line.path.len;
        path = pt_pnalloc(r->pool, len + 1);
        if (path == NULL) {
            return PT_ERROR;
        }

        if (pt_http_normalize_path(r->line.path.data, len, path, &len)
            != PT_OK)
        {
            return 400;
        }

        path[len] = '\0';
        r->path.data = path;
        r->path.len = len;

    } else if (r->method == PT_HTTP_CONNECT) {
        return 501;

    } else {
        r->path = r->line.path;     /* "*" of OPTIONS */
    }

    rc = pt_http_process_headers(r);

    if (rc == PT_OK && under) {
        rc = pt__http_underscores(r, pt_http_scratch_headers, n);
    }

    return rc;
}


int
pt__http_host_valid(const char *h, size_t len, pt_str_t *host,
    pt_pool_t *pool)
{
    size_t  i, end;

    if (len == 0) {
        return 0;
    }

    end = len;

    if (h[0] == '[') {
        for (i = 1; i < len && h[i] != ']'; i++) {
            if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')
                  || (h[i] >= 'A' && h[i] <= 'F') || h[i] == ':'
                  || h[i] == '.'))
            {
                return 0;
            }
        }

        if (i == len) {
            return 0;
        }

        end = i + 1;

    } else {
        for (i = 0; i < len && h[i] != ':'; i++) {
            if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'z')
                  || (h[i] >= 'A' && h[i] <= 'Z') || h[i] == '-'
                  || h[i] == '.' || h[i] == '_'))
            {
                return 0;
            }
        }

        end = i;
    }

    if (end < len) {
        if (h[end] != ':') {
            return 0;
        }

        for (i = end + 1; i < len; i++) {
            if (h[i] < '0' || h[i] > '9') {
                return 0;
            }
        }

        if (len - end - 1 > 5) {
            return 0;
        }
    }

    /* A trailing dot names the same host. */
    if (end > 1 && h[end - 1] == '.') {
        end--;
    }

    host->data = pt_pnalloc(pool, end + 1);
    if (host->data == NULL) {
        return 0;
    }

    pt_strlow(host->data, h, end);
    host->data[end] = '\0';
    host->len = end;

    return 1;
}


/* True when a coding other than the last of a Transfer-Encoding list is
 * chunked: chunked applied twice is malformed (RFC 9112 6.1), not a coding
 * we merely do not implement. */
static int
pt_http_te_chunked_twice(const pt_str_t *te)
{
    pt_str_t     item;
    const char  *p, *end, *comma;

    p = te->data;
    end = te->data + te->len;

    for ( ;; ) {
        comma = memchr(p, ',', (size_t) (end - p));
        if (comma == NULL) {
            return 0;       /* that was the last coding */
        }

        item.data = (char *) p;
        item.len = (size_t) (comma - p);

        while (item.len && (item.data[0] == ' ' || item.data[0] == '\t')) {
            item.data++;
            item.len--;
        }

        while (item.len && (item.data[item.len - 1] == ' '
                            || item.data[item.len - 1] == '\t'))
        {
            item.len--;
        }

        if (pt_str_caseeq(&item, "chunked")) {
            return 1;
        }

        p = comma + 1;
    }
}


/* True when the last coding of a Transfer-Encoding list is chunked. */
static int
pt_http_te_ends_chunked(const pt_str_t *te)
{
    size_t       len;
    pt_str_t     last;
    const char  *end;

    end = te->data + te->len;

    while (end > te->data && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }

    len = (size_t) (end - te->data);

    last.data = (char *) end - 7;
    last.len = 7;

    return len >= 7 && pt_str_caseeq(&last, "chunked")
           && (len == 7 || end[-8] == ',' || end[-8] == ' '
               || end[-8] == '\t');
}


/*
 * The request fields the core keeps a pointer to, each with what to check
 * when it arrives. One table lookup per field replaces a switch on names;
 * lengths are compared first, so most fields cost a few integer compares.
 */

typedef int (*pt_http_header_handler_pt)(pt_http_request_t *r,
    pt_http_header_t *h, size_t offset);

typedef struct {
    pt_str_t                    name;     /* lower case                  */
    size_t                      offset;   /* its pointer in headers_in   */
    pt_http_header_handler_pt   handler;
} pt_http_known_header_t;

#define pt_http_known_field(r, offset) \
    (*(pt_http_header_t **) ((char *) &(r)->headers_in + (offset)))

static int pt_http_header_set(pt_http_request_t *r, pt_http_header_t *h,
    size_t offset);
static int pt_http_header_unique(pt_http_request_t *r, pt_http_header_t *h,
    size_t offset);
static int pt_http_header_content_length(pt_http_request_t *r,
    pt_http_header_t *h, size_t offset);
static int pt_http_header_connection(pt_http_request_t *r,
    pt_http_header_t *h, size_t offset);

static const pt_http_known_header_t  pt_http_known_headers[] = {
    { pt_string("host"),
      offsetof(pt_http_headers_in_t, host), pt_http_header_unique },
    { pt_string("content-length"),
      offsetof(pt_http_headers_in_t, content_length),
      pt_http_header_content_length },
    { pt_string("transfer-encoding"),
      offsetof(pt_http_headers_in_t, transfer_encoding),
      pt_http_header_unique },
    { pt_string("connection"),
      offsetof(pt_http_headers_in_t, connection), pt_http_header_connection },
    { pt_string("expect"),
      offsetof(pt_http_headers_in_t, expect), pt_http_header_set },
    { pt_string("upgrade"),
      offsetof(pt_http_headers_in_t, upgrade), pt_http_header_set },
    { pt_string("te"),
      offsetof(pt_http_headers_in_t, te), pt_http_header_set },
    { pt_string("x-request-id"),
      offsetof(pt_http_headers_in_t, x_request_id), pt_http_header_set },
    { pt_string("x-forwarded-for"),
      offsetof(pt_http_headers_in_t, x_forwarded_for), pt_http_header_set },
    { pt_string("user-agent"),
      offsetof(pt_http_headers_in_t, user_agent), pt_http_header_set },
    { pt_string("referer"),
      offsetof(pt_http_headers_in_t, referer), pt_http_header_set },
};


/* The last one wins, as the switch this replaces did. */
static int
pt_http_header_set(pt_http_request_t *r, pt_http_header_t *h, size_t offset)
{
    pt_http_known_field(r, offset) = h;

    return PT_OK;
}


/* Host and Transfer-Encoding twice could be read differently upstream. */
static int
pt_http_header_unique(pt_http_request_t *r, pt_http_header_t *h,
    size_t offset)
{
    if (pt_http_known_field(r, offset) != NULL) {
        return 400;
    }

    pt_http_known_field(r, offset) = h;

    return PT_OK;
}


/* Several equal lengths are one; differing ones are 400 (RFC 9112 6.3). */
static int
pt_http_header_content_length(pt_http_request_t *r, pt_http_header_t *h,
    size_t offset)
{
    int64_t                v;
    pt_http_headers_in_t  *in;

    in = &r->headers_in;
    v = pt_http_parse_content_length(&h->value);

    if (v < 0 || (in->content_length && v != in->content_length_n)) {
        return 400;
    }

    in->content_length_n = v;
    pt_http_known_field(r, offset) = h;

    return PT_OK;
}


/* Several Connection lines form one list. */
static int
pt_http_header_connection(pt_http_request_t *r, pt_http_header_t *h,
    size_t offset)
{
    pt_http_headers_in_t  *in;

    in = &r->headers_in;
    in->conn_close |= pt_http_list_has(&h->value, "close", 5);
    in->conn_keepalive |= pt_http_list_has(&h->value, "keep-alive", 10);
    pt_http_known_field(r, offset) = h;

    return PT_OK;
}


/* Point headers_in at the fields the core knows, checking each: Host and
 * Transfer-Encoding at most once, Content-Lengths that agree. */
int
pt__http_index_headers(pt_http_request_t *r)
{
    int                            rc;
    size_t                         i, k;
    pt_http_header_t              *h;
    pt_http_headers_in_t          *in;
    const pt_http_known_header_t  *kh;

    in = &r->headers_in;
    h = in->headers.elts;

    for (i = 0; i < in->headers.nelts; i++) {
        for (k = 0; k < pt_nelems(pt_http_known_headers); k++) {
            kh = &pt_http_known_headers[k];

            if (pt_strcaseeq(&h[i].name, kh->name.data, kh->name.len)) {
                rc = kh->handler(r, &h[i], kh->offset);
                if (rc != PT_OK) {
                    return rc;
                }
                break;
            }
        }
    }

    return PT_OK;
}


pt_http_header_t *
pt_http_header_in_add(pt_http_request_t *r, const pt_str_t *name,
    const pt_str_t *value)
{
    size_t                 k;
    pt_http_header_t      *h, *old, **known;
    pt_http_headers_in_t  *in;

    in = &r->headers_in;
    old = in->headers.elts;

    h = pt_array_push(&in->headers);
    if (h == NULL) {
        return NULL;
    }

    /* A push that grew the array moved every field: the core's pointers
     * to the known ones move with them. */
    if (in->headers.elts != old) {
        for (k = 0; k < pt_nelems(pt_http_known_headers); k++) {
            known = &pt_http_known_field(r, pt_http_known_headers[k].offset);

            if (*known) {
                *known = (pt_http_header_t *) in->headers.elts
                         + (*known - old);
            }
        }
    }

    h->name = *name;
    h->value = *value;

    for (k = 0; k < pt_nelems(pt_http_known_headers); k++) {
        known = &pt_http_known_field(r, pt_http_known_headers[k].offset);

        if (*known == NULL
            && pt_strcaseeq(name, pt_http_known_headers[k].name.data,
                            pt_http_known_headers[k].name.len))
        {
            *known = h;
        }
    }

    return h;
}


void
pt_http_header_in_remove(pt_http_request_t *r, const char *name,
    size_t nlen)
{
    size_t             i, k;
    pt_http_header_t  *h, **known;

    h = r->headers_in.headers.elts;

    for (i = 0; i < r->headers_in.headers.nelts; i++) {
        if (pt_strcaseeq(&h[i].name, name, nlen)) {
            h[i].name.len = 0;
        }
    }

    for (k = 0; k < pt_nelems(pt_http_known_headers); k++) {
        known = &pt_http_known_field(r, pt_http_known_headers[k].offset);

        if (*known && (*known)->name.len == 0) {
            *known = NULL;
        }
    }
}


static int
pt_http_process_headers(pt_http_request_t *r)
{
    int                            rc;
    pt_str_t                      *te;
    pt_http_headers_in_t          *in;

    in = &r->headers_in;

    rc = pt__http_index_headers(r);
    if (rc != PT_OK) {
        return rc;
    }

    /* Host: exactly one in HTTP/1.1; absolute-form's authority wins. */
    if (in->host == NULL && r->version == 11) {
        return 400;
    }

    if (r->line.authority.len) {
        if (!pt__http_host_valid(r->line.authority.data,
                                r->line.authority.len, &r->host, r->pool))
        {
            return 400;
        }

    } else if (in->host
               && !pt__http_host_valid(in->host->value.data,
                                      in->host->value.len, &r->host,
                                      r->pool))
    {
        return 400;
    }

    if (in->transfer_encoding) {
        /* Both framings at once is the classic smuggling vector; so is a
         * chunked body on a 1.0 request. */
        if (in->content_length || r->version == 10) {
            return 400;
        }

        te = &in->transfer_encoding->value;

        if (pt_str_caseeq(te, "chunked")) {
            in->chunked = 1;

        } else if (pt_http_te_ends_chunked(te)) {
            /* another coding under chunked: not ours to undo, unless it is
             * chunked again */
            return pt_http_te_chunked_twice(te) ? 400 : 501;

        } else {
            return 400;    /* the final coding is not chunked */
        }

        in->content_length_n = -1;
    }

    if (in->content_length_n > 0
        && (uint64_t) in->content_length_n
           > (uint64_t) r->hmcf->max_body_size)
    {
        return 413;
    }

    r->keepalive = (r->version == 11) ? !in->conn_close
                                      : (in->conn_keepalive
                                         && !in->conn_close);

    if (in->expect) {
        if (pt_str_caseeq(&in->expect->value, "100-continue")) {
            r->expect_continue = (r->version == 11);
        } else {
            return 417;
        }
    }

    r->body.rest = in->chunked ? -1
                   : (in->content_length_n > 0 ? in->content_length_n : 0);
    r->body.done = !in->chunked && in->content_length_n <= 0;

    return PT_OK;
}


/* 1 when a field name holds '_' (see limits.underscore_headers). */
static int
pt_http_name_has_underscore(const pt_str_t *name)
{
    return memchr(name->data, '_', name->len) != NULL;
}


/* Copy the parsed fields to the request, leaving out those whose name
 * holds '_' unless they are allowed; returns how many were left out. */
size_t
pt__http_copy_fields(pt_http_request_t *r, const pt_http_header_t *from,
    size_t n)
{
    size_t             i, left;
    pt_http_header_t  *to;

    to = r->headers_in.headers.elts;
    left = 0;

    for (i = 0; i < n; i++) {
        if (r->hmcf->underscore_headers != PT_HTTP_UNDERSCORE_ALLOW
            && pt_http_name_has_underscore(&from[i].name))
        {
            left++;
            continue;
        }

        *to++ = from[i];
    }

    r->headers_in.headers.nelts = n - left;

    return left;
}


/* Say which fields with '_' were dropped (or refused), once the request
 * id is known so the line can be matched with the access log. The names
 * are tokens (the parser checked), safe to log as they are. */
int
pt__http_underscores(pt_http_request_t *r, const pt_http_header_t *from,
    size_t n)
{
    int      reject;
    char     names[512], *p, *end;
    size_t   i, sep;

    reject = (r->hmcf->underscore_headers == PT_HTTP_UNDERSCORE_REJECT);

    if (!pt_log_enabled(NULL, PT_LOG_INFO)) {
        return reject ? 400 : PT_OK;
    }

    if (pt_http_request_id(r) != PT_OK) {
        return PT_ERROR;
    }

    p = names;
    end = names + sizeof(names) - sizeof(", ...");

    for (i = 0; i < n; i++) {
        if (!pt_http_name_has_underscore(&from[i].name)) {
            continue;
        }

        sep = (p > names) ? 2 : 0;

        /* p never passes end, which leaves room for ", ..." */
        if ((size_t) (end - p) < sep + from[i].name.len) {
            p = sep ? pt_cpystr(p, ", ...") : pt_cpystr(p, "...");
            break;
        }

        if (sep) {
            p = pt_cpystr(p, ", ");
        }

        p = pt_cpymem(p, from[i].name.data, from[i].name.len);
    }

    pt_http_log_request(r, PT_LOG_INFO,
                        "%s header fields with \"_\" in the name: %.*s",
                        reject ? "refused" : "dropped",
                        (int) (p - names), names);

    return reject ? 400 : PT_OK;
}


void
pt_http_block_reading(pt_http_request_t *r)
{
    r->proto->block_reading(r);
}


static void
pt_http1_block_reading(pt_http_request_t *r)
{
    char              c;
    ssize_t           n;
    pt_event_t       *rev;
    pt_connection_t  *conn;

    conn = r->connection;
    rev = conn->read;

    /* Only a closed client matters while the response is produced; a
     * pipelined request stays in the socket for later. */
    if (!rev->ready || !rev->eof || r->response_done) {
        return;
    }

    n = recv(conn->fd, &c, 1, MSG_PEEK);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        r->client_aborted = 1;
        pt_http_finalize(r, PT_ERROR);
    }
}


void
pt_http_finalize(pt_http_request_t *r, int rc)
{
    if (rc == PT_AGAIN || rc == PT_DONE) {
        return;
    }

    if (rc == PT_ERROR && (r->client_aborted || r->connection->error)) {
        pt_http_terminate(r);
        return;
    }

    if (rc >= 300 || rc == PT_ERROR) {
        if (r->header_sent) {
            /* Too late for a status: cut the connection so the client
             * sees the response is incomplete. */
            r->error = 1;
            pt_http_terminate(r);
            return;
        }

        rc = pt_http_send_error(r, rc == PT_ERROR ? 500 : (unsigned) rc);

        if (rc == PT_ERROR) {
            pt_http_terminate(r);
            return;
        }
    }

    r->response_done = 1;

    if (r->out) {
        r->write_event_handler = pt_http_writer;
        r->read_event_handler = pt_http_block_reading;
        return;
    }

    pt_http_request_done(r);
}


static void
pt_http_writer(pt_http_request_t *r)
{
    int  rc;

    if (r->connection->write->timedout) {
        r->error = 1;
        pt_http_log_request(r, PT_LOG_INFO,
                            "client timed out receiving the response");
        pt_http_terminate(r);
        return;
    }

    rc = pt_http_flush(r);

    if (rc == PT_AGAIN) {
        return;
    }

    if (rc == PT_ERROR) {
        pt_http_terminate(r);
        return;
    }

    pt_http_request_done(r);
}


static void
pt_http_request_done(pt_http_request_t *r)
{
    pt__http_request_end(r);
    r->proto->done(r);
}


void
pt__http_request_end(pt_http_request_t *r)
{
    pt__http_run_log(r);

    if (pt_proc_self && !r->counted) {
        r->counted = 1;
        pt_proc_self->requests++;
    }
}


/* After a whole response: keep alive (draining the rest of the body
 * first), or close. */
static void
pt_http1_done(pt_http_request_t *r)
{
    int               rc;
    pt_connection_t  *c;

    c = r->connection;

    if (!r->keepalive || c->close || pt_exiting || r->error) {
        if (!r->body.done) {
            pt_http_free_request(r);
            pt_http_put_head_buffer(c);
            pt__http_lingering_close(c);
            return;
        }

        pt_http_free_request(r);
        pt_http_close_connection(c);
        return;
    }

    if (!r->body.done) {
        rc = pt_http_discard_body(r);

        if (rc == PT_AGAIN) {
            r->read_event_handler = pt_http_discarding;
            r->write_event_handler = pt_http_block_reading;
            return;
        }

        if (rc != PT_OK) {
            pt_http_free_request(r);
            pt_http_close_connection(c);
            return;
        }
    }

    pt_http_keepalive(r);
}


static void
pt_http_discarding(pt_http_request_t *r)
{
    int               rc;
    pt_connection_t  *c;

    c = r->connection;

    if (c->read->timedout) {
        pt_http_free_request(r);
        pt_http_close_connection(c);
        return;
    }

    rc = pt_http_discard_body(r);

    if (rc == PT_AGAIN) {
        return;
    }

    if (rc != PT_OK) {
        pt_http_free_request(r);
        pt_http_close_connection(c);
        return;
    }

    pt_http_keepalive(r);
}


/* Keep the connection for the next request; bytes already read beyond
 * this request (pipelining) start it at once. */
static void
pt_http_keepalive(pt_http_request_t *r)
{
    size_t                 left;
    pt_buf_t              *b, *raw;
    pt_connection_t       *c;
    pt_http_connection_t  *hc;
    pt_http_main_conf_t   *hmcf;

    c = r->connection;
    hc = r->hc;
    b = hc->buf;
    raw = r->body.raw;
    hmcf = r->hmcf;

    if (raw && raw->pos < raw->last) {
        /* The chunked reader read past its body into its own buffer. */
        left = (size_t) (raw->last - raw->pos);

        if (b == NULL || left > (size_t) (b->end - b->start)) {
            pt_http_free_request(r);
            pt_http_close_connection(c);
            return;
        }

        memcpy(b->start, raw->pos, left);
        b->pos = b->start;
        b->last = b->start + left;

    } else if (b && b->pos < b->last) {
        left = (size_t) (b->last - b->pos);
        memmove(b->start, b->pos, left);
        b->pos = b->start;
        b->last = b->start + left;

    } else {
        pt_http_put_head_buffer(c);
    }

    pt_http_free_request(r);

    pt_timer_del(c->write);

    if (hc->buf && hc->buf->pos < hc->buf->last) {
        /* A pipelined request: go straight on with it. */
        pt_http_wait_request(c);
        return;
    }

    pt__http_set_idle(c, 1);
    pt_reusable_connection(c, 1);
    pt_timer_add(c->read, hmcf->idle_timeout);

    if (c->read->ready) {
        pt_http_wait_request(c);
    }
}


static void
pt_http_terminate(pt_http_request_t *r)
{
    r->error = 1;
    pt__http_request_end(r);
    r->proto->terminate(r);
}


static void
pt_http1_terminate(pt_http_request_t *r)
{
    pt_connection_t  *c;

    c = r->connection;

    pt_http_free_request(r);
    pt_http_close_connection(c);
}


static int
pt_http1_output_started(pt_http_request_t *r)
{
    return r->connection->sent != r->bytes_sent_start;
}


static void
pt_http_free_request(pt_http_request_t *r)
{
    pt_pool_t  *pool;

    r->hc->request = NULL;
    pool = r->pool;

    /* Cleanups (an upstream connection, say) run here. */
    pt_pool_destroy(pool);
}


static void
pt_http_close_connection(pt_connection_t *c)
{
    pt_pool_t             *pool;
    pt_http_connection_t  *hc;

    hc = c->data;

    if (hc && hc->request) {
        pt_http_free_request(hc->request);
    }

    if (hc) {
        pt_http_put_head_buffer(c);
    }

    pool = c->pool;
    pt_close_connection(c);
    pt_pool_destroy(pool);
}


/* Closing while the client may still be sending (an error before its body
 * was read, an HTTP/2 WINDOW_UPDATE on its way) would make the kernel
 * answer with RST, which can destroy the response before the client reads
 * it. Shut our side and drain a while. c->data is the caller's no more. */
void
pt__http_lingering_close(pt_connection_t *c)
{
    pt_pool_t  *pool;
    pt_msec_t  *deadline;

    deadline = pt_palloc(c->pool, sizeof(pt_msec_t));

    if (deadline == NULL || shutdown(c->fd, SHUT_WR) < 0) {
        pool = c->pool;
        pt_close_connection(c);
        pt_pool_destroy(pool);
        return;
    }

    *deadline = pt_current_msec + PT_LINGERING_MSEC;

    c->data = deadline;
    c->read->handler = pt_http_lingering_handler;
    c->write->handler = pt_http_lingering_handler;

    pt_timer_add(c->read, PT_LINGERING_IDLE_MSEC);

    pt_http_lingering_handler(c->read);
}


static void
pt_http_lingering_handler(pt_event_t *ev)
{
    char              buf[4096];
    ssize_t           n;
    pt_pool_t        *pool;
    pt_msec_t        *deadline;
    pt_connection_t  *c;

    c = ev->data;
    deadline = c->data;

    if (ev->write) {
        return;
    }

    if (ev->timedout || pt_current_msec >= *deadline) {
        goto close;
    }

    do {
        n = c->recv(c, buf, sizeof(buf));

        if (n == 0 || n == PT_ERROR) {
            goto close;
        }
    } while (n > 0);

    pt_timer_add(c->read, pt_min(PT_LINGERING_IDLE_MSEC,
                                 *deadline - pt_current_msec));

    return;

close:

    pool = c->pool;
    pt_close_connection(c);
    pt_pool_destroy(pool);
}


/* The client's bytes read with the head but past it (a client that did
 * not wait for the 101) go through the tunnel first. */
static ssize_t
pt_http_tunnel_recv(pt_tunnel_end_t *e, char *buf, size_t size)
{
    size_t                 n;
    pt_buf_t              *b;
    pt_connection_t       *c;
    pt_http_connection_t  *hc;

    c = e->data;
    hc = c->data;
    b = hc->buf;

    if (b && b->pos < b->last) {
        n = pt_min(size, pt_buf_size(b));
        memcpy(buf, b->pos, n);
        b->pos += n;

        if (b->pos == b->last) {
            pt_http_put_head_buffer(c);
        }

        return (ssize_t) n;
    }

    return pt_tunnel_conn_recv(e, buf, size);
}


int
pt_http_tunnel_end(pt_http_request_t *r, pt_tunnel_end_t *e)
{
    if (r->out || !r->body.done) {
        return PT_ERROR;
    }

    return r->proto->tunnel_end(r, e);
}


static int
pt_http1_tunnel_end(pt_http_request_t *r, pt_tunnel_end_t *e)
{
    pt_connection_t  *c;

    c = r->connection;

    r->keepalive = 0;
    pt_timer_del(c->read);
    pt_timer_del(c->write);

    /* A tunnel holds no head buffer once its bytes are passed on. */
    if (r->hc->buf && r->hc->buf->pos == r->hc->buf->last) {
        pt_http_put_head_buffer(c);
    }

    pt_tunnel_conn_end(e, c, "client");
    e->recv = pt_http_tunnel_recv;

    return PT_OK;
}


void
pt_http_log_request(pt_http_request_t *r, int level, const char *fmt, ...)
{
    char     msg[1024];
    va_list  args;

    if (!pt_log_enabled(NULL, level)) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    pt_log_error(level, NULL, 0,
                 "%s, client: %.*s, request: \"%.*s %.*s\", request_id: %.*s",
                 msg,
                 (int) r->connection->addr_text.len,
                 r->connection->addr_text.data,
                 (int) r->method_name.len, r->method_name.data,
                 (int) r->line.target.len, r->line.target.data,
                 (int) r->request_id.len, r->request_id.data);
}
