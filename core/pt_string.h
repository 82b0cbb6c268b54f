/*
 * pt_string.h: helpers on counted strings and bytes.
 */

#ifndef PT_STRING_H
#define PT_STRING_H

#include "pt_core.h"
#include "pt_palloc.h"


#define pt_tolower(c)    ((c) >= 'A' && (c) <= 'Z' ? ((c) | 0x20) : (c))
#define pt_toupper(c)    ((c) >= 'a' && (c) <= 'z' ? ((c) & ~0x20) : (c))

#define pt_str_eq(s, lit) \
    ((s)->len == sizeof(lit) - 1 \
     && memcmp((s)->data, lit, sizeof(lit) - 1) == 0)

/* pt_strcaseeq() against a literal: pt_str_caseeq(&h->name, "te"). */
#define pt_str_caseeq(s, lit)  pt_strcaseeq((s), (lit), sizeof(lit) - 1)

/* The value of a hex digit, or -1. */
static inline int
pt_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Lower-case `len` bytes from src into dst (which may be src). */
void pt_strlow(char *dst, const char *src, size_t len);

/* True when both strings hold the same bytes. */
int pt_str_equal(const pt_str_t *a, const pt_str_t *b);

/* The one comparison for header names and other case-insensitive
 * protocol tokens: true when s holds exactly name[0..len) ignoring ASCII
 * case. Locale-free, unlike strncasecmp(); the lengths are compared
 * first, so a prefix never matches. */
int pt_strcaseeq(const pt_str_t *s, const char *name, size_t len);

/* Copy into the pool, NUL-terminated; NULL when memory is exhausted. */
char *pt_str_dup(pt_pool_t *pool, pt_str_t *dst, const char *s, size_t len);

/* Parse a non-negative decimal; -1 on empty, junk or overflow past max. */
int64_t pt_atoi(const char *s, size_t len, int64_t max);

/* Parse a non-negative hexadecimal; -1 on empty, junk or overflow past max. */
int64_t pt_hextoi(const char *s, size_t len, int64_t max);

/* Write the decimal of v at p, return the end. No NUL. */
char *pt_sprint_uint(char *p, uint64_t v);

/* Bytes needed to JSON-escape s (without quotes), and the escaper; dst
 * must hold pt_json_escape_len() bytes. Valid UTF-8 is copied; control
 * bytes and bytes that are not UTF-8 become \u00XX, so the output is
 * always valid JSON whatever a client sent. */
size_t pt_json_escape_len(const char *s, size_t len);
char *pt_json_escape(char *dst, const char *s, size_t len);

/* 64-bit FNV-1a, for hash tables that are not exposed to attackers'
 * choice of keys without a seed. */
uint64_t pt_hash_fnv1a(const void *data, size_t len, uint64_t seed);


#endif /* PT_STRING_H */
