# limits.websocket_idle_timeout: a tunnel with no byte either way for that
# long is closed (and logged); one with traffic every 0.5 s is not, even
# past the route's own timeout, which does not apply to a tunnel.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;
use Test::Portico::WebSocket;

if (my $why = ws_missing()) {
    plan skip_all => $why;
}

my $t = Test::Portico->new()->plan(10);
my $up = Test::Portico::WebSocket->upstream(dir => $t->testdir);

my $wsport = $up->port;
$t->write_config(<<"EOF")->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
limits: { websocket_idle_timeout: 1s }
access_log: { path: access.log, format: json }
upstreams:
  ws: { targets: [ "127.0.0.1:$wsport" ] }
routes:
  - { name: ws, match: { path: / }, upstream: ws, websocket: true,
      timeout: 1s }
EOF

my $url = 'ws://127.0.0.1:' . $t->port('GW') . '/echo';

sub access_lines ($id) {
    open my $fh, '<', $t->testdir . '/access.log' or return ();
    return grep { ($_->{request_id} // '') eq $id }
           map { eval { decode_json($_) } // () } <$fh>;
}

# Silent: closed by the gateway once a second has passed without a byte
# (the client waits up to 10 s).
my $res = ws_client('idle', $url, '--wait', 10, '--request-id', 'idle-1');
ok($res->{closed}, 'an idle tunnel is closed') or diag explain $res;
cmp_ok($res->{after} // 0, '>=', 0.95, 'not before the idle timeout');
cmp_ok($res->{after} // 99, '<', 5, 'and soon after it');
is($res->{close_code}, 1006, 'by closing the connection (no close frame)');
ok($t->wait_log(qr/WebSocket tunnel closed after 1000 ms without traffic.*request_id: idle-1/),
   'logged at info');

# A message every 0.5 s for 3 s: open throughout, past websocket_idle_
# timeout and the route's timeout: 1s alike.
$res = ws_client('busy', $url, '--every', 0.5, '--for', 3,
                 '--request-id', 'busy-1');
ok($res->{open_at_end}, 'a tunnel with traffic every 0.5 s stays open for 3 s')
    or diag explain $res;
is($res->{echoes}, $res->{sent}, 'every message was echoed');
# 6 if the client keeps time; a busy machine may let it send fewer, but 4
# still span 1.5 s, past the 1 s idle timeout.
cmp_ok($res->{sent} // 0, '>=', 4, 'at least 4 of them');

ok(wait_until(sub { scalar(access_lines('busy-1')) }),
   'the busy tunnel is logged once it ends');
my @lines = access_lines('idle-1');
ok(@lines == 1 && $lines[0]{status} == 101
   && $lines[0]{duration_ms} >= 1000,
   'the idle one once, with status 101 and its duration')
    or diag explain \@lines;
