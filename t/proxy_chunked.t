# Chunked transfer coding both ways: a chunked request body is decoded and
# re-framed to the upstream; a chunked (or length-less) response is framed
# for each client as its HTTP version allows.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Digest::MD5 qw(md5_hex);
use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(21);
my $b1 = $t->backend(id => 'b1');

# A raw upstream that answers without any length: the body ends at close.
# The harness owns it (killed by pid when the test ends, however it ends).
my $raw = $t->backend(id => 'raw', handler => sub ($c, $n) {
    my $req = '';
    while ($req !~ /\r\n\r\n/) {
        sysread($c, $req, 4096, length $req) or return;
    }
    print $c "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
             . "Connection: close\r\n\r\n" . ('z' x 70000);
    close $c;
});
my $raw_port = $raw->port;

$t->write_config(<<"EOF")->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
  raw: { targets: [ { address: "127.0.0.1:$raw_port" } ] }
routes:
  - { name: raw, match: { path: /raw }, upstream: raw }
  - { name: all, match: { path: / }, upstream: app }
EOF

my $port = $t->port('GW');

# A chunked request body with an extension and a trailer field.
my $body = "hello, " . ('x' x 5000) . " world";
my $chunked = sprintf("%x;ext=1\r\n%s\r\n", 7, substr($body, 0, 7))
              . sprintf("%X\r\n%s\r\n", length($body) - 7, substr($body, 7))
              . "0\r\nX-Trailer: yes\r\n\r\n";
my $res = parse_response(http("POST /up HTTP/1.1\r\nHost: t\r\n"
                              . "Transfer-Encoding: chunked\r\n"
                              . "Connection: close\r\n\r\n$chunked",
                              port => $port));
my $echo = eval { decode_json($res->{body}) } // {};
is($res->{status}, 200, 'chunked POST proxied');
is($echo->{body_md5}, md5_hex($body), 'decoded body reaches the backend');
is($echo->{headers}{'transfer-encoding'}, 'chunked',
   'the upstream is sent chunked framing');
ok(!exists $echo->{headers}{'content-length'},
   'and no Content-Length with it');

# The same body in many tiny chunks, sent a few bytes at a time.
my $tiny = join '', map { "1\r\n" . substr($body, $_, 1) . "\r\n" }
                    0 .. 99;
$tiny .= "0\r\n\r\n";
my $s = http("POST /up2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
             . "Transfer-Encoding: chunked\r\n\r\n", port => $port,
             start => 1);
for (my $i = 0; $i < length $tiny; $i += 7) {
    print $s substr($tiny, $i, 7);
    select(undef, undef, undef, 0.002);
}
$res = parse_response(http_end($s));
$echo = eval { decode_json($res->{body}) } // {};
is($echo->{body_md5}, md5_hex(substr($body, 0, 100)),
   '100 one-byte chunks trickled in arrive whole');

# A chunked response to an HTTP/1.1 client stays chunked (re-framed).
my $text = http("GET /c?chunked=1&size=200000 HTTP/1.1\r\nHost: t\r\n"
                . "Connection: close\r\n\r\n", port => $port);
$res = parse_response($text);
is($res->{status}, 200, 'chunked response proxied');
like($res->{headers}{'transfer-encoding'} // '', qr/chunked/,
     'sent chunked to a 1.1 client');
is(length $res->{body}, 200000, 'body length intact after re-framing');
ok($res->{body} eq pattern(200000),
   'body bytes intact');

# An HTTP/1.0 client cannot take chunked: the body ends at close instead.
$text = http("GET /c?chunked=1&size=100000 HTTP/1.0\r\nHost: t\r\n\r\n",
             port => $port);
my ($head, $rest) = split /\r\n\r\n/, $text, 2;
unlike($head, qr/transfer-encoding/i, 'no chunked framing for HTTP/1.0');
like($head, qr/^connection: close/im, 'the connection closes instead');
is(length($rest // ''), 100000, 'whole body delivered to the 1.0 client');
ok(($rest // '') eq pattern(100000), 'and its bytes are the ones sent');

# A response without a length from upstream: chunked to a 1.1 client.
$res = parse_response(http("GET /raw HTTP/1.1\r\nHost: t\r\n"
                           . "Connection: close\r\n\r\n", port => $port));
is($res->{status}, 200, 'close-delimited upstream response proxied');
like($res->{headers}{'transfer-encoding'} // '', qr/chunked/,
     'framed chunked for the client');
is($res->{body}, 'z' x 70000, 'body up to the upstream close, intact');

# Keep-alive holds across chunked exchanges on one client connection.
$text = http("POST /k1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked"
             . "\r\n\r\n5\r\nabcde\r\n0\r\n\r\n"
             . "GET /k2?chunked=1&size=10 HTTP/1.1\r\nHost: t\r\n"
             . "Connection: close\r\n\r\n", port => $port);
my @r = parse_responses($text);
is(scalar @r, 2, 'two responses on one connection after a chunked body');
my $e1 = eval { decode_json($r[0]{body}) } // {};
is($e1->{body_md5}, md5_hex('abcde'), 'first (chunked POST) intact');
is($r[1]{body}, '0123456789', 'second (chunked response) intact');

# A large chunked upload from curl (it picks its own chunk sizes).
my $file = $t->testdir . '/up.bin';
open my $fh, '>', $file or die;
print $fh map { chr($_ % 251) } 1 .. 3_000_000;
close $fh;
my $md5 = do { open my $in, '<', $file or die; binmode $in;
               Digest::MD5->new->addfile($in)->hexdigest };
my ($rc, $out) = curl('-H', 'Transfer-Encoding: chunked', '-H', 'Expect:',
                      '--data-binary', "\@$file",
                      "http://127.0.0.1:$port/curl");
$echo = eval { decode_json($out) } // {};
is($echo->{body_length}, 3_000_000, '3 MB chunked upload: length');
is($echo->{body_md5}, $md5, '3 MB chunked upload: bytes');


# What the mock backend sends for size=N: its 16-byte pattern, repeated.
sub pattern ($n) {
    return substr('0123456789abcdef' x (int($n / 16) + 1), 0, $n);
}
