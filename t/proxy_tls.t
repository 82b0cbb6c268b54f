# TLS to upstreams: the certificate is verified against `ca` and the
# name against `server_name` (sent as SNI), TLS connections are kept
# alive, sessions resume on new connections, and a wrong CA, a wrong
# name or a cleartext peer that answers is a 502 (a silent one, a 504).

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(21);
my $dir = $t->testdir;
my %tls = tls_files($dir, other_ca => 1);

my $b1 = $t->backend(id => 'b1',
                     tls => { cert => $tls{cert}, key => $tls{key} });
# Cleartext peers: one reads the ClientHello and says nothing (the
# handshake times out: 504), one answers it as an HTTP server would, with
# a 400 and a close (the handshake fails: 502).
my $silent = $t->backend(id => 'silent', handler => sub ($c, $n) {
    sysread($c, my $hello, 4096);
    sleep 30;
});
my $talker = $t->backend(id => 'talker', handler => sub ($c, $n) {
    sysread($c, my $hello, 4096);
    syswrite($c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                 . "Connection: close\r\n\r\n");
});

$t->write_config(<<"EOF")->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  good:
    targets: [ "127.0.0.1:%%PORT_B1%%" ]
    tls: { ca: $tls{ca}, server_name: localhost }
  by_ip:
    targets: [ "127.0.0.1:%%PORT_B1%%" ]
    tls: { ca: $tls{ca} }
  fresh:
    targets: [ "127.0.0.1:%%PORT_B1%%" ]
    keepalive: 0
    tls: { ca: $tls{ca}, server_name: localhost }
  wrong_ca:
    targets: [ "127.0.0.1:%%PORT_B1%%" ]
    tls: { ca: $tls{other_ca}, server_name: localhost }
  wrong_name:
    targets: [ "127.0.0.1:%%PORT_B1%%" ]
    tls: { ca: $tls{ca}, server_name: api.example.com }
  unverified:
    targets: [ "127.0.0.1:%%PORT_B1%%" ]
    tls: { ca: $tls{other_ca}, verify: false }
  silent:
    targets: [ "127.0.0.1:%%PORT_SILENT%%" ]
    timeouts: { connect: 1s }
    tls: { ca: $tls{ca}, server_name: localhost }
  talker:
    targets: [ "127.0.0.1:%%PORT_TALKER%%" ]
    timeouts: { connect: 1s }
    tls: { ca: $tls{ca}, server_name: localhost }
routes:
  - { name: good, match: { path: /good/ }, upstream: good }
  - { name: by_ip, match: { path: /ip/ }, upstream: by_ip }
  - { name: fresh, match: { path: /fresh/ }, upstream: fresh }
  - { name: wrong_ca, match: { path: /wrongca/ }, upstream: wrong_ca }
  - { name: wrong_name, match: { path: /wrongname/ }, upstream: wrong_name }
  - { name: unverified, match: { path: /unverified/ }, upstream: unverified }
  - { name: silent, match: { path: /silent/ }, upstream: silent }
  - { name: talker, match: { path: /talker/ }, upstream: talker }
EOF

my $port = $t->port('GW');

sub get ($path, %o) {
    my $r = parse_response(http_get($path, port => $port, %o));
    return ($r, eval { decode_json($r->{body}) } // {});
}

# Verified against the CA, name checked, SNI sent.
my ($r, $e) = get('/good/1');
is($r->{status}, 200, 'TLS upstream with the right CA and name: 200');
is($e->{uri}, '/good/1', 'the request reached it');
my @log = $b1->requests;
is($log[-1]{tls}{sni}, 'localhost', 'SNI from server_name');

# Keep-alive: the next request rides the same TLS connection.
my ($r2) = get('/good/2');
is($r2->{headers}{'x-conn-seq'}, $r->{headers}{'x-conn-seq'},
   'TLS connection kept alive between requests');

# A 1 MiB body both ways over TLS.
my $big = 'q' x (1024 * 1024);
my $res = parse_response(http("POST /good/up HTTP/1.1\r\nHost: t\r\n"
                              . "Content-Length: " . length($big) . "\r\n"
                              . "Connection: close\r\n\r\n$big",
                              port => $port));
my $echo = eval { decode_json($res->{body}) } // {};
is($echo->{body_length}, length $big, '1 MiB request body over TLS');
($r) = get('/good/down?size=1048576');
is(length $r->{body}, 1048576, '1 MiB response body over TLS');

# Without server_name the target's host is the name: an IP, checked as
# an IP against the certificate's IP address, and no SNI.
($r, $e) = get('/ip/1');
is($r->{status}, 200, 'IP target verified against the IP in the cert');
@log = $b1->requests;
ok(!defined $log[-1]{tls}{sni} || $log[-1]{tls}{sni} eq '',
   'no SNI for an IP address');

# keepalive: 0 means a new connection each time: the session resumes.
get('/fresh/1');
my ($f2) = get('/fresh/2');
@log = $b1->requests;
isnt($log[-1]{conn_seq}, $log[-2]{conn_seq}, 'keepalive: 0 reconnects');
ok($log[-1]{tls}{resumed}, 'and the TLS session is resumed');

# A certificate from another CA: refused, 502, and the reason logged.
($r) = get('/wrongca/1');
is($r->{status}, 502, 'wrong CA: 502');
like($t->wait_log(qr/certificate verify failed/, 5) // '',
     qr/certificate verify failed.*upstream: 127\.0\.0\.1:\d+/,
     'wrong CA: the verify failure is logged with the upstream');

($r) = get('/wrongname/1');
is($r->{status}, 502, 'wrong server name: 502');
like($t->wait_log(qr/hostname mismatch|certificate verify failed: .*name/,
                  5) // '', qr/mismatch|name/,
     'wrong server name: logged');

# verify: false accepts what the wrong CA refused.
($r) = get('/unverified/1');
is($r->{status}, 200, 'verify: false: 200 despite the unknown CA');

# TLS to a cleartext server that waits for a request: the handshake
# times out within the connect timeout (1s): 504.
($r) = get('/silent/1', timeout => 10);
is($r->{status}, 504, 'TLS to a silent cleartext peer: 504, not a hang');
like($t->wait_log(qr/timed out in the TLS handshake/, 5) // '',
     qr/upstream: 127\.0\.0\.1:\d+/, 'the handshake timeout is logged');

# TLS to a cleartext server that answers the ClientHello with an HTTP 400:
# the handshake fails: 502.
($r) = get('/talker/1', timeout => 10);
is($r->{status}, 502, 'TLS to a cleartext HTTP server: 502');

# None of the refused handshakes reached the backend as a request.
my @uris = map { $_->{uri} } $b1->requests;
ok(!grep({ m{^/wrong} } @uris), 'refused peers never saw the request');

# A config error: an unreadable CA file is reported at its position.
my $bad = "$dir/bad.yaml";
write_file($bad, <<"EOF");
listen: [ { address: "127.0.0.1:1" } ]
upstreams:
  u:
    targets: [ "127.0.0.1:1" ]
    tls: { ca: $dir/nonexistent.pem }
routes: [ { name: r, match: { path: / }, upstream: u } ]
EOF
my ($rc, $out) = run_cmd(10, $t->binary, '-t', '-c', $bad);
is($rc, 1, 'a missing CA file fails -t');
like($out, qr/bad\.yaml:5:\d+: /, 'at the tls key, with its position')
    or diag $out;
