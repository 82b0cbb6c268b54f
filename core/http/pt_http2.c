/*
 * pt_http2.c: an HTTP/2 connection: the nghttp2 session, the socket, the
 * limits against abuse, idle and drain (see pt_http2.h).
 *
 * Reading feeds every byte to nghttp2_session_mem_recv(); its callbacks
 * open streams, collect fields and DATA, and post the work. Writing runs
 * nghttp2_session_send(), whose frames are gathered in one output block
 * and written with one writev() per round, after the requests of the
 * round had their say (the connection's write event is posted, so it runs
 * after them).
 *
 * What nghttp2 1.52 (Debian 12, with the CVE fixes backported) does and
 * what is ours:
 *  - CONTINUATION floods (CVE-2024-27316 / CVE-2024-28182): nghttp2 closes
 *    the session after PT_HTTP2_MAX_CONTINUATIONS; we bound the whole
 *    block by header_timeout as well.
 *  - HPACK bombs: nghttp2 decodes, we count the decoded list (RFC 9113
 *    6.5.2, name + value + 32 per field) and stop keeping fields past
 *    limits.http2_max_header_list_size; the stream gets 431.
 *  - Rapid reset (CVE-2023-44487): nghttp2's token bucket (1000, 33/s) is
 *    the backstop; ours counts the client's RST_STREAM and the resets its
 *    errors cause (limits.http2_reset_rate) and ends the connection with
 *    GOAWAY ENHANCE_YOUR_CALM. Streams start only after the whole read
 *    was processed, so a HEADERS cancelled in the same read costs no
 *    routing and no upstream connection.
 *  - SETTINGS and PING floods: nghttp2 caps queued ACKs (a client that
 *    does not read, PT_HTTP2_MAX_OUTBOUND_ACK) and SETTINGS entries;
 *    ours counts PING, SETTINGS, PRIORITY and empty DATA frames
 *    (limits.http2_control_rate), ENHANCE_YOUR_CALM past it.
 *  - Zero-window stalls: a stream that cannot send for send_timeout is
 *    reset; a connection with no stream closes at idle_timeout, one whose
 *    socket takes nothing for send_timeout is closed.
 */

#include "pt_http2.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_HTTP2_READ_ROUNDS   8        /* reads per event, for fairness */

static nghttp2_session_callbacks  *pt_http2_cbs;
static nghttp2_option             *pt_http2_opt;
const nghttp2_session_callbacks   *pt__http2_callbacks;

static char  pt_http2_in[16384];

static void pt_http2_read_handler(pt_event_t *rev);
static void pt_http2_write_handler(pt_event_t *wev);
static int pt_http2_write_out(pt_http2_connection_t *h2c);
static void pt_http2_check(pt_http2_connection_t *h2c);
static void pt_http2_close(pt_http2_connection_t *h2c, int linger);
static void pt_http2_fatal(pt_http2_connection_t *h2c, int rv);
static void pt_http2_goaway(pt_http2_connection_t *h2c);
static void pt_http2_calm(pt_http2_connection_t *h2c, const char *what);
static int pt_http2_over(pt_msec_t *since, uint64_t *count,
    const pt_rate_t *rate);

static ssize_t pt_http2_send_cb(nghttp2_session *session,
    const uint8_t *data, size_t length, int flags, void *user_data);
static int pt_http2_begin_frame_cb(nghttp2_session *session,
    const nghttp2_frame_hd *hd, void *user_data);
static int pt_http2_begin_headers_cb(nghttp2_session *session,
    const nghttp2_frame *frame, void *user_data);
static int pt_http2_header_cb(nghttp2_session *session,
    const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data);
static int pt_http2_invalid_header_cb(nghttp2_session *session,
    const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data);
static int pt_http2_frame_recv_cb(nghttp2_session *session,
    const nghttp2_frame *frame, void *user_data);
static int pt_http2_data_chunk_cb(nghttp2_session *session, uint8_t flags,
    int32_t stream_id, const uint8_t *data, size_t len, void *user_data);
static int pt_http2_stream_close_cb(nghttp2_session *session,
    int32_t stream_id, uint32_t error_code, void *user_data);
