# Keep-alive and pipelining on the client side, and keep-alive to the
# upstream.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(19);
my $b1 = $t->backend(id => 'b1');

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - name: hello
    match: { path: "=/hello" }
    respond: { status: 200, body: "hello ${path}\n" }
  - { name: all, match: { path: / }, upstream: app }
EOF

my $port = $t->port('GW');

# Two requests one after the other on one connection.
my $s = http("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", port => $port,
             start => 1);
my $first = '';
while ($first !~ /hello \/hello\n/) {
    sysread($s, $first, 4096, length $first) or last;
}
like($first, qr/^HTTP\/1.1 200 /, 'first request answered');
unlike($first, qr/^connection: close/im, 'connection kept alive');
print $s "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
my $second = http_end($s);
like($second, qr/^HTTP\/1.1 200 .*hello \/hello/s,
     'second request on the same connection answered');
like($second, qr/^connection: close/im, 'Connection: close honoured');

# Pipelining: three requests in one write, mixing a local answer, a POST
# through the proxy and a proxied GET; answers come back in order.
my $text = http("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                . "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n"
                . "abcde"
                . "GET /g HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                port => $port);
my @r = parse_responses($text);
is(scalar @r, 3, 'three pipelined requests, three responses');
is($r[0]{body}, "hello /hello\n", 'first: the local answer');
my $e1 = eval { decode_json($r[1]{body}) } // {};
my $e2 = eval { decode_json($r[2]{body}) } // {};
is("$e1->{method} $e1->{uri} $e1->{body_length}", 'POST /p 5',
   'second: the POST with its body');
is("$e2->{method} $e2->{uri}", 'GET /g', 'third: the GET');
isnt($r[1]{headers}{'x-request-id'}, $r[2]{headers}{'x-request-id'},
     'each pipelined request has its own request id');

# Pipelined requests trickled in byte by byte still come out right.
$s = http('', port => $port, start => 1);
my $two = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
          . "GET /hello?x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
for my $ch (split //, $two) {
    print $s $ch;
}
@r = parse_responses(http_end($s));
is(scalar @r, 2, 'byte-by-byte pipelined requests both answered');

# HTTP/1.0: closed unless the client asks for keep-alive.
$text = http("GET /hello HTTP/1.0\r\n\r\n", port => $port);
like($text, qr/^connection: close/im, '1.0 without keep-alive: close');
$s = http("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
          port => $port, start => 1);
my $ka = '';
while ($ka !~ /hello \/hello\n/) {
    sysread($s, $ka, 4096, length $ka) or last;
}
like($ka, qr/^connection: keep-alive/im, '1.0 with keep-alive: kept');
print $s "GET /hello HTTP/1.0\r\n\r\n";
like(http_end($s), qr/^HTTP\/1.1 200 /, 'and the connection serves again');

# Upstream keep-alive: requests from separate client connections share
# one backend connection when they do not overlap.
my @seq;
for (1 .. 4) {
    my $res = parse_response(http_get("/ka$_", port => $port));
    push @seq, $res->{headers}{'x-conn-seq'};
}
is(scalar(grep { defined } @seq), 4, 'four proxied responses');
is(scalar(keys %{{ map { $_ => 1 } @seq }}), 1,
   'all four used one upstream connection');
my @req = map { $_ + 0 } map { parse_response(http_get("/r$_",
              port => $port))->{headers}{'x-req-seq'} } 1 .. 2;
is($req[1], $req[0] + 1, 'the upstream connection counts up its requests');

# The client's Connection: close is not forwarded: the upstream connection
# stays reusable.
my $res = parse_response(http("GET /c HTTP/1.1\r\nHost: t\r\n"
                              . "Connection: close\r\n\r\n",
                              port => $port));
my $e = eval { decode_json($res->{body}) } // {};
ok(!exists $e->{headers}{connection},
   'client Connection header not sent upstream');
my $next = parse_response(http_get('/d', port => $port));
is($next->{headers}{'x-conn-seq'}, $res->{headers}{'x-conn-seq'},
   'upstream connection reused after a client that closed');

# An upstream that says Connection: close is not reused.
$res = parse_response(http_get('/e?close=1', port => $port));
$next = parse_response(http_get('/f', port => $port));
isnt($next->{headers}{'x-conn-seq'}, $res->{headers}{'x-conn-seq'},
     'a new upstream connection after the upstream closed');
