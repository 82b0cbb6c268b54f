# Request and response bodies through the proxy: empty, small and large,
# with the worker's memory staying bounded while 50 MiB stream through.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Digest::MD5;
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Test::Portico;
use Time::HiRes qw(sleep time);

my $t = Test::Portico->new()->plan(16);
my $b1 = $t->backend(id => 'b1');

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
limits: { max_body_size: 100m }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - { name: all, match: { path: / }, upstream: app }
EOF

my $port = $t->port('GW');
my $dir = $t->testdir;

sub echo_of ($raw) {
    my $r = parse_response($raw);
    return ($r, eval { decode_json($r->{body}) } // {});
}

# GET with no body, and with a small response.
my ($r, $e) = echo_of(http_get('/get0', port => $port));
is($r->{status}, 200, 'GET proxied');
is($e->{body_length}, 0, 'GET arrives without a body');

$r = parse_response(http_get('/get1k?size=1024', port => $port));
is(length $r->{body}, 1024, '1 KiB response body intact');

# POST with 0 B and 1 KiB bodies: lengths and digests as sent.
for my $size (0, 1024) {
    my $body = join '', map { chr(65 + $_ % 26) } 1 .. $size;
    ($r, $e) = echo_of(http("POST /post$size HTTP/1.1\r\nHost: t\r\n"
                            . "Connection: close\r\n"
                            . "Content-Length: $size\r\n\r\n$body",
                            port => $port));
    is($e->{body_md5}, Digest::MD5::md5_hex($body),
       "POST of $size bytes reaches the backend intact");
}

# 50 MiB both ways, watching the worker's resident memory meanwhile.
my $big = "$dir/big.bin";
open my $fh, '>', $big or die "$big: $!";
binmode $fh;
my $chunk = join '', map { chr(($_ * 7) & 0xff) } 0 .. 65535;
print $fh $chunk for 1 .. 800;      # 800 x 64 KiB = 50 MiB
close $fh;
my $big_md5 = do {
    open my $in, '<', $big or die;
    binmode $in;
    Digest::MD5->new->addfile($in)->hexdigest;
};

my ($worker) = $t->worker_pids;
ok($worker, 'found the worker');

sub rss_kib ($pid) {
    open my $s, '<', "/proc/$pid/status" or return 0;
    while (<$s>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return 0;
}

# Run a command in the background and sample RSS until it ends.
sub with_rss_peak ($cmd) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        exec('/bin/sh', '-c', $cmd) or POSIX::_exit(127);
    }
    my ($peak, $deadline, $status) = (0, time + 60, -1);
    while (time < $deadline) {
        my $rss = rss_kib($worker);
        $peak = $rss if $rss > $peak;
        if (waitpid($pid, WNOHANG) == $pid) {
            $status = $? >> 8;
            last;
        }
        sleep 0.01;
    }
    if ($status < 0) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    return ($status, $peak);
}

my ($rc, $peak) = with_rss_peak(
    "curl -sS --max-time 50 -o $dir/up.json -H 'Expect:' "
    . "--data-binary \@$big http://127.0.0.1:$port/upload");
is($rc, 0, '50 MiB POST completed');
my $up = eval { decode_json(do { local $/; open my $j, '<', "$dir/up.json"
                                 or die; <$j> }) } // {};
is($up->{body_length}, 50 * 1024 * 1024, 'backend got all 50 MiB');
is($up->{body_md5}, $big_md5, 'and the bytes are the ones sent');
cmp_ok($peak, '<', 64 * 1024, "worker RSS stayed under 64 MiB during the "
       . "upload (peak ${peak} KiB)");

($rc, $peak) = with_rss_peak(
    "curl -sS --max-time 50 -o $dir/down.bin "
    . "'http://127.0.0.1:$port/download?size=52428800'");
is($rc, 0, '50 MiB GET completed');
is(-s "$dir/down.bin", 52428800, 'client got all 50 MiB');
my $pattern_ok = do {
    open my $in, '<', "$dir/down.bin" or die;
    read $in, my $head, 32;
    $head eq '0123456789abcdef' x 2;
};
ok($pattern_ok, 'response bytes are the backend pattern');
cmp_ok($peak, '<', 64 * 1024, "worker RSS stayed under 64 MiB during the "
       . "download (peak ${peak} KiB)");

# The next request reuses the upstream connection: keep-alive to the
# backend survives large bodies.
my @before = $b1->requests;
($r, $e) = echo_of(http_get('/after', port => $port));
is($r->{status}, 200, 'a request after the large ones is fine');
is($e->{conn_seq}, $before[-1]{conn_seq},
   'and reuses the upstream connection');
