# HTTP/2 connections when a worker drains (RFC 9113 6.8): a busy one gets
# GOAWAY (NO_ERROR, the last stream it took) at once and its open stream
# still finishes whole; a stream opened after the GOAWAY is not served; an
# idle one is closed with GOAWAY at once. On reload (HUP) the old worker's
# connections drain the same way while the new generation serves; on
# QUIT the master exits once the stream is done.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Test::Portico;
use Time::HiRes qw(sleep time);

my $t = Test::Portico->new()->plan(21);
my $b1 = $t->backend(id => 'b1');

my $CONFIG = <<'EOF';
listen: [ { address: "127.0.0.1:%%PORT_GW%%", http2: true } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
limits: { graceful_timeout: 10s }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - { name: hello, match: { path: "=/hello" }, respond: { status: 200 } }
  - { name: api, match: { path: /api/ }, upstream: app }
EOF

$t->write_config($CONFIG)->run();
my $port = $t->port('GW');
my $dir = $t->testdir;

# Starts a scenario in the background, its JSON to $dir/NAME.json.
sub start_py ($name, @args) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', "$dir/$name.json" or POSIX::_exit(1);
        exec('/usr/bin/python3', 't/lib/h2raw.py', $port, @args)
            or POSIX::_exit(127);
    }
    return $pid;
}

sub finish_py ($name, $pid, $secs = 20) {
    my $deadline = time + $secs;
    while (waitpid($pid, WNOHANG) != $pid) {
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            last;
        }
        sleep 0.05;
    }
    my $text = Test::Portico::_read_file("$dir/$name.json");
    my $r = eval { decode_json($text) };
    diag("h2raw $name: $text") unless $r;
    return $r // {};
}

# A stream in flight on one connection (the backend answers after 1.5 s),
# and an idle connection beside it.
sub busy_and_idle ($tag) {
    my $n = scalar $b1->requests;
    unlink "$dir/ready";
    my $busy = start_py("busy$tag", 'drain', '/api/slow?delay=1500&size=100000',
                        "$dir/ready", 15);
    my $idle = start_py("idle$tag", 'idle', 15);
    ok(wait_until(sub { scalar($b1->requests) > $n }, 5),
       "$tag: the stream reached the backend");
    return ($busy, $idle);
}

# ---- reload ------------------------------------------------------------------

my ($busy, $idle) = busy_and_idle('reload');
my ($old) = $t->worker_pids;
my $t0 = time;
$t->reload;
ok($t->wait_generation(2), 'reload: generation 2 is up');

my $r = finish_py('busyreload', $busy);
is($r->{goaway}{code}, 'NO_ERROR', 'reload: the busy connection got GOAWAY');
is($r->{goaway}{last_stream_id}, 1, 'reload: naming the stream it took');
is_deeply($r->{events}, ['GOAWAY', 'END1'],
          'reload: GOAWAY first, then the stream ended');
is($r->{1}{status}, 200, 'reload: the open stream finished with 200');
is($r->{1}{body}, 100000, 'reload: with its whole body');
ok(!exists $r->{3}, 'reload: a stream opened after the GOAWAY is not served');
ok($r->{closed}, 'reload: then the connection closed');

my $i = finish_py('idlereload', $idle);
is($i->{goaway}{code}, 'NO_ERROR', 'reload: the idle connection got GOAWAY');
cmp_ok($i->{closed_after_s} // 99, '<', 1.2,
       'reload: and was closed at once');

ok(wait_until(sub { !kill 0, $old }, 10), 'reload: the old worker exited');
my ($rc, $out) = curl('--http2-prior-knowledge', '-o', '/dev/null', '-w',
                      '%{http_code}', "http://127.0.0.1:$port/hello");
is($out, '200', 'reload: the new generation serves h2c');

# ---- QUIT --------------------------------------------------------------------

($busy, $idle) = busy_and_idle('quit');
my $master = $t->pid;
kill 'QUIT', $master;

$r = finish_py('busyquit', $busy);
is($r->{goaway}{code}, 'NO_ERROR', 'quit: the busy connection got GOAWAY');
is_deeply($r->{events}, ['GOAWAY', 'END1'],
          'quit: GOAWAY first, then the stream ended');
is($r->{1}{status}, 200, 'quit: the open stream finished with 200');
is($r->{1}{body}, 100000, 'quit: with its whole body');

$i = finish_py('idlequit', $idle);
is($i->{goaway}{code}, 'NO_ERROR', 'quit: the idle connection got GOAWAY');
cmp_ok($i->{closed_after_s} // 99, '<', 1.2, 'quit: and was closed at once');

ok(wait_until(sub { waitpid($master, WNOHANG) == $master || !kill 0, $master },
              10),
   'quit: the master exited once the stream was done');
