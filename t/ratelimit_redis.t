# Rate limits in cluster scope (modules/ratelimit/pt_ratelimit_redis.c):
# a redis-server on a free loopback port and two gateways (two masters,
# two workers each) sharing one limit through it: the accepted total
# across both is one limit's; with Redis stopped, redis_failure: open
# counts locally (and logs an error) and closed answers 503; a hung Redis
# times out the same way; a restarted one is used again.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use Test::More;
use Test::Portico;
use Test::Portico::RateLimit;

my $redis_bin = '/usr/bin/redis-server';
# make test installs redis-server (scripts/deps): its absence is a broken
# set-up to report, not a reason to skip the cluster tests.
BAIL_OUT("$redis_bin is missing: run scripts/deps (as root)")
    unless -x $redis_bin;

my $rport = free_port();
my $redis_pid;
my $rdir = File::Temp->newdir('portico-redis-XXXXXX', TMPDIR => 1);

sub redis_ping () {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $rport, Timeout => 1)
        or return 0;
    print $s "PING\r\n";
    my $line = <$s> // '';
    return $line =~ /^\+PONG/ ? 1 : 0;
}

sub redis_start () {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$rdir/redis.log";
        open STDERR, '>&', \*STDOUT;
        exec($redis_bin, '--port', $rport, '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no', '--daemonize', 'no',
             '--dir', "$rdir") or POSIX::_exit(127);
    }
    $redis_pid = $pid;
    wait_until(\&redis_ping, 10) or die "redis-server did not answer";
}

sub redis_stop () {
    return unless $redis_pid;
    kill 'CONT', $redis_pid;
    kill 'TERM', $redis_pid;
    waitpid $redis_pid, 0;
    $redis_pid = undef;
}

END { redis_stop() if $redis_pid }

redis_start();

# Two nodes; open counts locally when Redis fails, closed answers 503.
my %node;
for my $mode (qw(open closed)) {
    my $t = Test::Portico->new()->has_module(qw/router ratelimit/);
    $t->write_config(<<"EOF")->run();
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
redis: 127.0.0.1:$rport
redis_failure: $mode
redis_timeout: 100ms
routes:
  - name: shared
    match: { path: /shared }
    respond: { status: 200, body: "ok" }
    ratelimit: [ { key: "all", rate: 50/s, scope: cluster } ]
  - name: tiny
    match: { path: /tiny }
    respond: { status: 200, body: "ok" }
    ratelimit: [ { key: "\${query.k}", rate: 1/m, scope: cluster } ]
  - name: window
    match: { path: /window }
    respond: { status: 200, body: "ok" }
    ratelimit: [ { key: "\${query.k}", rate: 3/m, scope: cluster,
                   algorithm: sliding_window } ]
  - name: delayed
    match: { path: /delayed }
    respond: { status: 200, body: "ok" }
    ratelimit: [ { key: "all", rate: 10/s, burst: 5, mode: delay,
                   scope: cluster } ]
EOF
    $node{$mode} = $t;
}
$node{open}->plan(27);    # the closed node's log is checked too

my ($pa, $pb) = map { $node{$_}->port('GW') } qw(open closed);

sub get ($port, $path) {
    return parse_response(http("GET $path HTTP/1.1\r\nHost: t\r\n"
                               . "Connection: close\r\n\r\n", port => $port));
}

# Both nodes count through Redis: a 1/m key taken on one is gone on the
# other. Retried with a new key until every worker asked is connected.
my $k = 0;
sub cluster_counts () {
    return wait_until(sub {
        $k++;
        return 0 unless (get($pa, "/tiny?k=$k")->{status} // 0) == 200;
        return (get($pb, "/tiny?k=$k")->{status} // 0) == 429;
    }, 20, 0.1);
}

ok(cluster_counts(), 'a key spent on one node is spent on the other');

my $r = get($pa, '/shared');
is($r->{status}, 200, 'a cluster limit answers 200');
is($r->{headers}{'ratelimit-policy'}, '"shared.0";q=50;w=1',
   '  with RateLimit-Policy');
like($r->{headers}{ratelimit} // '', qr/^"shared\.0";r=\d+;t=\d+\z/,
     '  and RateLimit');

# A sliding window, 3 a minute, across both nodes; keys that expire.
my @st = map { get($_ % 2 ? $pa : $pb, '/window?k=w')->{status} } 1 .. 4;
is("@st", '200 200 200 429', 'sliding window 3/m across nodes: 3 pass');
sub redis_cmd ($cmd) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $rport)
        or die "connect to redis: $!";
    print $s "$cmd\r\n";
    my $line = <$s> // '';
    if ($line =~ /^\$(\d+)/) {
        read($s, $line, $1);
    }
    return $line =~ s/\r\n\z//r;
}
my $ttl = redis_cmd('PTTL portico:rl:{window.0}:w');
ok($ttl =~ /^:(\d+)/ && $1 > 0 && $1 <= 121000,
   "its key expires after two windows at most: $ttl");
