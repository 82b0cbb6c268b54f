# A route's `concurrency:` (modules/ratelimit/pt_ratelimit_concurrency.c)
# with 2 workers and a slow backend: at most `max` requests in flight
# across both workers, `queue` more wait and are served, the rest get 503
# with Retry-After at once; a wait longer than queue_timeout gets 503; a
# client that leaves while queued or while proxied gives its place back;
# the counts outlive a reload.
# Config errors at FILE:LINE:COL.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Test::More;
use Test::Portico;
use Test::Portico::ConfigCheck;
use Time::HiRes qw(time);

my $t = Test::Portico->new()->has_module(qw/router ratelimit/)->plan(50);
my $be = $t->backend(id => 'b1');

$t->write_config(<<"EOF")->run();
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
access_log: { path: access.log, format: json }
upstreams:
  app: { targets: [ "127.0.0.1:%%PORT_B1%%" ], timeouts: { read: 60s } }
routes:
  - name: main
    match: { path: /main/ }
    upstream: app
    concurrency: { max: 2, queue: 2, queue_timeout: 1s }
  - name: short
    match: { path: /short/ }
    upstream: app
    concurrency: { max: 1, queue: 1, queue_timeout: 300ms }
  - name: drop
    match: { path: /drop/ }
    upstream: app
    concurrency: { max: 1, queue: 1, queue_timeout: 20s }
  - name: held
    match: { path: /held/ }
    upstream: app
    concurrency: { max: 1 }
EOF

my $gw = $t->port('GW');
my $DELAY = 500;       # ms the backend takes on the main route

sub send_req ($s, $path) {
    print $s "GET $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
}

