#!/usr/bin/perl

# Health of upstream targets (lb module).
#
# Active checks run in one helper process for the whole gateway: with four
# workers a target still sees one probe per interval; a target that is
# down at start is marked down after `unhealthy` failed probes (log line,
# /status healthy false) and gets no traffic; started again on the same
# port it is marked up after `healthy` passed probes and gets traffic
# again.  When every target of an upstream is down the client gets a JSON
# 503 with Retry-After at once, and no backend is contacted.
#
# Passive checks: `failures` failed requests in a row (a refused
# connection, a read timeout, a 502, 503 or 504 answer, an invalid
# response) eject a target for `cooldown` (log line, /status ejected
# true); meanwhile the others take the traffic, and after the cooldown it
# is tried again.

use strict;
use warnings;
use v5.36;

use lib 't/lib';
use Test::More;
use Test::Portico;

use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->has_module(qw/router lb status/)->plan(59);
my $json = JSON::PP->new;

my $live = $t->backend(id => 'live');        # "back": always up
my $counted = $t->backend(id => 'counted');  # "probed": only probes
my $sick1 = $t->backend(id => 'sick1');      # "sick": probes get a 503
my $sick2 = $t->backend(id => 'sick2');
my $steady = $t->backend(id => 'steady');    # "flaky" and "p_*": always up

# Passive ejection on each kind of failure README lists besides a refused
# connection: a read timeout, a 502, 503 or 504 answer, an invalid
# response.  Each failing target shares an upstream with "steady".
my %bad = (
    slowpoke => $t->backend(id => 'slowpoke', defaults => { delay => 5000 }),
    ans502   => $t->backend(id => 'ans502', defaults => { status => 502 }),
    ans503   => $t->backend(id => 'ans503', defaults => { status => 503 }),
    ans504   => $t->backend(id => 'ans504', defaults => { status => 504 }),
    garbage  => $t->backend(id => 'garbage', handler => sub ($c, $n) {
        my $in = '';
        while ($in !~ /\r\n\r\n/) {
            sysread($c, $in, 4096, length $in) or return;
        }
        syswrite($c, "garbage\r\n\r\n");
    }),
);

# Ports bound but not listening: connections are refused until a backend
# is started on them (with that very socket, so no one can take the port
# in between).
my %hold = map {
    $_ => IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Proto => 'tcp') // die "bind: $@"
} qw(DOWN GONE);
my %port = map { $_ => $hold{$_}->sockport } keys %hold;

my $yaml = <<'EOF';
workers: 4
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  back:
    targets: [ "127.0.0.1:%%PORT_LIVE%%", "127.0.0.1:@@DOWN@@" ]
    health:
      active: { path: /healthz, interval: 200ms, timeout: 1s, healthy: 3,
                unhealthy: 2 }
  probed:
    targets: [ "127.0.0.1:%%PORT_COUNTED%%" ]
    health:
      active: { path: /probe-count, interval: 200ms, timeout: 1s }
  sick:
    targets: [ "127.0.0.1:%%PORT_SICK1%%", "127.0.0.1:%%PORT_SICK2%%" ]
    timeouts: { connect: 3s, read: 3s }
    health:
      active: { path: "/healthz?status=503", interval: 200ms, timeout: 1s,
                unhealthy: 1 }
  flaky:
    targets: [ "127.0.0.1:%%PORT_STEADY%%", "127.0.0.1:@@GONE@@" ]
    health:
      passive: { failures: 2, cooldown: 2s }
  p_timeout:
    targets: [ "127.0.0.1:%%PORT_STEADY%%", "127.0.0.1:%%PORT_SLOWPOKE%%" ]
    timeouts: { read: 300ms }
    health: { passive: { failures: 2, cooldown: 60s } }
  p_502:
    targets: [ "127.0.0.1:%%PORT_STEADY%%", "127.0.0.1:%%PORT_ANS502%%" ]
    health: { passive: { failures: 2, cooldown: 60s } }
  p_503:
    targets: [ "127.0.0.1:%%PORT_STEADY%%", "127.0.0.1:%%PORT_ANS503%%" ]
    health: { passive: { failures: 2, cooldown: 60s } }
  p_504:
    targets: [ "127.0.0.1:%%PORT_STEADY%%", "127.0.0.1:%%PORT_ANS504%%" ]
    health: { passive: { failures: 2, cooldown: 60s } }
  p_invalid:
    targets: [ "127.0.0.1:%%PORT_STEADY%%", "127.0.0.1:%%PORT_GARBAGE%%" ]
    health: { passive: { failures: 2, cooldown: 60s } }
