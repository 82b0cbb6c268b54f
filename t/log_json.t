# The json access log: every SPEC 7 field plus trace_id, with the right
# values for a proxied request, a cache MISS then HIT and a 404; client
# bytes (quotes, backslash, control bytes, bytes >= 0x80 valid or not as
# UTF-8) round-trip as valid JSON; the new template variables.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(29);
my $b1 = $t->backend(id => 'b1');
my $dir = $t->testdir;

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
access_log: { path: access.log, format: json }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - name: cached
    match: { path: /c/ }
    upstream: app
    cache: { ttl: 60s }
  - name: api
    match: { path: /api/ }
    upstream: app
  - name: esc
    match: { path: /esc/ }
    respond: { status: 200, body: "esc" }
  - name: quiet
    match: { path: "=/quiet" }
    respond: { status: 200, body: "shh" }
    access_log: false
EOF

my $log = "$dir/access.log";

sub slurp ($path) {
    open my $fh, '<', $path or return '';
    local $/;
    return scalar(<$fh>) // '';
}

# The lines of the log once the one with request id $id is there.
sub lines_until ($id) {
    my @lines;
    wait_until(sub {
        @lines = split /\n/, slurp($log);
        return grep { /"request_id":"\Q$id\E"/ } @lines;
    }, 10);
    return @lines;
}

