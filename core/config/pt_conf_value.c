/*
 * pt_conf_value.c: the shared value parsers (see pt_conf_value.h).
 */

#include <arpa/inet.h>

#include "pt_conf_value.h"
#include "pt_string.h"


#define PT_DURATION_FORM                                                     \
    "invalid duration, expected a number with ms, s, m, h or d "             \
    "(e.g. 250ms, 10s, 1m30s)"
#define PT_SIZE_FORM                                                         \
    "invalid size, expected a number of bytes with an optional k, m or g "   \
    "(e.g. 512, 16k, 10m)"
#define PT_RATE_FORM                                                         \
    "invalid rate, expected a count per s, m, h or d (e.g. 100/s, 6000/m)"
#define PT_ADDR_FORM                                                         \
    "invalid address, expected host:port, IPv4:port or [IPv6]:port "         \
    "(e.g. 127.0.0.1:8080, [::1]:8080)"
#define PT_CIDR_FORM                                                         \
    "invalid CIDR, expected an address with an optional /prefix length "     \
    "(e.g. 10.0.0.0/8, fd00::/8)"

#define pt_isdigit(c)   ((c) >= '0' && (c) <= '9')


static size_t pt_conf_number(const char *s, size_t len, uint64_t max,
    uint64_t *v, int *overflow);
static int pt_conf_port(const char *s, size_t len, uint16_t *port,
    const char **reason);
static int pt_conf_host_name(const char *s, size_t len);
static int pt_conf_inet(int family, const char *s, size_t len, void *dst);


/* Digits at s as a number <= max: returns how many were read (0 if none);
 * *overflow is set when the number goes past max. */
static size_t
pt_conf_number(const char *s, size_t len, uint64_t max, uint64_t *v,
    int *overflow)
{
    size_t    i;
    uint64_t  d;

    *v = 0;
    *overflow = 0;

    for (i = 0; i < len && pt_isdigit(s[i]); i++) {
        d = (uint64_t) (s[i] - '0');

        if (*v > (max - d) / 10) {
            *overflow = 1;

        } else {
            *v = *v * 10 + d;
        }
    }

    return i;
}


int
pt_parse_duration(const char *s, size_t len, pt_msec_t *ms,
    const char **reason)
{
    int        overflow;
    size_t     i, n;
    unsigned   rank, last;
    uint64_t   v, mult, total;

    if (len == 0) {
        *reason = PT_DURATION_FORM;
        return PT_ERROR;
    }

    total = 0;
    last = 6;           /* above "d": any unit may come first */

    for (i = 0; i < len; /* void */) {
        n = pt_conf_number(s + i, len - i, UINT64_MAX, &v, &overflow);
        if (n == 0) {
            *reason = PT_DURATION_FORM;
            return PT_ERROR;
        }

        i += n;

        if (i == len) {
            /* a bare number is seconds, but only on its own: "1m30" is
             * more likely a slip than 1m30s */
            if (last != 6) {
                *reason = PT_DURATION_FORM;
                return PT_ERROR;
            }

            rank = 2;
            mult = 1000;

        } else if (s[i] == 'm' && i + 1 < len && s[i + 1] == 's') {
            rank = 1;
            mult = 1;
            i += 2;

        } else {
            switch (s[i]) {
            case 's': rank = 2; mult = 1000; break;
            case 'm': rank = 3; mult = 60 * 1000; break;
            case 'h': rank = 4; mult = 3600 * 1000; break;
            case 'd': rank = 5; mult = 86400 * 1000; break;
            default:
                *reason = PT_DURATION_FORM;
                return PT_ERROR;
            }

            i++;
        }

        if (rank >= last) {
            *reason = "invalid duration, units must go from the largest to "
                      "the smallest, each once (e.g. 1h30m, 1m30s)";
            return PT_ERROR;
        }

        last = rank;

        if (overflow || v > PT_CONF_DURATION_MAX / mult
            || v * mult > PT_CONF_DURATION_MAX - total)
        {
            *reason = "duration too large";
            return PT_ERROR;
        }

        total += v * mult;
    }

    *ms = total;

    return PT_OK;
}


