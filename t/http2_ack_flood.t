# A client that floods SETTINGS or PING frames and never reads the ACKs:
# with limits.http2_control_rate out of the way, nghttp2's own bound on
# queued ACKs (1000, PT_HTTP2_MAX_OUTBOUND_ACK) ends the session, so the
# ACKs a non-reading client makes us queue stay bounded. The worker stays
# responsive and its memory bounded, as in http2_attacks.t.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(9);

$t->write_config(<<'EOF2')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%", http2: true } ]
limits: { http2_control_rate: 1000000000/s }
routes:
  - { name: hello, match: { path: "=/hello" }, respond: { status: 200 } }
EOF2

my $port = $t->port('GW');
my ($worker) = $t->worker_pids;

for my $kind (qw(settings ping)) {
    my $before = proc_kib($worker, 'VmRSS');
    if (open my $cr, '>', "/proc/$worker/clear_refs") {
        print {$cr} "5\n";
        close $cr;
    }

    # 300,000 frames, 5 MB: more than the socket buffers hold, so the
    # server's ACKs back up unless it gives up.
    my ($code, $text) = run_cmd(60, '/usr/bin/python3', 't/lib/h2raw.py',
                                $port, 'flood', $kind, 300000, 0);
    my ($json) = $text =~ /^(\{.*\})\s*\z/ms;
    my $r = eval { decode_json($json // '') } // {};
    diag("h2raw: $text") unless %$r;

    ok($r->{closed}, "$kind flood, ACKs unread: the server closed it");

    my ($rc, $out) = curl('--http2-prior-knowledge', '-o', '/dev/null',
                          '-w', '%{http_code}',
                          "http://127.0.0.1:$port/hello");
    is($out, '200', "$kind flood: the worker answers a fresh connection");

    my $peak = proc_kib($worker, 'VmHWM');
    my $after = proc_kib($worker, 'VmRSS');
    SKIP: {
        skip 'memory is not measured under sanitizers', 2 if $t->sanitized;
        cmp_ok($peak - $before, '<', 8192,
               "$kind flood: peak $peak KiB, $before KiB before");
        cmp_ok($after - $before, '<', 2048,
               "$kind flood: $after KiB after, $before KiB before");
    }
}

my $floods = () = $t->error_log =~ /http2: Flooding was detected/g;
is($floods, 2, 'nghttp2 found each flood (logged at info)');
