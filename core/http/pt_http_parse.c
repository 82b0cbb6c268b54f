/*
 * pt_http_parse.c: HTTP/1.x head scanning and tokenizing (RFC 9112).
 *
 * Every byte is hostile: the parser looks at nothing outside the range the
 * scanner delimited, classifies bytes through one table indexed by the
 * unsigned byte value, and answers errors rather than guessing. It is
 * deliberately stricter than RFC 9112's "MAY accept" clauses (bare LF, obs-
 * fold, whitespace before the colon) because a gateway and its backends
 * disagreeing on where a message ends is how requests get smuggled.
 */

#include "pt_http_parse.h"
#include "pt_string.h"


#define PT_C_TCHAR   0x01   /* token character (RFC 9110 5.6.2)          */
#define PT_C_TARGET  0x02   /* request-target byte: 0x21-0x7E but '#'    */
#define PT_C_VALUE   0x04   /* field value byte: HTAB SP VCHAR obs-text  */
#define PT_C_HOST    0x08   /* reg-name: unreserved, sub-delims and '%'  */

#define pt_http_is(c, cl)  (pt_http_class[(unsigned char) (c)] & (cl))
#define pt_http_is_ws(c)   ((c) == ' ' || (c) == '\t')


static const uint8_t  pt_http_class[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  0,  0,  0,  0,  /* 00 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 10 */
     4, 15,  6,  5, 15, 15, 15, 15, 14, 14, 15, 15, 14, 15, 15,  6,  /* 20 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  6, 14,  6, 14,  6,  6,  /* 30 */
     6, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  /* 40 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  6,  6,  6,  7, 15,  /* 50 */
     7, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  /* 60 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  6,  7,  6, 15,  0,  /* 70 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 80 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 90 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* a0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* b0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* c0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* d0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* e0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* f0 */
};


static int pt_http_parse_version(const char *p, size_t len,
    unsigned *version);
static int pt_http_parse_request_line(const char *p, size_t len,
    pt_http_request_line_t *rl);
static int pt_http_parse_target(pt_http_request_line_t *rl);
static void pt_http_split_query(pt_http_request_line_t *rl, char *p,
    char *end);
static int pt_http_check_authority(const char *p, size_t len,
    int port_required);
static int pt_http_parse_status_line(const char *p, size_t len,
    pt_http_status_line_t *sl);
static int pt_http_parse_fields(const char *buf, size_t from, size_t to,
    pt_http_header_t *headers, size_t *nheaders);
static int pt_http_hex(unsigned char c);


int
pt_http_scan_head(pt_http_head_scan_t *s, const char *buf, size_t len)
{
    size_t       i;
    const char  *lf;

    if (s->head_end) {
        return PT_OK;
    }

    if (len < s->scanned || len < s->start) {
        return PT_AGAIN;
    }

    if (s->line_end == 0) {

        /*
         * Skip empty lines before the start line while nothing after them
         * has been examined. A lone CR at the end of the data may be the
         * first half of one, so wait for the next byte before deciding.
         */

        while (s->scanned <= s->start
               && s->start < 2 * PT_HTTP_MAX_LEADING_CRLF
               && s->start < len
               && buf[s->start] == '\r')
        {
            if (s->start + 1 == len) {
                s->scanned = s->start;
                return PT_AGAIN;
            }

            if (buf[s->start + 1] != '\n') {
                break;
            }

            s->start += 2;
            s->scanned = s->start;
        }

        if (s->scanned < s->start) {
            s->scanned = s->start;
        }

        lf = memchr(buf + s->scanned, '\n', len - s->scanned);
        if (lf == NULL) {
            s->scanned = len;
            return PT_AGAIN;
        }

        s->line_end = (size_t) (lf - buf) + 1;
        s->scanned = s->line_end;
    }

    /*
     * The head ends at the first empty line. Only the two bytes before
     * each LF need a look: they never reach before the start line's LF,
     * because an empty line needs an LF right before it (or before its CR).
     */

    while (s->scanned < len) {
        lf = memchr(buf + s->scanned, '\n', len - s->scanned);
        if (lf == NULL) {
            s->scanned = len;
            return PT_AGAIN;
        }

        i = (size_t) (lf - buf);
        s->scanned = i + 1;

        if (buf[i - 1] == '\n' || (buf[i - 1] == '\r' && buf[i - 2] == '\n')) {
            s->head_end = i + 1;
            return PT_OK;
        }
    }

    return PT_AGAIN;
}


int
pt_http_parse_request_head(const char *buf, const pt_http_head_scan_t *s,
    pt_http_request_line_t *rl, pt_http_header_t *headers, size_t *nheaders)
{
    int  rc;

    if (s->head_end == 0 || s->line_end <= s->start
        || s->head_end <= s->line_end)
    {
        *nheaders = 0;
        return 400;
    }

    rc = pt_http_parse_request_line(buf + s->start, s->line_end - s->start,
                                    rl);
    if (rc != PT_OK) {
        *nheaders = 0;
        return rc;
    }

    return pt_http_parse_fields(buf, s->line_end, s->head_end, headers,
                                nheaders);
}


