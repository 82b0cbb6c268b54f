# HTTP/2 under attack, each driven by a raw-frame client (t/lib/h2raw.py):
# rapid reset (CVE-2023-44487), a CONTINUATION flood (CVE-2024-27316), an
# HPACK bomb, SETTINGS, PING and PRIORITY floods (with and without reading
# the ACKs), and a zero-window stall. For each: what the server answers
# (GOAWAY ENHANCE_YOUR_CALM, 431, a reset at send_timeout, the close at
# idle_timeout), a normal request on a fresh connection answered while
# the attack runs, and the worker's memory: its peak (VmHWM after a reset
# through clear_refs) within 8 MiB of what it held before, and what it
# holds after within 2 MiB.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Test::Portico;
use Time::HiRes qw(sleep time);

my $t = Test::Portico->new()->plan(52);
my $b1 = $t->backend(id => 'b1');

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%", http2: true } ]
limits: { send_timeout: 2s, idle_timeout: 3s }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - { name: hello, match: { path: "=/hello" }, respond: { status: 200 } }
  - { name: api, match: { path: /api/ }, upstream: app }
EOF

my $port = $t->port('GW');
my ($worker) = $t->worker_pids;
my $sanitized = $t->sanitized;

sub reset_peak () {
    if (open my $cr, '>', "/proc/$worker/clear_refs") {
        print {$cr} "5\n";
        close $cr;
    }
}

# A normal request on a fresh connection, over h2c and over HTTP/1.1.
sub responsive () {
    my ($rc, $out) = curl('--http2-prior-knowledge', '--max-time', '5',
                          '-o', '/dev/null', '-w', '%{http_code}',
                          "http://127.0.0.1:$port/hello");
    my $h1 = eval { parse_response(http_get('/hello', port => $port,
                                            timeout => 5))->{status} } // 0;
    return $out eq '200' && $h1 == 200;
}

# Runs a scenario in the background; checks the worker answers others
# while it runs; returns its JSON result, the resident KiB before, the
# peak during and the resident KiB after.
sub attack ($what, @args) {
    my $before = proc_kib($worker, 'VmRSS');
    reset_peak();

    my $out = "${\ $t->testdir}/attack.json";
    unlink $out;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', $out or POSIX::_exit(1);
        exec('/usr/bin/python3', 't/lib/h2raw.py', $port, @args)
            or POSIX::_exit(127);
    }

    my $during = responsive();
    my $deadline = time + 40;
    while (waitpid($pid, WNOHANG) != $pid) {
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            last;
        }
        sleep 0.05;
    }

    ok($during, "$what: a fresh connection is answered during the attack");
    ok(responsive(), "$what: and after it");

    my $peak = proc_kib($worker, 'VmHWM');
    my $after = proc_kib($worker, 'VmRSS');
    SKIP: {
        skip 'memory is not measured under sanitizers', 2 if $sanitized;
        cmp_ok($peak - $before, '<', 8192,
               "$what: peak $peak KiB, $before KiB before");
        cmp_ok($after - $before, '<', 2048,
               "$what: $after KiB after, $before KiB before");
    }

    my $r = eval { decode_json(Test::Portico::_read_file($out)) };
    diag("h2raw $what: " . Test::Portico::_read_file($out)) unless $r;
    return $r // {};
}

# Warm up (buffers, the log, an upstream connection).
ok(responsive(), 'the gateway answers');
curl('--http2-prior-knowledge', "http://127.0.0.1:$port/api/warm");

# ---- rapid reset ----------------------------------------------------------

# 20,000 HEADERS, each cancelled at once, for a route that proxies.
my $seen = scalar $b1->requests;
my $r = attack('rapid reset', 'rapid_reset', 20000);
is($r->{goaway}{code}, 'ENHANCE_YOUR_CALM',
   'rapid reset: GOAWAY ENHANCE_YOUR_CALM');
ok($r->{closed}, 'rapid reset: and the connection closed');
# limits.http2_reset_rate is 100/s: the GOAWAY comes after about 100
# (its last stream id says how many streams were taken).
cmp_ok($r->{goaway}{last_stream_id}, '<=', 2 * 110,
       'rapid reset: about 100 streams taken before the GOAWAY');
# A stream cancelled in the same read as its HEADERS never starts: the
# backend sees a handful at most, not one per stream.
cmp_ok(scalar($b1->requests) - $seen, '<', 20,
       'rapid reset: cancelled streams cost no upstream requests');

# ---- CONTINUATION flood ----------------------------------------------------

$r = attack('CONTINUATION flood', 'continuation', 2000);
is($r->{goaway}{code}, 'ENHANCE_YOUR_CALM',
   'CONTINUATION flood: GOAWAY ENHANCE_YOUR_CALM');
ok($r->{closed}, 'CONTINUATION flood: connection closed');
like($t->error_log, qr/http2: Too many CONTINUATION frames/,
     'CONTINUATION flood: nghttp2 stopped it after 8 (logged at info)');

# ---- HPACK bomb ------------------------------------------------------------

# 100,000 one-byte references to a 4 KiB entry: 400 MB decoded from a
# 100 KB block.
$r = attack('HPACK bomb', 'hpack_bomb', 100000);
is($r->{1}{status}, 200, 'HPACK bomb: the request that loads the table');
is($r->{3}{status}, 431, 'HPACK bomb: 431 for the bomb');
like($r->{3}{data}, qr/"status":431/, 'HPACK bomb: with the JSON error');
is($r->{next_status}, 200, 'HPACK bomb: the connection serves the next');

# ---- SETTINGS, PING and PRIORITY floods ------------------------------

for my $kind (qw(settings ping priority)) {
    $r = attack("$kind flood", 'flood', $kind, 100000, 1);
    is($r->{goaway}{code}, 'ENHANCE_YOUR_CALM',
       "$kind flood: GOAWAY ENHANCE_YOUR_CALM (limits.http2_control_rate)");
}
my $calm = () = $t->error_log =~ /too many control frames/g;
is($calm, 3, 'each flood logged at info');

# ---- zero window -----------------------------------------------------------

# SETTINGS_INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE, for a 1 MiB
# response: the stream ends at send_timeout (2 s), the connection at
# idle_timeout after that (3 s).
$r = attack('zero window', 'zero_window', '/api/z?size=1048576', 10);
is($r->{1}{status}, 200, 'zero window: the head goes out (no window needed)');
is($r->{1}{body}, 0, 'zero window: no DATA');
is($r->{1}{rst}, 'INTERNAL_ERROR', 'zero window: the stream is reset');
cmp_ok($r->{stream_end_s} // 99, '>=', 1.9, 'zero window: at send_timeout');
cmp_ok($r->{stream_end_s} // 99, '<', 4, 'zero window: not much later');
is($r->{goaway}{code}, 'NO_ERROR', 'zero window: then GOAWAY');
cmp_ok(($r->{conn_end_s} // 99) - ($r->{stream_end_s} // 0), '>=', 2.9,
       'zero window: the connection closes at idle_timeout after it');
cmp_ok($r->{conn_end_s} // 99, '<', 8, 'zero window: and not much later');
