/*
 * fuzz_path.c: path normalization and escaping (pt_http_path.c).
 *
 * The input is a request path as it reaches the normalizer (the router,
 * access rules and the upstream all see its result) and as a rewrite
 * template produces it for the escaper. Checked promises:
 *
 *   - normalizing in place gives what normalizing into a copy gives;
 *   - the result starts with '/', is never longer, holds no "." or ".."
 *     segment, no NUL and no escape of an unreserved character, and its
 *     escapes are upper-case;
 *   - normalizing the result again changes nothing, so the gateway and a
 *     backend that normalizes too cannot disagree on the path;
 *   - escaping stays within 3 * len, yields only path characters and
 *     valid escapes, and escaping its result again changes nothing.
 */

#include "fuzz.h"
#include "pt_http_path.h"
#include "pt_string.h"


static int
pt_fuzz_hex_upper(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}


static int
pt_fuzz_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
           || c == '~';
}


static int
pt_fuzz_hexval(unsigned char c)
{
    return c <= '9' ? c - '0' : c - 'A' + 10;
}


static void
pt_fuzz_normalized(const char *p, size_t len)
{
    size_t         i, seg, end;
    unsigned char  c, d;

    pt_fuzz_check(len > 0 && p[0] == '/');

    for (i = 1, seg = 1; i < len; i++) {
        c = (unsigned char) p[i];

        pt_fuzz_check(c != '\0');

        if (c == '%') {
            pt_fuzz_check(i + 2 < len && pt_fuzz_hex_upper(p[i + 1])
                          && pt_fuzz_hex_upper(p[i + 2]));
            d = (unsigned char) (pt_fuzz_hexval(p[i + 1]) * 16
                                 + pt_fuzz_hexval(p[i + 2]));
            pt_fuzz_check(d != '\0' && !pt_fuzz_unreserved(d));
        }

        if (c == '/' || i + 1 == len) {
            /* the segment p[seg .. end) */
            end = (c == '/') ? i : i + 1;

            pt_fuzz_check(!(end - seg == 1 && p[seg] == '.'));
            pt_fuzz_check(!(end - seg == 2 && p[seg] == '.'
                            && p[seg + 1] == '.'));
            seg = i + 1;
        }
    }
}


static void
pt_fuzz_escape(const char *in, size_t len)
{
    char    *out, *again;
    size_t   i, n, m;

    out = malloc(3 * len + 1);
    again = malloc(9 * len + 1);

    if (out == NULL || again == NULL) {
        goto done;
    }

    n = pt_http_escape_path(in, len, out);
    pt_fuzz_check(n <= 3 * len && n >= len);

    for (i = 0; i < n; i++) {
        pt_fuzz_check(out[i] != '\0'
                      && strchr(" \"#<>?[\\]^`{|}", out[i]) == NULL
                      && (unsigned char) out[i] > 0x20
                      && (unsigned char) out[i] < 0x7f);

        if (out[i] == '%') {
            pt_fuzz_check(i + 2 < n && pt_hexval((unsigned char) out[i + 1])
                                       >= 0
                          && pt_hexval((unsigned char) out[i + 2]) >= 0);
        }
    }

    m = pt_http_escape_path(out, n, again);
    pt_fuzz_check(m == n && memcmp(out, again, n) == 0);

done:

    free(out);
    free(again);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int      rc, rc2;
    char    *in, *out, *twice;
    size_t   len, len2;

    in = malloc(size ? size : 1);
    out = malloc(size ? size : 1);
    twice = malloc(size ? size : 1);

    if (in == NULL || out == NULL || twice == NULL) {
        goto done;
    }

    memcpy(in, data, size);

    rc = pt_http_normalize_path(in, size, out, &len);
    pt_fuzz_check(rc == PT_OK || rc == PT_ERROR);

    /* In place, as the request reader may do it. */
    rc2 = pt_http_normalize_path(in, size, in, &len2);
    pt_fuzz_check(rc2 == rc);

    if (rc == PT_OK) {
        pt_fuzz_check(len2 == len && memcmp(in, out, len) == 0);
        pt_fuzz_check(len <= size);
        pt_fuzz_normalized(out, len);

        rc = pt_http_normalize_path(out, len, twice, &len2);
        pt_fuzz_check(rc == PT_OK && len2 == len
                      && memcmp(out, twice, len) == 0);
    }

    memcpy(in, data, size);
    pt_fuzz_escape(in, size);

done:

    free(in);
    free(out);
    free(twice);

    return 0;
}
