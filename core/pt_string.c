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
pt_strcaseeq(const pt_str_t *s, const char *name, size_t len)
{
    size_t  i;

    if (s->len != len) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (pt_tolower((unsigned char) s->data[i])
            != pt_tolower((unsigned char) name[i]))
        {
            return 0;
        }
    }

    return 1;
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

    if (len == 0) {
        return -1;
    }

    for (v = 0; len--; s++) {
        d = pt_hexval((unsigned char) *s);
        if (d < 0) {
            return -1;
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


/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one
 * (overlong forms, surrogates and values past U+10FFFF are not). */
static size_t
pt_utf8_seq(const unsigned char *s, size_t len)
{
    size_t    n, i;
    uint32_t  cp;

    if (s[0] < 0x80) {
        return 1;
    }

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }

    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    {
        return 0;
    }

    return n;
}


size_t
pt_json_escape_len(const char *s, size_t len)
{
    size_t               n, seq;
    const unsigned char  *p, *end;

    p = (const unsigned char *) s;
    end = p + len;

    for (n = 0; p < end; /* void */ ) {
        if (*p == '"' || *p == '\\' || *p == '\n' || *p == '\r'
            || *p == '\t')
        {
            n += 2;
            p++;
            continue;
        }

        if (*p < 0x20 || *p == 0x7f) {
            n += 6;
            p++;
            continue;
        }

        seq = pt_utf8_seq(p, (size_t) (end - p));

        if (seq == 0) {
            n += 6;         /* a byte that is not UTF-8: \u00XX */
            p++;
            continue;
        }

        n += seq;
        p += seq;
    }

    return n;
}


char *
pt_json_escape(char *dst, const char *s, size_t len)
{
    static const char     hex[] = "0123456789abcdef";
    size_t                seq;
    const unsigned char  *p, *end;

    p = (const unsigned char *) s;
    end = p + len;

    while (p < end) {
        switch (*p) {
        case '"':  *dst++ = '\\'; *dst++ = '"'; p++; continue;
        case '\\': *dst++ = '\\'; *dst++ = '\\'; p++; continue;
        case '\n': *dst++ = '\\'; *dst++ = 'n'; p++; continue;
        case '\r': *dst++ = '\\'; *dst++ = 'r'; p++; continue;
        case '\t': *dst++ = '\\'; *dst++ = 't'; p++; continue;
        }

        seq = (*p < 0x20 || *p == 0x7f) ? 0
                                        : pt_utf8_seq(p, (size_t) (end - p));

        if (seq == 0) {
            /* Control bytes, and bytes that are not UTF-8 (read as
             * Latin-1), keep the line valid JSON. */
            *dst++ = '\\'; *dst++ = 'u'; *dst++ = '0'; *dst++ = '0';
            *dst++ = hex[*p >> 4];
            *dst++ = hex[*p & 0xf];
            p++;
            continue;
        }

        memcpy(dst, p, seq);
        dst += seq;
        p += seq;
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
