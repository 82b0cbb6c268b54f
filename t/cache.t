# The response cache: HITs across workers, RFC 9111 freshness from every
# Cache-Control directive, Expires and the route's ttl, Age, X-Cache on
# every response of a cached route, Vary (configured and the response's),
# 304s answered from the cache, and what is never stored.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use POSIX qw(strftime);
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(75);
my $b1 = $t->backend(id => 'b1');

$t->write_config(<<'EOF')->run();
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - name: plain
    match: { path: /plain/ }
    upstream: app
  - name: accept
    match: { path: /accept/ }
    upstream: app
    cache: { ttl: 60s, vary: [Accept] }
  - name: c
    match: { path: / }
    upstream: app
    cache: { ttl: 60s }
EOF

my $port = $t->port('GW');

sub get ($path, @headers) {
    return parse_response(http_get($path, port => $port,
                                   headers => [@headers]));
}

# Backend requests whose target starts with $prefix.
sub upstream_count ($prefix) {
    return scalar grep { index($_->{uri}, $prefix) == 0 } $b1->requests;
}

sub xcache ($res) { $res->{headers}{'x-cache'} // '(none)' }

# Which response this is: the backend numbers connections and requests.
sub serial ($res) {
    return ($res->{headers}{'x-conn-seq'} // '?') . '.'
           . ($res->{headers}{'x-req-seq'} // '?');
}

# --- a HIT in every worker ----------------------------------------------
my @workers = $t->worker_pids;
is(scalar @workers, 2, 'two workers');

my ($s1, $w1) = $t->connect_worker($port);
ok($w1, 'a connection to one worker');
my $r1 = parse_response(http_end(do {
    print $s1 "GET /shared HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    $s1;
}));
is(xcache($r1), 'MISS', 'first request: MISS');

my ($s2, $w2) = $t->connect_worker($port, avoid => $w1);
isnt($w2, $w1, 'a connection to the other worker');
my $r2 = parse_response(http_end(do {
    print $s2 "GET /shared HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    $s2;
}));
is(xcache($r2), 'HIT', 'the other worker: HIT');
is(serial($r2), serial($r1), 'the same response');
is($r2->{body}, $r1->{body}, 'the same body');
ok(defined $r2->{headers}{age} && $r2->{headers}{age} =~ /^\d+\z/,
   'Age on the hit');
is(upstream_count('/shared'), 1, 'the backend saw one request');

# --- Cache-Control directives, Expires, the ttl -------------------------
sub twice ($path, @h) {
    my $a = get($path, @h);
    my $b = get($path, @h);
    return ($a, $b);
}

my ($a, $b);

($a, $b) = twice('/cc/nostore?header.Cache-Control=no-store');
is(xcache($a) . ' ' . xcache($b), 'MISS MISS', 'no-store: never stored');
is(upstream_count('/cc/nostore'), 2, 'no-store: both reach the backend');

($a, $b) = twice('/cc/private?header.Cache-Control=private,%20max-age=60');
is(xcache($b), 'MISS', 'private: not stored by a shared cache');
is(upstream_count('/cc/private'), 2, 'private: both reach the backend');

($a, $b) = twice('/cc/maxage0?header.Cache-Control=max-age=0');
is(xcache($b), 'MISS', 'max-age=0 without a validator: not kept');

($a, $b) = twice('/cc/maxage?header.Cache-Control=max-age=60');
is(xcache($b), 'HIT', 'max-age=60: HIT');

($a, $b) = twice('/cc/smaxage?header.Cache-Control=max-age=0,%20s-maxage=60');
is(xcache($b), 'HIT', 's-maxage wins over max-age for a shared cache');

($a, $b) = twice('/cc/nocache?etag=n1&header.Cache-Control=no-cache');
is(xcache($b), 'REVALIDATED', 'no-cache: revalidated on every use');
is(upstream_count('/cc/nocache'), 2, 'no-cache: the backend asked again');
my ($reval) = (grep { index($_->{uri}, '/cc/nocache') == 0 } $b1->requests)[1];
is($reval->{headers}{'if-none-match'}, '"n1"',
   'the revalidation carries If-None-Match');
is($b->{status}, 200, 'the client gets the stored 200');
is(serial($b), serial($a), 'with the stored body');

my $future = strftime('%a,%%20%d%%20%b%%20%Y%%20%H:%M:%S%%20GMT',
                      gmtime(time + 3600));
($a, $b) = twice("/cc/expires?header.Expires=$future");
is(xcache($b), 'HIT', 'Expires in the future: HIT');

my $past = strftime('%a,%%20%d%%20%b%%20%Y%%20%H:%M:%S%%20GMT',
                    gmtime(time - 3600));
($a, $b) = twice("/cc/expired?header.Expires=$past");
is(xcache($b), 'MISS', 'Expires in the past: stale at once, not kept');

# An hour-old Date: the hour counts as the response's age (RFC 9111
# 4.2.3), so of Expires - Date = 3700 s, 100 s are left.
my $date = strftime('%a,%%20%d%%20%b%%20%Y%%20%H:%M:%S%%20GMT',
                    gmtime(time - 3600));
my $exp = strftime('%a,%%20%d%%20%b%%20%Y%%20%H:%M:%S%%20GMT',
                   gmtime(time + 100));
($a, $b) = twice("/cc/olddate?header.Date=$date&header.Expires=$exp");
is(xcache($b), 'HIT', 'Expires minus an old Date: still fresh');
cmp_ok($b->{headers}{age}, '>=', 3600, 'and its age is what Date says');

($a, $b) = twice('/cc/badexpires?header.Expires=0');
is(xcache($b), 'MISS', 'an invalid Expires means already expired');

($a, $b) = twice('/cc/ttl');
is(xcache($b), 'HIT', 'no freshness information: the route ttl');

$b = get('/cc/age?header.Cache-Control=max-age=600&header.Age=100');
$b = get('/cc/age?header.Cache-Control=max-age=600&header.Age=100');
is(xcache($b), 'HIT', 'a response with Age is stored');
like($b->{headers}{age} // '', qr/^\d+\z/, 'one Age field, ours');
cmp_ok($b->{headers}{age}, '>=', 100, 'its age counts the upstream Age');

($a, $b) = twice('/cc/oldage?header.Cache-Control=max-age=60&header.Age=61');
is(xcache($b), 'MISS', 'older than max-age on arrival: not fresh, not kept');

($a, $b) = twice('/cc/cookie?header.Set-Cookie=s=1');
is(xcache($b), 'MISS', 'a response that sets a cookie is not stored');

($a, $b) = twice('/cc/vary-star?header.Vary=*');
is(xcache($b), 'MISS', 'Vary: * is not stored');

($a, $b) = twice('/cc/auth', Authorization => 'Bearer x');
is(xcache($b), 'MISS', 'a response to Authorization is not shared ...');
($a, $b) = twice('/cc/authpub?header.Cache-Control=public',
                 Authorization => 'Bearer x');
is(xcache($b), 'HIT', '... unless the upstream says public');

# Statuses: 404 by default, 500 never.
($a, $b) = twice('/cc/404?status=404');
is($b->{status} . ' ' . xcache($b), '404 HIT', '404 is cached');
($a, $b) = twice('/cc/500?status=500');
is($b->{status} . ' ' . xcache($b), '500 MISS', '500 is not');
($a, $b) = twice('/cc/302?status=302');
is(xcache($b), 'MISS', 'nor a 302');

# --- what the client asks -----------------------------------------------
get('/ask/x?etag=a1');
$b = get('/ask/x?etag=a1', 'Cache-Control' => 'no-cache');
is(xcache($b), 'REVALIDATED', 'request no-cache: revalidated upstream');
is(upstream_count('/ask/x'), 2, 'one more backend request');
$b = get('/ask/x?etag=a1', Pragma => 'no-cache');
is(xcache($b), 'REVALIDATED', 'Pragma: no-cache alike');
$b = get('/ask/x?etag=a1', 'Cache-Control' => 'max-age=0');
is(xcache($b), 'REVALIDATED', 'and max-age=0');

get('/ask/y');
$b = get('/ask/y', 'Cache-Control' => 'no-cache');
is(xcache($b), 'EXPIRED', 'no validator: fetched again whole');
is(upstream_count('/ask/y'), 2, 'from the backend');
$b = get('/ask/y');
is(serial($b), serial(get('/ask/y')), 'and the new copy is stored');

$b = get('/ask/z', 'Cache-Control' => 'no-store');
is(xcache($b), 'BYPASS', 'request no-store: BYPASS');
$b = get('/ask/z');
is(xcache($b), 'MISS', 'and nothing was stored');

$b = parse_response(http("POST /ask/post HTTP/1.1\r\nHost: t\r\n"
                         . "Content-Length: 2\r\nConnection: close\r\n\r\nhi",
                         port => $port));
is(xcache($b), 'BYPASS', 'POST: BYPASS');
$b = parse_response(http("DELETE /cc/ttl HTTP/1.1\r\nHost: t\r\n"
                         . "Connection: close\r\n\r\n", port => $port));
is(xcache($b), 'BYPASS', 'DELETE: BYPASS');

$b = parse_response(http("HEAD /head/x HTTP/1.1\r\nHost: t\r\n"
                         . "Connection: close\r\n\r\n", port => $port),
                    head => 1);
$b = parse_response(http("HEAD /head/x HTTP/1.1\r\nHost: t\r\n"
                         . "Connection: close\r\n\r\n", port => $port),
                    head => 1);
is(xcache($b), 'HIT', 'HEAD is cached (its own key: ${method} is in it)');
ok($b->{headers}{'content-length'} > 0,
   'with the Content-Length the upstream gave');
is($b->{body}, '', 'and no body');

# --- conditional requests answered from the cache -----------------------
get('/cond/e?etag=c1');
$b = get('/cond/e?etag=c1', 'If-None-Match' => '"c1"');
is($b->{status}, 304, 'If-None-Match that matches: 304 from the cache');
is(xcache($b), 'HIT', 'X-Cache: HIT on the 304');
is($b->{headers}{etag}, '"c1"', 'the 304 carries the ETag');
ok(!exists $b->{headers}{'content-type'}, 'and no representation fields');
is($b->{body}, '', 'no body');
$b = get('/cond/e?etag=c1', 'If-None-Match' => 'W/"c1"');
is($b->{status}, 304, 'weak comparison');
$b = get('/cond/e?etag=c1', 'If-None-Match' => '"x", "c1"');
is($b->{status}, 304, 'a list with the tag');
$b = get('/cond/e?etag=c1', 'If-None-Match' => '"other"');
is($b->{status}, 200, 'another tag: 200');
is(upstream_count('/cond/e'), 1, 'all of them from the one stored response');

my $lm = 'Tue,%2001%20Dec%202026%2010:00:00%20GMT';
get("/cond/lm?header.Last-Modified=$lm");
$b = get("/cond/lm?header.Last-Modified=$lm",
         'If-Modified-Since' => 'Tue, 01 Dec 2026 10:00:00 GMT');
is($b->{status}, 304, 'If-Modified-Since at Last-Modified: 304');
$b = get("/cond/lm?header.Last-Modified=$lm",
         'If-Modified-Since' => 'Tue, 01 Dec 2026 09:59:59 GMT');
is($b->{status}, 200, 'If-Modified-Since before it: 200');

# On a miss the client's conditions do not reach the upstream: the cache
# needs the whole response.
$b = get('/cond/miss?etag=m1', 'If-None-Match' => '"m1"', Range => 'bytes=0-1');
is($b->{status}, 200, 'a conditional miss gets the whole 200');
my ($m) = grep { index($_->{uri}, '/cond/miss') == 0 } $b1->requests;
ok(!exists $m->{headers}{'if-none-match'} && !exists $m->{headers}{range},
   'If-None-Match and Range were not forwarded');

# --- Vary ---------------------------------------------------------------
get('/accept/x', Accept => 'application/json');
$b = get('/accept/x', Accept => 'text/html');
is(xcache($b), 'MISS', 'configured vary: another Accept is another entry');
$b = get('/accept/x', Accept => 'application/json');
is(xcache($b), 'HIT', 'the first Accept hits its own');
is(upstream_count('/accept/x'), 2, 'two entries, two backend requests');

get('/vary/x?header.Vary=Accept-Language', 'Accept-Language' => 'en');
$b = get('/vary/x?header.Vary=Accept-Language', 'Accept-Language' => 'fr');
is(xcache($b), 'MISS', "the response's Vary: fr is another variant");
my $en = get('/vary/x?header.Vary=Accept-Language', 'Accept-Language' => 'en');
my $fr = get('/vary/x?header.Vary=Accept-Language', 'Accept-Language' => 'fr');
is(xcache($en) . ' ' . xcache($fr), 'HIT HIT', 'both variants hit');
isnt(serial($en), serial($fr), 'each its own response');
$b = get('/vary/x?header.Vary=Accept-Language');
is(xcache($b), 'MISS', 'no Accept-Language: a third variant');
is(upstream_count('/vary/x'), 3, 'three backend requests in all');

# --- routes without cache -----------------------------------------------
$b = get('/plain/x');
ok(!exists $b->{headers}{'x-cache'}, 'no X-Cache on a route without cache');
is($b->{status}, 200, 'served');

$t->stop;