int
pt_http_check_request_line(const char *buf, const pt_http_head_scan_t *s)
{
    pt_http_request_line_t  rl;

    if (s->line_end == 0 || s->line_end <= s->start) {
        return PT_AGAIN;
    }

    return pt_http_parse_request_line(buf + s->start,
                                      s->line_end - s->start, &rl);
}


int
pt_http_parse_response_head(const char *buf,
    const pt_http_head_scan_t *s, pt_http_status_line_t *sl,
    pt_http_header_t *headers, size_t *nheaders)
{
    if (s->head_end == 0 || s->line_end <= s->start
        || s->head_end <= s->line_end)
    {
        *nheaders = 0;
        return PT_ERROR;
    }

    if (pt_http_parse_status_line(buf + s->start, s->line_end - s->start, sl)
        != PT_OK)
    {
        *nheaders = 0;
        return PT_ERROR;
    }

    if (pt_http_parse_fields(buf, s->line_end, s->head_end, headers, nheaders)
        != PT_OK)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


/* "HTTP/" DIGIT "." DIGIT, case-sensitive: PT_OK for 1.x (a minor above 1
 * is handled as 1.1, RFC 9110 2.5), 505 for other majors, 400 when it is
 * not a version at all. */

static int
pt_http_parse_version(const char *p, size_t len, unsigned *version)
{
    if (len != 8 || memcmp(p, "HTTP/", 5) != 0
        || p[5] < '0' || p[5] > '9' || p[6] != '.'
        || p[7] < '0' || p[7] > '9')
    {
        return 400;
    }

    if (p[5] != '1') {
        return 505;
    }

    *version = (p[7] == '0') ? 10 : 11;

    return PT_OK;
}


unsigned
pt_http_parse_method(const char *p, size_t len)
{
    size_t  i;

    static const struct {
        const char  *name;
        size_t       len;
        unsigned     bit;
    } methods[] = {
        { "GET", 3, PT_HTTP_GET },
        { "HEAD", 4, PT_HTTP_HEAD },
        { "POST", 4, PT_HTTP_POST },
        { "PUT", 3, PT_HTTP_PUT },
        { "DELETE", 6, PT_HTTP_DELETE },
        { "OPTIONS", 7, PT_HTTP_OPTIONS },
        { "PATCH", 5, PT_HTTP_PATCH },
        { "TRACE", 5, PT_HTTP_TRACE },
        { "CONNECT", 7, PT_HTTP_CONNECT }
    };

    for (i = 0; i < pt_nelems(methods); i++) {
        if (len == methods[i].len && memcmp(p, methods[i].name, len) == 0) {
            return methods[i].bit;
        }
    }

    return PT_HTTP_OTHER;
}


/* p[0..len) is the start line with its line end. */

static int
pt_http_parse_request_line(const char *p, size_t len,
    pt_http_request_line_t *rl)
{
    int          rc;
    const char  *end, *q, *t;

    memset(rl, 0, sizeof(pt_http_request_line_t));

    if (len < 2 || p[len - 2] != '\r') {
        return 400;
    }

    end = p + len - 2;

    for (q = p; q < end && pt_http_is(*q, PT_C_TCHAR); q++) {
        /* void */
    }

    if (q == p || q == end || *q != ' ') {
        return 400;
    }

    rl->method_name.data = (char *) p;
    rl->method_name.len = (size_t) (q - p);
    rl->method = pt_http_parse_method(p, rl->method_name.len);

    for (t = ++q; q < end && pt_http_is(*q, PT_C_TARGET); q++) {
        /* void */
    }

    if (q == t || q == end || *q != ' ') {
        return 400;
    }

    rl->target.data = (char *) t;
    rl->target.len = (size_t) (q - t);

    q++;

    rc = pt_http_parse_version(q, (size_t) (end - q), &rl->version);
    if (rc == 400) {
        return 400;
    }

    if (pt_http_parse_target(rl) != PT_OK) {
        return 400;
    }

    return rc;
}


/* Classify the target into one of the four forms, checking that the form
 * fits the method, and split out path, query and authority. */

static int
pt_http_parse_target(pt_http_request_line_t *rl)
{
    char      *t, *a, *q, *end;
    size_t     n;
    pt_str_t   scheme;

    t = rl->target.data;
    n = rl->target.len;
    end = t + n;

    if (t[0] == '/') {
        if (rl->method == PT_HTTP_CONNECT) {
            return PT_ERROR;
        }

        rl->form = PT_HTTP_FORM_ORIGIN;
        pt_http_split_query(rl, t, end);
        return PT_OK;
    }

    if (n == 1 && t[0] == '*') {
        if (rl->method != PT_HTTP_OPTIONS) {
            return PT_ERROR;
        }

        rl->form = PT_HTTP_FORM_ASTERISK;
        rl->path = rl->target;
        rl->query.data = end;
        return PT_OK;
    }

    if (rl->method == PT_HTTP_CONNECT) {
        if (pt_http_check_authority(t, n, 1) != PT_OK) {
            return PT_ERROR;
        }

        rl->form = PT_HTTP_FORM_AUTHORITY;
        rl->authority = rl->target;
        rl->path.data = end;
        rl->query.data = end;
        return PT_OK;
    }

    /* "http://" or "https://", in any case, and something after it */
    scheme.data = t;
    scheme.len = (n > 8 && (t[4] == 's' || t[4] == 'S')) ? 8 : 7;

    if (n <= scheme.len
        || !(pt_str_caseeq(&scheme, "http://")
             || pt_str_caseeq(&scheme, "https://")))
    {
        return PT_ERROR;
    }

    a = t + scheme.len;

    for (q = a; q < end && *q != '/' && *q != '?'; q++) {
        /* void */
    }

    if (pt_http_check_authority(a, (size_t) (q - a), 0) != PT_OK) {
        return PT_ERROR;
    }

    rl->form = PT_HTTP_FORM_ABSOLUTE;
    rl->authority.data = a;
    rl->authority.len = (size_t) (q - a);

    pt_http_split_query(rl, q, end);

    if (rl->path.len == 0) {
        pt_str_set(&rl->path, "/");
    }

    return PT_OK;
}


static void
pt_http_split_query(pt_http_request_line_t *rl, char *p, char *end)
{
    char  *q;

    q = memchr(p, '?', (size_t) (end - p));

    if (q == NULL) {
        rl->path.data = p;
        rl->path.len = (size_t) (end - p);
        rl->query.data = end;
        rl->query.len = 0;
        rl->has_query = 0;
        return;
    }

    rl->path.data = p;
    rl->path.len = (size_t) (q - p);
    rl->query.data = q + 1;
    rl->query.len = (size_t) (end - q - 1);
    rl->has_query = 1;
}


/* host [ ":" port ] where host is a reg-name or an IP literal in brackets
 * (IPv4 addresses are reg-names syntactically); no userinfo. The port, if
 * present, is 1 to 5 digits up to 65535. */

static int
pt_http_check_authority(const char *p, size_t len, int port_required)
{
    unsigned     port;
    const char  *q, *end;

    if (len == 0) {
        return PT_ERROR;
    }

    end = p + len;

    if (*p == '[') {
        for (q = p + 1; q < end && *q != ']'; q++) {
            if (pt_http_hex((unsigned char) *q) < 0 && *q != ':' && *q != '.')
            {
                return PT_ERROR;
            }
        }

        if (q == end || q == p + 1) {
            return PT_ERROR;
        }

        q++;

    } else {
        for (q = p; q < end && *q != ':'; q++) {
            if (!pt_http_is(*q, PT_C_HOST)) {
                return PT_ERROR;
            }

            if (*q == '%') {
                if (end - q < 3 || pt_http_hex((unsigned char) q[1]) < 0
                    || pt_http_hex((unsigned char) q[2]) < 0)
                {
                    return PT_ERROR;
                }

                q += 2;
            }
        }

        if (q == p) {
            return PT_ERROR;
        }
    }

    if (q == end) {
        return port_required ? PT_ERROR : PT_OK;
    }

    if (*q != ':') {
        return PT_ERROR;
    }

    q++;

    if (end - q < 1 || end - q > 5) {
        return PT_ERROR;
    }

    for (port = 0; q < end; q++) {
        if (*q < '0' || *q > '9') {
            return PT_ERROR;
        }

        port = port * 10 + (unsigned) (*q - '0');
    }

    return port <= 65535 ? PT_OK : PT_ERROR;
}


/* HTTP-version SP 3DIGIT [ SP reason-phrase ]; the SP before an empty
 * reason is optional because many servers leave it out. */

static int
pt_http_parse_status_line(const char *p, size_t len,
    pt_http_status_line_t *sl)
{
    const char  *end, *q;

    memset(sl, 0, sizeof(pt_http_status_line_t));

    if (len < 2 || p[len - 2] != '\r') {
        return PT_ERROR;
    }

    end = p + len - 2;

    if (end - p < 12
        || pt_http_parse_version(p, 8, &sl->version) != PT_OK
        || p[8] != ' '
        || p[9] < '1' || p[9] > '9'
        || p[10] < '0' || p[10] > '9'
        || p[11] < '0' || p[11] > '9')
    {
        return PT_ERROR;
    }

    sl->status = (unsigned) (p[9] - '0') * 100
                 + (unsigned) (p[10] - '0') * 10
                 + (unsigned) (p[11] - '0');

    q = p + 12;

    if (q < end) {
        if (*q != ' ') {
            return PT_ERROR;
        }

        q++;
    }

    sl->reason.data = (char *) q;
    sl->reason.len = (size_t) (end - q);

    for ( /* void */ ; q < end; q++) {
        if (!pt_http_is(*q, PT_C_VALUE)) {
            return PT_ERROR;
        }
    }

    return PT_OK;
}


/*
 * buf[from .. to) holds the field lines and the empty line ending the head.
 * On entry *nheaders is the capacity of headers; it always leaves with the
 * number stored. Returns PT_OK, 400 or 431.
 */

static int
pt_http_parse_fields(const char *buf, size_t from, size_t to,
    pt_http_header_t *headers, size_t *nheaders)
{
    size_t             cap;
    const char        *p, *end, *lf, *cr, *q, *v, *ve;
    pt_http_header_t  *h;

    cap = *nheaders;
    *nheaders = 0;

    p = buf + from;
    end = buf + to;

    while (p < end) {
        lf = memchr(p, '\n', (size_t) (end - p));

        /* a bare LF, or a line not ended within the head */

        if (lf == NULL || lf == p || lf[-1] != '\r') {
            return 400;
        }

        cr = lf - 1;

        if (cr == p) {
            /* the empty line must be the last one the scanner found */
            return lf + 1 == end ? PT_OK : 400;
        }

        /* obs-fold, an empty name and a stray CR all fail here */

        for (q = p; q < cr && pt_http_is(*q, PT_C_TCHAR); q++) {
            /* void */
        }

        if (q == p || q == cr || *q != ':') {
            return 400;
        }

        if (*nheaders == cap) {
            return 431;
        }

        h = &headers[*nheaders];
        h->name.data = (char *) p;
        h->name.len = (size_t) (q - p);

        for (v = ++q; q < cr; q++) {
            if (!pt_http_is(*q, PT_C_VALUE)) {
                return 400;
            }
        }

        while (v < cr && pt_http_is_ws(*v)) {
            v++;
        }

        for (ve = cr; ve > v && pt_http_is_ws(ve[-1]); ve--) {
            /* void */
        }

        h->value.data = (char *) v;
        h->value.len = (size_t) (ve - v);

        (*nheaders)++;

        p = lf + 1;
    }

    /* the head did not end with an empty line */

    return 400;
}


static int
pt_http_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


const char *
pt_http_status_text(unsigned status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 511: return "Network Authentication Required";
    default:  return "Unknown";
    }
}


