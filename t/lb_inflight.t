# Requests in flight are counted across workers (README: least_conn "per
# weight, counted across all workers", max_inflight "across the workers",
# /status inflight).  With two workers, the test gets a client
# connection accepted by each (the harness tells which worker holds it),
# holds requests open in one worker and checks what the other one does:
#
# - least_conn: a request held on the slow target by worker A makes
#   worker B send every request to the other target (a worker counting
#   only its own requests would see a tie and alternate);
# - max_inflight: 2: one request held in each worker, a third one (in
#   either) gets 503, and /status shows 2 in flight.
#
# The slow targets never answer (hang): nothing here depends on timing.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Test::More;
use Test::Portico;
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->has_module(qw/router lb status/)->plan(12);

my $hold = $t->backend(id => 'hold', defaults => { hang => 1 });
my $fast = $t->backend(id => 'fast');
my $hold2 = $t->backend(id => 'hold2', defaults => { hang => 1 });

$t->write_config(<<'EOF')->run();
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  lc:
    balance: least_conn
    targets: [ "127.0.0.1:%%PORT_HOLD%%", "127.0.0.1:%%PORT_FAST%%" ]
    timeouts: { read: 60s }
  lim:
    targets: [ "127.0.0.1:%%PORT_HOLD2%%" ]
    max_inflight: 2
    timeouts: { read: 60s }
routes:
  - { name: lc, match: { path: /lc/ }, upstream: lc }
  - { name: lim, match: { path: /lim/ }, upstream: lim }
EOF

my $gw = $t->port('GW');
my $hold_addr = '127.0.0.1:' . $hold->port;
my @keep;      # connections left open until the end


# A new connection to the gateway and the worker that accepted it; with
# $busy, one that worker did not accept (see Test::Portico's
# connect_worker).
sub connect_gw () { $t->connect_worker($gw) }
sub conn_avoiding ($busy) { $t->connect_worker($gw, avoid => $busy) }

# Sends one keep-alive request on $s.
sub send_req ($s, $path) {
    my $raw = "GET $path HTTP/1.1\r\nHost: t\r\n\r\n";
    return syswrite($s, $raw) == length $raw;
}

# Reads one response from $s: the parsed response, or undef after
# $timeout.
sub read_resp ($s, $timeout = 5) {
    my $buf = '';
    my $deadline = time + $timeout;
    my $sel = IO::Select->new($s);
    while ((my $left = $deadline - time) > 0) {
        my $r = eval { parse_response($buf) };
        return $r if $r && $r->{length} == length $buf;
        last unless $sel->can_read($left);
        last unless sysread($s, $buf, 65536, length $buf);
    }
    my $r = eval { parse_response($buf) };
    return $r;
}

sub target_of ($st, $us, $addr) {
    my ($e) = grep { $_->{address} eq $addr }
              @{$st && $st->{upstreams}{$us}{targets} // []};
    return $e // {};
}


# ---- one connection in each worker -------------------------------------------

my ($sa, $wa) = connect_gw();
my ($sb, $wb) = $wa ? conn_avoiding($wa) : ();
ok($wa && $wb && $wa != $wb, "a connection in each worker ($wa and "
                             . ($wb // 'none') . ')')
    or BAIL_OUT('cannot reach both workers');


# ---- least_conn counts the other worker's requests ---------------------------

# Worker A: keep-alive requests until one is held on the slow target (the
# first may go to the fast one, which answers at once).
my $held = 0;
for my $i (1 .. 4) {
    my $before = scalar $hold->requests;
    send_req($sa, "/lc/a$i");
    my $got = wait_until(sub {
        return 'held' if $hold->requests > $before;
        return 'answered' if IO::Select->new($sa)->can_read(0);
        return undef;
    }, 5, 0.01) // 'nothing';
    if ($got eq 'held') {
        $held = 1;
        last;
    }
    my $r = read_resp($sa);
    last unless $r && $r->{status} == 200;
}
ok($held, 'worker A has a request held on the slow target');

# Worker B: with the slow target's request counted, least_conn sends
# every request to the fast one.
my %got;
for my $i (1 .. 6) {
    send_req($sb, "/lc/b$i");
    my $r = read_resp($sb);
    $got{$r ? "$r->{status} " . ($r->{headers}{'x-backend-id'} // '')
            : 'no answer'}++;
}
is_deeply(\%got, { '200 fast' => 6 },
          'least_conn in worker B: all 6 to the fast target, none to the '
          . 'one busy in worker A') or diag(explain(\%got));

my $st = $t->status;
is(target_of($st, 'lc', $hold_addr)->{inflight} // -1, 1,
   '/status: the slow target has 1 request in flight');


# ---- max_inflight across workers ---------------------------------------------

# One held request in each worker: worker B's keep-alive connection, and
# a fresh connection accepted by worker A.
my ($sa2, $wa2) = conn_avoiding($wb);
ok($sa2 && $wa2 == $wa, 'a second connection in worker A');
push @keep, $sa, $sa2;
send_req($sa2, '/lim/1') if $sa2;
send_req($sb, '/lim/2');
ok(wait_until(sub { $hold2->requests >= 2 }, 10),
   'max_inflight: both held requests reached the backend');

$st = $t->status;
is($st && $st->{upstreams}{lim}{inflight} // -1, 2,
   '/status: upstream "lim" has 2 in flight (one per worker)')
    or diag(explain($st && $st->{upstreams}{lim}));
is(target_of($st, 'lim', '127.0.0.1:' . $hold2->port)->{inflight} // -1, 2,
   '/status: its target has 2 in flight');

# A third request, in whichever worker: 503 at once.
my ($s3, $w3) = connect_gw();
send_req($s3, '/lim/3');
my $r3 = read_resp($s3, 10);
is($r3 && $r3->{status}, 503,
   'max_inflight: 2: a third request gets 503 (worker '
   . ($w3 // '?') . ')') or diag(explain($r3));
my $body = $r3 && eval { JSON::PP->new->decode($r3->{body}) };
ok($body && ($body->{status} // 0) == 503,
   'max_inflight: a JSON error body');
is(scalar $hold2->requests, 2, 'max_inflight: the third did not reach '
                               . 'the backend');
close $s3;

# Both workers are still there: nothing above was a crash and respawn.
is(join(' ', sort { $a <=> $b } grep { $_ == $wa || $_ == $wb }
             $t->worker_pids),
   join(' ', sort { $a <=> $b } $wa, $wb), 'the same two workers');

close $_ for @keep, $sb;
