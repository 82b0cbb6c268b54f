# GET /metrics (modules/metrics): the Prometheus text format with every
# family of SPEC 7, promtool's check passing on the live output; after a
# known sequence of requests over connections on both of 2 workers, each
# counter and histogram bucket has exactly the expected value; targets
# up and down; reloads ok and failed; the counts survive a HUP (equal
# when nothing happened in between); `handler: metrics` on a public
# route, and /metrics on a public listener without one is 404; HTTP/2
# requests counted the same; an unknown `handler:` name.  Route and
# method names cannot hold '"', '\' or a newline, upstream names can: an
# upstream called that way shows its label escaped.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Socket::INET;
use Test::More;
use Test::Portico;
use Time::HiRes qw(time sleep);

my $promtool = '/usr/bin/promtool';
# make test installs it (scripts/deps: the prometheus package): its
# absence is a broken set-up to report, not a reason to skip.
BAIL_OUT("$promtool is missing: run scripts/deps (as root)")
    unless -x $promtool;

my $t = Test::Portico->new()->plan(74);
$t->allow_alerts(qr/worker \d+ exited on signal 9/);
my $b1 = $t->backend(id => 'b1');

# A port nobody listens on: bound, never listening, held to the end.
my $hold = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Proto => 'tcp') // die "bind: $@";
my $dead = $hold->sockport;

my $yaml = <<'EOF';
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%", http2: true } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  app: { targets: [ "127.0.0.1:%%PORT_B1%%" ] }
  gone:
    targets: [ "127.0.0.1:@@DEAD@@" ]
    health:
      active: { path: /healthz, interval: 100ms, timeout: 1s, unhealthy: 1 }
  "es\"c\\a\npe": { targets: [ "127.0.0.1:%%PORT_B1%%" ] }
routes:
  - name: a
    match: { path: "=/a" }
    respond: { status: 200, body: "a" }
  - name: slow
    match: { path: /slow/ }
    upstream: app
  - name: lim
    match: { path: "=/lim" }
    ratelimit: [ { key: "all", rate: 1/m, burst: 0 } ]
    respond: { status: 200, body: "lim" }
  - name: c
    match: { path: /c/ }
    upstream: app
    cache: { ttl: 60s }
  - name: esc
    match: { path: /esc/ }
    upstream: "es\"c\\a\npe"
  - name: pub/metrics
    match: { path: "=/pub/metrics" }
    handler: metrics
EOF
$yaml =~ s/\@\@DEAD\@\@/$dead/;
$t->write_config($yaml)->run();

my $port = $t->port('GW');
my $admin = $t->port('ADMIN');

# One request on a new connection, on the other worker than the last
# one; returns the parsed response.  %seen counts requests per worker.
my ($last, %seen);
sub req ($method, $path) {
    my ($s, $w) = $t->connect_worker($port, $last ? (avoid => $last) : ());
    die "no worker took the connection\n" unless $s && $w;
    $last = $w;
    $seen{$w}++;
    my $len = $method eq 'POST' ? "Content-Length: 0\r\n" : '';
    print $s "$method $path HTTP/1.1\r\nHost: t\r\n$len"
             . "Connection: close\r\n\r\n";
    return parse_response(http_end($s, timeout => 10));
}

sub scrape ($path = '/metrics', $p = $admin) {
    return parse_response(http_get($path, port => $p, timeout => 5));
}

# The samples of an exposition: "name{labels}" => value.
sub samples ($text) {
    my %s;
    for (split /\n/, $text) {
        next if /^#/ || !length;
        my ($k, $v) = /^(\S+(?:\{.*\})?) (\S+)\z/ or next;
        $s{$k} = $v;
    }
    return \%s;
}

sub promtool_ok ($text, $name) {
    my $f = $t->testdir . '/metrics.txt';
    write_file($f, $text);
    my $out = `$promtool check metrics < $f 2>&1`;
    ok($? == 0, $name) or diag($out);
}


# --- the known sequence, over both workers ------------------------------
my @codes;
push @codes, req('GET', '/a')->{status} for 1 .. 7;
push @codes, req('POST', '/a')->{status} for 1 .. 3;
is(join(',', @codes), join(',', (200) x 10), '10 answers from route a');
is(req('GET', '/none')->{status}, 404, 'no route: 404');
is(req('GET', '/none/2')->{status}, 404, 'no route: 404 again');
is(req('BREW', '/a')->{status}, 200, 'an unknown method on route a');
is(req('GET', '/lim')->{status}, 200, 'the limited route: first passes');
is(req('GET', '/lim')->{status}, 429, '  the second is refused');
my $miss = req('GET', '/c/x');
my $hit = req('GET', '/c/x');
is($miss->{headers}{'x-cache'}, 'MISS', 'the cached route: MISS');
is($hit->{headers}{'x-cache'}, 'HIT', '  then HIT');
# (Not in a map: the harness reads files into $_.)
my @slow;
for my $path (qw(/slow/1?delay=30 /slow/2?delay=30
                 /slow/3?delay=300 /slow/4?delay=300))
{
    push @slow, req('GET', $path)->{status};
}
is(join(',', @slow), '200,200,200,200', 'four slow answers');
is(req('GET', '/esc/')->{status}, 200, 'the upstream with a strange name');
is(scalar(keys %seen), 2, 'both workers served requests');