static int pt_http2_frame_send_cb(nghttp2_session *session,
    const nghttp2_frame *frame, void *user_data);
static int pt_http2_frame_not_send_cb(nghttp2_session *session,
    const nghttp2_frame *frame, int lib_error_code, void *user_data);
static int pt_http2_error_cb(nghttp2_session *session, int lib_error_code,
    const char *msg, size_t len, void *user_data);


/* Once per process: the callbacks and the options every session shares. */
int
pt__http2_callbacks_init(void)
{
    nghttp2_session_callbacks  *cb;

    if (pt_http2_cbs) {
        return PT_OK;
    }

    if (nghttp2_session_callbacks_new(&cb) != 0) {
        return PT_ERROR;
    }

    nghttp2_session_callbacks_set_send_callback(cb, pt_http2_send_cb);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb,
                                                    pt_http2_begin_frame_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
                                                  pt_http2_begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, pt_http2_header_cb);
    nghttp2_session_callbacks_set_on_invalid_header_callback(cb,
                                                 pt_http2_invalid_header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
                                                     pt_http2_frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
                                                     pt_http2_data_chunk_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb,
                                                   pt_http2_stream_close_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb,
                                                     pt_http2_frame_send_cb);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb,
                                                pt_http2_frame_not_send_cb);
    nghttp2_session_callbacks_set_error_callback2(cb, pt_http2_error_cb);

    if (nghttp2_option_new(&pt_http2_opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return PT_ERROR;
    }

    /* The window opens only as the request reads the body. */
    nghttp2_option_set_no_auto_window_update(pt_http2_opt, 1);
    nghttp2_option_set_no_closed_streams(pt_http2_opt, 1);
    nghttp2_option_set_max_outbound_ack(pt_http2_opt,
                                        PT_HTTP2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_settings(pt_http2_opt, 32);
    nghttp2_option_set_max_continuations(pt_http2_opt,
                                         PT_HTTP2_MAX_CONTINUATIONS);

    pt_http2_cbs = cb;
    pt__http2_callbacks = cb;

    return PT_OK;
}


void
pt_http2_init(pt_connection_t *c, const char *data, size_t len)
{
    ssize_t                 n;
    pt_pool_t              *pool;
    pt_http2_connection_t  *h2c;
    pt_http_main_conf_t    *hmcf;
    nghttp2_settings_entry  iv[4];

    hmcf = pt_http_main_conf(pt_cycle);

    h2c = pt_pcalloc(c->pool, sizeof(pt_http2_connection_t));

    if (h2c == NULL || pt__http2_callbacks_init() != PT_OK) {
        goto failed;
    }

    h2c->c = c;
    h2c->hc = c->data;
    h2c->hmcf = hmcf;
    pt_queue_init(&h2c->streams);

    if (nghttp2_session_server_new2(&h2c->session, pt_http2_cbs, h2c,
                                    pt_http2_opt) != 0)
    {
        goto failed;
    }

    iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[0].value = (uint32_t) hmcf->http2_max_concurrent_streams;
    iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
    iv[1].value = PT_HTTP2_STREAM_WINDOW;
    iv[2].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
    iv[2].value = (uint32_t) hmcf->http2_max_header_list_size;
    /* WebSocket over HTTP/2 (RFC 8441): routes without websocket: true
     * answer an extended CONNECT with 501. */
    iv[3].settings_id = NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL;
    iv[3].value = 1;

    if (nghttp2_submit_settings(h2c->session, NGHTTP2_FLAG_NONE, iv, 4) != 0
        || nghttp2_session_set_local_window_size(h2c->session,
                                                 NGHTTP2_FLAG_NONE, 0,
                                                 PT_HTTP2_CONN_WINDOW) != 0)
    {
        goto failed;
    }

    c->data = h2c;
    c->read->handler = pt_http2_read_handler;
    c->write->handler = pt_http2_write_handler;

    /* A drain or a shortage of slots reaches us through the reusable
     * list, busy or not: we answer it with GOAWAY. */
    pt_reusable_connection(c, 1);
    pt_timer_del(c->read);

    h2c->in_session = 1;
    n = nghttp2_session_mem_recv(h2c->session, (const uint8_t *) data, len);
    h2c->in_session = 0;

    if (n < 0) {
        pt_http2_fatal(h2c, (int) n);
        return;
    }

    pt__http2_send(h2c);
    pt_http2_check(h2c);

    if (c->read->ready) {
        pt_post_event(c->read);
    }

    return;

failed:

    if (h2c && h2c->session) {
        nghttp2_session_del(h2c->session);
    }

    pt_log_error(PT_LOG_ERR, NULL, 0, "client %.*s: http2: out of memory",
                 (int) c->addr_text.len, c->addr_text.data);

    pool = c->pool;
    pt_close_connection(c);
    pt_pool_destroy(pool);
}


static void
pt_http2_read_handler(pt_event_t *rev)
{
    int                     rounds;
    ssize_t                 n, rv;
    pt_connection_t        *c;
    pt_http2_connection_t  *h2c;

    c = rev->data;
    h2c = c->data;

    if (rev->timedout) {
        rev->timedout = 0;

        if (h2c->header_block) {
            pt_log_error(PT_LOG_INFO, NULL, 0,
                         "client %.*s: http2: timed out sending a header block",
                         (int) c->addr_text.len, c->addr_text.data);
            pt_http2_close(h2c, 1);
            return;
        }

        if (h2c->nrequests == 0) {
            /* idle_timeout: say goodbye and go. */
            (void) nghttp2_session_terminate_session(h2c->session,
                                                     NGHTTP2_NO_ERROR);
            pt__http2_send(h2c);
            (void) pt_http2_write_out(h2c);
            pt_http2_close(h2c, 1);
            return;
        }
    }

    if ((c->close || pt_exiting) && !h2c->goaway) {
        pt_http2_goaway(h2c);
    }

    for (rounds = 0; rounds < PT_HTTP2_READ_ROUNDS; rounds++) {
        if (!rev->ready || h2c->closing || h2c->calm) {
            break;
        }

        n = c->recv(c, pt_http2_in, sizeof(pt_http2_in));

        if (n == PT_AGAIN) {
            break;
        }

        if (n == 0 || n == PT_ERROR) {
            pt_http2_close(h2c, 0);
            return;
        }

        h2c->in_session = 1;
        rv = nghttp2_session_mem_recv(h2c->session,
                                      (const uint8_t *) pt_http2_in,
                                      (size_t) n);
        h2c->in_session = 0;

        if (rv < 0) {
            pt_http2_fatal(h2c, (int) rv);
            return;
        }
    }

    if (rounds == PT_HTTP2_READ_ROUNDS && rev->ready && !h2c->calm) {
        pt_post_event(rev);     /* the others get their turn first */
    }

    if (pt_exiting && !h2c->goaway) {
        pt_http2_goaway(h2c);
    }

    pt__http2_send(h2c);
    pt_http2_check(h2c);
}


static void
pt_http2_write_handler(pt_event_t *wev)
{
    int                     rc;
    pt_connection_t        *c;
    pt_http2_connection_t  *h2c;

    c = wev->data;
    h2c = c->data;

    if (wev->timedout) {
        wev->timedout = 0;
        pt_log_error(PT_LOG_INFO, NULL, 0,
                     "client %.*s: http2: timed out receiving frames",
                     (int) c->addr_text.len, c->addr_text.data);
        pt_http2_close(h2c, 0);
        return;
    }

    for ( ;; ) {
        rc = pt_http2_write_out(h2c);

        if (rc == PT_ERROR) {
            pt_http2_close(h2c, 0);
            return;
        }

        if (rc == PT_AGAIN || !nghttp2_session_want_write(h2c->session)) {
            break;
        }

        h2c->in_session = 1;
        rc = nghttp2_session_send(h2c->session);
        h2c->in_session = 0;

        if (rc != 0) {
            pt_log_error(PT_LOG_INFO, NULL, 0, "client %.*s: http2: %s",
                         (int) c->addr_text.len, c->addr_text.data,
                         nghttp2_strerror(rc));
            pt_http2_close(h2c, 1);
            return;
        }

        if (h2c->out.pos == h2c->out.last) {
            break;      /* nothing could be sent: flow control */
        }
    }

    pt_http2_check(h2c);
}


void
pt__http2_send(pt_http2_connection_t *h2c)
{
    int  rc;

    if (h2c->closing) {
        return;
    }

    /* Never inside nghttp2: the write event does it after the callback. */
    if (!h2c->in_session) {
        h2c->in_session = 1;
        rc = nghttp2_session_send(h2c->session);
        h2c->in_session = 0;

        if (rc != 0) {
            pt_log_error(PT_LOG_INFO, NULL, 0, "client %.*s: http2: %s",
                         (int) h2c->c->addr_text.len,
                         h2c->c->addr_text.data, nghttp2_strerror(rc));
            h2c->closing = 1;
            pt_post_event(h2c->c->write);
            return;
        }

        if (h2c->out.pos == h2c->out.last) {
            return;
        }
    }

    pt_post_event(h2c->c->write);
}


/* The output block to the socket; PT_OK when it is empty. */
static int
pt_http2_write_out(pt_http2_connection_t *h2c)
{
    pt_chain_t        cl, *rest;
    pt_connection_t  *c;

    c = h2c->c;

    if (h2c->out.pos == h2c->out.last) {
        pt_timer_del(c->write);
        return PT_OK;
    }

    if (!c->write->ready) {
        if (!c->write->timer_set) {
            pt_timer_add(c->write, h2c->hmcf->send_timeout);
        }
        return PT_AGAIN;
    }

    cl.buf = &h2c->out;
    cl.next = NULL;

    rest = c->send_chain(c, &cl, 0);

    if (rest == (pt_chain_t *) PT_ERROR) {
        return PT_ERROR;
    }

    if (rest) {
        /* send_timeout runs between writes that make progress */
        pt_timer_add(c->write, h2c->hmcf->send_timeout);
        return PT_AGAIN;
    }

    h2c->out.pos = h2c->out.start;
    h2c->out.last = h2c->out.start;
    pt_timer_del(c->write);

    return PT_OK;
}


/* After every round: idle bookkeeping, the end of a finished session, and
 * an idle connection gives its output block back. */
static void
pt_http2_check(pt_http2_connection_t *h2c)
{
    pt_connection_t  *c;

    c = h2c->c;

    if (h2c->closing) {
        pt_http2_close(h2c, 1);
        return;
    }

    if (h2c->nrequests == 0) {
        pt__http_set_idle(c, 1);

        if (!h2c->header_block && !c->read->timer_set) {
            pt_timer_add(c->read, h2c->hmcf->idle_timeout);
        }
    }

    /* Done when nghttp2 is (our GOAWAY went out and no stream is open,
     * or it ended the session) and so are our requests; a session ended
     * for abuse does not wait for them. */
    if (!nghttp2_session_want_read(h2c->session)
        && !nghttp2_session_want_write(h2c->session)
        && h2c->out.pos == h2c->out.last
        && (h2c->nrequests == 0 || h2c->calm))
    {
        pt_http2_close(h2c, 1);
        return;
    }

    if (h2c->out.start && h2c->out.pos == h2c->out.last
        && !nghttp2_session_want_write(h2c->session))
    {
        pt_block_put(&pt_http_body_blocks, h2c->out.start);
        h2c->out.start = NULL;
        h2c->out.pos = NULL;
        h2c->out.last = NULL;
        h2c->out.end = NULL;
    }
}


/* linger: our last frames (a GOAWAY, the end of a response) may still be
 * on their way while the client sends; close without a RST that could
 * destroy them. Not when the client is gone or will not read. */
static void
pt_http2_close(pt_http2_connection_t *h2c, int linger)
{
    pt_pool_t          *pool;
    pt_queue_t         *q;
    pt_connection_t    *c;
    pt_http2_stream_t  *st;

    c = h2c->c;
    h2c->closing = 1;

    /* Requests still going are the client's loss: logged, freed. */
    while (!pt_queue_empty(&h2c->streams)) {
        q = pt_queue_head(&h2c->streams);
        st = pt_queue_data(q, pt_http2_stream_t, link);
        pt__http2_stream_abort(st);
    }

    nghttp2_session_del(h2c->session);
    h2c->session = NULL;

    if (h2c->out.pos < h2c->out.last) {
        linger = 0;     /* unsent frames: the client does not read */
    }

    if (h2c->out.start) {
        pt_block_put(&pt_http_body_blocks, h2c->out.start);
        h2c->out.start = NULL;
    }

    pt_timer_del(c->read);
    pt_timer_del(c->write);
    pt_delete_posted_event(c->read);
    pt_delete_posted_event(c->write);

    if (linger && !c->read->eof && !c->error) {
        pt_reusable_connection(c, 0);
        pt__http_lingering_close(c);
        return;
    }

    pool = c->pool;
    pt_close_connection(c);
    pt_pool_destroy(pool);
}


/* nghttp2 gave up on the input: say why in a GOAWAY, as far as the
 * socket takes it at once, and close. */
static void
pt_http2_fatal(pt_http2_connection_t *h2c, int rv)
{
    uint32_t  code;

    pt_log_error(PT_LOG_INFO, NULL, 0, "client %.*s: http2: %s",
                 (int) h2c->c->addr_text.len, h2c->c->addr_text.data,
                 nghttp2_strerror(rv));

    if (rv != NGHTTP2_ERR_NOMEM && rv != NGHTTP2_ERR_CALLBACK_FAILURE) {
        code = (rv == NGHTTP2_ERR_FLOODED
                || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
               ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR;

        (void) nghttp2_session_terminate_session(h2c->session, code);
        pt__http2_send(h2c);
        (void) pt_http2_write_out(h2c);
    }

    /* A flooder does not read: no point waiting for it. */
    pt_http2_close(h2c, rv != NGHTTP2_ERR_FLOODED);
}


/* Drain or a shortage of slots: no new streams; those open finish. */
static void
pt_http2_goaway(pt_http2_connection_t *h2c)
{
    h2c->goaway = 1;

    (void) nghttp2_submit_goaway(h2c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h2c->session),
                          NGHTTP2_NO_ERROR, NULL, 0);
}


static void
pt_http2_calm(pt_http2_connection_t *h2c, const char *what)
{
    pt_connection_t  *c;

    if (h2c->calm) {
        return;
    }

    c = h2c->c;
    h2c->calm = 1;

    pt_log_error(PT_LOG_INFO, NULL, 0,
                 "client %.*s: http2: too many %s, closing the connection",
                 (int) c->addr_text.len, c->addr_text.data, what);

    h2c->goaway = 1;
    (void) nghttp2_session_terminate_session(h2c->session,
                                             NGHTTP2_ENHANCE_YOUR_CALM);
}


static int
pt_http2_over(pt_msec_t *since, uint64_t *count, const pt_rate_t *rate)
{
    if (pt_current_msec - *since >= rate->period) {
        *since = pt_current_msec;
        *count = 0;
    }

    return ++*count > rate->count;
}


void
pt__http2_count_reset(pt_http2_connection_t *h2c)
{
    if (pt_http2_over(&h2c->resets_since, &h2c->resets,
                      &h2c->hmcf->http2_reset_rate))
    {
        pt_http2_calm(h2c, "stream resets");
    }
}


/* nghttp2's frames, gathered for one write. */
static ssize_t
pt_http2_send_cb(nghttp2_session *session, const uint8_t *data,
    size_t length, int flags, void *user_data)
{
    char                   *mem;
    size_t                  room;
    pt_buf_t               *b;
    pt_http2_connection_t  *h2c;

    h2c = user_data;
    b = &h2c->out;

    if (b->start == NULL) {
        mem = pt_block_get(&pt_http_body_blocks);
        if (mem == NULL) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }

        pt_buf_init(b, mem, pt_http_body_blocks.size);
    }

    room = (size_t) (b->end - b->last);

    if (room < length && b->pos < b->last) {
        /* Full: put what we have on the wire and make room. */
        if (pt_http2_write_out(h2c) == PT_ERROR) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }

        if (b->pos > b->start) {
            memmove(b->start, b->pos, (size_t) (b->last - b->pos));
            b->last -= b->pos - b->start;
            b->pos = b->start;
        }

        room = (size_t) (b->end - b->last);
    }

    if (room == 0) {
        return NGHTTP2_ERR_WOULDBLOCK;
    }

    length = pt_min(length, room);
    memcpy(b->last, data, length);
    b->last += length;

    return (ssize_t) length;
}


