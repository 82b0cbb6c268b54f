# HTTP/2 over TLS, chosen by ALPN: a listener with tls and http2: true
# offers "h2" ahead of "http/1.1"; curl --http2 gets HTTP/2 through the
# proxy with X-Forwarded-Proto: https and ${tls.*} filled per stream;
# HTTP/1.1 clients still get HTTP/1.1 on the same port; a TLS listener
# without http2 never selects h2; h2load (10 streams x 100 connections
# over TLS) gets every response 200.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_daemon('h2load')->plan(16);
my $dir = $t->testdir;

tls_ca($dir);
tls_cert($dir, 'srv', names => ['localhost']);
my $b1 = $t->backend(id => 'b1');

$t->write_config(<<"EOF")->run();
listen:
  - address: "127.0.0.1:%%PORT_H2%%"
    http2: true
    tls:
      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key } ]
  - address: "127.0.0.1:%%PORT_H1%%"
    tls:
      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key } ]
upstreams:
  b1: { targets: [ "127.0.0.1:%%PORT_B1%%" ] }
routes:
  - name: proxied
    match: { path: /api/ }
    upstream: b1
  - name: info
    match: { path: "=/info" }
    respond: { status: 200, body: "\${scheme} \${tls.sni} \${tls.protocol}\\n" }
EOF

my $h2port = $t->port('H2');
my $h1port = $t->port('H1');

sub get ($port, @args) {
    my $path = pop @args;
    return curl('-D', "$dir/h.txt", '--cacert', "$dir/ca.pem",
                '--resolve', "localhost:$port:127.0.0.1", @args,
                "https://localhost:$port$path");
}

sub status_line () {
    open my $fh, '<', "$dir/h.txt" or return '';
    my $first = <$fh> // '';
    $first =~ s/\r?\n\z//;
    return $first;
}

my ($rc, $out) = get($h2port, '--http2', '/api/x?q=1');
is($rc, 0, 'curl --http2 over TLS');
like(status_line(), qr{^HTTP/2 200}, 'answered by HTTP/2 (ALPN h2)');
my $echo = eval { decode_json($out) } // {};
is($echo->{uri}, '/api/x?q=1', 'the stream reached the backend');
is($echo->{headers}{host}, "localhost:$h2port", ':authority became Host');
is($echo->{headers}{'x-forwarded-proto'}, 'https',
   'X-Forwarded-Proto: https from an h2 stream');

($rc, $out) = get($h2port, '--http2', '/info');
like(status_line(), qr{^HTTP/2 200}, 'a local response over h2');
like($out, qr/^https localhost TLSv1\.3\n\z/,
     '${scheme}, ${tls.sni} and ${tls.protocol} in an h2 stream');

($rc, $out) = get($h2port, '--http1.1', '/info');
like(status_line(), qr{^HTTP/1\.1 200},
     'HTTP/1.1 by ALPN on the same listener');
like($out, qr/^https localhost TLSv1\.3\n\z/, 'with the same route');

($rc, $out) = get($h1port, '--http2', '/info');
like(status_line(), qr{^HTTP/1\.1 200},
     'a TLS listener without http2 answers an h2-capable client in 1.1');

# What the server selects, as openssl sees it.
my ($src, $sout) = s_client($h2port, args => ['-alpn', 'h2,http/1.1',
                                              '-servername', 'localhost']);
like($sout, qr/ALPN protocol: h2\b/, 's_client: h2 selected');
($src, $sout) = s_client($h2port, args => ['-alpn', 'http/1.1',
                                           '-servername', 'localhost']);
like($sout, qr{ALPN protocol: http/1\.1}, 's_client: http/1.1 when asked');
($src, $sout) = s_client($h1port, args => ['-alpn', 'h2',
                                           '-servername', 'localhost']);
like($sout, qr/no application protocol/,
     'h2 alone offered to a listener without http2: the alert');

# h2load over TLS: 10 streams on each of 100 connections.
my ($hrc, $hout) = run_cmd(120, 'h2load', '-n', '1000', '-c', '100',
                           '-m', '10', "https://127.0.0.1:$h2port/api/load");
like($hout, qr/requests: 1000 total, 1000 started, 1000 done, 1000 succeeded/,
     'h2load over TLS: 1000 requests, 100 connections, 10 streams each');
like($hout, qr/status codes: 1000 2xx, 0 3xx, 0 4xx, 0 5xx/,
     'every response 200');
like($hout, qr/Application protocol: h2/, 'h2load negotiated h2');
