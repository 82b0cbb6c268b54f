/*
 * test_ssl_server.c: the parts of TLS termination that are Portico's own
 * code rather than OpenSSL's: the first-byte test that tells plain HTTP
 * from TLS, server name and subjectAltName matching, the ALPN choice over
 * a client's (hostile) list, ticket key rotation in the shared zone, and
 * the shared session cache (hash, LRU eviction, expiry).
 */

#include "pt_core.h"
#include "pt_log.h"
#include "pt_time.h"
#include "pt_slab.h"
#include "pt_ssl_conn.h"

#include "tap.h"


#define HOUR_MS   ((uint64_t) 3600 * 1000)


static void
test_first_byte(void)
{
    ok(pt__ssl_is_handshake_byte(0x16), "0x16 (handshake record) is TLS");
    ok(pt__ssl_is_handshake_byte(0x80), "0x80 (SSLv2-style hello) goes to "
       "OpenSSL, which refuses it properly");
    ok(!pt__ssl_is_handshake_byte('G'), "'G' (GET) is plain HTTP");
    ok(!pt__ssl_is_handshake_byte('P'), "'P' (POST, PUT) is plain HTTP");
    ok(!pt__ssl_is_handshake_byte('\r'), "CR is not TLS");
    ok(!pt__ssl_is_handshake_byte(0x15), "an alert record is not a hello");
}


static void
name_is(const char *in, const char *want)
{
    char    out[256];
    size_t  len;
    int     rc;

    rc = pt__ssl_name_normalize(in, strlen(in), out, &len);

    if (want == NULL) {
        ok(rc == PT_DECLINED, "name \"%s\" is refused", in);
        return;
    }

    ok(rc == PT_OK && len == strlen(want) && memcmp(out, want, len) == 0
       && out[len] == '\0', "name \"%s\" -> \"%s\"", in, want);
}


static void
test_names(void)
{
    char  long_name[300];

    name_is("api.example.com", "api.example.com");
    name_is("API.Example.COM", "api.example.com");
    name_is("api.example.com.", "api.example.com");
    name_is("under_score.test", "under_score.test");
    name_is("x", "x");
    name_is("", NULL);
    name_is(".", NULL);
    name_is(".example.com", NULL);
    name_is("a..b", NULL);
    name_is("a.b..", NULL);
    name_is("a b.com", NULL);
    name_is("a/b.com", NULL);
    name_is("*.example.com", NULL);
    name_is("\xc3\xa9t\xc3\xa9.fr", NULL);

    memset(long_name, 'a', sizeof(long_name));
    long_name[253] = '\0';
    name_is(long_name, long_name);
    long_name[253] = 'a';
    long_name[254] = '\0';
    name_is(long_name, NULL);

    /* An embedded NUL is part of the length, and refused. */
    {
        char    out[256];
        size_t  len;

        ok(pt__ssl_name_normalize("a\0b.com", 7, out, &len) == PT_DECLINED,
           "a name with a NUL inside is refused");
    }
}


static void
san_is(const char *in, int want_rc, int want_wild, const char *want)
{
    int     rc, wild;
    char    out[256];
    size_t  len;

    rc = pt__ssl_san_pattern(in, strlen(in), out, &len, &wild);

    if (want_rc != PT_OK) {
        ok(rc == want_rc, "SAN \"%s\" can match nothing", in);
        return;
    }

    ok(rc == PT_OK && wild == want_wild && len == strlen(want)
       && memcmp(out, want, len) == 0,
       "SAN \"%s\" -> %s \"%s\"", in, want_wild ? "wildcard" : "exact",
       want);
}


static void
test_san(void)
{
    san_is("example.com", PT_OK, 0, "example.com");
    san_is("Example.COM", PT_OK, 0, "example.com");
    san_is("*.example.com", PT_OK, 1, "example.com");
    san_is("*.EXAMPLE.com.", PT_OK, 1, "example.com");
    san_is("*", PT_DECLINED, 0, NULL);
    san_is("*.", PT_DECLINED, 0, NULL);
    san_is("**.example.com", PT_DECLINED, 0, NULL);
    san_is("f*.example.com", PT_DECLINED, 0, NULL);
    san_is("a.*.example.com", PT_DECLINED, 0, NULL);
    san_is("*.*.example.com", PT_DECLINED, 0, NULL);
}


