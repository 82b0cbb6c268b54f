/*
 * test_conf_value.c: durations, sizes, rates, booleans, integers,
 * addresses and CIDR blocks, valid and invalid.
 */

#include <arpa/inet.h>

#include "pt_core.h"
#include "pt_conf_value.h"

#include "tap.h"


#define L63  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const char  *reason;


static int
dur(const char *s, pt_msec_t want)
{
    pt_msec_t  ms;

    ms = 12345;
    reason = NULL;

    if (pt_parse_duration(s, strlen(s), &ms, &reason) != PT_OK) {
        printf("#   '%s': %s\n", s, reason ? reason : "(no reason)");
        return 0;
    }

    if (ms != want) {
        printf("#   '%s': got %llu, want %llu\n", s, (unsigned long long) ms,
               (unsigned long long) want);
        return 0;
    }

    return 1;
}


static int
dur_bad(const char *s, const char *why)
{
    pt_msec_t  ms;

    ms = 12345;
    reason = NULL;

    if (pt_parse_duration(s, strlen(s), &ms, &reason) != PT_ERROR) {
        printf("#   '%s' accepted as %llu\n", s, (unsigned long long) ms);
        return 0;
    }

    return ms == 12345 && reason != NULL && strstr(reason, why) != NULL;
}


static int
size_ok(const char *s, uint64_t want)
{
    uint64_t  v;

    reason = NULL;

    if (pt_parse_size(s, strlen(s), &v, &reason) != PT_OK) {
        printf("#   '%s': %s\n", s, reason ? reason : "(no reason)");
        return 0;
    }

    return v == want;
}


static int
size_bad(const char *s, const char *why)
{
    uint64_t  v;

    reason = NULL;

    return pt_parse_size(s, strlen(s), &v, &reason) == PT_ERROR
           && reason != NULL && strstr(reason, why) != NULL;
}


static int
rate_ok(const char *s, uint64_t count, pt_msec_t period)
{
    pt_rate_t  r;

    reason = NULL;

    if (pt_parse_rate(s, strlen(s), &r, &reason) != PT_OK) {
        printf("#   '%s': %s\n", s, reason ? reason : "(no reason)");
        return 0;
    }

    return r.count == count && r.period == period;
}


static int
rate_bad(const char *s, const char *why)
{
    pt_rate_t  r;

    reason = NULL;

    return pt_parse_rate(s, strlen(s), &r, &reason) == PT_ERROR
           && reason != NULL && strstr(reason, why) != NULL;
}


static int
bool_is(const char *s, int want)
{
    int  v;

    v = -1;
    reason = NULL;

    if (want < 0) {
        return pt_parse_bool(s, strlen(s), &v, &reason) == PT_ERROR
               && v == -1 && reason != NULL
               && strstr(reason, "expected true or false") != NULL;
    }

    return pt_parse_bool(s, strlen(s), &v, &reason) == PT_OK && v == want;
}


static int
int_ok(const char *s, int64_t min, int64_t max, int64_t want)
{
    int64_t  v;

    reason = NULL;

    return pt_parse_int(s, strlen(s), min, max, &v, &reason) == PT_OK
           && v == want;
}


static int
int_bad(const char *s, int64_t min, int64_t max, const char *why)
{
    int64_t  v;

    v = 7;
    reason = NULL;

    return pt_parse_int(s, strlen(s), min, max, &v, &reason) == PT_ERROR
           && v == 7 && reason != NULL && strstr(reason, why) != NULL;
}


static pt_addr_t  addr;


static int
addr_ok(const char *s, int def, const char *text, int is_name,
    const char *host)
{
    memset(&addr, 0x5a, sizeof(addr));
    reason = NULL;

    if (pt_parse_addr(s, strlen(s), def, &addr, &reason) != PT_OK) {
        printf("#   '%s': %s\n", s, reason ? reason : "(no reason)");
        return 0;
    }

    if (strcmp(addr.text, text) != 0 || (int) addr.is_name != is_name
        || addr.host.len != strlen(host)
        || memcmp(addr.host.data, host, addr.host.len) != 0)
    {
        printf("#   '%s': text '%s' name %d host '%.*s'\n", s, addr.text,
               addr.is_name, (int) addr.host.len, addr.host.data);
        return 0;
    }

    return 1;
}