# Health probes mark the dead target down.
my $m;
ok(wait_until(sub {
    $m = scrape();
    return $m->{body}
           =~ /^portico_upstream_target_up\{upstream="gone",.*\} 0$/m;
}, 10), 'the target on a dead port: up 0');

$m = scrape();
is($m->{status}, 200, 'GET /metrics: 200');
is($m->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
   'the exposition format content type');
my $text = $m->{body};
promtool_ok($text, 'promtool check metrics passes');

my @families = $text =~ /^# TYPE (\S+ \S+)$/mg;
is(join("\n", @families), join("\n",
   'portico_requests_total counter',
   'portico_request_duration_seconds histogram',
   'portico_upstream_duration_seconds histogram',
   'portico_upstream_target_up gauge',
   'portico_connections gauge',
   'portico_ratelimit_rejected_total counter',
   'portico_cache_requests_total counter',
   'portico_config_reloads_total counter',
   'portico_shm_bytes gauge',
   'portico_metrics_dropped_total counter'), 'every family, typed');
is(scalar(() = $text =~ /^# HELP /mg), scalar @families, 'each with HELP');

my $s = samples($text);
my %want = (
    'portico_requests_total{route="a",method="GET",status="200"}'    => 7,
    'portico_requests_total{route="a",method="POST",status="200"}'   => 3,
    'portico_requests_total{route="a",method="OTHER",status="200"}'  => 1,
    'portico_requests_total{route="",method="GET",status="404"}'     => 2,
    'portico_requests_total{route="lim",method="GET",status="200"}'  => 1,
    'portico_requests_total{route="lim",method="GET",status="429"}'  => 1,
    'portico_requests_total{route="c",method="GET",status="200"}'    => 2,
    'portico_requests_total{route="slow",method="GET",status="200"}' => 4,
    'portico_requests_total{route="esc",method="GET",status="200"}'  => 1,
);
my @rt = grep { /^portico_requests_total\{/ } keys %$s;
is(scalar @rt, scalar keys %want, 'requests_total: exactly the series sent');
for my $k (sort keys %want) {
    is($s->{$k}, $want{$k}, "$k $want{$k}");
}

my $rd = 'portico_request_duration_seconds';
is($s->{"${rd}_bucket{route=\"slow\",le=\"0.025\"}"}, 0,
   'slow: none under 25 ms');
is($s->{"${rd}_bucket{route=\"slow\",le=\"0.05\"}"}, 2,
   'slow: the two 30 ms ones by 50 ms');
is($s->{"${rd}_bucket{route=\"slow\",le=\"0.25\"}"}, 2,
   'slow: still two by 250 ms');
is($s->{"${rd}_bucket{route=\"slow\",le=\"0.5\"}"}, 4,
   'slow: all four by 500 ms');
is($s->{"${rd}_bucket{route=\"slow\",le=\"+Inf\"}"}, 4, 'slow: +Inf 4');
is($s->{"${rd}_count{route=\"slow\"}"}, 4, 'slow: _count 4');
my $sum = $s->{"${rd}_sum{route=\"slow\"}"} // 0;
ok($sum >= 0.66 && $sum < 1.5, "slow: _sum about 0.66 s ($sum)");
is($s->{"${rd}_count{route=\"a\"}"}, 11, 'a: _count 11');
is($s->{"${rd}_count{route=\"\"}"}, 2, 'no route: _count 2');

my $ud = 'portico_upstream_duration_seconds';
is($s->{"${ud}_count{upstream=\"app\"}"}, 5,
   'upstream app: _count 5 (4 slow, the MISS; not the HIT)');
is($s->{"${ud}_bucket{upstream=\"app\",le=\"0.5\"}"}, 5,
   'upstream app: all by 500 ms');
is($s->{"${ud}_bucket{upstream=\"app\",le=\"0.25\"}"}, 3,
   'upstream app: the 300 ms ones above 250 ms');
is($s->{"${ud}_count{upstream=\"es\\\"c\\\\a\\npe\"}"}, 1,
   'upstream es"c\\a(newline)pe: its label escaped');
is($s->{'portico_upstream_target_up{upstream="es\\"c\\\\a\\npe",'
        . 'target="127.0.0.1:' . $t->port('B1') . '"}'}, 1,
   '  and in target_up');
ok(!grep({ /^${ud}_count\{upstream="gone"/ } keys %$s),
   'upstream gone: no sample (never used)');

is($s->{'portico_ratelimit_rejected_total{route="lim"}'}, 1,
   'ratelimit_rejected_total lim 1');
is(scalar(grep { /^portico_ratelimit_rejected_total\{/ } keys %$s), 1,
   '  and no other route');
is($s->{'portico_cache_requests_total{route="c",result="miss"}'}, 1,
   'cache_requests_total miss 1');
is($s->{'portico_cache_requests_total{route="c",result="hit"}'}, 1,
   'cache_requests_total hit 1');
is($s->{'portico_upstream_target_up{upstream="app",target="127.0.0.1:'
        . $t->port('B1') . '"}'}, 1, 'target_up app 1');
is($s->{'portico_upstream_target_up{upstream="gone",target="127.0.0.1:'
        . $dead . '"}'}, 0, 'target_up gone 0');
ok(defined $s->{'portico_connections{state="active"}'}
   && defined $s->{'portico_connections{state="idle"}'},
   'connections: active and idle');
ok(($s->{'portico_shm_bytes{state="used"}'} // 0) > 0
   && ($s->{'portico_shm_bytes{state="free"}'} // 0) > 0,
   'shm_bytes: used and free');
is($s->{'portico_config_reloads_total{result="ok"}'}, 0, 'reloads ok 0');
is($s->{'portico_config_reloads_total{result="failed"}'}, 0,
   'reloads failed 0');
is($s->{'portico_metrics_dropped_total'}, 0, 'nothing dropped');

# The counters, histograms included: what must not move on its own.
sub counters ($samples) {
    return { map { $_ => $samples->{$_} }
             grep { /^portico_(?:requests_total|request_duration|
                               upstream_duration|ratelimit_rejected|
                               cache_requests)/x } keys %$samples };
}

my $before = counters($s);
# Scrapes are not counted: the admin endpoints are not.
is_deeply(counters(samples(scrape()->{body})), $before,
          'another scrape counts nothing');


# --- reloads ----------------------------------------------------------
$t->reload;
ok($t->wait_log(qr/reload generation 2 ok/, 15), 'HUP: reloaded');
ok($t->wait_generation(2), '  /status shows generation 2');
my $after = samples(scrape()->{body});
is($after->{'portico_config_reloads_total{result="ok"}'}, 1, 'reloads ok 1');
is_deeply(counters($after), $before,
          'every counter as it was: nothing happened in between');

(my $bad = $yaml) =~ s/^routes:$/routes: [/m;
$t->write_config($bad);
$t->reload;
ok($t->wait_log(qr/reload failed, keeping generation 2/, 15),
   'a broken config: the reload fails');
$after = samples(scrape()->{body});
is($after->{'portico_config_reloads_total{result="failed"}'}, 1,
   'reloads failed 1');
is_deeply(counters($after), $before, '  every counter as it was');

undef $last;                    # that worker is gone
is(req('GET', '/a')->{status}, 200, 'after the reloads: route a');
$after = samples(scrape()->{body});
is($after->{'portico_requests_total{route="a",method="GET",status="200"}'},
   8, '  counted on top of the old count: 8');

# A worker that dies takes nothing with it: the counts are in the zone.
my $counted = counters($after);
my $victim = $last;
kill 'KILL', $victim;
ok($t->wait_log(qr/worker $victim exited on signal 9/, 10),
   'a worker killed');
is_deeply(counters(samples(scrape()->{body})), $counted,
          '  every counter as it was');

# HTTP/2 requests count the same, the method from the request's method.
my $a_get = 'portico_requests_total{route="a",method="GET",status="200"}';
my $a_del = 'portico_requests_total{route="a",method="DELETE",status="200"}';
my $n_get = samples(scrape()->{body})->{$a_get};
my ($crc) = curl('--http2-prior-knowledge', '-o', '/dev/null',
                 "http://127.0.0.1:$port/a");
my ($drc) = curl('--http2-prior-knowledge', '-o', '/dev/null', '-X',
                 'DELETE', "http://127.0.0.1:$port/a");
is("$crc $drc", '0 0', 'HTTP/2: GET and DELETE on route a');
$after = samples(scrape()->{body});
is($after->{$a_get}, $n_get + 1, '  GET counted');
is($after->{$a_del}, 1, '  DELETE counted');


# --- public listeners ----------------------------------------------------
my $pub = scrape('/pub/metrics', $port);
is($pub->{status}, 200, 'handler: metrics on a public route');
promtool_ok($pub->{body}, '  promtool passes on it too');
is(scrape('/metrics', $port)->{status}, 404,
   '/metrics on the public listener without such a route: 404');
my $post = parse_response(http("POST /metrics HTTP/1.1\r\nHost: t\r\n"
                               . "Content-Length: 0\r\n"
                               . "Connection: close\r\n\r\n",
                               port => $admin));
is($post->{status}, 405, 'POST /metrics: 405');


# `handler:` belongs to the http core; the names come from the modules.
my $case = $t->testdir . '/bad-handler.yaml';
write_file($case, <<'EOF');
listen: [ { address: "127.0.0.1:1" } ]
routes:
  - { name: x, match: { path: / }, handler: metric }
EOF
my ($rc, $out) = run_cmd(10, $t->binary, '-t', '-p', $t->testdir, '-c',
                         $case);
is($rc, 1, 'handler: an unknown name fails -t');
like($out, qr/\Q$case\E:3:\d+: handler: "metric" is not one of: status, health, metrics$/m,
     '  naming the registered names');
