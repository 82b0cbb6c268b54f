# A WebSocket tunnel over HTTP/2 (extended CONNECT) in a draining worker:
# after a reload its connection gets GOAWAY at once, the tunnel keeps
# carrying messages until graceful_timeout, then it is closed (logged at
# info) and the old worker exits; a new tunnel goes to the new worker.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use JSON::PP;
use Test::More;
use Test::Portico;
use Test::Portico::WebSocket;
use Time::HiRes qw(time);

if (my $why = ws_missing()) {
    plan skip_all => $why;
}

my $t = Test::Portico->new()->plan(6);
my $up = Test::Portico::WebSocket->upstream(dir => $t->testdir);
my $GRACE = 2;
my $wsport = $up->port;

$t->write_config(<<"EOF2")->run();
workers: 1
limits: { graceful_timeout: ${GRACE}s, websocket_idle_timeout: 60s }
listen: [ { address: "127.0.0.1:%%PORT_GW%%", http2: true } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  ws: { targets: [ "127.0.0.1:$wsport" ] }
routes:
  - { name: ws, match: { path: / }, upstream: ws, websocket: true }
EOF2

my $port = $t->port('GW');

my $pid = open(my $fh, '-|', '/usr/bin/python3', 't/lib/ws_h2_client.py',
               $port, '/echo', 'hold', '--wait', 30) // die "fork: $!";
my $sel = IO::Select->new($fh);
my $line = $sel->can_read(10) ? <$fh> : undef;
my $open = eval { decode_json($line // '') } // {};
ok($open->{open}, 'a tunnel over h2 is open');

my $at = time;
$t->reload;
ok($t->wait_log(qr/WebSocket tunnel closed: graceful_timeout passed/,
                $GRACE + 15),
   'the draining worker closes the tunnel at graceful_timeout');

my $res = {};
if ($sel->can_read(20)) {
    local $/;
    $res = eval { decode_json((grep { /^\{/ } split /\n/, <$fh> // '')[-1]
                              // '') } // {};
}
close $fh;

ok(defined $res->{goaway_at} && $res->{goaway_at} - $at < $GRACE,
   'GOAWAY came at once');
my @after = grep { $_ > $at + 0.5 } @{$res->{echo_times} // []};
cmp_ok(scalar @after, '>=', 3, 'echoes went on during the drain');
ok(($res->{ended_at} // 0) - $at >= $GRACE - 0.3,
   'the tunnel ended at graceful_timeout, not before');

my ($rc, $out) = run_cmd(30, '/usr/bin/python3', 't/lib/ws_h2_client.py',
                         $port, '/echo', 'echo');
my ($last) = reverse grep { /^\{/ } split /\n/, $out;
my $r = eval { decode_json($last // '') } // {};
ok($r->{status} == 200 && $r->{close_code} == 4001,
   'a new tunnel opens and echoes on the new generation');