static void
test_alpn(void)
{
    unsigned char         out_len;
    const unsigned char  *out;
    static const unsigned char  srv[] = "\x02h2\x08http/1.1";
    static const unsigned char  srv1[] = "\x08http/1.1";
    static const unsigned char  cli[] = "\x08http/1.1\x02h2";
    static const unsigned char  cli_h2[] = "\x02h2";
    static const unsigned char  cli_long[] = "\x08http/1.1\x09h2";
    static const unsigned char  cli_zero[] = "\x08http/1.1\x00";
    static const unsigned char  cli_prefix[] = "\x07http/1.";

    ok(pt__ssl_alpn_pick(srv, sizeof(srv) - 1, cli, sizeof(cli) - 1, &out,
                         &out_len) == PT_OK
       && out_len == 2 && memcmp(out, "h2", 2) == 0
       && out == cli + 10,
       "ALPN: the server's preference wins, pointing into the client's list");

    ok(pt__ssl_alpn_pick(srv1, sizeof(srv1) - 1, cli, sizeof(cli) - 1, &out,
                         &out_len) == PT_OK
       && out_len == 8 && memcmp(out, "http/1.1", 8) == 0,
       "ALPN: http/1.1 when that is all the listener has");

    ok(pt__ssl_alpn_pick(srv1, sizeof(srv1) - 1, cli_h2, sizeof(cli_h2) - 1,
                         &out, &out_len) == PT_DECLINED,
       "ALPN: nothing in common is declined");

    ok(pt__ssl_alpn_pick(srv1, sizeof(srv1) - 1, cli_prefix,
                         sizeof(cli_prefix) - 1, &out, &out_len)
       == PT_DECLINED,
       "ALPN: a prefix of a protocol is not that protocol");

    ok(pt__ssl_alpn_pick(srv1, sizeof(srv1) - 1, cli_long,
                         sizeof(cli_long) - 1, &out, &out_len) == PT_ERROR,
       "ALPN: a length past the end of the list is an error");

    ok(pt__ssl_alpn_pick(srv1, sizeof(srv1) - 1, cli_zero,
                         sizeof(cli_zero) - 1, &out, &out_len) == PT_ERROR,
       "ALPN: an empty protocol name is an error, even after a match");

    ok(pt__ssl_alpn_pick(srv1, sizeof(srv1) - 1, cli, 0, &out, &out_len)
       == PT_DECLINED,
       "ALPN: an empty client list is declined");
}


static pt_slab_pool_t *
zone(size_t size)
{
    void  *mem;

    mem = aligned_alloc(4096, size);
    if (mem == NULL) {
        return NULL;
    }

    return pt_slab_init(mem, size, "test");
}