# Reads every socket of %$socks (name => socket) to its end; returns
# name => { response, time it ended }.
sub collect ($socks, $timeout = 15) {
    my (%buf, %done);
    my %by_fd = map { fileno($socks->{$_}) => $_ } keys %$socks;
    my $sel = IO::Select->new(values %$socks);
    my $end = time + $timeout;
    while ($sel->count && time < $end) {
        for my $s ($sel->can_read(0.05)) {
            my $name = $by_fd{fileno $s};
            my $n = sysread($s, my $chunk, 65536);
            if ($n) {
                $buf{$name} .= $chunk;
                next;
            }
            $done{$name} = { r => parse_response($buf{$name} // ''),
                             at => time };
            $sel->remove($s);
            close $s;
        }
    }
    return \%done;
}

# The backend's records of requests whose path starts with $prefix.
sub seen ($prefix) {
    return grep { $_->{uri} =~ m{^\Q$prefix\E} } $be->requests;
}

sub access_lines () {
    open my $fh, '<', $t->testdir . '/access.log' or return ();
    return map { JSON::PP::decode_json($_) } grep { /^\{/ } <$fh>;
}

# Bytes the client sent on $sock that the gateway has not read yet (its
# end's receive queue in /proc/net/tcp), or -1 while it is not found.
sub unread_by_gateway ($sock) {
    my $gw_end = sprintf '%08X:%04X', 0x0100007F, $sock->peerport;
    my $client = sprintf ':%04X', $sock->sockport;
    open my $fh, '<', '/proc/net/tcp' or return -1;
    while (<$fh>) {
        my (undef, $l, $rem, undef, $queues) = split ' ', $_;
        next unless defined $queues && $l eq $gw_end && $rem =~ /\Q$client\E\z/;
        my (undef, $rx) = split /:/, $queues;
        return hex $rx;
    }
    return -1;
}

sub get ($path, %o) {
    my $raw = http("GET $path HTTP/1.1\r\nHost: t\r\nConnection: close"
                   . "\r\n\r\n", port => $gw, %o);
    return parse_response($raw // '');
}


# ---- 6 at once: 2 in flight (one per worker), 2 queued, 2 refused -----

my ($s1, $w1) = $t->connect_worker($gw);
my ($s2, $w2) = $t->connect_worker($gw, avoid => $w1);
ok($s1 && $s2 && $w1 && $w2 && $w1 != $w2,
   'two client connections, one in each worker');
my %socks = (1 => $s1, 2 => $s2);
for my $i (3 .. 6) {
    $socks{$i} = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                       PeerPort => $gw, Timeout => 5)
        or die "connect: $!";
}

my $t0 = time;
send_req($socks{$_}, "/main/$_?delay=$DELAY") for 1, 2;
ok(wait_until(sub { seen('/main/') == 2 }, 10, 0.01),
   'the first two reach the backend (one from each worker)');
my $t_sent = time;
send_req($socks{$_}, "/main/$_?delay=$DELAY") for 3 .. 6;
my $res = collect(\%socks);

my @ok = sort { $res->{$a}{at} <=> $res->{$b}{at} }
         grep { $res->{$_}{r}{status} == 200 } keys %$res;
my @busy = grep { $res->{$_}{r}{status} == 503 } keys %$res;
is(scalar @ok, 4, '4 of the 6 are served') or diag explain $res;
is(scalar @busy, 2, '2 of the 6 get 503');
ok(!grep({ !defined $res->{$_}{r}{headers}{'retry-after'} } @busy),
   'the 503s carry Retry-After');
ok(!grep({ $res->{$_}{at} - $t_sent > $DELAY / 1000 * 0.8 } @busy),
   'the 503s come at once, not after a wait');
ok(!grep({ $_ == 1 || $_ == 2 } @busy), 'the first two are not refused');

# Never more than 2 at the backend: each request's arrival, against the
# ones still being served (they arrived less than DELAY before).
my @arr = sort { $a <=> $b } map { $_->{time} } seen('/main/');
is(scalar @arr, 4, 'the backend saw 4 requests');
my $most = 0;
for my $i (0 .. $#arr) {
    my $n = grep { $arr[$_] > $arr[$i] - $DELAY / 1000 } 0 .. $i;
    $most = $n if $n > $most;
}
is($most, 2, 'at most 2 were at the backend at once');
cmp_ok($arr[2] - $arr[0], '>=', $DELAY / 1000 - 0.01,
       'the queued ones reached it once the first were done');

ok(wait_until(sub {
       my @l = $t->error_log =~ /\[info\].*concurrency limit of route "main": 2 in flight and 2 queued/g;
       @l == 2 }, 10),
   'the refusals are logged at info');

my $r = get('/main/after');
is($r->{status}, 200, 'after all finished a new request is served');


# ---- a wait longer than queue_timeout ---------------------------------

my $hold = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw,
                                 Timeout => 5) or die "connect: $!";
send_req($hold, '/short/hold?delay=2000');
ok(wait_until(sub { seen('/short/hold') == 1 }, 10, 0.01),
   'one request holds the only slot of /short');
my $q0 = time;
$r = get('/short/late', timeout => 10);
my $waited = time - $q0;
is($r->{status}, 503, 'a queued request that waits too long gets 503');
is($r->{headers}{'retry-after'}, '1', 'with Retry-After: 1');
ok($waited >= 0.28 && $waited < 1.9, 'after about queue_timeout (300ms)')
    or diag "waited $waited s";
is(scalar seen('/short/late'), 0, 'it never reached the backend');
ok($t->wait_log(qr/concurrency limit of route "short": no slot within 300 ms/),
   'the timeout is logged');
my $held = collect({ h => $hold });
is($held->{h}{r}{status}, 200, 'the holder is served');
is(get('/short/again')->{status}, 200, 'and the slot is free again');


# ---- a client that leaves while queued --------------------------------

$hold = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw,
                              Timeout => 5) or die "connect: $!";
send_req($hold, '/drop/hold?delay=3000');
ok(wait_until(sub { seen('/drop/hold') == 1 }, 10, 0.01),
   'one request holds the only slot of /drop');

