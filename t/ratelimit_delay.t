# mode: delay (token bucket): requests beyond the rate but within the
# burst are held without blocking the worker and let through at the
# rate; beyond the burst, 429 at once. Only lower bounds on time are
# asserted (a busy machine makes things later, never earlier).

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_module(qw/router ratelimit/)->plan(7);

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
routes:
  - name: delayed
    match: { path: /delayed }
    respond: { status: 200, body: "ok" }
    ratelimit: [ { key: "all", rate: 10/s, burst: 5, mode: delay } ]
  - name: fresh
    match: { path: /fresh }
    respond: { status: 200, body: "ok" }
    ratelimit: [ { key: "all", rate: 10/s, burst: 5, mode: delay } ]
  - name: other
    match: { path: /other }
    respond: { status: 200, body: "ok" }
EOF

my $port = $t->port('GW');

# Send n requests at once on n connections; (status, seconds after the
# start) of each answer, in the order they came.
sub burst ($n, $path) {
    my $sel = IO::Select->new;
    my %buf;
    my $start = time;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Timeout => 5)
            or die "connect: $!";
        print $s "GET $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        $sel->add($s);
        $buf{$s} = '';
    }
    my @got;
    my $deadline = time + 10;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(1)) {
            my $n = sysread($s, $buf{$s}, 4096, length $buf{$s});
            next if $n;
            my ($st) = $buf{$s} =~ /^HTTP\/1\.1 (\d+)/;
            push @got, [$st // 0, time - $start];
            $sel->remove($s);
            close $s;
        }
    }
    return @got;
}

my @got = burst(9, '/delayed');
my @ok = grep { $_->[0] == 200 } @got;
my @no = grep { $_->[0] == 429 } @got;
is(scalar @ok, 6, '9 at once, 10/s burst 5: 6 served (1 + the burst)');
is(scalar @no, 3, '3 rejected');
ok(!grep({ $_->[1] > $ok[-1][1] } @no),
   'the rejections did not wait for the delayed ones');

my @t = sort { $a <=> $b } map { $_->[1] } @ok;
ok($t[-1] - $t[0] >= 0.45,
   sprintf('the 6 were let through at the rate: the last %.2f s after the '
           . 'first (at least 0.5 s less a tick)', $t[-1] - $t[0]));
my $spaced = 1;
for my $i (1 .. $#t) {
    $spaced = 0 if $t[$i] - $t[0] < ($i * 0.1) - 0.02;
}
ok($spaced, 'each one at least 100 ms after the one before it had its turn');

# The worker is not blocked while they wait: with 6 requests held on a
# route of its own, another route answers before the last of them is let
# through.
sub burst_then ($n, $path, $other) {
    my $sel = IO::Select->new;
    my %buf;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Timeout => 5)
            or die "connect: $!";
        print $s "GET $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        $sel->add($s);
        $buf{$s} = '';
    }
    my $r = parse_response(http_get($other));
    my $other_at = time;
    my $last = 0;
    my $deadline = time + 10;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(1)) {
            next if sysread($s, $buf{$s}, 4096, length $buf{$s});
            $last = time;
            $sel->remove($s);
        }
    }
    return ($r->{status}, $other_at, $last);
}

my ($status, $other_at, $last) = burst_then(6, '/fresh', '/other');
is($status, 200, 'another route answers while requests wait');
ok($other_at < $last,
   sprintf('before the last held request is let through (%.2f s earlier)',
           $last - $other_at));