static void
test_tickets(void)
{
    int                         n;
    uint64_t                    t0;
    pt_slab_pool_t             *slab;
    pt_ssl_shared_t             sh;
    pt_ssl_ticket_key_t         first, second, third;
    const pt_ssl_ticket_key_t  *keys;

    t0 = (uint64_t) 1800000000 * 1000;
    pt_current_epoch_msec = t0;

    slab = zone(256 * 1024);
    ok(slab && pt_ssl_tickets_zone_init(slab, NULL) == PT_OK,
       "tickets: a fresh zone gets a key");

    if (slab == NULL) {
        return;
    }

    n = pt__ssl_ticket_keys(slab, &keys);
    is_int(n, 1, "tickets: one key at first");
    first = keys[0];

    pt_current_epoch_msec = t0 + 11 * HOUR_MS;
    n = pt__ssl_ticket_keys(slab, &keys);
    ok(n == 1 && memcmp(&keys[0], &first, sizeof(first)) == 0,
       "tickets: the same key until it is due");

    /* Due: the master's tick makes the key; a worker waits for it. */
    pt_current_epoch_msec = t0 + 12 * HOUR_MS;
    n = pt__ssl_ticket_keys(slab, &keys);
    ok(n == 1 && memcmp(&keys[0], &first, sizeof(first)) == 0,
       "tickets: when due, a worker leaves the rotation to the master");

    sh.tickets = slab;
    sh.sessions = NULL;
    pt_ssl_shared_tick(&sh);
    n = pt__ssl_ticket_keys(slab, &keys);
    ok(n == 2 && memcmp(&keys[1], &first, sizeof(first)) == 0
       && memcmp(keys[0].name, first.name, 16) != 0,
       "tickets: the master's tick after 12 h: a new key, the old one "
       "kept as the previous");
    second = keys[0];

    pt_ssl_shared_tick(&sh);
    n = pt__ssl_ticket_keys(slab, &keys);
    ok(n == 2 && memcmp(&keys[0], &second, sizeof(second)) == 0,
       "tickets: a second tick changes nothing");

    pt_current_epoch_msec = t0 + 20 * HOUR_MS;
    n = pt__ssl_ticket_keys(slab, &keys);
    ok(n == 2 && memcmp(&keys[0], &second, sizeof(second)) == 0,
       "tickets: no rotation before the next period");

    /* Late by a few hours: one rotation, the previous key kept. */
    pt_current_epoch_msec = t0 + 27 * HOUR_MS;
    n = pt__ssl_ticket_keys(slab, &keys);
    ok(n == 2 && memcmp(&keys[1], &second, sizeof(second)) == 0,
       "tickets: a late rotation still keeps the previous key");
    third = keys[0];

    /* Idle for days: the previous key would be older than any session. */
    pt_current_epoch_msec = t0 + 100 * HOUR_MS;
    n = pt__ssl_ticket_keys(slab, &keys);
    ok(n == 1 && memcmp(keys[0].name, third.name, 16) != 0,
       "tickets: after a long idle time only a fresh key");
    third = keys[0];

    pt_current_epoch_msec = t0 + 100 * HOUR_MS + 11 * HOUR_MS;
    n = pt__ssl_ticket_keys(slab, &keys);
    ok(n == 1 && memcmp(&keys[0], &third, sizeof(third)) == 0,
       "tickets: ... which then lives a whole period");

    /* The wall clock goes back by days: a fresh key at once, not days of
     * the same one. */
    pt_current_epoch_msec = t0;
    n = pt__ssl_ticket_keys(slab, &keys);
    ok(n == 2 && memcmp(&keys[1], &third, sizeof(third)) == 0,
       "tickets: a clock that went back rotates");

    ok(pt_ssl_tickets_zone_init(slab, slab->data) == PT_OK
       && pt__ssl_ticket_keys(slab, &keys) == 2
       && memcmp(&keys[1], &third, sizeof(third)) == 0,
       "tickets: a reload adopts the zone with its keys");

    free(slab);
}