int
pt_parse_size(const char *s, size_t len, uint64_t *bytes,
    const char **reason)
{
    int       overflow;
    size_t    n;
    unsigned  shift;
    uint64_t  v;

    n = pt_conf_number(s, len, UINT64_MAX, &v, &overflow);

    if (n == 0 || len - n > 1) {
        *reason = PT_SIZE_FORM;
        return PT_ERROR;
    }

    shift = 0;

    if (n < len) {
        switch (s[n]) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default:
            *reason = PT_SIZE_FORM;
            return PT_ERROR;
        }
    }

    if (overflow || v > (PT_CONF_SIZE_MAX >> shift)) {
        *reason = "size too large";
        return PT_ERROR;
    }

    *bytes = v << shift;

    return PT_OK;
}


int
pt_parse_rate(const char *s, size_t len, pt_rate_t *rate,
    const char **reason)
{
    int        overflow;
    size_t     n;
    uint64_t   v;
    pt_msec_t  period;

    n = pt_conf_number(s, len, UINT64_MAX, &v, &overflow);

    if (n == 0 || len - n != 2 || s[n] != '/') {
        *reason = PT_RATE_FORM;
        return PT_ERROR;
    }

    switch (s[n + 1]) {
    case 's': period = 1000; break;
    case 'm': period = 60 * 1000; break;
    case 'h': period = 3600 * 1000; break;
    case 'd': period = 86400 * 1000; break;
    default:
        *reason = PT_RATE_FORM;
        return PT_ERROR;
    }

    if (v == 0) {
        *reason = "invalid rate, the count must be at least 1";
        return PT_ERROR;
    }

    if (overflow || v > PT_CONF_RATE_MAX) {
        *reason = "rate too large, the count is at most 1000000000";
        return PT_ERROR;
    }

    rate->count = v;
    rate->period = period;

    return PT_OK;
}


int
pt_parse_bool(const char *s, size_t len, int *value, const char **reason)
{
    size_t  i;

    static const struct {
        const char  *word;
        int          value;
    } words[] = {
        { "true", 1 }, { "yes", 1 }, { "on", 1 },
        { "false", 0 }, { "no", 0 }, { "off", 0 },
    };

    for (i = 0; i < pt_nelems(words); i++) {
        if (len == strlen(words[i].word)
            && memcmp(s, words[i].word, len) == 0)
        {
            *value = words[i].value;
            return PT_OK;
        }
    }

    *reason = "invalid boolean, expected true or false (or yes/no, on/off)";
    return PT_ERROR;
}


int
pt_parse_int(const char *s, size_t len, int64_t min, int64_t max,
    int64_t *value, const char **reason)
{
    int       neg, overflow;
    size_t    n;
    int64_t   v;
    uint64_t  u;

    neg = (len > 0 && s[0] == '-');

    /* the magnitude of INT64_MIN is INT64_MAX + 1 */
    n = pt_conf_number(s + neg, len - neg, (uint64_t) INT64_MAX + neg, &u,
                       &overflow);

    if (n == 0 || n != len - neg) {
        *reason = "invalid integer, expected a decimal number";
        return PT_ERROR;
    }

    if (overflow) {
        *reason = "integer out of range";
        return PT_ERROR;
    }

    if (neg) {
        v = (u == (uint64_t) INT64_MAX + 1) ? INT64_MIN : -(int64_t) u;

    } else {
        v = (int64_t) u;
    }

    if (v < min || v > max) {
        *reason = "integer out of range";
        return PT_ERROR;
    }

    *value = v;

    return PT_OK;
}


