# The dashboard: GET / on the admin listener is one self-contained HTML
# page (no external origin anywhere, a strict Content-Security-Policy)
# that Debian's headless Chromium loads without a console message and
# fills, from /status (and /metrics when the admin listener has it), with
# the routes and upstream targets of the running config and their
# health. Also: the SPEC 7 fields of /status, the routes and endpoints it
# adds for the page, and /health saying 503 once the master is gone.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use POSIX ();
use Test::More;
use Test::Portico;
use Time::HiRes qw(time sleep);

# make test installs chromium (scripts/deps): its absence is a broken
# set-up to report, not a reason to skip the page's test.
my $chromium = '/usr/bin/chromium';
BAIL_OUT("$chromium is missing: run scripts/deps (as root)")
    unless -x $chromium;

my $t = Test::Portico->new()->plan(48);
my $b1 = $t->backend(id => 'b1');
$t->port('DEAD');       # reserved, then released at start: nobody listens

$t->write_config(<<'EOF')->run();
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  app:
    targets: [ "127.0.0.1:%%PORT_B1%%" ]
    health: { active: { path: /, interval: 200ms, timeout: 1s,
                        healthy: 1, unhealthy: 1 } }
  gone:
    targets: [ "127.0.0.1:%%PORT_DEAD%%" ]
    health: { active: { path: /, interval: 200ms, timeout: 1s,
                        healthy: 1, unhealthy: 1 } }
routes:
  - name: users-api
    match: { path: /api/ }
    upstream: app
  - name: legacy-orders
    match: { path: /orders/ }
    upstream: gone
  - name: hello-route
    match: { path: "=/hello" }
    respond: { status: 200, body: "hello\n" }
EOF

my $admin = $t->port('ADMIN');
my $app = '127.0.0.1:' . $t->port('B1');
my $dead = '127.0.0.1:' . $t->port('DEAD');
my @routes = qw(users-api legacy-orders hello-route);


# ---- GET / ------------------------------------------------------------

my $raw = http_get('/', port => $admin);
my $r = parse_response($raw);
is($r->{status}, 200, 'GET / on the admin listener: 200');
is($r->{headers}{'content-type'}, 'text/html; charset=utf-8',
   'Content-Type: text/html; charset=utf-8');
is($r->{headers}{'cache-control'}, 'no-cache', 'Cache-Control: no-cache');
my $csp = $r->{headers}{'content-security-policy'} // '';
like($csp, qr/(?:^|;\s*)default-src 'none'/, 'CSP: default-src \'none\'');
like($csp, qr/(?:^|;\s*)connect-src 'self'(?:;|$)/,
     'CSP: the page may fetch from its own origin only');
unlike($csp, qr{https?:|\*|\bdata:[^;]*script}i,
       'CSP: no other origin, no wildcard');
my $page = $r->{body};
cmp_ok(length $page, '<', 40 * 1024, 'the page is under 40 KB ('
       . length($page) . ' bytes)');
