# Rate limits in local scope (modules/ratelimit): exact across 2 workers
# and 8 concurrent clients, token bucket and sliding window; the 429 and
# the RateLimit headers; keys from templates; empty keys; limits by
# ${remote_addr} before auth and by ${consumer} after; state across HUP;
# a full zone evicts and never fails a request.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Socket::INET;
use MIME::Base64;
use Time::HiRes qw(time sleep clock_gettime CLOCK_MONOTONIC);
use Test::More;
use Test::Portico;
use Test::Portico::RateLimit;

my $t = Test::Portico->new()->has_module(qw/router auth ratelimit/)->plan(29);
my $hash = crypt('pw-alice', '$2b$04$abcdefghijklmnopqrstuu');

$t->write_config(<<"EOF")->run();
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
shm: { ratelimit: 256k }
consumers:
  - { name: alice, password: '$hash' }
routes:
  - name: bucket
    match: { path: /bucket }
    respond: { status: 200, body: "ok" }
    ratelimit: [ { key: "all", rate: 100/s, burst: 20 } ]
  - name: window
    match: { path: /window }
    respond: { status: 200, body: "ok" }
    ratelimit: [ { key: "all", rate: 100/s, algorithm: sliding_window } ]
  - name: per-key
    match: { path: /per-key }
    respond: { status: 200, body: "ok" }
    ratelimit: [ { key: "\${header.X-Key}", rate: 2/m, burst: 1 } ]
  - name: empty-bucket
    match: { path: /empty-bucket }
    respond: { status: 200, body: "ok" }
    ratelimit: [ { key: "\${header.X-Key}", rate: 1/m, empty_key: bucket } ]
  - name: guarded
    match: { path: /guarded }
    respond: { status: 200, body: "ok" }
    auth: { methods: [basic] }
    ratelimit:
      - { key: "\${remote_addr}", rate: 3/m, burst: 2 }
      - { key: "\${consumer}", rate: 1/m }
  - name: many
    match: { path: /many }
    respond: { status: 200, body: "ok" }
    ratelimit: [ { key: "\${query.k}", rate: 10/m } ]
EOF

my $port = $t->port('GW');

sub req ($path, @headers) {
    my $head = join '', map { "$_\r\n" } @headers;
    return parse_response(http("GET $path HTTP/1.1\r\nHost: t\r\n$head"
                               . "Connection: close\r\n\r\n"));
}

# Token bucket, 100/s burst 20, for 10 s: 21 at once, then 100 a second.
my ($ok, $bad) = drive(10, '/bucket', ($port) x 8);
ok($ok >= 1000 && $ok <= 1040,
   "token bucket 100/s burst 20, 10 s, 8 clients, 2 workers: $ok accepted "
   . '(1000-1040)');
is($bad, 0, 'every other answer was a 429');

# Sliding window, 100/s: start right after a window begins (windows are
# whole seconds of the monotonic clock, the same in every process), so
# the 10 s span 10 windows and a sliver.
my $m = clock_gettime(CLOCK_MONOTONIC);
sleep(int($m) + 2.02 - $m);
($ok, $bad) = drive(10, '/window', ($port) x 8);
# The weighted estimate lets a window fill to 99 once the one before was
# full, so 10 windows take about 100 + 9 * 99: 1000 within 2%.
ok($ok >= 980 && $ok <= 1020,
   "sliding window 100/s, 10 s: $ok accepted (980-1020)");
is($bad, 0, 'every other answer was a 429');

# Keys by header: independent.
my $first = req('/per-key', 'X-Key: a');
is($first->{status}, 200, 'key a: first request 200');
is($first->{headers}{'x-ratelimit-remaining'}, 1,
   '  one more left (2/m, burst 1)');
is(req('/per-key', 'X-Key: a')->{status}, 200, 'key a: second request 200');
is(req('/per-key', 'X-Key: b')->{status}, 200, 'key b: still 200');

# The 429 and its headers.
my $r = req('/per-key', 'X-Key: a');
is($r->{status}, 429, 'key a again: 429');
like($r->{body}, qr/"status":429/, 'the JSON error body');
like($r->{headers}{'retry-after'} // '', qr/^([1-9]|[12]\d|30)\z/,
     'Retry-After: within the 30 s a token takes at 2/m');
is($r->{headers}{'ratelimit-policy'}, '"per-key.0";q=2;w=60',
   'RateLimit-Policy: quota and window (IETF draft)');
like($r->{headers}{ratelimit} // '', qr/^"per-key\.0";r=0;t=\d+\z/,
     'RateLimit: remaining 0 and the reset');
is($r->{headers}{'x-ratelimit-limit'}, 2, 'X-RateLimit-Limit');
is($r->{headers}{'x-ratelimit-remaining'}, 0, 'X-RateLimit-Remaining');
like($r->{headers}{'x-ratelimit-reset'} // '', qr/^\d+\z/,
     'X-RateLimit-Reset');
is(req('/per-key')->{status}, 200, 'no key: not limited (empty_key: skip)');
is(req('/per-key')->{status}, 200, '  and again');
ok(!defined req('/per-key')->{headers}{'x-ratelimit-limit'},
   '  and no RateLimit headers for it');
is(req('/empty-bucket')->{status}, 200, 'empty_key: bucket: first 200');
is(req('/empty-bucket')->{status}, 429, '  the empty key is one bucket');

# Before and after auth.
my $alice = 'Authorization: Basic ' . encode_base64('alice:pw-alice', '');
is(req('/guarded', $alice)->{status}, 200, 'guarded: alice 200');
is(req('/guarded', $alice)->{status}, 429,
   'the ${consumer} limit (1/m) runs after auth: 429');
is(req('/guarded')->{status}, 401,
   'no credentials: 401 (the address limit has one left)');
is(req('/guarded')->{status}, 429,
   'the ${remote_addr} limit (3/m) runs before auth: 429, not 401');

# State survives a reload.
$t->reload;
ok($t->wait_log(qr/reload generation \d+ ok/, 15), 'reloaded');
my $after = wait_until(sub {
    my @w = $t->worker_pids;
    return @w == 2 ? 1 : undef;
}, 10);
is(req('/per-key', 'X-Key: a')->{status}, 429,
   'after HUP: key a is still limited');
is(req('/per-key', 'X-Key: c')->{status}, 200, '  key c is not');

# A full zone: more keys than slots (256k holds about 9000); every
# request is answered, none fails for lack of space.
my %seen;
my $s;
for my $k (1 .. 12000) {
    $s //= IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                 Timeout => 5);
    print $s "GET /many?k=$k HTTP/1.1\r\nHost: t\r\n\r\n";
    my $line = <$s> // '';
    my ($st) = $line =~ /^HTTP\/1\.1 (\d+)/;
    $seen{$st // 'none'}++;
    while (defined(my $h = <$s>)) { last if $h eq "\r\n" }
    read($s, my $body, 2);
}
is_deeply(\%seen, { 200 => 12000 },
          '12000 keys through a 256k zone: all 200');
