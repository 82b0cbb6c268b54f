# The admin endpoints: GET /status sums what every worker counted in
# shared memory, lists the workers and the upstream targets; GET /health
# answers for liveness; neither is on the public listener unless a route
# asks for it with `handler:`.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use JSON::PP;
use Test::More;
use Test::Portico;
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->plan(29);
my $b1 = $t->backend(id => 'b1');
my $b2 = $t->backend(id => 'b2');

$t->write_config(<<'EOF')->run();
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  app:
    targets:
      - { address: "127.0.0.1:%%PORT_B1%%" }
      - { address: "127.0.0.1:%%PORT_B2%%" }
routes:
  - name: api
    match: { path: /api/ }
    upstream: app
  - name: public_status
    match: { path: "=/gw/status" }
    handler: status
  - name: public_health
    match: { path: "=/gw/health" }
    handler: health
EOF

my $admin = $t->port('ADMIN');
my $admin_requests = 0;
my $st;

sub admin_status () {
    $admin_requests++;
    return $t->status;
}

# Reads one whole response (Content-Length framed) from a kept-alive
# socket, within $secs; what came, complete or not.
sub read_response ($s, $secs) {
    my ($buf, $deadline) = ('', time + $secs);
    my $sel = IO::Select->new($s);
    while ((my $left = $deadline - time) > 0) {
        return $buf if eval { parse_response($buf) };
        next unless $sel->can_read($left);
        sysread($s, $buf, 65536, length $buf) or last;
    }
    return $buf;
}

# Polls /status (into $st) until $cond->($st) holds; false after 4 s.
sub wait_status ($cond) {
    my $deadline = time + 4;
    while (time < $deadline) {
        $st = admin_status();
        return 1 if $st && $cond->($st);
        sleep 0.1;
    }
    return 0;
}


# Requests over many new connections, some in parallel and a little slow
# so that both workers take some, until /status shows that both did (or
# 10 rounds).  Every one must be a 200 from a backend.
my ($sent, %codes) = (0);
for my $round (1 .. 10) {
    my %c = http_many(40, '/api/load?delay=20', concurrency => 8);
    $codes{$_} += $c{$_} for keys %c;
    $sent += 40;
    $st = admin_status();
    my @busy = grep { ($_->{requests} // 0) > 0 } @{$st->{workers} // []};
    last if @busy >= 2;
}
is_deeply(\%codes, { 200 => $sent }, "$sent proxied requests, all 200");
my @w = @{$st->{workers} // []};
is(scalar(grep { ($_->{requests} // 0) > 0 } @w), 2,
   'both workers served some of them') or diag explain $st;

# The total is the sum over workers, read from shared memory by whichever
# worker answers: at least what we sent, and at most that plus our own
# admin requests.
$st = admin_status();
cmp_ok($st->{requests}, '>=', $sent, "requests >= $sent (cross-worker)");
cmp_ok($st->{requests}, '<=', $sent + $admin_requests,
       'requests counts nothing we did not send');
my $sum = 0;
$sum += $_->{requests} // 0 for @{$st->{workers}};
cmp_ok($sum, '>=', $sent, 'per-worker counts add up to the requests sent');

# The worker list is the live worker processes.
my @pids = $t->worker_pids;
is(scalar @{$st->{workers}}, 2, 'two workers listed');
is_deeply([sort { $a <=> $b } map { $_->{pid} } @{$st->{workers}}], \@pids,
          'worker pids are the master\'s children');
is_deeply([map { $_->{generation} } @{$st->{workers}}], [1, 1],
          'each worker is of generation 1');
is($st->{generation}, 1, 'generation 1');
is($st->{pid}, $t->pid, 'pid is the master');
like($st->{version}, qr/^\d+\.\d+\.\d+/, 'version');
ok(defined $st->{uptime_s} && $st->{uptime_s} >= 0 && $st->{uptime_s} < 60,
   'uptime_s is seconds since the start');
ok(defined $st->{loaded_at} && abs($st->{loaded_at} - time) < 60,
   'loaded_at is an epoch time near now');
# Upstream targets: both addresses, healthy, nothing in flight once the
# load is over, and the requests shared between them.
my $targets = $st->{upstreams}{app}{targets} // [];
is_deeply([map { $_->{address} } @$targets],
          [map { "127.0.0.1:" . $t->port($_) } qw(B1 B2)],
          'upstream app lists its two targets');
is_deeply([map { $_->{healthy} ? 1 : 0 } @$targets], [1, 1],
          'targets healthy');
is_deeply([map { $_->{inflight} } @$targets], [0, 0], 'inflight 0');
is(scalar($b1->requests) + scalar($b2->requests), $sent,
   'the backends saw every request');

# A request in flight shows up: one connection active, one upstream
# request in flight (worker counters are published within a moment, so
# this polls for a few seconds).
my $slow = http_get('/api/slow?delay=3000', start => 1,
                    headers => { Connection => 'keep-alive' });
my $seen = wait_status(sub ($s) {
    my $in = 0;
    $in += $_->{inflight} for @{$s->{upstreams}{app}{targets}};
    return $in == 1 && $s->{connections}{active} >= 1;
});
ok($seen, 'in flight: inflight 1 and an active connection')
    or diag explain $st;
my $raw = read_response($slow, 6);
like($raw, qr/^HTTP\/1.1 200 /, 'the slow request completed');

# The same connection, now idle in keep-alive, counts as idle; once
# closed, nothing is left.
$seen = wait_status(sub ($s) { $s->{connections}{idle} >= 1 });
ok($seen, 'keep-alive connection: counted as idle') or diag explain $st;
close $slow;
$seen = wait_status(sub ($s) {
    $s->{connections}{idle} == 0 && $s->{connections}{active} <= 1
});
ok($seen, 'closed: no idle connection left') or diag explain $st;

# /health on the admin listener.
my $r = parse_response(http_get('/health', port => $admin));
is($r->{status}, 200, '/health: 200');
is_deeply(eval { decode_json($r->{body}) },
          { status => 'ok', master => JSON::PP::true, workers => 2,
            expected => 2 },
          '/health: {"status":"ok","master":true,"workers":2,...}');

# HEAD gives the head alone; a method that is not GET or HEAD gets 405
# with Allow (as nginx's stub_status does).
$raw = http("HEAD /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
               port => $admin);
$r = parse_response($raw, head => 1);
ok($r->{status} == 200 && $r->{length} == length $raw,
   'HEAD /status: 200 without a body');
$raw = http("DELETE /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
            . "\r\n", port => $admin);
$r = parse_response($raw);
ok($r->{status} == 405 && ($r->{headers}{allow} // '') =~ /\bGET\b/,
   'DELETE /status: 405 with Allow: GET') or diag $raw;

# The admin endpoints are not on the public listener...
$r = parse_response(http_get('/status'));
is($r->{status}, 404, '/status on the public listener: 404');
$r = parse_response(http_get('/health'));
is($r->{status}, 404, '/health on the public listener: 404');

# ...unless a route asks for them.
$r = parse_response(http_get('/gw/status'));
my $pub = eval { decode_json($r->{body}) } // {};
ok($r->{status} == 200 && $pub->{generation} == 1
   && @{$pub->{workers} // []} == 2,
   'handler: status on a public route serves the status document');
$r = parse_response(http_get('/gw/health'));
is("$r->{status} " . ((eval { decode_json($r->{body}) } // {})->{status}
                      // ''),
   '200 ok', 'handler: health on a public route');