like($page, qr/^<!doctype html>/i, 'an HTML document');
unlike($page, qr{https?://|\bsrc\s*=\s*["']?//}i,
       'no URL of another origin in the page');
unlike($page, qr{<script\b[^>]*\bsrc\s*=}i, 'no external script');
unlike($page, qr{<link\b|\@import|url\(}i, 'no external style or font');
like($page, qr{fetch\(}, 'it fetches its data');

$raw = http("HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            port => $admin);
$r = parse_response($raw, head => 1);
ok($r->{status} == 200 && $r->{length} == length $raw
   && ($r->{headers}{'content-length'} // -1) == length $page,
   'HEAD /: the head alone, with the page\'s length');
$raw = http("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
            . "Connection: close\r\n\r\n", port => $admin);
$r = parse_response($raw);
ok($r->{status} == 405 && ($r->{headers}{allow} // '') eq 'GET, HEAD',
   'POST /: 405 with Allow: GET, HEAD');
$r = parse_response(http_get('/'));
isnt($r->{status}, 200, 'not on the public listener');


# ---- /status: SPEC 7's fields, and the routes -------------------------

my $st = $t->status // {};
ok(defined $st->{$_}, "/status has $_")
    for qw(version uptime_s generation loaded_at);
my @w = @{$st->{workers} // []};
ok(@w == 2 && !grep({ !(defined $_->{pid} && defined $_->{generation}
                        && defined $_->{connections}) } @w),
   '/status workers: pid, generation, connections of each of two')
    or diag explain \@w;
ok(defined $st->{connections}{active} && defined $st->{connections}{idle},
   '/status connections: active, idle');
my %t1 = %{($st->{upstreams}{app}{targets} // [])->[0] // {}};
ok($t1{address} eq $app && defined $t1{healthy} && defined $t1{inflight},
   '/status upstreams.app.targets: address, healthy, inflight')
    or diag explain $st->{upstreams};
is_deeply([map { $_->{name} } @{$st->{routes} // []}], \@routes,
          '/status routes: the configured ones, in config order');
is_deeply([map { [$_->{action}, $_->{upstream}] }
           @{$st->{routes} // []}],
          [['upstream', 'app'], ['upstream', 'gone'], ['respond', undef]],
          '/status routes: their action and upstream');
ok((grep { $_ eq '/' } @{$st->{endpoints} // []})
   && (grep { $_ eq '/status' } @{$st->{endpoints} // []}),
   '/status endpoints: the admin listener\'s paths');

$r = parse_response(http_get('/health', port => $admin));
is($r->{status}, 200, '/health: 200 with the master and workers up');
is_deeply(eval { decode_json($r->{body}) },
          { status => 'ok', master => JSON::PP::true, workers => 2,
            expected => 2 },
          '/health: ok, master up, 2 of 2 workers');


# ---- the page in headless Chromium ------------------------------------

# The active checks take the dead target out within a moment.
ok(wait_until(sub {
    my $s = $t->status or return 0;
    my ($d) = @{$s->{upstreams}{gone}{targets} // []};
    my ($a) = @{$s->{upstreams}{app}{targets} // []};
    return $d && !$d->{healthy} && $a && $a->{healthy};
}, 10), 'the dead target is unhealthy, the live one healthy');

# Some traffic, so that a /metrics (once there) has samples.
http_get('/api/x') for 1 .. 3;
http_get('/hello');

my $dir = $t->testdir;
mkdir "$dir/chromium-home";

sub slurp ($path) {
    open(my $fh, '<', $path) or return '';
    local $/;
    return <$fh> // '';
}

# Runs chromium in a process group of its own, its stdout (the DOM) and
# stderr (its log, the page's console) into files; the whole group is
# killed once it exits or after $secs.
sub run_chromium ($secs, @args) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        $ENV{HOME} = "$dir/chromium-home";
        $ENV{XDG_CONFIG_HOME} = "$dir/chromium-home/.config";
        $ENV{XDG_CACHE_HOME} = "$dir/chromium-home/.cache";
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/dom.html";
        open STDERR, '>', "$dir/chromium.log";
        exec { $chromium } $chromium, @args or POSIX::_exit(127);
    }
    my $deadline = time + $secs;
    my $status;
    while (time < $deadline) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            $status = $?;
            last;
        }
        sleep 0.05;
    }
    kill 'KILL', -$pid;
    unless (defined $status) {
        waitpid($pid, 0);
        $status = -1;
    }
    return ($status, slurp("$dir/dom.html"), slurp("$dir/chromium.log"));
}

my ($rc, $dom, $log) = run_chromium(90, '--headless=new', '--no-sandbox',
    '--disable-gpu', '--no-first-run', '--disable-extensions',
    "--user-data-dir=$dir/chromium-home/profile",
    '--virtual-time-budget=8000', '--enable-logging=stderr', '--v=0',
    '--dump-dom', "http://127.0.0.1:$admin/");

is($rc, 0, 'chromium ran to the end') or diag $log;
like($dom, qr/<body[^>]*data-state="ready"/,
     'the page rendered from /status') or diag $dom;

# The rendered tables (the HTML as sent has none of these).
my ($rt) = $dom =~ m{<table id="routes">(.*?)</table>}s;
is_deeply([($rt // '') =~ m{<td class="name">([^<]*)</td>}g], \@routes,
          'the routes table lists the three routes in order') or diag $dom;
my ($ut) = $dom =~ m{<table id="upstreams">(.*?)</table>}s;
$ut //= '';
my $row = '<tr data-healthy="%s"><td class="name">%s</td>'
          . '<td class="l">%s</td><td class="%s">%s</td>';
like($ut, qr/\Q${\sprintf($row, 'yes', 'app', $app, 'ok', 'healthy')}\E/,
     'the live target, marked healthy');
like($ut,
     qr/\Q${\sprintf($row, 'no', 'gone', $dead, 'bad', 'unhealthy')}\E/,
     'the dead target, marked unhealthy');
like($dom, qr{<b id="version">\Q$st->{version}\E</b>}, 'the version');
like($dom, qr{<b id="workers">2</b>}, 'the two workers');

# Without /metrics on the admin listener the page says so; with it, it
# fills the rates.
if (grep { $_ eq '/metrics' } @{$st->{endpoints}}) {
    like($dom, qr{<div id="metrics-msg" class="banner" hidden="">\s*</div>},
     'metrics used: no "metrics unavailable"');
} else {
    like($dom, qr/<div id="metrics-msg" class="banner">metrics unavailable/,
         'no /metrics: "metrics unavailable" shown');
}

# Anything the page's scripts print, or an exception they let out, is a
# CONSOLE line in chromium's log (this chromium logs them all at INFO).
my @console;
@console = grep { /:CONSOLE[:(]|Uncaught/ } split /\n/, $log;
is_deeply(\@console, [], 'no console message from the page')
    or diag join "\n", @console;


# ---- the page's reading of /metrics ----------------------------------

# /metrics is not on this admin listener yet, so a second gateway serves
# the page from its public listener (proxied from its admin listener)
# next to fixed /status and /metrics documents (respond: routes): the
# page's numbers are then known in advance. Status classes, percentiles,
# cache and limits are read since the start when nothing changed between
# two polls, so fixed documents show them, and a rate of 0.
my $fixture_status = encode_json({
    version => '9.9.9-fixture', generation => 3, uptime_s => 3725,
    workers => [{ pid => 101, generation => 3, connections => 2,
                  requests => 5 }],
    connections => { active => 2, idle => 1 },
    routes => [{ name => 'alpha', action => 'upstream', upstream => 'app' },
               { name => 'beta', action => 'respond', upstream => undef }],
    endpoints => ['/status', '/health', '/', '/metrics'],
    upstreams => { app => { targets => [
        { address => '192.0.2.1:80', healthy => JSON::PP::true,
          ejected => JSON::PP::false, inflight => 1, requests => 10,
          failures => 0, weight => 1 },
        { address => '192.0.2.2:80', healthy => JSON::PP::false,
          ejected => JSON::PP::false, inflight => 0, requests => 3,
          failures => 3, weight => 1 } ] } },
});
# 100 requests of alpha: 80 2xx, 15 4xx, 5 5xx; latencies 40 under 10 ms,
# 50 more under 25, 8 more under 50, 2 under 100: p50 = 10 + 15 * 10/50 =
# 13 ms, p90 = 25 ms, p99 = 50 + 50 * 1/2 = 75 ms. Cache: hit 30, stale 3,
# revalidated 2 of 50 lookups (50 bypass left out): 70%.
my $fixture_metrics = <<'EOF';
# HELP portico_requests_total Requests answered.
# TYPE portico_requests_total counter
portico_requests_total{route="alpha",method="GET",status="200"} 60
portico_requests_total{route="alpha",method="POST",status="201"} 20
portico_requests_total{route="alpha",method="GET",status="404"} 15
portico_requests_total{route="alpha",method="GET",status="503"} 5 1796232629000
portico_requests_total{route="we\"ird, {x}",method="GET",status="200"} 1
# TYPE portico_request_duration_seconds histogram
portico_request_duration_seconds_bucket{route="alpha",le="0.005"} 0
portico_request_duration_seconds_bucket{route="alpha",le="0.01"} 40
portico_request_duration_seconds_bucket{route="alpha",le="0.025"} 90
portico_request_duration_seconds_bucket{route="alpha",le="0.05"} 98
portico_request_duration_seconds_bucket{route="alpha",le="0.1"} 100
portico_request_duration_seconds_bucket{route="alpha",le="+Inf"} 100
portico_request_duration_seconds_sum{route="alpha"} 1.5
portico_request_duration_seconds_count{route="alpha"} 100
portico_upstream_duration_seconds_bucket{upstream="app",le="0.1"} 10
portico_upstream_duration_seconds_bucket{upstream="app",le="+Inf"} 10
portico_upstream_target_up{upstream="app",target="192.0.2.1:80"} 1
portico_connections{state="active"} 2
portico_ratelimit_rejected_total{route="alpha"} 7
portico_cache_requests_total{route="alpha",result="hit"} 30
portico_cache_requests_total{route="alpha",result="miss"} 10
portico_cache_requests_total{route="alpha",result="expired"} 5
portico_cache_requests_total{route="alpha",result="stale"} 3
portico_cache_requests_total{route="alpha",result="revalidated"} 2
portico_cache_requests_total{route="alpha",result="bypass"} 50
EOF
(my $yaml_metrics = $fixture_metrics) =~ s/^/        /mg;

my $t2 = Test::Portico->new();
$t2->write_config(<<EOF)->run();
workers: 1
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  self_admin: { targets: [ "127.0.0.1:%%PORT_ADMIN%%" ] }
routes:
  - name: page
    match: { path: "=/" }
    upstream: self_admin
  - name: fixture-status
    match: { path: "=/status" }
    respond:
      status: 200
      headers: { Content-Type: application/json }
      body: '$fixture_status'
  - name: fixture-metrics
    match: { path: "=/metrics" }
    respond:
      status: 200
      headers: { Content-Type: "text/plain; version=0.0.4" }
      body: |
$yaml_metrics
EOF

my $m = parse_response(http_get('/metrics', port => $t2->port('GW')));
is($m->{body}, $fixture_metrics, 'the fixture /metrics is served')
    or diag $m->{body};

($rc, $dom, $log) = run_chromium(90, '--headless=new', '--no-sandbox',
    '--disable-gpu', '--no-first-run', '--disable-extensions',
    "--user-data-dir=$dir/chromium-home/profile",
    '--virtual-time-budget=8000', '--enable-logging=stderr', '--v=0',
    '--dump-dom', 'http://127.0.0.1:' . $t2->port('GW') . '/');
ok($rc == 0 && $dom =~ /<body[^>]*data-state="ready"/,
   'chromium rendered the page from the fixtures') or diag $log, $dom;
like($dom, qr{<div id="metrics-msg" class="banner" hidden="">\s*</div>},
     'metrics used: no "metrics unavailable"');
($rt) = $dom =~ m{<table id="routes">(.*?)</table>}s;
$rt //= '';
# The row of alpha, its cells' text.
my ($alpha) = $rt =~ m{<tr><td class="name">alpha</td>(.*?)</tr>}s;
my @cells = map { s/<[^>]*>//gr } ($alpha // '') =~ m{<td[^>]*>(.*?)</td>}g;
is_deeply(\@cells, ['upstream app', '0.00', '80.0% 0% 15.0% 5.0%',
                    '13.0 ms', '25.0 ms', '75.0 ms', '70.0%', '7'],
          'alpha: rate, status classes, p50/p90/p99, cache hits, limited')
    or diag $rt;
my ($beta) = $rt =~ m{<tr><td class="name">beta</td>(.*?)</tr>}s;
@cells = map { s/<[^>]*>//gr } ($beta // '') =~ m{<td[^>]*>(.*?)</td>}g;
is_deeply(\@cells, ['respond', '0.00', 'no requests', '-', '-', '-', '-',
                    '-'], 'beta: no samples, no figures') or diag $rt;
($ut) = $dom =~ m{<table id="upstreams">(.*?)</table>}s;
@cells = map { s/<[^>]*>//gr } ($ut // '') =~ m{<td[^>]*>(.*?)</td>}g;
is_deeply(\@cells, ['app', '192.0.2.1:80', 'healthy', 1, 10, 0, 1,
                    '50.0 ms', '99.0 ms',
                    '', '192.0.2.2:80', 'unhealthy', 0, 3, 3, 1, '', ''],
          'upstreams: targets, health, in flight, upstream latency')
    or diag $ut;
like($dom, qr{<b id="uptime">1h 2m</b>}, 'the uptime');
@console = grep { /:CONSOLE[:(]|Uncaught/ } split /\n/, $log;
is_deeply(\@console, [], 'no console message from the page')
    or diag join "\n", @console;
$t2->stop;


# ---- /health once the master is gone ----------------------------------

# A master that dies leaves its workers serving under another parent:
# /health says so. The workers are then stopped here, by pid.
my @workers = $t->worker_pids;
my $master = $t->pid;
kill 'KILL', $master;
waitpid($master, 0);
$r = undef;
ok(wait_until(sub {
    $r = parse_response(http_get('/health', port => $admin));
    return $r->{status} == 503;
}, 5), '/health: 503 once the master is gone');
is((eval { decode_json($r->{body}) } // {})->{master}, JSON::PP::false,
   '/health: "master": false');
kill 'TERM', @workers;
ok(wait_until(sub { !grep { kill 0, $_ and proc_state($_) ne 'Z' }
                    @workers }, 10),
   'the orphaned workers stopped');