int
pt_parse_addr(const char *s, size_t len, int default_port, pt_addr_t *addr,
    const char **reason)
{
    int                   colons;
    char                 *p;
    size_t                i, hlen;
    uint16_t              port;
    const char           *host, *ps, *end;
    struct sockaddr_in    sin;
    struct sockaddr_in6   sin6;
    char                  ip[INET6_ADDRSTRLEN];

    if (len == 0 || len > 64 + 253) {
        *reason = PT_ADDR_FORM;
        return PT_ERROR;
    }

    end = s + len;
    ps = NULL;             /* the port's digits, if written */

    if (s[0] == '[') {
        host = s + 1;
        p = memchr(s, ']', len);
        if (p == NULL) {
            *reason = PT_ADDR_FORM;
            return PT_ERROR;
        }

        hlen = (size_t) (p - host);

        if (p + 1 < end) {
            if (p[1] != ':') {
                *reason = PT_ADDR_FORM;
                return PT_ERROR;
            }

            ps = p + 2;
        }

        colons = 2;        /* what is inside brackets must be IPv6 */

    } else {
        host = s;

        for (colons = 0, i = 0; i < len; i++) {
            colons += (s[i] == ':');
        }

        if (colons == 1) {
            p = memchr(s, ':', len);
            hlen = (size_t) (p - s);
            ps = p + 1;

        } else {
            hlen = len;
        }

        if (colons > 1 && default_port <= 0) {
            *reason = "an IPv6 address with a port needs brackets "
                      "(e.g. [::1]:8080)";
            return PT_ERROR;
        }
    }

    if (hlen == 0) {
        *reason = PT_ADDR_FORM;
        return PT_ERROR;
    }

    if (ps != NULL) {
        if (pt_conf_port(ps, (size_t) (end - ps), &port, reason) != PT_OK) {
            return PT_ERROR;
        }

    } else if (default_port > 0 && default_port <= 65535) {
        port = (uint16_t) default_port;

    } else {
        *reason = "the address needs a port (e.g. 127.0.0.1:8080)";
        return PT_ERROR;
    }

    memset(addr, 0, sizeof(pt_addr_t));
    addr->host.data = (char *) host;
    addr->host.len = hlen;
    addr->port = port;

    if (colons > 1) {
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);

        if (pt_conf_inet(AF_INET6, host, hlen, &sin6.sin6_addr) != PT_OK) {
            *reason = "invalid IPv6 address";
            return PT_ERROR;
        }

        memcpy(&addr->sa, &sin6, sizeof(sin6));
        addr->socklen = sizeof(sin6);
        inet_ntop(AF_INET6, &sin6.sin6_addr, ip, sizeof(ip));
        snprintf(addr->text, sizeof(addr->text), "[%s]:%u", ip, port);

        return PT_OK;
    }

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);

    if (hlen == 1 && host[0] == '*') {
        sin.sin_addr.s_addr = htonl(INADDR_ANY);

    } else if (pt_conf_inet(AF_INET, host, hlen, &sin.sin_addr) != PT_OK) {
        if (!pt_conf_host_name(host, hlen)) {
            *reason = "invalid host name, expected an IP address or a DNS "
                      "name of letters, digits, '-' and '.'";
            return PT_ERROR;
        }

        addr->is_name = 1;

        /* hlen <= 254 and port <= 65535 fit text */
        for (i = 0; i < hlen; i++) {
            addr->text[i] = (char) pt_tolower(host[i]);
        }

        snprintf(addr->text + hlen, sizeof(addr->text) - hlen, ":%u", port);

        return PT_OK;
    }

    memcpy(&addr->sa, &sin, sizeof(sin));
    addr->socklen = sizeof(sin);
    inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip));
    snprintf(addr->text, sizeof(addr->text), "%s:%u", ip, port);

    return PT_OK;
}


static int
pt_conf_port(const char *s, size_t len, uint16_t *port, const char **reason)
{
    int       overflow;
    size_t    n;
    uint64_t  v;

    n = pt_conf_number(s, len, 65535, &v, &overflow);

    if (n == 0 || n != len || overflow || v == 0) {
        *reason = "invalid port, expected a number from 1 to 65535";
        return PT_ERROR;
    }

    *port = (uint16_t) v;

    return PT_OK;
}


/* RFC 1123 host name syntax; the last label may not be all digits, so
 * that a mistyped IPv4 address ("10.0.0.256") is not taken for a name. */