int
pt_http_list_has(const pt_str_t *value, const char *token, size_t len)
{
    pt_str_t     el;
    const char  *p, *end, *e, *b, *t;

    if (len == 0 || value->len == 0) {
        return 0;
    }

    p = value->data;
    end = p + value->len;

    for ( ;; ) {
        e = memchr(p, ',', (size_t) (end - p));
        if (e == NULL) {
            e = end;
        }

        for (b = p; b < e && pt_http_is_ws(*b); b++) {
            /* void */
        }

        for (t = e; t > b && pt_http_is_ws(t[-1]); t--) {
            /* void */
        }

        el.data = (char *) b;
        el.len = (size_t) (t - b);

        if (pt_strcaseeq(&el, token, len)) {
            return 1;
        }

        if (e == end) {
            return 0;
        }

        p = e + 1;
    }
}


int64_t
pt_http_parse_content_length(const pt_str_t *value)
{
    int64_t      v, first;
    const char  *p, *end, *d;

    if (value->len == 0) {
        return -1;
    }

    p = value->data;
    end = p + value->len;
    first = -1;

    for ( ;; ) {
        v = 0;

        for (d = p; p < end && *p >= '0' && *p <= '9'; p++) {
            if (p - d == 18) {
                return -1;
            }

            v = v * 10 + (*p - '0');
        }

        if (p == d || (first != -1 && v != first)) {
            return -1;
        }

        first = v;

        if (p == end) {
            return first;
        }

        /* OWS "," OWS, then another element: "5," and "5 " are invalid */

        while (p < end && pt_http_is_ws(*p)) {
            p++;
        }

        if (p == end || *p != ',') {
            return -1;
        }

        p++;

        while (p < end && pt_http_is_ws(*p)) {
            p++;
        }
    }
}


int
pt_http_is_tchar(unsigned char c)
{
    return (pt_http_class[c] & PT_C_TCHAR) != 0;
}


int
pt_http_is_token(const pt_str_t *s)
{
    size_t  i;

    for (i = 0; i < s->len; i++) {
        if (!pt_http_is_tchar((unsigned char) s->data[i])) {
            return 0;
        }
    }

    return s->len > 0;
}
