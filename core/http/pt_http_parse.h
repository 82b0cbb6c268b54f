/*
 * pt_http_parse.h: the HTTP/1.x head tokenizer (RFC 9112).
 *
 * It finds the end of a head as bytes arrive, then splits a complete head
 * into its start line and fields, checking syntax strictly. It never
 * allocates: every pt_str_t it returns points into the caller's buffer
 * (or, for a defaulted path, at a static string). Framing rules that span
 * several fields (Content-Length with Transfer-Encoding, ...) belong to the
 * request layer, which uses the helpers at the end of this file.
 */

#ifndef PT_HTTP_PARSE_H
#define PT_HTTP_PARSE_H

#include "pt_core.h"


/* Method bits, so routes can hold a set. */
#define PT_HTTP_GET      0x0001
#define PT_HTTP_HEAD     0x0002
#define PT_HTTP_POST     0x0004
#define PT_HTTP_PUT      0x0008
#define PT_HTTP_DELETE   0x0010
#define PT_HTTP_OPTIONS  0x0020
#define PT_HTTP_PATCH    0x0040
#define PT_HTTP_TRACE    0x0080
#define PT_HTTP_CONNECT  0x0100
#define PT_HTTP_OTHER    0x8000   /* a valid token we do not know */

/* The four request-target forms of RFC 9112 3.2 (0 is never used, so a
 * zeroed request line is recognisably unparsed). */
#define PT_HTTP_FORM_ORIGIN     1   /* "/path?query"                     */
#define PT_HTTP_FORM_ABSOLUTE   2   /* "http://host:port/path?query"     */
#define PT_HTTP_FORM_AUTHORITY  3   /* "host:port", CONNECT only         */
#define PT_HTTP_FORM_ASTERISK   4   /* "*", OPTIONS only                 */

/* Leading empty lines skipped before a start line (RFC 9112 2.2). */
#define PT_HTTP_MAX_LEADING_CRLF  8


typedef struct {
    size_t   scanned;   /* bytes of buf examined so far (resume point)  */
    size_t   start;     /* offset of the first byte of the start line:
                           leading CRLFs before a request line are skipped
                           (RFC 9112 2.2), at most 8 of them             */
    size_t   line_end;  /* offset just past the start line's CRLF, 0 while
                           not seen                                       */
    size_t   head_end;  /* offset just past the CRLF CRLF ending the head,
                           0 while not seen                               */
} pt_http_head_scan_t;


typedef struct {
    pt_str_t   name;   /* as sent (case kept)           */
    pt_str_t   value;  /* leading/trailing SP/HTAB cut  */
} pt_http_header_t;


typedef struct {
    pt_str_t   method_name;  /* as sent                                     */
    unsigned   method;       /* one PT_HTTP_* bit                            */
    pt_str_t   target;       /* request-target as sent                       */
    pt_str_t   path;         /* path part: origin-form up to '?' or end; for
                                absolute-form the part after the authority
                                ("/" if empty); "*" for asterisk-form; empty
                                for authority-form                           */
    pt_str_t   query;        /* after '?', without it (may be empty)         */
    unsigned   has_query:1;  /* the target had a '?'                         */
    pt_str_t   authority;    /* absolute-form (http:// or https://)
                                host[:port], authority-form target of
                                CONNECT; else empty                          */
    unsigned   form;         /* PT_HTTP_FORM_*                               */
    unsigned   version;      /* 10 or 11                                     */
} pt_http_request_line_t;


typedef struct {
    unsigned   version;   /* 10 or 11 */
    unsigned   status;    /* 100..999 (3 digits) */
    pt_str_t   reason;    /* may be empty */
} pt_http_status_line_t;


/* Resume scanning buf[0..len) (len only grows between calls; the caller
 * zeroes the struct for a new head). PT_OK when head_end is known,
 * PT_AGAIN when more bytes are needed. Each call costs O(new bytes). It
 * does not validate: a bare LF counts as a line end so that the parser
 * can see and reject it. When the caller's buffer is full without a
 * head_end, it answers 414 if line_end is 0, else 431. */
int pt_http_scan_head(pt_http_head_scan_t *s, const char *buf, size_t len);

/* Parse a complete request head buf[s->start .. s->head_end). headers is
 * the caller's array with capacity *nheaders; on return *nheaders is the
 * number of fields stored. Returns PT_OK, or the status to answer: 400 for
 * any syntax error (method not a token, target bytes outside 0x21-0x7E or
 * '#', not exactly one SP between parts, bare CR or LF, obs-fold, bad or
 * empty field name, whitespace before the colon, CTL other than HTAB in a
 * value, a target form that does not fit the method, absolute-form with a
 * scheme other than http/https, userinfo, or no host, a port that is not
 * 1-5 digits up to 65535); 505 for a well-formed HTTP/x.y other than 1.0
 * and 1.1; 431 when there are more fields than the capacity. */
int pt_http_parse_request_head(const char *buf, const pt_http_head_scan_t *s,
    pt_http_request_line_t *rl, pt_http_header_t *headers, size_t *nheaders);

/* Check the request line alone, as soon as the scanner has found its end
 * (s->line_end), before the rest of the head is in: a line that can never
 * start a valid request, such as HTTP/0.9's "GET /" without a version,
 * is answered at once instead of waiting for an empty line that such a
 * client never sends. PT_AGAIN while line_end is not known, PT_OK, or the
 * status pt_http_parse_request_head() would answer (400 or 505). */
int pt_http_check_request_line(const char *buf,
    const pt_http_head_scan_t *s);

/* Parse a complete response head from an upstream, with the same field
 * rules as requests. "HTTP/1.1 204" without SP and reason is accepted.
 * Returns PT_OK or PT_ERROR (invalid, too many fields, or a version other
 * than 1.0/1.1; the caller answers 502). */
int pt_http_parse_response_head(const char *buf,
    const pt_http_head_scan_t *s, pt_http_status_line_t *sl,
    pt_http_header_t *headers, size_t *nheaders);

/* The PT_HTTP_* bit of a method name (case-sensitive), PT_HTTP_OTHER
 * for any other. */
unsigned pt_http_parse_method(const char *p, size_t len);

/* Reason phrase for a status ("Not Found"), "Unknown" if none. */
const char *pt_http_status_text(unsigned status);

/* Case-insensitive token-list search, as in "Connection: keep-alive,
 * Upgrade": 1 if token[0..len) is one of the comma-separated elements of
 * value (OWS around elements ignored), else 0. */
int pt_http_list_has(const pt_str_t *value, const char *token, size_t len);

/* Strict Content-Length: digits only, no sign or spaces, at most 18
 * digits; a list of identical values "5, 5" counts as one (RFC 9110 8.6),
 * empty list elements do not. Returns the value, or -1 when invalid or
 * conflicting. */
int64_t pt_http_parse_content_length(const pt_str_t *value);

/* 1 if c is a tchar (RFC 9110 5.6.2 token character), else 0. */
int pt_http_is_tchar(unsigned char c);

/* 1 if s is a non-empty token (a valid header or method name). */
int pt_http_is_token(const pt_str_t *s);


#endif /* PT_HTTP_PARSE_H */
