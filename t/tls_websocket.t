# WebSocket over a TLS listener (wss://): the upgrade request and the
# tunnel that follows it run over the TLS connection, with messages of
# any size (a 1 MiB one crosses many TLS records and read-ahead buffers)
# echoed intact, and the upstream sees X-Forwarded-Proto: https. When the
# upstream ends its stream, the client gets a close_notify at once.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Time::HiRes qw(time);
use Test::More;
use Test::Portico;
use Test::Portico::WebSocket;

if (my $why = ws_missing()) {
    plan skip_all => $why;
}

my $t = Test::Portico->new()->plan(7);
my $dir = $t->testdir;

tls_ca($dir);
tls_cert($dir, 'srv', names => ['localhost']);

my $up = Test::Portico::WebSocket->upstream(dir => $dir);
my $upport = $up->port;

$t->write_config(<<"EOF")->run();
listen:
  - address: "127.0.0.1:%%PORT_TLS%%"
    tls:
      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key } ]
upstreams:
  ws: { targets: [ "127.0.0.1:$upport" ] }
routes:
  - { name: ws, match: { path: /ws/ }, upstream: ws, websocket: true,
      rewrite: { strip_prefix: /ws } }
EOF

my $port = $t->port('TLS');

my $client = <<'PY';
import asyncio, json, ssl, sys
import websockets

async def main(url, ca):
    ctx = ssl.create_default_context(cafile=ca)
    async with websockets.connect(url, ssl=ctx, max_size=None,
                                  ping_interval=None,
                                  open_timeout=10) as ws:
        await ws.send("hello over TLS")
        text = await ws.recv()
        big = bytes(range(256)) * 4096
        await ws.send(big)
        back = await ws.recv()
        await ws.close(code=4001, reason="bye")
        print(json.dumps({"text": text, "big": len(back),
                          "same": back == big,
                          "code": ws.close_code}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
PY

my $t0 = time; my ($rc, $out) = run_cmd(30, '/usr/bin/python3', '-c', $client,
                         "wss://localhost:$port/ws/echo", "$dir/ca.pem");
my $took = time - $t0;
my $res = eval { decode_json((grep { /^\{/ } split /\n/, $out)[-1] // '') }
          // {};
is($rc, 0, 'a wss:// client through the TLS listener') or diag $out;
is($res->{text}, 'hello over TLS', 'a text message echoed');
is($res->{big}, 1024 * 1024, 'a 1 MiB binary message echoed whole');
ok($res->{same}, '... byte for byte');

my ($open) = grep { $_->{event} eq 'open' } $up->events;
my ($proto) = map { $_->[1] } grep { lc $_->[0] eq 'x-forwarded-proto' }
              @{$open->{headers} // []};
is($proto, 'https', 'the upstream saw X-Forwarded-Proto: https');
ok(wait_until(sub { grep { $_->{event} eq 'close' } $up->events }),
   'the close reached the upstream');
# The upstream's end of the stream reaches the client as a close_notify,
# so the client does not wait out its close timeout (10 s) for the TCP
# close the WebSocket close handshake expects from the server.
ok($took < 5, sprintf('the client finished at once (%.1f s)', $took));
