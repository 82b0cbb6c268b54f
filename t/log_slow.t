# A disk that does not take the access log never stalls requests: the
# log is a FIFO the test opens and does not read, so the pipe fills and
# the writer thread blocks in write(2). Requests are still answered, the
# small ring (8 x 4k) fills and lines are dropped and counted, and once
# the test reads, lines come out again.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Fcntl;
use POSIX qw(mkfifo);
use JSON::PP;
use Test::More;
use Test::Portico;
use Time::HiRes qw(time);

my $N = 3000;

my $t = Test::Portico->new()->plan(9);
my $dir = $t->testdir;
my $fifo = "$dir/access.fifo";

mkfifo($fifo, 0600) or die "mkfifo: $!";
# A reader must exist for the gateway's open for writing not to block;
# it never reads until the end.
sysopen(my $rd, $fifo, O_RDONLY | O_NONBLOCK) or die "open fifo: $!";

$t->write_config(<<'EOF')->run();
workers: 1
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
access_log: { path: access.fifo, format: json, buffer: 4k }
routes:
  - { name: r, match: { path: / }, respond: { status: 200, body: "ok" } }
EOF

my $start = time;
my %count = http_many($N, '/slow', concurrency => 8, timeout => 20);
my $took = time - $start;
is($count{200}, $N, "$N requests answered while the log is not read");
cmp_ok($took, '<', 60, sprintf('within a generous bound (%.1f s)', $took));

ok($t->wait_log(qr/access log: \d+ lines dropped \(the disk is slow or full\)/,
                10),
   'the dropped lines are counted and logged');
my @drops = $t->error_log =~ /access log: \d+ lines dropped/g;
cmp_ok(scalar @drops, '<=', int($took) + 3,
       'at most about one drop line a second (' . scalar(@drops) . ')');

# Now read: the blocked writer goes on, and a request made now is
# logged after what was queued.
my $data = '';
my $deadline = time + 15;
my ($sent, $markers) = (0, 0);
while (time < $deadline) {
    my $n = sysread($rd, $data, 65536, length $data);
    # Drained: a marker request. The writer may still be emptying a full
    # queue into the pipe, and a line that finds the queue full is
    # dropped (as it should be), so one more each second until one of
    # them comes out.
    if (!defined $n && $!{EAGAIN} && time - $sent >= 1) {
        $markers++;
        http_get('/marker', headers => {
            'X-Request-ID' => "after-read-$markers" });
        $sent = time;
    }
    last if $data =~ /"request_id":"after-read-\d+".*\n/;
    select(undef, undef, undef, 0.02) unless $n;
}
my @lines = split /\n/, $data;
ok(@lines > 0 && !grep({ !eval { decode_json($_); 1 } } @lines),
   scalar(@lines) . ' lines read from the FIFO, each valid JSON');
like($data, qr/"request_id":"after-read-\d+"/,
     "a request after the reader caught up is logged ($markers sent)");

$t->stop;
close $rd;

# Exit while the writer is blocked: the worker waits a bounded time
# (3 s), says what may be lost, and exits; the stop is not held up.
my $fifo2 = "$dir/stuck.fifo";
mkfifo($fifo2, 0600) or die "mkfifo: $!";
sysopen(my $rd2, $fifo2, O_RDONLY | O_NONBLOCK) or die "open fifo: $!";
$t->write_config(<<'EOF')->run();
workers: 1
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
access_log: { path: stuck.fifo, format: json, buffer: 4k }
routes:
  - { name: r, match: { path: / }, respond: { status: 200, body: "ok" } }
EOF
%count = http_many(1000, '/stuck', concurrency => 8, timeout => 20);
is($count{200}, 1000, 'the second run answers too');
$start = time;
$t->stop;
$took = time - $start;
cmp_ok($took, '<', 9, sprintf('stop with the writer blocked: %.1f s', $took));
like($t->error_log,
     qr/access log: the writer did not finish within 3 s, up to \d+ lines lost/,
     'the worker said what it could not write');
close $rd2;
