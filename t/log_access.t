# The access log: the JSON fields of SPEC 7 with the right values for a
# proxied request and a 404, the combined and template formats, routes
# with `access_log: false`, the periodic flush, USR1 reopen, and admin
# requests staying out of it.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use JSON::PP;
use Test::More;
use Test::Portico;
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);

my $t = Test::Portico->new()->plan(49);
my $b1 = $t->backend(id => 'b1');
my $dir = $t->testdir;

my $CONFIG = <<'EOF';
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
access_log: { path: LOGFILE, format: FORMAT }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - name: api
    match: { path: /api/ }
    upstream: app
  - name: quiet
    match: { path: "=/quiet" }
    respond: { status: 200, body: "shh" }
    access_log: false
  - name: hello
    match: { path: "=/hello" }
    respond: { status: 200, body: "hello" }
EOF


sub start ($file, $format) {
    (my $yaml = $CONFIG) =~ s/LOGFILE/$file/;
    $yaml =~ s/FORMAT/$format/;
    $t->write_config($yaml)->run();
}


sub slurp ($path) {
    open my $fh, '<', $path or return '';
    local $/;
    return scalar(<$fh>) // '';
}


# The lines of $path once it has at least $n, or what it has after $secs.
sub wait_lines ($path, $n, $secs = 4) {
    my $deadline = time + $secs;
    while (1) {
        my @lines = split /\n/, slurp($path);
        return @lines if @lines >= $n || time > $deadline;
        sleep 0.05;
    }
}


# ---- json --------------------------------------------------------------

start('access.log', 'json');
my $log = "$dir/access.log";
my $port_b1 = $t->port('B1');
my $admin = $t->port('ADMIN');

# A proxied request, with a backend that takes 200 ms.
my $raw_api = http_get('/api/x?delay=200&a=1', headers => {
    Host => 'api.example', 'User-Agent' => 'test-agent/1.0',
    'X-Request-ID' => 'log-test-1' });
# A request no route matches.
my $raw_404 = http_get('/missing');
# A route that is not logged, and the admin endpoints.
# A User-Agent with a quote, a backslash and bytes that are not UTF-8.
my $raw_odd = http("GET /hello HTTP/1.1\r\nHost: odd\r\nConnection: close\r\n"
                   . "User-Agent: q\"uo\\te \xff\xfe end\r\n\r\n");
my $raw_quiet = http_get('/quiet');
my $raw_status = http_get('/status', port => $admin);
my $raw_health = http_get('/health', port => $admin);
my $raw_anope = http_get('/nope', port => $admin);
my $sent_at = time;

like($raw_api, qr/^HTTP\/1.1 200 /, 'proxied request: 200');
like($raw_404, qr/^HTTP\/1.1 404 /, 'unrouted request: 404');
like($raw_quiet, qr/^HTTP\/1.1 200 .*shh\z/s, 'quiet route answers');
ok($raw_status =~ /^HTTP\/1.1 200 / && $raw_health =~ /^HTTP\/1.1 200 /
   && $raw_anope =~ /^HTTP\/1.1 404 /, 'admin requests answered');

# The chunk (128k) is far from full: only the one-second tick hands it
# to the writer.
my @lines = wait_lines($log, 3);
is(scalar @lines, 3, 'three lines written without filling the buffer');
cmp_ok(time - $sent_at, '<', 4, 'within the periodic flush (~1 s)');
# A request that is logged, sent after the quiet and admin ones to the
# same (only) worker: once its line is there, any line of theirs would
# be there before it.
http_get('/hello', headers => { 'X-Request-ID' => 'barrier-1' });
@lines = wait_lines($log, 4, 10);
ok(@lines == 4 && $lines[3] =~ /"request_id":"barrier-1"/,
   'the quiet route and the admin requests are not logged')
    or diag join "\n", @lines;

