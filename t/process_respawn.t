# A worker killed with SIGKILL is respawned at once: a new worker with a
# new pid shows up among the master's children and in /status, the master
# logs the death, and traffic carries on: every request started after the
# respawn succeeds (only the killed worker's in-flight ones may fail).

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use POSIX ();
use Test::More;
use Test::Portico;
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->plan(13);
my $b1 = $t->backend(id => 'b1');
my $dir = $t->testdir;

# The death of a worker is an [alert], as it should be: expected here.
$t->allow_alerts(qr/worker \d+ exited on signal 9/);

$t->write_config(<<'EOF')->run();
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
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

my $port = $t->port('GW');
my $stop_file = "$dir/stop-clients";


# A client process: new-connection requests, alternating a local answer
# and a proxied one (a little slow, so that some are in flight), until the
# stop file appears or 20 s pass.  One line per request to $out:
# "START END OK|FAIL what".
sub client ($out) {
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    open my $fh, '>', $out or POSIX::_exit(1);
    $fh->autoflush(1);
    my $end = time + 20;
    for (my $i = 0; !-e $stop_file && time < $end; $i++) {
        my $path = $i % 2 ? '/local' : "/api/r$i?delay=30";
        my $start = time;
        my $raw = http_get($path, port => $port, timeout => 5);
        my $r = eval { parse_response($raw) };
        my $ok = $r && $r->{status} == 200
                 && ($i % 2 ? $r->{body} eq 'local ok'
                            : $r->{body} =~ /"uri":"\/api\/r$i\?/);
        my $what = $r ? "$path $r->{status}"
                      : "$path " . (defined $raw ? 'no response' : 'refused');
        printf {$fh} "%.6f %.6f %s %s\n", $start, time,
               $ok ? 'OK' : 'FAIL', $what;
    }
    close $fh;
    POSIX::_exit(0);
}


# The worker pids once there are $n of them (run() returns as soon as
# the master listens, which can be before it has forked every worker).
sub wait_workers ($n) {
    wait_until(sub { my @p = $t->worker_pids; @p == $n }, 5, 0.02);
    return $t->worker_pids;
}


sub read_results (@files) {
    my @all;
    for my $f (@files) {
        open my $fh, '<', $f or next;
        while (<$fh>) {
            my ($s, $e, $ok, $what) = split ' ', $_, 4;
            chomp $what;
            push @all, { start => $s, end => $e, ok => $ok eq 'OK',
                         what => $what };
        }
    }
    return @all;
}


my @before = wait_workers(2);
is(scalar @before, 2, 'two workers');

my @files = map { "$dir/client$_.log" } 1 .. 3;
my @clients = map { client($_) } @files;

# Let the traffic run (a good number of answers), then kill one worker.
wait_until(sub { read_results(@files) >= 15 }, 10);
my $count_before = $t->status->{requests} // -1;
my $victim = $before[0];
my $killed_at = time;
kill 'KILL', $victim;

# The replacement: a child of the master that was not there before.
my ($new, $respawned_at);
my $deadline = time + 5;
while (time < $deadline) {
    my @now = $t->worker_pids;
    my @fresh = grep { my $p = $_; !grep { $_ == $p } @before } @now;
    if (@now == 2 && @fresh == 1) {
        ($new, $respawned_at) = ($fresh[0], time);
        last;
    }
    sleep 0.02;
}
ok($new, 'a new worker was forked') or diag join ' ', $t->worker_pids;
my @after = $t->worker_pids;
ok(!grep({ $_ == $victim } @after) && grep({ $_ == $before[1] } @after),
   'the killed worker is gone, the other one is untouched');

# Traffic after the respawn (a good number of answers to requests started
# after it), then stop the clients.
wait_until(sub { $respawned_at
                 && grep({ $_->{start} > $respawned_at } read_results(@files))
                    >= 15 }, 10);
open my $fh, '>', $stop_file or die "$stop_file: $!";
close $fh;
waitpid $_, 0 for @clients;

my @res = read_results(@files);
my @done_before = grep { $_->{end} < $killed_at } @res;
my @since = grep { $respawned_at && $_->{start} > $respawned_at } @res;
cmp_ok(scalar @done_before, '>', 10, 'requests ran before the kill');
is_deeply([map { $_->{what} } grep { !$_->{ok} } @done_before], [],
          'no failures before the kill');
cmp_ok(scalar @since, '>', 10, 'requests ran after the respawn');
is_deeply([map { $_->{what} } grep { !$_->{ok} } @since], [],
          'no failures among the requests started after the respawn');
my @failed = grep { !$_->{ok} } @res;
note(scalar(@failed) . ' in-flight requests failed around the kill');

# /status knows the new worker, not the dead one.
my $st = $t->status;
my @listed = sort { $a <=> $b } map { $_->{pid} } @{$st->{workers} // []};
is_deeply(\@listed, [sort { $a <=> $b } $before[1], $new // 0],
          '/status lists the survivor and the new worker');
is($st->{generation}, 1, 'still generation 1');
cmp_ok($st->{requests} // 0, '>=', $count_before + @since,
       'the request count kept what the dead worker had served');

# The master logged the death and the start of the replacement.
ok($t->wait_log(qr/worker $victim exited on signal 9/, 5),
   'the master logged the death');
my $new_pid = $new // 0;
ok($t->wait_log(qr/worker $new_pid started/, 5),
   'the master logged the new worker');

# Both workers serve: many new connections all answered.
my %c = http_many(40, '/local', concurrency => 8);
is_deeply(\%c, { 200 => 40 }, 'after the respawn: 40 of 40 answered');
