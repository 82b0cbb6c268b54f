/*
 * pt_conf_value.h: parsers for the value forms every module's keys share
 * (SPEC section 2): durations, sizes, rates, booleans, integers, addresses
 * and CIDR blocks.
 *
 * Each takes a counted slice (it need not be NUL-terminated and is read
 * only within len), accepts the whole slice or nothing (no surrounding
 * space, no trailing junk), writes its result only on success, and on
 * error returns PT_ERROR with *reason set to a static sentence saying what
 * form was expected, for the caller to put after "FILE:LINE:COL: KEY: ".
 */

#ifndef PT_CONF_VALUE_H
#define PT_CONF_VALUE_H

#include <sys/socket.h>
#include <netinet/in.h>

#include "pt_core.h"


/* The longest duration: exact in a double (metrics, JSON) and far from
 * wrapping when added to any clock reading (about 285,000 years). */
#define PT_CONF_DURATION_MAX   ((pt_msec_t) 1 << 53)

/* The largest size: fits off_t and ssize_t. */
#define PT_CONF_SIZE_MAX       ((uint64_t) INT64_MAX)

/* The largest rate count, so that rate arithmetic in ms (count times a
 * day's ms) cannot overflow 64 bits. */
#define PT_CONF_RATE_MAX       1000000000


/* "250ms" "10s" "5m" "1h" "1d", and compounds from the largest unit to the
 * smallest, each unit at most once ("1h30m", "1m30s", "2s500ms"). A bare
 * number alone is seconds ("90"); "0" is zero. At most
 * PT_CONF_DURATION_MAX. */
int pt_parse_duration(const char *s, size_t len, pt_msec_t *ms,
    const char **reason);

/* "512" "16k" "10m" "1g": bytes, binary multiples, k/m/g in either case.
 * At most PT_CONF_SIZE_MAX. */
int pt_parse_size(const char *s, size_t len, uint64_t *bytes,
    const char **reason);


typedef struct {
    uint64_t     count;       /* requests ...            */
    pt_msec_t    period;      /* ... per this many ms    */
} pt_rate_t;

/* "100/s" "6000/m" "1000/h" "10/d"; 1 <= count <= PT_CONF_RATE_MAX. */
int pt_parse_rate(const char *s, size_t len, pt_rate_t *rate,
    const char **reason);

/* true false yes no on off, lower case only: 1 or 0. */
int pt_parse_bool(const char *s, size_t len, int *value,
    const char **reason);

/* A decimal with an optional leading '-', within [min, max]. */
int pt_parse_int(const char *s, size_t len, int64_t min, int64_t max,
    int64_t *value, const char **reason);


typedef struct {
    struct sockaddr_storage  sa;        /* valid unless is_name           */
    socklen_t                socklen;   /* 0 when is_name                 */
    pt_str_t                 host;      /* as written, without [] brackets:
                                           points into the parsed slice,
                                           not NUL-terminated            */
    uint16_t                 port;
    unsigned                 is_name:1; /* host is a DNS name, unresolved */
    char                     text[64 + 256]; /* "127.0.0.1:80", "[::1]:80",
                                                "name:80": normalized, the
                                                name lower-cased; NUL-
                                                terminated               */
} pt_addr_t;

/* "127.0.0.1:8080" "[::1]:8080" "host:8080" "*:8080" (= 0.0.0.0). The port
 * (1-65535) is required unless default_port > 0, which then stands in for
 * a missing one; with a default port a bare IPv6 address ("::1") is
 * accepted too. Host names must be RFC 1123 names (letters, digits and
 * inner hyphens, labels of 1-63, at most 253 bytes, an optional final dot,
 * a last label that is not all digits) and are never resolved here. */
int pt_parse_addr(const char *s, size_t len, int default_port,
    pt_addr_t *addr, const char **reason);


typedef struct {
    int          family;      /* AF_INET or AF_INET6                      */
    uint8_t      addr[16];    /* network order; AF_INET uses 4 bytes      */
    uint8_t      mask[16];
} pt_cidr_t;

/* "10.0.0.0/8" "192.168.1.1" (= /32) "::1" (= /128) "fd00::/8". Host bits
 * set beyond the mask are an error ("10.0.0.1/8"): they usually mean the
 * prefix length is not the one intended. */
int pt_parse_cidr(const char *s, size_t len, pt_cidr_t *cidr,
    const char **reason);

/* 1 when sa is inside cidr, else 0 (also for NULL or another family). An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 CIDRs, and an IPv4
 * address matches IPv6 CIDRs written in that mapped form. */
int pt_cidr_match(const pt_cidr_t *cidr, const struct sockaddr *sa);


#endif /* PT_CONF_VALUE_H */
