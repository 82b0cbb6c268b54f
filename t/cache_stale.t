# The response cache when entries go stale: revalidation with the
# entry's validators (REVALIDATED) or a whole refetch (EXPIRED),
# stale-while-revalidate refreshing exactly once in the background,
# stale-if-error with the backend stopped, and request collapsing: 50
# concurrent misses over both workers reach the backend as one request.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(38);
my $b1 = $t->backend(id => 'b1');
my $b2 = $t->backend(id => 'b2');

# An upstream whose answer to a revalidation (If-None-Match) differs from
# its first: /x5 fails with a 500, /xn sends a response nobody may store.
my $raw = $t->backend(id => 'raw', handler => sub ($c, $n) {
    while (1) {
        my $req = '';
        while ($req !~ /\r\n\r\n/) {
            sysread($c, $req, 4096, length $req) or return;
        }
        my ($path) = $req =~ m{^GET (\S+)};
        my $inm = $req =~ /^If-None-Match:/mi;
        my ($status, $h, $body) = (200, "ETag: \"t\"\r\n"
                                        . "Cache-Control: max-age=1\r\n", 'old');
        if ($inm && $path eq '/raw/x5') {
            ($status, $h, $body) = (500, '', 'oops');
        } elsif ($inm) {
            ($status, $h, $body) = (200, "Cache-Control: no-store\r\n", 'new');
        }
        print $c "HTTP/1.1 $status X\r\n${h}Content-Length: "
                 . length($body) . "\r\n\r\n$body";
    }
});
my $raw_port = $raw->port;

$t->write_config(<<"EOF")->run();
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
  raw: { targets: [ { address: "127.0.0.1:$raw_port" } ] }
  flaky: { targets: [ { address: "127.0.0.1:%%PORT_B2%%" } ],
           timeouts: { connect: 1s, read: 2s } }
routes:
  - name: swr
    match: { path: /swr/ }
    upstream: app
    cache: { ttl: 60s, stale_while_revalidate: 30s }
  - name: sie
    match: { path: /sie/ }
    upstream: flaky
    cache: { ttl: 60s, stale_if_error: 60s }
  - name: nosie
    match: { path: /nosie/ }
    upstream: flaky
    cache: { ttl: 60s }
  - name: raw
    match: { path: /raw/ }
    upstream: raw
    cache: { ttl: 60s }
  - name: c
    match: { path: / }
    upstream: app
    cache: { ttl: 60s }
EOF

my $port = $t->port('GW');

sub get ($path, @headers) {
    return parse_response(http_get($path, port => $port,
                                   headers => [@headers], timeout => 10));
}

sub count ($b, $prefix) {
    return scalar grep { index($_->{uri}, $prefix) == 0 } $b->requests;
}