my ($l_api, $l_404, $l_odd) = @lines;
my $api = eval { decode_json($l_api) } // {};
my $nf = eval { decode_json($l_404 // '') } // {};
my @fields = qw(time request_id remote_addr method host path status
                bytes_sent duration_ms upstream upstream_addr upstream_ms
                route consumer cache user_agent);
is_deeply([grep { !exists $api->{$_} } @fields], [],
          'json: every SPEC field is present') or diag $l_api;

# Values of the proxied request.
my ($y, $mo, $d, $h, $mi, $s) = ($api->{time} // '') =~
    /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:Z|[+-]00:?00)$/;
ok(defined $s && abs(timegm($s, $mi, $h, $d, $mo - 1, $y) - $sent_at) < 60,
   "json: time is ISO 8601 UTC, now ($api->{time})");
is($api->{request_id}, 'log-test-1', 'json: request_id as the client sent');
is($api->{remote_addr}, '127.0.0.1', 'json: remote_addr');
is($api->{method}, 'GET', 'json: method');
is($api->{host}, 'api.example', 'json: host');
is($api->{path}, '/api/x', 'json: path (without the query)');
like($l_api, qr/"status":200[,}]/, 'json: status 200, as a number');
is($api->{bytes_sent}, length $raw_api,
   'json: bytes_sent is what the client received');
ok($api->{duration_ms} >= 200 && $api->{duration_ms} < 30000,
   "json: duration_ms includes the backend's 200 ms ($api->{duration_ms})");
is($api->{upstream}, 'app', 'json: upstream');
is($api->{upstream_addr}, "127.0.0.1:$port_b1", 'json: upstream_addr');
ok(defined $api->{upstream_ms} && $api->{upstream_ms} >= 200
   && $api->{upstream_ms} <= $api->{duration_ms},
   'json: 200 <= upstream_ms <= duration_ms');
is($api->{route}, 'api', 'json: route');
ok(exists $api->{consumer} && !defined $api->{consumer},
   'json: consumer null (no auth)');
ok(exists $api->{cache} && !defined $api->{cache},
   'json: cache null (no cache)');
is($api->{user_agent}, 'test-agent/1.0', 'json: user_agent');

# Values of the 404: no route, no upstream; the generated request id.
my $r404 = parse_response($raw_404);
is($nf->{request_id}, $r404->{headers}{'x-request-id'},
   '404: request_id is the one returned to the client');
is("$nf->{status} $nf->{path} $nf->{host}", '404 /missing localhost',
   '404: status, path, host');
is($nf->{bytes_sent}, length $raw_404, '404: bytes_sent');
ok(!defined $nf->{route} && !defined $nf->{upstream}
   && !defined $nf->{upstream_addr} && !defined $nf->{upstream_ms}
   && exists $nf->{upstream_ms},
   '404: route, upstream, upstream_addr and upstream_ms are null');
ok(exists $nf->{user_agent} && !defined $nf->{user_agent},
   '404: user_agent null when not sent');

# Whatever bytes a client sends, each line stays valid JSON (a log
# shipper rejects the line otherwise).
my $odd = eval { JSON::PP->new->utf8->decode($l_odd // '') };
ok($odd, 'odd User-Agent: the line is still valid JSON') or diag $@;
like($l_odd // '', qr/"user_agent":"q\\"uo\\\\te /,
     'odd User-Agent: quote and backslash escaped as \\" and \\\\');
like($raw_odd, qr/^HTTP\/1.1 200 /, 'odd User-Agent: request served');


# ---- USR1 reopen ---------------------------------------------------------

# logrotate: the file is renamed; a request then still lands in it (same
# descriptor); after USR1 new requests go to a new file at the old path.
rename $log, "$log.1" or die "rename: $!";
my $raw = http_get('/hello?before-reopen');
like($raw, qr/^HTTP\/1.1 200 /, 'request after the rename');
kill 'USR1', $t->pid;
ok($t->wait_log(qr/reopening logs/, 5), 'master logged the reopen');

# The worker has reopened once none of its descriptors is the old file.
my $deadline = time + 5;
my ($worker) = $t->worker_pids;
while (time < $deadline) {
    my @targets = map { readlink($_) // '' } glob "/proc/$worker/fd/*";
    last if -e $log && !grep { $_ eq "$log.1" } @targets;
    sleep 0.05;
}
ok(-e $log, 'a new file exists at the original path');

$raw = http_get('/hello?after-reopen');
like($raw, qr/^HTTP\/1.1 200 /, 'request after the reopen');
my @new = wait_lines($log, 1);
is(scalar @new, 1, 'one line in the new file');
like($new[0] // '', qr/"path":"\/hello"/, 'the new file has the request');
my @old = split /\n/, slurp("$log.1");
is(scalar @old, 5, 'the renamed file got the request sent before USR1');
like($old[4] // '', qr/"path":"\/hello"/, '... which is the /hello one');


# ---- combined -------------------------------------------------------------

$t->stop;
start('combined.log', 'combined');
$log = "$dir/combined.log";

$raw_api = http_get('/api/c?q=1', headers => {
    'User-Agent' => 'agent/2 (x)', Referer => 'http://ref.example/p' });
$raw_404 = http_get('/nothing/here');
# A client trying to forge fields: quotes in what is logged inside quotes.
$raw_odd = http_get('/hello', headers => {
    'User-Agent' => 'evil" 500 1 "x', Referer => 'r"x' });
@lines = wait_lines($log, 3);
is(scalar @lines, 3, 'combined: three lines');

my $clf = qr{\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]};
my $len = length $raw_api;
my $want = qr{^127\.0\.0\.1 - - $clf "GET /api/c\?q=1 HTTP/1\.1" 200 $len }
           . qr{"http://ref\.example/p" "agent/2 \(x\)"$};
like($lines[0] // '', qr/$want/,
     'combined: proxied request line') or diag $lines[0];
$len = length $raw_404;
$want = qr{^127\.0\.0\.1 - - $clf "GET /nothing/here HTTP/1\.1" 404 $len }
        . qr{"-" "-"$};
like($lines[1] // '', qr/$want/,
     'combined: 404 line, "-" for missing referer and agent')
    or diag $lines[1];
# Inside the quoted fields a quote must be escaped (nginx writes \x22),
# or the line could not be split into its fields again.
$len = length $raw_odd;
my $q = qr{"(?:[^"\\]|\\.)*"};
$want = qr{^127\.0\.0\.1 - - $clf "GET /hello HTTP/1\.1" 200 $len $q $q$};
like($lines[2] // '', qr/$want/,
     'combined: quotes sent by the client are escaped') or diag $lines[2];


# ---- template ---------------------------------------------------------------

$t->stop;
start('tpl.log', "'tpl \${method} \${path} \${status} \${route} "
                 . "\${request_id} \${header.X-Tag} \${upstream}'");
$log = "$dir/tpl.log";

http_get('/api/t', headers => { 'X-Tag' => 'tag-1',
                                'X-Request-ID' => 'tid-1' });
http_get('/hello', headers => { 'X-Tag' => 'tag-2',
                                'X-Request-ID' => 'tid-2' });
http_get('/quiet');
# A logged request after /quiet: a (wrong) line of it would come first.
http_get('/hello', headers => { 'X-Tag' => 'barrier',
                                'X-Request-ID' => 'tid-3' });
@lines = wait_lines($log, 3, 10);
is($lines[0], 'tpl GET /api/t 200 api tid-1 tag-1 app',
   'template: proxied request');
like($lines[1] // '', qr/^tpl GET \/hello 200 hello tid-2 tag-2 ?\S*$/,
     'template: local answer');
ok(@lines == 3 && $lines[2] =~ /tid-3 barrier/,
   'template: access_log: false still honoured') or diag join "\n", @lines;

# ---- access log off --------------------------------------------------------

# Without access_log nothing is written anywhere (and nothing breaks).
$t->stop;
(my $nolog = $CONFIG) =~ s/^access_log:.*\n//m;
$nolog =~ s/^    access_log: false\n//m;
$t->write_config($nolog)->run();
like(http_get('/hello'), qr/^HTTP\/1.1 200 /, 'no access_log: still serves');
# Workers write what they buffered at exit: after the stop, every log is
# complete.
$t->stop;
my @files = grep { !/\/(?:access\.log(?:\.1)?|combined\.log|tpl\.log)$/ }
            glob "$dir/*.log";
is_deeply([grep { slurp($_) =~ /"path"|GET \// } @files], [],
          'no access_log: no request lines in any other log');
