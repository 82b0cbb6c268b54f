/*
 * test_http_path.c: request path normalization.
 */

#include "pt_core.h"
#include "pt_http_path.h"
#include "tap.h"


#define S(lit)  lit, sizeof(lit) - 1


static char    res[1024];
static size_t  res_len;


/* Input and output are exactly len bytes on the heap, so a sanitizer
 * catches any access past the documented sizes. */

static int
norm(const char *in, size_t len)
{
    int     rc;
    char   *copy, *out;

    copy = malloc(len ? len : 1);
    out = malloc(len ? len : 1);
    if (copy == NULL || out == NULL) {
        free(copy);
        free(out);
        return -100;
    }

    memcpy(copy, in, len);
    res_len = 0;
    rc = pt_http_normalize_path(copy, len, out, &res_len);

    if (rc == PT_OK && res_len <= len && res_len <= sizeof(res)) {
        memcpy(res, out, res_len);

    } else if (rc == PT_OK) {
        rc = -101;
    }

    free(copy);
    free(out);

    return rc;
}


#define NORM_OK(in, want)                                                  \
    do {                                                                   \
        int rc_ = norm(S(in));                                             \
        is_int(rc_, PT_OK, "'%s' ok", in);                                 \
        is_str(res, rc_ == PT_OK ? res_len : 0, want, "'%s' -> '%s'",      \
               in, want);                                                  \
    } while (0)

#define NORM_BAD(in, why)                                                  \
    is_int(norm(S(in)), PT_ERROR, "'%s' is an error: %s", in, why)


int
main(void)
{
    char    buf[64];
    size_t  n;
    int     rc;

    tap_plan(72);

    /* the brief's cases */
    NORM_OK("/a/./b/../c", "/a/c");
    NORM_OK("/%61%62", "/ab");
    NORM_OK("/a%2fb", "/a%2Fb");
    NORM_OK("/a/%2e%2e/b", "/b");
    NORM_BAD("/..", "above the root");
    NORM_BAD("/%00", "encoded NUL");
    NORM_BAD("/%4", "short escape");
    NORM_OK("//x", "//x");
    NORM_OK("/a/b/..", "/a/");
    NORM_OK("/a/b/.", "/a/b/");

    /* decoding */
    NORM_OK("/%7e%2D%2e%5F%41%7A%30", "/~-._Az0");
    NORM_OK("/%41%2f%3a%3F%25", "/A%2F%3A%3F%25");
    NORM_OK("/%c3%a9", "/%C3%A9");
    NORM_OK("/a%20b", "/a%20b");
    NORM_BAD("/%", "lone percent");
    NORM_BAD("/a%", "percent at the end");
    NORM_BAD("/%zz", "non-hex escape");
    NORM_BAD("/%g0", "non-hex first digit");
    NORM_BAD("/%0g", "non-hex second digit");
    is_int(norm("/a\0b", 4), PT_ERROR, "raw NUL is an error");
    is_int(norm("/%41", 3), PT_ERROR, "escape cut short by len");
    is_int(norm("/a/..", 4), PT_OK, "len bounds the input");
    is_str(res, res_len, "/a/", "len bounds the input: '/a/.' -> '/a/'");

    /* dot-segments */
    NORM_OK("/", "/");
    NORM_OK("/.", "/");
    NORM_OK("/./", "/");
    NORM_OK("/%2e", "/");
    NORM_OK("/a/.%2E/b", "/b");
    NORM_OK("/a/../b", "/b");
    NORM_OK("/a/b/../../c", "/c");
    NORM_OK("/a/./././b", "/a/b");
    NORM_OK("/a/b/c/./../../g", "/a/g");
    NORM_OK("/a//..", "/a/");
    NORM_OK("//..", "/");
    NORM_OK("/a/../", "/");
    NORM_OK("/..a/.b/a../", "/..a/.b/a../");
    NORM_OK("/a/..%2f", "/a/..%2F");
    NORM_OK("/a/...", "/a/...");
    NORM_BAD("/a/../..", "two levels up from one");
    NORM_BAD("/../a", "leading ..");
    NORM_BAD("/%2e%2e", "encoded .. above the root");

    /* shape */
    NORM_BAD("", "empty");
    NORM_BAD("a/b", "no leading slash");
    NORM_BAD("*", "asterisk");

    /* in place */
    n = sizeof("/x/./%7e/../y%2f") - 1;
    memcpy(buf, "/x/./%7e/../y%2f", n);
    rc = pt_http_normalize_path(buf, n, buf, &n);
    is_int(rc, PT_OK, "in place ok");
    is_str(buf, rc == PT_OK ? n : 0, "/x/y%2F", "in place result");

    return tap_done();
}
