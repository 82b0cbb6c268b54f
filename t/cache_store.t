# The response cache's memory: LRU eviction in a full zone without a
# failed request, max_object (larger responses stream through uncached),
# chunked responses stored as they pass, POST /cache/purge by key and by
# prefix, entries kept over a reload that keeps the zone size (and gone
# when it changes), gzip applied per client to one stored copy, and HITs
# over HTTP/2.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Digest::MD5 qw(md5_hex);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(51);
my $b1 = $t->backend(id => 'b1');

my $config = <<'EOF';
workers: 2
shm: { cache: %%ZONE%% }
listen: [ { address: "127.0.0.1:%%PORT_GW%%", http2: true } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - name: big
    match: { path: /big/ }
    upstream: app
    cache: { ttl: 60s, max_object: 100k }
  - name: gz
    match: { path: /gz/ }
    upstream: app
    cache: { ttl: 60s }
    compress: { types: [text/plain], min_size: 1k }
  - name: plain
    match: { path: /plain/ }
    upstream: app
  - name: c
    match: { path: / }
    upstream: app
    cache: { ttl: 600s }
EOF

sub config ($zone) { return $config =~ s/%%ZONE%%/$zone/r }

$t->write_config(config('1m'))->run();

my $port = $t->port('GW');
my $admin = $t->port('ADMIN');

sub get ($path, @headers) {
    return parse_response(http_get($path, port => $port,
                                   headers => [@headers], timeout => 10));
}

sub count ($prefix) {
    return scalar grep { index($_->{uri}, $prefix) == 0 } $b1->requests;
}

sub xcache ($res) { $res->{headers}{'x-cache'} // '(none)' }

sub purge ($json) {
    my $res = parse_response(http("POST /cache/purge HTTP/1.1\r\nHost: a\r\n"
                                  . "Content-Type: application/json\r\n"
                                  . 'Content-Length: ' . length($json)
                                  . "\r\nConnection: close\r\n\r\n$json",
                                  port => $admin));
    return ($res->{status}, eval { decode_json($res->{body}) } // {});
}

# --- LRU eviction in a 1 MiB zone ---------------------------------------
# 60 objects of 40 KB cannot all fit; one key kept in use survives.
my ($bad, $hot_misses) = (0, 0);
get('/lru/hot?size=40000');
for my $i (0 .. 59) {
    my $res = get("/lru/$i?size=40000");
    $bad++ unless $res->{status} == 200 && length($res->{body}) == 40000;
    my $hot = get('/lru/hot?size=40000');
    $bad++ unless $hot->{status} == 200 && length($hot->{body}) == 40000;
    $hot_misses++ if xcache($hot) ne 'HIT';
}
is($bad, 0, 'a full zone fails no request: 120 answers whole');
is($hot_misses, 0, 'the key in use was never evicted');
is(xcache(get('/lru/0?size=40000')), 'MISS',
   'the least recently used went first');
is(xcache(get('/lru/59?size=40000')), 'HIT', 'the newest is kept');
unlike($t->error_log, qr/\[(?:alert|crit|emerg)\]/, 'no alert in the log');

# --- max_object -----------------------------------------------------------
my $res = get('/big/x?size=300000');
my $again = get('/big/x?size=300000');
is(xcache($res) . ' ' . xcache($again), 'MISS MISS',
   'over max_object: not stored');
is(length($again->{body}), 300000, 'streamed through whole');
is(count('/big/x'), 2, 'each from the backend');
$res = get('/big/c?size=300000&chunked=1');
$again = get('/big/c?size=300000&chunked=1');
is(xcache($again), 'MISS', 'chunked and over max_object: not stored');
is(length($again->{body}), 300000, 'and whole');
$res = get('/big/s?size=90000&chunked=1');
$again = get('/big/s?size=90000&chunked=1');
is(xcache($again), 'HIT', 'a chunked body under max_object is stored');
is(length($again->{body}), 90000, 'whole');
is(md5_hex($again->{body}), md5_hex($res->{body}), 'byte for byte');
ok(defined $again->{headers}{'content-length'},
   'served from the cache with its length');

# --- purge ------------------------------------------------------------------
get('/p/a'); get('/p/b'); get('/q/c');
is(xcache(get('/p/a')) . xcache(get('/p/b')) . xcache(get('/q/c')),
   'HITHITHIT', 'three entries');
my ($st, $body) = purge('{"route": "c", "key": "GETlocalhost/p/a?"}');
is($st, 200, 'purge by key: 200');
is($body->{purged}, 1, 'one purged');
is(xcache(get('/p/a')), 'MISS', 'the key is gone (and stored again)');
is(xcache(get('/p/b')), 'HIT', 'its neighbour stays');
($st, $body) = purge('{"route": "c", "prefix": "GETlocalhost/p/"}');
is($body->{purged}, 2, 'purge by prefix: both');
is(xcache(get('/p/b')), 'MISS', 'gone');
is(xcache(get('/q/c')), 'HIT', 'another prefix stays');
($st, $body) = purge('{"route": "big", "prefix": "GETlocalhost/q/"}');
is($body->{purged}, 0, 'another route: nothing of this one');
is(xcache(get('/q/c')), 'HIT', 'still there');

($st) = purge('{"route": "c", "key": 1}');
is($st, 400, 'a key that is not a string: 400');
($st) = purge('{"route": "c", "key": "x", "prefix": "y"}');
is($st, 400, 'key and prefix at once: 400');
($st) = purge('not json');
is($st, 400, 'not JSON: 400');
($st, $body) = purge('{"route": "plain", "key": "x"}');
is($st, 404, 'a route without cache: 404');
($st) = purge('{"route": "nope", "key": "x"}');
is($st, 404, 'no such route: 404');
$res = parse_response(http_get('/cache/purge', port => $admin));
is($res->{status}, 405, 'GET /cache/purge: 405');
is($res->{headers}{allow}, 'POST', 'with Allow: POST');
$res = parse_response(http("POST /cache/purge HTTP/1.1\r\nHost: a\r\n"
                           . "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
                           port => $port));
is($res->{status}, 200, 'the public listener has no purge endpoint ...');
is(xcache($res), 'BYPASS', '... it is a POST to the catch-all route');

# --- gzip on one stored copy ----------------------------------------------
my $gz = get('/gz/x?size=20000', 'Accept-Encoding' => 'gzip');
is(xcache($gz), 'MISS', 'a gzip client: MISS');
is($gz->{headers}{'content-encoding'}, 'gzip', 'compressed');
my $id = get('/gz/x?size=20000');
is(xcache($id), 'HIT', 'an identity client: HIT on the same entry');
ok(!exists $id->{headers}{'content-encoding'}, 'not compressed');
is(length($id->{body}), 20000, 'whole');
my $gz2 = get('/gz/x?size=20000', 'Accept-Encoding' => 'gzip');
is(xcache($gz2) . ' ' . ($gz2->{headers}{'content-encoding'} // ''),
   'HIT gzip', 'a gzip client again: HIT, compressed on the way out');
my $plain;
gunzip(\$gz2->{body}, \$plain) or diag($GunzipError);
is($plain, $id->{body}, 'it decompresses to the stored body');
is(count('/gz/x'), 1, 'one backend request for all three');
like($gz2->{headers}{vary} // '', qr/accept-encoding/i,
     'Vary: Accept-Encoding on the hit');

# --- HTTP/2 --------------------------------------------------------------
my ($rc, $out) = curl('--http2-prior-knowledge', '-i',
                      '-H', 'Host: localhost',
                      "http://127.0.0.1:$port/q/c");
is($rc, 0, 'an HTTP/2 request');
like($out, qr{^HTTP/2 200}m, 'over HTTP/2');
like($out, qr/^x-cache: HIT\r?$/mi, 'a HIT');

# --- reload ---------------------------------------------------------------
my $before = count('/q/c');
$t->write_config(config('1m'))->reload;
ok($t->wait_generation(2), 'reloaded, same zone size');
is(xcache(get('/q/c')), 'HIT', 'the entry survived the reload');
is(count('/q/c'), $before, 'no backend request');

$t->write_config(config('2m'))->reload;
ok($t->wait_generation(3), 'reloaded with another zone size');
is(xcache(get('/q/c')), 'MISS', 'a new zone starts empty');
is(xcache(get('/q/c')), 'HIT', 'and fills again');

$t->stop;