static int
addr_bad(const char *s, int def, const char *why)
{
    reason = NULL;

    if (pt_parse_addr(s, strlen(s), def, &addr, &reason) != PT_ERROR) {
        printf("#   '%s' accepted as '%s'\n", s, addr.text);
        return 0;
    }

    if (reason == NULL || strstr(reason, why) == NULL) {
        printf("#   '%s': %s\n", s, reason ? reason : "(no reason)");
        return 0;
    }

    return 1;
}


static int
cidr_bad(const char *s, const char *why)
{
    pt_cidr_t  c;

    reason = NULL;

    if (pt_parse_cidr(s, strlen(s), &c, &reason) != PT_ERROR) {
        printf("#   '%s' accepted\n", s);
        return 0;
    }

    return reason != NULL && strstr(reason, why) != NULL;
}


/* Does text (an IPv4 or IPv6 address) fall in cidr text? -1: bad input. */
static int
in(const char *cidr, const char *ip)
{
    pt_cidr_t            c;
    struct sockaddr_in   sin;
    struct sockaddr_in6  sin6;

    if (pt_parse_cidr(cidr, strlen(cidr), &c, &reason) != PT_OK) {
        return -1;
    }

    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));

    if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        return pt_cidr_match(&c, (struct sockaddr *) &sin);
    }

    if (inet_pton(AF_INET6, ip, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        return pt_cidr_match(&c, (struct sockaddr *) &sin6);
    }

    return -1;
}


static void
test_duration(void)
{
    pt_msec_t  ms;

    ok(dur("250ms", 250), "250ms");
    ok(dur("10s", 10000), "10s");
    ok(dur("5m", 300000), "5m");
    ok(dur("1h", 3600000), "1h");
    ok(dur("1d", 86400000), "1d");
    ok(dur("1m30s", 90000), "1m30s");
    ok(dur("1h30m", 5400000), "1h30m");
    ok(dur("1d2h3m4s5ms", 93784005), "all units");
    ok(dur("0", 0), "0");
    ok(dur("0ms", 0), "0ms");
    ok(dur("90", 90000), "a bare number is seconds");
    ok(dur("007s", 7000), "leading zeros");
    ok(dur("9007199254740992ms", 9007199254740992ULL), "2^53 ms: the max");

    ok(dur_bad("", "invalid duration"), "empty");
    ok(dur_bad("10x", "expected a number with ms"), "unknown unit");
    ok(dur_bad("10s ", "invalid duration"), "trailing space");
    ok(dur_bad(" 10s", "invalid duration"), "leading space");
    ok(dur_bad("10sx", "invalid duration"), "trailing junk");
    ok(dur_bad("s", "invalid duration"), "unit without number");
    ok(dur_bad("-5s", "invalid duration"), "negative");
    ok(dur_bad("1.5s", "invalid duration"), "fraction");
    ok(dur_bad("1m30", "invalid duration"), "bare number after a unit");
    ok(dur_bad("30s1m", "largest to the smallest"), "units out of order");
    ok(dur_bad("1s1s", "largest to the smallest"), "unit twice");
    ok(dur_bad("10S", "invalid duration"), "units are lower case");
    ok(dur_bad("99999999999999999999s", "too large"), "digits overflow");
    ok(dur_bad("9007199254740993ms", "too large"), "2^53+1 ms");
    ok(dur_bad("9007199254741s", "too large"), "seconds past the max");
    ok(dur_bad("106751991167d", "too large"), "days past the max");
    ok(dur("104249991d539m", 9007199254740000ULL), "a sum just below");
    ok(dur_bad("104249991d540m", "too large"), "the sum past the max");

    ms = 1;
    ok(pt_parse_duration("10s", 2, &ms, &reason) == PT_OK && ms == 10000,
       "only len bytes are read");
}


