# A reload whose new workers die before they are READY is rolled back
# (README: "A new worker that dies before that rolls the reload back"):
# the old generation keeps serving, on the same worker processes and the
# same connections, the failure is logged and counted, and the next good
# reload goes through.
#
# The new workers fail for a real reason, with no test hook in the
# gateway: the master runs under an address-space limit (prlimit on its
# pid, inherited by what it forks) with room for itself but not for the
# connection tables of limits.max_connections: 1000000, which each worker
# allocates before it says READY.  The old workers were forked before the
# limit and keep running.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use IO::Socket::INET;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_module(qw/router status/);
my ($rc, $out) = run_cmd(10, 'prlimit', '--version');
plan(skip_all => 'no prlimit command (util-linux)') if $rc != 0;
# Under ASan a failed allocation aborts the process by default; here it
# must fail the way it does without ASan (calloc returns NULL). And the
# rollback SIGKILLs the other new worker, which may be inside
# LeakSanitizer's check at its own failed exit right then: the check's
# tracer then reports the thread it lost ("Unable to get registers").
# That is the sanitizer's race, not a leak, so leaks are not checked here
# (every other test checks them).
$ENV{ASAN_OPTIONS} = join ':', grep { length }
                     $ENV{ASAN_OPTIONS} // '', 'allocator_may_return_null=1',
                     'detect_leaks=0';
$t->plan(14);

# What the failing workers log is the point of the test.
$t->allow_alerts(qr/cannot allocate \d+ connections/,
                 qr/worker \d+ exited with code 2/);

my $CONFIG = <<'EOF';
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
limits: { max_connections: MAXCONN }
routes:
  - name: gen
    match: { path: "=/gen" }
    respond: { status: 200, body: "gen GEN" }
EOF

sub config ($gen, $maxconn = 1024) {
    (my $yaml = $CONFIG) =~ s/GEN/$gen/;
    $yaml =~ s/MAXCONN/$maxconn/;
    $t->write_config($yaml);
}

# One response from a kept-alive socket (Content-Length framed).
sub ask ($s, $path) {
    syswrite($s, "GET $path HTTP/1.1\r\nHost: t\r\n\r\n");
    my ($buf, $sel) = ('', IO::Select->new($s));
    for (1 .. 100) {
        my $r = eval { parse_response($buf) };
        return $r if $r;
        last unless $sel->can_read(5);
        sysread($s, $buf, 65536, length $buf) or last;
    }
    return undef;
}

config(1);
$t->run();
my $master = $t->pid;
my @old = $t->worker_pids;

# A keep-alive connection of generation 1, used before and after.
my $ka = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                               PeerPort => $t->port('GW'), Proto => 'tcp',
                               Timeout => 5) or die "connect: $@";
my $r = ask($ka, '/gen');
is($r && $r->{body}, 'gen 1', 'generation 1 serves');

# Room for the master's own reload work (a few MiB) and for a new worker
# that fails and exits (under ASan, LeakSanitizer's check at exit needs
# room too), yet short of the 700 MiB of two million connection slots.
my $limit = (proc_kib($master, 'VmSize') + 384 * 1024) * 1024;
($rc, $out) = run_cmd(10, 'prlimit', "--pid=$master",
                      "--as=$limit:unlimited");
is($rc, 0, "the master's address space limited to its size + 384 MiB")
    or diag($out);

config(2, 1000000);
$t->reload;
my $line = $t->wait_log(qr/reload failed, keeping generation 1: /, 15);
like($line // '', qr/\[error\].*a new worker exited during start/,
     'rolled back: "reload failed, keeping generation 1: a new worker '
     . 'exited during start"') or diag($t->error_log);
like($t->error_log, qr/\[emerg\].*cannot allocate 2000064 connections/,
     'the new worker said why it could not start');

# The other new worker is killed by the rollback: /status lists it until
# the master has reaped it.
my $st = wait_until(sub {
    my $s = $t->status;
    return $s if $s && ($s->{reloads}{failed} // 0) >= 1
                 && !grep { $_->{generation} != 1 } @{$s->{workers} // []};
}, 5) // $t->status;
is($st && $st->{generation}, 1, '/status: still generation 1');
is($st && $st->{reloads}{failed}, 1, '/status: reloads.failed 1');
is(join(' ', map { $_->{generation} } @{$st->{workers} // []}), '1 1',
   '/status: the two workers of generation 1');
is(join(' ', $t->worker_pids), join(' ', @old),
   'the same worker processes as before the reload');

$r = ask($ka, '/gen');
is($r && $r->{body}, 'gen 1',
   'the keep-alive connection of generation 1 still serves');
my %seen;
$seen{eval { parse_response(http_get('/gen'))->{body} } // 'none'}++
    for 1 .. 6;
is_deeply(\%seen, { 'gen 1' => 6 }, 'new connections: generation 1');

# The limit lifted and a config the workers can start with: it goes
# through (a failed reload leaves nothing behind that blocks the next).
($rc, $out) = run_cmd(10, 'prlimit', "--pid=$master",
                      '--as=unlimited:unlimited');
is($rc, 0, 'the limit lifted') or diag($out);
config(3);
$t->reload;
ok($t->wait_log(qr/reload generation \d+ ok/, 15),
   'the next reload succeeds') or diag($t->error_log);
my $served = wait_until(sub {
    my $b = eval { parse_response(http_get('/gen'))->{body} } // '';
    return $b eq 'gen 3' ? $b : undef;
}, 10);
is($served, 'gen 3', 'and its config is served');
$st = $t->status;
is($st && $st->{reloads}{ok}, 1, '/status: reloads.ok 1');
close $ka;