my $gone = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw,
                                 Timeout => 5) or die "connect: $!";
send_req($gone, '/drop/gone');
# A worker reads a request and queues it in one go: once the gateway's end
# of the connection holds no unread byte, /drop/gone is in the queue, and
# a third request is refused at once (the queue holds one).
ok(wait_until(sub { unread_by_gateway($gone) == 0 }, 10, 0.01),
   'the gateway read /drop/gone');
ok(wait_until(sub { get('/drop/probe', timeout => 2)->{status} == 503 },
              10),
   'the queue of /drop is full');
close $gone;
ok(wait_until(sub { grep { $_->{path} eq '/drop/gone' && $_->{status} == 499 }
                    access_lines() }, 10),
   'the client that left while queued is logged 499');

# Its place is free: the next one waits (for the holder) and is served.
$r = get('/drop/next', timeout => 15);
is($r->{status}, 200, 'its place in the queue was given back');
$held = collect({ h => $hold });
is($held->{h}{r}{status}, 200, 'the holder is served');
is(scalar seen('/drop/gone'), 0, 'the one that left never reached the backend');


# ---- a client that leaves while proxied -------------------------------

$hold = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw,
                              Timeout => 5) or die "connect: $!";
send_req($hold, '/held/x?hang=1');
ok(wait_until(sub { seen('/held/x') == 1 }, 10, 0.01),
   'one request holds the only slot of /held');
$r = get('/held/refused');
is($r->{status}, 503, 'no queue: the next one is refused at once');
close $hold;
ok(wait_until(sub { get('/held/back')->{status} == 200 }, 10),
   'the slot comes back when the proxied client leaves');


# ---- the counts outlive a reload ---------------------------------------

# A request held by an old worker still counts for the new ones: the zone
# and the route's entry are kept (same size, same route name).
$hold = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw,
                              Timeout => 5) or die "connect: $!";
send_req($hold, '/held/y?hang=1');
ok(wait_until(sub { seen('/held/y') == 1 }, 10, 0.01),
   'one request holds the only slot of /held');
my @old = $t->worker_pids;
$t->reload;
ok(wait_until(sub {
       my %was = map { $_ => 1 } @old;
       (grep { !$was{$_} } $t->worker_pids) == 2 }, 10),
   'HUP: two new workers');
is(get('/held/new')->{status}, 503,
   'a new worker sees the slot the old one holds');
close $hold;
ok(wait_until(sub { get('/held/freed')->{status} == 200 }, 10),
   'and gets it once the old worker gives it back');


# ---- config errors ----------------------------------------------------

my $cc = Test::Portico::ConfigCheck->new($t, <<"EOF");
workers: 1
error_log: error.log
pid_file: portico.pid
listen: [ { address: "127.0.0.1:${\ $t->port('GW')}" } ]
EOF

sub route ($c) {
    return <<"EOF";
routes:
  - name: r
    match: { path: / }
    respond: { status: 200 }
    concurrency: $c
EOF
}

{
    my ($rc, $out) = $cc->check(route('{ max: 3, queue: 5, queue_timeout: 2s }'));
    is($rc, 0, 'a good concurrency config passes -t') or diag $out;
}
$cc->one_error('no max', route('{ queue: 5 }'),
               qr/concurrency needs a max/, ['{ queue']);
$cc->one_error('max 0', route('{ max: 0 }'),
               qr/concurrency: max: a number from 1 to/, ['0 }', 2]);
$cc->one_error('unknown key', route('{ max: 1, colour: 2 }'),
               qr/unknown key "colour" in concurrency/, ['colour']);
$cc->one_error('bad timeout', route('{ max: 1, queue_timeout: soon }'),
               qr/soon/, ['soon']);
$cc->one_error('zero timeout', route('{ max: 1, queue_timeout: 0s }'),
               qr/queue_timeout must be more than 0/, ['0s']);
