/*
 * pt_http_trace.c: W3C Trace Context (traceparent) at POST_READ.
 *
 * The gateway is a hop of the trace: an incoming valid traceparent keeps
 * its trace id and flags, and the gateway's own span (8 random bytes)
 * becomes the parent-id the upstream sees. Absent or invalid: a new
 * trace (16 random bytes), a new span, flags 01 (sampled: the gateway
 * logs every request with its trace id, so the trace is worth recording
 * downstream too). Whatever came in, the upstream gets one traceparent,
 * version 00.
 *
 * Valid (https://www.w3.org/TR/trace-context/ 3.2): one traceparent
 * field; version 2 lower-case hex, not "ff"; trace-id 32 and parent-id
 * 16 lower-case hex, neither all zeros; flags 2 lower-case hex. Version
 * 00 is exactly 55 characters. A higher version is read as 00 (its first
 * four fields; more may follow after a '-'), as the spec's forward
 * compatibility rule says, and sent on as 00.
 *
 * tracestate passes through untouched when traceparent was valid; with
 * a new trace it is dropped (the spec: it belongs to the old parent).
 */

#include "pt_http.h"
#include "pt_random.h"
#include "pt_string.h"


#define PT_TRACEPARENT_LEN  55


static const pt_str_t  pt_http_traceparent = pt_string("traceparent");


static int
pt_http_trace_hex(const char *p, size_t n)
{
    size_t  i;
    int     nonzero;

    nonzero = 0;

    for (i = 0; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return -1;
        }
        nonzero |= (p[i] != '0');
    }

    return nonzero;
}


/* 1 when v is a traceparent to continue, 0 when not. */
static int
pt_http_trace_valid(const pt_str_t *v)
{
    const char  *p;

    p = v->data;

    if (v->len < PT_TRACEPARENT_LEN
        || pt_http_trace_hex(p, 2) < 0
        || (p[0] == 'f' && p[1] == 'f')
        || p[2] != '-' || p[35] != '-' || p[52] != '-')
    {
        return 0;
    }

    if (p[0] == '0' && p[1] == '0') {
        if (v->len != PT_TRACEPARENT_LEN) {
            return 0;
        }

    } else if (v->len > PT_TRACEPARENT_LEN && p[PT_TRACEPARENT_LEN] != '-') {
        return 0;
    }

    return pt_http_trace_hex(p + 3, 32) == 1
           && pt_http_trace_hex(p + 36, 16) == 1
           && pt_http_trace_hex(p + 53, 2) >= 0;
}


static void
pt_http_trace_random_hex(char *p, size_t n)
{
    size_t              i;
    uint64_t            x;
    static const char   hex[] = "0123456789abcdef";

    x = 0;

    for (i = 0; i < n; i++) {
        if (i % 16 == 0) {
            x = pt_random_u64();
        }
        p[i] = hex[x & 0xf];
        x >>= 4;
    }
}


int
pt_http_trace(pt_http_request_t *r)
{
    char              *p;
    size_t             i, n;
    pt_str_t           value;
    pt_http_header_t  *h, *in;

    h = r->headers_in.headers.elts;
    in = NULL;

    for (i = 0, n = 0; i < r->headers_in.headers.nelts; i++) {
        if (pt_strcaseeq(&h[i].name, pt_http_traceparent.data,
                         pt_http_traceparent.len))
        {
            in = &h[i];
            n++;
        }
    }

    p = pt_pnalloc(r->pool, PT_TRACEPARENT_LEN);
    if (p == NULL) {
        return PT_ERROR;
    }

    if (n == 1 && pt_http_trace_valid(&in->value)) {
        /* The same trace and flags; our span as the parent. */
        memcpy(p, "00-", 3);
        memcpy(p + 3, in->value.data + 3, 32);
        p[35] = '-';
        memcpy(p + 53, in->value.data + 53, 2);

    } else {
        memcpy(p, "00-", 3);
        do {
            pt_http_trace_random_hex(p + 3, 32);
        } while (pt_http_trace_hex(p + 3, 32) != 1);
        p[35] = '-';
        memcpy(p + 53, "01", 2);

        pt_http_header_in_remove(r, "tracestate", 10);
    }

    do {
        pt_http_trace_random_hex(p + 36, 16);
    } while (pt_http_trace_hex(p + 36, 16) != 1);
    p[52] = '-';

    if (n) {
        pt_http_header_in_remove(r, pt_http_traceparent.data,
                                 pt_http_traceparent.len);
    }

    value.data = p;
    value.len = PT_TRACEPARENT_LEN;

    if (pt_http_header_in_add(r, &pt_http_traceparent, &value) == NULL) {
        return PT_ERROR;
    }

    r->trace_id.data = p + 3;
    r->trace_id.len = 32;

    return PT_OK;
}
