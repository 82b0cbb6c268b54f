/*
 * fuzz_http_parse.c: the HTTP/1 head tokenizer (pt_http_parse.c), driven
 * as pt_http_request.c drives it.
 *
 * The input is what a client sends on one connection. Like the request
 * reader, it scans for the end of each head in a buffer of the default
 * max_header_size, parses it with the default max_headers, normalizes the
 * path and reads Content-Length and Connection; pipelined heads follow
 * while each one parses. Checked promises: scanning one byte at a time
 * finds the same head as scanning all at once; every string returned
 * lies inside the head; names are tokens, values are trimmed and hold no
 * CTL but HTAB; the status is one of those documented. The same head also
 * goes through the response parser, which reads upstream heads.
 */

#include "fuzz.h"
#include "pt_http_parse.h"
#include "pt_http_path.h"


#define PT_FUZZ_HEAD_SIZE    16384    /* limits.max_header_size default */
#define PT_FUZZ_MAX_HEADERS  100      /* limits.max_headers default     */
#define PT_FUZZ_PIPELINED    16


static pt_http_header_t  pt_fuzz_headers[PT_FUZZ_MAX_HEADERS];


static void
pt_fuzz_inside(const pt_str_t *s, const char *buf, size_t len)
{
    if (s->len == 0) {
        return;
    }

    pt_fuzz_check(s->data >= buf && s->data + s->len <= buf + len);
}


static int
pt_fuzz_scan(const char *buf, size_t len, pt_http_head_scan_t *s)
{
    int                  rc, rc1;
    size_t               i;
    pt_http_head_scan_t  one;

    memset(s, 0, sizeof(pt_http_head_scan_t));
    rc = pt_http_scan_head(s, buf, len);

    /* The reader calls again with whatever recv() added: byte by byte is
     * the worst split, and must not change the answer. */
    memset(&one, 0, sizeof(pt_http_head_scan_t));
    rc1 = PT_AGAIN;

    for (i = 1; i <= len && rc1 == PT_AGAIN; i++) {
        rc1 = pt_http_scan_head(&one, buf, i);
    }

    pt_fuzz_check(rc == rc1);

    if (rc == PT_OK) {
        pt_fuzz_check(s->head_end == one.head_end);
        pt_fuzz_check(s->line_end == one.line_end);
        pt_fuzz_check(s->start == one.start);
        pt_fuzz_check(s->start < s->line_end && s->line_end <= s->head_end
                      && s->head_end <= len);
    }

    return rc;
}


static void
pt_fuzz_fields(const char *buf, size_t len, size_t n)
{
    size_t             i, j;
    int64_t            cl;
    unsigned char      c;
    pt_http_header_t  *h;

    for (i = 0; i < n; i++) {
        h = &pt_fuzz_headers[i];

        pt_fuzz_inside(&h->name, buf, len);
        pt_fuzz_inside(&h->value, buf, len);
        pt_fuzz_check(pt_http_is_token(&h->name));

        for (j = 0; j < h->value.len; j++) {
            c = (unsigned char) h->value.data[j];
            pt_fuzz_check(c == '\t' || (c >= 0x20 && c != 0x7f));
        }

        if (h->value.len) {
            c = (unsigned char) h->value.data[0];
            pt_fuzz_check(c != ' ' && c != '\t');
            c = (unsigned char) h->value.data[h->value.len - 1];
            pt_fuzz_check(c != ' ' && c != '\t');
        }

        cl = pt_http_parse_content_length(&h->value);
        pt_fuzz_check(cl >= -1 && cl < 1000000000000000000LL);

        (void) pt_http_list_has(&h->value, "close", 5);
        (void) pt_http_list_has(&h->value, "keep-alive", 10);
        (void) pt_http_list_has(&h->value, "chunked", 7);
    }
}


static void
pt_fuzz_path(const pt_str_t *path)
{
    char    *out;
    size_t   len;

    out = malloc(path->len + 1);
    if (out == NULL) {
        return;
    }

    if (pt_http_normalize_path(path->data, path->len, out, &len) == PT_OK) {
        pt_fuzz_check(len <= path->len && len > 0 && out[0] == '/');
    }

    free(out);
}


/* One head at buf[0..len); returns the bytes it used, 0 to stop. */
static size_t
pt_fuzz_request(const char *buf, size_t len)
{
    int                      rc;
    size_t                   n;
    pt_http_head_scan_t      s;
    pt_http_status_line_t    sl;
    pt_http_request_line_t   rl;

    /* The head must fit the buffer, or the reader answers 414/431. */
    if (pt_fuzz_scan(buf, pt_min(len, (size_t) PT_FUZZ_HEAD_SIZE), &s)
        != PT_OK)
    {
        return 0;
    }

    n = PT_FUZZ_MAX_HEADERS;
    rc = pt_http_parse_response_head(buf, &s, &sl, pt_fuzz_headers, &n);

    pt_fuzz_check(n <= PT_FUZZ_MAX_HEADERS);

    if (rc == PT_OK) {
        pt_fuzz_check(sl.status >= 100 && sl.status <= 999);
        pt_fuzz_check(sl.version == 10 || sl.version == 11);
        pt_fuzz_inside(&sl.reason, buf, s.head_end);
        pt_fuzz_fields(buf, s.head_end, n);

    } else {
        pt_fuzz_check(rc == PT_ERROR);
    }

    n = PT_FUZZ_MAX_HEADERS;
    rc = pt_http_parse_request_head(buf, &s, &rl, pt_fuzz_headers, &n);

    pt_fuzz_check(n <= PT_FUZZ_MAX_HEADERS);
    pt_fuzz_check(rc == PT_OK || rc == 400 || rc == 431 || rc == 505);

    if (rc != PT_OK) {
        /* The connection is closed after an error. */
        return 0;
    }

    pt_fuzz_check(rl.version == 10 || rl.version == 11);
    pt_fuzz_check(rl.form >= PT_HTTP_FORM_ORIGIN
                  && rl.form <= PT_HTTP_FORM_ASTERISK);
    pt_fuzz_check(pt_http_is_token(&rl.method_name) && rl.method != 0);
    pt_fuzz_check(rl.target.len > 0);

    pt_fuzz_inside(&rl.method_name, buf, s.head_end);
    pt_fuzz_inside(&rl.target, buf, s.head_end);
    pt_fuzz_inside(&rl.query, buf, s.head_end);
    pt_fuzz_inside(&rl.authority, buf, s.head_end);

    if (rl.form == PT_HTTP_FORM_ORIGIN) {
        pt_fuzz_inside(&rl.path, buf, s.head_end);
        pt_fuzz_check(rl.path.len > 0 && rl.path.data[0] == '/');
    }

    if (rl.form == PT_HTTP_FORM_ORIGIN || rl.form == PT_HTTP_FORM_ABSOLUTE) {
        pt_fuzz_path(&rl.path);
    }

    pt_fuzz_fields(buf, s.head_end, n);

    return s.head_end;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char    *buf;
    size_t   i, pos, used;

    /* An exact copy: a read one byte past the input is an ASan error. */
    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }

    memcpy(buf, data, size);

    for (pos = 0, i = 0; i < PT_FUZZ_PIPELINED && pos < size; i++) {
        used = pt_fuzz_request(buf + pos, size - pos);
        if (used == 0) {
            break;
        }
        pos += used;
    }

    free(buf);

    return 0;
}
