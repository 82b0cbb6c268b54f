# The TLS handshake in the CONNECT phase: a client that sends nothing,
# or half a ClientHello, is closed once limits.handshake_timeout runs out
# while the worker serves others; the timeouts and a garbage record are
# counted and logged at info; a connection closed before its first byte
# is neither. Plain HTTP sent to the TLS port gets nginx's answer: a 400
# with the JSON error "plain HTTP request sent to HTTPS port", in
# cleartext, and the connection closed.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Test::Portico;
use Time::HiRes qw(time);

my $t = Test::Portico->new()->plan(25);
my $dir = $t->testdir;

tls_ca($dir);
tls_cert($dir, 'srv', names => ['localhost']);

$t->write_config(<<"EOF")->run();
limits: { handshake_timeout: 1s }
listen:
  - address: "127.0.0.1:%%PORT_TLS%%"
    tls:
      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
access_log: { path: access.log, format: "\${status} \${scheme} \${path}" }
routes:
  - { name: r, match: { path: / }, respond: { status: 200, body: "ok\\n" } }
EOF

my $port = $t->port('TLS');

sub connect_tls () {
    return IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                 Proto => 'tcp', Timeout => 5);
}

# Seconds until the server closes $s (reading whatever it sends), or
# undef if it has not after $max.
sub closed_after ($s, $since, $max) {
    my $sel = IO::Select->new($s);
    while (time - $since < $max) {
        next unless $sel->can_read($max - (time - $since));
        my $n = sysread($s, my $buf, 4096);
        return time - $since if !$n;
    }
    return undef;
}

# A silent client and one that stops half-way through its ClientHello:
# the record header announces 512 bytes, 9 of them come.
my $start = time;
my $silent = connect_tls();
my $half = connect_tls();
ok($silent && $half, 'two clients connected');
syswrite($half, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\x01\x02");

# Meanwhile the worker serves a whole TLS exchange.
my $req = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
my ($rc, $out) = s_client($port, input => $req);
like($out, qr/^HTTP\/1\.1 200 OK\r?$/m,
     'another client is served during the stalled handshakes');
ok(time - $start < 1, '... at once, not after them');

# Pipelined requests arriving in one read: all answered, in order.
($rc, $out) = s_client($port, input => "GET /1 HTTP/1.1\r\nHost: l\r\n\r\n"
                                      . "GET /2 HTTP/1.1\r\nHost: l\r\n\r\n"
                                      . "GET /3 HTTP/1.1\r\nHost: l\r\n"
                                      . "Connection: close\r\n\r\n");
is(scalar(() = $out =~ /^HTTP\/1\.1 200 OK\r?$/mg), 3,
   'three pipelined requests over TLS: three answers');

my $t1 = closed_after($silent, $start, 5);
my $t2 = closed_after($half, $start, 5);
ok(defined $t1 && $t1 >= 0.9, 'the silent client is closed after '
                              . 'handshake_timeout');
ok(defined $t2 && $t2 >= 0.9, 'so is the half ClientHello');
ok(defined $t1 && $t1 < 4 && defined $t2 && $t2 < 4,
   '... within a few seconds of it');

# A record that is no handshake at all.
my $junk = connect_tls();
syswrite($junk, "\x16\x03\x01\x00\x05hello");
ok(defined closed_after($junk, time, 5), 'a broken record: closed');

# A connection that closes before its first byte: a probe, no handshake.
my $probe = connect_tls();
close $probe;

my $st = wait_until(sub {
    my $s = $t->status;
    $s && $s->{tls}{timed_out} == 2 && $s->{tls}{failed} >= 1 ? $s : undef;
});
ok($st, '/status: the handshakes are counted');
is($st && $st->{tls}{timed_out}, 2, 'two timed out');
is($st && $st->{tls}{failed}, 1, 'one failed (the probe is not counted)');
is($st && $st->{tls}{handshakes}, 2, 'two completed');

my @lines = split /\n/, $t->error_log;
is(scalar(grep { /\[info\] \d+: TLS handshake timed out, client: 127\.0\.0\.1$/ } @lines),
   2, 'each timeout logged at info');
is(scalar(grep { /\[info\] \d+: TLS handshake failed: .*, client: 127\.0\.0\.1$/ } @lines),
   1, 'the broken record logged at info');
is(scalar(grep { /TLS handshake/ && !/\[info\]/ } @lines), 0,
   'nothing louder');

# Plain HTTP on the TLS port.
my $raw = http("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n", port => $port);
my $r = parse_response($raw // '');
is($r->{status}, 400, 'plain HTTP to the TLS port: 400');
my $body = eval { decode_json($r->{body}) } // {};
is($body->{error}, 'plain HTTP request sent to HTTPS port',
   '... with the reason in the JSON error body');
is($body->{status}, 400, '... and its status');
like($body->{request_id} // '', qr/^[0-9a-f]{32}$/, '... and a request id');
is($r->{headers}{connection}, 'close', 'Connection: close');
ok($raw =~ /\}\n\z/, 'then the connection is closed (nothing after it)');

$raw = http("POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
            . "\r\nhello", port => $port);
is(parse_response($raw // '')->{status}, 400, 'a POST too');

ok(wait_until(sub { ($t->status // {})->{tls}{plain_http} == 2 }),
   '/status counts plain HTTP requests');

# The access log: the TLS request with ${scheme} https, the plain ones
# logged as any 400.
my $log = wait_until(sub {
    open my $fh, '<', "$dir/access.log" or return undef;
    my $text = do { local $/; <$fh> } // '';
    return $text =~ /^400 http \/x\n400 http \/x$/m ? $text : undef;
});
like($log // '', qr/^200 https \/$/m, 'access log: the TLS request, https');
like($log // '', qr/^400 http \/x$/m, 'access log: the plain HTTP ones, 400');