static int
pt_http2_begin_frame_cb(nghttp2_session *session, const nghttp2_frame_hd *hd,
    void *user_data)
{
    unsigned                open;
    pt_http2_connection_t  *h2c;

    h2c = user_data;

    /* A header block spans HEADERS and CONTINUATION frames up to
     * END_HEADERS; nothing else can come in between. */
    open = (hd->type == NGHTTP2_HEADERS || hd->type == NGHTTP2_CONTINUATION)
           && !(hd->flags & NGHTTP2_FLAG_END_HEADERS);

    if (open && !h2c->header_block) {
        pt_timer_add(h2c->c->read, h2c->hmcf->header_timeout);

    } else if (!open && h2c->header_block) {
        pt_timer_del(h2c->c->read);
    }

    h2c->header_block = open;

    return 0;
}


static int
pt_http2_begin_headers_cb(nghttp2_session *session,
    const nghttp2_frame *frame, void *user_data)
{
    pt_http2_stream_t      *st;
    pt_http2_connection_t  *h2c;

    h2c = user_data;

    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }

    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        st = nghttp2_session_get_stream_user_data(session,
                                                  frame->hd.stream_id);
        if (st) {
            st->trailers = 1;
        }
        return 0;
    }

    st = pt__http2_stream_open(h2c, frame->hd.stream_id);
    if (st == NULL) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }

    if (nghttp2_session_set_stream_user_data(session, frame->hd.stream_id,
                                             st) != 0)
    {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }

    return 0;
}