$ttl = redis_cmd('PTTL portico:rl:{tiny.0}:1');
ok($ttl =~ /^:(\d+)/ && $1 > 0 && $1 <= 61000,
   "a token bucket key expires once full again: $ttl");

# mode: delay in cluster scope: the script says how long to wait. Five
# requests one after the other, alternating nodes, at 10/s: the last four
# each wait for their turn, 100 ms apart (a lower bound only).
my $t0 = time;
@st = map { get($_ % 2 ? $pa : $pb, '/delayed')->{status} } 1 .. 5;
my $took = time - $t0;
is("@st", '200 200 200 200 200', 'mode: delay across nodes: all 200');
ok($took >= 0.38, sprintf('  held for their turns: %.2f s (>= 0.4)', $took));

# 4 clients per node for 4 s against 50/s shared: one limit's worth.
my ($ok, $bad) = drive(4, '/shared', ($pa) x 4, ($pb) x 4);
ok($ok >= 190 && $ok <= 211,
   "50/s shared by 2 nodes x 2 workers, 4 s: $ok accepted (200 +- 5%)");
is($bad, 0, 'every other answer was a 429');

# Redis stops.
redis_stop();
ok(wait_until(sub { (get($pb, '/shared')->{status} // 0) == 503 }, 10),
   'Redis down, redis_failure: closed: 503');
like(get($pb, '/shared')->{body} // '', qr/"status":503/,
     '  with the JSON error body');
is(get($pa, '/shared')->{status}, 200,
   'Redis down, redis_failure: open: counted locally, 200');
ok($node{open}->wait_log(qr/\[error\].*ratelimit: redis 127\.0\.0\.1:$rport/,
                         10),
   '  and an error line names Redis');
$k++;
is(get($pa, "/tiny?k=$k")->{status}, 200, 'open: a new key passes');
is(get($pa, "/tiny?k=$k")->{status}, 429,
   '  and is still limited, locally (the zone all workers share)');

# Redis comes back: cluster counting again.
redis_start();
ok(cluster_counts(), 'Redis restarted: counted in Redis again');

# A hung Redis: no answer within redis_timeout is a failure too.
kill 'STOP', $redis_pid;
$t0 = time;
is(get($pb, '/shared')->{status}, 503, 'Redis hung: closed answers 503');
ok(time - $t0 < 2, '  after redis_timeout, not a hang');
# Clients that leave while their request waits on the hung Redis: the
# late answers (or the dropped connection) must find nobody.
my @gone;
for (1 .. 4) {
    push @gone, IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $_ % 2 ? $pa : $pb)
        or die "connect: $!";
    print { $gone[-1] } "GET /shared HTTP/1.1\r\nHost: t\r\n\r\n";
}
close $_ for @gone;
kill 'CONT', $redis_pid;
ok(cluster_counts(), 'Redis resumed: counted in Redis again');

# Redis forgets its scripts: NOSCRIPT, and the script is sent whole.
like(redis_cmd('SCRIPT FLUSH'), qr/^\+OK/, 'SCRIPT FLUSH');
my $errors = () = $node{closed}->error_log =~ /\[error\]/g;
ok(cluster_counts(), 'after SCRIPT FLUSH: still counted in Redis');
is(scalar(() = $node{closed}->error_log =~ /\[error\]/g), $errors,
   '  with no error on the way');
like(redis_cmd('INFO commandstats'), qr/^cmdstat_eval:calls=[1-9]/m,
     '  the script was sent whole (EVAL) after NOSCRIPT');

# A reload: the new workers connect and count in Redis from the start.
$node{closed}->reload;
ok($node{closed}->wait_log(qr/reload generation 2 ok/, 15), 'reloaded');
ok(cluster_counts(), 'after the reload: counted in Redis');