static int
pt_conf_host_name(const char *s, size_t len)
{
    char    c;
    size_t  i, label, digits;

    if (len > 0 && s[len - 1] == '.') {
        len--;
    }

    if (len == 0 || len > 253) {
        return 0;
    }

    label = 0;
    digits = 0;

    for (i = 0; i < len; i++) {
        c = s[i];

        if (c == '.') {
            if (label == 0 || s[i - 1] == '-') {
                return 0;
            }

            label = 0;
            digits = 0;
            continue;
        }

        if (c == '-') {
            if (label == 0) {
                return 0;
            }

        } else if (pt_isdigit(c)) {
            digits++;

        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            return 0;
        }

        if (++label > 63) {
            return 0;
        }
    }

    return s[len - 1] != '-' && digits != label;
}


/* inet_pton() on a slice. */
static int
pt_conf_inet(int family, const char *s, size_t len, void *dst)
{
    char  buf[INET6_ADDRSTRLEN];

    if (len >= sizeof(buf) || memchr(s, '\0', len) != NULL) {
        return PT_ERROR;
    }

    memcpy(buf, s, len);
    buf[len] = '\0';

    return inet_pton(family, buf, dst) == 1 ? PT_OK : PT_ERROR;
}


int
pt_parse_cidr(const char *s, size_t len, pt_cidr_t *cidr,
    const char **reason)
{
    int          overflow, family;
    size_t       i, alen, n, bytes;
    uint8_t      addr[16], mask[16];
    uint64_t     bits;
    const char  *slash;

    if (len == 0) {
        *reason = PT_CIDR_FORM;
        return PT_ERROR;
    }

    slash = memchr(s, '/', len);
    alen = slash ? (size_t) (slash - s) : len;

    family = memchr(s, ':', alen) ? AF_INET6 : AF_INET;
    bytes = (family == AF_INET6) ? 16 : 4;

    memset(addr, 0, sizeof(addr));

    if (alen == 0 || pt_conf_inet(family, s, alen, addr) != PT_OK) {
        *reason = PT_CIDR_FORM;
        return PT_ERROR;
    }

    bits = bytes * 8;

    if (slash) {
        n = pt_conf_number(slash + 1, len - alen - 1, 128, &bits, &overflow);

        if (n == 0 || n != len - alen - 1) {
            *reason = PT_CIDR_FORM;
            return PT_ERROR;
        }

        if (overflow || bits > bytes * 8) {
            *reason = family == AF_INET
                      ? "invalid CIDR, the prefix length is at most 32"
                      : "invalid CIDR, the prefix length is at most 128";
            return PT_ERROR;
        }
    }

    memset(mask, 0, sizeof(mask));

    for (i = 0; i < bytes; i++) {
        if (bits >= 8) {
            mask[i] = 0xff;
            bits -= 8;

        } else {
            mask[i] = (uint8_t) (0xff << (8 - bits));
            bits = 0;
        }

        if (addr[i] & ~mask[i]) {
            *reason = "invalid CIDR, the address has bits set beyond the "
                      "prefix length (e.g. 10.0.0.1/8 for 10.0.0.0/8)";
            return PT_ERROR;
        }
    }

    cidr->family = family;
    memcpy(cidr->addr, addr, sizeof(addr));
    memcpy(cidr->mask, mask, sizeof(mask));

    return PT_OK;
}


int
pt_cidr_match(const pt_cidr_t *cidr, const struct sockaddr *sa)
{
    size_t          i, n;
    uint8_t         mapped[16];
    const uint8_t  *a;

    static const uint8_t  v4mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };

    if (sa == NULL) {
        return 0;
    }

    if (sa->sa_family == AF_INET) {
        a = (const uint8_t *)
                &((const struct sockaddr_in *) (const void *) sa)->sin_addr;

        if (cidr->family == AF_INET6) {
            memcpy(mapped, v4mapped, 12);
            memcpy(mapped + 12, a, 4);
            a = mapped;
        }

    } else if (sa->sa_family == AF_INET6) {
        a = (const uint8_t *)
                &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr;

        if (cidr->family == AF_INET) {
            if (memcmp(a, v4mapped, 12) != 0) {
                return 0;
            }

            a += 12;
        }

    } else {
        return 0;
    }

    n = (cidr->family == AF_INET6) ? 16 : 4;

    for (i = 0; i < n; i++) {
        if ((a[i] & cidr->mask[i]) != cidr->addr[i]) {
            return 0;
        }
    }

    return 1;
}