sub xcache ($res) { $res->{headers}{'x-cache'} // '(none)' }

sub serial ($res) {
    return ($res->{headers}{'x-conn-seq'} // '?') . '.'
           . ($res->{headers}{'x-req-seq'} // '?');
}

# GET $path until it is no longer a HIT (its entry went stale), at most
# $secs seconds; returns that response.
sub until_not_hit ($path, $secs = 5) {
    my $res;
    wait_until(sub { $res = get($path); xcache($res) ne 'HIT' }, $secs, 0.1);
    return $res;
}

# --- revalidation: 304 or a new response --------------------------------
my $path = '/rv/e?etag=r1&header.Cache-Control=max-age=1';
my $first = get($path);
is(xcache($first), 'MISS', 'stored with an ETag, fresh for 1 s');
my $res = until_not_hit($path);
is(xcache($res), 'REVALIDATED', 'once stale: revalidated');
is(serial($res), serial($first), 'the stored body is served');
my @reqs = grep { index($_->{uri}, '/rv/e') == 0 } $b1->requests;
is(scalar @reqs, 2, 'one conditional request upstream');
is($reqs[1]{headers}{'if-none-match'}, '"r1"', 'with If-None-Match');
is(xcache(get($path)), 'HIT', 'the 304 made it fresh again');

$path = '/rv/n?header.Cache-Control=max-age=1';
$first = get($path);
$res = until_not_hit($path);
is(xcache($res), 'EXPIRED', 'no validator: fetched whole again');
isnt(serial($res), serial($first), 'a new response');
my $again = get($path);
is(xcache($again) . ' ' . serial($again), 'HIT ' . serial($res),
   'and that one is stored');

# A revalidation answered by a 5xx (no stale_if_error on the route): the
# client gets that answer; one that may not be stored: passed on, and the
# stale entry stays as it was.
is(get('/raw/x5')->{body}, 'old', 'stored');
$res = until_not_hit('/raw/x5');
is($res->{status} . ' ' . $res->{body} . ' ' . xcache($res),
   '500 oops EXPIRED', 'a 5xx to the revalidation is passed on');
is(get('/raw/xn')->{body}, 'old', 'stored');
$res = until_not_hit('/raw/xn');
is($res->{status} . ' ' . $res->{body} . ' ' . xcache($res),
   '200 new EXPIRED', 'an unstorable new response is passed on');
$res = get('/raw/xn');
is($res->{body} . ' ' . xcache($res), 'new EXPIRED',
   'and the next request asks again');

# --- stale-while-revalidate --------------------------------------------
$path = '/swr/x?header.Cache-Control=max-age=1&delay=2500';
$first = get($path);
is(xcache($first), 'MISS', 'swr: stored');
$res = until_not_hit($path, 6);
is(xcache($res), 'STALE', 'once stale: served stale at once');
is(serial($res), serial($first), 'the old copy');

# Others meanwhile (the refresh takes 2.5 s upstream) get it stale too,
# and cause no refresh of their own.
my @socks = map {
    http("GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
         port => $port, start => 1)
} 1 .. 10;
my @stale = map { parse_response(http_end($_, timeout => 10)) } @socks;
is(scalar(grep { xcache($_) eq "STALE" } @stale), 10,
   'ten requests during the refresh: all STALE');

ok(wait_until(sub { count($b1, '/swr/x') == 2 }, 10),
   'the background refresh reached the backend');
$res = undef;
ok(wait_until(sub { $res = get($path); xcache($res) eq 'HIT' }, 10),
   'then the entry is fresh again');
isnt(serial($res), serial($first), 'with the refreshed response');
is(count($b1, '/swr/x'), 2, 'refreshed exactly once');

# --- stale-if-error -----------------------------------------------------
my $sie = '/sie/x?header.Cache-Control=max-age=1';
my $nosie = '/nosie/x?header.Cache-Control=max-age=1';
$first = get($sie);
my $nofirst = get($nosie);
is(xcache($first) . ' ' . xcache($nofirst), 'MISS MISS', 'both stored');

$b2->stop;

$res = until_not_hit($sie);
is(xcache($res), 'STALE', 'backend down: stale_if_error serves stale');
is($res->{status}, 200, 'with its status');
is(serial($res), serial($first), 'and its body');
$res = get($sie);
is(xcache($res), 'STALE', 'and again');

$res = until_not_hit($nosie);
is($res->{status}, 502, 'without stale_if_error: 502');
is(xcache($res), 'EXPIRED', 'X-Cache: EXPIRED');
$t->allow_alerts(qr/revalidation failed/);

# --- request collapsing --------------------------------------------------
# 50 clients, half on each worker, ask for one missing key at once.
my @workers = $t->worker_pids;
my ($s0, $w0) = $t->connect_worker($port);
my @conns = ($s0);
my %by = ($w0 => 1);
while (@conns < 25) {
    my ($s, $w) = $t->connect_worker($port);
    push @conns, $s;
    $by{$w}++;
}
while (@conns < 50) {
    my ($s, $w) = $t->connect_worker($port, avoid => $w0);
    push @conns, $s;
    $by{$w}++;
}
is(scalar(keys %by), 2, 'clients on both workers');

$path = '/col/x?delay=1000';
for my $s (@conns) {
    print $s "GET $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
}
my @all = map { parse_response(http_end($_, timeout => 10)) } @conns;
is(scalar(grep { $_->{status} == 200 } @all), 50, 'all 50 answered 200');
is(count($b1, '/col/x'), 1, 'the backend saw exactly one request');
my %serials = map { serial($_) => 1 } @all;
is(scalar(keys %serials), 1, 'everyone got that one response');
is(scalar(grep { xcache($_) eq 'MISS' } @all), 1, 'one MISS');
is(scalar(grep { xcache($_) eq 'HIT' } @all), 49, 'and 49 HITs');

# A response nobody may store: the waiters go to the backend themselves,
# each once, instead of queueing behind each other.
$path = '/col/nostore?delay=500&header.Cache-Control=no-store';
@socks = map {
    http("GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
         port => $port, start => 1)
} 1 .. 5;
@all = map { parse_response(http_end($_, timeout => 10)) } @socks;
is(scalar(grep { $_->{status} == 200 } @all), 5, 'uncacheable: all 200');
is(count($b1, '/col/nostore'), 5, 'each its own backend request');
is(scalar(grep { xcache($_) eq 'MISS' } @all), 5, 'all MISS');

$t->stop;