static int
pt_http2_header_cb(nghttp2_session *session, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *user_data)
{
    pt_http2_stream_t  *st;

    st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

    if (st == NULL || st->request == NULL || st->reset) {
        return 0;
    }

    return pt__http2_stream_header(st, name, namelen, value, valuelen);
}


/* A regular field nghttp2 would drop quietly (a name that is not a
 * token, a value with CR, LF, NUL or edge whitespace): malformed, so the
 * stream is reset (RFC 9113 8.2.1) and nothing of it goes upstream. */
static int
pt_http2_invalid_header_cb(nghttp2_session *session,
    const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    pt_http2_stream_t  *st;

    st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

    if (st) {
        st->reset = 1;
    }

    (void) nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE,
                                     frame->hd.stream_id,
                                     NGHTTP2_PROTOCOL_ERROR);

    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}


static int
pt_http2_frame_recv_cb(nghttp2_session *session, const nghttp2_frame *frame,
    void *user_data)
{
    pt_http2_stream_t      *st;
    pt_http2_connection_t  *h2c;

    h2c = user_data;

    switch (frame->hd.type) {

    case NGHTTP2_HEADERS:
        st = nghttp2_session_get_stream_user_data(session,
                                                  frame->hd.stream_id);
        if (st == NULL || st->request == NULL) {
            break;
        }

        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
                st->in_closed = 1;
            }
            pt__http2_stream_headers_done(st);

        } else if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            pt__http2_stream_in_closed(st);
        }

        break;

    case NGHTTP2_DATA:
        if (frame->hd.length == 0
            && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            && pt_http2_over(&h2c->control_since, &h2c->control,
                             &h2c->hmcf->http2_control_rate))
        {
            pt_http2_calm(h2c, "control frames");
        }

        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            st = nghttp2_session_get_stream_user_data(session,
                                                      frame->hd.stream_id);
            if (st && st->request) {
                pt__http2_stream_in_closed(st);
            }
        }

        break;

    case NGHTTP2_RST_STREAM:
        pt__http2_count_reset(h2c);
        break;

    case NGHTTP2_SETTINGS:
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
            break;
        }
        /* fall through */

    case NGHTTP2_PRIORITY:
        if (pt_http2_over(&h2c->control_since, &h2c->control,
                          &h2c->hmcf->http2_control_rate))
        {
            pt_http2_calm(h2c, "control frames");
        }
        break;

    default:
        break;
    }

    return 0;
}


