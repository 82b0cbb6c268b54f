# Shutdown.  QUIT: stop accepting, let the in-flight request finish with
# its whole body, close idle keep-alive connections, exit once drained
# (well within graceful_timeout).  TERM: exit at once, in-flight or not.
# graceful_timeout caps the drain: a 5 s request does not hold a QUIT
# with graceful_timeout: 1s for more than a moment past that second.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Test::Portico;
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->plan(25);
my $b1 = $t->backend(id => 'b1');

my $CONFIG = <<'EOF';
workers: 2
limits: { graceful_timeout: GRACE }
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - name: local
    match: { path: "=/local" }
    respond: { status: 200, body: "local ok" }
  - name: api
    match: { path: /api/ }
    upstream: app
EOF

sub start ($grace) {
    (my $yaml = $CONFIG) =~ s/GRACE/$grace/;
    $t->write_config($yaml)->run();
}

my $port = $t->port('GW');


# The wait status of $pid (our child) once it exits, or undef after $secs.
sub wait_exit ($pid, $secs) {
    my $deadline = time + $secs;
    while (time < $deadline) {
        return $? if waitpid($pid, WNOHANG) == $pid;
        sleep 0.01;
    }
    return undef;
}


# Starts GET $path and returns the socket once the backend has it (the
# request is then truly in flight in a worker).
sub in_flight ($path) {
    my $n = scalar $b1->requests;
    my $s = http_get($path, port => $port, start => 1, timeout => 15);
    wait_until(sub { scalar($b1->requests) > $n }, 5, 0.02);
    return $s;
}


sub refused () {
    return !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 2);
}


# ---- QUIT with a slow request in flight -----------------------------------

start('10s');
my $master = $t->pid;

# An idle keep-alive connection, and a request that takes 2 s to answer.
my $idle = http_get('/local', port => $port, start => 1,
                    headers => { Connection => 'keep-alive' });
my $buf = '';
my $deadline = time + 5;
while ($buf !~ /local ok\z/ && time < $deadline) {
    IO::Select->new($idle)->can_read(0.5) or next;
    sysread($idle, $buf, 4096, length $buf) or last;
}
like($buf, qr/^HTTP\/1.1 200 /, 'keep-alive connection answered, now idle');
my $slow = in_flight('/api/slow?delay=2000&size=20000');
is(scalar $b1->requests, 1, 'the slow request reached the backend');

my $quit_at = time;
kill 'QUIT', $master;

# The idle connection is closed by the server, not left to idle_timeout.
my $eof = 0;
$deadline = time + 3;
while (time < $deadline) {
    next unless IO::Select->new($idle)->can_read(0.2);
    my $n = sysread($idle, my $junk, 4096);
    if (!$n) { $eof = 1; last; }
}
ok($eof, 'QUIT: the idle keep-alive connection is closed');
close $idle;

# While draining (the slow request has no answer yet), new connections
# are refused: the listening sockets were closed at once.
ok(wait_until(sub { refused() }, 5)
   && !IO::Select->new($slow)->can_read(0),
   'QUIT: new connections are refused during the drain');
my $raw = http_get('/local', port => $port, timeout => 1);
ok(!defined $raw || $raw !~ /^HTTP\//,
   'QUIT: a new connection during the drain is not served')
    or diag $raw;

# The slow request completes, whole.
$raw = http_end($slow, timeout => 10);
my $done_at = time;
my $r = eval { parse_response($raw) };
is($r && $r->{status}, 200, 'QUIT: the in-flight request got its 200');
is(length($r ? $r->{body} : ''), 20000, 'QUIT: ... and its whole body');
is($r ? $r->{body} : '', '0123456789abcdef' x 1250, 'QUIT: body intact');

# The master exits once drained, within graceful_timeout.
my $status = wait_exit($master, 15);
my $exit_at = time;
is($status, 0, 'QUIT: the master exited with status 0');
cmp_ok($exit_at - $quit_at, '<', 10, 'QUIT: within graceful_timeout (10s)');
cmp_ok($exit_at, '>', $done_at - 0.5,
       'QUIT: not before the in-flight request was done');
ok(refused(), 'QUIT: after the exit, connections are refused');
ok(scalar(grep { !kill 0, $_ } $t->worker_pids) == 0 && !kill(0, -$master),
   'QUIT: no process of the gateway is left');
like($t->error_log, qr/graceful shutdown/, 'QUIT: "graceful shutdown" logged');
$t->stop;


# ---- TERM with a request in flight --------------------------------------

start('10s');
$master = $t->pid;
$slow = in_flight('/api/term?delay=10000');
is(scalar $b1->requests, 2, 'TERM: the slow request reached the backend');
my $term_at = time;
kill 'TERM', $master;
$status = wait_exit($master, 8);
my $took = time - $term_at;
is($status, 0, 'TERM: the master exited with status 0');
cmp_ok($took, '<', 5, 'TERM: at once, not after the 10 s request');
$raw = http_end($slow, timeout => 5);
unlike($raw, qr/^HTTP\/1.1 200 /, 'TERM: the in-flight request was cut');
ok(refused(), 'TERM: connections refused afterwards');
like($t->error_log, qr/fast shutdown/, 'TERM: "fast shutdown" logged');
$t->stop;


# ---- graceful_timeout caps the drain ---------------------------------------

start('1s');
$master = $t->pid;
$slow = in_flight('/api/capped?delay=10000');
is(scalar $b1->requests, 3, 'cap: the 10 s request reached the backend');
$quit_at = time;
kill 'QUIT', $master;
$status = wait_exit($master, 12);
$took = time - $quit_at;
ok(defined $status, 'cap: the master exited');
cmp_ok($took, '<', 6, 'cap: after graceful_timeout (1s), not after the '
                      . '10 s request');
$raw = http_end($slow, timeout => 5);
unlike($raw // '', qr/^HTTP\/1.1 200 /,
       'cap: the request that needed 10 s did not complete');
ok(refused(), 'cap: connections refused afterwards');
$t->stop;
