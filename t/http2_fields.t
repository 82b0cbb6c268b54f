# HTTP/2 request heads that must not reach an HTTP/1.1 upstream (RFC 9113
# 8.2 and 8.3), sent by a raw-frame client: a field value with CR, LF, NUL
# or edge whitespace, a connection-specific field, Transfer-Encoding, TE
# other than "trailers", an upper-case or non-token name, the
# pseudo-header rules, and a Host that names another entity than
# :authority. Each resets its stream with PROTOCOL_ERROR, never reaches
# the backend, is logged with 400, and leaves the connection serving the
# next request. And what is fine: TE: trailers, Host without :authority,
# both when they agree; no authority at all is 400; CONNECT is 501.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(93);
my $b1 = $t->backend(id => 'b1');

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%", http2: true } ]
access_log: { path: access.log, format: json, buffer: 0 }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - { name: hello, match: { path: "=/hello" }, respond: { status: 200 } }
  - { name: api, match: { path: /api/ }, upstream: app }
EOF

my $port = $t->port('GW');
my $dir = $t->testdir;

sub raw (@args) {
    my ($code, $text) = run_cmd(30, '/usr/bin/python3', 't/lib/h2raw.py',
                                $port, 'request', @args);
    my ($json) = $text =~ /^(\{.*\})\s*\z/ms;
    my $r = eval { decode_json($json // '') };
    diag("h2raw: $text") unless $r;
    return $r // {};
}

# Only the fields given, pseudo-headers included.
sub rawp (@fields) { return raw('-', '-', @fields) }

my @base = (':method=GET', ':scheme=http', ':path=/api/f',
            ':authority=localhost');

my @malformed = (
    [ 'a value with CR',          'GET', '/api/f', 'x-bad=a\rb' ],
    [ 'a value with LF',          'GET', '/api/f', 'x-bad=a\nb' ],
    [ 'a value with NUL',         'GET', '/api/f', 'x-bad=a\0b' ],
    [ 'a value with leading SP',  'GET', '/api/f', 'x-bad= a' ],
    [ 'Connection',               'GET', '/api/f', 'connection=keep-alive' ],
    [ 'Keep-Alive',               'GET', '/api/f', 'keep-alive=timeout=5' ],
    [ 'Proxy-Connection',         'GET', '/api/f',
      'proxy-connection=keep-alive' ],
    [ 'Transfer-Encoding',        'GET', '/api/f',
      'transfer-encoding=chunked' ],
    [ 'Upgrade',                  'GET', '/api/f', 'upgrade=websocket' ],
    [ 'TE other than trailers',   'GET', '/api/f', 'te=gzip' ],
    [ 'an upper-case name',       'GET', '/api/f', 'X-Upper=1' ],
    [ 'a name with a space',      'GET', '/api/f', 'x bad=1' ],
    [ 'a pseudo-header after a regular field', 'GET', '/',
      ':method=GET', ':scheme=http', 'x-a=1', ':path=/api/f',
      ':authority=localhost' ],
    [ 'two :path',                'GET', '/', @base, ':path=/api/g' ],
    [ 'no :path',                 'GET', '/',
      ':method=GET', ':scheme=http', ':authority=localhost' ],
    [ 'an unknown pseudo-header', 'GET', '/', @base, ':foo=bar' ],
    [ 'a :path not starting with /', 'GET', '/',
      ':method=GET', ':scheme=http', ':path=api/f', ':authority=localhost' ],
    [ ':path * with GET',         'GET', '/',
      ':method=GET', ':scheme=http', ':path=*', ':authority=localhost' ],
    [ 'a Host naming another host than :authority', 'GET', '/', @base,
      'host=other.example' ],
    [ 'neither :authority nor Host', 'GET', '/',
      ':method=GET', ':scheme=http', ':path=/api/f' ],
    [ 'a control byte in :path',  'GET', '/',
      ':method=GET', ':scheme=http', ':path=/api/\r', ':authority=localhost' ],
);

for my $case (@malformed) {
    my ($what, @args) = @$case;
    my $before = scalar $b1->requests;
    my $r = raw(@args);
    is($r->{1}{rst}, 'PROTOCOL_ERROR', "$what: stream reset PROTOCOL_ERROR");
    ok(!defined $r->{1}{status}, "$what: no response head");
    is(scalar $b1->requests, $before, "$what: the backend saw nothing");
    is($r->{next_status}, 200, "$what: the connection serves the next");
}

# The reset requests are logged as 400 (no head reached the client).
my (@log, @bad);
wait_until(sub {
    @log = map { eval { decode_json($_) } // () }
           split /\n/, Test::Portico::_read_file("$dir/access.log");
    @bad = grep { ($_->{status} // 0) == 400 } @log;
    @bad >= @malformed;
}, 5);
is(scalar @bad, scalar @malformed, 'each malformed request logged as 400')
    or diag(join "\n", map { "$_->{status} " . ($_->{path} // '-') } @log);

# ---- what passes ------------------------------------------------------

my $r = raw('GET', '/api/te', 'te=trailers');
is($r->{1}{status}, 200, 'TE: trailers is accepted');
my $e = eval { decode_json($r->{1}{data}) } // {};
ok(!exists $e->{headers}{te}, 'and not forwarded (hop-by-hop)');

$r = rawp(':method=GET', ':scheme=http', ':path=/api/host', 'host=h.example');
is($r->{1}{status}, 200, 'Host without :authority');
$e = eval { decode_json($r->{1}{data}) } // {};
is($e->{headers}{host}, 'h.example', 'is the Host upstream');

$r = rawp(@base, 'host=LOCALHOST');
is($r->{1}{status}, 200, 'Host equal to :authority (any case)');
$e = eval { decode_json($r->{1}{data}) } // {};
is($e->{headers}{host}, 'localhost', 'one Host upstream, from :authority');


$r = rawp(':method=CONNECT', ':authority=localhost:443');
is($r->{1}{status}, 501, 'CONNECT: 501 as over HTTP/1.1');

$r = raw('GET', '/api/u', 'x_under=1', 'x-ok=1');
$e = eval { decode_json($r->{1}{data}) } // {};
ok(!exists $e->{headers}{x_under} && $e->{headers}{'x-ok'},
   'a field with "_" is dropped (underscore_headers: drop)');
