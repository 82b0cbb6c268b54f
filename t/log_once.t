# The LOG phase runs exactly once per request, whatever ends it: a normal
# answer, an early parse error, a timeout, a client that leaves, an
# upstream failure, pipelined requests. One access log line each, and the
# shared request counter moves by the same number.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;
use Time::HiRes qw(sleep time);

my $t = Test::Portico->new()->plan(14);
my $b1 = $t->backend(id => 'b1');

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
limits: { header_timeout: 1s, max_body_size: 1k }
access_log: { path: access.log, format: json }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
  dead: { targets: [ { address: "127.0.0.1:%%PORT_DEAD%%" } ] }
routes:
  - { name: dead, match: { path: /dead }, upstream: dead }
  - { name: hi, match: { path: "=/hi" }, respond: { body: "hi" } }
  - { name: app, match: { path: / }, upstream: app }
EOF

my $port = $t->port('GW');
my $log = $t->testdir . '/access.log';

sub requests_total () {
    my $s = $t->status // {};
    return $s->{requests} // -1;
}

my $before = requests_total();

# 1: a proxied 200; 2: a local 200; 3: a proxied 200 ("/hi/" is not the
# exact "/hi").
http_get('/ok', port => $port);
http_get('/hi', port => $port);
http_get('/hi/', port => $port);
# 4: a malformed head (400), 5: a 413 before the body.
http("GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", port => $port);
http("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n"
     . "Connection: close\r\n\r\n", port => $port);
# 6: a head that never completes: 408 after header_timeout.
my $slow = http("GET / HTTP/1.1\r\nHost: t\r\n", port => $port, start => 1);
# 7: a client that leaves while the upstream is slow (logged as 499).
my $gone = http("GET /slow?delay=1500 HTTP/1.1\r\nHost: t\r\n\r\n",
                port => $port, start => 1);
wait_until(sub { grep { $_->{uri} =~ m{^/slow} } $b1->requests }, 5, 0.01);
close $gone;
# 8: the upstream refuses: 502.
http_get('/dead', port => $port);
# 9-11: three pipelined requests on one connection.
http("GET /p1 HTTP/1.1\r\nHost: t\r\n\r\nGET /hi HTTP/1.1\r\nHost: t\r\n\r\n"
     . "GET /p3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
     port => $port);
my $r408 = http_end($slow, timeout => 5);
like($r408, qr/^HTTP\/1.1 408 /, 'the unfinished head got 408');

my $expected = 11;    # the eight above and three pipelined

# Lines arrive within the periodic flush (1 s).  Wait for them; then for
# the last event that could log a request twice (the slow upstream's
# answer to the client that left, due 1.5 s after it got the request);
# then send one more request: once its line is there, a second line of
# any request before it would be there too.
sub lines () {
    open my $fh, '<', $log or return ();
    return <$fh>;
}
wait_until(sub { my @l = lines(); @l >= $expected }, 10);
my ($slow_req) = grep { $_->{uri} =~ m{^/slow} } $b1->requests;
my $due = ($slow_req ? $slow_req->{time} : time) + 1.5 + 0.1;
sleep($due - time) if $due > time;
http_get('/hi', port => $port, headers => { 'X-Request-ID' => 'barrier' });
wait_until(sub { grep { /"request_id":"barrier"/ } lines() }, 10);
my @lines = lines();
ok(@lines && $lines[-1] =~ /"request_id":"barrier"/,
   'the last line is the request sent last') or diag(join '', @lines);
pop @lines;
is(scalar @lines, $expected, "$expected requests, $expected access log "
   . 'lines before it') or diag(join '', @lines);

my %status;
for (@lines) {
    my $j = eval { decode_json($_) } or next;
    $status{$j->{status}}++;
}
is($status{200}, 6, 'six 200s (three of them pipelined)');
is($status{400}, 1, 'one 400 for the malformed head');
is($status{413}, 1, 'one 413 before the body');
is($status{408}, 1, 'one 408 for the unfinished head');
is($status{499}, 1, 'one 499 for the client that left');
is($status{502}, 1, 'one 502 for the refused upstream');

my %ids = map { (eval { decode_json($_)->{request_id} } // '') => 1 } @lines;
is(scalar keys %ids, $expected, 'every line has its own request id');

# The cross-worker counter counts the same requests (admin ones are not
# in the access log but are counted, so count around them).
my $after = requests_total();
# (minus the /status request that read $before, and the last request).
is($after - $before - 2, $expected,
   'the shared request counter moved by the same number');

# The backend saw only what reached it: /ok, /hi/, /slow, /p1, /p3.
my @seen = map { $_->{uri} } $b1->requests;
is(scalar @seen, 5, 'the backend saw the five proxied requests') or
    diag("@seen");
ok(!grep({ $_ eq '/' } @seen), 'no rejected request reached it');
is(scalar(grep { m{^/p[13]$} } @seen), 2, 'both pipelined proxied ones');
