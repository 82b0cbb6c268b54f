# logrotate under load: one keep-alive client sends N requests; midway
# the test renames the access log and sends USR1, and the client goes on
# while the worker reopens and after. Every request is logged exactly
# once across the two files, and none is out of order across them: all
# lines of the old file come before all lines of the new one.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Socket::INET;
use Test::More;
use Test::Portico;

my $N = 2000;

my $t = Test::Portico->new()->plan(6);
my $dir = $t->testdir;

$t->write_config(<<'EOF')->run();
workers: 1
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
access_log: { path: access.log, format: "${request_id} ${path}" }
routes:
  - { name: r, match: { path: / }, respond: { status: 200, body: "ok" } }
EOF

my $log = "$dir/access.log";
my ($worker) = $t->worker_pids;

my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => $t->port('GW'), Timeout => 10)
    or die "connect: $!";
my $buf = '';
my $answered = 0;

# One request on the keep-alive connection, its response read whole.
sub one ($i) {
    print $s "GET /r/$i HTTP/1.1\r\nHost: r\r\nX-Request-ID: r$i\r\n\r\n";
    while (1) {
        if ($buf =~ s/\AHTTP\/1\.1 (\d+) [^\r]*\r\n(?:.*?\r\n)?\r\nok//s) {
            $answered++ if $1 == 200;
            return;
        }
        my $n = sysread($s, $buf, 65536, length $buf);
        die "read: " . ($n // $!) unless $n;
    }
}

# The worker's descriptors: no longer any on the renamed file once its
# writer thread has reopened.
sub reopened () {
    my @targets = map { readlink($_) // '' } glob "/proc/$worker/fd/*";
    return -e $log && !grep { $_ eq "$log.1" } @targets;
}

my $i = 0;
one(++$i) while $i < $N / 2;

rename $log, "$log.1" or die "rename: $!";
kill 'USR1', $t->pid;

# During the reopen: requests go on while the worker is signalled.
my $during = 0;
while ($i < $N * 3 / 4) {
    one(++$i);
    $during++ unless reopened();
}
ok(wait_until(\&reopened, 10), 'the worker reopened the access log');
one(++$i) while $i < $N;
is($answered, $N, "all $N requests answered on one connection");
close $s;

sub lines ($path) {
    open my $fh, '<', $path or return ();
    return map { chomp; $_ } <$fh>;
}

my (@old, @new);
wait_until(sub {
    @old = lines("$log.1");
    @new = lines($log);
    return @old + @new >= $N;
}, 10);

is(@old + @new, $N, "$N lines across the two files")
    or diag scalar(@old) . ' old, ' . scalar(@new) . ' new';
my %ids;
$ids{(split / /, $_)[0]}++ for @old, @new;
is(scalar(grep { $ids{"r$_"} && $ids{"r$_"} == 1 } 1 .. $N), $N,
   'every request id exactly once');
ok(@new > 0, 'the new file has lines after the rename (' . scalar(@new)
   . ", $during sent before the worker had switched)");
my @seq = map { /^r(\d+) / ? $1 : 0 } @old, @new;
is_deeply(\@seq, [1 .. $N],
          'in order: the old file first, then the new one, no gap')
    or diag "old ends at $seq[$#old], new starts at $seq[@old]";
