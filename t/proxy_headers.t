# What the proxy adds, keeps and drops in headers, both directions.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(21);
my $b1 = $t->backend(id => 'b1');

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - { name: all, match: { path: / }, upstream: app }
EOF

my $port = $t->port('GW');

sub through ($head, $path = '/h') {
    my $res = parse_response(http("GET $path HTTP/1.1\r\n$head"
                                  . "Connection: close\r\n\r\n",
                                  port => $port));
    return ($res, eval { decode_json($res->{body}) } // {});
}

# X-Forwarded-*: appended, set, and the client's Host passed through.
my ($res, $e) = through("Host: api.example.com:8080\r\n"
                        . "X-Forwarded-For: 203.0.113.7\r\n"
                        . "X-Forwarded-Proto: https\r\n");
is($e->{headers}{'x-forwarded-for'}, '203.0.113.7, 127.0.0.1',
   'X-Forwarded-For: the client address is appended');
is($e->{headers}{'x-forwarded-proto'}, 'http',
   'X-Forwarded-Proto is ours, not the client\'s');
is($e->{headers}{'x-forwarded-host'}, 'api.example.com:8080',
   'X-Forwarded-Host is the client Host');
is($e->{headers}{host}, 'api.example.com:8080',
   'Host is passed through as sent');

($res, $e) = through("Host: t\r\n");
is($e->{headers}{'x-forwarded-for'}, '127.0.0.1',
   'X-Forwarded-For created when absent');

# X-Request-ID: a sane one is kept end to end, anything else replaced.
($res, $e) = through("Host: t\r\nX-Request-ID: abc-123_XYZ.9\r\n");
is($e->{headers}{'x-request-id'}, 'abc-123_XYZ.9',
   'a sane X-Request-ID reaches the upstream');
is($res->{headers}{'x-request-id'}, 'abc-123_XYZ.9',
   'and comes back to the client');

($res, $e) = through("Host: t\r\nX-Request-ID: bad id <script>\r\n");
like($e->{headers}{'x-request-id'}, qr/^[0-9a-f]{32}\z/,
     'an insane X-Request-ID is replaced by a generated one');
is($res->{headers}{'x-request-id'}, $e->{headers}{'x-request-id'},
   'the client gets the same id as the upstream');

($res, $e) = through("Host: t\r\nX-Request-ID: " . ('a' x 200) . "\r\n");
like($res->{headers}{'x-request-id'}, qr/^[0-9a-f]{32}\z/,
     'an overlong X-Request-ID is replaced too');

# traceparent is propagated as a child: the same trace and flags, the
# gateway's span as the parent (t/trace.t has the rest).
my $tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
($res, $e) = through("Host: t\r\ntraceparent: $tp\r\n");
like($e->{headers}{traceparent},
     qr/^00-4bf92f3577b34da6a3ce929d0e0e4736-(?!00f067aa0ba902b7)[0-9a-f]{16}-01\z/,
     'traceparent propagated as a child span');

# Hop-by-hop fields, and fields the client's Connection names, stay here.
($res, $e) = through("Host: t\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
                     . "Proxy-Connection: keep-alive\r\n"
                     . "Upgrade: something\r\nX-Secret: 1\r\n"
                     . "X-Kept: yes\r\n"
                     . "Connection: X-Secret\r\n");
my %h = %{$e->{headers}};
ok(!exists $h{'keep-alive'}, 'Keep-Alive dropped');
ok(!exists $h{te}, 'TE dropped');
ok(!exists $h{'proxy-connection'}, 'Proxy-Connection dropped');
ok(!exists $h{upgrade}, 'Upgrade dropped');
ok(!exists $h{'x-secret'}, 'a field named in Connection dropped');
is($h{'x-kept'}, 'yes', 'an ordinary field passed');

# Response side: the upstream's own fields pass, its hop-by-hop ones not.
($res, $e) = through("Host: t\r\n",
                     '/r?header.X-Custom=42&header.Keep-Alive=timeout%3D9'
                     . '&header.Upgrade=h2c');
is($res->{headers}{'x-custom'}, '42', 'upstream response field passed');
ok(!exists $res->{headers}{'keep-alive'},
   'upstream Keep-Alive not passed to the client');
ok(!exists $res->{headers}{upgrade}, 'upstream Upgrade not passed');
is($res->{headers}{server}, 'portico-test-backend',
   'the upstream Server field is kept');