sub by_id ($id, @lines) {
    my ($l) = grep { /"request_id":"\Q$id\E"/ } @lines;
    return ($l, eval { JSON::PP->new->utf8->decode($l // '') });
}

my $tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
my $raw_api = http_get('/api/x?a=1', headers => {
    Host => 'api.example', 'User-Agent' => 'ua/1', 'X-Request-ID' => 'j-api',
    traceparent => $tp });
my $raw_miss = http_get('/c/one', headers => { 'X-Request-ID' => 'j-miss' });
my $raw_hit = http_get('/c/one', headers => { 'X-Request-ID' => 'j-hit' });
my $raw_404 = http_get('/missing', headers => { 'X-Request-ID' => 'j-404' });
http_get('/quiet', headers => { 'X-Request-ID' => 'j-quiet' });

# What a client can put into the User-Agent: '"', '\', HTAB, valid
# UTF-8 and bytes that are not UTF-8 (other control bytes get a 400);
# into the target: a quote, a backslash, percent-escapes (logged as
# sent); and a target with a raw control byte and a byte >= 0x80, which
# gets a 400 whose line must still be valid JSON.
my $ua = "q\"uo\\te \t caf\xc3\xa9 \xff\xfe\xc3 end";
my $raw_esc = http("GET /esc/%22q%5C%01\"x\\y HTTP/1.1\r\n"
                   . "Host: esc\r\nConnection: close\r\n"
                   . "X-Request-ID: j-esc\r\nUser-Agent: $ua\r\n\r\n");
my $raw_bad = http("GET /esc/a\x01b\xffc HTTP/1.1\r\nHost: esc\r\n"
                   . "X-Request-ID: j-bad\r\nConnection: close\r\n\r\n");
http_get('/api/last', headers => { 'X-Request-ID' => 'j-last' });

like($raw_api, qr/^HTTP\/1.1 200 /, 'proxied request answered');
like($raw_esc, qr/^HTTP\/1.1 200 /, 'odd path and User-Agent answered');

my @lines = lines_until('j-last');
is(scalar(grep { !eval { JSON::PP->new->utf8->decode($_); 1 } } @lines), 0,
   'every line is valid JSON') or diag join "\n", @lines;
ok(!grep({ /j-quiet/ } @lines), 'access_log: false on a route still holds');

my @fields = qw(time request_id remote_addr method host path status
                bytes_sent duration_ms upstream upstream_addr upstream_ms
                route consumer cache user_agent trace_id);

my ($l, $api) = by_id('j-api', @lines);
is_deeply([grep { !exists $api->{$_} } @fields], [],
          'proxied: every SPEC field and trace_id present') or diag $l;
is("$api->{method} $api->{host} $api->{path} $api->{status}",
   'GET api.example /api/x 200', 'proxied: method, host, path, status');
is($api->{route} . ' ' . $api->{upstream}, 'api app', 'proxied: route, upstream');
is($api->{upstream_addr}, '127.0.0.1:' . $t->port('B1'),
   'proxied: upstream_addr');
ok(defined $api->{upstream_ms} && $api->{upstream_ms} <= $api->{duration_ms},
   'proxied: upstream_ms <= duration_ms');
is($api->{bytes_sent}, length $raw_api, 'proxied: bytes_sent');
is($api->{user_agent}, 'ua/1', 'proxied: user_agent');
ok(!defined $api->{cache} && !defined $api->{consumer},
   'proxied: cache and consumer null on a route without either');
is($api->{trace_id}, '0af7651916cd43dd8448eb211c80319c',
   'proxied: trace_id is the incoming trace');
like($l, qr/"status":200,"bytes_sent":\d+,"duration_ms":[\d.]+,/,
     'numbers are JSON numbers');

my ($lm, $miss) = by_id('j-miss', @lines);
my ($lh, $hit) = by_id('j-hit', @lines);
is($miss->{cache}, 'MISS', 'cache: the first request is a MISS');
is($hit->{cache}, 'HIT', 'cache: the second is a HIT');
like($raw_hit, qr/\r\nX-Cache: HIT\r\n/i, '... as X-Cache said');
is($hit->{route}, 'cached', 'cache HIT: route');

my ($l4, $nf) = by_id('j-404', @lines);
is("$nf->{status} $nf->{path}", '404 /missing', '404: status and path');
ok(!defined $nf->{route} && !defined $nf->{upstream}
   && !defined $nf->{cache} && exists $nf->{cache},
   '404: route, upstream null, cache null');
like($nf->{trace_id} // '', qr/^[0-9a-f]{32}\z/,
     '404: a trace id even without traceparent');

my ($le, $esc) = by_id('j-esc', @lines);
ok($esc, 'odd bytes: the line parses') or diag $le;
is($esc->{user_agent}, "q\"uo\\te \t caf\x{e9} \x{ff}\x{fe}\x{c3} end",
   'odd User-Agent round-trips: escapes, UTF-8 kept, other bytes as U+00XX');
like($le, qr/"user_agent":"q\\"uo\\\\te \\t caf\xc3\xa9 \\u00ff\\u00fe\\u00c3 end"/,
     'odd User-Agent: the exact escapes');
is($esc->{path}, '/esc/%22q%5C%01"x\\y', 'odd path: round-trips') or diag $le;
# Rejected before its fields were read: found by its status.
my ($lb) = grep { /"status":400/ } @lines;
my $bad = eval { JSON::PP->new->utf8->decode($lb // '') };
like($raw_bad, qr/^HTTP\/1.1 400 /, 'raw control byte in the target: 400');
ok($bad && $bad->{status} == 400, '... logged as valid JSON') or diag $lb;
unlike($le, qr/[\x00-\x1f]/, 'no raw control byte in the line');

# Variables for templates: trace_id, cache_status, upstream_ms.
$t->stop;
$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
access_log: { path: tpl.log, format: "T ${request_id} ${trace_id} [${cache_status}] [${upstream_ms}]" }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - { name: cached, match: { path: /c/ }, upstream: app, cache: { ttl: 60s } }
EOF
$log = "$dir/tpl.log";
http_get('/c/two', headers => { 'X-Request-ID' => 'v1', traceparent => $tp });
http_get('/c/two', headers => { 'X-Request-ID' => 'v2' });
wait_until(sub { @lines = split /\n/, slurp($log); @lines >= 2 }, 10);
ok(@lines == 2
   && $lines[0] =~ /^T v1 0af7651916cd43dd8448eb211c80319c \[MISS\] \[\d+\.\d{3}\]$/
   && $lines[1] =~ /^T v2 [0-9a-f]{32} \[HIT\] \[\]$/,
   'template: ${trace_id}, ${cache_status}, ${upstream_ms}')
    or diag join "\n", @lines;