static int
pt_http2_data_chunk_cb(nghttp2_session *session, uint8_t flags,
    int32_t stream_id, const uint8_t *data, size_t len, void *user_data)
{
    pt_http2_stream_t  *st;

    st = nghttp2_session_get_stream_user_data(session, stream_id);

    if (st == NULL || st->request == NULL) {
        /* Nobody reads it: give the window back at once. */
        (void) nghttp2_session_consume(session, stream_id, len);
        return 0;
    }

    return pt__http2_stream_data(st, data, len);
}


static int
pt_http2_stream_close_cb(nghttp2_session *session, int32_t stream_id,
    uint32_t error_code, void *user_data)
{
    pt_http2_stream_t  *st;

    st = nghttp2_session_get_stream_user_data(session, stream_id);

    if (st) {
        pt__http2_stream_closed(st, error_code);
    }

    return 0;
}


static int
pt_http2_frame_send_cb(nghttp2_session *session, const nghttp2_frame *frame,
    void *user_data)
{
    pt_http2_stream_t      *st;
    pt_http2_connection_t  *h2c;

    h2c = user_data;

    switch (frame->hd.type) {

    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        st = nghttp2_session_get_stream_user_data(session,
                                                  frame->hd.stream_id);
        if (st == NULL) {
            break;
        }

        if (frame->hd.type == NGHTTP2_HEADERS && st->request) {
            /* DATA is counted as it is produced (pt__http2_data_read) */
            st->request->connection->sent += frame->hd.length + 9;
        }

        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            pt__http2_stream_end_sent(st);
        }

        break;

    case NGHTTP2_RST_STREAM:
        /* Resets the client's own errors made us send count as its. */
        switch (frame->rst_stream.error_code) {
        case NGHTTP2_PROTOCOL_ERROR:
        case NGHTTP2_FLOW_CONTROL_ERROR:
        case NGHTTP2_STREAM_CLOSED:
        case NGHTTP2_FRAME_SIZE_ERROR:
        case NGHTTP2_REFUSED_STREAM:
            pt__http2_count_reset(h2c);
            break;
        default:
            break;
        }
        break;

    default:
        break;
    }

    return 0;
}