static void
test_size(void)
{
    ok(size_ok("512", 512), "512");
    ok(size_ok("0", 0), "0");
    ok(size_ok("16k", 16384), "16k");
    ok(size_ok("16K", 16384), "16K");
    ok(size_ok("10m", 10485760), "10m");
    ok(size_ok("10M", 10485760), "10M");
    ok(size_ok("1g", 1073741824), "1g");
    ok(size_ok("1G", 1073741824), "1G");
    ok(size_ok("8589934591g", 8589934591ULL << 30), "largest g that fits");
    ok(size_ok("9223372036854775807", INT64_MAX), "INT64_MAX bytes");

    ok(size_bad("", "invalid size"), "empty");
    ok(size_bad("k", "invalid size"), "unit alone");
    ok(size_bad("10kb", "invalid size"), "kb");
    ok(size_bad("10t", "invalid size"), "t");
    ok(size_bad("1.5m", "invalid size"), "fraction");
    ok(size_bad("-1", "invalid size"), "negative");
    ok(size_bad("10 m", "invalid size"), "inner space");
    ok(size_bad("17179869184g", "too large"), "17179869184g overflows");
    ok(size_bad("8589934592g", "too large"), "2^63 bytes");
    ok(size_bad("9223372036854775808", "too large"), "INT64_MAX + 1");
    ok(size_bad("99999999999999999999999", "too large"), "digits overflow");
}


static void
test_rate(void)
{
    ok(rate_ok("100/s", 100, 1000), "100/s");
    ok(rate_ok("6000/m", 6000, 60000), "6000/m");
    ok(rate_ok("1000/h", 1000, 3600000), "1000/h");
    ok(rate_ok("5/d", 5, 86400000), "5/d");
    ok(rate_ok("1000000000/s", 1000000000, 1000), "largest count");

    ok(rate_bad("", "invalid rate"), "empty");
    ok(rate_bad("0/s", "at least 1"), "zero count");
    ok(rate_bad("100", "invalid rate"), "no period");
    ok(rate_bad("100/", "invalid rate"), "empty period");
    ok(rate_bad("/s", "invalid rate"), "no count");
    ok(rate_bad("100/x", "invalid rate"), "unknown period");
    ok(rate_bad("100/sec", "invalid rate"), "long period name");
    ok(rate_bad("100/s ", "invalid rate"), "trailing space");
    ok(rate_bad("1000000001/s", "too large"), "count past the max");
    ok(rate_bad("99999999999999999999999/s", "too large"), "digits overflow");
}


