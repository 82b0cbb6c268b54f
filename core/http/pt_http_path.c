/*
 * pt_http_path.c: request path normalization (see pt_http_path.h).
 *
 * One pass, segment by segment: each segment is percent-decoded into out
 * behind its '/', then, if it turned out to be "." or "..", taken back out.
 * Decoding first is what makes "%2e%2E" a dot-segment; "%2F" is not
 * decoded, so it never becomes a separator.
 */

#include "pt_http_path.h"
#include "pt_string.h"


/* RFC 3986 2.3 unreserved: ALPHA DIGIT - . _ ~ */

static int
pt_http_path_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || c == '-' || c == '.' || c == '_' || c == '~';
}


/*
 * Invariant: out holds the already normalized prefix, a sequence of
 * "/segment" with no dot-segments, and o <= i, so out == in works. Every
 * input byte is read before the output position catches up with it.
 */

int
pt_http_normalize_path(const char *in, size_t len, char *out,
    size_t *out_len)
{
    int            hi, lo;
    size_t         i, o, seg, last;
    unsigned char  c;

    static const char  hex[] = "0123456789ABCDEF";

    if (len == 0 || in[0] != '/') {
        return PT_ERROR;
    }

    i = 0;
    o = 0;

    while (i < len) {

        /* in[i] is the '/' opening a segment */

        i++;
        out[o++] = '/';
        seg = o;

        while (i < len && in[i] != '/') {
            c = (unsigned char) in[i];

            if (c == '\0') {
                return PT_ERROR;
            }

            if (c != '%') {
                out[o++] = (char) c;
                i++;
                continue;
            }

            if (len - i < 3) {
                return PT_ERROR;
            }

            hi = pt_hexval((unsigned char) in[i + 1]);
            lo = pt_hexval((unsigned char) in[i + 2]);

            if (hi < 0 || lo < 0) {
                return PT_ERROR;
            }

            c = (unsigned char) (hi * 16 + lo);
            i += 3;

            if (c == '\0') {
                return PT_ERROR;
            }

            if (pt_http_path_unreserved(c)) {
                out[o++] = (char) c;

            } else {
                out[o++] = '%';
                out[o++] = hex[hi];
                out[o++] = hex[lo];
            }
        }

        /* a trailing dot-segment leaves the directory it names: "/a/." and
         * "/a/b/.." both give "/a/" */

        last = (i == len);

        if (o - seg == 1 && out[seg] == '.') {
            o = last ? seg : seg - 1;
            continue;
        }

        if (o - seg == 2 && out[seg] == '.' && out[seg + 1] == '.') {

            /* drop "/..", then the segment before it with its '/' */

            o = seg - 1;

            if (o == 0) {
                return PT_ERROR;
            }

            while (out[o - 1] != '/') {
                o--;
            }

            o = last ? o : o - 1;
        }
    }

    *out_len = o;

    return PT_OK;
}


/* RFC 3986 pchar plus '/': unreserved, sub-delims, ':' and '@'. */
static int
pt_http_path_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,;=:@/", c)
                                        != NULL;
}


size_t
pt_http_escape_path(const char *in, size_t len, char *out)
{
    size_t               i;
    char                *p;
    unsigned char        c;
    static const char    hex[] = "0123456789ABCDEF";

    p = out;

    for (i = 0; i < len; i++) {
        c = (unsigned char) in[i];

        if (c != '\0' && pt_http_path_char(c)) {
            *p++ = (char) c;
            continue;
        }

        if (c == '%' && i + 2 < len
            && pt_hexval((unsigned char) in[i + 1]) >= 0
            && pt_hexval((unsigned char) in[i + 2]) >= 0)
        {
            *p++ = '%';
            continue;
        }

        *p++ = '%';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0xf];
    }

    return (size_t) (p - out);
}