/* A response head nghttp2 could not send (over 64 KiB once encoded): the
 * stream cannot go on, so the client is told at once. */
static int
pt_http2_frame_not_send_cb(nghttp2_session *session,
    const nghttp2_frame *frame, int lib_error_code, void *user_data)
{
    pt_http2_stream_t      *st;
    pt_http2_connection_t  *h2c;

    h2c = user_data;

    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }

    st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

    /* About a request: its line carries the request id. */
    if (st && st->request) {
        pt_http_log_request(st->request, PT_LOG_ERR,
                            "http2: stream %d: response head not sent: %s",
                            (int) frame->hd.stream_id,
                            nghttp2_strerror(lib_error_code));
    } else {
        pt_log_error(PT_LOG_ERR, NULL, 0,
                     "client %.*s: http2: stream %d: response head not sent: %s",
                     (int) h2c->c->addr_text.len, h2c->c->addr_text.data,
                     (int) frame->hd.stream_id,
                     nghttp2_strerror(lib_error_code));
    }

    (void) nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE,
                                     frame->hd.stream_id,
                                     NGHTTP2_INTERNAL_ERROR);

    return 0;
}


/* nghttp2's account of a client's error. It may quote the client's
 * bytes: controls and non-ASCII are written as \xHH. */
static int
pt_http2_error_cb(nghttp2_session *session, int lib_error_code,
    const char *msg, size_t len, void *user_data)
{
    char                    text[512], *p;
    size_t                  i;
    unsigned char           ch;
    pt_http2_connection_t  *h2c;

    h2c = user_data;
    p = text;

    for (i = 0; i < len && p < text + sizeof(text) - 5; i++) {
        ch = (unsigned char) msg[i];

        if (ch < 0x20 || ch >= 0x7f || ch == '\\') {
            p += snprintf(p, 5, "\\x%02x", ch);
        } else {
            *p++ = (char) ch;
        }
    }

    pt_log_error(PT_LOG_INFO, NULL, 0, "client %.*s: http2: %.*s",
                 (int) h2c->c->addr_text.len, h2c->c->addr_text.data,
                 (int) (p - text), text);

    return 0;
}