routes:
  - { name: p_timeout, match: { path: /p_timeout/ }, upstream: p_timeout }
  - { name: p_502, match: { path: /p_502/ }, upstream: p_502 }
  - { name: p_503, match: { path: /p_503/ }, upstream: p_503 }
  - { name: p_504, match: { path: /p_504/ }, upstream: p_504 }
  - { name: p_invalid, match: { path: /p_invalid/ }, upstream: p_invalid }
  - { name: back, match: { path: /back/ }, upstream: back }
  - { name: probed, match: { path: /probed/ }, upstream: probed }
  - { name: sick, match: { path: /sick/ }, upstream: sick }
  - { name: flaky, match: { path: /flaky/ }, upstream: flaky }
EOF
$yaml =~ s/@@(\w+)@@/$port{$1}/g;
$t->write_config($yaml)->run();

my $gw = $t->port('GW');
my %addr = (map({ $_ => "127.0.0.1:$port{$_}" } keys %port),
            map({ uc($_->id) => '127.0.0.1:' . $_->port }
                $live, $counted, $sick1, $sick2, $steady, values %bad));


# ---- helpers -----------------------------------------------------------------

sub is_probe ($req) {
    return ($req->{headers}{'user-agent'} // '') eq 'portico-health-check';
}

sub probes ($b)  { return grep { is_probe($_) } $b->requests }
sub traffic ($b) { return grep { !is_probe($_) } $b->requests }

# The /status entry of one target of an upstream ({} if there is none).
sub target ($st, $upstream, $address) {
    my $targets = $st && $st->{upstreams}{$upstream}{targets} // [];
    my ($e) = grep { $_->{address} eq $address } @$targets;
    return $e // {};
}

# Polls $cond every 50 ms for at most $secs; its last value.
sub wait_for ($secs, $cond) {
    my $deadline = time + $secs;
    while (1) {
        my $v = $cond->();
        return $v if $v || time > $deadline;
        sleep 0.05;
    }
}

# GET through the gateway: (status, backend id or '', response).
sub get ($path) {
    my $r = eval { parse_response(http_get($path, port => $gw)) };
    return (0, '', undef) unless $r;
    return ($r->{status}, $r->{headers}{'x-backend-id'} // '', $r);
}


# ---- one prober for the gateway ----------------------------------------------

# The helper is a child of the master next to the four workers, named in
# /status, and is not one of the workers.
my $st = $t->status;
my @children = $t->worker_pids;
my %is_worker = map { $_->{pid} => 1 } @{$st->{workers} // []};
my $helper = $st->{helper} // 0;
ok($helper && grep({ $_ == $helper } @children) && !$is_worker{$helper},
   "/status names the helper ($helper), a child that is not a worker")
    or diag(explain($st), "children: @children");
is(scalar @children, 5, 'four workers and one helper')
    or diag("children: @children");

# Over 2 s or more at interval 200ms the probed target sees about 10
# probes: one prober, not one per worker (that would be about 40).  The
# window is measured, not slept: it ends once 10 more probes came (or
# after 6 s), so a slow host only stretches it; a prober per worker would
# bring 10 in about 0.5 s.
wait_for(3, sub { scalar probes($counted) });
my ($n0, $t0) = (scalar probes($counted), time);
wait_until(sub { time - $t0 >= 2 && probes($counted) >= $n0 + 10 }, 6);
my ($n1, $t1) = (scalar probes($counted), time);
my $expected = ($t1 - $t0) / 0.2;
my $seen = $n1 - $n0;
ok($seen >= 10 && $seen <= $expected * 1.6,
   sprintf('one prober: %d probes in %.1f s at 200ms (expected ~%.0f, '
           . 'not ~%.0f)', $seen, $t1 - $t0, $expected, 4 * $expected));

# Every probe is "GET /probe-count" with the prober's User-Agent, and
# nothing else reached the target.
my @all = $counted->requests;
ok(@all && !grep({ !is_probe($_) || $_->{method} ne 'GET'
                   || $_->{uri} ne '/probe-count' } @all),
   'probes are GET /probe-count with User-Agent portico-health-check')
    or diag(explain($all[0]));


# ---- a target down at start is marked down and gets no traffic ---------------

my $down_re = qr/upstream "back": \Q$addr{DOWN}\E is down /
              . qr/\(2\/2 probes failed, last: [^)]*refused/i;
my $line = $t->wait_log($down_re, 5);
ok($line && $line =~ /\[warn\]/,
   'a refusing target: "is down (2/2 probes failed, last: ...)" at [warn]')
    or diag($t->error_log);

$st = $t->status;
is(target($st, 'back', $addr{DOWN})->{healthy} // 'missing', JSON::PP::false,
   '/status: the refusing target is not healthy');
is(target($st, 'back', $addr{LIVE})->{healthy} // 'missing', JSON::PP::true,
   '/status: the live target is healthy');

# No retries are configured: a pick of the down target would be a 502.
my %got;
for my $i (1 .. 16) {
    my ($status, $id) = get("/back/a$i");
    $got{"$status $id"}++;
}
is_deeply(\%got, { '200 live' => 16 },
          'with one target down every request goes to the live one')
    or diag(explain(\%got));
is(target($t->status, 'back', $addr{DOWN})->{requests} // -1, 0,
   '/status: no request was sent to the down target');


# ---- the target comes back on the same port ----------------------------------

my $t_up = time;
my $revived = Test::Portico::Backend->new(id => 'revived', port => $port{DOWN},
                                          dir => $t->testdir,
                                          socket => delete $hold{DOWN});
my $up_re = qr/upstream "back": \Q$addr{DOWN}\E is up \(3\/3 probes passed\)/;
$line = $t->wait_log($up_re, 8);
my $took = time - $t_up;
ok($line, 'the target started again: "is up (3/3 probes passed)"')
    or diag($t->error_log);
# 3 probes at 200ms take about 0.6 s; a generous margin for a busy host.
ok($took < 0.6 + 4, sprintf('it was marked up %.1f s after it came back',
                            $took));
# The verdict needs `healthy` passes in a row: not before 3 probes.
cmp_ok(scalar probes($revived), '>=', 3,
       'it was probed at least 3 times before it was marked up');
is(target($t->status, 'back', $addr{DOWN})->{healthy} // 'missing',
   JSON::PP::true, '/status: the target is healthy again');

%got = ();
for my $i (1 .. 16) {
    my ($status, $id) = get("/back/b$i");
    $got{$status}++;
}
is_deeply(\%got, { 200 => 16 }, 'all requests after the return are 200')
    or diag(explain(\%got));
ok(scalar(traffic($revived)) > 0 && scalar(traffic($live)) > 16,
   'the returned target gets traffic again, the other one keeps some ('
   . scalar(traffic($revived)) . ' and '
   . (scalar(traffic($live)) - 16) . ' of 16)');


# ---- every target down: 503 at once ------------------------------------------

for my $b ($sick1, $sick2) {
    my $re = qr/upstream "sick": \Q$addr{uc $b->id}\E is down /
             . qr/\(1\/1 probes failed, last: status not 2xx or 3xx\)/;
    ok($t->wait_log($re, 5), "a target answering its probe with 503 is "
                             . "down (" . $b->id . ")")
        or diag($t->error_log);
}

my $t_req = time;
my ($status, $id, $r) = get('/sick/x');
my $elapsed = time - $t_req;
is($status, 503, 'all targets down: 503');
ok($elapsed < 2.5, sprintf('all targets down: at once, before any connect '
                           . 'timeout (%.2f s)', $elapsed));
ok(($r && $r->{headers}{'retry-after'} // '') =~ /^\d+\z/,
   'all targets down: Retry-After') or diag(explain($r));
my $body = $r ? eval { $json->decode($r->{body}) } : undef;
ok($body && $body->{status} == 503 && length($body->{error} // '')
   && $body->{request_id} eq ($r->{headers}{'x-request-id'} // ''),
   'all targets down: JSON error with status and request_id')
    or diag($r && $r->{body});
# The probes get a 503 but a request would get a 200: no request went.
is(scalar(traffic($sick1)) + scalar(traffic($sick2)), 0,
   'all targets down: no backend was contacted');
my $rid = $r ? $r->{headers}{'x-request-id'} : 'none';
ok($t->wait_log(qr/upstream "sick".*\Q$rid\E/, 3),
   'all targets down: logged with the upstream name and request id');


# ---- passive: ejection after failures, back after the cooldown ---------------

# Request after request until the second failure on the refusing target
# ejects it: exactly two 502s, the other requests reach the steady one.
my $eject_re = qr/upstream "flaky": \Q$addr{GONE}\E failed 2 times /
               . qr/in a row, ejected for 2000 ms/;
my (%flaky, $t_fail);
for my $i (1 .. 20) {
    my $t_this = time;
    my ($status, $id) = get("/flaky/a$i");
    $flaky{"$status $id"}++;
    $t_fail = $t_this if $status == 502;
    last if $t->wait_log($eject_re, 0);
}
$line = $t->wait_log($eject_re, 2);
ok($line && $line =~ /\[warn\]/,
   'passive: "failed 2 times in a row, ejected for 2000 ms" at [warn]')
    or diag($t->error_log);
is($flaky{'502 '} // 0, 2, 'passive: exactly two requests failed');
is(scalar(grep { !/^(?:502 |200 steady)\z/ } keys %flaky), 0,
   'passive: the others were served by the steady target')
    or diag(explain(\%flaky));

$st = $t->status;
my $gone = target($st, 'flaky', $addr{GONE});
is($gone->{ejected} // 'missing', JSON::PP::true,
   '/status: the failing target is ejected');
is($gone->{healthy} // 'missing', JSON::PP::true,
   '/status: ejected, not unhealthy (there are no active checks)');
is($gone->{failures} // -1, 2, '/status: its two failures are counted');

# The target comes back at once, but is left alone for the cooldown.
my $back2 = Test::Portico::Backend->new(id => 'back2', port => $port{GONE},
                                        dir => $t->testdir,
                                        socket => delete $hold{GONE});
my %during;
for my $i (1 .. 6) {
    my ($status, $id) = get("/flaky/b$i");
    $during{"$status $id"}++;
}
SKIP: {
    # The ejection began after $t_fail; past $t_fail + 2 s it may be over.
    skip 'the host was too slow to stay within the cooldown', 2
        if time - $t_fail > 1.8;
    is_deeply(\%during, { '200 steady' => 6 },
              'passive: during the cooldown the steady target takes all')
        or diag(explain(\%during));
    is(scalar $back2->requests, 0,
       'passive: the ejected target gets nothing during the cooldown');
}

# After the cooldown it is tried again (and now answers).
ok(wait_for(5, sub {
       my $e = target($t->status, 'flaky', $addr{GONE})->{ejected};
       defined $e && !$e;
   }), '/status: no longer ejected after the cooldown');
my %after;
for my $i (1 .. 20) {
    my ($status, $id) = get("/flaky/c$i");
    $after{$status}++;
    last if $back2->requests > 0 && $i >= 4;
}
ok(scalar $back2->requests > 0,
   'passive: after the cooldown the target is tried again');
is_deeply([keys %after], [200], 'passive: and every request succeeds')
    or diag(explain(\%after));


# ---- passive: timeouts, 5xx answers and invalid responses eject too ----------

# Each upstream pairs "steady" with a target that fails every request in
# one way; passive: { failures: 2, cooldown: 60s }, no retries.  Requests
# go until the ejection is logged: exactly two reach the client as
# failures (the status the failure gives), the rest are the steady
# target's.  The cooldown is long enough that the checks after it always
# fall inside it, however slow the host.
for my $case (['p_timeout', 'slowpoke', 504, 'a read timeout'],
              ['p_502', 'ans502', 502, 'a 502 answer'],
              ['p_503', 'ans503', 503, 'a 503 answer'],
              ['p_504', 'ans504', 504, 'a 504 answer'],
              ['p_invalid', 'garbage', 502, 'an invalid response'])
{
    my ($us, $id, $fail_status, $what) = @$case;
    my $addr = $addr{uc $id};
    my $re = qr/upstream "\Q$us\E": \Q$addr\E failed 2 times in a row, /
             . qr/ejected for 60000 ms/;
    my %got;
    for my $i (1 .. 20) {
        my ($status, $bid) = get("/$us/a$i");
        $got{"$status $bid"}++;
        last if $t->wait_log($re, 0);
    }
    my $line = $t->wait_log($re, 3);
    ok($line && $line =~ /\[warn\]/,
       "passive, $what: ejected after 2 failures, logged at [warn]")
        or diag($t->error_log);
    # A 5xx answer is passed on with the backend's id; the gateway's own
    # 502/504 has none.
    my %want = ("$fail_status " . ($what =~ /answer/ ? $id : '') => 2);
    $want{'200 steady'} = $got{'200 steady'} if $got{'200 steady'};
    is_deeply(\%got, \%want,
              "passive, $what: two $fail_status, the rest from steady")
        or diag(explain(\%got));

    my $e = target($t->status, $us, $addr);
    ok(($e->{ejected} // 0) && ($e->{failures} // -1) == 2,
       "passive, $what: /status says ejected, 2 failures")
        or diag(explain($e));

    my $sent = $e->{requests} // -1;
    my %during;
    for my $i (1 .. 6) {
        my ($status, $bid) = get("/$us/b$i");
        $during{"$status $bid"}++;
    }
    is_deeply(\%during, { '200 steady' => 6 },
              "passive, $what: while ejected the steady target takes all")
        or diag(explain(\%during));
    is(target($t->status, $us, $addr)->{requests} // -2, $sent,
       "passive, $what: the ejected target gets nothing");
}
