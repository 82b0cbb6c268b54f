/*
 * pt_string.c: counted-string helpers (see pt_string.h).
 */

#include "pt_string.h"


void
pt_strlow(char *dst, const char *src, size_t len)
{
    while (len--) {
        *dst = (char) pt_tolower(*src);
        dst++;
        src++;
    }
}


int
pt_str_equal(const pt_str_t *a, const pt_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}


int
pt_str_caseequal(const pt_str_t *a, const pt_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || strncasecmp(a->data, b->data, a->len) == 0);
}


char *
pt_str_dup(pt_pool_t *pool, pt_str_t *dst, const char *s, size_t len)
{
    dst->data = pt_pstrndup(pool, s, len);
    dst->len = dst->data ? len : 0;

    return dst->data;
}


int64_t
pt_atoi(const char *s, size_t len, int64_t max)
{
    int64_t  v, d;

    if (len == 0) {
        return -1;
    }

    for (v = 0; len--; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }

        d = *s - '0';
        if (v > (max - d) / 10) {
            return -1;
        }

        v = v * 10 + d;
    }

    return v;
}


int64_t
pt_hextoi(const char *s, size_t len, int64_t max)
{
    int64_t  v, d;
    char     c;

    if (len == 0) {
        return -1;
    }

    for (v = 0; len--; s++) {
        c = *s;

        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else {
            c = (char) (c | 0x20);
            if (c < 'a' || c > 'f') {
                return -1;
            }
            d = c - 'a' + 10;
        }

        if (v > (max - d) / 16) {
            return -1;
        }

        v = v * 16 + d;
    }

    return v;
}


char *
pt_sprint_uint(char *p, uint64_t v)
{
    char   tmp[20], *t;

    t = tmp + sizeof(tmp);

    do {
        *--t = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    memcpy(p, t, (size_t) (tmp + sizeof(tmp) - t));

    return p + (tmp + sizeof(tmp) - t);
}


size_t
pt_json_escape_len(const char *s, size_t len)
{
    size_t         n;
    unsigned char  c;

    for (n = 0; len--; s++) {
        c = (unsigned char) *s;

        if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
            n += 2;
        } else if (c < 0x20 || c == 0x7f) {
            n += 6;
        } else {
            n++;
        }
    }

    return n;
}


char *
pt_json_escape(char *dst, const char *s, size_t len)
{
    static const char  hex[] = "0123456789abcdef";
    unsigned char      c;

    for ( /* void */ ; len--; s++) {
        c = (unsigned char) *s;

        switch (c) {
        case '"':  *dst++ = '\\'; *dst++ = '"'; break;
        case '\\': *dst++ = '\\'; *dst++ = '\\'; break;
        case '\n': *dst++ = '\\'; *dst++ = 'n'; break;
        case '\r': *dst++ = '\\'; *dst++ = 'r'; break;
        case '\t': *dst++ = '\\'; *dst++ = 't'; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                *dst++ = '\\'; *dst++ = 'u'; *dst++ = '0'; *dst++ = '0';
                *dst++ = hex[c >> 4];
                *dst++ = hex[c & 0xf];
            } else {
                *dst++ = (char) c;
            }
        }
    }

    return dst;
}


uint64_t
pt_hash_fnv1a(const void *data, size_t len, uint64_t seed)
{
    const unsigned char  *p = data;
    uint64_t              h;

    h = 0xcbf29ce484222325ULL ^ seed;

    while (len--) {
        h ^= *p++;
        h *= 0x100000001b3ULL;
    }

    return h;
}
