/*
 * pt_http_chunked.c: streaming chunked transfer-coding decoder.
 *
 *     chunked-body = *chunk last-chunk trailer-section CRLF
 *     chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *     last-chunk   = 1*("0") [ chunk-ext ] CRLF
 *
 * One byte-at-a-time state machine, except for chunk data, which is
 * returned as runs pointing into the input. Line ends are strictly CRLF:
 * lenient decoders that accept a bare LF or junk after the size are what
 * request smuggling feeds on.
 */

#include "pt_http_chunked.h"
#include "pt_string.h"
#include "pt_http_parse.h"


enum {
    sw_size_start = 0,     /* the first hex digit of a chunk size       */
    sw_size,               /* more hex digits                           */
    sw_ext_bws,            /* whitespace after the size, before ';'     */
    sw_ext,                /* names, '=', tokens, ';' and whitespace    */
    sw_ext_quoted,         /* inside a quoted extension value           */
    sw_ext_quoted_esc,     /* after a backslash in a quoted value       */
    sw_size_lf,            /* the CR ending the size line was seen      */
    sw_data,               /* chunk data, ch->size bytes left           */
    sw_data_cr,            /* the CRLF after chunk data                 */
    sw_data_lf,
    sw_trailer_start,      /* a trailer field line or the final CRLF    */
    sw_trailer_name,
    sw_trailer_value,
    sw_trailer_lf,
    sw_last_lf,            /* the LF of the final empty line            */
    sw_done,
    sw_error
};


/* HTAB, SP, VCHAR and obs-text: what a field value or a quoted string may
 * hold. */

static int
pt_http_chunked_is_text(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}


/*
 * Each case either "continue"s to the next byte, or "break"s out of the
 * switch, which charges the byte to the extension and trailer budget.
 */

int
pt_http_chunked_parse(pt_http_chunked_t *ch, const char **pos,
    const char *end, pt_str_t *data)
{
    int             d;
    size_t          n;
    const char     *p;
    unsigned char   c;

    if (ch->state == sw_done) {
        return PT_DONE;
    }

    if (ch->state == sw_error) {
        return PT_ERROR;
    }

    for (p = *pos; p < end; p++) {
        c = (unsigned char) *p;

        switch (ch->state) {

        case sw_data:
            n = (size_t) pt_min(ch->size, (uint64_t) (end - p));

            if (ch->total + n < ch->total) {
                goto invalid;
            }

            data->data = (char *) p;
            data->len = n;
            ch->size -= n;
            ch->total += n;

            if (ch->size == 0) {
                ch->state = sw_data_cr;
            }

            *pos = p + n;
            return PT_OK;

        case sw_size_start:
            d = pt_hexval(c);
            if (d < 0) {
                goto invalid;
            }

            ch->size = (uint64_t) d;
            ch->state = sw_size;
            continue;

        case sw_size:
            d = pt_hexval(c);

            if (d >= 0) {
                if (ch->size > (PT_HTTP_CHUNKED_MAX_SIZE - (uint64_t) d) / 16) {
                    goto invalid;
                }

                /* leading zeros are legal but must not be free */

                if (ch->size == 0 && d == 0) {
                    break;
                }

                ch->size = ch->size * 16 + (uint64_t) d;
                continue;
            }

            if (c == '\r') {
                ch->state = sw_size_lf;
                continue;
            }

            if (c == ';') {
                ch->state = sw_ext;
                break;
            }

            if (c == ' ' || c == '\t') {
                ch->state = sw_ext_bws;
                break;
            }

            goto invalid;

        case sw_ext_bws:
            if (c == ';') {
                ch->state = sw_ext;
                break;
            }

            if (c == ' ' || c == '\t') {
                break;
            }

            goto invalid;

        case sw_ext:
            if (c == '\r') {
                ch->state = sw_size_lf;
                continue;
            }

            if (c == '"') {
                ch->state = sw_ext_quoted;
                break;
            }

            if (pt_http_is_tchar(c) || c == ';' || c == '=' || c == ' '
                || c == '\t')
            {
                break;
            }

            goto invalid;

        case sw_ext_quoted:
            if (c == '"') {
                ch->state = sw_ext;
                break;
            }

            if (c == '\\') {
                ch->state = sw_ext_quoted_esc;
                break;
            }

            if (pt_http_chunked_is_text(c)) {
                break;
            }

            goto invalid;

        case sw_ext_quoted_esc:
            if (pt_http_chunked_is_text(c)) {
                ch->state = sw_ext_quoted;
                break;
            }

            goto invalid;

        case sw_size_lf:
            if (c != '\n') {
                goto invalid;
            }

            ch->state = ch->size ? sw_data : sw_trailer_start;
            continue;

        case sw_data_cr:
            if (c != '\r') {
                goto invalid;
            }

            ch->state = sw_data_lf;
            continue;

        case sw_data_lf:
            if (c != '\n') {
                goto invalid;
            }

            ch->state = sw_size_start;
            continue;

        case sw_trailer_start:
            if (c == '\r') {
                ch->state = sw_last_lf;
                continue;
            }

            /* obs-fold, an empty name and a bare LF fail here */

            if (!pt_http_is_tchar(c)) {
                goto invalid;
            }

            ch->state = sw_trailer_name;
            break;

        case sw_trailer_name:
            if (c == ':') {
                ch->state = sw_trailer_value;
                break;
            }

            if (pt_http_is_tchar(c)) {
                break;
            }

            goto invalid;

        case sw_trailer_value:
            if (c == '\r') {
                ch->state = sw_trailer_lf;
                break;
            }

            if (pt_http_chunked_is_text(c)) {
                break;
            }

            goto invalid;

        case sw_trailer_lf:
            if (c != '\n') {
                goto invalid;
            }

            ch->state = sw_trailer_start;
            break;

        case sw_last_lf:
            if (c != '\n') {
                goto invalid;
            }

            ch->state = sw_done;
            *pos = p + 1;
            return PT_DONE;

        default:
            goto invalid;
        }

        if (++ch->extra > PT_HTTP_CHUNKED_MAX_EXTRA) {
            goto invalid;
        }
    }

    *pos = end;

    return PT_AGAIN;

invalid:

    ch->state = sw_error;
    *pos = p;

    return PT_ERROR;
}
