# Memory of WebSocket tunnels: quiet ones hold no buffer, and under
# back-pressure (the upstream sends 64 MiB while the client reads
# nothing) a tunnel holds at most its two. The upstream is held back (it cannot
# get everything out), the worker's memory stays bounded (its peak,
# VmHWM, grows by a small amount, not by what was sent), and once the
# client reads, every byte arrives in order.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use IO::Socket::INET;
use Test::More;
use Test::Portico;
use Test::Portico::WebSocket;
use Time::HiRes qw(time sleep);

if (my $why = ws_missing()) {
    plan skip_all => $why;
}

my $t = Test::Portico->new()->plan(11);
my $up = Test::Portico::WebSocket->upstream(dir => $t->testdir);

my $wsport = $up->port;
$t->write_config(<<"EOF")->run();
workers: 1
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  ws: { targets: [ "127.0.0.1:$wsport" ] }
routes:
  - { name: ws, match: { path: / }, upstream: ws, websocket: true }
EOF

my $port = $t->port('GW');
my ($worker) = $t->worker_pids;
ok($worker, 'found the worker');


my $MIB = 1024 * 1024;
my $TOTAL = 64 * $MIB;
my $path = "/flood?bytes=$TOTAL&size=$MIB";

# A first tunnel, read to its end, so that what a tunnel needs at all
# (buffers from the worker's caches, pools) is in before the baseline.
sub flood_client ($bytes) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    syswrite($s, "GET /flood?bytes=$bytes&size=$MIB HTTP/1.1\r\nHost: t\r\n"
                 . "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 . "Sec-WebSocket-Version: 13\r\n\r\n");
    my $in = '';
    while ($in !~ /\r\n\r\n/) {
        IO::Select->new($s)->can_read(10) or die 'no 101';
        sysread($s, $in, 65536, length $in) or die 'closed before the 101';
    }
    $in =~ s/\A(.*?)\r\n\r\n//s;
    return ($s, $1, $in);
}

# Reads server frames until $want payload bytes came, checking that
# message i holds bytes of value i % 256; returns (bytes, ok).
sub read_frames ($s, $in, $want) {
    my ($got, $i, $good, $deadline) = (0, 0, 1, time + 60);
    while ($got < $want && time < $deadline) {
        if (length $in >= 10 && ord(substr $in, 1, 1) == 127) {
            my $len = unpack 'Q>', substr($in, 2, 8);
            if (length $in >= 10 + $len) {
                $good = 0 if ord(substr $in, 0, 1) != 0x82
                             || substr($in, 10, $len) ne chr($i % 256) x $len;
                substr($in, 0, 10 + $len, '');
                $got += $len;
                $i++;
                next;
            }
        } elsif (length $in >= 2 && ord(substr $in, 1, 1) != 127) {
            $good = 0;      # every message here is 1 MiB
            last;
        }
        IO::Select->new($s)->can_read($deadline - time) or last;
        sysread($s, $in, 1 << 20, length $in) or last;
    }
    return ($got, $good);
}

sub close_frame () {
    # A masked close frame, code 1000, mask 0.
    return "\x88\x82\0\0\0\0\x03\xe8";
}

my ($s, $head, $in) = flood_client(4 * $MIB);
my ($got) = read_frames($s, $in, 4 * $MIB);
syswrite($s, close_frame());
close $s;
is($got, 4 * $MIB, 'a first tunnel carried 4 MiB');

# The kernel's high-water mark, reset first (clear_refs 5), so a spike
# between two samples cannot be missed.
my $before = proc_kib($worker, 'VmRSS');
my $reset = 0;
if (open my $cr, '>', "/proc/$worker/clear_refs") {
    $reset = print({$cr} "5\n") && close($cr);
}

($s, $head, $in) = flood_client($TOTAL);
like($head, qr{\AHTTP/1\.1 101 }, '101 for the flood');

# The client reads nothing now. The upstream's sends stall once the
# gateway's buffer and the kernel's socket buffers are full: wait until
# its count has not moved for a second.
my $sent = $up->wait_stalled(60);
cmp_ok($sent, '<', $TOTAL,
       "the upstream was held back (sent " . int($sent / $MIB)
       . " MiB of 64 while the client read nothing)");

my $stalled = proc_kib($worker, $reset ? 'VmHWM' : 'VmRSS');

# Now the client reads everything.
my $good;
($got, $good) = read_frames($s, $in, $TOTAL);
syswrite($s, close_frame());
close $s;
is($got, $TOTAL, 'then all 64 MiB arrived');
ok($good, 'every message whole and in order');

my $peak = proc_kib($worker, $reset ? 'VmHWM' : 'VmRSS');
$peak = $stalled if $stalled > $peak;

# Measured (Debian 12 x86-64, -O2, workers: 1): about 11.8 MiB resident
# before (10.6 for a worker that never carried a tunnel), a peak 70-100
# KiB above that. A tunnel holds two 64 KiB buffers whatever goes through
# it; a gateway that buffered what the client did not take would have
# grown by tens of MiB here.
cmp_ok($peak - $before, '<', 2 * 1024,
       "the worker grew by less than 2 MiB (${before} KiB before, peak "
       . "${peak} KiB)");

SKIP: {
    skip 'sanitizer build: resident size not comparable', 1
        if $t->sanitized;
    cmp_ok($peak, '<', 14 * 1024, 'the worker stayed under 14 MiB resident');
}


# Quiet tunnels cost little: each of them first carries a 64 KiB message
# each way (which fills a buffer in both directions), then goes quiet;
# its buffers are back in the worker's cache by then, so what it holds
# is its request and connection state.
my $N = 200;
my $closes = grep { $_->{event} eq 'close' } $up->events;
my $quiet_before = proc_kib($worker, 'VmRSS');
my $many = ws_client_start('many', "ws://127.0.0.1:$port/echo", '--count', $N,
                           '--size', 65536, '--no-compression',
                           '--wait', 60);
my $st = $many->next_json(60) // {};
is($st->{echoed}, $N, "$N tunnels each carried a 64 KiB message");
my $per = (proc_kib($worker, 'VmRSS') - $quiet_before) / $N;
SKIP: {
    # ASan keeps freed blocks in its quarantine, resident.
    skip 'sanitizer build: freed memory stays resident', 1
        if $t->sanitized;
    cmp_ok($per, '<', 16,
           sprintf('then each quiet one holds under 16 KiB of the worker '
                   . '(%.1f KiB)', $per));
}
$many->finish(0);
ok(wait_until(sub { scalar(grep { $_->{event} eq 'close' } $up->events)
                    >= $closes + $N }, 20),
   'and they all end when the client goes away');