static void
test_sessions(void)
{
    int                i, stored, declined;
    size_t             n;
    uint64_t           now;
    pt_ssl_shared_t    sh;
    pt_ssl_stats_t     st;
    pt_slab_pool_t    *slab, *tickets;
    unsigned char      id[32], der[PT_SSL_SESSION_MAX + 1], buf[2048];

    pt_current_epoch_msec = (uint64_t) 1800000000 * 1000;
    now = pt_current_epoch_msec / 1000;

    slab = zone(128 * 1024);
    tickets = zone(64 * 1024);

    ok(slab && tickets && pt_ssl_sessions_zone_init(slab, NULL) == PT_OK
       && pt_ssl_tickets_zone_init(tickets, NULL) == PT_OK,
       "sessions: a fresh cache");

    if (slab == NULL || tickets == NULL) {
        return;
    }

    sh.tickets = tickets;
    sh.sessions = slab;

    memset(id, 0, sizeof(id));
    memset(der, 'x', sizeof(der));

    id[0] = 1;
    ok(pt__ssl_session_store(slab, id, 32, der, 200, now + 60) == PT_OK,
       "sessions: stored");
    der[0] = 'y';
    ok(pt__ssl_session_store(slab, id, 32, der, 300, now + 60) == PT_OK,
       "sessions: the same id stored again replaces it");

    n = pt__ssl_session_fetch(slab, id, 32, buf, sizeof(buf));
    ok(n == 300 && buf[0] == 'y', "sessions: fetched, the newer one");

    ok(pt__ssl_session_fetch(slab, id, 31, buf, sizeof(buf)) == 0,
       "sessions: a prefix of the id is another id");
    ok(pt__ssl_session_fetch(slab, id, 32, buf, 100) == 0,
       "sessions: not copied into too small a buffer");

    pt_ssl_shared_stats(&sh, &st);
    is_int(st.sessions, 1, "sessions: one in the cache");

    ok(pt__ssl_session_store(slab, id, 32, der, PT_SSL_SESSION_MAX + 1,
                             now + 60) == PT_DECLINED,
       "sessions: a session over the size limit is not cached");
    ok(pt__ssl_session_store(slab, id, 33, der, 10, now + 60)
       == PT_DECLINED, "sessions: an id over 32 bytes is refused");

    pt__ssl_session_remove(slab, id, 32);
    ok(pt__ssl_session_fetch(slab, id, 32, buf, sizeof(buf)) == 0,
       "sessions: removed");

    /* Expired sessions are not given out. */
    id[0] = 2;
    pt__ssl_session_store(slab, id, 32, der, 100, now + 1);
    pt_current_epoch_msec += 2000;
    ok(pt__ssl_session_fetch(slab, id, 32, buf, sizeof(buf)) == 0,
       "sessions: an expired session is a miss");
    now = pt_current_epoch_msec / 1000;

    /* Fill far beyond the zone: the oldest make room, nothing fails. */
    stored = 0;
    declined = 0;

    for (i = 0; i < 2000; i++) {
        memcpy(id, &i, sizeof(i));
        id[31] = 3;

        if (i == 5) {
            /* Session 0 is used again: it should survive the oldest. */
            memset(id, 0, 4);
            pt__ssl_session_fetch(slab, id, 32, buf, sizeof(buf));
            memcpy(id, &i, sizeof(i));
        }

        if (pt__ssl_session_store(slab, id, 32, der, 1000, now + 3600)
            == PT_OK)
        {
            stored++;
        } else {
            declined++;
        }
    }

    is_int(stored, 2000, "sessions: every store succeeds, the zone full");
    is_int(declined, 0, "sessions: none declined");

    pt_ssl_shared_stats(&sh, &st);
    ok(st.evicted > 1000 && st.sessions > 10 && st.sessions < 200,
       "sessions: the oldest were evicted (%llu held, %llu evicted)",
       (unsigned long long) st.sessions, (unsigned long long) st.evicted);

    i = 1999;
    memcpy(id, &i, sizeof(i));
    ok(pt__ssl_session_fetch(slab, id, 32, buf, sizeof(buf)) == 1000,
       "sessions: the newest is there");

    i = 1;
    memcpy(id, &i, sizeof(i));
    ok(pt__ssl_session_fetch(slab, id, 32, buf, sizeof(buf)) == 0,
       "sessions: an old one is gone");

    ok(pt_ssl_sessions_zone_init(slab, slab->data) == PT_OK
       && (i = 1999, memcpy(id, &i, sizeof(i)),
           pt__ssl_session_fetch(slab, id, 32, buf, sizeof(buf)) == 1000),
       "sessions: a reload adopts the cache with its sessions");

    pt__ssl_count(&sh, PT_SSL_STAT_FAILED);
    pt__ssl_count(&sh, PT_SSL_STAT_FAILED);
    pt__ssl_count(&sh, PT_SSL_NSTATS);
    pt_ssl_shared_stats(&sh, &st);
    is_int(st.counters[PT_SSL_STAT_FAILED], 2, "counters: counted");

    free(slab);
    free(tickets);
}


int
main(void)
{
    tap_plan(6 + 17 + 12 + 7 + 10 + 18);

    test_first_byte();
    test_names();
    test_san();
    test_alpn();
    test_tickets();
    test_sessions();

    return tap_done();
}