static void
test_bool_int(void)
{
    ok(bool_is("true", 1) && bool_is("yes", 1) && bool_is("on", 1),
       "true yes on");
    ok(bool_is("false", 0) && bool_is("no", 0) && bool_is("off", 0),
       "false no off");
    ok(bool_is("True", -1), "True refused");
    ok(bool_is("", -1), "empty refused");
    ok(bool_is("1", -1), "1 refused");
    ok(bool_is("truex", -1), "trailing junk refused");
    ok(bool_is("tru", -1), "prefix refused");

    ok(int_ok("42", 0, 100, 42), "42");
    ok(int_ok("-42", -100, 100, -42), "-42");
    ok(int_ok("0", 0, 0, 0), "0 in [0, 0]");
    ok(int_ok("100", 0, 100, 100), "max is inclusive");
    ok(int_ok("9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX),
       "INT64_MAX");
    ok(int_ok("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN),
       "INT64_MIN");

    ok(int_bad("101", 0, 100, "out of range"), "above max");
    ok(int_bad("-1", 0, 100, "out of range"), "below min");
    ok(int_bad("", 0, 100, "expected a decimal"), "empty");
    ok(int_bad("-", 0, 100, "expected a decimal"), "sign alone");
    ok(int_bad("+5", 0, 100, "expected a decimal"), "plus sign");
    ok(int_bad("5x", 0, 100, "expected a decimal"), "trailing junk");
    ok(int_bad("0x10", 0, 100, "expected a decimal"), "hex");
    ok(int_bad("9223372036854775808", INT64_MIN, INT64_MAX, "out of range"),
       "INT64_MAX + 1");
    ok(int_bad("-9223372036854775809", INT64_MIN, INT64_MAX, "out of range"),
       "INT64_MIN - 1");
}


static void
test_addr(void)
{
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;

    ok(addr_ok("127.0.0.1:8080", 0, "127.0.0.1:8080", 0, "127.0.0.1"),
       "IPv4:port");
    sin = (struct sockaddr_in *) &addr.sa;
    ok(sin->sin_family == AF_INET && ntohs(sin->sin_port) == 8080
       && ntohl(sin->sin_addr.s_addr) == 0x7f000001
       && addr.socklen == sizeof(struct sockaddr_in) && addr.port == 8080,
       "IPv4 sockaddr");

    ok(addr_ok("[::1]:80", 0, "[::1]:80", 0, "::1"), "[::1]:80");
    sin6 = (struct sockaddr_in6 *) &addr.sa;
    ok(sin6->sin6_family == AF_INET6 && ntohs(sin6->sin6_port) == 80
       && IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)
       && addr.socklen == sizeof(struct sockaddr_in6), "IPv6 sockaddr");

    ok(addr_ok("[2001:DB8:0:0::1]:443", 0, "[2001:db8::1]:443", 0,
               "2001:DB8:0:0::1"), "IPv6 normalized");
    ok(addr_ok("*:80", 0, "0.0.0.0:80", 0, "*"), "*:80 is 0.0.0.0");
    ok(addr_ok("Users.Internal:9001", 0, "users.internal:9001", 1,
               "Users.Internal"), "DNS name, lower-cased in text");
    ok(addr.socklen == 0 && addr.port == 9001, "a name has no sockaddr");
    ok(addr_ok("localhost:1", 0, "localhost:1", 1, "localhost"),
       "single label, port 1");
    ok(addr_ok("a-b.example.com.:65535", 0, "a-b.example.com.:65535", 1,
               "a-b.example.com."), "final dot, port 65535");
    ok(addr_ok("x1.1a.io:80", 0, "x1.1a.io:80", 1, "x1.1a.io"),
       "digits inside labels");

    ok(addr_ok("[::1]", 8080, "[::1]:8080", 0, "::1"),
       "[::1] with a default port");
    ok(addr_ok("10.0.0.1", 53, "10.0.0.1:53", 0, "10.0.0.1"),
       "IPv4 with a default port");
    ok(addr_ok("::1", 53, "[::1]:53", 0, "::1"),
       "bare IPv6 with a default port");
    ok(addr_ok("dns.local", 53, "dns.local:53", 1, "dns.local"),
       "name with a default port");
    ok(addr_ok("dns.local:5353", 53, "dns.local:5353", 1, "dns.local"),
       "an explicit port beats the default");

    ok(addr_bad("[::1]", 0, "needs a port"), "[::1] without a port");
    ok(addr_bad("127.0.0.1", 0, "needs a port"), "IPv4 without a port");
    ok(addr_bad("host", 0, "needs a port"), "name without a port");
    ok(addr_bad("host:0", 0, "1 to 65535"), "host:0");
    ok(addr_bad("host:65536", 0, "1 to 65535"), "host:65536");
    ok(addr_bad("host:", 0, "1 to 65535"), "host: (empty port)");
    ok(addr_bad("host:8o", 0, "1 to 65535"), "port with a letter");
    ok(addr_bad("host:-1", 0, "1 to 65535"), "negative port");
    ok(addr_bad("host:99999999999999999999", 0, "1 to 65535"),
       "huge port");
    ok(addr_bad(":80", 0, "invalid address"), ":80");
    ok(addr_bad("", 80, "invalid address"), "empty");
    ok(addr_bad("::1:80", 0, "needs brackets"), "IPv6 without brackets");
    ok(addr_bad("[::1]80", 0, "invalid address"), "no colon after ]");
    ok(addr_bad("[::1:80", 0, "invalid address"), "no ]");
    ok(addr_bad("[]:80", 0, "invalid address"), "empty brackets");
    ok(addr_bad("[1.2.3.4]:80", 0, "invalid IPv6"), "IPv4 in brackets");
    ok(addr_bad("[fe80::1%eth0]:80", 0, "invalid IPv6"), "zone id");
    ok(addr_bad("[::g]:80", 0, "invalid IPv6"), "bad IPv6");
    ok(addr_bad("-host:80", 0, "invalid host name"), "leading hyphen");
    ok(addr_bad("host-:80", 0, "invalid host name"), "trailing hyphen");
    ok(addr_bad("a-.b:80", 0, "invalid host name"), "label ends in hyphen");
    ok(addr_bad("a..b:80", 0, "invalid host name"), "empty label");
    ok(addr_bad(".a:80", 0, "invalid host name"), "leading dot");
    ok(addr_bad("a_b:80", 0, "invalid host name"), "underscore");
    ok(addr_bad("a b:80", 0, "invalid host name"), "space");
    ok(addr_bad("h\xc3\xa9.com:80", 0, "invalid host name"), "non-ASCII");
    ok(addr_bad("10.0.0.256:80", 0, "invalid host name"),
       "bad IPv4 is not taken for a name");
    ok(addr_bad("1.2.3:80", 0, "invalid host name"), "3-part IPv4");
    ok(addr_bad("01.2.3.4:80", 0, "invalid host name"), "leading zero IPv4");
    ok(addr_bad(L63 "a.com:80", 0, "invalid host name"), "64-byte label");
    ok(addr_ok(L63 ".com:80", 0, L63 ".com:80", 1, L63 ".com"),
       "63-byte label");

    ok(pt_parse_addr("host:80", 4, 81, &addr, &reason) == PT_OK
       && addr.port == 81 && addr.host.len == 4
       && strcmp(addr.text, "host:81") == 0, "only len bytes are read");
    ok(pt_parse_addr("host:8080x", 9, 0, &addr, &reason) == PT_OK
       && addr.port == 8080, "... the junk after len is not seen");
}


static void
test_long_names(void)
{
    int   i;
    char  name[600], *p;

    /* 4 labels of 63 and one of 1: 4 * 64 + 1 = 257 > 253 */
    p = name;
    for (i = 0; i < 4; i++) {
        memset(p, 'a', 63);
        p[63] = '.';
        p += 64;
    }
    strcpy(p, "b:80");
    ok(addr_bad(name, 0, "invalid"), "a name over 253 bytes");

    /* 3 labels of 63 and one of 61: 3 * 64 + 61 = 253 */
    p = name;
    for (i = 0; i < 3; i++) {
        memset(p, 'a', 63);
        p[63] = '.';
        p += 64;
    }
    memset(p, 'b', 61);
    strcpy(p + 61, ".:80");
    reason = NULL;
    ok(pt_parse_addr(name, strlen(name), 0, &addr, &reason) == PT_OK
       && addr.is_name && addr.host.len == 254
       && strlen(addr.text) == 254 + 3, "a 253-byte name with a final dot");
}


static void
test_cidr(void)
{
    pt_cidr_t        c;
    struct sockaddr  other;

    reason = NULL;
    ok(pt_parse_cidr("10.0.0.0/8", 10, &c, &reason) == PT_OK
       && c.family == AF_INET && c.addr[0] == 10 && c.mask[0] == 0xff
       && c.mask[1] == 0, "10.0.0.0/8");
    ok(pt_parse_cidr("192.168.1.1", 11, &c, &reason) == PT_OK
       && c.mask[3] == 0xff, "a bare IPv4 address is a /32");
    ok(pt_parse_cidr("fd00::/8", 8, &c, &reason) == PT_OK
       && c.family == AF_INET6 && c.addr[0] == 0xfd && c.mask[0] == 0xff
       && c.mask[1] == 0, "fd00::/8");
    ok(pt_parse_cidr("::1", 3, &c, &reason) == PT_OK && c.mask[15] == 0xff,
       "a bare IPv6 address is a /128");
    ok(pt_parse_cidr("10.0.0.0/12", 11, &c, &reason) == PT_OK
       && c.mask[1] == 0xf0, "a mask inside a byte");

    ok(in("10.0.0.0/8", "10.1.2.3") == 1, "v4 match");
    ok(in("10.0.0.0/8", "11.0.0.1") == 0, "v4 non-match");
    ok(in("10.16.0.0/12", "10.31.255.255") == 1, "/12 upper edge");
    ok(in("10.16.0.0/12", "10.32.0.0") == 0, "/12 just past");
    ok(in("10.16.0.0/12", "10.15.255.255") == 0, "/12 just before");
    ok(in("0.0.0.0/0", "203.0.113.9") == 1, "/0 matches every v4");
    ok(in("192.168.1.1", "192.168.1.1") == 1, "/32 itself");
    ok(in("192.168.1.1", "192.168.1.2") == 0, "/32 neighbour");
    ok(in("fd00::/8", "fd12:3456::1") == 1, "v6 match");
    ok(in("fd00::/8", "fe80::1") == 0, "v6 non-match");
    ok(in("::1", "::1") == 1, "v6 /128");
    ok(in("10.0.0.0/8", "::ffff:10.9.8.7") == 1,
       "IPv4-mapped IPv6 matches a v4 CIDR");
    ok(in("10.0.0.0/8", "::ffff:11.9.8.7") == 0,
       "IPv4-mapped IPv6 outside a v4 CIDR");
    ok(in("10.0.0.0/8", "::10.9.8.7") == 0,
       "IPv4-compatible (not mapped) does not match");
    ok(in("10.0.0.0/8", "fd00::a09:807") == 0, "plain v6 vs v4 CIDR");
    ok(in("fd00::/8", "10.0.0.1") == 0, "v4 vs v6 CIDR");
    ok(in("::ffff:10.0.0.0/104", "10.1.1.1") == 1,
       "v4 address matches a mapped v6 CIDR");
    ok(in("::/0", "1.2.3.4") == 1, "::/0 matches v4 as mapped");

    ok(pt_cidr_match(&c, NULL) == 0, "NULL sockaddr");
    memset(&other, 0, sizeof(other));
    other.sa_family = AF_UNIX;
    ok(pt_cidr_match(&c, &other) == 0, "AF_UNIX never matches");

    ok(cidr_bad("10.0.0.1/8", "bits set beyond the prefix"),
       "host bits set (v4)");
    ok(cidr_bad("fd00::1/8", "bits set beyond the prefix"),
       "host bits set (v6)");
    ok(cidr_bad("10.0.0.0/33", "at most 32"), "/33");
    ok(cidr_bad("::/129", "at most 128"), "/129");
    ok(cidr_bad("10.0.0.0/999999999999999999999", "at most 32"), "huge /");
    ok(cidr_bad("10.0.0.0/", "invalid CIDR"), "empty prefix");
    ok(cidr_bad("10.0.0.0/8x", "invalid CIDR"), "junk after prefix");
    ok(cidr_bad("10.0.0.0/-8", "invalid CIDR"), "negative prefix");
    ok(cidr_bad("/8", "invalid CIDR"), "no address");
    ok(cidr_bad("", "invalid CIDR"), "empty");
    ok(cidr_bad("10.0.0/8", "invalid CIDR"), "3-part address");
    ok(cidr_bad("host.example/8", "invalid CIDR"), "a name");
    ok(cidr_bad("10.0.0.0 /8", "invalid CIDR"), "space");
}


int
main(void)
{
    tap_plan(179);

    test_duration();
    test_size();
    test_rate();
    test_bool_int();
    test_addr();
    test_long_names();
    test_cidr();

    return tap_done();
}
